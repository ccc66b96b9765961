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
}

impl Subscription {
    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#SUBS")
    }

    pub fn wants(&self, event: &str, environment: Environment, agent_id: &AgentId) -> bool {
        self.enabled
            && self.events.iter().any(|e| e == event)
            && self.environment == environment
            && self.agent_id.as_ref().is_none_or(|a| a == agent_id)
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
}

impl Scoped for Subscription {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
