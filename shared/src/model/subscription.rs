use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Environment, Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, WorkspaceId};

/// Events a subscription can ask for.
pub const EVENTS: [&str; 4] = [
    "run.succeeded",
    "run.failed",
    "run.started",
    "run.cancelled",
];

/// A `hookrun listen` session (`services::listen`): its deliveries are
/// pushed to the listening client over the real-time channel and
/// forwarded by it instead of sent by hookrun, and it hears of no run
/// after it expires (a few minutes after its client was last heard of;
/// each `listen` moves it on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenSession {
    #[serde(with = "crate::clock::ts")]
    pub expires_at: DateTime<Utc>,
}

/// An outgoing webhook: where to send which run events. Its signing secret
/// is stored sealed under the master key and shown only at creation and
/// rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub environment: Environment,
    pub agent_id: Option<AgentId>,
    pub enabled: bool,
    /// Why hookrun disabled it (410 Gone, five days of failures), if it did.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (cleared by a success).
    #[serde(with = "crate::clock::ts::option", default)]
    pub failing_since: Option<DateTime<Utc>>,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
    /// Set on a listen session's subscription; `url` is then `listen:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<ListenSession>,
}

/// How long a listen session's subscription item outlives its expiry
/// before the store's TTL removes it (its deliveries keep their own).
const LISTEN_ITEM_GRACE_SECS: i64 = 86_400;

impl Subscription {
    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#SUBS")
    }

    pub fn wants(
        &self,
        event: &str,
        environment: Environment,
        agent_id: &AgentId,
        now: DateTime<Utc>,
    ) -> bool {
        self.enabled
            && self.events.iter().any(|e| e == event)
            && self.environment == environment
            && self.agent_id.as_ref().is_none_or(|a| a == agent_id)
            && self.listen.as_ref().is_none_or(|l| l.expires_at > now)
    }
}

impl Record for Subscription {
    const ENTITY: Entity = Entity::Subscription;

    fn key_for(id: &str) -> Key {
        (format!("SUB#{id}"), "SUB".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn gsi1(&self) -> Option<Key> {
        Some((Self::list_partition(&self.workspace_id), self.id.clone()))
    }
    fn expires_at(&self) -> Option<i64> {
        self.listen
            .as_ref()
            .map(|l| l.expires_at.timestamp() + LISTEN_ITEM_GRACE_SECS)
    }
}

impl Scoped for Subscription {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
