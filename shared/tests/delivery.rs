//! The delivery worker with an injected clock and fixed jitter against a
//! real local receiver: the retry schedule, chained waits, Retry-After,
//! the five-day rule, and the SSRF guard at send time. No sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hookrun_core::clock::{Clock, ManualClock};
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{DeliveryStatus, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::outbound::{parse_allowlist, OutboundPolicy};
use hookrun_core::ports::{Queue, QueueId};
use hookrun_core::services::subscriptions::{self, CreateSubscription};
use hookrun_core::services::{admin, agents, events, ingress};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work::{self, Message, Outcome};
use hookrun_core::{App, Settings};
use serde_json::json;

/// Answers with scripted (status, Retry-After) pairs, then 500; counts requests.
/// A status and an optional Retry-After value.
type Answer = (u16, Option<&'static str>);

#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn receiver(script: &[Answer]) -> (Receiver, String) {
    let r = Receiver {
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        ..Default::default()
    };
    let state = r.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let state = state.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            state.hits.lock().unwrap().push(id);
            let (status, retry_after) = state
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((500, None));
            if status == 0 {
                // 0 in a script: answer too late.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let mut resp =
                axum::response::Response::new(axum::body::Body::from("x".repeat(10_000)));
            *resp.status_mut() = axum::http::StatusCode::from_u16(status.max(200)).unwrap();
            if let Some(ra) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

fn loopback() -> Settings {
    Settings {
        outbound: OutboundPolicy {
            allow_http: true,
            allow: parse_allowlist("127.0.0.1/32").unwrap(),
            proxy: None,
        },
        ..Settings::default()
    }
}

struct Fixture {
    app: App,
    store: SqliteStore,
    clock: Arc<ManualClock>,
    ws: WorkspaceId,
}

async fn fixture(settings: Settings) -> Fixture {
    // Whole milliseconds: stored timestamps keep millisecond precision.
    let start = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
    let app = App::embedded(store.clone(), settings).with_jitter(Arc::new(|| 0.5));
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    Fixture {
        app,
        store,
        clock,
        ws,
    }
}

/// A finished run's event, emitted to every matching subscription; returns the delivery id.
async fn emit(f: &Fixture, url: &str) -> (String, String) {
    let req = agents::CreateAgent {
        name: "a".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, _) = agents::create(&f.app, &f.ws, req).await.unwrap();
    let sub_req = CreateSubscription {
        name: "s".into(),
        url: url.into(),
        events: vec!["run.failed".into()],
        environment: None,
        agent_id: None,
        enabled: None,
    };
    let (sub, _) = subscriptions::create(&f.app, &f.ws, sub_req).await.unwrap();
    let mut run = ingress::new_run(&f.app, &agent, TriggerType::Webhook, json!({}), None);
    run.status = RunStatus::Failed;
    run.error = Some("boom".into());
    assert_eq!(events::emit(&f.app, "run.failed", &run).await.unwrap(), 1);
    // Emitting again creates nothing new.
    assert_eq!(events::emit(&f.app, "run.failed", &run).await.unwrap(), 1);
    let list = subscriptions::deliveries(&f.app, &f.ws, &sub.id, 10, None)
        .await
        .unwrap()
        .data;
    assert_eq!(list.len(), 1);
    (list[0].id.clone(), sub.id)
}

fn msg(id: &str) -> String {
    Message::Delivery {
        delivery_id: id.into(),
        manual: false,
    }
    .encode()
}

/// One deliveries-queue message, processed as a consumer would.
async fn process(app: &App, body: &str) -> Outcome {
    work::process(app, QueueId::Deliveries, body, None).await
}

async fn state(f: &Fixture, id: &str) -> hookrun_core::model::Delivery {
    f.app
        .repo
        .get::<hookrun_core::model::Delivery>(id)
        .await
        .unwrap()
        .unwrap()
        .record
}

#[tokio::test]
async fn the_schedule_runs_eight_attempts_with_jitter_then_fails() {
    let f = fixture(loopback()).await;
    let (rx, url) = receiver(&[]).await;
    let (id, _) = emit(&f, &url).await;
    let expected_waits = [5.5, 330.0, 1980.0, 7920.0, 19_800.0, 39_600.0, 39_600.0]; // +10 % (jitter 0.5 of ±20 %)
    for (i, wait) in expected_waits.iter().enumerate() {
        let before = f.clock.now();
        assert_eq!(process(&f.app, &msg(&id)).await, Outcome::Done);
        let d = state(&f, &id).await;
        assert_eq!(d.attempts as usize, i + 1);
        assert_eq!(d.status, DeliveryStatus::Pending);
        let next = d.next_attempt_at.unwrap();
        assert_eq!(
            (next - before).num_milliseconds(),
            (*wait * 1000.0) as i64,
            "wait after attempt {}",
            i + 1
        );
        // Too early: nothing is sent, the wait is chained.
        assert_eq!(process(&f.app, &msg(&id)).await, Outcome::Done);
        assert_eq!(state(&f, &id).await.attempts as usize, i + 1);
        f.clock.set(next);
    }
    assert_eq!(process(&f.app, &msg(&id)).await, Outcome::Done);
    let d = state(&f, &id).await;
    assert_eq!((d.attempts, d.status), (8, DeliveryStatus::Failed));
    assert!(d.next_attempt_at.is_none());
    let hits = rx.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 8);
    assert!(hits.iter().all(|h| *h == id), "one delivery id throughout");

    let (d, attempts) = subscriptions::delivery(&f.app, &f.ws, &id).await.unwrap();
    assert_eq!(attempts.len(), 8);
    assert_eq!(d.last_status_code, Some(500));
    assert_eq!(
        attempts[0].response_excerpt.as_ref().unwrap().len(),
        4096,
        "the answer is cut at 4 KiB"
    );
    // A finished delivery is not attempted again by a stray message.
    assert_eq!(process(&f.app, &msg(&id)).await, Outcome::Done);
    assert_eq!(rx.hits.lock().unwrap().len(), 8);
}

#[tokio::test]
async fn throttling_waits_at_least_a_minute_and_honours_retry_after() {
    let f = fixture(loopback()).await;
    let (_rx, url) = receiver(&[(429, None), (429, Some("600")), (503, Some("7200"))]).await;
    let (id, _) = emit(&f, &url).await;
    for want in [60, 600, 7200] {
        let before = f.clock.now();
        process(&f.app, &msg(&id)).await;
        let next = state(&f, &id).await.next_attempt_at.unwrap();
        assert_eq!((next - before).num_seconds(), want);
        f.clock.set(next);
    }
}

#[tokio::test]
async fn retries_are_delayed_queue_messages() {
    let f = fixture(loopback()).await;
    let (_rx, url) = receiver(&[(500, None)]).await;
    let (id, _) = emit(&f, &url).await;
    // The emitted message(s) are visible at once.
    let first = f
        .store
        .receive(QueueId::Deliveries, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!first.is_empty());
    assert!(first.iter().all(|m| m.body.contains(&id)));
    process(&f.app, &msg(&id)).await;
    assert_eq!(state(&f, &id).await.attempts, 1);
    // The retry is a new message, hidden until its wait is over.
    let now = f
        .store
        .receive(QueueId::Deliveries, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(now.is_empty(), "the retry waits its delay in the queue");
}

#[tokio::test]
async fn five_days_of_failures_disable_the_subscription() {
    let f = fixture(loopback()).await;
    let (_rx, url) = receiver(&[]).await;
    let (id, sub) = emit(&f, &url).await;
    process(&f.app, &msg(&id)).await;
    let s = subscriptions::get(&f.app, &f.ws, &sub).await.unwrap();
    assert_eq!(s.failing_since, Some(f.clock.now()));
    assert!(s.enabled);
    f.clock.advance(chrono::Duration::days(5));
    let d = state(&f, &id).await;
    assert!(d.next_attempt_at.unwrap() <= f.clock.now());
    process(&f.app, &msg(&id)).await;
    let s = subscriptions::get(&f.app, &f.ws, &sub).await.unwrap();
    assert!(!s.enabled);
    assert!(s.disabled_reason.unwrap().contains("5 days"));
}

#[tokio::test]
async fn the_ssrf_guard_is_applied_again_at_send_time() {
    // Saved while loopback was allowed; sent by a process where it is not.
    let f = fixture(loopback()).await;
    let (rx, url) = receiver(&[(200, None)]).await;
    let (id, _) = emit(&f, &url).await;
    let strict = App::embedded(
        f.store.clone(),
        Settings {
            outbound: OutboundPolicy {
                allow_http: true,
                allow: vec![],
                proxy: None,
            },
            ..Settings::default()
        },
    )
    .with_clock(f.clock.clone());
    assert_eq!(process(&strict, &msg(&id)).await, Outcome::Done);
    let d = state(&f, &id).await;
    assert_eq!(
        d.status,
        DeliveryStatus::Failed,
        "a refused destination is not retried"
    );
    assert!(d.last_error.unwrap().contains("destination refused"));
    assert!(
        rx.hits.lock().unwrap().is_empty(),
        "nothing reached the address"
    );
}

#[tokio::test]
async fn deleted_or_disabled_subscriptions_end_pending_deliveries() {
    let f = fixture(loopback()).await;
    let (rx, url) = receiver(&[]).await;
    let (id, sub) = emit(&f, &url).await;
    subscriptions::update(
        &f.app,
        &f.ws,
        &sub,
        subscriptions::UpdateSubscription {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    process(&f.app, &msg(&id)).await;
    let d = state(&f, &id).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.last_error.as_deref(), Some("subscription disabled"));
    assert!(rx.hits.lock().unwrap().is_empty());
    assert!(matches!(
        process(&f.app, "garbage").await,
        Outcome::Poison(_)
    ));
    assert!(matches!(
        process(&f.app, &msg("dlv_missing")).await,
        Outcome::Poison(_)
    ));
}

#[tokio::test]
async fn two_messages_for_one_delivery_make_one_call() {
    let f = fixture(loopback()).await;
    let (rx, url) = receiver(&[(200, None), (200, None)]).await;
    let (id, _) = emit(&f, &url).await;
    let m = msg(&id);
    let (a, b) = tokio::join!(process(&f.app, &m), process(&f.app, &m));
    assert_eq!((a, b), (Outcome::Done, Outcome::Done));
    assert_eq!(
        rx.hits.lock().unwrap().len(),
        1,
        "the claim lets one of them call"
    );
    let d = state(&f, &id).await;
    assert_eq!((d.attempts, d.status), (1, DeliveryStatus::Succeeded));
}

#[tokio::test]
async fn a_timed_out_attempt_waits_at_least_a_minute() {
    let settings = Settings {
        delivery_timeout: Duration::from_secs(1),
        ..loopback()
    };
    let f = fixture(settings).await;
    let (_rx, url) = receiver(&[(0, None)]).await;
    let (id, _) = emit(&f, &url).await;
    let before = f.clock.now();
    process(&f.app, &msg(&id)).await;
    let d = state(&f, &id).await;
    assert!(
        d.last_error.as_deref().unwrap().starts_with("timeout"),
        "{:?}",
        d.last_error
    );
    assert_eq!(
        (d.next_attempt_at.unwrap() - before).num_seconds(),
        60,
        "not the 5.5 s of the schedule"
    );
}

#[tokio::test]
async fn deliveries_are_listed_newest_first() {
    let f = fixture(loopback()).await;
    let (_rx, url) = receiver(&[]).await;
    let (first, sub) = emit(&f, &url).await;
    let req = agents::CreateAgent {
        name: "b".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, _) = agents::create(&f.app, &f.ws, req).await.unwrap();
    let mut ids = vec![first];
    for _ in 0..3 {
        f.clock.advance(chrono::Duration::seconds(1));
        let mut run = ingress::new_run(&f.app, &agent, TriggerType::Webhook, json!({}), None);
        run.status = RunStatus::Failed;
        events::emit(&f.app, "run.failed", &run).await.unwrap();
        let list = subscriptions::deliveries(&f.app, &f.ws, &sub, 1, None)
            .await
            .unwrap()
            .data;
        ids.push(list[0].id.clone());
    }
    let list = subscriptions::deliveries(&f.app, &f.ws, &sub, 10, None)
        .await
        .unwrap()
        .data;
    let listed: Vec<String> = list.iter().map(|d| d.id.clone()).collect();
    ids.reverse();
    assert_eq!(
        listed, ids,
        "by creation time, newest first, whatever the ids"
    );
}
