//! Schedules on the embedded store with an injected clock: what the API
//! checks and shows, a fire making exactly one run whatever repeats, the
//! overlap policies, catching up after downtime and after a pause, and the
//! scheduler loop waking at a change.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookrun_core::clock::{Clock, ManualClock};
use hookrun_core::error::Error;
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{Agent, Run, RunStatus, RunnerConfig, Schedule, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::services::schedules::{self, CreateSchedule, UpdateSchedule};
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work::{self, Outcome};
use hookrun_core::{App, Settings};
use serde_json::{json, Value};

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    ws: WorkspaceId,
    agent: Agent,
    /// On AWS, the outbox relay (messages ride on the items written).
    relay: Option<hookrun_core::aws::stream::StreamRelay>,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn fixture(now: &str) -> Fixture {
    let clock = Arc::new(ManualClock::new(at(now)));
    // Runs' messages are received and put back many times here: no
    // dead-lettering.
    let store = SqliteStore::in_memory()
        .unwrap()
        .with_clock(clock.clone())
        .with_max_receives(1000);
    let app = App::embedded(store, Settings::default());
    fixture_on(app, clock).await
}

/// The same on the local AWS emulator (its queue keeps real time; the
/// schedules' clock is the injected one).
async fn aws_fixture(now: &str) -> Fixture {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    let clock = Arc::new(ManualClock::new(at(now)));
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!(
        "sc-{}",
        hookrun_core::ids::RunId::generate()
            .as_str()
            .replace('_', "-")
    );
    let aws = hookrun_core::aws::provision::provision(&sdk, &prefix)
        .await
        .unwrap();
    let app = hookrun_core::aws::app(&sdk, &aws, Settings::default()).with_clock(clock.clone());
    let relay = hookrun_core::aws::stream::StreamRelay::new(
        &sdk,
        aws.table_name.clone(),
        app.repo.clone(),
        app.queue.clone(),
    );
    let mut f = fixture_on(app, clock).await;
    f.relay = Some(relay);
    f
}

async fn fixture_on(app: App, clock: Arc<ManualClock>) -> Fixture {
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let req = agents::CreateAgent {
        name: "reporter".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let agent = agents::create(&app, &ws, req).await.unwrap().0;
    Fixture {
        app,
        clock,
        ws,
        agent,
        relay: None,
    }
}

fn create_req(f: &Fixture, v: Value) -> CreateSchedule {
    let mut body = json!({"name": "daily report", "agent_id": f.agent.id});
    for (k, val) in v.as_object().unwrap() {
        body[k] = val.clone();
    }
    serde_json::from_value(body).unwrap()
}

async fn schedule(f: &Fixture, v: Value) -> Schedule {
    schedules::create(&f.app, &f.ws, create_req(f, v))
        .await
        .unwrap()
}

async fn stored(f: &Fixture, s: &Schedule) -> Schedule {
    f.app
        .repo
        .get::<Schedule>(&s.id)
        .await
        .unwrap()
        .unwrap()
        .record
}

/// Hands every due schedule to `tick` at the clock's now.
async fn tick(f: &Fixture) {
    let now = f.clock.now();
    let (due, _) = schedules::due(&f.app, now, 100).await.unwrap();
    for s in due {
        schedules::tick(&f.app, s, now).await.unwrap();
    }
}

/// The runs-queue messages waiting now, processed: the fires (their
/// bodies are returned) and, when `run` is true, the runs' own messages
/// (else they are left in the queue).
async fn process_fires(f: &Fixture, run: bool) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut seen = 0;
    loop {
        if let Some(relay) = &f.relay {
            relay.drain().await.unwrap();
        }
        let mut held = 0;
        let msgs = f
            .app
            .queue
            .receive(QueueId::Runs, 10, Duration::from_secs(60))
            .await
            .unwrap();
        if msgs.is_empty() {
            return bodies;
        }
        for m in msgs {
            let is_fire = m.body.contains("schedule_id");
            if is_fire || run {
                let outcome = work::process(&f.app, QueueId::Runs, &m.body, None).await;
                assert_eq!(outcome, Outcome::Done, "{}", m.body);
                f.app.queue.delete(QueueId::Runs, &m.receipt).await.unwrap();
                if is_fire {
                    bodies.push(m.body);
                }
            } else {
                // A run's own message: left for later, visible again.
                f.app
                    .queue
                    .change_visibility(QueueId::Runs, &m.receipt, Duration::ZERO)
                    .await
                    .unwrap();
                held += 1;
            }
        }
        if !run && held > 0 && bodies.len() == seen {
            return bodies;
        }
        seen = bodies.len();
    }
}

async fn runs(f: &Fixture) -> Vec<Run> {
    f.app
        .repo
        .runs_of_agent(&f.agent.id, None, 100, None, |_| true)
        .await
        .unwrap()
        .data
}

#[tokio::test]
async fn the_api_checks_and_shows_a_schedule() {
    // Friday 4 December 2026, 10:00 in Berlin.
    let f = fixture("2026-12-04T09:00:00Z").await;
    let s = schedule(
        &f,
        json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin", "payload": {"report": "daily"}}),
    )
    .await;
    let view = schedules::view(&f.app, s.clone(), 5);
    assert_eq!(view.next_fire_times.len(), 5);
    assert_eq!(view.next_fire_times[0].utc, at("2026-12-07T08:00:00.000Z"));
    assert_eq!(view.next_fire_times[0].local, "2026-12-07T09:00:00+01:00");
    assert_eq!(view.overlap, hookrun_core::model::schedule::Overlap::Skip);
    assert_eq!(s.state.next_fire_at, Some(at("2026-12-07T08:00:00.000Z")));

    for (body, field) in [
        (json!({"cron": "61 9 * * *"}), "cron"),
        (json!({"cron": "rate(10 seconds)"}), "cron"),
        (json!({"cron": "0 0 30 2 *"}), "cron"),
        (
            json!({"cron": "0 9 * * *", "timezone": "Berlin"}),
            "timezone",
        ),
        (json!({"cron": "0 9 * * *", "payload": [1]}), "payload"),
        (
            json!({"cron": "0 9 * * *", "trigger_id": "trg_x"}),
            "agent_id",
        ),
    ] {
        let e = schedules::create(&f.app, &f.ws, create_req(&f, body.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field: got, .. } if got == field),
            "{body}: {e:?}"
        );
    }
    assert!(serde_json::from_value::<CreateSchedule>(
        json!({"name": "x", "agent_id": "agt_1", "cron": "0 9 * * *", "overlap": "sometimes"})
    )
    .is_err());

    // Paused: no next fires shown, none due.
    let paused = schedules::set_paused(&f.app, &f.ws, &s.id, true)
        .await
        .unwrap();
    assert!(schedules::view(&f.app, paused, 5)
        .next_fire_times
        .is_empty());
    f.clock.set(at("2026-12-07T08:00:30Z"));
    assert!(schedules::due(&f.app, f.clock.now(), 10)
        .await
        .unwrap()
        .0
        .is_empty());
    // A new expression counts from now.
    let update: UpdateSchedule =
        serde_json::from_value(json!({"cron": "30 18 * * *", "enabled": true})).unwrap();
    let changed = schedules::update(&f.app, &f.ws, &s.id, update)
        .await
        .unwrap();
    assert_eq!(changed.state.next_fire_at, Some(at("2026-12-07T17:30:00Z")));
    schedules::delete(&f.app, &f.ws, &s.id).await.unwrap();
    assert!(matches!(
        schedules::get(&f.app, &f.ws, &s.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_preview_shows_the_fires_a_create_would_make_and_refuses_what_it_refuses() {
    let mut f = fixture("2026-12-04T09:00:00Z").await;
    let fires = schedules::preview(&f.app, "0 9 * * MON-FRI", Some("Europe/Berlin"), 5).unwrap();
    let made = schedule(
        &f,
        json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(fires, schedules::view(&f.app, made, 5).next_fire_times);
    assert_eq!(fires[0].local, "2026-12-07T09:00:00+01:00");
    // No zone: UTC.
    let utc = schedules::preview(&f.app, "@daily", None, 2).unwrap();
    assert_eq!(utc[0].local, "2026-12-05T00:00:00+00:00");

    for (cron, tz, field) in [
        ("61 9 * * *", None, "cron"),
        ("rate(10 seconds)", None, "cron"),
        ("0 0 30 2 *", None, "cron"),
        ("0 9 * * *", Some("Berlin"), "timezone"),
    ] {
        let e = schedules::preview(&f.app, cron, tz, 5).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field: got, .. } if got == field),
            "{cron} {tz:?}: {e:?}"
        );
    }
    // Where EventBridge Scheduler fires, what it cannot express is refused
    // as a create would refuse it (both days restricted).
    assert!(schedules::preview(&f.app, "0 9 1 * MON", None, 5).is_ok());
    f.app = f.app.clone().with_fires(Arc::new(Outside::default()));
    let e = schedules::preview(&f.app, "0 9 1 * MON", None, 5).unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "cron"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_fire_makes_exactly_one_run_whatever_repeats() {
    fires_once(fixture("2026-12-07T07:59:00Z").await).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_a_fire_makes_exactly_one_run_and_downtime_catches_up() {
    fires_once(aws_fixture("2026-12-07T07:59:00Z").await).await;
    catches_up(aws_fixture("2026-12-07T09:30:00Z").await).await;
}

async fn fires_once(f: Fixture) {
    let s = schedule(
        &f,
        json!({"cron": "0 9 * * *", "timezone": "Europe/Berlin", "payload": {"report": "daily"}, "overlap": "allow"}),
    )
    .await;
    tick(&f).await;
    assert!(process_fires(&f, false).await.is_empty(), "not due yet");
    f.clock.set(at("2026-12-07T08:00:05Z"));
    tick(&f).await;
    let fires = process_fires(&f, false).await;
    assert_eq!(fires.len(), 1, "{fires:?}");
    let made = runs(&f).await;
    assert_eq!(made.len(), 1);
    let run = &made[0];
    assert_eq!(run.trigger_type, TriggerType::Schedule);
    assert_eq!(run.control.schedule_id.as_ref(), Some(&s.id));
    assert_eq!(run.input["report"], "daily");
    assert_eq!(run.input["scheduled_time"], "2026-12-07T08:00:00.000Z");
    let after = stored(&f, &s).await;
    assert_eq!(after.state.last_run_id.as_ref(), Some(&run.id));
    assert_eq!(
        after.state.last_fired_at,
        Some(at("2026-12-07T08:00:00.000Z"))
    );
    assert_eq!(
        after.state.next_fire_at,
        Some(at("2026-12-08T08:00:00.000Z"))
    );

    // The same fire again (a redelivered message, EventBridge's retry):
    // nothing more.
    for _ in 0..2 {
        let outcome = schedules::fire(&f.app, &s.id, at("2026-12-07T08:00:00.000Z")).await;
        assert_eq!(outcome, Outcome::Done);
    }
    tick(&f).await;
    assert_eq!(runs(&f).await.len(), 1, "one run per scheduled time");
    // An unknown schedule's fire is dropped.
    let gone = hookrun_core::ids::ScheduleId::parse("sch_01jx0000000000000000000000").unwrap();
    assert_eq!(
        schedules::fire(&f.app, &gone, at("2026-12-07T08:00:00.000Z")).await,
        Outcome::Done
    );
}

#[tokio::test]
async fn overlap_skips_or_queues_one() {
    let f = fixture("2026-12-07T09:00:30Z").await;
    let skip = schedule(&f, json!({"cron": "*/5 * * * *"})).await;
    let one = schedule(&f, json!({"cron": "*/5 * * * *", "overlap": "queue_one"})).await;
    let allow = schedule(&f, json!({"cron": "*/5 * * * *", "overlap": "allow"})).await;
    // Three fires, five minutes apart, while no run ever starts.
    for minute in ["05", "10", "15"] {
        f.clock.set(at(&format!("2026-12-07T09:{minute}:01Z")));
        tick(&f).await;
        process_fires(&f, false).await;
    }
    let all = runs(&f).await;
    let of = |s: &Schedule| {
        all.iter()
            .filter(|r| r.control.schedule_id.as_ref() == Some(&s.id))
            .count()
    };
    assert_eq!(of(&skip), 1, "skip: the first run is still going");
    assert_eq!(of(&one), 1, "queue_one: one waits already");
    assert_eq!(of(&allow), 3);
    let skipped = stored(&f, &skip).await;
    assert_eq!(skipped.state.skipped_fires, 2);
    assert!(skipped
        .state
        .last_skip_reason
        .as_deref()
        .unwrap()
        .contains("still going"));
    assert_eq!(
        skipped.state.last_skipped_at,
        Some(at("2026-12-07T09:15:00Z"))
    );
    // Queued under one key: a queue_one schedule's runs never overlap.
    let queued = all
        .iter()
        .find(|r| r.control.schedule_id.as_ref() == Some(&one.id))
        .unwrap();
    assert_eq!(
        queued.control.concurrency_key,
        Some(format!("schedule:{}", one.id))
    );
    // Once the run ends, the next fire makes a run again. (The runs'
    // messages, put back at this instant, are visible a moment later.)
    f.clock.advance(chrono::Duration::seconds(1));
    process_fires(&f, true).await;
    let statuses: Vec<_> = runs(&f).await.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == RunStatus::Succeeded),
        "{statuses:?}"
    );
    f.clock.set(at("2026-12-07T09:20:01Z"));
    tick(&f).await;
    process_fires(&f, false).await;
    let all = runs(&f).await;
    assert_eq!(
        all.iter()
            .filter(|r| r.control.schedule_id.as_ref() == Some(&skip.id))
            .count(),
        2
    );
}

#[tokio::test]
async fn after_downtime_the_latest_missed_fire_runs_once_if_recent() {
    catches_up(fixture("2026-12-07T09:30:00Z").await).await;
}

async fn catches_up(f: Fixture) {
    let hourly = schedule(&f, json!({"cron": "0 * * * *", "overlap": "allow"})).await;
    let none = schedule(
        &f,
        json!({"cron": "0 * * * *", "overlap": "allow", "catch_up": "none"}),
    )
    .await;
    let daily = schedule(&f, json!({"cron": "0 10 * * *", "overlap": "allow"})).await;
    // Stopped from 09:30 until 12:20: 10:00, 11:00 and 12:00 were missed.
    f.clock.set(at("2026-12-07T12:20:00Z"));
    tick(&f).await;
    process_fires(&f, false).await;
    let all = runs(&f).await;
    let of = |s: &Schedule| -> Vec<Value> {
        all.iter()
            .filter(|r| r.control.schedule_id.as_ref() == Some(&s.id))
            .map(|r| r.input["scheduled_time"].clone())
            .collect()
    };
    assert_eq!(
        of(&hourly),
        [json!("2026-12-07T12:00:00.000Z")],
        "the latest, once"
    );
    assert!(of(&none).is_empty());
    assert!(of(&daily).is_empty(), "10:00 is more than an hour ago");
    assert_eq!(stored(&f, &none).await.state.skipped_fires, 1);
    assert_eq!(stored(&f, &daily).await.state.skipped_fires, 1);
    for s in [&hourly, &none] {
        assert_eq!(
            stored(&f, s).await.state.next_fire_at,
            Some(at("2026-12-07T13:00:00Z"))
        );
    }
    assert_eq!(
        stored(&f, &daily).await.state.next_fire_at,
        Some(at("2026-12-08T10:00:00Z"))
    );
}

#[tokio::test]
async fn a_resumed_schedule_catches_up_on_the_fire_it_missed_while_paused() {
    let f = fixture("2026-12-07T08:50:00Z").await;
    let s = schedule(&f, json!({"cron": "0 9 * * *", "overlap": "allow"})).await;
    schedules::set_paused(&f.app, &f.ws, &s.id, true)
        .await
        .unwrap();
    f.clock.set(at("2026-12-07T09:20:00Z"));
    tick(&f).await;
    assert!(process_fires(&f, false).await.is_empty(), "paused");
    schedules::set_paused(&f.app, &f.ws, &s.id, false)
        .await
        .unwrap();
    tick(&f).await;
    process_fires(&f, false).await;
    let made = runs(&f).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].input["scheduled_time"], "2026-12-07T09:00:00.000Z");
    assert_eq!(
        stored(&f, &s).await.state.next_fire_at,
        Some(at("2026-12-08T09:00:00Z"))
    );
}

