use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, RunId};
use crate::ports::Item;

/// One line of a run's log: lifecycle events from the executor and the
/// runner's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    pub run_id: RunId,
    pub agent_id: AgentId,
    pub seq: u32,
    #[serde(with = "crate::clock::ts")]
    pub timestamp: DateTime<Utc>,
    /// `system` for lifecycle lines, `output` for the runner's output.
    pub stream: String,
    pub level: String,
    pub message: String,
    pub expires_at: Option<i64>,
}

impl LogLine {
    pub fn partition(agent_id: &str) -> String {
        format!("LOGS#{agent_id}")
    }

    /// Lines of one run sort together and in order; runs sort by id (time).
    pub fn sort_key(run_id: &str, seq: u32) -> String {
        format!("{run_id}#{seq:08}")
    }

    /// The sort-key prefix of one run's lines.
    pub fn run_prefix(run_id: &str) -> String {
        format!("{run_id}#")
    }

    pub fn to_item(&self) -> Item {
        Item::new(
            Self::partition(&self.agent_id),
            Self::sort_key(&self.run_id, self.seq),
            super::to_doc(self),
        )
        .with_expiry(self.expires_at)
    }
}
