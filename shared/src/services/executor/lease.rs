//! An executor's hold on a run: one of its workspace's slots, taken before
//! the run starts, renewed every third of a lease while the agent runs
//! (with the queue message's visibility alongside), given back when it
//! ends. A crashed executor stops renewing: its slot expires within one
//! lease, its message reappears soon after, and the next executor takes
//! the run over.

use std::collections::HashSet;
use std::time::Duration;

use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::model::concurrency::key_digest;
use crate::model::{Agent, Pool, Run, Slot};
use crate::ports::QueueId;
use crate::repo::Versioned;
use crate::work::{self, Message};

/// How long a runs-queue message stays hidden from the executor that
/// received it: a lease and a margin, extended with every renewal.
pub fn visibility(app: &App) -> Duration {
    app.settings.lease + Duration::from_secs(15)
}

/// How long a run waits when its workspace holds every slot it may.
pub const FAIR_WAIT: Duration = Duration::from_secs(2);

/// How long a run waiting in a line (its key's or its agent's) waits
/// before it looks again: the run ahead of it wakes it when it gives its
/// slot back, so this only bounds the wait when that wake is lost.
pub const LINE_WAIT: Duration = Duration::from_secs(10);

/// Why a run could not take its holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// In a line: it is woken when its turn comes.
    InLine,
    /// For a slot of its workspace.
    ForWorkspace,
}

impl Waiting {
    /// How long until it looks again.
    pub fn delay(self) -> Duration {
        match self {
            Waiting::InLine => LINE_WAIT,
            Waiting::ForWorkspace => FAIR_WAIT,
        }
    }
}

/// How long to wait before looking at a run another executor holds; None
/// when nobody holds it (its lease expired: it may be taken over).
pub async fn held_elsewhere(app: &App, run: &Run) -> Result<Option<Duration>, Error> {
    let now = app.clock.now();
    let until = match run.slot {
        Some(index) => app
            .repo
            .slot(&run.workspace_id, index)
            .await?
            .filter(|s| s.run_id == run.id && s.attempt == run.attempt)
            .and_then(|s| chrono::DateTime::from_timestamp(s.expires_at, 0)),
        // A run started before slots existed: its lease is on the run.
        None => run.lease_expires_at,
    };
    Ok(until
        .filter(|u| *u > now)
        .map(|u| (u - now).to_std().unwrap_or_default() + Duration::from_secs(1)))
}

/// Takes a free slot of the run's workspace for its next attempt; None when
/// the workspace holds as many as it may (or lost every race for one).
pub async fn acquire(app: &App, run: &Run) -> Result<Option<Versioned<Slot>>, Error> {
    let pool = Pool::Workspace(run.workspace_id.clone());
    take_free(app, run, &pool, app.settings.workspace_concurrency).await
}

/// How long a waiting run's place in its agent's line is kept without
/// being renewed (it is renewed every time the run looks again, every
/// [`LINE_WAIT`] at most): a run that stopped waiting (cancelled, its
/// agent changed) holds up the line at most this long.
const WAIT_PLACE: i64 = 30;

/// Takes a slot of a pool with a line (the agent's own,
/// `max_concurrent_runs`, or a concurrency key value's), in order. The
/// run joins the pool's line first (or keeps its place), then
/// takes a free slot only when fewer runs wait before it than there are
/// free slots, and looks again once it holds one: should runs older than
/// it, which joined meanwhile, outnumber the slots still free, it gives
/// the slot back and waits, so two runs handled at the same moment go in
/// the order they came. None when it waits.
pub async fn acquire_in_line(
    app: &App,
    run: &Run,
    pool: Pool,
    cap: u32,
) -> Result<Option<Versioned<Slot>>, Error> {
    let until = app.clock.now().timestamp() + WAIT_PLACE;
    app.repo.wait_for_slot(&pool, &run.id, until).await?;
    let (ahead, free) = line(app, run, &pool, cap).await?;
    if ahead >= free {
        return Ok(None);
    }
    let Some(slot) = take_free(app, run, &pool, cap).await? else {
        return Ok(None);
    };
    let (ahead, free) = line(app, run, &pool, cap).await?;
    if ahead > free {
        // An older run joined meanwhile: the slot is its. It may already
        // have looked and found the slot taken (by this run): wake it.
        release(app, &slot).await;
        wake_next(app, &pool, &run.id).await;
        return Ok(None);
    }
    if let Err(e) = app.repo.stop_waiting(&pool, &run.id).await {
        // Its place expires on its own.
        tracing::warn!(run_id = %run.id, error = %e, "could not leave a line");
    }
    Ok(Some(slot))
}

