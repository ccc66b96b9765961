//! What a client missed, read back from the store: a run's events are its
//! stored log lines plus the lifecycle events its record shows, numbered
//! as they were published ([`crate::model::logs::seq`]), so a client that
//! reconnects with the last id it saw gets exactly the rest of that run.
//!
//! A resume point names a run. For an agent or a workspace it also brings
//! the other runs of that scope back from the moment of that event: those
//! created since, and those created up to [`RESUME_WINDOW`] before it
//! (a run created earlier and still writing is not looked for).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Filter, LiveEvent};
use crate::app::App;
use crate::error::Error;
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::model::logs::seq;
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
/// Log lines read from the store at a time: a replay holds one such page
/// (per run it merges), never a run's whole history.
pub const PAGE: usize = 100;

/// One run's stored events in `seq` order, read a page at a time: its
/// `run.queued`, the current attempt's start, its log lines, and its
/// terminal event once it has one (as its record showed at the start).
pub struct RunEvents {
    run_id: RunId,
    agent_id: AgentId,
    workspace_id: WorkspaceId,
    after: Option<u32>,
    /// The attempt the run's record showed.
    attempt: u32,
    /// The last `seq` given.
    given: Option<u32>,
    /// Lifecycle events not given yet, in `seq` order.
    lifecycle: VecDeque<LiveEvent>,
    /// Where the next page of lines starts; `None` once they are all read.
    cursor: Option<Option<String>>,
}

impl RunEvents {
    /// The events of `run` after `after` (all of them without).
    pub fn new(run: &Run, after: Option<u32>) -> Self {
        RunEvents {
            run_id: run.id.clone(),
            agent_id: run.agent_id.clone(),
            workspace_id: run.workspace_id.clone(),
            after,
            attempt: run.attempt,
            given: None,
            lifecycle: Self::lifecycle_of(run),
            cursor: Some(None),
        }
    }

    /// The lifecycle events a run's record shows, in `seq` order.
    fn lifecycle_of(run: &Run) -> VecDeque<LiveEvent> {
        let mut lifecycle = VecDeque::from([LiveEvent::queued(run)]);
        // The current attempt's start (earlier attempts' starts show in
        // their start lines only).
        if run.started_at.is_some() && run.attempt > 0 {
            let mut started = run.clone();
            started.status = crate::model::RunStatus::Running;
            started.completed_at = None;
            started.duration_ms = None;
            started.exit_code = None;
            started.error = None;
            started.usage = None;
            lifecycle.push_back(LiveEvent::lifecycle(&started));
        }
        if run.status.is_terminal() {
            lifecycle.push_back(LiveEvent::lifecycle(run));
        }
        lifecycle
    }

    /// Lines of an attempt later than the record showed mean the record
    /// was read before that attempt started (its lines are written after
    /// the run's start): read it again, so the attempt's `run.started`,
    /// which a follower would otherwise see live only after these lines
    /// and drop as already passed, is given in its place.
    async fn catch_up(&mut self, app: &App, lines: &[LogLine]) -> Result<(), Error> {
        let newest = lines.iter().map(|l| seq::attempt_of(l.seq)).max();
        if newest.is_none_or(|a| a <= self.attempt) {
            return Ok(());
        }
        if let Some(fresh) = app.repo.get::<Run>(&self.run_id).await? {
            self.attempt = fresh.attempt;
            let given = self.given;
            self.lifecycle = Self::lifecycle_of(&fresh)
                .into_iter()
                .filter(|e| given.is_none_or(|g| e.seq > g))
                .collect();
        }
        Ok(())
    }

    /// The next events (at most one page of lines and the lifecycle events
    /// among them); empty once there are no more.
    pub async fn next_page(&mut self, app: &App) -> Result<Vec<LiveEvent>, Error> {
        loop {
            let Some(cursor) = self.cursor.take() else {
                let rest = std::mem::take(&mut self.lifecycle);
                return Ok(self.keep(rest.into_iter().collect()));
            };
            let page = app
                .repo
                .logs(&self.agent_id, Some(&self.run_id), PAGE, cursor)
                .await?;
            self.cursor = page.next_cursor.map(Some);
            self.catch_up(app, &page.data).await?;
            // Lines come in `seq` order (their sort key); the lifecycle
            // events up to the page's last line go in among them.
            let upto = match (&self.cursor, page.data.last()) {
                (Some(_), Some(last)) => last.seq,
                _ => u32::MAX,
            };
            let mut events: Vec<LiveEvent> = page
                .data
                .iter()
                .map(|l: &LogLine| LiveEvent::log(&self.workspace_id, l))
                .collect();
            while self.lifecycle.front().is_some_and(|e| e.seq <= upto) {
                events.extend(self.lifecycle.pop_front());
            }
            events.sort_by_key(|e| e.seq);
            events.dedup_by_key(|e| e.seq);
            if let Some(last) = events.last() {
                self.given = Some(last.seq);
            }
            let events = self.keep(events);
            if !events.is_empty() || (self.cursor.is_none() && self.lifecycle.is_empty()) {
                return Ok(events);
            }
        }
    }

