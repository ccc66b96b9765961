//! Trigger rules that need an injected clock or real concurrency, on the
//! embedded store: rate-limit windows, and 50 concurrent repeats of one
//! Idempotency-Key creating exactly one run (the conditional put that makes
//! this hold is the same one the DynamoDB adapter issues as a
//! TransactWriteItems condition).

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use hookrun_core::clock::ManualClock;
use hookrun_core::model::RunnerConfig;
use hookrun_core::services::triggers::{self, CreateTrigger};
use hookrun_core::services::{admin, agents, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{http, App, Settings};
use serde_json::Value;
use tower::ServiceExt;

struct Fixture {
    app: App,
    store: SqliteStore,
    ws: hookrun_core::ids::WorkspaceId,
    trigger: String,
    clock: Arc<ManualClock>,
    agent: hookrun_core::ids::AgentId,
    token: String,
    _dir: tempfile::TempDir,
}

async fn fixture(settings: Settings, rate: Option<u32>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // The start of a minute, so a window is a whole minute of the test clock.
    let start =
        chrono::DateTime::from_timestamp((Utc::now().timestamp() / 60 + 1) * 60, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::open_dir(dir.path())
        .unwrap()
        .with_clock(clock.clone());
    let app = App::embedded(store.clone(), settings);
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let req = agents::CreateAgent {
        name: "a".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, _) = agents::create(&app, &ws, req).await.unwrap();
    let t = CreateTrigger {
        agent_id: agent.id.to_string(),
        name: "t".into(),
        description: None,
        generate_secret: false,
        secret: None,
        signature: None,
        allowed_sources: None,
        input_mapping: None,
        event_types: None,
        environment: None,
        rate_limit_per_minute: rate,
        metadata: None,
        agent_route: false,
        is_active: None,
        respond_when: None,
        concurrency: None,
    };
    let (trigger, token, _) = triggers::create(&app, &ws, "key_test", t).await.unwrap();
    Fixture {
        app,
        store,
        ws,
        trigger: trigger.id.to_string(),
        clock,
        agent: agent.id,
        token,
        _dir: dir,
    }
}

async fn call(f: &Fixture, idempotency_key: Option<&str>) -> (u16, Value, axum::http::HeaderMap) {
    call_on(&f.app, &f.token, idempotency_key).await
}

async fn call_on(
    app: &App,
    token: &str,
    idempotency_key: Option<&str>,
) -> (u16, Value, axum::http::HeaderMap) {
    let mut req =
        Request::post(format!("/webhooks/runs/{token}")).header("content-type", "application/json");
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let resp = http::router(app.clone())
        .oneshot(req.body(Body::from(r#"{"a":1}"#)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn a_trigger_limit_holds_exactly_and_resets_with_the_window() {
    let f = fixture(
        Settings {
            rate_limit_per_ip: 0,
            ..Settings::default()
        },
        Some(3),
    )
    .await;
    for i in 1..=3 {
        let (s, _, h) = call(&f, None).await;
        assert_eq!(s, 202, "call {i} is within the limit");
        assert_eq!(h["ratelimit-limit"], "3");
        assert_eq!(h["ratelimit-remaining"], (3 - i).to_string().as_str());
    }
    f.clock.advance(chrono::Duration::seconds(20));
    let (s, v, h) = call(&f, None).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    assert_eq!(h["retry-after"], "40", "the rest of the minute");
    assert_eq!(h["ratelimit-reset"], "40");
    assert_eq!(h["ratelimit-remaining"], "0");
    f.clock.advance(chrono::Duration::seconds(40));
    let (s, _, _) = call(&f, None).await;
    assert_eq!(s, 202, "a new window, a new budget");
    let list = runs::list_for_agent(&f.app, &f.agent, &Default::default(), 100, None)
        .await
        .unwrap()
        .data;
    assert_eq!(list.len(), 4, "refused calls made no run");
}

#[tokio::test]
async fn workspace_and_ip_limits_apply_too() {
    let f = fixture(
        Settings {
            rate_limit_per_ip: 2,
            ..Settings::default()
        },
        None,
    )
    .await;
    assert_eq!(call(&f, None).await.0, 202);
    assert_eq!(call(&f, None).await.0, 202);
    let (s, v, _) = call(&f, None).await;
    assert_eq!(s, 429);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per source IP"));

    let f = fixture(
        Settings {
            rate_limit_per_ip: 0,
            rate_limit_per_workspace: 1,
            ..Settings::default()
        },
        None,
    )
    .await;
    assert_eq!(call(&f, None).await.0, 202);
    let (s, v, _) = call(&f, None).await;
    assert_eq!(s, 429);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("workspace"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_repeats_create_one_run() {
    let f = Arc::new(
        fixture(
            Settings {
                rate_limit_per_ip: 0,
                rate_limit_per_trigger: 0,
                ..Settings::default()
            },
            None,
        )
        .await,
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { call(&f, Some("delivery-42")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let (s, v, _) = t.await.unwrap();
        assert_eq!(s, 202, "{v}");
        ids.push(v["run_id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every repeat answers with the one run");
    let list = runs::list_for_agent(&f.app, &f.agent, &Default::default(), 100, None)
        .await
        .unwrap()
        .data;
    assert_eq!(list.len(), 1, "exactly one run was created");
    // Another key is another run.
    let (_, v, _) = call(&f, Some("delivery-43")).await;
    assert_ne!(v["run_id"].as_str().unwrap(), ids[0]);
}

#[tokio::test]
async fn an_accepted_call_is_queued_with_its_run_and_a_repeat_queues_nothing() {
    use hookrun_core::ports::{Queue, QueueId};
    let f = fixture(
        Settings {
            rate_limit_per_ip: 0,
            ..Settings::default()
        },
        None,
    )
    .await;
    let store = SqliteStore::open_dir(f._dir.path())
        .unwrap()
        .with_clock(f.clock.clone());
    let (_, first, _) = call(&f, Some("order-7")).await;
    let run_id = first["run_id"].as_str().unwrap().to_owned();
    let got = store
        .receive(QueueId::Runs, 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "the run's message was written with it");
    assert!(got[0].body.contains(&run_id));
    let (_, again, _) = call(&f, Some("order-7")).await;
    assert_eq!(again["run_id"], run_id.as_str());
    assert!(store
        .receive(QueueId::Runs, 10, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
}

/// Another process on the same store (another Lambda instance): its own
/// caches and its own share of the rate limits.
fn other_process(f: &Fixture, settings: Settings) -> App {
    App::embedded(f.store.clone(), settings).with_clock(f.clock.clone())
}

#[tokio::test]
async fn changes_reach_other_processes_within_the_cache_time() {
    let settings = Settings {
        target_cache: std::time::Duration::from_millis(500),
        ..Settings::default()
    };
    let f = fixture(settings.clone(), None).await;
    let other = other_process(&f, settings);
    let past_cache = || tokio::time::sleep(std::time::Duration::from_millis(600));
    assert_eq!(call(&f, None).await.0, 202, "cached here now");

    // Deactivated by the other process.
    let off: triggers::UpdateTrigger =
        serde_json::from_value(serde_json::json!({"is_active": false})).unwrap();
    triggers::update(&other, &f.ws, &f.trigger, off)
        .await
        .unwrap();
    assert_eq!(
        call_on(&other, &f.token, None).await.0,
        403,
        "at once where it was made"
    );
    past_cache().await;
    assert_eq!(call(&f, None).await.0, 403, "here within the cache time");

    // Reactivated here: at once here.
    let on: triggers::UpdateTrigger =
        serde_json::from_value(serde_json::json!({"is_active": true})).unwrap();
    triggers::update(&f.app, &f.ws, &f.trigger, on)
        .await
        .unwrap();
    assert_eq!(
        call(&f, None).await.0,
        202,
        "a change made here applies here at once"
    );

    // A new token: the old one stops everywhere within the cache time.
    let (_, token) = triggers::regenerate_token(&other, &f.ws, &f.trigger)
        .await
        .unwrap();
    assert_eq!(call_on(&other, &f.token, None).await.0, 404);
    assert_eq!(
        call_on(&f.app, &token, None).await.0,
        202,
        "the new token works at once"
    );
    past_cache().await;
    assert_eq!(
        call(&f, None).await.0,
        404,
        "the old token has stopped here too"
    );

    // Deleted: gone everywhere within the cache time.
    triggers::delete(&other, &f.ws, &f.trigger).await.unwrap();
    past_cache().await;
    assert_eq!(call_on(&f.app, &token, None).await.0, 404);
}

#[tokio::test]
async fn a_limit_shared_by_two_processes_overshoots_by_at_most_a_batch_each() {
    let settings = Settings {
        rate_limit_per_ip: 0,
        ..Settings::default()
    };
    let f = fixture(settings.clone(), Some(100)).await;
    let other = other_process(&f, settings);
    let mut accepted = 0;
    for i in 0..200 {
        let app = if i % 2 == 0 { &f.app } else { &other };
        match call_on(app, &f.token, None).await.0 {
            202 => accepted += 1,
            429 => {}
            s => panic!("unexpected {s}"),
        }
    }
    // Each process reports every 10 calls (a tenth of the limit), so each
    // may be up to 9 calls behind the other.
    assert!(
        (100..=118).contains(&accepted),
        "{accepted} accepted against a limit of 100"
    );
    let runs = runs::list_for_agent(&f.app, &f.agent, &Default::default(), 200, None)
        .await
        .unwrap()
        .data;
    assert_eq!(runs.len(), accepted, "refused calls made no run");
}

/// Calls the per-agent route with the plaintext secret at the clock's time.
async fn plaintext_call(
    app: &App,
    ws: &str,
    agent: &str,
    secret: &str,
) -> (u16, Value, axum::http::HeaderMap) {
    let req = Request::post(format!("/api/v1/webhooks/{ws}/{agent}/trigger"))
        .header("content-type", "application/json")
        .header("x-webhook-secret", secret)
        .body(Body::from(r#"{"a":1}"#))
        .unwrap();
    let resp = http::router(app.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn the_plaintext_secret_works_until_its_sunset_and_not_after() {
    for (until, sunset) in [
        (None, "Thu, 31 Dec 2026 23:59:59 GMT"),
        (
            Some("2027-03-31T12:00:00+02:00"),
            "Wed, 31 Mar 2027 10:00:00 GMT",
        ),
    ] {
        let settings = Settings::from_lookup(|k| {
            (k == "HOOKRUN_PLAINTEXT_SECRET_UNTIL")
                .then(|| until.map(str::to_owned))
                .flatten()
        })
        .unwrap();
        let end = settings.plaintext_secret_until;
        let clock = Arc::new(ManualClock::new(end - chrono::Duration::seconds(1)));
        let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
        let app = App::embedded(store, settings);
        let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
        let req = agents::CreateAgent {
            name: "a".into(),
            runner: RunnerConfig::Echo,
            timeout_seconds: None,
            enabled: None,
            max_concurrent_runs: None,
            concurrency: None,
        };
        let (agent, secret) = agents::create(&app, &ws, req).await.unwrap();
        let (ws, agent) = (ws.to_string(), agent.id.to_string());

        // A second before: accepted, deprecated, the sunset announced.
        let (s, v, h) = plaintext_call(&app, &ws, &agent, &secret).await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(h["deprecation"], "true");
        assert_eq!(h["sunset"], sunset);

        // A second after: refused, naming X-Signature and the sunset.
        clock.advance(chrono::Duration::seconds(2));
        let (s, v, h) = plaintext_call(&app, &ws, &agent, &secret).await;
        assert_eq!(s, 401, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("X-Signature") && message.contains(sunset),
            "{message}"
        );
        assert!(h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("X-Signature"));
        // A signed call still works.
        let sig = hookrun_core::signature::sign_hex(&secret, br#"{"a":1}"#);
        let req = Request::post(format!("/api/v1/webhooks/{ws}/{agent}/trigger"))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(Body::from(r#"{"a":1}"#))
            .unwrap();
        let resp = http::router(app.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        assert!(resp.headers().get("sunset").is_none());
    }
    // A value that is not a time stops start-up, naming the variable.
    let e = Settings::from_lookup(|k| {
        (k == "HOOKRUN_PLAINTEXT_SECRET_UNTIL").then(|| "next year".to_owned())
    })
    .unwrap_err();
    assert_eq!(e.name, "HOOKRUN_PLAINTEXT_SECRET_UNTIL");
}
