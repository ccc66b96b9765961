//! `POST /api/v1/webhooks/{crewId}/{agentId}/trigger` (the per-agent HMAC route): every
//! status it answers, and that rejected calls leave no run behind.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{sign, Hookrun};

const BODY: &[u8] = br#"{"event":"pull_request.opened","source":"github","data":{"repository":"org/repo","pr_number":42}}"#;

async fn error_code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let v: Value = resp.json().await.expect("error answers are JSON");
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn run_count(h: &Hookrun, agent: &str) -> usize {
    let (s, v) = h
        .get(&format!("/api/v1/agents/{agent}/runs?limit=100"))
        .await;
    assert_eq!(s, StatusCode::OK);
    v["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn signature_and_plaintext_secret_are_accepted() {
    // The plaintext header's sunset, extended past today whatever today is
    // (the default date is tested with an injected clock: shared/tests/triggers.rs).
    let h = Hookrun::start_with(&[("HOOKRUN_PLAINTEXT_SECRET_UNTIL", "2099-12-31T23:59:59Z")]);
    let (agent, secret) = h.create_agent(json!({"name": "reviewer"})).await;
    let path = h.trigger_path(&agent);
    let sig = sign(&secret, BODY);

    let resp = h
        .trigger_raw(&path, BODY.to_vec(), &[("x-signature", &sig)])
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().get("deprecation").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "accepted");
    let run_id = v["run_id"].as_str().unwrap();
    assert!(run_id.starts_with("run_"));

    let upper = sig.to_uppercase();
    let resp = h
        .trigger_raw(&path, BODY.to_vec(), &[("x-signature", &upper)])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "uppercase hex is accepted"
    );

    let resp = h
        .trigger_raw(&path, BODY.to_vec(), &[("x-webhook-secret", &secret)])
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["deprecation"], "true");
    assert_eq!(resp.headers()["sunset"], "Thu, 31 Dec 2099 23:59:59 GMT");

    // The run carries what the route's contract says it carries.
    let (s, run) = h.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(run["trigger_type"], "WEBHOOK");
    assert_eq!(run["session_id"], format!("webhook-{agent}"));
    assert_eq!(run["source_ip"], "127.0.0.1");
    assert_eq!(run["agent_id"], agent.as_str());
    assert_eq!(run["workspace_id"], h.workspace.as_str());
    assert_eq!(run["input"]["data"]["pr_number"], 42);
    assert_eq!(
        run["message"],
        "Webhook event received:\nEvent: pull_request.opened\nSource: github\nData: {\"pr_number\":42,\"repository\":\"org/repo\"}"
    );
}

#[tokio::test]
async fn when_both_headers_are_present_the_signature_decides() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    let good = sign(&secret, BODY);
    let bad = sign("not-the-secret", BODY);

    let resp = h
        .trigger_raw(
            &path,
            BODY.to_vec(),
            &[("x-signature", &bad), ("x-webhook-secret", &secret)],
        )
        .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );

    let resp = h
        .trigger_raw(
            &path,
            BODY.to_vec(),
            &[("x-signature", &good), ("x-webhook-secret", "wrong")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        resp.headers().get("deprecation").is_none(),
        "signature auth is not deprecated"
    );
}

#[tokio::test]
async fn bad_credentials_are_401_and_leave_no_run() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    let sig = sign(&secret, BODY);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("x-signature", "".into())],
        vec![("x-signature", "not-hex".into())],
        vec![("x-signature", format!("sha256={sig}"))],
        vec![("x-signature", sig[..63].to_owned())],
        vec![("x-signature", sign("wrong-secret", BODY))],
        vec![("x-webhook-secret", "wrong-secret".into())],
        vec![("x-webhook-secret", format!("{secret}x"))],
        vec![("x-webhook-secret", "".into())],
    ];
    for headers in cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = h.trigger_raw(&path, BODY.to_vec(), &hs).await;
        // The challenge names the signature header, not a Bearer token.
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge, r#"Signature realm="hookrun", header="X-Signature""#,
            "headers {headers:?}"
        );
        let (status, code) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "headers {headers:?}"
        );
    }
    assert_eq!(
        run_count(&h, &agent).await,
        0,
        "no rejected call created a run"
    );
}

#[tokio::test]
async fn a_replayed_signature_with_one_byte_changed_is_401() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    let sig = sign(&secret, BODY);
    let resp = h
        .trigger_raw(&path, BODY.to_vec(), &[("x-signature", &sig)])
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let mut tampered = BODY.to_vec();
    let i = tampered.iter().position(|b| *b == b'4').unwrap(); // pr_number 42 -> 52
    tampered[i] = b'5';
    let resp = h
        .trigger_raw(&path, tampered, &[("x-signature", &sig)])
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        run_count(&h, &agent).await,
        1,
        "only the genuine call made a run"
    );
}

