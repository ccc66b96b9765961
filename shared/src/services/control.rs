//! Run control: cancelling a run and retrying one.
//!
//! A cancel is a conditional write of the run's terminal state
//! (`cancelled`), so it and the executor's outcome cannot both win: the
//! executor's own write then fails its condition and it drops its result.
//! The executor stops the runner at once when the cancel was made in its
//! process ([`crate::live::cancels`]), else at its next lease renewal,
//! which reads the run. `run.cancelled` goes to the real-time channel and
//! the subscriptions from here, and again (idempotently) from the executor
//! when it next looks at the run, so a crash between the two loses nothing.
//!
//! A retry is a new run with the original's input and message, through the
//! agent's current configuration; it names its original (`retry_of`) and
//! the original lists it (`retries`).

use crate::app::App;
use crate::error::Error;
use crate::ids::{RunId, WorkspaceId};
use crate::model::run::MAX_LISTED_RETRIES;
use crate::model::{Agent, Run, RunStatus};
use crate::services::{agents, concurrency, events, executor, ingress, runs};
use crate::work::Outcome;

/// Exit code of a cancelled run (as a shell reports a command stopped by
/// Ctrl-C).
pub const EXIT_CANCELLED: i32 = 130;

/// Why a run was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelReason {
    /// A cancel call.
    Requested,
    /// This newer run of its concurrency key replaced it.
    Replaced(RunId),
}

impl CancelReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::Replaced(_) => "replaced",
        }
    }

    /// How the run's error and log say it.
    fn describe(&self, by: Option<&str>) -> String {
        match (by, self) {
            (Some(key), _) => format!("by admin key {key}"),
            (None, CancelReason::Replaced(newer)) => format!("(replaced by run {newer})"),
            (None, reason) => format!("({})", reason.as_str()),
        }
    }
}

/// Writes a concurrent change over at most this many times.
const TRIES: usize = 5;

/// Cancels a queued or running run of the workspace. Cancelling a
/// cancelled run answers it as it is; a finished one is a conflict naming
/// its status. `by` is the admin key's id.
pub async fn cancel(
    app: &App,
    workspace_id: &WorkspaceId,
    run_id: &str,
    by: Option<&str>,
    reason: CancelReason,
) -> Result<Run, Error> {
    for _ in 0..TRIES {
        let mut run = app.repo.find::<Run>(workspace_id, run_id).await?;
        match run.status {
            RunStatus::Cancelled => return Ok(run.record),
            RunStatus::Succeeded | RunStatus::Failed => {
                return Err(Error::Conflict(format!(
                    "run {} already {}: only a queued or running run can be cancelled",
                    run.id,
                    run.status.as_str()
                )))
            }
            RunStatus::Queued | RunStatus::Running => {}
        }
        let now = app.clock.now();
        let was = run.status;
        run.status = RunStatus::Cancelled;
        run.completed_at = Some(now);
        if let Some(started) = run.started_at {
            run.duration_ms = Some((now - started).num_milliseconds().max(0) as u64);
        }
        run.exit_code = Some(EXIT_CANCELLED);
        run.error = Some(format!("cancelled {}", reason.describe(by)));
        run.lease_expires_at = None;
        run.control.cancelled_at = Some(now);
        run.control.cancelled_by = by.map(str::to_owned);
        run.control.cancel_reason = Some(reason.as_str().to_owned());
        if let CancelReason::Replaced(newer) = &reason {
            run.control.replaced_by = Some(newer.clone());
        }
        if !app.repo.try_save(&mut run).await? {
            continue;
        }
        let what = if was == RunStatus::Queued {
            "before it started"
        } else {
            "while running"
        };
        let line = format!("run cancelled {what} {}", reason.describe(by));
        executor::note_cancelled(app, &run, line).await;
        app.cancels.signal(&run.id);
        if was == RunStatus::Queued {
            // It may be waiting in its agent's or its key's line: leave
            // them now, not when its place expires.
            executor::stop_waiting(app, &run).await;
        }
        concurrency::ended(app, &run).await;
        // Best effort here: the executor announces it again when it next
        // looks at the run (its message, or its lease renewal).
        if let Err(e) = events::emit(app, "run.cancelled", &run).await {
            tracing::warn!(run_id = %run.id, error = %e, "could not emit run.cancelled now; the executor will");
        }
        return Ok(run.record);
    }
    Err(Error::Conflict(
        "the run kept changing while it was being cancelled; try again".into(),
    ))
}

