//! What a client missed, read back from the store: a run's events are its
//! stored log lines plus the lifecycle events its record shows, numbered
//! as they were published ([`crate::model::logs::seq`]), so a client that
//! reconnects with the last id it saw gets exactly the rest of that run.
//!
//! A resume point names a run. For an agent or a workspace it also brings
//! the other runs of that scope back from the moment of that event: those
//! created since, and those created up to [`RESUME_WINDOW`] before it
//! (a run created earlier and still writing is not looked for).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Filter, LiveEvent};
use crate::app::App;
use crate::error::Error;
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::model::{Agent, LogLine, Run};
use crate::repo::Repo;

/// How far before the resume point a broad replay looks for runs that may
/// have written since: the longest a run can take (840 s) and a margin.
pub const RESUME_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Events one replay returns at most (the rest: resume again from the last).
pub const MAX_REPLAY: usize = 10_000;

/// Replays one workspace may have running at once in this process; more
/// wait their turn, so one tenant's resumes cannot take every core from
/// the others' triggers.
pub const MAX_REPLAYS_PER_WORKSPACE: usize = 4;

/// Where replays wait for their workspace's turn ([`App::replays`]).
#[derive(Default)]
pub struct ReplayGate(Mutex<HashMap<WorkspaceId, Arc<Semaphore>>>);

impl ReplayGate {
    /// A turn for a replay of `workspace`, held until dropped.
    pub async fn enter(&self, workspace: &WorkspaceId) -> OwnedSemaphorePermit {
        let turns = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(workspace.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_REPLAYS_PER_WORKSPACE)))
                .clone()
        };
        turns
            .acquire_owned()
            .await
            .expect("a replay gate's semaphore is never closed")
    }
}

/// Agents of a workspace a broad replay looks at.
const MAX_AGENTS: usize = 100;
/// Recent runs of each agent a broad replay looks at.
const MAX_RUNS_PER_AGENT: usize = 50;

/// Every stored event of `run` after `after` (all of them without), in order.
pub async fn run_events(app: &App, run: &Run, after: Option<u32>) -> Result<Vec<LiveEvent>, Error> {
    let mut events = vec![LiveEvent::queued(run)];
    // The current attempt's start (earlier attempts' starts show in their
    // start lines only).
    if run.started_at.is_some() && run.attempt > 0 {
        let mut started = run.clone();
        started.status = crate::model::RunStatus::Running;
        started.completed_at = None;
        started.duration_ms = None;
        started.exit_code = None;
        started.error = None;
        events.push(LiveEvent::lifecycle(&started));
    }
    let mut cursor = None;
    loop {
        let page = app
            .repo
            .logs(&run.agent_id, Some(&run.id), 100, cursor)
            .await?;
        events.extend(
            page.data
                .iter()
                .map(|l: &LogLine| LiveEvent::log(&run.workspace_id, l)),
        );
        cursor = page.next_cursor;
        if cursor.is_none() || events.len() >= MAX_REPLAY {
            break;
        }
    }
    if run.status.is_terminal() {
        events.push(LiveEvent::lifecycle(run));
    }
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    if let Some(after) = after {
        events.retain(|e| e.seq > after);
    }
    events.truncate(MAX_REPLAY);
    Ok(events)
}

