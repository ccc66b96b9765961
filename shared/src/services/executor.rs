//! Run execution: one runs-queue message (docs/ARCHITECTURE.md, "Run
//! lifecycle").
//!
//! Every state change is a conditional write on the run item's version, so
//! a redelivered message never runs a finished run again, two executors
//! never both start one, and a run whose executor died is taken over once
//! its lease has expired.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::message::truncate_utf8;
use crate::model::run::MAX_STORED_RUN_BYTES;
use crate::model::{Agent, LogLine, Run, RunStatus};
use crate::repo::Versioned;
use crate::runners::{RunRequest, RunnerError, TriggerInfo};
use crate::services::{agents, events};
use crate::work::Outcome;

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The runner could not complete it (timeout, refused, HTTP error, ...).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("agent was disabled before the run started")]
    AgentDisabled,
    #[error("agent was deleted before the run started")]
    AgentDeleted,
    /// Executors kept stopping while running it.
    #[error("abandoned: the executor stopped {0} times while running it")]
    Abandoned(u32),
    /// The output does not fit a run item.
    #[error("agent output too large to keep ({0} bytes; a run holds at most {MAX_STORED_RUN_BYTES} bytes)")]
    OutputTooLarge(usize),
}

impl Failure {
    /// The exit code recorded on the run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Runner(e) => e.exit_code(),
            Failure::OutputTooLarge(_) => 1,
            Failure::AgentDisabled | Failure::AgentDeleted | Failure::Abandoned(_) => -1,
        }
    }
}

/// How long to wait before looking at a message again after a transient
/// store error.
const BACKEND_RETRY: Duration = Duration::from_secs(5);

/// Executes (or finishes, or announces) the run a runs-queue message names.
pub async fn process(app: &App, run_id: &RunId) -> Outcome {
    match process_run(app, run_id).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(%run_id, error = %e, detail = ?e, "run processing failed; will retry");
            Outcome::RetryAfter(BACKEND_RETRY)
        }
    }
}

