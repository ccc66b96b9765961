//! `hookrun listen` sessions with an injected clock: a session gets the
//! deliveries a subscription would (same body, headers signed with its
//! secret), its client's reports settle them by the retry schedule, the
//! same machine and label resume the same session, and an expired or
//! closed session hears of nothing. No sleeping but a short long-poll.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hookrun_core::clock::{Clock, ManualClock};
use hookrun_core::error::Error;
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::{Agent, DeliveryStatus, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::services::listen::{self, ListenAttempt, OpenListen};
use hookrun_core::services::{admin, agents, events, ingress, subscriptions};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{App, Settings};
use serde_json::json;

#[path = "support/signed.rs"]
mod signed;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    ws: WorkspaceId,
    agent: Agent,
}

async fn fixture() -> Fixture {
    let start = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::in_memory().unwrap().with_clock(clock.clone());
    // Ordinary subscriptions beside the sessions point at loopback.
    let settings = Settings {
        outbound: hookrun_core::outbound::OutboundPolicy {
            allow_http: true,
            allow: hookrun_core::outbound::parse_allowlist("127.0.0.1/32").unwrap(),
            proxy: None,
        },
        ..Settings::default()
    };
    let app = App::embedded(store, settings).with_jitter(Arc::new(|| 0.5));
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
    Fixture {
        app,
        clock,
        ws,
        agent,
    }
}

fn open_req(label: &str) -> OpenListen {
    serde_json::from_value(json!({
        "machine_id": "laptop-1",
        "label": label,
        "events": ["run.succeeded", "run.failed"],
        "secret": SECRET,
    }))
    .unwrap()
}

/// A finished run's event; returns how many subscriptions heard of it.
async fn finish_run(f: &Fixture, status: RunStatus) -> (String, usize) {
    let mut run = ingress::new_run(
        &f.app,
        &f.agent,
        TriggerType::Webhook,
        json!({"n": 1}),
        None,
    );
    run.status = status;
    let event = if status == RunStatus::Succeeded {
        "run.succeeded"
    } else {
        "run.failed"
    };
    let n = events::emit(&f.app, event, &run).await.unwrap();
    (run.id.to_string(), n)
}

fn report(status: Option<u16>) -> ListenAttempt {
    serde_json::from_value(json!({"status_code": status, "duration_ms": 12, "response": "ok"}))
        .unwrap()
}

