//! Schedules (docs/ARCHITECTURE.md, "Schedules"): what the management API
//! does with them, what a due schedule does in `hookrun serve`
//! ([`tick`]), and what a fire does wherever it comes from ([`fire`]: a
//! runs-queue message, sent by `hookrun serve`'s scheduler or, on AWS, by
//! EventBridge Scheduler).
//!
//! A fire makes one run per (schedule, scheduled time), whatever repeats:
//! the pair is the run's idempotency key, and the schedule remembers the
//! last scheduled time it handled. The run and the schedule's new state
//! are one write, conditional on the schedule as it was read, so two
//! fires of one schedule handled at once decide one after the other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::error::{Entity, Error, StoreError};
use crate::ids::{ScheduleId, WorkspaceId};
use crate::model::schedule::{
    CatchUp, Overlap, Schedule, ScheduleState, CATCH_UP_WINDOW_SECONDS, MAX_SCHEDULES_PER_WORKSPACE,
};
use crate::model::{Agent, Run, RunStatus, Trigger, TriggerType};
use crate::ports::{Index, Query};
use crate::repo::runs::{dedup_key, Claim};
use crate::repo::{save_op, Listing, Repo, Versioned};
use crate::services::ingress::{self, input};
use crate::services::runs::{self, Enqueued};
use crate::timing::When;
use crate::work::{Message, Outcome};

/// Largest payload a schedule keeps.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// How late a fire may be and still count as on time (not missed).
const ON_TIME_SECONDS: i64 = 60;
/// Times a decision is made again when a concurrent change wins.
const TRIES: usize = 5;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The agent it runs; or give `trigger_id`.
    pub agent_id: Option<String>,
    /// Runs go through this trigger (its input mapping and event filter).
    pub trigger_id: Option<String>,
    /// Five fields (`0 9 * * MON-FRI`, with `L`, `W`, `#`, ranges, steps
    /// and names), `rate(5 minutes)`, or an AWS `cron(0 9 ? * 2-6 *)`.
    #[schema(example = "0 9 * * MON-FRI")]
    pub cron: String,
    /// An IANA time zone (default `UTC`).
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// The run's input, with `scheduled_time` added (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    pub enabled: Option<bool>,
}

/// A fire time, in UTC and in the schedule's zone.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FireTime {
    #[serde(with = "crate::clock::ts")]
    pub utc: DateTime<Utc>,
    /// RFC 3339 with the zone's offset.
    pub local: String,
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub id: ScheduleId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub agent_id: crate::ids::AgentId,
    pub trigger_id: Option<crate::ids::TriggerId>,
    pub cron: String,
    pub timezone: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub enabled: bool,
    /// The next five fires (none while paused).
    pub next_fire_times: Vec<FireTime>,
    /// The scheduled time of the last fire that made a run.
    #[serde(with = "crate::clock::ts::option")]
    pub last_fired_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<crate::ids::RunId>,
    /// Fires that made no run (its previous run still going, or missed
    /// while stopped or paused).
    pub skipped_fires: u64,
    #[serde(with = "crate::clock::ts::option")]
    pub last_skipped_at: Option<DateTime<Utc>>,
    pub last_skip_reason: Option<String>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
}

/// The schedule's timing; a stored schedule always parses (it was checked
/// when saved), else it is reported and never fires.
fn when(s: &Schedule) -> Result<When, Error> {
    When::parse(&s.cron, &s.timezone, s.anchor)
}

