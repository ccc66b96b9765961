//! Sealing stored secrets (trigger HMAC secrets, subscription secrets) with
//! AES-256-GCM under the master key, so a thousand of them do not cost a
//! thousand Secrets Manager secrets.
//!
//! Format: `v1.{key id}.{base64(nonce ‖ ciphertext ‖ tag)}`. The key id (first
//! 8 hex digits of SHA-256 of the derived key) says which master-key version
//! sealed it, so values sealed before a master-key rotation still open while
//! the previous version is kept.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// One master-key version, ready to use.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    id: String,
}

impl MasterKey {
    /// Derives the AES key as SHA-256 of the stored master-key string, so
    /// any generated string (e.g. Secrets Manager's) makes a full-strength key.
    pub fn from_secret(secret: &str) -> Self {
        let key = Sha256::digest(secret.as_bytes());
        let id = hex::encode(&Sha256::digest(key)[..4]);
        MasterKey {
            cipher: Aes256Gcm::new_from_slice(&key).expect("32-byte key"),
            id,
        }
    }
}

pub fn seal(key: &MasterKey, plaintext: &str) -> String {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = key
        .cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
        .expect("AES-GCM encryption of a short value cannot fail");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ct);
    format!("v1.{}.{}", key.id, STANDARD.encode(blob))
}

/// Opens a sealed value with whichever of `keys` sealed it.
pub fn open(keys: &[MasterKey], sealed: &str) -> Option<String> {
    let mut parts = sealed.splitn(3, '.');
    let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let key = keys.iter().find(|k| k.id == id)?;
    let blob = STANDARD.decode(b64).ok()?;
    if blob.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = blob.split_at(12);
    let pt = key.cipher.decrypt(Nonce::from_slice(nonce), ct).ok()?;
    String::from_utf8(pt).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_key_versions() {
        let old = MasterKey::from_secret("old-master");
        let new = MasterKey::from_secret("new-master");
        let sealed = seal(&old, "whsec_abc");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            open(&[new.clone(), old.clone()], &sealed).as_deref(),
            Some("whsec_abc")
        );
        assert_eq!(
            open(std::slice::from_ref(&new), &sealed),
            None,
            "needs the key that sealed it"
        );
        assert_ne!(seal(&old, "x"), seal(&old, "x"), "fresh nonce each time");
    }

    #[test]
    fn tampering_is_detected() {
        let k = MasterKey::from_secret("m");
        let sealed = seal(&k, "secret");
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open(std::slice::from_ref(&k), &String::from_utf8(bytes).unwrap()),
            None
        );
        assert_eq!(open(&[k], "garbage"), None);
    }
}
