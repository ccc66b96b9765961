//! Schedules: an agent (or one of its triggers) run on a cron, in a time
//! zone (docs/ARCHITECTURE.md, "Schedules").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, RunId, ScheduleId, TriggerId, WorkspaceId};

/// Schedules a workspace holds at most.
pub const MAX_SCHEDULES_PER_WORKSPACE: usize = 1000;

/// What a fire does while the schedule's previous run is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// No run; the skipped fire is counted on the schedule.
    #[default]
    Skip,
    /// One run waits for the one going (a fire while one waits already
    /// is skipped).
    QueueOne,
    /// Runs overlap freely.
    Allow,
}

/// What becomes of fires missed while `hookrun serve` was stopped or the
/// schedule was paused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// The most recent missed fire runs once, if it is less than an hour
    /// old.
    #[default]
    Latest,
    /// Missed fires are skipped.
    None,
}

/// How long a missed fire may be caught up on.
pub const CATCH_UP_WINDOW_SECONDS: i64 = 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: ScheduleId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub agent_id: AgentId,
    /// Runs go through this trigger (its input mapping and event filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<TriggerId>,
    pub cron: String,
    pub timezone: String,
    pub payload: Value,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub enabled: bool,
    /// Where a `rate(…)` counts from: its creation, or the last change of
    /// its expression.
    #[serde(with = "crate::clock::ts")]
    pub anchor: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
    /// What its fires came to.
    #[serde(flatten)]
    pub state: ScheduleState,
}

/// A schedule's fires so far, and the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The next fire this process will make (`hookrun serve`'s
    /// scheduler; on AWS EventBridge Scheduler keeps its own).
    #[serde(with = "crate::clock::ts::option", default)]
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The scheduled time of the last fire handled (a run made or the
    /// fire skipped): a fire of this time or earlier is a repeat.
    #[serde(with = "crate::clock::ts::option", default)]
    pub last_handled: Option<DateTime<Utc>>,
    /// The scheduled time of the last fire that made a run.
    #[serde(with = "crate::clock::ts::option", default)]
    pub last_fired_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_run_id: Option<RunId>,
    /// Fires that made no run (overlap, or missed and not caught up).
    #[serde(default)]
    pub skipped_fires: u64,
    #[serde(with = "crate::clock::ts::option", default)]
    pub last_skipped_at: Option<DateTime<Utc>>,
    /// Why the last skipped fire was skipped.
    #[serde(default)]
    pub last_skip_reason: Option<String>,
}

impl Schedule {
    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#SCHEDULES")
    }

    /// The partition of every enabled schedule with a next fire, sorted by
    /// it: what `hookrun serve`'s scheduler reads.
    pub const DUE_PARTITION: &'static str = "SCHEDULES#DUE";

    /// Its sort key in [`Schedule::DUE_PARTITION`].
    pub fn due_key(at: DateTime<Utc>, id: &str) -> String {
        format!("{:012}#{id}", at.timestamp().max(0))
    }

    /// The idempotency key of the run of one fire.
    pub fn fire_key(&self, scheduled_time: DateTime<Utc>) -> String {
        format!("{}#{}", self.id, scheduled_time.timestamp())
    }
}

impl Record for Schedule {
    const ENTITY: Entity = Entity::Schedule;

    fn key_for(id: &str) -> Key {
        (format!("SCHED#{id}"), "SCHED".to_owned())
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

    fn gsi2(&self) -> Option<Key> {
        let next = self.state.next_fire_at.filter(|_| self.enabled)?;
        Some((
            Self::DUE_PARTITION.to_owned(),
            Self::due_key(next, &self.id),
        ))
    }
}

impl Scoped for Schedule {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
