//! The executor's state machine, on the embedded store with a manual clock:
//! redelivery, concurrent executors, lease takeover, failures.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hookrun_core::clock::{Clock, ManualClock};
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{Run, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::repo::Versioned;
use hookrun_core::services::{admin, agents, ingress, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work::{self, Outcome};
use hookrun_core::{App, Settings};
use serde_json::json;

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    ws: WorkspaceId,
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
    let app = App::embedded(store, Settings::default());
    let boot = admin::bootstrap(&app, None).await.unwrap();
    Fixture {
        app,
        clock,
        ws: boot.workspace.id,
    }
}

async fn echo_agent(f: &Fixture) -> hookrun_core::model::Agent {
    let req = agents::CreateAgent {
        name: "echo".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: Some(60),
        enabled: None,
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
    work::process(app, QueueId::Runs, body).await
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
    assert!(done.events_emitted);
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
        Outcome::RetryAfter(d) => assert!(
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
    assert!(failed.events_emitted, "run.failed is announced");
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
    let (lines, _) = runs::logs(&f.app, &agent.id, Some(run.id.as_str()), 100, None)
        .await
        .unwrap();
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
    assert!(r.events_emitted);
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
    assert!(!status(&f, &run).await.events_emitted);
    assert_eq!(process_message(&f.app, &message(&run)).await, Outcome::Done);
    let after = status(&f, &run).await;
    assert!(after.events_emitted);
    assert_eq!(after.attempt, 1, "announcing does not run it again");
}