#[tokio::test]
async fn the_scheduler_wakes_when_a_schedule_changes() {
    let f = fixture("2026-12-07T09:00:30Z").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loop_task = tokio::spawn(hookrun_core::scheduler::run_scheduler(
        f.app.clone(),
        stopped,
    ));
    let s = schedule(&f, json!({"cron": "*/5 * * * *"})).await;
    // Time passes (the injected clock): a change wakes the loop, which
    // finds the schedule due.
    f.clock.set(at("2026-12-07T09:05:00Z"));
    f.app.schedules_changed.notify_one();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if stored(&f, &s).await.state.next_fire_at == Some(at("2026-12-07T09:10:00Z")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the loop did not wake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(process_fires(&f, false).await.len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_task)
        .await
        .expect("the loop stops")
        .unwrap();
}

/// An outside scheduler that records what it is asked, or fails.
#[derive(Default)]
struct Outside {
    fail: std::sync::atomic::AtomicBool,
    puts: std::sync::Mutex<Vec<hookrun_core::ports::FireSpec>>,
    removed: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl hookrun_core::ports::FireSource for Outside {
    async fn put(
        &self,
        spec: &hookrun_core::ports::FireSpec,
    ) -> hookrun_core::error::StoreResult<()> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hookrun_core::StoreError::Backend("scheduler down".into()));
        }
        self.puts.lock().unwrap().push(spec.clone());
        Ok(())
    }

    async fn remove(&self, schedule_id: &str) -> hookrun_core::error::StoreResult<()> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hookrun_core::StoreError::Backend("scheduler down".into()));
        }
        self.removed.lock().unwrap().push(schedule_id.to_owned());
        Ok(())
    }

    fn is_external(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn an_outside_scheduler_is_kept_in_step_and_its_failure_changes_nothing() {
    let mut f = fixture("2026-12-07T08:00:00Z").await;
    let outside = Arc::new(Outside::default());
    f.app = f.app.clone().with_fires(outside.clone());
    let fail = |on: bool| outside.fail.store(on, std::sync::atomic::Ordering::SeqCst);

    // Down: a 503, and no schedule was made.
    fail(true);
    let e = schedules::create(
        &f.app,
        &f.ws,
        create_req(
            &f,
            json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}),
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(schedules::list(&f.app, &f.ws, 10, None)
        .await
        .unwrap()
        .data
        .is_empty());

    // Up: made there too, in its syntax.
    fail(false);
    let s = schedule(
        &f,
        json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}),
    )
    .await;
    let put = outside.puts.lock().unwrap().last().cloned().unwrap();
    assert_eq!(put.schedule_id, s.id.as_str());
    assert_eq!(put.expression, "cron(0 9 ? * 2-6 *)");
    assert_eq!(put.timezone, "Europe/Berlin");
    assert!(put.enabled);

    // A failed pause or change leaves the schedule as it was.
    fail(true);
    let e = schedules::set_paused(&f.app, &f.ws, &s.id, true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(stored(&f, &s).await.enabled);
    let update: UpdateSchedule = serde_json::from_value(json!({"cron": "0 10 * * *"})).unwrap();
    assert!(schedules::update(&f.app, &f.ws, &s.id, update)
        .await
        .is_err());
    assert_eq!(stored(&f, &s).await.cron, "0 9 * * 1-5");
    let e = schedules::delete(&f.app, &f.ws, &s.id).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(schedules::get(&f.app, &f.ws, &s.id).await.is_ok());

    // Up again: pause, a change the outside scheduler cannot express,
    // delete.
    fail(false);
    schedules::set_paused(&f.app, &f.ws, &s.id, true)
        .await
        .unwrap();
    assert!(!outside.puts.lock().unwrap().last().unwrap().enabled);
    let update: UpdateSchedule = serde_json::from_value(json!({"cron": "0 9 1 * MON"})).unwrap();
    let e = schedules::update(&f.app, &f.ws, &s.id, update)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "cron"),
        "{e:?}"
    );
    schedules::delete(&f.app, &f.ws, &s.id).await.unwrap();
    assert_eq!(*outside.removed.lock().unwrap(), [s.id.to_string()]);
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_each_schedule_is_an_eventbridge_schedule_kept_in_step() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!(
        "eb-{}",
        hookrun_core::ids::RunId::generate()
            .as_str()
            .replace('_', "-")
    );
    let mut aws = hookrun_core::aws::provision::provision(&sdk, &prefix)
        .await
        .unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    scheduler
        .create_schedule_group()
        .name(&prefix)
        .send()
        .await
        .unwrap();
    aws.scheduler = Some(hookrun_core::config::SchedulerSettings {
        group: prefix.clone(),
        role_arn: "arn:aws:iam::123456789012:role/hookrun-scheduler".into(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:hookrun-runs".into(),
    });
    let clock = Arc::new(ManualClock::new(at("2026-12-07T08:00:00Z")));
    let app = hookrun_core::aws::app(&sdk, &aws, Settings::default()).with_clock(clock.clone());
    let f = fixture_on(app, clock).await;
    let s = schedule(
        &f,
        json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "overlap": "allow"}),
    )
    .await;
    let get = || async {
        scheduler
            .get_schedule()
            .name(s.id.as_str())
            .group_name(&prefix)
            .send()
            .await
    };
    let made = get().await.unwrap();
    assert_eq!(made.schedule_expression(), Some("cron(0 9 ? * 2-6 *)"));
    assert_eq!(made.schedule_expression_timezone(), Some("Europe/Berlin"));
    assert_eq!(
        made.state(),
        Some(&aws_sdk_scheduler::types::ScheduleState::Enabled)
    );
    let target = made.target().unwrap();
    assert_eq!(
        target.arn(),
        "arn:aws:sqs:us-east-1:123456789012:hookrun-runs"
    );
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"schedule_id": s.id, "scheduled_time": "<aws.scheduler.scheduled-time>"})
    );

    schedules::set_paused(&f.app, &f.ws, &s.id, true)
        .await
        .unwrap();
    assert_eq!(
        get().await.unwrap().state(),
        Some(&aws_sdk_scheduler::types::ScheduleState::Disabled)
    );
    let update: UpdateSchedule =
        serde_json::from_value(json!({"cron": "rate(90 minutes)", "enabled": true})).unwrap();
    schedules::update(&f.app, &f.ws, &s.id, update)
        .await
        .unwrap();
    assert_eq!(
        get().await.unwrap().schedule_expression(),
        Some("rate(90 minutes)")
    );

    // The emulator keeps schedules but never fires them: the fire is sent
    // here, as EventBridge Scheduler sends it.
    let body = target
        .input()
        .unwrap()
        .replace("<aws.scheduler.scheduled-time>", "2026-12-07T08:00:00Z");
    f.app
        .queue
        .send(QueueId::Runs, &body, Duration::ZERO)
        .await
        .unwrap();
    let fires = process_fires(&f, false).await;
    assert_eq!(fires.len(), 1, "{fires:?}");
    let made = runs(&f).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].input["scheduled_time"], "2026-12-07T08:00:00.000Z");

    schedules::delete(&f.app, &f.ws, &s.id).await.unwrap();
    let gone = get().await.unwrap_err();
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{gone:?}"
    );
}

