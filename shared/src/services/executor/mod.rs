//! Run execution: one runs-queue message (docs/ARCHITECTURE.md, "Run
//! lifecycle").
//!
//! Every state change is a conditional write on the run item's version, so
//! a redelivered message never runs a finished run again and two executors
//! never both start one. While the agent runs, the executor holds one of
//! the workspace's slots ([`lease`]) and renews it; a run whose executor
//! died is taken over once that lease has ended.

mod lease;
mod log;

pub use lease::visibility;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::live::LiveEvent;
use crate::model::run::MAX_STORED_RUN_BYTES;
use crate::model::{Agent, Run, RunStatus};
use crate::repo::Versioned;
use crate::runners::{LineSender, RunOutput, RunRequest, RunnerError, TriggerInfo};
use crate::services::{agents, concurrency, events};
use crate::work::Outcome;
use lease::{Holds, Renewal};
use log::{Phase, RunLog};

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
/// `receipt` is the message's, when its visibility can be extended while
/// the agent runs. A `wake` message only starts a queued run whose turn
/// has come, and is dropped otherwise (the run's own message stays).
pub async fn process(app: &App, run_id: &RunId, wake: bool, receipt: Option<&str>) -> Outcome {
    match process_run(app, run_id, wake, receipt).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(%run_id, error = %e, detail = ?e, "run processing failed; will retry");
            Outcome::RetryAfter(BACKEND_RETRY)
        }
    }
}