/// The schedule as shown, with its next `n` fires.
pub fn view(app: &App, s: Schedule, n: usize) -> ScheduleView {
    let next_fire_times = match (s.enabled, when(&s)) {
        (true, Ok(w)) => w
            .next_n(app.clock.now(), n)
            .into_iter()
            .map(|t| FireTime {
                utc: t,
                local: w.local(t),
            })
            .collect(),
        _ => Vec::new(),
    };
    ScheduleView {
        id: s.id,
        workspace_id: s.workspace_id,
        name: s.name,
        agent_id: s.agent_id,
        trigger_id: s.trigger_id,
        cron: s.cron,
        timezone: s.timezone,
        payload: s.payload,
        overlap: s.overlap,
        catch_up: s.catch_up,
        enabled: s.enabled,
        next_fire_times,
        last_fired_at: s.state.last_fired_at,
        last_run_id: s.state.last_run_id,
        skipped_fires: s.state.skipped_fires,
        last_skipped_at: s.state.last_skipped_at,
        last_skip_reason: s.state.last_skip_reason,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// What a schedule of `cron` in `timezone` (default UTC) would do from
/// now: its next `n` fires. The same checks as a create's (the expression,
/// the zone, a first fire at all, and EventBridge's form where fires come
/// from it), so an expression that previews is one a create takes.
pub fn preview(
    app: &App,
    cron: &str,
    timezone: Option<&str>,
    n: usize,
) -> Result<Vec<FireTime>, Error> {
    let now = app.clock.now();
    let timing = When::parse(cron, timezone.unwrap_or("UTC"), now)?;
    fires_at_all(&timing, cron, now)?;
    if app.fires.is_external() {
        timing.eventbridge_expression()?;
    }
    Ok(timing
        .next_n(now, n)
        .into_iter()
        .map(|t| FireTime {
            utc: t,
            local: timing.local(t),
        })
        .collect())
}

/// The first fire after `now`; an expression that never fires (30
/// February) is refused naming `cron`.
fn fires_at_all(timing: &When, cron: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    timing.next_after(now).ok_or_else(|| {
        Error::invalid(
            "cron",
            format!("cron {cron:?} never fires (no such date in the coming years)"),
        )
    })
}

fn validate_name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(Error::invalid("name", "name must be 1 to 200 characters"));
    }
    Ok(n.to_owned())
}

