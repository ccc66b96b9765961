//! Hostile traffic through the router on the embedded store: failed
//! credentials are limited per address, without locking out other
//! addresses or the right credential from that address; provider-scheme triggers refuse a plaintext secret;
//! protocol-level refusals are JSON errors too.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hookrun_core::ids::{AgentId, WorkspaceId};
use hookrun_core::model::RunnerConfig;
use hookrun_core::services::triggers::{self, CreateTrigger};
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{http, App, Settings};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "hardening-test-admin-key-0123456789";

struct Fixture {
    app: App,
    ws: WorkspaceId,
    agent: AgentId,
}

async fn fixture(settings: Settings) -> Fixture {
    let app = App::embedded(SqliteStore::in_memory().unwrap(), settings);
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
    let (agent, _) = agents::create(&app, &ws, req).await.unwrap();
    Fixture {
        app,
        ws,
        agent: agent.id,
    }
}

/// Sends `req` as if it came from `from` (the socket's peer).
async fn send(f: &Fixture, from: &str, mut req: Request<Body>) -> (u16, Value) {
    let peer: SocketAddr = from.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = http::router(f.app.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn admin_get(key: &str) -> Request<Body> {
    Request::get("/api/v1/agents")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn admin_key_guessing_is_limited_per_address_never_the_right_key() {
    let f = fixture(Settings::default()).await;
    for i in 0..20 {
        let (s, _) = send(
            &f,
            "198.51.100.7:4000",
            admin_get(&format!("hka_guess_{i}")),
        )
        .await;
        assert_eq!(s, 401, "guess {i}");
    }
    let (s, v) = send(&f, "198.51.100.7:4000", admin_get("hka_guess_more")).await;
    assert_eq!(s, 429, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("failed authentications"));
    // The right key from that address still works (a typo loop or a
    // neighbour must not lock the operator out); wrong ones stay refused.
    let (s, v) = send(&f, "198.51.100.7:4000", admin_get(ADMIN)).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(&f, "198.51.100.7:4000", admin_get("hka_guess_again")).await;
    assert_eq!(s, 429);
    // Other addresses are not locked out.
    let (s, _) = send(&f, "198.51.100.8:4000", admin_get(ADMIN)).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn an_ipv6_client_is_counted_by_its_64() {
    let f = fixture(Settings {
        auth_failures_per_minute: 3,
        ..Settings::default()
    })
    .await;
    for i in 0..3 {
        let from = format!("[2001:db8:7:7::{i:x}]:4000");
        assert_eq!(send(&f, &from, admin_get("hka_wrong")).await.0, 401);
    }
    let (s, _) = send(&f, "[2001:db8:7:7:ffff::1]:4000", admin_get("hka_wrong")).await;
    assert_eq!(s, 429, "another address of the same /64");
    let (s, _) = send(&f, "[2001:db8:7:7:ffff::1]:4000", admin_get(ADMIN)).await;
    assert_eq!(s, 200, "the right key is never locked out");
    let (s, _) = send(&f, "[2001:db8:7:8::1]:4000", admin_get(ADMIN)).await;
    assert_eq!(s, 200, "another /64");
}

#[tokio::test]
async fn token_guessing_is_limited_per_address() {
    let f = fixture(Settings {
        auth_failures_per_minute: 5,
        ..Settings::default()
    })
    .await;
    let post = |path: String| {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    for i in 0..5 {
        let (s, _) = send(
            &f,
            "203.0.113.5:1",
            post(format!("/webhooks/runs/wht_guess{i}")),
        )
        .await;
        assert_eq!(s, 404);
    }
    let (s, v) = send(&f, "203.0.113.5:1", post("/webhooks/runs/wht_more".into())).await;
    assert_eq!(s, 429, "{v}");
    let bearer = Request::post("/api/v1/webhook/trigger")
        .header("authorization", "Bearer wht_guess")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&f, "203.0.113.5:1", bearer).await.0, 429);
    let bearer = Request::post("/api/v1/webhook/trigger")
        .header("authorization", "Bearer wht_guess")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        send(&f, "203.0.113.6:1", bearer).await.0,
        401,
        "another address"
    );
    // A real token from the locked-out address is accepted, on both routes.
    let req = CreateTrigger {
        agent_id: f.agent.to_string(),
        name: "t".into(),
        description: None,
        generate_secret: false,
        secret: None,
        signature: None,
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
    let (_, token, _) = triggers::create(&f.app, &f.ws, "test", req).await.unwrap();
    let (s, v) = send(&f, "203.0.113.5:1", post(format!("/webhooks/runs/{token}"))).await;
    assert_eq!(s, 202, "{v}");
    let bearer = Request::post("/api/v1/webhook/trigger")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&f, "203.0.113.5:1", bearer).await.0, 202);
}

#[tokio::test]
async fn internal_token_guessing_is_limited_never_the_right_token() {
    const INTERNAL: &str = "hardening-internal-token-0123456789";
    let f = fixture(Settings {
        auth_failures_per_minute: 2,
        internal_token: Some(INTERNAL.into()),
        ..Settings::default()
    })
    .await;
    let get = |token: &str| {
        Request::get(format!(
            "/api/v1/internal/agents/{}/webhook-secret",
            f.agent
        ))
        .header("x-internal-token", token)
        .body(Body::empty())
        .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(send(&f, "192.0.2.50:1", get("wrong-token")).await.0, 401);
    }
    assert_eq!(send(&f, "192.0.2.50:1", get("wrong-token")).await.0, 429);
    let (s, v) = send(&f, "192.0.2.50:1", get(INTERNAL)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["webhook_secret"].as_str().is_some(), "{v}");
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let f = fixture(Settings {
        auth_failures_per_minute: 2,
        trusted_proxies: hookrun_core::outbound::parse_allowlist("10.0.0.0/8").unwrap(),
        ..Settings::default()
    })
    .await;
    let via_proxy = |client: &str| {
        let mut r = admin_get("hka_wrong");
        r.headers_mut().insert(
            "x-forwarded-for",
            format!("{client}, 10.1.1.1").parse().unwrap(),
        );
        r
    };
    // Two clients behind the same proxy are told apart.
    for _ in 0..2 {
        assert_eq!(send(&f, "10.0.0.5:1", via_proxy("192.0.2.10")).await.0, 401);
    }
    assert_eq!(send(&f, "10.0.0.5:1", via_proxy("192.0.2.10")).await.0, 429);
    assert_eq!(send(&f, "10.0.0.5:1", via_proxy("192.0.2.11")).await.0, 401);
    // An untrusted peer cannot pick its address by header.
    for _ in 0..2 {
        assert_eq!(
            send(&f, "198.51.100.1:1", via_proxy("192.0.2.99")).await.0,
            401
        );
    }
    assert_eq!(
        send(&f, "198.51.100.1:1", via_proxy("192.0.2.98")).await.0,
        429
    );
}

#[tokio::test]
async fn a_provider_scheme_trigger_refuses_the_plaintext_secret() {
    let f = fixture(Settings::default()).await;
    let req = CreateTrigger {
        agent_id: f.agent.to_string(),
        name: "gh".into(),
        description: None,
        generate_secret: false,
        secret: Some("github-webhook-secret".into()),
        signature: Some(serde_json::from_value(json!({"scheme": "github"})).unwrap()),
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
    let call = Request::post(format!("/api/webhooks/{}", t.id))
        .header("content-type", "application/json")
        .header("x-webhook-secret", "github-webhook-secret")
        .body(Body::from("{}"))
        .unwrap();
    let (s, v) = send(&f, "192.0.2.1:1", call).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256"),
        "{v}"
    );
}

#[tokio::test]
async fn an_oversized_management_body_is_a_json_error() {
    let f = fixture(Settings::default()).await;
    let req = CreateTrigger {
        agent_id: f.agent.to_string(),
        name: "t".into(),
        description: None,
        generate_secret: false,
        secret: None,
        signature: None,
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
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(70 * 1024));
    let call = Request::post(format!("/api/v1/webhook-triggers/{}/test", t.id))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let (s, v) = send(&f, "192.0.2.1:1", call).await;
    assert_eq!(s, 413);
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
}

/// A flood of calls that fail to authenticate writes counters, not rows:
/// the trigger's history stays readable and the store does not grow.
#[tokio::test]
async fn unauthenticated_calls_are_counted_not_logged() {
    let f = fixture(Settings {
        rate_limit_per_ip: 0,
        ..Settings::default()
    })
    .await;
    let req = CreateTrigger {
        agent_id: f.agent.to_string(),
        name: "signed".into(),
        description: None,
        generate_secret: true,
        secret: None,
        signature: None,
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
    for _ in 0..300 {
        let call = Request::post(format!("/api/webhooks/{}", t.id))
            .header("content-type", "application/json")
            .header("x-webhook-signature", "sha256=00")
            .body(Body::from(r#"{"payload":"junk"}"#))
            .unwrap();
        assert_eq!(send(&f, "192.0.2.44:1", call).await.0, 401);
    }
    let list = Request::get(format!("/api/v1/webhook-triggers/{}/invocations", t.id))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (s, v) = send(&f, "192.0.2.1:1", list).await;
    assert_eq!(s, 200);
    assert!(
        v["data"].as_array().unwrap().is_empty(),
        "no row per refused call"
    );
    let tally = &v["rejected_unauthenticated"][0];
    assert_eq!(tally["reason"], "unauthorized");
    assert_eq!(tally["count"], 300);
    assert_eq!(tally["last_source_ip"], "192.0.2.44");
    assert!(
        !v.to_string().contains("junk"),
        "no payload of an unauthenticated call is kept"
    );
}