/// What a subscriber of `filter` missed since the event `last` (its
/// `{run_id}:{seq}`), oldest first. A run-scoped filter without a resume
/// point gets the run's whole history; broader ones get nothing (they
/// start live). A resume point outside the filter's scope is ignored.
pub async fn since(
    app: &App,
    filter: &Filter,
    last: Option<(RunId, u32)>,
) -> Result<Vec<LiveEvent>, Error> {
    let _turn = app.replays.enter(&filter.workspace_id).await;
    if let Some(run_id) = &filter.run_id {
        let Some(run) = find_run(app, filter, run_id).await? else {
            return Ok(vec![]);
        };
        let after = last.filter(|(r, _)| r == run_id).map(|(_, s)| s);
        return run_events(app, &run, after).await;
    }
    let Some((run_id, after)) = last else {
        return Ok(vec![]);
    };
    let Some(cursor_run) = find_run(app, filter, &run_id).await? else {
        return Ok(vec![]);
    };
    let all = run_events(app, &cursor_run, None).await?;
    let from = all
        .iter()
        .find(|e| e.seq == after)
        .map_or(cursor_run.created_at, |e| e.time);
    let mut runs: Vec<Vec<Timed>> = vec![in_run_order(all)
        .into_iter()
        .filter(|t| t.event.seq > after)
        .collect()];
    let mut count = runs[0].len();
    let window = chrono::Duration::from_std(RESUME_WINDOW).unwrap_or_default();
    let oldest = from - window;
    'agents: for agent_id in agents_in_scope(app, filter).await? {
        let recent = app
            .repo
            .runs_of_agent(&agent_id, MAX_RUNS_PER_AGENT, None, |r| {
                r.created_at >= oldest && r.id != cursor_run.id
            })
            .await?;
        for run in recent.data {
            // From its first event at or after the resume point on: a
            // suffix of the run, so it never has a hole.
            let rest: Vec<Timed> = in_run_order(run_events(app, &run, None).await?)
                .into_iter()
                .skip_while(|t| t.at < from)
                .collect();
            count += rest.len();
            runs.push(rest);
            if count >= MAX_REPLAY {
                break 'agents;
            }
        }
    }
    // One order across runs: time, then the run, then its own order. A
    // run's events keep their `seq` order whatever times their clocks
    // gave them (the terminal event's time is the run's completion, taken
    // before its outcome lines were written).
    let mut events: Vec<Timed> = runs.into_iter().flatten().collect();
    events.sort_by(|a, b| {
        (a.at, a.event.run_id.as_str(), a.event.seq).cmp(&(
            b.at,
            b.event.run_id.as_str(),
            b.event.seq,
        ))
    });
    events.truncate(MAX_REPLAY);
    Ok(events.into_iter().map(|t| t.event).collect())
}

/// An event and the time it sorts at among other runs' events.
struct Timed {
    /// The latest time of its run's events up to it: never earlier than
    /// the events before it in its run.
    at: chrono::DateTime<chrono::Utc>,
    event: LiveEvent,
}

/// A run's events (in `seq` order, as [`run_events`] gives them) with
/// times that never go back within the run.
fn in_run_order(events: Vec<LiveEvent>) -> Vec<Timed> {
    let mut latest = None;
    events
        .into_iter()
        .map(|event| {
            let at = latest.map_or(event.time, |l: chrono::DateTime<chrono::Utc>| {
                l.max(event.time)
            });
            latest = Some(at);
            Timed { at, event }
        })
        .collect()
}

/// The run, if it is within the filter's scope.
async fn find_run(app: &App, filter: &Filter, run_id: &RunId) -> Result<Option<Run>, Error> {
    let run = match app
        .repo
        .find::<Run>(&filter.workspace_id, run_id.as_str())
        .await
    {
        Ok(v) => v.record,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(filter
        .agent_id
        .as_ref()
        .is_none_or(|a| *a == run.agent_id)
        .then_some(run))
}

async fn agents_in_scope(app: &App, filter: &Filter) -> Result<Vec<AgentId>, Error> {
    if let Some(agent) = &filter.agent_id {
        return Ok(vec![agent.clone()]);
    }
    let query =
        Repo::gsi_query(Agent::list_partition(&filter.workspace_id), false).limit(MAX_AGENTS);
    let page: crate::repo::Listing<Agent> = app.repo.page(query).await?;
    Ok(page.data.into_iter().map(|a| a.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_workspace_runs_a_bounded_number_of_replays_at_once() {
        let gate = ReplayGate::default();
        let a = WorkspaceId::parse("ws_a").unwrap();
        let b = WorkspaceId::parse("ws_b").unwrap();
        let mut turns = Vec::new();
        for _ in 0..MAX_REPLAYS_PER_WORKSPACE {
            turns.push(gate.enter(&a).await);
        }
        let wait = std::time::Duration::from_millis(50);
        assert!(
            tokio::time::timeout(wait, gate.enter(&a)).await.is_err(),
            "one more waits"
        );
        assert!(
            tokio::time::timeout(wait, gate.enter(&b)).await.is_ok(),
            "another workspace does not"
        );
        turns.pop();
        assert!(tokio::time::timeout(wait, gate.enter(&a)).await.is_ok());
    }
}