fn validate_payload(payload: Option<Value>) -> Result<Value, Error> {
    let payload = payload.unwrap_or_else(|| json!({}));
    if !payload.is_object() {
        return Err(Error::invalid("payload", "payload must be a JSON object"));
    }
    if payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(Error::invalid(
            "payload",
            format!("payload must be at most {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    Ok(payload)
}

/// Creates a schedule of an agent, or of a trigger (and so its agent).
pub async fn create(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateSchedule,
) -> Result<Schedule, Error> {
    let name = validate_name(&req.name)?;
    let (agent_id, trigger_id) = match (&req.agent_id, &req.trigger_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(Error::invalid(
                "agent_id",
                "give either agent_id or trigger_id (the schedule's target)",
            ))
        }
        (Some(a), None) => {
            let agent = app.repo.find::<Agent>(workspace_id, a).await?;
            (agent.record.id, None)
        }
        (None, Some(t)) => {
            let trigger = app.repo.find::<Trigger>(workspace_id, t).await?;
            (trigger.record.agent_id, Some(trigger.record.id))
        }
    };
    let now = app.clock.now();
    let timezone = req.timezone.unwrap_or_else(|| "UTC".to_owned());
    let timing = When::parse(&req.cron, &timezone, now)?;
    let next = fires_at_all(&timing, &req.cron, now)?;
    let payload = validate_payload(req.payload)?;
    let held = app
        .repo
        .all::<Schedule>(
            Repo::gsi_query(Schedule::list_partition(workspace_id), false)
                .limit(MAX_SCHEDULES_PER_WORKSPACE),
        )
        .await?
        .len();
    if held >= MAX_SCHEDULES_PER_WORKSPACE {
        return Err(Error::Conflict(format!(
            "the workspace holds {MAX_SCHEDULES_PER_WORKSPACE} schedules, the most it may: delete one first"
        )));
    }
    let enabled = req.enabled.unwrap_or(true);
    let schedule = Schedule {
        id: ScheduleId::generate(),
        workspace_id: workspace_id.clone(),
        name,
        agent_id,
        trigger_id,
        cron: req.cron.trim().to_owned(),
        timezone: timing.timezone_name().to_owned(),
        payload,
        overlap: req.overlap.unwrap_or_default(),
        catch_up: req.catch_up.unwrap_or_default(),
        enabled,
        anchor: now,
        created_at: now,
        updated_at: now,
        state: ScheduleState {
            next_fire_at: Some(next),
            ..Default::default()
        },
    };
    // The outside scheduler first: should the store then fail, its
    // schedule is removed again, and one left behind only sends fires
    // of a schedule that does not exist (dropped).
    put_outside(app, &schedule).await?;
    if let Err(e) = app.repo.create(&schedule).await {
        if let Err(undo) = app.fires.remove(&schedule.id).await {
            tracing::warn!(schedule_id = %schedule.id, error = %undo, "could not remove a scheduler schedule whose creation failed; its fires are dropped");
        }
        return Err(e.into());
    }
    app.schedules_changed.notify_one();
    Ok(schedule)
}

/// The schedule's outside counterpart (EventBridge Scheduler), made or
/// changed; a failure is a `503` and leaves the store as it was.
async fn put_outside(app: &App, s: &Schedule) -> Result<(), Error> {
    if !app.fires.is_external() {
        return Ok(());
    }
    let spec = crate::ports::FireSpec {
        schedule_id: s.id.to_string(),
        expression: when(s)?.eventbridge_expression()?,
        timezone: s.timezone.clone(),
        enabled: s.enabled,
    };
    app.fires.put(&spec).await.map_err(|e| {
        Error::Unavailable(format!(
            "the scheduler did not take the change ({e}); nothing was changed, try again"
        ))
    })
}

pub async fn get(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<Schedule, Error> {
    Ok(app.repo.find::<Schedule>(workspace_id, id).await?.record)
}

pub async fn list(
    app: &App,
    workspace_id: &WorkspaceId,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Schedule>, Error> {
    let query = Repo::gsi_query(Schedule::list_partition(workspace_id), false)
        .limit(limit)
        .after(cursor);
    Ok(app.repo.page(query).await?)
}

pub async fn update(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    req: UpdateSchedule,
) -> Result<Schedule, Error> {
    let mut s = app.repo.find::<Schedule>(workspace_id, id).await?;
    let before = s.record.clone();
    let now = app.clock.now();
    if let Some(n) = &req.name {
        s.name = validate_name(n)?;
    }
    let retimed = req.cron.is_some() || req.timezone.is_some();
    if let Some(c) = &req.cron {
        s.cron = c.trim().to_owned();
    }
    if let Some(tz) = &req.timezone {
        s.timezone = tz.trim().to_owned();
    }
    if retimed {
        // A new expression counts from now (`rate(…)`), and its next fire
        // is the first after now.
        let timing = When::parse(&s.cron, &s.timezone, now)?;
        s.timezone = timing.timezone_name().to_owned();
        s.anchor = now;
        s.state.next_fire_at = Some(fires_at_all(&timing, &s.cron, now)?);
    }
    if req.payload.is_some() {
        s.payload = validate_payload(req.payload)?;
    }
    if let Some(o) = req.overlap {
        s.overlap = o;
    }
    if let Some(c) = req.catch_up {
        s.catch_up = c;
    }
    if let Some(enabled) = req.enabled {
        set_enabled(&mut s, enabled, now)?;
    }
    s.updated_at = now;
    put_outside(app, &s).await?;
    if let Err(e) = app.repo.save(&mut s).await {
        // Put the outside scheduler back as the store still has it.
        if let Err(undo) = put_outside(app, &before).await {
            tracing::warn!(schedule_id = %before.id, error = %undo, "could not put a scheduler schedule back after a failed update");
        }
        return Err(e.into());
    }
    app.schedules_changed.notify_one();
    Ok(s.record)
}

/// Pauses (no fires) or resumes a schedule. A resumed schedule keeps the
/// next fire it had when paused: if that has passed, its catch-up policy
/// decides, as after `hookrun serve` was stopped.
fn set_enabled(s: &mut Schedule, enabled: bool, now: DateTime<Utc>) -> Result<(), Error> {
    if enabled && s.state.next_fire_at.is_none() {
        s.state.next_fire_at = when(s)?.next_after(now);
    }
    s.enabled = enabled;
    Ok(())
}

/// `pause` / `resume`.
pub async fn set_paused(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    paused: bool,
) -> Result<Schedule, Error> {
    update(
        app,
        workspace_id,
        id,
        UpdateSchedule {
            enabled: Some(!paused),
            ..Default::default()
        },
    )
    .await
}

pub async fn delete(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<(), Error> {
    let s = app.repo.find::<Schedule>(workspace_id, id).await?;
    app.fires.remove(&s.id).await.map_err(|e| {
        Error::Unavailable(format!(
            "the scheduler did not remove the schedule ({e}); nothing was deleted, try again"
        ))
    })?;
    match app.repo.delete(&s).await {
        Ok(()) => {
            app.schedules_changed.notify_one();
            Ok(())
        }
        Err(e) => {
            if let Err(undo) = put_outside(app, &s).await {
                tracing::warn!(schedule_id = %s.id, error = %undo, "could not put a scheduler schedule back after a failed delete");
            }
            Err(match e {
                StoreError::ConditionFailed => {
                    Error::Conflict("the schedule changed; retry".into())
                }
                e => e.into(),
            })
        }
    }
}

/// The schedules due at `now` in `hookrun serve` (at most `limit`, the
/// earliest first), and the next fire time after them.
pub async fn due(
    app: &App,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<(Vec<Versioned<Schedule>>, Option<DateTime<Utc>>), Error> {
    let page = app
        .repo
        .page::<Schedule>(Query::partition(Index::Gsi2, Schedule::DUE_PARTITION).limit(limit + 1))
        .await?;
    let mut due = Vec::new();
    let mut next = None;
    for s in page.data {
        match s.state.next_fire_at {
            Some(at) if at <= now && due.len() < limit => {
                // Read again with its version: the index may lag behind a
                // tick that moved it on already.
                if let Some(v) = app.repo.get::<Schedule>(&s.id).await? {
                    if v.enabled && v.state.next_fire_at.is_some_and(|at| at <= now) {
                        due.push(v);
                    }
                }
            }
            Some(at) => {
                next = Some(at);
                break;
            }
            None => {}
        }
    }
    Ok((due, next))
}

/// A due schedule in `hookrun serve`: its fire (on time, or the latest
/// missed one caught up) goes to the runs queue with the schedule's next
/// fire time, in one write; a missed fire not caught up is counted as
/// skipped.
pub async fn tick(app: &App, mut s: Versioned<Schedule>, now: DateTime<Utc>) -> Result<(), Error> {
    for _ in 0..TRIES {
        let Some(next_at) = s.state.next_fire_at.filter(|at| *at <= now && s.enabled) else {
            return Ok(());
        };
        let timing = match when(&s) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(schedule_id = %s.id, error = %e, "a stored schedule does not parse; it will not fire");
                s.state.next_fire_at = None;
                app.repo.try_save(&mut s).await?;
                return Ok(());
            }
        };
        let latest = timing
            .latest_at_or_before(now)
            .filter(|t| *t >= next_at)
            .unwrap_or(next_at);
        let late = (now - latest).num_seconds();
        let fire = if late <= ON_TIME_SECONDS {
            true
        } else {
            s.catch_up == CatchUp::Latest && late < CATCH_UP_WINDOW_SECONDS
        };
        s.state.next_fire_at = timing.next_after(now.max(latest));
        let messages = if fire {
            vec![Message::Fire {
                schedule_id: s.id.clone(),
                scheduled_time: latest,
            }
            .outbox(std::time::Duration::ZERO)]
        } else {
            let why = match s.catch_up {
                CatchUp::None => "catch_up: none".to_owned(),
                CatchUp::Latest => format!("more than {CATCH_UP_WINDOW_SECONDS} s ago"),
            };
            skipped(
                &mut s.state,
                latest,
                format!("missed while hookrun was stopped or the schedule paused ({why})"),
            );
            Vec::new()
        };
        if app.repo.try_save_with_messages(&mut s, messages).await? {
            return Ok(());
        }
        match app.repo.get::<Schedule>(&s.id).await? {
            Some(fresh) => s = fresh,
            None => return Ok(()),
        }
    }
    Err(Error::Conflict("the schedule kept changing".into()))
}

fn skipped(state: &mut ScheduleState, at: DateTime<Utc>, reason: String) {
    state.skipped_fires += 1;
    state.last_skipped_at = Some(at);
    state.last_skip_reason = Some(reason);
}

/// One fire of a schedule (a runs-queue message): a run, unless the
/// schedule is gone or paused, this time was handled already, or the
/// overlap policy skips it.
pub async fn fire(app: &App, id: &ScheduleId, scheduled_time: DateTime<Utc>) -> Outcome {
    match fire_once(app, id, scheduled_time).await {
        Ok(()) => Outcome::Done,
        Err(e @ (Error::NotFound(_) | Error::Invalid { .. } | Error::Forbidden(_))) => {
            tracing::warn!(schedule_id = %id, %scheduled_time, error = %e, "a schedule's fire made no run");
            Outcome::Done
        }
        Err(e) => {
            tracing::warn!(schedule_id = %id, error = %e, "a schedule's fire failed; will retry");
            Outcome::RetryAfter(std::time::Duration::from_secs(5))
        }
    }
}

async fn fire_once(app: &App, id: &ScheduleId, scheduled_time: DateTime<Utc>) -> Result<(), Error> {
    for _ in 0..TRIES {
        let Some(mut s) = app.repo.get::<Schedule>(id).await? else {
            return Ok(());
        };
        if !s.enabled
            || s.state
                .last_handled
                .is_some_and(|last| scheduled_time <= last)
        {
            return Ok(());
        }
        if let Some(reason) = overlapping(app, &s).await? {
            skipped(&mut s.state, scheduled_time, reason);
            s.state.last_handled = Some(scheduled_time);
            if app.repo.try_save(&mut s).await? {
                return Ok(());
            }
            continue;
        }
        let refused = match run_of(app, &s, scheduled_time).await {
            Ok(Some(run)) => Ok(run),
            Ok(None) => Err("the trigger's event filter does not want the payload".to_owned()),
            // The trigger's input mapping refuses the payload: said on the
            // schedule, where its owner looks.
            Err(Error::Invalid { message, .. }) => {
                Err(format!("the trigger refused the payload: {message}"))
            }
            Err(e) => return Err(e),
        };
        let run = match refused {
            Ok(run) => run,
            Err(reason) => {
                s.state.last_handled = Some(scheduled_time);
                skipped(&mut s.state, scheduled_time, reason);
                if app.repo.try_save(&mut s).await? {
                    return Ok(());
                }
                continue;
            }
        };
        s.state.last_handled = Some(scheduled_time);
        s.state.last_fired_at = Some(scheduled_time);
        s.state.last_run_id = Some(run.id.clone());
        let claim = Claim {
            op: save_op(&mut s),
        };
        let dedup = dedup_key(
            &format!("schedule:{}", s.id),
            &scheduled_time.timestamp().to_string(),
            app.clock.now().timestamp() + 24 * 3600,
            &[],
        );
        match runs::enqueue_claiming(app, &run, Some(&dedup), Some(&claim), None).await? {
            Some(Enqueued::New(_) | Enqueued::Repeat(_) | Enqueued::Skipped(_)) => return Ok(()),
            None => continue,
        }
    }
    Err(Error::Conflict(
        "the schedule kept changing while it fired".into(),
    ))
}

/// Why a fire is skipped under the schedule's overlap policy, if it is.
async fn overlapping(app: &App, s: &Schedule) -> Result<Option<String>, Error> {
    let Some(last) = &s.state.last_run_id else {
        return Ok(None);
    };
    let status = app.repo.get::<Run>(last).await?.map(|r| r.status);
    Ok(match (s.overlap, status) {
        (Overlap::Skip, Some(RunStatus::Queued | RunStatus::Running)) => Some(format!(
            "its previous run {last} is still going (overlap: skip)"
        )),
        (Overlap::QueueOne, Some(RunStatus::Queued)) => Some(format!(
            "its previous run {last} is already waiting (overlap: queue_one)"
        )),
        _ => None,
    })
}

/// The run a fire makes: the payload with `scheduled_time`, through the
/// trigger when the schedule has one (None: its event filter does not
/// want it).
async fn run_of(
    app: &App,
    s: &Schedule,
    scheduled_time: DateTime<Utc>,
) -> Result<Option<Run>, Error> {
    let agent = app
        .repo
        .find::<Agent>(&s.workspace_id, &s.agent_id)
        .await?
        .record;
    let mut payload: Map<String, Value> = s.payload.as_object().cloned().unwrap_or_default();
    payload.insert(
        "scheduled_time".into(),
        json!(crate::clock::rfc3339(scheduled_time)),
    );
    let payload = Value::Object(payload);
    let mut run = match &s.trigger_id {
        None => ingress::new_run(app, &agent, TriggerType::Schedule, payload, None),
        Some(t) => {
            let trigger = app
                .repo
                .find::<Trigger>(&s.workspace_id, t)
                .await
                .map_err(|_| Error::NotFound(Entity::Trigger))?
                .record;
            let headers = axum::http::HeaderMap::new();
            if !input::wanted(&trigger, &headers, &payload) {
                return Ok(None);
            }
            let (input, message) = input::map_input(&trigger, payload, None, Some("hookrun"))?;
            let mut run = ingress::new_run(app, &agent, TriggerType::Schedule, input, None);
            run.message = message;
            run.trigger_id = Some(trigger.id.clone());
            run.environment = trigger.environment;
            run
        }
    };
    run.control.schedule_id = Some(s.id.clone());
    if s.overlap == Overlap::QueueOne {
        // Never two at once: the waiting run starts when the one going ends.
        run.control.concurrency_key = Some(format!("schedule:{}", s.id));
    }
    Ok(Some(run))
}