/// How many runs wait before `run` in `pool`'s line, and how many of its
/// slots are free.
async fn line(app: &App, run: &Run, pool: &Pool, cap: u32) -> Result<(usize, usize), Error> {
    let held = app.repo.live_slots_of(pool).await?.len();
    let ahead = app
        .repo
        .slot_waiters(pool)
        .await?
        .iter()
        .filter(|w| w.as_str() < run.id.as_str())
        .count();
    Ok((ahead, (cap as usize).saturating_sub(held)))
}

/// Takes a free slot of `pool` (at most `cap` held); None when it holds
/// as many as it may, or every race for one was lost.
async fn take_free(
    app: &App,
    run: &Run,
    pool: &Pool,
    cap: u32,
) -> Result<Option<Versioned<Slot>>, Error> {
    for _ in 0..3 {
        let held = app.repo.live_slots_of(pool).await?;
        if held.len() >= cap as usize {
            return Ok(None);
        }
        let taken: HashSet<u32> = held.iter().map(|s| s.index).collect();
        // Start the search at a place of this run's own, so two executors
        // rarely race for the same slot.
        let start = run
            .id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b))
            % cap;
        let Some(index) = (0..cap)
            .map(|i| (start + i) % cap)
            .find(|i| !taken.contains(i))
        else {
            return Ok(None);
        };
        let now = app.clock.now();
        let slot = Slot {
            workspace_id: run.workspace_id.clone(),
            agent_id: pool.agent_id().cloned(),
            key: pool.key_digest().cloned(),
            index,
            run_id: run.id.clone(),
            attempt: run.attempt + 1,
            renewed_at: now,
            expires_at: lease_end(app),
        };
        if let Some(v) = app.repo.take_slot(slot, hold_version()).await? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The first version of a new hold: random, so holds of one slot never
/// share a version (each renewal adds one).
fn hold_version() -> u64 {
    rand::Rng::gen_range(&mut rand::thread_rng(), 1..(1u64 << 62))
}

/// The end of a lease taken now, in whole seconds (rounded up).
fn lease_end(app: &App) -> i64 {
    let end = app.clock.now() + chrono::Duration::from_std(app.settings.lease).unwrap_or_default();
    end.timestamp() + i64::from(end.timestamp_subsec_millis() > 0)
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Held,
    /// Another executor holds the slot now: stop.
    Lost,
}

/// Extends the slot and the message's visibility. A store error keeps the
/// hold as it is (the next renewal tries again). A lost condition is looked
/// into: a slot that merely expired (nobody took it) is taken again, and
/// only a slot somebody else holds means the run is theirs now.
pub async fn renew(app: &App, slot: &mut Versioned<Slot>, receipt: Option<&str>) -> Renewal {
    slot.renewed_at = app.clock.now();
    slot.expires_at = lease_end(app);
    match app.repo.renew_slot(slot).await {
        Ok(true) => {}
        Ok(false) => {
            if reclaim(app, slot).await == Renewal::Lost {
                return Renewal::Lost;
            }
        }
        Err(e) => {
            tracing::warn!(run_id = %slot.run_id, error = %e, "could not renew a run's lease; trying again");
        }
    }
    if let Some(receipt) = receipt {
        if let Err(e) = app
            .queue
            .change_visibility(QueueId::Runs, receipt, visibility(app))
            .await
        {
            tracing::warn!(run_id = %slot.run_id, error = %e, "could not extend the run message's visibility");
        }
    }
    Renewal::Held
}

/// After a failed renewal: takes the slot again when it is free, keeps it
/// when the failed write had in fact landed (the hold is ours), and gives
/// up only when somebody else holds it.
async fn reclaim(app: &App, slot: &mut Versioned<Slot>) -> Renewal {
    match app.repo.slot_of(&slot.pool(), slot.index).await {
        Ok(Some(current)) if current.run_id == slot.run_id && current.attempt == slot.attempt => {
            slot.version = current.version;
            Renewal::Held
        }
        Ok(Some(_)) => Renewal::Lost,
        Ok(None) => match app
            .repo
            .take_slot(slot.record.clone(), hold_version())
            .await
        {
            Ok(Some(v)) => {
                tracing::warn!(run_id = %slot.run_id, "a run's lease lapsed before its renewal; taken again");
                *slot = v;
                Renewal::Held
            }
            Ok(None) => Renewal::Lost,
            // Unknown: keep going, the next renewal looks again.
            Err(_) => Renewal::Held,
        },
        Err(_) => Renewal::Held,
    }
}

/// What an executor holds while it runs a run: a slot of its workspace,
/// one of the agent's when the agent has a cap of its own, and its
/// concurrency key value's when it has one.
pub struct Holds {
    pub workspace: Versioned<Slot>,
    /// The slots of pools with a line: the key's, then the agent's.
    pub lined: Vec<Versioned<Slot>>,
}

