//! Concurrency keys: runs of an agent that share a key value never
//! overlap (docs/ARCHITECTURE.md, "Concurrency keys").
//!
//! Every keyed run executes in its key's own pool of one slot
//! ([`super::Pool::Key`]), waiting its turn in order; that alone is the
//! `queue` policy. `skip` and `replace` also decide at the call: the run
//! is written together with its key's hold ([`KeyHold`]), which names the
//! newest run admitted under the key, so of concurrent calls exactly one
//! takes a free key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Key;
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::ports::Item;

/// Longest key value kept as given; a longer one is kept as its SHA-256
/// (`sha256:…`), so any value fits the keys it is part of.
pub const MAX_KEY_VALUE_BYTES: usize = 256;
/// Longest key expression.
pub const MAX_KEY_EXPRESSION_BYTES: usize = 1024;

/// An agent's or a trigger's concurrency key (a trigger's, when it has
/// one, counts for its calls; else the agent's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Where a call's key value is read: a JSON pointer into the payload
    /// (`/pull_request/number`), a header (`header:X-GitHub-Delivery`) or
    /// a template over the run (`{{ input.repo }}`: `input`, `message`,
    /// `trigger`).
    #[schema(min_length = 1, max_length = 1024, example = "/pull_request/number")]
    pub key: String,
    /// What a call does while a run of its key value is queued or
    /// running (default `queue`).
    #[serde(default)]
    pub on_conflict: OnConflict,
}

/// What a new run does while another of its key value is going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Wait until the current one ends, then start (in order per key).
    #[default]
    Queue,
    /// Make no run: the call answers `skipped` with the run going.
    Skip,
    /// Cancel the run going (`cancel_reason: replaced`) and start.
    Replace,
}

impl OnConflict {
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Queue => "queue",
            OnConflict::Skip => "skip",
            OnConflict::Replace => "replace",
        }
    }
}

/// Where a key expression reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// A JSON pointer into the payload as it came.
    Pointer(&'a str),
    /// A request header (its name).
    Header(&'a str),
    /// A MiniJinja template over the run.
    Template(&'a str),
}

impl Concurrency {
    /// What the expression reads; None for one that is none of the three.
    pub fn source(&self) -> Option<KeySource<'_>> {
        let key = self.key.as_str();
        if let Some(name) = key.strip_prefix("header:") {
            Some(KeySource::Header(name.trim()))
        } else if key.starts_with('/') {
            Some(KeySource::Pointer(key))
        } else if key.contains("{{") {
            Some(KeySource::Template(key))
        } else {
            None
        }
    }
}

/// A key value as a run keeps it: as given up to
/// [`MAX_KEY_VALUE_BYTES`], else `sha256:` and its hex digest.
pub fn key_value(raw: &str) -> String {
    if raw.len() <= MAX_KEY_VALUE_BYTES {
        raw.to_owned()
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
    }
}

/// A fixed-length name for a key value inside storage keys (a value may
/// hold `#` or anything else).
pub fn key_digest(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..16])
}

/// The run a key value is held by: the newest run admitted under it by
/// `skip` or `replace`. It may outlive its run (a crash between the run's
/// end and the hold's release); a hold whose run has ended is free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHold {
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub key: String,
    pub run_id: RunId,
}

impl KeyHold {
    pub fn key_of(workspace_id: &str, agent_id: &str, value: &str) -> Key {
        (
            format!("KEYHOLD#{workspace_id}#{agent_id}#{}", key_digest(value)),
            "HOLD".to_owned(),
        )
    }

    pub fn storage_key(&self) -> Key {
        Self::key_of(&self.workspace_id, &self.agent_id, &self.key)
    }

    /// The hold as an item, expiring with its run.
    pub fn to_item(&self, expires_at: Option<i64>) -> Item {
        let (pk, sk) = self.storage_key();
        Item::new(pk, sk, super::to_doc(self)).with_expiry(expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: &str) -> Concurrency {
        Concurrency {
            key: key.into(),
            on_conflict: OnConflict::Queue,
        }
    }

    #[test]
    fn sources() {
        assert_eq!(
            c("/pull_request/number").source(),
            Some(KeySource::Pointer("/pull_request/number"))
        );
        assert_eq!(
            c("header: X-GitHub-Delivery").source(),
            Some(KeySource::Header("X-GitHub-Delivery"))
        );
        assert_eq!(
            c("{{ input.repo }}").source(),
            Some(KeySource::Template("{{ input.repo }}"))
        );
        assert_eq!(c("repo").source(), None);
    }

    #[test]
    fn long_values_are_kept_as_digests() {
        assert_eq!(key_value("42"), "42");
        let long = "x".repeat(MAX_KEY_VALUE_BYTES + 1);
        let kept = key_value(&long);
        assert!(
            kept.starts_with("sha256:") && kept.len() == 7 + 64,
            "{kept}"
        );
        assert_ne!(key_digest("a#b"), key_digest("a#c"));
        assert_eq!(key_digest("a").len(), 32);
    }
}
