//! What ingress accepts can be stored, read back, listed and run; one
//! unreadable record spoils only itself; idempotency keys are bound to
//! their body; a signed delivery id beats an unsigned key. Through the
//! router, on the embedded store.

use axum::body::Body;
use axum::http::Request;
use hookrun_core::ids::{AgentId, WorkspaceId};
use hookrun_core::model::{Record, Run, RunnerConfig};
use hookrun_core::ports::QueueId;
use hookrun_core::ports::{Condition, Item, ItemTable};
use hookrun_core::services::triggers::{self, CreateTrigger};
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{http, signature, work, App, Settings};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "durability-test-admin-key-01-abcdefghij";

struct Fixture {
    app: App,
    store: SqliteStore,
    ws: WorkspaceId,
    agent: AgentId,
    secret: String,
}

async fn fixture() -> Fixture {
    let store = SqliteStore::in_memory().unwrap();
    let settings = Settings {
        rate_limit_per_ip: 0,
        rate_limit_per_trigger: 0,
        rate_limit_per_workspace: 0,
        ..Settings::default()
    };
    let app = App::embedded(store.clone(), settings);
    let ws = admin::bootstrap(&app, Some(ADMIN))
        .await
        .unwrap()
        .workspace
        .id;
    let req = agents::CreateAgent {
        name: "a".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, secret) = agents::create(&app, &ws, req).await.unwrap();
    Fixture {
        app,
        store,
        ws,
        agent: agent.id,
        secret,
    }
}

async fn send(f: &Fixture, req: Request<Body>) -> (u16, Value) {
    let resp = http::router(f.app.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn trigger(f: &Fixture, body: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = Request::post(format!("/api/v1/webhooks/{}/{}/trigger", f.ws, f.agent))
        .header("content-type", "application/json")
        .header(
            "x-signature",
            signature::sign_hex(&f.secret, body.as_bytes()),
        );
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    send(f, req.body(Body::from(body.to_owned())).unwrap()).await
}

async fn admin_get(f: &Fixture, path: &str) -> (u16, Value) {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    send(f, req).await
}

fn nested(levels: usize) -> String {
    format!(
        r#"{{"event":"deep","data":{}1{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[tokio::test]
async fn the_deepest_accepted_body_is_stored_read_back_listed_and_run() {
    let f = fixture().await;
    // 64 levels in all: the object itself, then 63 arrays.
    let (s, v) = trigger(&f, &nested(63), None).await;
    assert_eq!(s, 202, "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_owned();
    let (s, run) = admin_get(&f, &format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["input"]["event"], "deep");
    let (s, list) = admin_get(&f, &format!("/api/v1/agents/{}/runs", f.agent)).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["data"][0]["id"], run_id.as_str());
    // ... and executed, as a runs-queue consumer would.
    let body = json!({ "run_id": run_id }).to_string();
    work::process(&f.app, QueueId::Runs, &body, None).await;
    let (_, run) = admin_get(&f, &format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // One level deeper is refused before anything is written.
    let (s, v) = trigger(&f, &nested(64), None).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 64"),
        "{v}"
    );
    let (s, v) = trigger(&f, &nested(126), None).await;
    assert_eq!(s, 400, "{v}");
    let (_, list) = admin_get(&f, &format!("/api/v1/agents/{}/runs", f.agent)).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "no run for refused bodies"
    );
}

#[tokio::test]
async fn an_unreadable_record_spoils_only_itself() {
    let f = fixture().await;
    let (s, v) = trigger(&f, r#"{"event":"fine"}"#, None).await;
    assert_eq!(s, 202, "{v}");
    let good = v["run_id"].as_str().unwrap().to_owned();
    // A stored run that does not decode (as if written by a broken version).
    let (pk, sk) = Run::key_for("run_broken");
    let item = Item::new(pk, sk, json!({"id": "run_broken", "status": 42}))
        .with_gsi1(Run::agent_partition(&f.agent), "run_broken");
    f.store.put(item, Condition::NotExists).await.unwrap();

    let (s, list) = admin_get(&f, &format!("/api/v1/agents/{}/runs", f.agent)).await;
    assert_eq!(s, 200, "the listing still answers: {list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], good.as_str());
    assert_eq!(list["unreadable"][0]["id"], "run_broken", "{list}");
    let (s, v) = admin_get(&f, "/api/v1/runs/run_broken").await;
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["error"]["message"], "a stored record could not be read");
    let (s, _) = admin_get(&f, &format!("/api/v1/runs/{good}")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn an_idempotency_key_is_bound_to_its_body() {
    let f = fixture().await;
    let (s, first) = trigger(&f, r#"{"event":"order","n":1}"#, Some("order-1")).await;
    assert_eq!(s, 202, "{first}");
    let (s, again) = trigger(&f, r#"{"event":"order","n":1}"#, Some("order-1")).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["run_status"], "queued", "the run's status now");
    let (s, other) = trigger(&f, r#"{"event":"order","n":2}"#, Some("order-1")).await;
    assert_eq!(s, 422, "{other}");
    assert_eq!(other["error"]["code"], "unprocessable");
    assert!(other["error"]["message"]
        .as_str()
        .unwrap()
        .contains("different request body"));
}

#[tokio::test]
async fn a_signed_delivery_id_beats_an_unsigned_key() {
    let f = fixture().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let req = CreateTrigger {
        agent_id: f.agent.to_string(),
        name: "standard".into(),
        description: None,
        generate_secret: false,
        secret: Some(secret.into()),
        signature: Some(serde_json::from_value(json!({"scheme": "standard-webhooks"})).unwrap()),
        allowed_sources: None,
        input_mapping: None,
        event_types: None,
        environment: None,
        rate_limit_per_minute: None,
        metadata: None,
        agent_route: false,
        is_active: None,
        respond_when: None,
        concurrency: None,
    };
    let (t, _, _) = triggers::create(&f.app, &f.ws, "key_test", req)
        .await
        .unwrap();
    let body = r#"{"type":"invoice.paid"}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let sign = |id: &str| {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mac = signature::hmac_sha256(&key, format!("{id}.{ts}.{body}").as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        )
    };
    let call = |idempotency: Option<&'static str>| {
        let mut req = Request::post(format!("/api/webhooks/{}", t.id))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.clone())
            .header("webhook-signature", sign("msg_1"));
        if let Some(k) = idempotency {
            req = req.header("idempotency-key", k);
        }
        req.body(Body::from(body)).unwrap()
    };
    let (s, first) = send(&f, call(None)).await;
    assert_eq!(s, 202, "{first}");
    // The captured call replayed with an added key: still the same run.
    let (s, replay) = send(&f, call(Some("fresh-key"))).await;
    assert_eq!(s, 202, "{replay}");
    assert_eq!(replay["run_id"], first["run_id"]);
    assert_eq!(replay["duplicate"], true);
}
