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

/// Where each line and event of a run sits in its sequence
/// (docs/ARCHITECTURE.md, "Real-time events"). Each attempt owns the
/// numbers from `attempt * 10000`: its `run.started` event, then its start
/// lines, the lines an agent streams while it runs, its outcome lines, and
/// the terminal event last. So a run's lines and events share one order,
/// numbers of a taken-over attempt never collide with the next one's, and
/// a client that saw number N has seen everything before it.
pub mod seq {
    /// `run.queued`: before everything.
    pub const QUEUED: u32 = 0;
    const ATTEMPT: u32 = 10_000;
    /// Lines streamed by the agent while it runs start here.
    const STREAM: u32 = 10;
    /// The outcome lines start here (runs recorded before streaming
    /// agents had them from 1000).
    const OUTCOME: u32 = 9_000;
    /// A cancel's lines, within the outcome's range.
    const CANCEL: u32 = 900;
    /// The terminal event: after every line of its attempt.
    const TERMINAL: u32 = ATTEMPT - 1;
    /// Streamed lines an attempt numbers (the rest are not logged).
    pub const MAX_STREAMED: u32 = OUTCOME - STREAM;

    /// The attempt a line or event of `seq` belongs to.
    pub fn attempt_of(seq: u32) -> u32 {
        seq / ATTEMPT
    }
    pub fn started(attempt: u32) -> u32 {
        attempt.saturating_mul(ATTEMPT)
    }
    pub fn start_lines(attempt: u32) -> u32 {
        started(attempt).saturating_add(1)
    }
    pub fn streamed_lines(attempt: u32) -> u32 {
        started(attempt).saturating_add(STREAM)
    }
    pub fn outcome_lines(attempt: u32) -> u32 {
        started(attempt).saturating_add(OUTCOME)
    }
    /// The lines a cancel writes (who cancelled, then the executor's
    /// note that it stopped the runner): after the attempt's outcome lines.
    pub fn cancel_lines(attempt: u32) -> u32 {
        outcome_lines(attempt).saturating_add(CANCEL)
    }
    pub fn terminal(attempt: u32) -> u32 {
        started(attempt).saturating_add(TERMINAL)
    }
}
