//! Runs: recording and queueing them, reading them back, and their logs.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::model::{LogLine, Run, RunStatus, TriggerType};
use crate::repo::runs::{Claim, DedupKey, Written};
use crate::repo::Listing;
use crate::work::Message;

/// Writes the run as `queued` together with its queue message: when this
/// returns Ok both are durable, when it fails neither is
/// (docs/ARCHITECTURE.md, "Atomic accept").
pub async fn enqueue(app: &App, run: &Run) -> Result<(), Error> {
    enqueue_once(app, run, None).await.map(|_| ())
}

/// What a call that may repeat an earlier one came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new run was written and queued.
    New(RunId),
    /// The idempotency key was seen before: the run the first call made.
    Repeat(RunId),
    /// A run of its concurrency key is going (`on_conflict: skip`): no
    /// new run; the one going.
    Skipped(RunId),
}

impl Enqueued {
    pub fn run_id(&self) -> &RunId {
        match self {
            Enqueued::New(id) | Enqueued::Repeat(id) | Enqueued::Skipped(id) => id,
        }
    }
}

/// [`enqueue`], made idempotent by a dedup key: the run, its message and
/// the key are written in one step, so of any number of concurrent calls
/// with the same key exactly one creates a run; the others get that run's id.
pub async fn enqueue_once(
    app: &App,
    run: &Run,
    dedup: Option<DedupKey>,
) -> Result<Enqueued, Error> {
    enqueue_claiming(app, run, dedup.as_ref(), None, None)
        .await?
        .ok_or_else(|| Error::Internal("a run written without a claim was contended".into()))
}

/// [`enqueue_once`], writing a concurrency key's hold with the run
/// (`crate::services::concurrency`), and another runs-queue message with
/// its own (`also`: a replaced run's cancel): None when the hold was not
/// as claimed (nothing was written; read it again).
pub(crate) async fn enqueue_claiming(
    app: &App,
    run: &Run,
    dedup: Option<&DedupKey>,
    claim: Option<&Claim>,
    also: Option<Message>,
) -> Result<Option<Enqueued>, Error> {
    let mut messages = vec![Message::Run {
        run_id: run.id.clone(),
        wake: false,
    }
    .outbox(Duration::ZERO)];
    messages.extend(also.map(|m| m.outbox(Duration::ZERO)));
    match app.repo.create_run(run, dedup, claim, messages).await? {
        Written::New => {
            // Stored: announce it. (On AWS the ingress function has no
            // fan-out; the relay announces the run as it sends its message.)
            app.live
                .publish(vec![crate::live::LiveEvent::lifecycle(run)])
                .await;
            Ok(Some(Enqueued::New(run.id.clone())))
        }
        Written::Repeat {
            run_id,
            body_sha256,
        } => repeat(dedup, run_id, body_sha256).map(Some),
        Written::Contended => Ok(None),
        Written::Unresolved => Err(Error::Conflict(
            "a call with this idempotency key is being processed; retry".into(),
        )),
    }
}

/// The run an earlier call with this idempotency key made, if there was
/// one (a repeat with another body is refused).
pub(crate) async fn seen(app: &App, dedup: &DedupKey) -> Result<Option<Enqueued>, Error> {
    match app.repo.dedup_seen(dedup).await? {
        Some(Written::Repeat {
            run_id,
            body_sha256,
        }) => repeat(Some(dedup), run_id, body_sha256).map(Some),
        _ => Ok(None),
    }
}

fn repeat(
    dedup: Option<&DedupKey>,
    run_id: RunId,
    body_sha256: Option<String>,
) -> Result<Enqueued, Error> {
    let same_body = match (dedup, body_sha256) {
        (Some(d), Some(first)) => d.body_sha256 == first,
        // A key kept before bodies were hashed: take its word.
        _ => true,
    };
    if !same_body {
        return Err(Error::Unprocessable(
            "this idempotency key was already used with a different request body \
             (keys are kept for 24 hours; send a new key for a new request)"
                .into(),
        ));
    }
    Ok(Enqueued::Repeat(run_id))
}

