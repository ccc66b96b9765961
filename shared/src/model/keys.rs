//! Keys of the items that are not records of their own: idempotency keys,
//! rate-limit counters and the bootstrap marker.

use super::Key;
use crate::error::LimitScope;

/// An idempotency key seen for a target (trigger or agent): holds the id
/// of the run the first call made. `key_hash` is the SHA-256 of the
/// caller's key, so no client text shapes the key.
pub fn dedup(target: &str, key_hash: &str) -> Key {
    (format!("DEDUP#{target}#{key_hash}"), "DEDUP".to_owned())
}

/// The counter of one rate limit in one minute window (`window` is Unix
/// minutes).
pub fn rate_counter(scope: LimitScope, id: &str, window: i64) -> Key {
    (
        format!("RL#{}#{id}#{window}", scope.key_name()),
        "RL".to_owned(),
    )
}

/// The marker written by a store's first start, naming its default workspace.
pub fn bootstrap() -> Key {
    ("META".to_owned(), "BOOTSTRAP".to_owned())
}

/// Where the in-process outbox relay has read a stream shard up to.
pub fn relay_position(shard_id: &str) -> Key {
    ("META".to_owned(), format!("RELAY#{shard_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(dedup("trg_1", "ab").0, "DEDUP#trg_1#ab");
        assert_eq!(
            rate_counter(LimitScope::Workspace, "ws_1", 7).0,
            "RL#workspace#ws_1#7"
        );
        assert_eq!(bootstrap(), ("META".into(), "BOOTSTRAP".into()));
    }
}