/// Cancels `victim` as replaced by the newer run `by` of its concurrency
/// key (a runs-queue message the replacing call wrote with its run). A
/// run that ended meanwhile, or is gone, is left as it is.
pub async fn replaced(app: &App, victim: &RunId, by: &RunId) -> Outcome {
    let run = match app.repo.get::<Run>(victim).await {
        Ok(Some(run)) => run,
        Ok(None) => return Outcome::Done,
        Err(e) => {
            tracing::warn!(run_id = %victim, error = %e, "could not read a replaced run; will retry");
            return Outcome::RetryAfter(RETRY);
        }
    };
    if run.status.is_terminal() {
        return Outcome::Done;
    }
    let reason = CancelReason::Replaced(by.clone());
    match cancel(app, &run.workspace_id, victim, None, reason).await {
        Ok(_) => Outcome::Done,
        Err(e) => {
            // Ended meanwhile (a conflict naming its status) or still
            // changing: the next look decides.
            tracing::info!(run_id = %victim, replaced_by = %by, error = %e, "a replaced run could not be cancelled now; looking again");
            Outcome::RetryAfter(RETRY)
        }
    }
}

/// How long a replace that could not be made waits before it is tried
/// again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A new run of a finished run's input and message, through its agent's
/// current configuration.
pub async fn retry(app: &App, workspace_id: &WorkspaceId, run_id: &str) -> Result<Run, Error> {
    let original = app.repo.find::<Run>(workspace_id, run_id).await?.record;
    if !original.status.is_terminal() {
        return Err(Error::Conflict(format!(
            "run {} is {}: only a finished run can be retried",
            original.id,
            original.status.as_str()
        )));
    }
    let agent = agent_of(app, workspace_id, &original).await?;
    let run = retry_of(app, &agent, &original);
    runs::enqueue(app, &run).await?;
    list_retry(app, &original.id, &run.id).await;
    Ok(run)
}

/// The enabled agent a retry of `original` runs through.
async fn agent_of(app: &App, workspace_id: &WorkspaceId, original: &Run) -> Result<Agent, Error> {
    let agent = agents::get(app, workspace_id, &original.agent_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::Conflict(format!(
                "agent {} of run {} no longer exists",
                original.agent_id, original.id
            )),
            other => other,
        })?;
    if !agent.enabled {
        return Err(Error::Conflict(format!(
            "agent {} is disabled: enable it to retry its runs",
            agent.id
        )));
    }
    Ok(agent)
}

/// The run a retry of `original` is (not yet stored).
pub(crate) fn retry_of(app: &App, agent: &Agent, original: &Run) -> Run {
    let mut run = ingress::new_run(
        app,
        agent,
        original.trigger_type,
        original.input.clone(),
        None,
    );
    run.message = original.message.clone();
    run.trigger_id = original.trigger_id.clone();
    run.environment = original.environment;
    run.control.retry_of = Some(original.id.clone());
    // It waits its turn behind the runs of its original's key value.
    run.control.concurrency_key = original.control.concurrency_key.clone();
    run
}

/// Adds `retry` to the original's list (best effort: the retry names its
/// original whatever happens here).
pub(crate) async fn list_retry(app: &App, original: &RunId, retry: &RunId) {
    for _ in 0..TRIES {
        let mut run = match app.repo.get::<Run>(original).await {
            Ok(Some(run)) => run,
            _ => return,
        };
        if run.control.retries.len() >= MAX_LISTED_RETRIES || run.control.retries.contains(retry) {
            return;
        }
        run.control.retries.push(retry.clone());
        match app.repo.try_save(&mut run).await {
            Ok(true) => return,
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(run_id = %original, error = %e, "could not list a retry on its original run");
                return;
            }
        }
    }
}