#[tokio::test]
async fn unknown_workspace_or_agent_is_the_same_404() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let sig = sign(&secret, BODY);
    let h1 = [("x-signature", sig.as_str())];
    let a = h
        .trigger_raw(
            &format!("/api/v1/webhooks/ws_nope/{agent}/trigger"),
            BODY.to_vec(),
            &h1,
        )
        .await;
    let b = h
        .trigger_raw(&h.trigger_path("agt_nope"), BODY.to_vec(), &h1)
        .await;
    let c = h
        .trigger_raw(&h.trigger_path("bad%23id"), BODY.to_vec(), &h1)
        .await;
    assert_eq!(a.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.status(), StatusCode::NOT_FOUND);
    assert_eq!(c.status(), StatusCode::NOT_FOUND);
    let (a, b) = (a.text().await.unwrap(), b.text().await.unwrap());
    assert_eq!(a, b, "the answer does not tell which part was unknown");
    assert_eq!(
        a,
        r#"{"error":{"code":"not_found","message":"agent not found"}}"#
    );

    // Another workspace's agent is not found through this workspace's URL.
    let (other_ws, _) = h.create_workspace("other");
    let resp = h
        .trigger_raw(
            &format!("/api/v1/webhooks/{other_ws}/{agent}/trigger"),
            BODY.to_vec(),
            &h1,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_agent_is_404() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let (s, _) = h
        .admin(Method::DELETE, &format!("/api/v1/agents/{agent}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let sig = sign(&secret, BODY);
    let resp = h
        .trigger_raw(
            &h.trigger_path(&agent),
            BODY.to_vec(),
            &[("x-signature", &sig)],
        )
        .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn a_disabled_agent_is_403_after_authentication() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a", "enabled": false})).await;
    let path = h.trigger_path(&agent);
    let resp = h
        .trigger_raw(
            &path,
            BODY.to_vec(),
            &[("x-signature", &sign("wrong", BODY))],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a stranger does not learn the agent is disabled"
    );
    let resp = h
        .trigger_raw(
            &path,
            BODY.to_vec(),
            &[("x-signature", &sign(&secret, BODY))],
        )
        .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    assert_eq!(run_count(&h, &agent).await, 0);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Hookrun::start_with(&[("HOOKRUN_MAX_BODY_BYTES", "1024")]);
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    let big = serde_json::to_vec(&json!({"data": "x".repeat(2000)})).unwrap();
    let sig = sign(&secret, &big);
    let resp = h.trigger_raw(&path, big, &[("x-signature", &sig)]).await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );

    // Exactly at the limit is fine.
    let mut at_limit = br#"{"data":""#.to_vec();
    at_limit.resize(1024 - 2, b'y');
    at_limit.extend_from_slice(br#""}"#);
    assert_eq!(at_limit.len(), 1024);
    let sig = sign(&secret, &at_limit);
    let resp = h
        .trigger_raw(&path, at_limit, &[("x-signature", &sig)])
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(run_count(&h, &agent).await, 1);
}

#[tokio::test]
async fn the_default_body_limit_is_256_kib() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let big = serde_json::to_vec(&json!({"data": "x".repeat(256 * 1024)})).unwrap();
    let sig = sign(&secret, &big);
    let resp = h
        .trigger_raw(&h.trigger_path(&agent), big, &[("x-signature", &sig)])
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    for body in [&b"{not json"[..], b"", b"   ", b"{\"a\":1} trailing"] {
        let sig = sign(&secret, body);
        let resp = h
            .trigger_raw(&path, body.to_vec(), &[("x-signature", &sig)])
            .await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "body {:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(v["error"]["code"], "invalid_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("JSON"),
            "{v}"
        );
    }
    assert_eq!(run_count(&h, &agent).await, 0);
}

#[tokio::test]
async fn other_methods_and_unknown_routes_are_json_errors() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let resp = h
        .http
        .get(h.url(&h.trigger_path(&agent)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
    let resp = h
        .http
        .post(h.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn the_previous_secret_works_during_the_grace_window_only() {
    let h = Hookrun::start();
    let (agent, old) = h.create_agent(json!({"name": "a"})).await;
    let path = h.trigger_path(&agent);
    let (s, rotated) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{agent}/rotate-secret"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_valid_until"].is_string());
    for secret in [&old, &new] {
        let resp = h
            .trigger_raw(
                &path,
                BODY.to_vec(),
                &[("x-signature", &sign(secret, BODY))],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }

    let (s, rotated) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{agent}/rotate-secret"),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(rotated["previous_valid_until"].is_null());
    let newest = rotated["webhook_secret"].as_str().unwrap();
    for (secret, want) in [(&old, 401), (&new, 401), (&newest.to_owned(), 202)] {
        let resp = h
            .trigger_raw(
                &path,
                BODY.to_vec(),
                &[("x-signature", &sign(secret, BODY))],
            )
            .await;
        assert_eq!(resp.status().as_u16(), want);
    }

    // Without a body the default grace window (24 h) applies.
    let (s, rotated) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{agent}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_valid_until"].as_str().unwrap())
            .unwrap();
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "{hours} minutes");
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{agent}/rotate-secret"),
            Some(json!({"grace_seconds": -1})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}