async fn process_run(app: &App, run_id: &RunId) -> Result<Outcome, Error> {
    let Some(mut run) = app.repo.get::<Run>(run_id).await? else {
        return Ok(Outcome::Poison(format!("run {run_id} does not exist")));
    };
    let now = app.clock.now();
    match run.status {
        RunStatus::Succeeded | RunStatus::Failed => {
            // Finished, but perhaps not yet announced (the process stopped
            // between the two): announce it now.
            emit_terminal(app, &run.id).await?;
            return Ok(Outcome::Done);
        }
        RunStatus::Running => {
            if let Some(lease) = run.lease_expires_at.filter(|l| *l > now) {
                // Another executor owns it; look again once the lease ends.
                let wait = (lease - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                return Ok(Outcome::RetryAfter(wait));
            }
        }
        RunStatus::Queued => {}
    }

    if run.attempt >= app.settings.max_run_attempts {
        let failure = Failure::Abandoned(run.attempt);
        finish(app, &mut run, now, Err(failure), Instant::now()).await?;
        emit_terminal(app, &run.id).await?;
        return Ok(Outcome::Done);
    }

    let agent = agents::find_any(app, &run.agent_id).await?;
    let agent = match agent {
        Some(a) if a.enabled => a,
        other => {
            let failure = if other.is_some() {
                Failure::AgentDisabled
            } else {
                Failure::AgentDeleted
            };
            finish(app, &mut run, now, Err(failure), Instant::now()).await?;
            emit_terminal(app, &run.id).await?;
            return Ok(Outcome::Done);
        }
    };

    // queued (or running with an expired lease) → running, conditionally.
    let timeout = Duration::from_secs(run.timeout_seconds);
    run.status = RunStatus::Running;
    run.attempt += 1;
    run.started_at = Some(now);
    run.lease_expires_at = Some(
        now + chrono::Duration::from_std(timeout + app.settings.lease_grace).unwrap_or_default(),
    );
    if !app.repo.try_save(&mut run).await? {
        // Someone else changed it first: look at it again shortly.
        return Ok(Outcome::RetryAfter(Duration::from_secs(1)));
    }
    let mut log = RunLog::new(app, &run, Phase::Start);
    log.system(
        "info",
        format!(
            "run started (attempt {}, agent {} v{}, runner {})",
            run.attempt,
            agent.id,
            agent.version,
            agent.runner.kind()
        ),
    );
    log.flush().await;
    // Best effort: a lost run.started is not worth delaying the run for.
    if let Err(e) = events::emit(app, "run.started", &run).await {
        tracing::warn!(run_id = %run.id, error = %e, "could not emit run.started");
    }

    let started = Instant::now();
    let result = execute(app, &agent, &run, timeout)
        .await
        .map_err(Failure::Runner);
    finish(app, &mut run, app.clock.now(), result, started).await?;
    emit_terminal(app, &run.id).await?;
    Ok(Outcome::Done)
}

/// Hands `run.succeeded` / `run.failed` to the subscriptions once the run
/// is finished, then marks it announced. Emitting twice creates nothing twice
/// (delivery ids are derived from the run), so a retry after a failure here
/// is safe.
async fn emit_terminal(app: &App, run_id: &RunId) -> Result<(), Error> {
    let Some(mut run) = app.repo.get::<Run>(run_id).await? else {
        return Ok(());
    };
    if run.events_emitted || !run.status.is_terminal() {
        return Ok(());
    }
    let event = if run.status == RunStatus::Succeeded {
        "run.succeeded"
    } else {
        "run.failed"
    };
    events::emit(app, event, &run).await?;
    run.events_emitted = true;
    // Lost to a concurrent change: whoever changed it announces it too.
    app.repo.try_save(&mut run).await?;
    Ok(())
}

async fn execute(
    app: &App,
    agent: &Agent,
    run: &Run,
    timeout: Duration,
) -> Result<Value, RunnerError> {
    let req = RunRequest {
        run_id: run.id.clone(),
        agent_id: run.agent_id.clone(),
        message: run.message.clone(),
        input: run.input.clone(),
        trigger: TriggerInfo {
            kind: run.trigger_type,
            id: run.trigger_id.clone(),
        },
    };
    match tokio::time::timeout(timeout, app.runners.run(&agent.runner, &req)).await {
        Ok(result) => result,
        Err(_) => Err(RunnerError::Timeout),
    }
}

/// running → succeeded | failed, conditionally; logs the outcome. A lost
/// condition means another executor took the run over: its result wins.
async fn finish(
    app: &App,
    run: &mut Versioned<Run>,
    now: DateTime<Utc>,
    result: Result<Value, Failure>,
    started: Instant,
) -> Result<(), Error> {
    let elapsed = started.elapsed();
    let mut log = RunLog::new(app, run, Phase::Outcome);
    run.completed_at = Some(now);
    run.lease_expires_at = None;
    if run.started_at.is_some() {
        run.duration_ms = Some(elapsed.as_millis() as u64);
    }
    match result {
        Ok(output) => {
            run.output = Some(output);
            if run.stored_size() > MAX_STORED_RUN_BYTES {
                // The run could not be stored with this output (DynamoDB
                // items hold 400 KB): keep the run, fail it, say why.
                let size = run.output.take().map(|o| o.to_string().len()).unwrap_or(0);
                let failure = Failure::OutputTooLarge(size);
                log.system("error", format!("run failed: {failure}"));
                run.status = RunStatus::Failed;
                run.error = Some(failure.to_string());
                run.exit_code = Some(failure.exit_code());
            } else {
                log.output(run.output.as_ref().expect("just set"));
                log.system(
                    "info",
                    format!("run succeeded in {} ms", elapsed.as_millis()),
                );
                run.status = RunStatus::Succeeded;
                run.exit_code = Some(0);
                run.error = None;
            }
        }
        Err(failure) => {
            let detail = match &failure {
                Failure::Runner(RunnerError::Timeout) => {
                    format!("run timed out after {} s", run.timeout_seconds)
                }
                other => other.to_string(),
            };
            log.system("error", format!("run failed: {detail}"));
            tracing::warn!(run_id = %run.id, agent_id = %run.agent_id, error = %detail, "run failed");
            run.status = RunStatus::Failed;
            run.error = Some(failure.to_string());
            run.exit_code = Some(failure.exit_code());
        }
    }
    // A transient store error here would re-run the agent once the lease
    // expires; try a few times before giving up on recording the outcome.
    let mut tries = 0;
    loop {
        match app.repo.save(run).await {
            Ok(()) => {
                log.flush().await;
                return Ok(());
            }
            Err(crate::error::StoreError::ConditionFailed) => {
                tracing::warn!(run_id = %run.id, "run was taken over by another executor; dropping this result");
                return Ok(());
            }
            Err(crate::error::StoreError::Backend(e)) if tries < 3 => {
                tries += 1;
                tracing::warn!(run_id = %run.id, error = %e, tries, "recording the run's outcome failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * tries)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(PartialEq, Eq)]
enum Phase {
    Start,
    Outcome,
}

/// Collects a run's log lines and writes them in one go.
struct RunLog<'a> {
    app: &'a App,
    run_id: RunId,
    agent_id: crate::ids::AgentId,
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
    fn new(app: &'a App, run: &Run, phase: Phase) -> Self {
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

    fn system(&mut self, level: &str, message: String) {
        self.push("system", level, message);
    }

    fn output(&mut self, output: &Value) {
        let text = match output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for line in text.lines().take(MAX_OUTPUT_LINES) {
            self.push("output", "info", line.to_owned());
        }
    }

    /// Logs are best effort: a failed log write never fails the run.
    async fn flush(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        if let Err(e) = self.app.repo.append_logs(&lines).await {
            tracing::warn!(run_id = %self.run_id, error = %e, "could not write run log lines");
        }
    }
}