#[tokio::test]
async fn schedules_survive_a_restart_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-12-07T08:30:00Z")));
    let open = |clock: Arc<ManualClock>| {
        let store = SqliteStore::open_dir(dir.path())
            .unwrap()
            .with_clock(clock)
            .with_max_receives(1000);
        App::embedded(store, Settings::default())
    };
    let first = fixture_on(open(clock.clone()), clock.clone()).await;
    let s = schedule(&first, json!({"cron": "0 9 * * *", "overlap": "allow"})).await;
    drop(first);
    // Stopped over 09:00; started again at 09:10 with a new process.
    clock.set(at("2026-12-07T09:10:00Z"));
    let app = open(clock.clone());
    let (due, _) = schedules::due(&app, clock.now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "the stored schedule is due");
    for d in due {
        schedules::tick(&app, d, clock.now()).await.unwrap();
    }
    let msgs = app
        .queue
        .receive(QueueId::Runs, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        work::process(&app, QueueId::Runs, &msgs[0].body, None).await,
        Outcome::Done
    );
    let after = app.repo.get::<Schedule>(&s.id).await.unwrap().unwrap();
    assert_eq!(after.state.last_fired_at, Some(at("2026-12-07T09:00:00Z")));
    assert_eq!(after.state.next_fire_at, Some(at("2026-12-08T09:00:00Z")));
}

