//! The event format, and which events a subscription wants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::model::logs::seq;
use crate::model::{LogLine, Run, RunStatus, TriggerType};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    /// A log line a run wrote.
    #[serde(rename = "agent.log")]
    AgentLog,
    #[serde(rename = "run.queued")]
    RunQueued,
    #[serde(rename = "run.started")]
    RunStarted,
    #[serde(rename = "run.succeeded")]
    RunSucceeded,
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "run.cancelled")]
    RunCancelled,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AgentLog => "agent.log",
            EventKind::RunQueued => "run.queued",
            EventKind::RunStarted => "run.started",
            EventKind::RunSucceeded => "run.succeeded",
            EventKind::RunFailed => "run.failed",
            EventKind::RunCancelled => "run.cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventKind::RunSucceeded | EventKind::RunFailed | EventKind::RunCancelled
        )
    }
}

/// One event, as every transport sends it (a WebSocket text frame, an SSE
/// `data:` line, a PostToConnection body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// `{run_id}:{seq}`: unique, and the resume point a client gives back
    /// (`Last-Event-ID`, or `last_event_id` on the WebSocket).
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub run_id: RunId,
    /// The event's place in its run: every line and event of a run is
    /// numbered in the order it happened.
    pub seq: u32,
    /// When it was recorded (RFC 3339, milliseconds).
    #[serde(with = "crate::clock::ts")]
    pub time: DateTime<Utc>,
    pub data: EventData,
}

/// A log line (`agent.log`) or the run's summary (`run.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EventData {
    Log(LogData),
    Run(RunSummary),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogData {
    /// `info`, `warn` or `error` (an agent may stream `debug` too).
    pub level: String,
    /// `system` for the executor's lines, `output` for the agent's.
    pub stream: String,
    pub line: String,
}

/// A run as its events describe it: everything but its payload and output
/// (`GET /api/v1/runs/{id}` has those), so an event stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub status: RunStatus,
    pub trigger_type: TriggerType,
    pub trigger_id: Option<crate::ids::TriggerId>,
    pub attempt: u32,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// Tokens its model used (on the terminal event).
    #[serde(default)]
    pub usage: Option<crate::model::run::Usage>,
    /// Why it was cancelled (`requested`, `replaced`), on `run.cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// The run it retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<crate::ids::RunId>,
}

impl RunSummary {
    pub fn of(run: &Run) -> Self {
        RunSummary {
            status: run.status,
            trigger_type: run.trigger_type,
            trigger_id: run.trigger_id.clone(),
            attempt: run.attempt,
            created_at: run.created_at,
            started_at: run.started_at,
            completed_at: run.completed_at,
            duration_ms: run.duration_ms,
            exit_code: run.exit_code,
            error: run.error.clone(),
            usage: run.usage.clone(),
            cancel_reason: run.control.cancel_reason.clone(),
            retry_of: run.control.retry_of.clone(),
        }
    }
}

/// The id of a run's event `seq`.
pub fn event_id(run_id: &RunId, seq: u32) -> String {
    format!("{run_id}:{seq}")
}

/// A resume point given back by a client: `{run_id}:{seq}`.
pub fn parse_event_id(raw: &str) -> Option<(RunId, u32)> {
    let (run, seq) = raw.trim().rsplit_once(':')?;
    Some((RunId::parse(run)?, seq.parse().ok()?))
}

impl LiveEvent {
    /// The `agent.log` event of a stored line.
    pub fn log(workspace_id: &WorkspaceId, line: &LogLine) -> Self {
        LiveEvent {
            kind: EventKind::AgentLog,
            id: event_id(&line.run_id, line.seq),
            workspace_id: workspace_id.clone(),
            agent_id: line.agent_id.clone(),
            run_id: line.run_id.clone(),
            seq: line.seq,
            time: line.timestamp,
            data: EventData::Log(LogData {
                level: line.level.clone(),
                stream: line.stream.clone(),
                line: line.message.clone(),
            }),
        }
    }

