//! Concurrency keys under real concurrency, on the embedded store and (the
//! ignored tests, run by infra/test.sh) on the local AWS emulator: 50
//! calls at once with one key value and `skip` make exactly one run; with
//! `queue` they make 50 runs that never overlap and start in order; with
//! `replace` the newest call's run succeeds and the others end cancelled
//! as replaced. Each goes through the HTTP router and a real worker.
//!
//! On the emulator the calls are sent one after another (the worker still
//! runs beside them): moto's TransactWriteItems is not atomic under
//! concurrent requests (a transaction that fails its condition puts back a
//! copy of the table taken before it, undoing writes made meanwhile), so a
//! burst there tests moto. The conditions are the same ones the SQLite
//! store checks atomically, tested at full concurrency above.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use hookrun_core::error::Error;
use hookrun_core::ids::{AgentId, WorkspaceId};
use hookrun_core::model::{Agent, InvocationResult, Run, RunStatus};
use hookrun_core::services::triggers::{self, CreateTrigger};
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::worker::{run_worker, Work};
use hookrun_core::{http, App, Settings};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify, Semaphore};
use tower::ServiceExt;

const CALLS: usize = 50;

struct World {
    app: App,
    ws: WorkspaceId,
    wake: Arc<Notify>,
    /// How long a scenario may take to settle.
    patience: Duration,
    /// How many calls of a burst are in flight at once.
    parallel: usize,
    /// On AWS, the outbox relay (the relay function's counterpart) that
    /// brings run messages to the queue.
    relay: Option<hookrun_core::aws::stream::StreamRelay>,
}

fn settings(lease: Duration) -> Settings {
    let mut settings = Settings {
        lease,
        rate_limit_per_ip: 0,
        rate_limit_per_trigger: 100_000,
        rate_limit_per_workspace: 100_000,
        executor_concurrency: 4,
        ..Settings::default()
    };
    settings.outbound.allow_http = true;
    settings.outbound.allow = vec!["127.0.0.0/8".parse().unwrap()];
    settings
}

async fn sqlite_world() -> World {
    let store = SqliteStore::in_memory().unwrap();
    let wake = store.queue_signal();
    let app = App::embedded(store, settings(Duration::from_secs(3)));
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    World {
        app,
        ws,
        wake,
        patience: Duration::from_secs(60),
        parallel: CALLS,
        relay: None,
    }
}

async fn aws_world() -> World {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!(
        "ck-{}",
        hookrun_core::ids::RunId::generate()
            .as_str()
            .replace('_', "-")
    );
    let aws = hookrun_core::aws::provision::provision(&sdk, &prefix)
        .await
        .unwrap();
    let app = hookrun_core::aws::app(&sdk, &aws, settings(Duration::from_secs(6)));
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let relay = hookrun_core::aws::stream::StreamRelay::new(
        &sdk,
        aws.table_name.clone(),
        app.repo.clone(),
        app.queue.clone(),
    );
    World {
        app,
        ws,
        wake: Arc::new(Notify::new()),
        patience: Duration::from_secs(180),
        parallel: 1,
        relay: Some(relay),
    }
}

/// An http agent that records its calls: the run ids in the order they
/// came, how many were in flight at most. With a gate, each call waits for
/// a permit before it answers.
struct Recorder {
    url: String,
    runs: Arc<Mutex<Vec<String>>>,
    max_in_flight: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
}