#[tokio::test]
async fn a_trigger_target_maps_the_payload_or_says_why_not() {
    let f = fixture("2026-12-07T08:59:00Z").await;
    let trigger = |mapping: Value| {
        let req: hookrun_core::services::triggers::CreateTrigger = serde_json::from_value(json!({
            "agent_id": f.agent.id,
            "name": "mapped",
            "input_mapping": mapping,
        }))
        .unwrap();
        let app = f.app.clone();
        let ws = f.ws.clone();
        async move {
            hookrun_core::services::triggers::create(&app, &ws, "key_test", req)
                .await
                .unwrap()
                .0
        }
    };
    let good = trigger(json!({"topic": "/report", "at": "/scheduled_time"})).await;
    let bad = trigger(json!({"repo": {"pointer": "/repo", "required": true}})).await;
    let mapped = schedule(
        &f,
        json!({"agent_id": null, "trigger_id": good.id, "cron": "0 9 * * *", "payload": {"report": "daily"}}),
    )
    .await;
    let refused = schedule(
        &f,
        json!({"agent_id": null, "trigger_id": bad.id, "cron": "0 9 * * *"}),
    )
    .await;
    assert_eq!(mapped.agent_id, f.agent.id, "a trigger's agent");
    f.clock.set(at("2026-12-07T09:00:01Z"));
    tick(&f).await;
    process_fires(&f, false).await;
    let made = runs(&f).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].trigger_id.as_ref(), Some(&good.id));
    assert_eq!(made[0].input["topic"], "daily");
    assert_eq!(made[0].input["at"], "2026-12-07T09:00:00.000Z");
    let skipped = stored(&f, &refused).await;
    assert_eq!(skipped.state.skipped_fires, 1);
    assert!(
        skipped
            .state
            .last_skip_reason
            .as_deref()
            .unwrap()
            .contains("repo"),
        "{:?}",
        skipped.state.last_skip_reason
    );
}

