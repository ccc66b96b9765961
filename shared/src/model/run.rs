use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Environment, Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, RunId, TriggerId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerType {
    Webhook,
    Token,
    Schedule,
    Api,
    Test,
}

impl TriggerType {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_ascii_uppercase())).ok()
    }
}

/// One run of an agent. Written `queued` before the trigger's 202; every
/// later change is a conditional write on the item's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub agent_version: u64,
    pub trigger_id: Option<TriggerId>,
    pub trigger_type: TriggerType,
    pub status: RunStatus,
    pub input: Value,
    pub message: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    /// How many times an executor has started this run.
    pub attempt: u32,
    pub session_id: String,
    pub source_ip: Option<String>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// While `running`: the end of the executor's first lease on it (the
    /// lease itself is its slot, renewed while the agent runs).
    #[serde(with = "crate::clock::ts::option", default)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// While `running`: which of its workspace's slots the executor holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    pub timeout_seconds: u64,
    /// Which subscriptions hear of it.
    #[serde(default)]
    pub environment: Environment,
    /// Unix seconds; the item's TTL.
    pub expires_at: Option<i64>,
}

/// Largest run document stored: DynamoDB items hold 400 KB, keys and the
/// other attributes included.
pub const MAX_STORED_RUN_BYTES: usize = 350 * 1024;

impl Run {
    /// The size of the stored document.
    pub fn stored_size(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    pub fn agent_partition(agent_id: &str) -> String {
        format!("AGENT#{agent_id}#RUNS")
    }
}

impl Record for Run {
    const ENTITY: Entity = Entity::Run;

    fn key_for(id: &str) -> Key {
        (format!("RUN#{id}"), "RUN".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn gsi1(&self) -> Option<Key> {
        Some((Self::agent_partition(&self.agent_id), self.id.to_string()))
    }

    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

impl Scoped for Run {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
