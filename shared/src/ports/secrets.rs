//! The secret store: per-agent webhook secrets (and, later, the master key).
//!
//! A secret carries its previous value while a rotation grace window lasts,
//! so both engines keep rotation in one stored value (for Secrets Manager:
//! the `AWSCURRENT` version's JSON).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersions {
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl SecretVersions {
    pub fn new(current: String) -> Self {
        SecretVersions {
            current,
            previous: None,
            previous_valid_until: None,
        }
    }

    /// The values that authenticate at `now`: the current one, then the
    /// previous one while its grace window lasts.
    pub fn valid_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        let previous = match (&self.previous, self.previous_valid_until) {
            (Some(p), Some(until)) if now < until => Some(p.as_str()),
            _ => None,
        };
        std::iter::once(self.current.as_str()).chain(previous)
    }
}

/// Never print secret values, not even in debug output.
impl std::fmt::Debug for SecretVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersions")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}

#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    async fn get(&self, name: &str) -> StoreResult<Option<SecretVersions>>;
    /// Like `get`, but past any cache (an adapter may still rate-limit it).
    /// Called when a verification failed against a cached value, which may
    /// be stale after a rotation made by another process.
    async fn get_fresh(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        self.get(name).await
    }
    /// The stored value now, never from a cache (for read-modify-write).
    async fn get_uncached(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        self.get(name).await
    }
    /// The master key's values, current first, then any previous version
    /// still kept: what seals and opens stored trigger and subscription
    /// secrets. Created on first use where the backend allows it.
    async fn master_keys(&self) -> StoreResult<Vec<String>>;
    /// Creates or replaces the secret.
    async fn put(&self, name: &str, value: &SecretVersions) -> StoreResult<()>;
    /// Removes the secret; removing a missing secret succeeds.
    async fn delete(&self, name: &str) -> StoreResult<()>;
}