#[tokio::test]
async fn a_session_gets_a_subscriptions_deliveries_signed_with_its_secret() {
    let f = fixture().await;
    let s = listen::open(&f.app, &f.ws, open_req("http://localhost:3000/hooks"))
        .await
        .unwrap();
    assert!(s.id.starts_with("sub_listen_"));
    let (run_id, heard) = finish_run(&f, RunStatus::Succeeded).await;
    assert_eq!(heard, 1);
    let due = listen::due(&f.app, &f.ws, &s.id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let d = &due[0];
    assert_eq!(d.run_id.to_string(), run_id);
    assert_eq!(d.attempt, 1);
    // The body a subscription gets, and headers signed with the session's
    // secret, checked the way a receiver checks them.
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["event"], "run.succeeded");
    assert_eq!(d.headers["webhook-id"], d.id);
    let ts: i64 = d.headers["webhook-timestamp"].parse().unwrap();
    let want = hookrun_core::signature::standard_webhooks(&d.id, ts, &d.body, &[SECRET.into()]);
    assert_eq!(d.headers["webhook-signature"], want);
    assert!(d.headers.contains_key("x-crewship-signature"));
    // The delivery log shows it, marked as a listen session's.
    let log = subscriptions::deliveries(&f.app, &f.ws, &s.id, 10, None)
        .await
        .unwrap();
    assert!(log.data[0].listen);

    // A 2xx settles it: it is not given again.
    let settled = listen::report(&f.app, &f.ws, &s.id, &d.id, report(Some(200)))
        .await
        .unwrap();
    assert_eq!(settled.status, DeliveryStatus::Succeeded);
    assert!(listen::due(&f.app, &f.ws, &s.id, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    // Reported again (a client that lost the answer): it stands.
    let again = listen::report(&f.app, &f.ws, &s.id, &d.id, report(Some(500)))
        .await
        .unwrap();
    assert_eq!(again.status, DeliveryStatus::Succeeded);
    assert_eq!(again.attempts, 1);
}

#[tokio::test]
async fn a_failed_forward_comes_back_by_the_retry_schedule() {
    let f = fixture().await;
    let s = listen::open(&f.app, &f.ws, open_req("local"))
        .await
        .unwrap();
    finish_run(&f, RunStatus::Failed).await;
    let d = listen::due(&f.app, &f.ws, &s.id, Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let after = listen::report(&f.app, &f.ws, &s.id, &d.id, report(Some(500)))
        .await
        .unwrap();
    assert_eq!(after.status, DeliveryStatus::Pending);
    assert_eq!(after.last_status_code, Some(500));
    let next = after.next_attempt_at.unwrap();
    assert!(next > f.clock.now());
    // Not due before its time; due after, as attempt 2.
    assert!(listen::due(&f.app, &f.ws, &s.id, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    f.clock.set(next);
    let again = listen::due(&f.app, &f.ws, &s.id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, d.id);
    assert_eq!(again[0].attempt, 2);
    // No answer at all counts as a failure too.
    let refused = listen::report(
        &f.app,
        &f.ws,
        &s.id,
        &d.id,
        serde_json::from_value(json!({"error": "connection refused", "duration_ms": 1})).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(refused.last_error.as_deref(), Some("connection refused"));
    assert_eq!(refused.attempts, 2);
}

#[tokio::test]
async fn the_same_machine_and_label_resume_one_session_and_expiry_or_close_ends_it() {
    let f = fixture().await;
    let a = listen::open(&f.app, &f.ws, open_req("one")).await.unwrap();
    let b = listen::open(&f.app, &f.ws, open_req("one")).await.unwrap();
    let other = listen::open(&f.app, &f.ws, open_req("two")).await.unwrap();
    assert_eq!(a.id, b.id, "the same machine and label: the same session");
    assert_ne!(a.id, other.id);
    // A run while the session lives: kept for it across a reopen.
    finish_run(&f, RunStatus::Succeeded).await;
    listen::open(&f.app, &f.ws, open_req("one")).await.unwrap();
    assert_eq!(
        listen::due(&f.app, &f.ws, &a.id, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        1
    );

    // Its client gone past the session's time: runs after that are not
    // delivered to it.
    f.clock
        .set(f.clock.now() + chrono::Duration::from_std(listen::SESSION_TTL).unwrap());
    let (_, heard) = finish_run(&f, RunStatus::Succeeded).await;
    assert_eq!(heard, 0, "expired sessions hear of nothing");

    // The subscriptions API may not change a session (its client keeps it).
    let change: subscriptions::UpdateSubscription =
        serde_json::from_value(json!({"name": "mine now"})).unwrap();
    assert!(matches!(
        subscriptions::update(&f.app, &f.ws, &other.id, change).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        subscriptions::rotate_secret(
            &f.app,
            &f.ws,
            &other.id,
            serde_json::from_value(json!({})).unwrap()
        )
        .await,
        Err(Error::Conflict(_))
    ));

    // Closing a session gives up what it had still to forward.
    let pending = f.app.repo.deliveries_of(&other.id, 10, None).await.unwrap();
    assert_eq!(pending.data[0].status, DeliveryStatus::Pending);
    listen::close(&f.app, &f.ws, &other.id).await.unwrap();
    let closed = f.app.repo.deliveries_of(&other.id, 10, None).await.unwrap();
    assert_eq!(closed.data[0].status, DeliveryStatus::Failed);
    assert_eq!(
        closed.data[0].last_error.as_deref(),
        Some("the listen session was closed")
    );
    assert!(matches!(
        listen::due(&f.app, &f.ws, &other.id, Duration::ZERO).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn bad_sessions_are_refused_naming_the_field_and_a_fetch_waits() {
    let f = fixture().await;
    for (patch, field) in [
        (json!({"machine_id": ""}), "machine_id"),
        (json!({"machine_id": "a/b"}), "machine_id"),
        (json!({"label": ""}), "label"),
        (json!({"secret": "plain"}), "secret"),
        (json!({"secret": "whsec_c2hvcnQ="}), "secret"),
        (json!({"events": ["run.exploded"]}), "events"),
        (json!({"agent_id": "agt_nope"}), "agent_id"),
    ] {
        let mut v = json!({"machine_id": "m", "label": "l", "secret": SECRET});
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        let e = listen::open(&f.app, &f.ws, serde_json::from_value(v.clone()).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field: got, .. } if got == field),
            "{v}: {e:?}"
        );
    }
    // An ordinary subscription is not a session.
    let (sub, _) = subscriptions::create(
        &f.app,
        &f.ws,
        serde_json::from_value(
            json!({"name": "s", "url": "http://127.0.0.1:9/h", "events": ["run.failed"]}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(
        listen::due(&f.app, &f.ws, &sub.id, Duration::ZERO).await,
        Err(Error::NotFound(_))
    ));
    // Nothing due: the fetch waits as long as asked, then answers empty.
    let s = listen::open(&f.app, &f.ws, open_req("w")).await.unwrap();
    let started = std::time::Instant::now();
    assert!(listen::due(&f.app, &f.ws, &s.id, Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_waiting_fetch_ends_at_once_when_the_server_stops() {
    let f = fixture().await;
    let s = listen::open(&f.app, &f.ws, open_req("stop")).await.unwrap();
    let app = f.app.clone();
    let ws = f.ws.clone();
    let started = std::time::Instant::now();
    let waiting =
        tokio::spawn(async move { listen::due(&app, &ws, &s.id, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.app.live.close();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the fetch ended")
        .unwrap()
        .unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The first deliveries-queue message waiting, as a consumer takes it.
async fn next_message(f: &Fixture) -> Option<String> {
    f.app
        .queue
        .receive(
            hookrun_core::ports::QueueId::Deliveries,
            1,
            Duration::from_secs(1),
        )
        .await
        .unwrap()
        .pop()
        .map(|m| m.body)
}

async fn process(f: &Fixture, body: &str) {
    let done =
        hookrun_core::work::process(&f.app, hookrun_core::ports::QueueId::Deliveries, body, None)
            .await;
    assert_eq!(done, hookrun_core::work::Outcome::Done);
}

/// The deliveries-queue message of a delivery's turn.
fn turn_of(delivery_id: &str) -> String {
    hookrun_core::work::Message::Delivery {
        delivery_id: delivery_id.to_owned(),
        manual: false,
    }
    .encode()
}

/// The `delivery` message a push carries, checked as its client checks it.
fn pushed(push: &hookrun_core::live::ListenPush, session: &str, attempt: u64) -> serde_json::Value {
    assert_eq!(push.session_id, session);
    let m: serde_json::Value = serde_json::from_str(&push.text).unwrap();
    assert_eq!(m["type"], "delivery");
    assert_eq!(m["session_id"], session);
    let d = &m["delivery"];
    assert_eq!(d["attempt"], attempt);
    signed::assert_standard_signed(d, SECRET);
    d.clone()
}

#[tokio::test]
async fn the_delivery_worker_pushes_due_deliveries_to_the_session_and_again_by_the_schedule() {
    let f = fixture().await;
    let s = listen::open(&f.app, &f.ws, open_req("pushed"))
        .await
        .unwrap();
    let mut pushes = f.app.live.subscribe_listen();
    let (run_id, _) = finish_run(&f, RunStatus::Succeeded).await;

    // The delivery's queue message, as any subscription's: its turn pushes
    // it, signed, and it stays pending until its client reports.
    let first = next_message(&f).await.expect("a queue message");
    process(&f, &first).await;
    let d = pushed(&pushes.try_recv().unwrap(), &s.id, 1);
    assert_eq!(d["run_id"], run_id.as_str());
    let id = d["id"].as_str().unwrap().to_owned();
    let log = subscriptions::deliveries(&f.app, &f.ws, &s.id, 10, None)
        .await
        .unwrap();
    assert_eq!(log.data[0].status, DeliveryStatus::Pending);
    assert_eq!(log.data[0].attempts, 0, "the client makes the attempts");

    // A failed forward: the retry is a queue message of its own, whose
    // turn before the delivery is due pushes nothing, and after pushes
    // attempt 2.
    let after = listen::report(&f.app, &f.ws, &s.id, &id, report(Some(503)))
        .await
        .unwrap();
    let next = after.next_attempt_at.unwrap();
    process(&f, &turn_of(&id)).await;
    assert!(pushes.try_recv().is_err(), "not due yet: nothing pushed");
    f.clock.set(next);
    process(&f, &turn_of(&id)).await;
    pushed(&pushes.try_recv().unwrap(), &s.id, 2);

    // A client that says `listen` (one that was away) is given what is
    // due now, the same delivery and attempt, and keeps the session alive.
    f.clock.advance(chrono::Duration::seconds(200));
    let resumed = listen::resume(&f.app, &f.ws, &s.id, true).await.unwrap();
    let due = resumed.due.unwrap();
    assert_eq!(due.len(), 1);
    assert!(!resumed.more);
    assert_eq!((due[0].id.as_str(), due[0].attempt), (id.as_str(), 2));
    assert!(resumed.session.expires_at > f.clock.now() + chrono::Duration::seconds(250));
    // A keep-alive gives nothing, and keeps the session too.
    f.clock.advance(chrono::Duration::seconds(200));
    let kept = listen::resume(&f.app, &f.ws, &s.id, false).await.unwrap();
    assert!(kept.due.is_none());
    assert!(kept.session.expires_at > f.clock.now() + chrono::Duration::seconds(250));

    // Reported taken: neither given nor pushed again.
    listen::report(&f.app, &f.ws, &s.id, &id, report(Some(204)))
        .await
        .unwrap();
    assert_eq!(
        listen::resume(&f.app, &f.ws, &s.id, true)
            .await
            .unwrap()
            .due
            .map(|d| d.len()),
        Some(0)
    );
    process(&f, &turn_of(&id)).await;
    assert!(pushes.try_recv().is_err());

    // Another workspace cannot listen to the session.
    let other = WorkspaceId::generate();
    assert!(matches!(
        listen::resume(&f.app, &other, &s.id, true).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_backlog_is_given_a_page_at_a_time_oldest_first() {
    let f = fixture().await;
    let s = listen::open(&f.app, &f.ws, open_req("backlog"))
        .await
        .unwrap();
    let mut runs = Vec::new();
    for _ in 0..(listen::PAGE + 3) {
        runs.push(finish_run(&f, RunStatus::Succeeded).await.0);
        f.clock.advance(chrono::Duration::milliseconds(5));
    }
    let first = listen::resume(&f.app, &f.ws, &s.id, true).await.unwrap();
    let page = first.due.unwrap();
    assert!(first.more);
    assert_eq!(page.len(), listen::PAGE);
    let given: Vec<String> = page.iter().map(|d| d.run_id.to_string()).collect();
    assert_eq!(given, runs[..listen::PAGE], "oldest first");
    for d in &page {
        listen::report(&f.app, &f.ws, &s.id, &d.id, report(Some(200)))
            .await
            .unwrap();
    }
    let rest = listen::resume(&f.app, &f.ws, &s.id, true).await.unwrap();
    assert!(!rest.more);
    let given: Vec<String> = rest
        .due
        .unwrap()
        .iter()
        .map(|d| d.run_id.to_string())
        .collect();
    assert_eq!(given, runs[listen::PAGE..]);
}