async fn recorder(gated: bool) -> Recorder {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let gate = gated.then(|| Arc::new(Semaphore::new(0)));
    let (r, i, m, g) = (
        runs.clone(),
        in_flight.clone(),
        max_in_flight.clone(),
        gate.clone(),
    );
    let router = axum::Router::new().fallback(move |axum::Json(req): axum::Json<Value>| {
        let (r, i, m, g) = (r.clone(), i.clone(), m.clone(), g.clone());
        async move {
            struct Leaving(Arc<AtomicUsize>);
            impl Drop for Leaving {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            let _leaving = Leaving(i.clone());
            m.fetch_max(now, Ordering::SeqCst);
            r.lock()
                .unwrap()
                .push(req["run_id"].as_str().unwrap_or_default().to_owned());
            match g {
                Some(g) => g.acquire().await.unwrap().forget(),
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
            axum::Json(json!({"ok": true}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Recorder {
        url,
        runs,
        max_in_flight,
        gate,
    }
}

async fn agent(w: &World, url: &str, concurrency: Option<Value>) -> Agent {
    let req: agents::CreateAgent = serde_json::from_value(json!({
        "name": "keyed",
        "runner": {"type": "http", "url": url},
        "timeout_seconds": 60,
        "concurrency": concurrency,
    }))
    .unwrap();
    agents::create(&w.app, &w.ws, req).await.unwrap().0
}

/// A trigger of `agent` (with its own key, when given): its token.
async fn trigger(w: &World, agent: &Agent, concurrency: Option<Value>) -> (String, String) {
    let req: CreateTrigger = serde_json::from_value(json!({
        "agent_id": agent.id,
        "name": "keyed",
        "concurrency": concurrency,
    }))
    .unwrap();
    let (t, token, _) = triggers::create(&w.app, &w.ws, "key_test", req)
        .await
        .unwrap();
    (t.id.to_string(), token)
}

async fn call(app: &App, token: &str, body: Value) -> (u16, Value) {
    let req = Request::post(format!("/webhooks/runs/{token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = http::router(app.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `CALLS` calls, `w.parallel` at once, each with the same key value
/// (`/pr`) and its own `n`.
async fn burst(w: &World, token: &str) -> Vec<(u16, Value)> {
    use futures_util::StreamExt;
    let calls = (0..CALLS).map(|n| {
        let (app, token) = (w.app.clone(), token.to_owned());
        async move { call(&app, &token, json!({"pr": 7, "n": n})).await }
    });
    futures_util::stream::iter(calls)
        .buffer_unordered(w.parallel)
        .collect()
        .await
}

/// Starts the runs worker (and on AWS the relay); the sender stops them.
fn worker(w: &mut World) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    if let Some(relay) = w.relay.take() {
        tokio::spawn(relay.run(stopped.clone()));
    }
    tokio::spawn(run_worker(
        w.app.clone(),
        Work::Runs,
        w.wake.clone(),
        stopped,
        Duration::from_secs(1),
    ));
    stop
}

async fn runs_of(w: &World, agent: &AgentId) -> Vec<Run> {
    let mut runs = w
        .app
        .repo
        .runs_of_agent(agent, None, 1000, None, |_| true)
        .await
        .unwrap()
        .data;
    runs.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    runs
}

/// Waits until the agent has `count` runs, every one finished.
async fn all_finished(w: &World, agent: &AgentId, count: usize) -> Vec<Run> {
    let deadline = Instant::now() + w.patience;
    loop {
        let runs = runs_of(w, agent).await;
        if runs.len() == count && runs.iter().all(|r| r.status.is_terminal()) {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "runs did not finish: {:?}",
            runs.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn skip_makes_one_run(mut w: World) {
    let rec = recorder(true).await;
    let a = agent(&w, &rec.url, None).await;
    let (trigger_id, token) =
        trigger(&w, &a, Some(json!({"key": "/pr", "on_conflict": "skip"}))).await;
    let stop = worker(&mut w);
    let answers = burst(&w, &token).await;
    assert!(answers.iter().all(|(s, _)| *s == 202), "{answers:?}");
    let runs = runs_of(&w, &a.id).await;
    assert_eq!(runs.len(), 1, "exactly one run");
    let only = runs[0].id.to_string();
    assert_eq!(runs[0].control.concurrency_key.as_deref(), Some("7"));
    let skipped: Vec<_> = answers
        .iter()
        .filter(|(_, b)| b["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), CALLS - 1, "{answers:?}");
    assert!(skipped.iter().all(|(_, b)| b["run_id"] == only.as_str()));
    let invocations = triggers::invocations(&w.app, &w.ws, &trigger_id, 100, None)
        .await
        .unwrap()
        .data;
    let logged: Vec<_> = invocations
        .iter()
        .filter(|i| i.result == InvocationResult::Skipped)
        .collect();
    assert_eq!(logged.len(), CALLS - 1);
    assert!(logged.iter().all(|i| {
        i.run_id.as_ref().map(|r| r.to_string()) == Some(only.clone())
            && i.note.as_deref().is_some_and(|n| n.contains("skipped"))
            && i.payload_excerpt
                .as_deref()
                .is_some_and(|p| p.contains("\"pr\""))
    }));

    // Once it ends, the key is free again.
    rec.gate.as_ref().unwrap().add_permits(10);
    all_finished(&w, &a.id, 1).await;
    let (status, body) = call(&w.app, &token, json!({"pr": 7})).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("queued")));
    // A call without a value is not constrained, and its log says so.
    let (_, body) = call(&w.app, &token, json!({"other": 1})).await;
    assert_eq!(body["status"], "queued");
    let runs = all_finished(&w, &a.id, 3).await;
    let unkeyed = runs
        .iter()
        .find(|r| r.id.as_str() == body["run_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(unkeyed.control.concurrency_key, None);
    let invocations = triggers::invocations(&w.app, &w.ws, &trigger_id, 1, None)
        .await
        .unwrap()
        .data;
    let note = invocations[0].note.as_deref().unwrap_or_default();
    assert!(
        note.contains("the payload has no value at /pr") && note.contains("not constrained"),
        "{note}"
    );
    stop.send(true).unwrap();
}

async fn queue_runs_one_at_a_time_in_order(mut w: World) {
    let rec = recorder(false).await;
    // The agent's key: the trigger has none of its own.
    let a = agent(&w, &rec.url, Some(json!({"key": "{{ input.pr }}"}))).await;
    let (_, token) = trigger(&w, &a, None).await;
    let stop = worker(&mut w);
    let answers = burst(&w, &token).await;
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 202 && b["status"] != "skipped"),
        "{answers:?}"
    );
    let runs = all_finished(&w, &a.id, CALLS).await;
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
    assert_eq!(
        rec.max_in_flight.load(Ordering::SeqCst),
        1,
        "never two at once"
    );
    let called = rec.runs.lock().unwrap().clone();
    let created: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(called, created, "in the order they came");
    for pair in runs.windows(2) {
        assert!(pair[1].started_at.unwrap() >= pair[0].completed_at.unwrap());
    }
    stop.send(true).unwrap();
}

async fn replace_keeps_the_newest(mut w: World) {
    let rec = recorder(true).await;
    let a = agent(&w, &rec.url, None).await;
    let (_, token) = trigger(
        &w,
        &a,
        Some(json!({"key": "/pr", "on_conflict": "replace"})),
    )
    .await;
    let stop = worker(&mut w);
    let answers = burst(&w, &token).await;
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 202 && b["run_id"].is_string()),
        "{answers:?}"
    );
    // Whatever started waits at the gate until every replaced run is
    // cancelled (the executor cancels them from messages written with the
    // calls' runs).
    let deadline = Instant::now() + w.patience;
    loop {
        let runs = runs_of(&w, &a.id).await;
        let cancelled = runs
            .iter()
            .filter(|r| r.status == RunStatus::Cancelled)
            .count();
        if cancelled == CALLS - 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{cancelled} cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rec.gate.as_ref().unwrap().add_permits(CALLS);
    let runs = all_finished(&w, &a.id, CALLS).await;
    let newest = runs.last().unwrap();
    assert_eq!(newest.status, RunStatus::Succeeded, "the last call's run");
    for r in &runs[..CALLS - 1] {
        assert_eq!(r.status, RunStatus::Cancelled, "{}", r.id);
        assert_eq!(r.control.cancel_reason.as_deref(), Some("replaced"));
        let by = r
            .control
            .replaced_by
            .as_ref()
            .expect("names its replacement");
        assert!(by.as_str() > r.id.as_str(), "replaced by a newer run");
    }
    // The succeeded run's agent call was the last one made.
    assert_eq!(
        rec.runs.lock().unwrap().last().map(String::as_str),
        Some(newest.id.as_str())
    );
    stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_makes_exactly_one_run() {
    skip_makes_one_run(sqlite_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_never_overlaps_and_keeps_order() {
    queue_runs_one_at_a_time_in_order(sqlite_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_lets_the_newest_run_succeed() {
    replace_keeps_the_newest(sqlite_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_skip_makes_exactly_one_run() {
    skip_makes_one_run(aws_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_queue_never_overlaps_and_keeps_order() {
    queue_runs_one_at_a_time_in_order(aws_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn on_aws_replace_lets_the_newest_run_succeed() {
    replace_keeps_the_newest(aws_world().await).await;
}

#[tokio::test]
async fn bad_keys_are_refused_naming_the_field() {
    let w = sqlite_world().await;
    for (key, says) in [
        ("repo", "none of a JSON pointer"),
        ("header:", "no valid header"),
        ("header:bad name", "no valid header"),
        ("/a~2", "`~` must be followed"),
        (
            "{{ secrets }}",
            "a template may use input, message, trigger",
        ),
        ("{{ input", "not a valid template"),
        ("", "1 to 1024 bytes"),
    ] {
        let req: agents::CreateAgent = serde_json::from_value(json!({
            "name": "bad",
            "concurrency": {"key": key, "on_conflict": "skip"},
        }))
        .unwrap();
        let e = agents::create(&w.app, &w.ws, req).await.unwrap_err();
        match &e {
            Error::Invalid { field, .. } if field == "concurrency.key" => {
                assert!(e.to_string().contains(says), "{key}: {e}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    let bad_policy = serde_json::from_value::<agents::CreateAgent>(json!({
        "name": "bad", "concurrency": {"key": "/pr", "on_conflict": "later"},
    }));
    assert!(bad_policy.is_err());
    // Null removes an agent's key; leaving it out keeps it.
    let a = agent(&w, "http://127.0.0.1:9/", Some(json!({"key": "/pr"}))).await;
    let update: agents::UpdateAgent = serde_json::from_value(json!({"name": "renamed"})).unwrap();
    let kept = agents::update(&w.app, &w.ws, a.id.as_str(), update)
        .await
        .unwrap();
    assert_eq!(kept.concurrency.unwrap().key, "/pr");
    let update: agents::UpdateAgent = serde_json::from_value(json!({"concurrency": null})).unwrap();
    let removed = agents::update(&w.app, &w.ws, a.id.as_str(), update)
        .await
        .unwrap();
    assert_eq!(removed.concurrency, None);
}
