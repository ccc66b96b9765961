//! A run's log lines, collected during one phase and written in one go,
//! then published as `agent.log` events (after they are stored, so a
//! client that missed one can read it back).

use serde_json::Value;

use crate::app::App;
use crate::ids::WorkspaceId;
use crate::ids::{AgentId, RunId};
use crate::live::LiveEvent;
use crate::message::truncate_utf8;
use crate::model::logs::seq;
use crate::model::{LogLine, Run};

#[derive(PartialEq, Eq)]
pub(super) enum Phase {
    Start,
    /// Lines the agent streams while it runs.
    Stream,
    Outcome,
    /// A cancel's line, then the executor's note that it stopped.
    Cancel,
}

/// Collects a run's log lines and writes them in one go.
pub(super) struct RunLog<'a> {
    app: &'a App,
    run_id: RunId,
    agent_id: AgentId,
    workspace_id: WorkspaceId,
    base: u32,
    /// Lines numbered so far in this phase (written or not).
    count: u32,
    /// At most this many lines in this phase.
    cap: u32,
    lines: Vec<LogLine>,
    /// How many of `lines` are stored (and wait to be published).
    written: usize,
    /// Events to publish after the lines (the terminal event).
    then: Vec<LiveEvent>,
}

/// Output lines kept per run in the log (the full output is on the run).
const MAX_OUTPUT_LINES: usize = 500;
const MAX_LINE_BYTES: usize = 8 * 1024;

impl<'a> RunLog<'a> {
    /// Each attempt numbers its lines in its own range
    /// ([`crate::model::logs::seq`]), so lines of an attempt that was taken
    /// over never collide with the next one's.
    pub(super) fn new(app: &'a App, run: &Run, phase: Phase) -> Self {
        let (base, cap) = match phase {
            Phase::Start => (seq::start_lines(run.attempt), 9),
            Phase::Stream => (seq::streamed_lines(run.attempt), seq::MAX_STREAMED),
            Phase::Outcome => (seq::outcome_lines(run.attempt), 900),
            Phase::Cancel => (seq::cancel_lines(run.attempt), 2),
        };
        RunLog {
            app,
            run_id: run.id.clone(),
            agent_id: run.agent_id.clone(),
            workspace_id: run.workspace_id.clone(),
            base,
            count: 0,
            cap,
            lines: vec![],
            written: 0,
            then: vec![],
        }
    }

    /// Lines this phase numbered so far.
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// Leaves `n` numbers of this phase to another writer (a cancel's
    /// line comes from the control service, the executor's after it).
    pub(super) fn skip(&mut self, n: u32) {
        self.count = (self.count + n).min(self.cap);
    }

    /// Whether this phase has room for another line.
    pub(super) fn has_room(&self) -> bool {
        self.count < self.cap
    }

    /// Publishes `event` after this phase's lines.
    pub(super) fn then_publish(&mut self, event: LiveEvent) {
        self.then.push(event);
    }

    pub(super) fn push(&mut self, stream: &str, level: &str, mut message: String) {
        if !self.has_room() {
            return;
        }
        truncate_utf8(&mut message, MAX_LINE_BYTES);
        let seq = self.base + self.count;
        self.count += 1;
        self.lines.push(LogLine {
            run_id: self.run_id.clone(),
            agent_id: self.agent_id.clone(),
            seq,
            timestamp: self.app.clock.now(),
            stream: stream.into(),
            level: level.into(),
            message,
            expires_at: Some(self.app.retention_expiry()),
        });
    }

    pub(super) fn system(&mut self, level: &str, message: String) {
        self.push("system", level, message);
    }

    /// A line the agent streamed; past the phase's room, one line says
    /// that the rest is not logged.
    pub(super) fn stream(&mut self, line: crate::runners::stream::Streamed) {
        if self.count + 1 == self.cap {
            self.push(
                "system",
                "warn",
                format!("the agent streamed more than {} lines; the rest are not logged (the run's output keeps the last)", self.cap - 1),
            );
        } else {
            self.push("output", &line.level, line.line);
        }
    }

    pub(super) fn output(&mut self, output: &Value) {
        let text = match output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for line in text.lines().take(MAX_OUTPUT_LINES) {
            self.push("output", "info", line.to_owned());
        }
    }

    /// Writes what was collected, then publishes it. Logs are best effort:
    /// a failed log write never fails the run (the lines are published
    /// anyway, so live clients still see them).
    pub(super) async fn flush(&mut self) {
        self.write().await;
        self.publish().await;
    }

    /// Stores the lines collected so far; [`Self::publish`] announces them.
    /// The outcome's lines are stored before the run's terminal state, so
    /// a replay that reads a finished run always finds them (it reads the
    /// run, then its lines).
    pub(super) async fn write(&mut self) {
        let lines = &self.lines[self.written..];
        if let Err(e) = self.app.repo.append_logs(lines).await {
            tracing::warn!(run_id = %self.run_id, error = %e, "could not write run log lines");
        }
        self.written = self.lines.len();
    }

    /// Publishes the lines written so far, then the events queued with
    /// [`Self::then_publish`].
    pub(super) async fn publish(&mut self) {
        let lines: Vec<LogLine> = self.lines.drain(..self.written).collect();
        self.written = 0;
        let mut events: Vec<LiveEvent> = lines
            .iter()
            .map(|l| LiveEvent::log(&self.workspace_id, l))
            .collect();
        events.append(&mut self.then);
        self.app.live.publish(events).await;
    }
}