    /// The lifecycle event the run's state announces: `run.queued`,
    /// `run.started` (its current attempt) or the terminal one.
    pub fn lifecycle(run: &Run) -> Self {
        let (kind, seq, time) = match run.status {
            RunStatus::Queued => (EventKind::RunQueued, seq::QUEUED, run.created_at),
            RunStatus::Running => (
                EventKind::RunStarted,
                seq::started(run.attempt),
                run.started_at.unwrap_or(run.created_at),
            ),
            RunStatus::Succeeded => (
                EventKind::RunSucceeded,
                seq::terminal(run.attempt),
                run.completed_at.unwrap_or(run.created_at),
            ),
            RunStatus::Failed => (
                EventKind::RunFailed,
                seq::terminal(run.attempt),
                run.completed_at.unwrap_or(run.created_at),
            ),
            RunStatus::Cancelled => (
                EventKind::RunCancelled,
                seq::terminal(run.attempt),
                run.completed_at.unwrap_or(run.created_at),
            ),
        };
        Self::of_run(run, kind, seq, time)
    }

    /// `run.queued` of a run in any state (replays start with it).
    pub fn queued(run: &Run) -> Self {
        let mut e = Self::of_run(run, EventKind::RunQueued, seq::QUEUED, run.created_at);
        if let EventData::Run(s) = &mut e.data {
            // What the run looked like when it was queued.
            *s = RunSummary {
                status: RunStatus::Queued,
                attempt: 0,
                started_at: None,
                completed_at: None,
                duration_ms: None,
                exit_code: None,
                error: None,
                usage: None,
                cancel_reason: None,
                ..s.clone()
            };
        }
        e
    }

    fn of_run(run: &Run, kind: EventKind, seq: u32, time: DateTime<Utc>) -> Self {
        LiveEvent {
            kind,
            id: event_id(&run.id, seq),
            workspace_id: run.workspace_id.clone(),
            agent_id: run.agent_id.clone(),
            run_id: run.id.clone(),
            seq,
            time,
            data: EventData::Run(RunSummary::of(run)),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event serialises")
    }
}

/// Which events a subscriber wants: its workspace's, perhaps only one
/// agent's or one run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub workspace_id: WorkspaceId,
    pub agent_id: Option<AgentId>,
    pub run_id: Option<RunId>,
}

impl Filter {
    pub fn workspace(workspace_id: WorkspaceId) -> Self {
        Filter {
            workspace_id,
            agent_id: None,
            run_id: None,
        }
    }

    pub fn matches(&self, e: &LiveEvent) -> bool {
        e.workspace_id == self.workspace_id
            && self.agent_id.as_ref().is_none_or(|a| *a == e.agent_id)
            && self.run_id.as_ref().is_none_or(|r| *r == e.run_id)
    }

    /// The channel name: `workspace:{workspaceId}`.
    pub fn channel(&self) -> String {
        format!("workspace:{}", self.workspace_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip_and_refuse_what_is_not_one() {
        let run = RunId::parse("run_01jabc").unwrap();
        let id = event_id(&run, 10_003);
        assert_eq!(id, "run_01jabc:10003");
        assert_eq!(parse_event_id(&id), Some((run, 10_003)));
        for bad in [
            "",
            "run_01jabc",
            "run_01jabc:",
            "run_01jabc:x",
            ":5",
            "../x:1",
            "run_a:-1",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_filter_narrows_by_workspace_agent_and_run() {
        let line = LogLine {
            run_id: RunId::parse("run_1").unwrap(),
            agent_id: AgentId::parse("agt_1").unwrap(),
            seq: 10_001,
            timestamp: Utc::now(),
            stream: "output".into(),
            level: "info".into(),
            message: "hi".into(),
            expires_at: None,
        };
        let ws = WorkspaceId::parse("ws_1").unwrap();
        let e = LiveEvent::log(&ws, &line);
        let mut f = Filter::workspace(ws.clone());
        assert!(f.matches(&e));
        f.agent_id = AgentId::parse("agt_2");
        assert!(!f.matches(&e));
        f.agent_id = AgentId::parse("agt_1");
        f.run_id = RunId::parse("run_1");
        assert!(f.matches(&e));
        assert!(!Filter::workspace(WorkspaceId::parse("ws_2").unwrap()).matches(&e));
        let json: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(json["type"], "agent.log");
        assert_eq!(json["data"]["line"], "hi");
        assert_eq!(json["id"], "run_1:10001");
    }
}
