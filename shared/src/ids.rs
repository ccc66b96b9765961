//! Identifiers and random secrets.
//!
//! Ids are a short type prefix and a lowercase ULID, so they sort by creation
//! time (newest-first listings are a reverse key order) and say what they
//! name when they show up in a log.
//!
//! The ids that are easy to mix up (a workspace id where an agent id was
//! meant: both are strings in the same URL) are newtypes. They serialise as
//! plain strings, so nothing on the wire or in storage changes, and they
//! dereference to `&str` for formatting and keys. Only plausible ids
//! deserialise, so no stored or received text can shape a storage key.

use rand::RngCore;
use sha2::{Digest, Sha256};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                if is_plausible_id(&s) {
                    Ok($name(s))
                } else {
                    Err(format!("{s:?} is not a valid {} id", $prefix))
                }
            }
        }

        impl $name {
            /// The prefix of ids of this type (`agt` in `agt_01…`).
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-sortable id.
            pub fn generate() -> Self {
                $name(new_id($prefix))
            }

            /// An id as received from outside (a URL, a request body): only
            /// plausible ids become one, so no client input can shape a
            /// storage key. An implausible id names nothing: callers answer
            /// "not found".
            pub fn parse(raw: &str) -> Option<Self> {
                is_plausible_id(raw).then(|| $name(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// On the wire an id is a string: its prefix, `_`, a ULID.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("An id: `", $prefix, "_` and a lowercase ULID.")))
                    .max_length(Some(64))
                    .examples([concat!($prefix, "_01m82neera0ww62px4wgbmk408")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// A tenant (the compatibility routes call it `crewId`).
    WorkspaceId,
    "ws"
);
id_type!(
    /// An agent.
    AgentId,
    "agt"
);
id_type!(
    /// A named trigger of an agent.
    TriggerId,
    "trg"
);
id_type!(
    /// One run of an agent.
    RunId,
    "run"
);
id_type!(
    /// A schedule: an agent (or trigger) run on a cron.
    ScheduleId,
    "sch"
);

/// Ids of one process increase strictly, even within one millisecond (a
/// monotonic ULID generator): runs made one after the other sort in that
/// order, which an agent's line of waiting runs relies on. Across
/// processes, ids of one millisecond sort in no particular order.
pub fn new_id(prefix: &str) -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let id = GENERATOR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .generate()
        // The random part overflowed within one millisecond (2^80 ids):
        // a fresh id, still of this millisecond.
        .unwrap_or_else(|_| ulid::Ulid::new());
    format!("{prefix}_{}", id.to_string().to_lowercase())
}

/// The smallest and the largest id `prefix` can have for a time span
/// (inclusive, to the millisecond; an open end is the first or last
/// possible id): the sort-key range of what was made in it.
pub fn time_range(
    prefix: &str,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> (String, String) {
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis().max(0) as u64;
    let low = ulid::Ulid::from_parts(from.map_or(0, ms), 0);
    let high = ulid::Ulid::from_parts(to.map_or((1 << 48) - 1, ms), u128::MAX);
    let id = |u: ulid::Ulid| format!("{prefix}_{}", u.to_string().to_lowercase());
    (id(low), id(high))
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

/// A Standard Webhooks signing secret: `whsec_` and 256 random bits in
/// base64 (subscriptions, triggers, agents' signing secrets).
pub fn signing_secret() -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// An admin API key for the management API.
pub fn admin_key() -> String {
    format!("hka_{}", random_hex(24))
}

/// A trigger token: shown once, stored as its SHA-256.
pub fn trigger_token() -> String {
    format!("wht_{}", random_hex(24))
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

    #[test]
    fn a_time_range_holds_the_ids_made_in_it() {
        let before = chrono::Utc::now() - chrono::Duration::milliseconds(5);
        let id = RunId::generate();
        let after = chrono::Utc::now() + chrono::Duration::milliseconds(5);
        let (low, high) = time_range("run", Some(before), Some(after));
        assert!(low.as_str() <= id.as_str() && id.as_str() <= high.as_str());
        let (low, _) = time_range("run", Some(after), None);
        assert!(id.as_str() < low.as_str());
        let (_, high) = time_range("run", None, Some(before));
        assert!(high.as_str() < id.as_str());
        let (low, high) = time_range("run", None, None);
        assert!(low.as_str() < id.as_str() && id.as_str() < high.as_str());
    }

    #[test]
    fn ids_made_one_after_the_other_sort_in_that_order() {
        let ids: Vec<RunId> = (0..1000).map(|_| RunId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    }
    use super::*;

    #[test]
    fn ids_have_prefix_and_sort_by_time() {
        let a = RunId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = RunId::generate();
        assert!(a.starts_with("run_") && a.len() == 30, "{a}");
        assert!(a < b);
        assert!(is_plausible_id(&a));
        assert!(AgentId::generate().starts_with("agt_"));
        assert!(WorkspaceId::generate().starts_with("ws_"));
        assert!(TriggerId::generate().starts_with("trg_"));
    }

    #[test]
    fn implausible_ids_are_rejected() {
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id("a#b"));
        assert!(!is_plausible_id(&"a".repeat(65)));
        assert!(!is_plausible_id("../x"));
        assert_eq!(AgentId::parse("agt_x#y"), None);
        assert_eq!(AgentId::parse("agt_1").unwrap(), "agt_1");
    }

    #[test]
    fn ids_serialise_as_plain_strings() {
        let id = AgentId::parse("agt_1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"agt_1\"");
        let back: AgentId = serde_json::from_str("\"agt_1\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<AgentId>("\"a#b\"").is_err());
    }

    #[test]
    fn secrets_are_random_and_long() {
        let (a, b) = (agent_secret(), agent_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(trigger_token().starts_with("wht_"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
