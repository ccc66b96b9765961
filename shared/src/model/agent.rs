use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::runner::RunnerConfig;
use super::{Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, WorkspaceId};

/// Default run timeout: runs start asynchronously with a 10-minute timeout.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;
/// Longest run timeout: the executor function's own limit is 15 minutes
/// (Lambda's maximum), and it needs a minute to record the outcome.
pub const MAX_TIMEOUT_SECONDS: u64 = 840;
/// Largest `max_concurrent_runs`.
pub const MAX_CONCURRENT_RUNS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub runner: RunnerConfig,
    /// Bumped by every update; runs record the version they were made for.
    pub version: u64,
    pub timeout_seconds: u64,
    pub enabled: bool,
    /// Runs of this agent executing at once at most (1–1000); more wait
    /// their turn in order. None: only the workspace's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<u32>,
    /// Its runs with the same key value never overlap (a trigger's own
    /// key counts instead for that trigger's calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::Concurrency>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
    /// The secret hookrun signs its calls to the agent with (Standard
    /// Webhooks); agents made before there was one have none until it is
    /// rotated in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub signing: Option<SigningKey>,
}

/// An agent's signing secret (`whsec_…`), sealed under the master key,
/// and the previous one while its grace window after a rotation lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKey {
    pub sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sealed: Option<String>,
    #[serde(
        with = "crate::clock::ts::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl Agent {
    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#AGENTS")
    }

    /// Where the agent's webhook secret lives: under the deployment's
    /// prefix, so stacks sharing an account never share secrets.
    pub fn secret_name(prefix: &str, workspace_id: &str, agent_id: &str) -> String {
        format!("{prefix}/{workspace_id}/agents/{agent_id}")
    }

    /// The session every webhook-triggered run of this agent shares.
    pub fn webhook_session_id(&self) -> String {
        format!("webhook-{}", self.id)
    }
}

impl Record for Agent {
    const ENTITY: Entity = Entity::Agent;

    fn key_for(id: &str) -> Key {
        (format!("AGENT#{id}"), "AGENT".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn gsi1(&self) -> Option<Key> {
        Some((
            Self::list_partition(&self.workspace_id),
            self.id.to_string(),
        ))
    }

    /// The agent's `version` is its item's: runs record which version of
    /// the agent they were made for.
    fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

impl Scoped for Agent {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