#[tokio::test]
async fn a_workspace_holds_at_most_a_thousand_schedules_and_runs_list_by_schedule() {
    let f = fixture("2026-12-07T08:59:00Z").await;
    let first = schedule(&f, json!({"cron": "0 9 * * *", "overlap": "allow"})).await;
    for _ in 1..hookrun_core::model::schedule::MAX_SCHEDULES_PER_WORKSPACE {
        schedule(&f, json!({"cron": "0 3 * * *", "enabled": false})).await;
    }
    let e = schedules::create(&f.app, &f.ws, create_req(&f, json!({"cron": "0 9 * * *"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("1000")),
        "{e:?}"
    );
    // A fire's run is listed under its schedule (and its trigger type).
    f.clock.set(at("2026-12-07T09:00:01Z"));
    tick(&f).await;
    process_fires(&f, false).await;
    let filter = hookrun_core::services::runs::RunFilter {
        schedule_id: Some(first.id.to_string()),
        trigger_type: Some(TriggerType::Schedule),
        ..Default::default()
    };
    let listed = hookrun_core::services::runs::list(&f.app, &f.ws, None, &filter, 10, None)
        .await
        .unwrap()
        .data;
    assert_eq!(listed.len(), 1);
    let other = hookrun_core::services::runs::RunFilter {
        schedule_id: Some("sch_01jx0000000000000000000000".into()),
        ..Default::default()
    };
    assert!(
        hookrun_core::services::runs::list(&f.app, &f.ws, None, &other, 10, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
}