/// The pools with a line a run takes a slot of, in the order it takes
/// them, with their caps.
pub fn lines_of(run: &Run, agent: Option<&Agent>) -> Vec<(Pool, u32)> {
    let mut lines = Vec::new();
    if let Some(value) = &run.control.concurrency_key {
        lines.push((
            Pool::Key(
                run.workspace_id.clone(),
                run.agent_id.clone(),
                key_digest(value),
            ),
            1,
        ));
    }
    if let Some(cap) = agent.and_then(|a| a.max_concurrent_runs) {
        lines.push((
            Pool::Agent(run.workspace_id.clone(), run.agent_id.clone()),
            cap,
        ));
    }
    lines
}

impl Holds {
    /// Takes the key's slot, then the agent's (a run waiting its turn in
    /// a line touches nothing of its workspace's), then the workspace's;
    /// Err(why) when any is full (the run waits, holding nothing).
    pub async fn take(
        app: &App,
        run: &Run,
        agent: &Agent,
    ) -> Result<Result<Holds, Waiting>, Error> {
        let mut lined = Vec::new();
        for (pool, cap) in lines_of(run, Some(agent)) {
            match acquire_in_line(app, run, pool, cap).await {
                Ok(Some(slot)) => lined.push(slot),
                other => {
                    for slot in &lined {
                        release(app, slot).await;
                    }
                    return other.map(|_| Err(Waiting::InLine));
                }
            }
        }
        match acquire(app, run).await {
            Ok(Some(workspace)) => Ok(Ok(Holds { workspace, lined })),
            other => {
                for slot in &lined {
                    release(app, slot).await;
                }
                other.map(|_| Err(Waiting::ForWorkspace))
            }
        }
    }

    /// Renews every hold (and the message's visibility, once).
    pub async fn renew(&mut self, app: &App, receipt: Option<&str>) -> Renewal {
        if renew(app, &mut self.workspace, receipt).await == Renewal::Lost {
            return Renewal::Lost;
        }
        for slot in &mut self.lined {
            if renew(app, slot, None).await == Renewal::Lost {
                return Renewal::Lost;
            }
        }
        Renewal::Held
    }

    /// Gives every hold back, and hastens the run next in each line.
    pub async fn release(&self, app: &App) {
        release(app, &self.workspace).await;
        self.release_lined(app).await;
    }

    /// Gives the lined slots back (the workspace's is another executor's
    /// once the run was lost), and hastens the run next in each line.
    pub async fn release_lined(&self, app: &App) {
        for slot in &self.lined {
            release(app, slot).await;
            wake_next(app, &slot.pool(), &slot.run_id).await;
        }
    }
}

/// Sends a `wake` message for the oldest run waiting in `pool`'s line
/// (other than `after`, which just left it), so it starts now rather than
/// when its own message next comes back.
async fn wake_next(app: &App, pool: &Pool, after: &RunId) {
    let next = match app.repo.slot_waiters(pool).await {
        Ok(waiters) => waiters.into_iter().find(|w| w.as_str() != after.as_str()),
        Err(e) => {
            tracing::warn!(error = %e, "could not read a line to wake its next run; it starts when its message comes back");
            return;
        }
    };
    let Some(run_id) = next.as_deref().and_then(RunId::parse) else {
        return;
    };
    let message = Message::Run { run_id, wake: true };
    if let Err(e) = work::send(app, &message, Duration::ZERO).await {
        tracing::warn!(error = %e, "could not wake the next run of a line; it starts when its message comes back");
    }
}

/// Takes a run out of every line it may wait in (a cancelled run: at
/// once, not when its place expires) and, with `wake`, wakes the run next
/// in each: had this run been woken already, that wake was dropped with it.
pub async fn leave_lines(app: &App, run: &Run, wake: bool) {
    let mut pools = lines_of(run, None);
    pools.push((
        Pool::Agent(run.workspace_id.clone(), run.agent_id.clone()),
        0,
    ));
    for (pool, _) in pools {
        if let Err(e) = app.repo.stop_waiting(&pool, &run.id).await {
            tracing::warn!(run_id = %run.id, error = %e, "could not take a cancelled run out of a line; its place expires");
        }
        if wake {
            wake_next(app, &pool, &run.id).await;
        }
    }
}

/// Gives the slot back once the run's outcome is recorded.
pub async fn release(app: &App, slot: &Versioned<Slot>) {
    if let Err(e) = app.repo.release_slot(slot).await {
        tracing::warn!(run_id = %slot.run_id, error = %e, "could not release a run's slot; it expires with its lease");
    }
}