    fn keep(&self, mut events: Vec<LiveEvent>) -> Vec<LiveEvent> {
        if let Some(after) = self.after {
            events.retain(|e| e.seq > after);
        }
        events
    }
}

/// Every stored event of `run` after `after` (all of them without), in
/// order, at most [`MAX_REPLAY`]: the whole history at once, for callers
/// that want it ([`Replay`] reads it a page at a time).
pub async fn run_events(app: &App, run: &Run, after: Option<u32>) -> Result<Vec<LiveEvent>, Error> {
    let mut events = RunEvents::new(run, after);
    let mut all = Vec::new();
    while all.len() < MAX_REPLAY {
        let page = events.next_page(app).await?;
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    all.truncate(MAX_REPLAY);
    Ok(all)
}

/// What a subscriber of a filter missed, read a page at a time (see
/// [`Replay::start`]): at most [`MAX_REPLAY`] events, each page read while
/// holding one of its workspace's turns ([`ReplayGate`]).
pub struct Replay {
    workspace_id: WorkspaceId,
    source: Source,
    /// Events it may still give.
    left: usize,
}

enum Source {
    Nothing,
    Run(RunEvents),
    Runs(Merge),
}

impl Replay {
    /// What a subscriber of `filter` missed since the event `last` (its
    /// `{run_id}:{seq}`), oldest first. A run-scoped filter without a
    /// resume point gets the run's whole history; broader ones get nothing
    /// (they start live). A resume point outside the filter's scope is
    /// ignored. Finds the runs to read; reads none of their events yet.
    pub async fn start(
        app: &App,
        filter: &Filter,
        last: Option<(RunId, u32)>,
    ) -> Result<Replay, Error> {
        let source = Self::source(app, filter, last).await?;
        Ok(Replay {
            workspace_id: filter.workspace_id.clone(),
            source,
            left: MAX_REPLAY,
        })
    }

    async fn source(
        app: &App,
        filter: &Filter,
        last: Option<(RunId, u32)>,
    ) -> Result<Source, Error> {
        if let Some(run_id) = &filter.run_id {
            let Some(run) = find_run(app, filter, run_id).await? else {
                return Ok(Source::Nothing);
            };
            let after = last.filter(|(r, _)| r == run_id).map(|(_, s)| s);
            return Ok(Source::Run(RunEvents::new(&run, after)));
        }
        let Some((run_id, after)) = last else {
            return Ok(Source::Nothing);
        };
        let Some(cursor_run) = find_run(app, filter, &run_id).await? else {
            return Ok(Source::Nothing);
        };
        let _turn = app.replays.enter(&filter.workspace_id).await;
        let from = event_time(app, &cursor_run, after)
            .await?
            .unwrap_or(cursor_run.created_at);
        let mut lanes = vec![Lane::new(&cursor_run, Some(after), None)];
        let window = chrono::Duration::from_std(RESUME_WINDOW).unwrap_or_default();
        let oldest = from - window;
        for agent_id in agents_in_scope(app, filter).await? {
            let recent = app
                .repo
                .runs_of_agent(&agent_id, None, MAX_RUNS_PER_AGENT, None, |r| {
                    r.created_at >= oldest && r.id != cursor_run.id
                })
                .await?;
            // From its first event at or after the resume point on: a
            // suffix of the run, so it never has a hole.
            lanes.extend(
                recent
                    .data
                    .iter()
                    .map(|run| Lane::new(run, None, Some(from))),
            );
        }
        Ok(Source::Runs(Merge {
            lanes,
            heads: BinaryHeap::new(),
            filled: false,
        }))
    }

    /// The next page of events (at most [`PAGE`] of them); empty once the
    /// replay is over.
    pub async fn next_page(&mut self, app: &App) -> Result<Vec<LiveEvent>, Error> {
        if self.left == 0 {
            return Ok(vec![]);
        }
        let _turn = app.replays.enter(&self.workspace_id).await;
        let mut page = match &mut self.source {
            Source::Nothing => vec![],
            Source::Run(events) => events.next_page(app).await?,
            Source::Runs(merge) => merge.next_page(app, PAGE).await?,
        };
        page.truncate(self.left);
        self.left -= page.len();
        Ok(page)
    }

    /// The whole replay at once.
    pub async fn collect(mut self, app: &App) -> Result<Vec<LiveEvent>, Error> {
        let mut all = Vec::new();
        loop {
            let page = self.next_page(app).await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }
}

/// What a subscriber of `filter` missed since `last`, all at once (see
/// [`Replay::start`]; streams read it a page at a time).
pub async fn since(
    app: &App,
    filter: &Filter,
    last: Option<(RunId, u32)>,
) -> Result<Vec<LiveEvent>, Error> {
    Replay::start(app, filter, last).await?.collect(app).await
}

/// The time of `run`'s event `seq`, read a page at a time.
async fn event_time(
    app: &App,
    run: &Run,
    seq: u32,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    let mut events = RunEvents::new(run, None);
    loop {
        let page = events.next_page(app).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        if last.seq >= seq {
            return Ok(page.iter().find(|e| e.seq == seq).map(|e| e.time));
        }
    }
}

/// The runs of a broad replay merged into one order: time, then the run,
/// then its own order. A run's events keep their `seq` order whatever
/// times their clocks gave them (the terminal event's time is the run's
/// completion, taken before its outcome lines were written). Holds one
/// page of each run at most.
struct Merge {
    lanes: Vec<Lane>,
    /// Each lane's next event, smallest first.
    heads: BinaryHeap<Reverse<(Key, usize)>>,
    filled: bool,
}

type Key = (chrono::DateTime<chrono::Utc>, RunId, u32);

impl Merge {
    async fn next_page(&mut self, app: &App, max: usize) -> Result<Vec<LiveEvent>, Error> {
        if !self.filled {
            for i in 0..self.lanes.len() {
                self.push_head(app, i).await?;
            }
            self.filled = true;
        }
        let mut page = Vec::new();
        while page.len() < max {
            let Some(Reverse((_, i))) = self.heads.pop() else {
                break;
            };
            page.extend(self.lanes[i].ready.pop_front().map(|t| t.event));
            self.push_head(app, i).await?;
        }
        Ok(page)
    }

    async fn push_head(&mut self, app: &App, i: usize) -> Result<(), Error> {
        if let Some(key) = self.lanes[i].head(app).await? {
            self.heads.push(Reverse((key, i)));
        }
        Ok(())
    }
}

/// One run of a [`Merge`].
struct Lane {
    events: RunEvents,
    /// Read and not given yet.
    ready: VecDeque<Timed>,
    /// The latest time of the run's events read so far.
    latest: Option<chrono::DateTime<chrono::Utc>>,
    /// Events up to this number are skipped (the resume point's run).
    after: Option<u32>,
    /// Events before this time are skipped, up to the first at or after it.
    from: Option<chrono::DateTime<chrono::Utc>>,
    done: bool,
}

impl Lane {
    fn new(run: &Run, after: Option<u32>, from: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Lane {
            // All of them: the times of those skipped still count.
            events: RunEvents::new(run, None),
            ready: VecDeque::new(),
            latest: None,
            after,
            from,
            done: false,
        }
    }

    /// The key of its next event (reading a page if it has none ready).
    async fn head(&mut self, app: &App) -> Result<Option<Key>, Error> {
        while self.ready.is_empty() && !self.done {
            let page = self.events.next_page(app).await?;
            self.done = page.is_empty();
            for event in page {
                let at = self.latest.map_or(event.time, |l| l.max(event.time));
                self.latest = Some(at);
                if self.after.is_some_and(|after| event.seq <= after)
                    || self.from.is_some_and(|from| at < from)
                {
                    continue;
                }
                self.from = None;
                self.ready.push_back(Timed { at, event });
            }
        }
        Ok(self
            .ready
            .front()
            .map(|t| (t.at, t.event.run_id.clone(), t.event.seq)))
    }
}

/// An event and the time it sorts at among other runs' events.
struct Timed {
    /// The latest time of its run's events up to it: never earlier than
    /// the events before it in its run.
    at: chrono::DateTime<chrono::Utc>,
    event: LiveEvent,
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
