//! A run's log lines, collected during one phase and written in one go.

use serde_json::Value;

use crate::app::App;
use crate::ids::{AgentId, RunId};
use crate::message::truncate_utf8;
use crate::model::{LogLine, Run};

#[derive(PartialEq, Eq)]
pub(super) enum Phase {
    Start,
    Outcome,
}

/// Collects a run's log lines and writes them in one go.
pub(super) struct RunLog<'a> {
    app: &'a App,
    run_id: RunId,
    agent_id: AgentId,
    base: u32,
    lines: Vec<LogLine>,
}

/// Output lines kept per run in the log (the full output is on the run).
const MAX_OUTPUT_LINES: usize = 500;
const MAX_LINE_BYTES: usize = 8 * 1024;

impl<'a> RunLog<'a> {
    /// Each attempt numbers its lines in its own range (start lines from
    /// `attempt * 10000`, outcome lines from `+ 1000`), so lines of an attempt
    /// that was taken over never collide with the next one's.
    pub(super) fn new(app: &'a App, run: &Run, phase: Phase) -> Self {
        let base = run.attempt * 10_000 + if phase == Phase::Outcome { 1_000 } else { 0 };
        RunLog {
            app,
            run_id: run.id.clone(),
            agent_id: run.agent_id.clone(),
            base,
            lines: vec![],
        }
    }

    fn push(&mut self, stream: &str, level: &str, mut message: String) {
        truncate_utf8(&mut message, MAX_LINE_BYTES);
        let seq = self.base + self.lines.len() as u32;
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

    pub(super) fn output(&mut self, output: &Value) {
        let text = match output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for line in text.lines().take(MAX_OUTPUT_LINES) {
            self.push("output", "info", line.to_owned());
        }
    }

    /// Logs are best effort: a failed log write never fails the run.
    pub(super) async fn flush(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        if let Err(e) = self.app.repo.append_logs(&lines).await {
            tracing::warn!(run_id = %self.run_id, error = %e, "could not write run log lines");
        }
    }
}
