//! The executor's state machine, on the embedded store with a manual clock:
//! redelivery, concurrent executors, lease takeover, failures.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hookrun_core::clock::{Clock, ManualClock};
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{Delivery, Run, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::repo::Versioned;
use hookrun_core::services::{admin, agents, events, ingress, runs, subscriptions};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work::{self, Outcome};
use hookrun_core::{App, Settings};
use serde_json::json;

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    ws: WorkspaceId,
    /// A subscription to every run event, to see what was announced.
    subscription: String,
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
    let mut settings = Settings::default();
    settings.outbound.allow_http = true;
    settings.outbound.allow = vec!["127.0.0.0/8".parse().unwrap()];
    let app = App::embedded(store, settings);
    let boot = admin::bootstrap(&app, None).await.unwrap();
    let sub = serde_json::from_value(json!({
        "name": "all",
        "url": "http://127.0.0.1:9/hook",
        "events": ["run.started", "run.succeeded", "run.failed"],
    }))
    .unwrap();
    let (sub, _) = subscriptions::create(&app, &boot.workspace.id, sub)
        .await
        .unwrap();
    Fixture {
        app,
        clock,
        ws: boot.workspace.id,
        subscription: sub.id.to_string(),
    }
}

/// Whether `event` of `run` was handed to the subscription.
async fn announced(f: &Fixture, run: &Run, event: &str) -> bool {
    let id = events::delivery_id(run.id.as_str(), &f.subscription, event);
    f.app.repo.get::<Delivery>(&id).await.unwrap().is_some()
}

async fn echo_agent(f: &Fixture) -> hookrun_core::model::Agent {
    let req = agents::CreateAgent {
        name: "echo".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create(&f.app, &f.ws, req).await.unwrap().0
}

async fn queued_run(f: &Fixture, agent: &hookrun_core::model::Agent) -> Run {
    let run = ingress::new_run(
        &f.app,
        agent,
        TriggerType::Webhook,
        json!({"event": "e"}),
        None,
    );
    runs::enqueue(&f.app, &run).await.unwrap();
    run
}

fn message(run: &Run) -> String {
    json!({ "run_id": run.id }).to_string()
}

/// One runs-queue message, processed as a consumer would.
async fn process_message(app: &App, body: &str) -> Outcome {
    work::process(app, QueueId::Runs, body, None).await
}

async fn stored(f: &Fixture, run: &Run) -> Versioned<Run> {
    f.app.repo.get::<Run>(&run.id).await.unwrap().unwrap()
}

async fn status(f: &Fixture, run: &Run) -> Run {
    stored(f, run).await.record
}

#[tokio::test]
async fn runs_once_and_redelivery_is_a_no_op() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let done = status(&f, &run).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.attempt, 1);
    assert_eq!(done.exit_code, Some(0));
    assert!(announced(&f, &run, "run.started").await);
    assert!(announced(&f, &run, "run.succeeded").await);
    assert!(done.output.unwrap()["message"]
        .as_str()
        .unwrap()
        .starts_with("Webhook event received:"));

    // A redelivered message finds a finished run and changes nothing.
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let again = status(&f, &run).await;
    assert_eq!(again.attempt, 1);
    assert_eq!(again.completed_at, done.completed_at);
}

#[tokio::test]
async fn a_held_lease_defers_and_an_expired_one_is_taken_over() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    // Simulate an executor that started the run and died.
    let mut r = stored(&f, &run).await;
    r.status = RunStatus::Running;
    r.attempt = 1;
    r.lease_expires_at = Some(f.clock.now() + chrono::Duration::seconds(90));
    f.app.repo.save(&mut r).await.unwrap();

    match process_message(&f.app, &message(&run)).await {
        Outcome::Defer(d) => assert!(
            d >= Duration::from_secs(90) && d <= Duration::from_secs(92),
            "{d:?}"
        ),
        other => panic!("expected a retry while the lease is held, got {other:?}"),
    }
    assert_eq!(status(&f, &run).await.status, RunStatus::Running);

    f.clock.advance(chrono::Duration::seconds(91));
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let taken = status(&f, &run).await;
    assert_eq!(taken.status, RunStatus::Succeeded);
    assert_eq!(taken.attempt, 2, "the takeover is the second attempt");
}

