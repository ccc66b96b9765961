//! Run control on the embedded store: cancelling a queued run (it never
//! starts), a running run in this process (its agent call is dropped at
//! once) and from another process (the executor finds it at its next
//! lease renewal), the answers for finished and cancelled runs, and
//! retries.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrun_core::error::Error;
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{Agent, Delivery, Run, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::services::control::{self, CancelReason, EXIT_CANCELLED};
use hookrun_core::services::{admin, agents, events, ingress, runs, subscriptions};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work::{self, Outcome};
use hookrun_core::{App, Settings};
use serde_json::json;

struct Fixture {
    app: App,
    store: SqliteStore,
    ws: WorkspaceId,
    subscription: String,
}

fn settings() -> Settings {
    let mut settings = Settings {
        // Renewals every second: a cancel made elsewhere is seen within one.
        lease: Duration::from_secs(3),
        ..Settings::default()
    };
    settings.outbound.allow_http = true;
    settings.outbound.allow = vec!["127.0.0.0/8".parse().unwrap()];
    settings
}

async fn fixture() -> Fixture {
    let store = SqliteStore::in_memory().unwrap();
    let app = App::embedded(store.clone(), settings());
    let boot = admin::bootstrap(&app, None).await.unwrap();
    let sub = serde_json::from_value(json!({
        "name": "cancels",
        "url": "http://127.0.0.1:9/hook",
        "events": ["run.cancelled", "run.succeeded"],
    }))
    .unwrap();
    let (sub, _) = subscriptions::create(&app, &boot.workspace.id, sub)
        .await
        .unwrap();
    Fixture {
        app,
        store,
        ws: boot.workspace.id,
        subscription: sub.id.to_string(),
    }
}

async fn announced(f: &Fixture, run: &Run, event: &str) -> bool {
    let id = events::delivery_id(run.id.as_str(), &f.subscription, event);
    f.app.repo.get::<Delivery>(&id).await.unwrap().is_some()
}

async fn agent(f: &Fixture, runner: RunnerConfig) -> Agent {
    let req = agents::CreateAgent {
        name: "agent".into(),
        runner,
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create(&f.app, &f.ws, req).await.unwrap().0
}

async fn http_agent(f: &Fixture, url: &str) -> Agent {
    let runner = RunnerConfig::Http {
        url: url.into(),
        headers: None,
    };
    agent(f, runner).await
}

/// Processes the run's message in a task of its own, as an executor would.
fn spawn_process(app: &App, run: &Run) -> tokio::task::JoinHandle<Outcome> {
    let (app, run) = (app.clone(), run.clone());
    tokio::spawn(async move { process(&app, &run).await })
}

async fn queued(f: &Fixture, agent: &Agent) -> Run {
    let run = ingress::new_run(
        &f.app,
        agent,
        TriggerType::Webhook,
        json!({"event": "push", "n": 1}),
        None,
    );
    runs::enqueue(&f.app, &run).await.unwrap();
    run
}

async fn process(app: &App, run: &Run) -> Outcome {
    let body = json!({ "run_id": run.id }).to_string();
    work::process(app, QueueId::Runs, &body, None).await
}

async fn stored(f: &Fixture, run: &Run) -> Run {
    f.app
        .repo
        .get::<Run>(&run.id)
        .await
        .unwrap()
        .unwrap()
        .record
}

async fn system_lines(f: &Fixture, run: &Run) -> Vec<String> {
    f.app
        .repo
        .logs(&run.agent_id, Some(&run.id), 100, None)
        .await
        .unwrap()
        .data
        .into_iter()
        .filter(|l| l.stream == "system")
        .map(|l| l.message)
        .collect()
}

/// An http agent that never answers; `dropped` turns true when hookrun
/// drops its call, `calls` counts the calls.
struct Hanging {
    url: String,
    calls: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

async fn hanging_agent() -> Hanging {
    struct OnDrop(Arc<AtomicBool>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (c, d) = (calls.clone(), dropped.clone());
    let router = axum::Router::new().fallback(move || {
        let (c, d) = (c.clone(), d.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let _guard = OnDrop(d);
            tokio::time::sleep(Duration::from_secs(120)).await;
            "too late"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Hanging {
        url,
        calls,
        dropped,
    }
}

async fn wait_running(f: &Fixture, run: &Run, agent: &Hanging) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(stored(f, run).await.status == RunStatus::Running
        && agent.calls.load(Ordering::SeqCst) > 0)
    {
        assert!(Instant::now() < deadline, "the run did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_queued_run_cancelled_never_starts() {
    let f = fixture().await;
    let a = agent(&f, RunnerConfig::Echo).await;
    let run = queued(&f, &a).await;
    let cancelled = control::cancel(
        &f.app,
        &f.ws,
        run.id.as_str(),
        Some("key_1"),
        CancelReason::Requested,
    )
    .await
    .unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(cancelled.control.cancelled_by.as_deref(), Some("key_1"));
    assert_eq!(
        cancelled.control.cancel_reason.as_deref(),
        Some("requested")
    );
    assert!(cancelled.control.cancelled_at.is_some());
    assert_eq!(cancelled.exit_code, Some(EXIT_CANCELLED));
    assert!(announced(&f, &run, "run.cancelled").await);

    // Its queue message finds it cancelled: nothing runs.
    assert_eq!(process(&f.app, &run).await, Outcome::Done);
    let after = stored(&f, &run).await;
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(after.attempt, 0);
    assert!(after.started_at.is_none());
    assert_eq!(
        system_lines(&f, &run).await,
        ["run cancelled before it started by admin key key_1"]
    );

    // Again: answered as it is, nothing changes.
    let again = control::cancel(
        &f.app,
        &f.ws,
        run.id.as_str(),
        Some("key_2"),
        CancelReason::Requested,
    )
    .await
    .unwrap();
    assert_eq!(again.control.cancelled_by.as_deref(), Some("key_1"));
    assert_eq!(again.control.cancelled_at, after.control.cancelled_at);
}

#[tokio::test]
async fn a_running_run_cancelled_here_drops_its_agent_call_at_once() {
    let f = fixture().await;
    let hanging = hanging_agent().await;
    let a = http_agent(&f, &hanging.url).await;
    let run = queued(&f, &a).await;
    let executor = spawn_process(&f.app, &run);
    wait_running(&f, &run, &hanging).await;
    let asked = Instant::now();
    control::cancel(
        &f.app,
        &f.ws,
        run.id.as_str(),
        Some("key_1"),
        CancelReason::Requested,
    )
    .await
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(2), executor)
        .await
        .expect("the executor stops within 2 s")
        .unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert!(asked.elapsed() < Duration::from_secs(2));
    // The agent's request was dropped (its handler future went with it).
    let deadline = Instant::now() + Duration::from_secs(2);
    while !hanging.dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the agent call was not dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = stored(&f, &run).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    assert!(done.duration_ms.is_some());
    assert!(
        f.app.repo.live_slots(&f.ws).await.unwrap().is_empty(),
        "slot given back"
    );
    let lines = system_lines(&f, &run).await;
    assert!(lines[0].starts_with("run started"), "{lines:?}");
    assert_eq!(lines[1], "run cancelled while running by admin key key_1");
    assert!(
        lines[2].starts_with("runner stopped after") && lines[2].ends_with("the run was cancelled"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(announced(&f, &run, "run.cancelled").await);
    assert!(!announced(&f, &run, "run.succeeded").await);
}

#[tokio::test]
async fn a_cancel_made_by_another_process_stops_the_run_at_the_next_renewal() {
    let f = fixture().await;
    let hanging = hanging_agent().await;
    let a = http_agent(&f, &hanging.url).await;
    let run = queued(&f, &a).await;
    // The executor runs in `f.app`; the cancel comes from an App of its
    // own on the same store (another function, on AWS), which cannot
    // signal it.
    let other = App::embedded(f.store.clone(), settings());
    let executor = spawn_process(&f.app, &run);
    wait_running(&f, &run, &hanging).await;
    control::cancel(
        &other,
        &f.ws,
        run.id.as_str(),
        None,
        CancelReason::Requested,
    )
    .await
    .unwrap();
    // Renewals come every lease/3 = 1 s.
    let outcome = tokio::time::timeout(Duration::from_secs(3), executor)
        .await
        .expect("stopped within one renewal")
        .unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert!(hanging.dropped.load(Ordering::SeqCst));
    let done = stored(&f, &run).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    assert_eq!(done.error.as_deref(), Some("cancelled (requested)"));
    assert!(f.app.repo.live_slots(&f.ws).await.unwrap().is_empty());
}

#[tokio::test]
async fn finished_runs_cannot_be_cancelled_and_other_workspaces_runs_are_not_found() {
    let f = fixture().await;
    let a = agent(&f, RunnerConfig::Echo).await;
    let run = queued(&f, &a).await;
    assert_eq!(process(&f.app, &run).await, Outcome::Done);
    let e = control::cancel(
        &f.app,
        &f.ws,
        run.id.as_str(),
        None,
        CancelReason::Requested,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("already succeeded")),
        "{e:?}"
    );
    assert_eq!(stored(&f, &run).await.status, RunStatus::Succeeded);

    let other_ws = WorkspaceId::generate();
    let e = control::cancel(
        &f.app,
        &other_ws,
        run.id.as_str(),
        None,
        CancelReason::Requested,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = control::cancel(&f.app, &f.ws, "run_nope", None, CancelReason::Requested)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn a_retry_is_a_new_run_of_the_same_input_listed_on_its_original() {
    let f = fixture().await;
    let a = agent(&f, RunnerConfig::Echo).await;
    let run = queued(&f, &a).await;

    // Only a finished run is retried.
    let e = control::retry(&f.app, &f.ws, run.id.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("is queued")),
        "{e:?}"
    );

    assert_eq!(process(&f.app, &run).await, Outcome::Done);
    let retry = control::retry(&f.app, &f.ws, run.id.as_str())
        .await
        .unwrap();
    assert_ne!(retry.id, run.id);
    assert_eq!(retry.status, RunStatus::Queued);
    assert_eq!(retry.control.retry_of.as_ref(), Some(&run.id));
    assert_eq!(retry.input, run.input);
    assert_eq!(retry.message, run.message);
    assert_eq!(
        stored(&f, &run).await.control.retries,
        vec![retry.id.clone()]
    );

    assert_eq!(process(&f.app, &retry).await, Outcome::Done);
    let done = stored(&f, &retry).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, stored(&f, &run).await.output);
    let lines = system_lines(&f, &retry).await;
    assert!(
        lines[0].contains(&format!("retry of {}", run.id)),
        "{lines:?}"
    );

    // Through the agent's current configuration: a disabled agent refuses.
    let second = control::retry(&f.app, &f.ws, run.id.as_str())
        .await
        .unwrap();
    assert_eq!(
        stored(&f, &run).await.control.retries,
        vec![retry.id.clone(), second.id.clone()]
    );
    let update: agents::UpdateAgent = serde_json::from_value(json!({"enabled": false})).unwrap();
    agents::update(&f.app, &f.ws, a.id.as_str(), update)
        .await
        .unwrap();
    let e = control::retry(&f.app, &f.ws, run.id.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("disabled")),
        "{e:?}"
    );
}

fn replay_req(v: serde_json::Value) -> hookrun_core::services::replay::ReplayRequest {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn bulk_replay_counts_then_retries_a_page_at_a_time_and_never_twice() {
    use hookrun_core::services::replay;
    let f = fixture().await;
    // An agent whose calls fail (nobody listens on port 9).
    let a = http_agent(&f, "http://127.0.0.1:9/agent").await;
    let mut failed = Vec::new();
    for _ in 0..5 {
        let run = queued(&f, &a).await;
        assert_eq!(process(&f.app, &run).await, Outcome::Done);
        assert_eq!(stored(&f, &run).await.status, RunStatus::Failed);
        failed.push(run.id.clone());
    }
    let cancelled = queued(&f, &a).await;
    control::cancel(
        &f.app,
        &f.ws,
        cancelled.id.as_str(),
        None,
        CancelReason::Requested,
    )
    .await
    .unwrap();
    let agent_id = a.id.to_string();
    let runs_of_agent = || async {
        f.app
            .repo
            .runs_of_agent(&a.id, None, 100, None, |_| true)
            .await
            .unwrap()
            .data
            .len()
    };

    // A dry run counts and shows, newest first, and makes nothing.
    let dry = replay::replay(
        &f.app,
        &f.ws,
        replay_req(json!({"agent_id": agent_id, "status": "failed", "dry_run": true})),
    )
    .await
    .unwrap();
    assert_eq!(dry.count, 5);
    let newest_first: Vec<_> = failed.iter().rev().cloned().collect();
    assert_eq!(dry.first_ids, newest_first);
    assert!(dry.retries.is_empty() && !dry.truncated);
    assert_eq!(runs_of_agent().await, 6);
    let both = replay::replay(
        &f.app,
        &f.ws,
        replay_req(
            json!({"agent_id": agent_id, "status": ["failed", "cancelled"], "dry_run": true}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(both.count, 6);

    // The agent is fixed; the retries go through its current configuration.
    let update: agents::UpdateAgent =
        serde_json::from_value(json!({"runner": {"type": "echo"}})).unwrap();
    agents::update(&f.app, &f.ws, a.id.as_str(), update)
        .await
        .unwrap();
    let page = |cursor: Option<String>| {
        let f = &f;
        let agent_id = agent_id.clone();
        async move {
            replay::replay(
                &f.app,
                &f.ws,
                replay_req(json!({"agent_id": agent_id, "limit": 2, "cursor": cursor})),
            )
            .await
            .unwrap()
        }
    };
    let first = page(None).await;
    assert_eq!(first.count, 2);
    assert!(first.retries.iter().all(|r| r.created));
    let second = page(first.next_cursor.clone()).await;
    let third = page(second.next_cursor.clone()).await;
    assert_eq!((second.count, third.count), (2, 1));
    assert!(third.next_cursor.is_none(), "every matching run replayed");
    let replayed: Vec<_> = [&first, &second, &third]
        .iter()
        .flat_map(|a| a.retries.iter().map(|r| r.retry_of.clone()))
        .collect();
    assert_eq!(replayed, newest_first);
    for r in first
        .retries
        .iter()
        .chain(&second.retries)
        .chain(&third.retries)
    {
        let original = f.app.repo.get::<Run>(&r.retry_of).await.unwrap().unwrap();
        assert_eq!(original.control.retries, vec![r.run_id.clone()]);
        let retry = f.app.repo.get::<Run>(&r.run_id).await.unwrap().unwrap();
        assert_eq!(retry.control.retry_of.as_ref(), Some(&r.retry_of));
        assert_eq!(process(&f.app, &retry).await, Outcome::Done);
        assert_eq!(stored(&f, &retry).await.status, RunStatus::Succeeded);
    }
    assert_eq!(runs_of_agent().await, 11);

    // The same call again makes nothing: it finds what it made.
    let again = page(None).await;
    assert_eq!(again.count, 2);
    assert!(again.retries.iter().all(|r| !r.created));
    let ids = |a: &replay::ReplayAnswer| {
        a.retries
            .iter()
            .map(|r| r.run_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(runs_of_agent().await, 11);

    // A window that holds nothing, and the refusals.
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none = replay::replay(
        &f.app,
        &f.ws,
        replay_req(json!({"agent_id": agent_id, "created_after": future, "dry_run": true})),
    )
    .await
    .unwrap();
    assert_eq!(none.count, 0);
    for (body, field) in [
        (json!({"agent_id": agent_id, "status": "running"}), "status"),
        (json!({"agent_id": agent_id, "status": []}), "status"),
        (json!({"agent_id": agent_id, "limit": 0}), "limit"),
        (json!({"agent_id": agent_id, "limit": 1001}), "limit"),
        (
            json!({"agent_id": agent_id, "created_after": "yesterday"}),
            "created_after",
        ),
        (
            json!({"agent_id": agent_id, "created_after": "2026-12-02T00:00:00Z", "created_before": "2026-12-01T00:00:00Z"}),
            "created_before",
        ),
    ] {
        let e = replay::replay(&f.app, &f.ws, replay_req(body.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field: got, .. } if got == field),
            "{body}: {e:?}"
        );
    }
    let e = replay::replay(
        &f.app,
        &f.ws,
        replay_req(json!({"agent_id": "agt_missing"})),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!(runs_of_agent().await, 11, "nothing made by a refused call");
}

/// An http agent that answers each call once the test lets one through.
struct Gate {
    url: String,
    calls: Arc<AtomicUsize>,
    open: Arc<tokio::sync::Semaphore>,
}

async fn gated_agent() -> Gate {
    let calls = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(tokio::sync::Semaphore::new(0));
    let (c, o) = (calls.clone(), open.clone());
    let router = axum::Router::new().fallback(move || {
        let (c, o) = (c.clone(), o.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            o.acquire().await.unwrap().forget();
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Gate { url, calls, open }
}

#[tokio::test]
async fn an_agents_cap_holds_its_runs_to_it_and_they_go_in_order() {
    let f = fixture().await;
    let gate = gated_agent().await;
    let req = agents::CreateAgent {
        name: "one at a time".into(),
        runner: RunnerConfig::Http {
            url: gate.url.clone(),
            headers: None,
        },
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: Some(1),
        concurrency: None,
    };
    let (a, _) = agents::create(&f.app, &f.ws, req).await.unwrap();
    let pool = hookrun_core::model::Pool::Agent(f.ws.clone(), a.id.clone());
    let (r1, r2, r3) = (
        queued(&f, &a).await,
        queued(&f, &a).await,
        queued(&f, &a).await,
    );

    let first = spawn_process(&f.app, &r1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.calls.load(Ordering::SeqCst) < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The cap is taken: the others wait, queued (the newer one first here).
    assert!(matches!(process(&f.app, &r3).await, Outcome::Defer(_)));
    assert!(matches!(process(&f.app, &r2).await, Outcome::Defer(_)));
    assert_eq!(stored(&f, &r2).await.status, RunStatus::Queued);
    assert_eq!(f.app.repo.live_slots_of(&pool).await.unwrap().len(), 1);
    // A waiting run cancelled leaves the line at once.
    let r4 = queued(&f, &a).await;
    assert!(matches!(process(&f.app, &r4).await, Outcome::Defer(_)));
    assert_eq!(f.app.repo.slot_waiters(&pool).await.unwrap().len(), 3);
    control::cancel(&f.app, &f.ws, r4.id.as_str(), None, CancelReason::Requested)
        .await
        .unwrap();
    assert_eq!(
        f.app.repo.slot_waiters(&pool).await.unwrap(),
        [r2.id.to_string(), r3.id.to_string()]
    );
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1, "never two at once");

    gate.open.add_permits(1);
    assert_eq!(first.await.unwrap(), Outcome::Done);
    assert!(f.app.repo.live_slots_of(&pool).await.unwrap().is_empty());
    // The newer run asks first, but the older one is ahead in line.
    assert!(matches!(process(&f.app, &r3).await, Outcome::Defer(_)));
    let second = spawn_process(&f.app, &r2);
    gate.open.add_permits(1);
    assert_eq!(second.await.unwrap(), Outcome::Done);
    gate.open.add_permits(1);
    assert_eq!(process(&f.app, &r3).await, Outcome::Done);
    for r in [&r1, &r2, &r3] {
        assert_eq!(stored(&f, r).await.status, RunStatus::Succeeded);
    }
    let mut started = Vec::new();
    for r in [&r1, &r2, &r3] {
        started.push(stored(&f, r).await.started_at.unwrap());
    }
    assert!(started.is_sorted(), "in order: {started:?}");
    assert!(
        f.app.repo.slot_waiters(&pool).await.unwrap().is_empty(),
        "the line is empty"
    );

    // The cap is checked when saved, and null removes it.
    let bad = |n: u32| agents::CreateAgent {
        name: "bad".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: Some(n),
        concurrency: None,
    };
    for n in [0, 1001] {
        let e = agents::create(&f.app, &f.ws, bad(n)).await.unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "max_concurrent_runs"),
            "{e:?}"
        );
    }
    let update: agents::UpdateAgent =
        serde_json::from_value(json!({"max_concurrent_runs": null})).unwrap();
    let updated = agents::update(&f.app, &f.ws, a.id.as_str(), update)
        .await
        .unwrap();
    assert_eq!(updated.max_concurrent_runs, None);
    let update: agents::UpdateAgent = serde_json::from_value(json!({"name": "renamed"})).unwrap();
    let kept = agents::update(&f.app, &f.ws, a.id.as_str(), update)
        .await
        .unwrap();
    assert_eq!(kept.max_concurrent_runs, None);
}

#[tokio::test]
async fn waiting_for_a_start_answers_running_or_queued_in_time() {
    let f = fixture().await;
    let hanging = hanging_agent().await;
    let a = http_agent(&f, &hanging.url).await;
    // Nobody runs it: still queued when the wait is over.
    let run = queued(&f, &a).await;
    let asked = Instant::now();
    let status = runs::wait_started(&f.app, &run.id, Duration::from_millis(300)).await;
    assert_eq!(status, RunStatus::Queued);
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert!(asked.elapsed() < Duration::from_secs(2));
    // An executor takes it meanwhile: running, as soon as it is.
    let executor = {
        let (app, run) = (f.app.clone(), run.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            process(&app, &run).await
        })
    };
    let status = runs::wait_started(&f.app, &run.id, Duration::from_secs(10)).await;
    assert_eq!(status, RunStatus::Running);
    control::cancel(
        &f.app,
        &f.ws,
        run.id.as_str(),
        None,
        CancelReason::Requested,
    )
    .await
    .unwrap();
    assert_eq!(executor.await.unwrap(), Outcome::Done);
}

/// The same cancel on DynamoDB and SQS (the local emulator): the api
/// function cancels, the executor function, another process, stops at
/// its next renewal.
#[tokio::test]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_a_cancel_reaches_the_executor_at_its_next_renewal() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!(
        "rc-{}",
        hookrun_core::ids::RunId::generate()
            .as_str()
            .replace('_', "-")
    );
    let aws = hookrun_core::aws::provision::provision(&sdk, &prefix)
        .await
        .unwrap();
    let settings = || Settings {
        lease: Duration::from_secs(6),
        ..settings()
    };
    let api = hookrun_core::aws::app(&sdk, &aws, settings());
    let executor = hookrun_core::aws::app(&sdk, &aws, settings());
    let ws = admin::bootstrap(&api, None).await.unwrap().workspace.id;
    let hanging = hanging_agent().await;
    let req = agents::CreateAgent {
        name: "hangs".into(),
        runner: RunnerConfig::Http {
            url: hanging.url.clone(),
            headers: None,
        },
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (a, _) = agents::create(&api, &ws, req).await.unwrap();
    let run = ingress::new_run(&api, &a, TriggerType::Webhook, json!({"n": 1}), None);
    runs::enqueue(&api, &run).await.unwrap();
    let running = spawn_process(&executor, &run);
    let deadline = Instant::now() + Duration::from_secs(20);
    while hanging.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the run did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control::cancel(
        &api,
        &ws,
        run.id.as_str(),
        Some("key_api"),
        CancelReason::Requested,
    )
    .await
    .unwrap();
    // Renewals every lease/3 = 2 s; the emulator is slow: a margin.
    let outcome = tokio::time::timeout(Duration::from_secs(8), running)
        .await
        .expect("stopped at its next renewal")
        .unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert!(hanging.dropped.load(Ordering::SeqCst));
    let done = api.repo.get::<Run>(&run.id).await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Cancelled);
    assert_eq!(done.control.cancelled_by.as_deref(), Some("key_api"));
    assert!(api.repo.live_slots(&ws).await.unwrap().is_empty());
}