async fn process_run(
    app: &App,
    run_id: &RunId,
    wake: bool,
    receipt: Option<&str>,
) -> Result<Outcome, Error> {
    let Some(mut run) = app.repo.get::<Run>(run_id).await? else {
        return Ok(Outcome::Poison(format!("run {run_id} does not exist")));
    };
    if wake && run.status != RunStatus::Queued {
        return Ok(Outcome::Done);
    }
    let now = app.clock.now();
    match run.status {
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled => {
            // Finished (or cancelled before it started), but perhaps not
            // yet announced (the process stopped between the two):
            // announce it (again) now.
            emit_terminal(app, &run).await?;
            return Ok(Outcome::Done);
        }
        RunStatus::Running => {
            if let Some(wait) = lease::held_elsewhere(app, &run).await? {
                // Another executor holds it; look again once its lease ends.
                return Ok(Outcome::Defer(wait));
            }
        }
        RunStatus::Queued => {}
    }

    if run.attempt >= app.settings.max_run_attempts {
        let failure = Failure::Abandoned(run.attempt);
        fail_unstarted(app, &mut run, failure).await?;
        return Ok(Outcome::Done);
    }

    let agent = agents::find_any_cached(app, &run.agent_id).await?;
    let agent = match agent {
        Some(a) if a.enabled => a,
        other => {
            let failure = if other.is_some() {
                Failure::AgentDisabled
            } else {
                Failure::AgentDeleted
            };
            fail_unstarted(app, &mut run, failure).await?;
            return Ok(Outcome::Done);
        }
    };

    // A slot of its key value's and of the agent's (each in order, when
    // it has one) and of the workspace: when any holds all it may, the
    // run waits its turn (a new message: waiting is not a failure; a
    // wake message is dropped, the run's own comes back).
    let mut holds = match Holds::take(app, &run, &agent).await? {
        Ok(holds) => holds,
        Err(waiting) => {
            if waiting == lease::Waiting::InLine {
                // It joined a line. Should the run have moved on meanwhile
                // (cancelled, or started through its other message), that
                // place would hold up the runs behind it: leave again.
                if let Some(now) = app.repo.get::<Run>(&run.id).await? {
                    if now.status != RunStatus::Queued {
                        lease::leave_lines(app, &now, false).await;
                        return Ok(match now.status {
                            RunStatus::Running if !wake => Outcome::Defer(
                                lease::held_elsewhere(app, &now)
                                    .await?
                                    .unwrap_or(lease::LINE_WAIT),
                            ),
                            _ => Outcome::Done,
                        });
                    }
                }
            }
            return Ok(if wake {
                Outcome::Done
            } else {
                Outcome::Defer(waiting.delay())
            });
        }
    };
    let acquired = tokio::time::Instant::now();
    // queued (or running with an expired lease) → running, conditionally.
    let timeout = Duration::from_secs(run.timeout_seconds);
    run.status = RunStatus::Running;
    run.attempt += 1;
    run.started_at = Some(now);
    run.usage = None;
    run.slot = Some(holds.workspace.index);
    run.lease_expires_at = chrono::DateTime::from_timestamp(holds.workspace.expires_at, 0);
    if !app.repo.try_save(&mut run).await? {
        // Someone else changed it first: look at it again shortly.
        holds.release(app).await;
        return Ok(Outcome::RetryAfter(Duration::from_secs(1)));
    }
    if let Some(receipt) = receipt {
        // From now on the message reappears one lease after a crash, not
        // after the queue's own (longer) visibility timeout.
        let _ = app
            .queue
            .change_visibility(crate::ports::QueueId::Runs, receipt, lease::visibility(app))
            .await;
    }
    // On AWS the ingress function posts nothing before its 202: the
    // executor announces `run.queued` with the start (same id, so a client
    // that also saw it elsewhere sees it once).
    let mut started = vec![LiveEvent::lifecycle(&run)];
    if !app.live.is_local() && run.attempt == 1 {
        started.insert(0, LiveEvent::queued(&run));
    }
    app.live.publish(started).await;
    let mut log = RunLog::new(app, &run, Phase::Start);
    let retry_of = match &run.control.retry_of {
        Some(original) => format!(", retry of {original}"),
        None => String::new(),
    };
    log.system(
        "info",
        format!(
            "run started (attempt {}, agent {} v{}, runner {}{retry_of})",
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
    let held = execute_held(app, &agent, &run, timeout, &mut holds, receipt, acquired).await;
    let (result, streamed) = match held {
        Held::Finished(result, streamed) => (result, streamed),
        Held::Lost => {
            // Another executor holds the run now. The message stays: its
            // next receive defers to that holder, or takes the run over
            // should the holder be gone by then.
            tracing::warn!(run_id = %run.id, "lost the run's lease to another executor; dropping this attempt");
            // The agent's and the key's slots are still this attempt's:
            // the new holder takes its own.
            holds.release_lined(app).await;
            return Ok(Outcome::RetryAfter(Duration::from_secs(1)));
        }
        Held::Cancelled => {
            // The cancel is stored (and announced by whoever made it); the
            // runner is dropped, its call abandoned.
            let mut log = RunLog::new(app, &run, Phase::Cancel);
            log.skip(1);
            log.system(
                "info",
                format!(
                    "runner stopped after {} ms: the run was cancelled",
                    started.elapsed().as_millis()
                ),
            );
            log.flush().await;
            holds.release(app).await;
            announce_stored(app, &run.id).await?;
            return Ok(Outcome::Done);
        }
    };
    let recorded = finish(
        app,
        &mut run,
        app.clock.now(),
        result.map_err(Failure::Runner),
        started,
        streamed,
    )
    .await?;
    holds.release(app).await;
    if recorded {
        ended(app, &run).await?;
    } else {
        // Cancelled meanwhile, or taken over: what the store says counts.
        announce_stored(app, &run.id).await?;
    }
    Ok(Outcome::Done)
}

/// Fails a run that will not start (again): it leaves any line it waited
/// in (the next run there is woken), and its end is announced.
async fn fail_unstarted(
    app: &App,
    run: &mut Versioned<Run>,
    failure: Failure,
) -> Result<(), Error> {
    let now = app.clock.now();
    if finish(app, run, now, Err(failure), Instant::now(), false).await? {
        lease::leave_lines(app, run, true).await;
        ended(app, run).await
    } else {
        announce_stored(app, &run.id).await
    }
}

/// A run's end is recorded: its key's hold is given up and the end
/// announced.
async fn ended(app: &App, run: &Run) -> Result<(), Error> {
    concurrency::ended(app, run).await;
    emit_terminal(app, run).await
}

/// Takes a queued (now cancelled) run out of every line it waits in.
pub(crate) async fn stop_waiting(app: &App, run: &Run) {
    lease::leave_lines(app, run, true).await;
}

/// Records a stored cancel in the run's log (`message`: who cancelled it)
/// and publishes it with the `run.cancelled` event, for the control
/// service that made it.
pub(crate) async fn note_cancelled(app: &App, run: &Run, message: String) {
    let mut log = RunLog::new(app, run, Phase::Cancel);
    log.system("info", message);
    log.then_publish(LiveEvent::lifecycle(run));
    log.flush().await;
}

/// Announces the run as it is stored, if it is finished (a cancel that won
/// the race with this executor's outcome).
async fn announce_stored(app: &App, run_id: &RunId) -> Result<(), Error> {
    if let Some(stored) = app.repo.get::<Run>(run_id).await? {
        emit_terminal(app, &stored).await?;
    }
    Ok(())
}

/// How holding a run ended.
enum Held {
    /// The runner finished: its result, and whether the agent streamed
    /// lines (then its output is not logged again).
    Finished(Result<RunOutput, RunnerError>, bool),
    /// Another executor holds the run now.
    Lost,
    /// The run was cancelled.
    Cancelled,
}

/// Whether the stored run was cancelled (read at every renewal: how an
/// executor in another process learns of a cancel). A failed read is not
/// a cancel; the next renewal looks again.
async fn cancelled_in_store(app: &App, run_id: &RunId) -> bool {
    matches!(
        app.repo.get::<Run>(run_id).await,
        Ok(Some(r)) if r.status == RunStatus::Cancelled
    )
}

/// Lines a streaming agent's run writes in one go at most.
const STREAM_BATCH: usize = 25;

/// Runs the agent while renewing the slot every third of a lease, counted
/// from when the slot was taken (so slow bookkeeping before the runner
/// starts renews at once), and logs what it streams as it arrives (each
/// batch stored, then published). The runner is dropped (its call
/// abandoned) when the lease is lost or the run is cancelled: at once for
/// a cancel made in this process, else at the next renewal, which reads
/// the run.
async fn execute_held(
    app: &App,
    agent: &Agent,
    run: &Run,
    timeout: Duration,
    holds: &mut Holds,
    receipt: Option<&str>,
    acquired: tokio::time::Instant,
) -> Held {
    let mut cancel = app.cancels.watch(&run.id);
    let (tx, mut rx) = tokio::sync::mpsc::channel(STREAM_BATCH * 4);
    let runner = execute(app, agent, run, timeout, tx);
    tokio::pin!(runner);
    let mut streamed = RunLog::new(app, run, Phase::Stream);
    let period = app.settings.lease / 3;
    let mut renewals = tokio::time::interval_at(acquired + period, period);
    loop {
        tokio::select! {
            // Renewals first: an agent that streams without a pause must
            // not starve its own lease.
            biased;
            _ = renewals.tick() => {
                if holds.renew(app, receipt).await == Renewal::Lost {
                    return Held::Lost;
                }
                if cancelled_in_store(app, &run.id).await {
                    streamed.flush().await;
                    return Held::Cancelled;
                }
            }
            () = cancel.cancelled() => {
                while let Ok(next) = rx.try_recv() {
                    streamed.stream(next);
                }
                streamed.flush().await;
                return Held::Cancelled;
            }
            Some(first) = rx.recv() => {
                streamed.stream(first);
                for _ in 1..STREAM_BATCH {
                    match rx.try_recv() {
                        Ok(next) => streamed.stream(next),
                        Err(_) => break,
                    }
                }
                streamed.flush().await;
            }
            result = &mut runner => {
                while let Ok(next) = rx.try_recv() {
                    streamed.stream(next);
                }
                streamed.flush().await;
                return Held::Finished(result, streamed.count() > 0);
            }
        }
    }
}

/// Hands `run.succeeded` / `run.failed` to the subscriptions once the run
/// is finished. Emitting again (when the message comes back after a crash
/// between the outcome and this) creates nothing twice, since delivery ids
/// are derived from the run, so nothing records that it was done: the
/// outcome is the run's last write.
async fn emit_terminal(app: &App, run: &Run) -> Result<(), Error> {
    if let Some(event) = run.status.terminal_event() {
        events::emit(app, event, run).await?;
    }
    Ok(())
}

async fn execute(
    app: &App,
    agent: &Agent,
    run: &Run,
    timeout: Duration,
    lines: LineSender,
) -> Result<RunOutput, RunnerError> {
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
    let run_it = async {
        // Its credentials opened for this run only.
        let config = |e: Error| RunnerError::Config(e.to_string());
        let runner = agents::opened_runner(app, &agent.runner)
            .await
            .map_err(config)?;
        let signing = agents::signing_secrets(app, agent).await.map_err(config)?;
        app.runners.run(&runner, &req, &signing, lines).await
    };
    match tokio::time::timeout(timeout, run_it).await {
        Ok(result) => result,
        Err(_) => Err(RunnerError::Timeout),
    }
}

/// running → succeeded | failed, conditionally; logs the outcome. A lost
/// condition means another executor took the run over, or the run was
/// cancelled: what is stored wins, and this returns false.
async fn finish(
    app: &App,
    run: &mut Versioned<Run>,
    now: DateTime<Utc>,
    result: Result<RunOutput, Failure>,
    started: Instant,
    streamed: bool,
) -> Result<bool, Error> {
    let elapsed = started.elapsed();
    let mut log = RunLog::new(app, run, Phase::Outcome);
    run.completed_at = Some(now);
    run.lease_expires_at = None;
    run.slot = None;
    if run.started_at.is_some() {
        run.duration_ms = Some(elapsed.as_millis() as u64);
    }
    match result {
        Ok(RunOutput { output, usage }) => {
            run.output = Some(output);
            run.usage = usage;
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
                if !streamed {
                    log.output(run.output.as_ref().expect("just set"));
                }
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
    // The lines first: whoever reads the run finished finds them stored
    // ("Real-time events": a replay reads the run, then its lines). Should
    // another executor have taken the run over, they stay as this
    // attempt's outcome, numbered apart from the next attempt's.
    log.write().await;
    // A transient store error here would re-run the agent once the lease
    // expires; try a few times before giving up on recording the outcome.
    let mut tries = 0;
    loop {
        match app.repo.save(run).await {
            Ok(()) => {
                log.then_publish(LiveEvent::lifecycle(run));
                log.publish().await;
                return Ok(true);
            }
            Err(crate::error::StoreError::ConditionFailed) => {
                tracing::warn!(run_id = %run.id, "run was cancelled or taken over by another executor; dropping this result");
                return Ok(false);
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
