//! An executor's hold on a run: one of its workspace's execution slots,
//! leased for a short time and renewed while the agent runs
//! (docs/ARCHITECTURE.md, "Run lifecycle"). A crashed executor's slot
//! expires within one lease, and the run is taken over; a workspace never
//! holds more slots than its cap, so it cannot take every executor.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Key;
use crate::ids::{RunId, WorkspaceId};
use crate::ports::Item;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub workspace_id: WorkspaceId,
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

impl Slot {
    pub fn partition(workspace_id: &str) -> String {
        format!("WSSLOTS#{workspace_id}")
    }

    pub fn key(workspace_id: &str, index: u32) -> Key {
        (Self::partition(workspace_id), format!("{index:04}"))
    }

    pub fn to_item(&self, version: u64) -> Item {
        let (pk, sk) = Self::key(&self.workspace_id, self.index);
        let mut item = Item::new(pk, sk, super::to_doc(self)).with_expiry(Some(self.expires_at));
        item.version = version;
        item
    }
}
