//! Identifiers and random secrets.
//!
//! Ids are a short type prefix and a lowercase ULID, so they sort by creation
//! time (newest-first listings are a reverse key order) and say what they
//! name when they show up in a log.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn workspace_id() -> String {
    new_id("ws")
}

pub fn agent_id() -> String {
    new_id("agt")
}

pub fn run_id() -> String {
    new_id("run")
}

/// `n` bytes from the OS CSPRNG, hex encoded.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A per-agent webhook secret: 256 random bits.
pub fn agent_secret() -> String {
    format!("whk_{}", random_hex(32))
}

/// An admin API key for the management API.
pub fn admin_key() -> String {
    format!("hka_{}", random_hex(24))
}

/// Hex SHA-256, how keys and tokens are stored: a leaked table does not leak
/// credentials, and lookup stays one GetItem.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The first characters of a credential, kept for display.
pub fn display_prefix(value: &str) -> String {
    value.chars().take(12).collect()
}

/// Ids in URLs are checked before they reach a key: short, and made of the
/// characters our ids use, so no client input can shape a storage key.
pub fn is_plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_sort_by_time() {
        let a = run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = run_id();
        assert!(a.starts_with("run_") && a.len() == 30, "{a}");
        assert!(a < b);
        assert!(is_plausible_id(&a));
    }

    #[test]
    fn implausible_ids_are_rejected() {
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id("a#b"));
        assert!(!is_plausible_id(&"a".repeat(65)));
        assert!(!is_plausible_id("../x"));
    }

    #[test]
    fn secrets_are_random_and_long() {
        let (a, b) = (agent_secret(), agent_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