#[tokio::test]
async fn too_many_attempts_fail_the_run() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    let mut r = stored(&f, &run).await;
    r.status = RunStatus::Running;
    r.attempt = 3;
    r.lease_expires_at = Some(f.clock.now() - chrono::Duration::seconds(1));
    f.app.repo.save(&mut r).await.unwrap();
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let failed = status(&f, &run).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(
        announced(&f, &run, "run.failed").await,
        "run.failed is announced"
    );
    assert!(failed.error.unwrap().contains("abandoned"));
}

#[tokio::test]
async fn concurrent_executors_start_a_run_once() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    let msg = message(&run);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (app, msg) = (f.app.clone(), msg.clone());
            tokio::spawn(async move { process_message(&app, &msg).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let done = status(&f, &run).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.attempt, 1, "exactly one executor started it");
    let lines = runs::logs(&f.app, &agent.id, Some(run.id.as_str()), 100, None)
        .await
        .unwrap()
        .data;
    let started = lines
        .iter()
        .filter(|l| l.message.starts_with("run started"))
        .count();
    assert_eq!(started, 1);
}

#[tokio::test]
async fn bad_messages_are_poison() {
    let f = fixture().await;
    assert!(matches!(
        process_message(&f.app, "not json").await,
        Outcome::Poison(_)
    ));
    assert!(matches!(
        process_message(&f.app, r#"{"run_id":"run_nope"}"#).await,
        Outcome::Poison(_)
    ));
}

#[tokio::test]
async fn deleted_or_disabled_agent_fails_the_run() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    agents::update(
        &f.app,
        &f.ws,
        &agent.id,
        agents::UpdateAgent {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let r = status(&f, &run).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(announced(&f, &run, "run.failed").await);
    assert!(r.error.unwrap().contains("disabled"));

    let run2 = queued_run(&f, &agent).await;
    agents::delete(&f.app, &f.ws, &agent.id).await.unwrap();
    assert_eq!(
        process_message(&f.app, &message(&run2)).await,
        Outcome::Done
    );
    assert!(status(&f, &run2).await.error.unwrap().contains("deleted"));
}

#[tokio::test]
async fn a_finished_run_not_yet_announced_is_announced_on_redelivery() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    // As if the process stopped between finishing the run and emitting.
    let mut r = stored(&f, &run).await;
    r.status = RunStatus::Succeeded;
    r.attempt = 1;
    f.app.repo.save(&mut r).await.unwrap();
    assert!(!announced(&f, &run, "run.succeeded").await);
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let after = status(&f, &run).await;
    assert!(announced(&f, &run, "run.succeeded").await);
    assert_eq!(after.attempt, 1, "announcing does not run it again");
}

/// An executor's hold on a run another one started: the run waits (a
/// deferred copy, not a failure) while the holder's slot lease is live, and
/// is taken over once it ends, whatever the run's own timeout.
#[tokio::test]
async fn a_held_slot_defers_and_an_expired_one_is_taken_over() {
    let f = fixture().await;
    let agent = echo_agent(&f).await;
    let run = queued_run(&f, &agent).await;
    // Another executor took slot 3 for this run's first attempt and died.
    let lease = f.app.settings.lease;
    let slot = hookrun_core::model::Slot {
        workspace_id: run.workspace_id.clone(),
        agent_id: None,
        key: None,
        index: 3,
        run_id: run.id.clone(),
        attempt: 1,
        renewed_at: f.clock.now(),
        expires_at: (f.clock.now() + chrono::Duration::from_std(lease).unwrap()).timestamp(),
    };
    f.app.repo.take_slot(slot, 1).await.unwrap().unwrap();
    let mut r = stored(&f, &run).await;
    r.status = RunStatus::Running;
    r.attempt = 1;
    r.slot = Some(3);
    f.app.repo.save(&mut r).await.unwrap();

    match process_message(&f.app, &message(&run)).await {
        Outcome::Defer(d) => assert!(d <= lease + Duration::from_secs(1), "{d:?}"),
        other => panic!("expected to wait for the holder, got {other:?}"),
    }
    assert_eq!(status(&f, &run).await.attempt, 1, "not started twice");

    // One lease later, with no renewal, the run is taken over.
    f.clock
        .advance(chrono::Duration::from_std(lease).unwrap() + chrono::Duration::seconds(1));
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let taken = status(&f, &run).await;
    assert_eq!(taken.status, RunStatus::Succeeded);
    assert_eq!(taken.attempt, 2);
    assert_eq!(taken.slot, None);
    assert!(
        f.app
            .repo
            .live_slots(&run.workspace_id)
            .await
            .unwrap()
            .is_empty(),
        "the slot is given back"
    );
}

/// A workspace at its cap waits its turn; another workspace's run does not.
#[tokio::test]
async fn a_workspace_at_its_cap_waits_and_others_run() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
    let settings = Settings {
        workspace_concurrency: 1,
        ..Settings::default()
    };
    let app = App::embedded(store, settings);
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let f = Fixture {
        app,
        clock,
        ws: ws.clone(),
        subscription: String::new(),
    };
    let agent = echo_agent(&f).await;
    let busy = queued_run(&f, &agent).await;
    // The workspace's only slot is held by a run in progress.
    let slot = hookrun_core::model::Slot {
        workspace_id: ws.clone(),
        agent_id: None,
        key: None,
        index: 0,
        run_id: busy.id.clone(),
        attempt: 1,
        renewed_at: f.clock.now(),
        expires_at: f.clock.now().timestamp() + 30,
    };
    let held = f.app.repo.take_slot(slot, 1).await.unwrap().unwrap();
    let waiting = queued_run(&f, &agent).await;
    assert!(matches!(
        process_message(&f.app, &message(&waiting)).await,
        Outcome::Defer(_)
    ));
    assert_eq!(status(&f, &waiting).await.status, RunStatus::Queued);

    // Another workspace is not held back.
    let (other_ws, _) = admin::create_workspace(&f.app, "other").await.unwrap();
    let req = agents::CreateAgent {
        name: "echo".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (other_agent, _) = agents::create(&f.app, &other_ws.id, req).await.unwrap();
    let other = queued_run(&f, &other_agent).await;
    assert_eq!(
        process_message(&f.app, &message(&other)).await,
        Outcome::Done
    );
    assert_eq!(status(&f, &other).await.status, RunStatus::Succeeded);

    // Once the slot is free, the waiting run goes.
    f.app.repo.release_slot(&held).await.unwrap();
    assert_eq!(
        process_message(&f.app, &message(&waiting)).await,
        Outcome::Done
    );
    assert_eq!(status(&f, &waiting).await.status, RunStatus::Succeeded);
}

/// While a slow agent runs, its executor renews the slot; a second
/// executor meanwhile waits instead of running it again.
#[tokio::test]
async fn the_lease_is_renewed_while_the_agent_runs() {
    let agent_app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(4500)).await;
        axum::Json(json!({"ok": true}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, agent_app).await.unwrap() });

    let settings = Settings {
        lease: Duration::from_secs(6),
        outbound: hookrun_core::outbound::OutboundPolicy {
            allow_http: true,
            allow: hookrun_core::outbound::parse_allowlist("127.0.0.1/32").unwrap(),
            proxy: None,
        },
        ..Settings::default()
    };
    let app = App::embedded(SqliteStore::in_memory().unwrap(), settings);
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let req = agents::CreateAgent {
        name: "slow".into(),
        runner: RunnerConfig::Http { url, headers: None },
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, _) = agents::create(&app, &ws, req).await.unwrap();
    let run = ingress::new_run(&app, &agent, TriggerType::Webhook, json!({}), None);
    runs::enqueue(&app, &run).await.unwrap();

    let first = {
        let (app, body) = (app.clone(), message(&run));
        tokio::spawn(async move { process_message(&app, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let slots = app.repo.live_slots(&ws).await.unwrap();
    assert_eq!(slots.len(), 1);
    assert!(
        slots[0].version >= 2,
        "renewed every lease/3 (2 s): {:?}",
        slots[0]
    );
    assert!(matches!(
        process_message(&app, &message(&run)).await,
        Outcome::Defer(_)
    ));
    assert_eq!(first.await.unwrap(), Outcome::Done);
    let done = app.repo.get::<Run>(&run.id).await.unwrap().unwrap();
    assert_eq!((done.status, done.attempt), (RunStatus::Succeeded, 1));
    assert!(app.repo.live_slots(&ws).await.unwrap().is_empty());
}
