//! An executor's hold on a run: one of its workspace's execution slots,
//! leased for a short time and renewed while the agent runs
//! (docs/ARCHITECTURE.md, "Run lifecycle"). A crashed executor's slot
//! expires within one lease, and the run is taken over; a workspace never
//! holds more slots than its cap, so it cannot take every executor.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Key;
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::ports::Item;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub workspace_id: WorkspaceId,
    /// Set for a slot of the agent's own pool (`max_concurrent_runs`),
    /// held besides the workspace's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Set (with `agent_id`) for the slot of a concurrency key value: the
    /// value's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub index: u32,
    pub run_id: RunId,
    /// The run's attempt this hold belongs to.
    pub attempt: u32,
    #[serde(with = "crate::clock::ts")]
    pub renewed_at: DateTime<Utc>,
    /// Unix seconds: the item's TTL, so an expired hold is absent for
    /// every reader and condition.
    pub expires_at: i64,
}

/// A set of slots with a cap: a workspace's, or one agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pool {
    Workspace(WorkspaceId),
    Agent(WorkspaceId, AgentId),
    /// One concurrency key value of an agent: one slot, so runs of the
    /// value never overlap (the value's digest, [`super::concurrency::key_digest`]).
    Key(WorkspaceId, AgentId, String),
}

impl Pool {
    /// The partition its slots live in. An agent's is under its
    /// workspace's prefix, so one key condition (`WSSLOTS#*`) covers both.
    pub fn partition(&self) -> String {
        match self {
            Pool::Workspace(ws) => format!("WSSLOTS#{ws}"),
            Pool::Agent(ws, agent) => format!("WSSLOTS#{ws}#AGENT#{agent}"),
            Pool::Key(ws, agent, digest) => format!("WSSLOTS#{ws}#AGENT#{agent}#KEY#{digest}"),
        }
    }

    /// The partition of the runs waiting for one of its slots, oldest
    /// first (run ids sort by creation).
    pub fn waiting_partition(&self) -> String {
        format!("{}#WAIT", self.partition())
    }

    pub fn key(&self, index: u32) -> Key {
        (self.partition(), format!("{index:04}"))
    }

    pub fn workspace_id(&self) -> &WorkspaceId {
        match self {
            Pool::Workspace(ws) | Pool::Agent(ws, _) | Pool::Key(ws, _, _) => ws,
        }
    }

    /// The key value's digest, for a key's pool.
    pub fn key_digest(&self) -> Option<&String> {
        match self {
            Pool::Key(_, _, digest) => Some(digest),
            _ => None,
        }
    }

    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Pool::Workspace(_) => None,
            Pool::Agent(_, agent) | Pool::Key(_, agent, _) => Some(agent),
        }
    }
}

impl Slot {
    /// The pool this slot is of.
    pub fn pool(&self) -> Pool {
        match (&self.agent_id, &self.key) {
            (Some(agent), Some(digest)) => {
                Pool::Key(self.workspace_id.clone(), agent.clone(), digest.clone())
            }
            (Some(agent), None) => Pool::Agent(self.workspace_id.clone(), agent.clone()),
            _ => Pool::Workspace(self.workspace_id.clone()),
        }
    }

    pub fn to_item(&self, version: u64) -> Item {
        let (pk, sk) = self.pool().key(self.index);
        let mut item = Item::new(pk, sk, super::to_doc(self)).with_expiry(Some(self.expires_at));
        item.version = version;
        item
    }
}