/// Waits (up to `within`) for a run to leave `queued`, looking at the
/// stored run after 50 ms, then twice as long each time (at most 500 ms
/// apart): about 25 reads in 10 s. Its status then; `queued` if it has not
/// started, or could not be read.
pub async fn wait_started(app: &App, run_id: &RunId, within: Duration) -> RunStatus {
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(50);
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return RunStatus::Queued;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
        match app.repo.get::<Run>(run_id).await {
            Ok(Some(run)) if run.status != RunStatus::Queued => return run.status,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "could not read a run while waiting for its start");
            }
        }
    }
}

/// A run of the workspace; other workspaces' runs are "not found".
pub async fn get(app: &App, workspace_id: &WorkspaceId, run_id: &str) -> Result<Run, Error> {
    Ok(app.repo.find::<Run>(workspace_id, run_id).await?.record)
}

/// Which runs a listing shows.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub trigger_type: Option<TriggerType>,
    /// Any of these (empty: any status).
    pub status: Vec<RunStatus>,
    pub trigger_id: Option<String>,
    pub schedule_id: Option<String>,
    pub concurrency_key: Option<String>,
    /// Made at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Made before this time.
    pub created_before: Option<DateTime<Utc>>,
}

impl RunFilter {
    fn matches(&self, run: &Run) -> bool {
        self.trigger_type.is_none_or(|t| t == run.trigger_type)
            && (self.status.is_empty() || self.status.contains(&run.status))
            && self
                .trigger_id
                .as_deref()
                .is_none_or(|t| run.trigger_id.as_deref() == Some(t))
            && self
                .schedule_id
                .as_deref()
                .is_none_or(|s| run.control.schedule_id.as_deref() == Some(s))
            && self
                .concurrency_key
                .as_deref()
                .is_none_or(|k| run.control.concurrency_key.as_deref() == Some(k))
            && self.created_after.is_none_or(|a| run.created_at >= a)
            && self.created_before.is_none_or(|b| run.created_at < b)
    }

    /// The run ids the time window spans (ids sort by creation), for the
    /// index query; None without a window.
    fn id_range(&self) -> Option<(String, String)> {
        if self.created_after.is_none() && self.created_before.is_none() {
            return None;
        }
        Some(crate::ids::time_range(
            crate::ids::RunId::PREFIX,
            self.created_after,
            self.created_before,
        ))
    }
}

/// An RFC 3339 time given as `field`, if any.
pub fn time_param(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    raw.map(|r| {
        DateTime::parse_from_rfc3339(r.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Error::invalid(
                    field,
                    format!("{field} must be an RFC 3339 time (2026-12-01T00:00:00Z)"),
                )
            })
    })
    .transpose()
}

/// An agent's runs, newest first, filtered, with cursor paging.
pub async fn list_for_agent(
    app: &App,
    agent_id: &AgentId,
    filter: &RunFilter,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Run>, Error> {
    Ok(app
        .repo
        .runs_of_agent(agent_id, filter.id_range(), limit, cursor, |r| {
            filter.matches(r)
        })
        .await?)
}

/// A workspace's runs, newest first, filtered, with cursor paging: from
/// its runs index (`gsi2`), or its agent's when the filter names one (an
/// agent of another workspace has none).
pub async fn list(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: Option<&str>,
    filter: &RunFilter,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Run>, Error> {
    if let Some(agent_id) = agent_id {
        return match crate::services::agents::get(app, workspace_id, agent_id).await {
            Ok(agent) => list_for_agent(app, &agent.id, filter, limit, cursor).await,
            Err(Error::NotFound(_)) => Ok(Listing::empty()),
            Err(e) => Err(e),
        };
    }
    Ok(app
        .repo
        .runs_of_workspace(workspace_id, filter.id_range(), limit, cursor, |r| {
            filter.matches(r)
        })
        .await?)
}

/// An agent's log lines: one run's in order, or all runs' newest first.
/// A run id that cannot be one has no lines.
pub async fn logs(
    app: &App,
    agent_id: &AgentId,
    run_id: Option<&str>,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<LogLine>, Error> {
    let run_id = match run_id {
        Some(raw) => match RunId::parse(raw) {
            Some(id) => Some(id),
            None => return Ok(Listing::empty()),
        },
        None => None,
    };
    Ok(app
        .repo
        .logs(agent_id, run_id.as_ref(), limit, cursor)
        .await?)
}
