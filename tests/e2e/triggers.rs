//! Triggers over HTTP: management, every route × auth outcome, provider
//! signatures, sources, event filters, mapping, limits, dedup, invocation
//! logs, deletion.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::Hookrun;

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

async fn trigger(h: &Hookrun, body: Value) -> Value {
    let (s, v) = h
        .admin(Method::POST, "/api/v1/webhook-triggers", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn post(
    h: &Hookrun,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = h.http.post(h.url(path)).body(body.to_vec());
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (s, hs) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        hs,
    )
}

async fn runs_of(h: &Hookrun, agent: &str) -> Vec<Value> {
    let (_, v) = h
        .get(&format!("/api/v1/agents/{agent}/runs?limit=100"))
        .await;
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn create_shows_token_and_secret_once_and_lists_fields() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(&h, json!({
        "agent_id": agent, "name": "GitHub PR Review", "description": "reviews PRs", "generate_secret": true,
        "event_types": ["pull_request.opened"], "environment": "staging", "rate_limit_per_minute": 50,
        "metadata": {"team": "infra"}, "allowed_sources": {"origins": ["github.com"], "ips": ["140.82.112.0/20"]},
        "input_mapping": {"title": "/pull_request/title"}
    })).await;
    let token = t["token"].as_str().unwrap();
    assert!(token.starts_with("wht_"));
    assert!(t["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(t["token_prefix"], &token[..12]);
    assert_eq!(t["has_secret"], true);
    assert_eq!(t["is_active"], true);
    assert!(t["last_used_at"].is_null());
    assert!(t["created_by_id"].as_str().unwrap().starts_with("key_"));
    for field in [
        "id",
        "workspace_id",
        "agent_id",
        "name",
        "created_at",
        "updated_at",
        "signature",
        "allowed_sources",
        "input_mapping",
        "event_types",
        "environment",
        "rate_limit_per_minute",
        "metadata",
    ] {
        assert!(t.get(field).is_some(), "{field} is shown");
    }
    assert_eq!(
        t["urls"]["token_url"],
        h.url(&format!("/webhooks/runs/{token}"))
    );

    let id = t["id"].as_str().unwrap();
    let (s, got) = h.get(&format!("/api/v1/webhook-triggers/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        got.get("token").is_none() && got.get("secret").is_none(),
        "shown once"
    );
    assert!(!got.to_string().contains(&token[12..]), "no token anywhere");
    assert_eq!(got["token_prefix"], t["token_prefix"]);

    let (other_agent, _) = h.create_agent(json!({"name": "b"})).await;
    trigger(&h, json!({"agent_id": other_agent, "name": "other"})).await;
    let (_, all) = h.get("/api/v1/webhook-triggers").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let (_, mine) = h
        .get(&format!("/api/v1/webhook-triggers?agent_id={agent}"))
        .await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["id"], id);
}

#[tokio::test]
async fn bad_trigger_input_is_400_and_creates_nothing() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    for bad in [
        json!({"agent_id": "agt_nope", "name": "x"}),
        json!({"agent_id": agent, "name": ""}),
        json!({"agent_id": agent, "name": "x", "generate_secret": true, "secret": "abcdefgh1"}),
        json!({"agent_id": agent, "name": "x", "secret": "short"}),
        json!({"agent_id": agent, "name": "x", "signature": {"scheme": "md5"}}),
        json!({"agent_id": agent, "name": "x", "signature": {"scheme": "hmac", "encoding": "rot13"}}),
        json!({"agent_id": agent, "name": "x", "signature": {"scheme": "standard-webhooks"}, "secret": "not-a-whsec-key"}),
        json!({"agent_id": agent, "name": "x", "allowed_sources": {"ips": ["10.0.0.0/99"]}}),
        json!({"agent_id": agent, "name": "x", "allowed_sources": {"hosts": ["x"]}}),
        json!({"agent_id": agent, "name": "x", "input_mapping": {"a": "no-slash"}}),
        json!({"agent_id": agent, "name": "x", "input_mapping": {"a": {"pointer": "/a", "required": "yes"}}}),
        json!({"agent_id": agent, "name": "x", "environment": "dev"}),
        json!({"agent_id": agent, "name": "x", "rate_limit_per_minute": 0}),
        json!({"agent_id": agent, "name": "x", "metadata": [1]}),
        json!({"agent_id": agent, "name": "x", "colour": "red"}),
        json!({"agent_id": agent, "name": "x", "signature": {"scheme": "github"}}),
    ] {
        let (s, v) = h
            .admin(Method::POST, "/api/v1/webhook-triggers", Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (_, all) = h.get("/api/v1/webhook-triggers").await;
    assert_eq!(all["data"], json!([]));
    let (s, _) = h.get("/api/v1/webhook-triggers/trg_nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn token_url_route() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(&h, json!({"agent_id": agent, "name": "cron"})).await;
    let token = t["token"].as_str().unwrap();
    let (s, v, _) = post(
        &h,
        &format!("/webhooks/runs/{token}"),
        br#"{"topic":"AI agents","year":"2025"}"#,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["version_number"], 1);
    assert!(v["version_id"].as_str().unwrap().starts_with("ver_"));
    let run_id = v["run_id"].as_str().unwrap();
    let run = h.wait_finished(run_id, Duration::from_secs(20)).await;
    assert_eq!(run["trigger_type"], "TOKEN");
    assert_eq!(run["trigger_id"], t["id"]);
    assert_eq!(run["input"]["topic"], "AI agents");

    let (s, _, _) = post(&h, "/webhooks/runs/wht_unknown", b"{}", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A bare ping (no body) is fine for schedulers.
    let (s, _, _) = post(&h, &format!("/webhooks/runs/{token}"), b"", &[]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v, _) = post(&h, &format!("/webhooks/runs/{token}"), b"{broken", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn id_route_with_and_without_secret() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let open = trigger(&h, json!({"agent_id": agent, "name": "open"})).await;
    // The create answer says that the id URL takes calls from anyone.
    assert!(
        open["urls"]["by_id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/webhooks/{}", open["id"].as_str().unwrap())),
        "{open}"
    );
    assert!(
        open["authentication"]["by_id"]
            .as_str()
            .unwrap()
            .starts_with("none: anyone who knows the trigger id"),
        "{open}"
    );
    assert_eq!(
        open["authentication"]["bearer"],
        "Authorization: Bearer with the trigger token"
    );
    let (s, v, _) = post(
        &h,
        &format!("/api/webhooks/{}", open["id"].as_str().unwrap()),
        br#"{"message":"Deploy to production"}"#,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = h
        .wait_finished(v["run_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(
        run["message"], "Deploy to production",
        "the message field is the instruction"
    );
    assert_eq!(run["trigger_type"], "WEBHOOK");

    let closed = trigger(
        &h,
        json!({"agent_id": agent, "name": "closed", "generate_secret": true}),
    )
    .await;
    let (id, secret) = (
        closed["id"].as_str().unwrap(),
        closed["secret"].as_str().unwrap(),
    );
    assert_eq!(
        closed["authentication"]["by_id"],
        "the trigger's hmac signature in X-Webhook-Signature, or the secret itself in X-Webhook-Secret"
    );
    assert_eq!(
        closed["authentication"]["token_url"],
        "the trigger token in the URL, plus the trigger's hmac signature in X-Webhook-Signature"
    );
    let path = format!("/api/webhooks/{id}");
    let body = br#"{"message":"hi"}"#;
    let sig = format!("sha256={}", hmac_hex(secret.as_bytes(), &[body]));
    let cases: [(&[(&str, &str)], StatusCode); 6] = [
        (&[("x-webhook-secret", secret)], StatusCode::ACCEPTED),
        (
            &[("x-webhook-secret", "wrong-secret")],
            StatusCode::UNAUTHORIZED,
        ),
        (&[], StatusCode::UNAUTHORIZED),
        (&[("x-webhook-signature", &sig)], StatusCode::ACCEPTED),
        (
            &[("x-webhook-signature", "sha256=00")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("x-webhook-signature", &sig[7..])],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (headers, want) in cases {
        let (s, v, _) = post(&h, &path, body, headers).await;
        assert_eq!(s, want, "{headers:?}: {v}");
    }
    let (s, _, _) = post(&h, "/api/webhooks/trg_nope", body, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bearer_route_with_signature() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let plain = trigger(&h, json!({"agent_id": agent, "name": "plain"})).await;
    let signed = trigger(
        &h,
        json!({"agent_id": agent, "name": "signed", "generate_secret": true}),
    )
    .await;
    let body = br#"{"message":"Review this PR","pr_number":42}"#;
    let (pt, st, secret) = (
        plain["token"].as_str().unwrap(),
        signed["token"].as_str().unwrap(),
        signed["secret"].as_str().unwrap(),
    );
    let sig = format!("sha256={}", hmac_hex(secret.as_bytes(), &[body]));
    let (bp, bs, bw) = (
        format!("Bearer {pt}"),
        format!("Bearer {st}"),
        "Bearer wht_0000".to_string(),
    );
    let cases: [(&[(&str, &str)], StatusCode); 7] = [
        (&[], StatusCode::UNAUTHORIZED),
        (&[("authorization", &bw)], StatusCode::UNAUTHORIZED),
        (&[("authorization", "Basic abc")], StatusCode::UNAUTHORIZED),
        (&[("authorization", &bp)], StatusCode::ACCEPTED),
        (&[("authorization", &bs)], StatusCode::UNAUTHORIZED),
        (
            &[
                ("authorization", &bs),
                ("x-webhook-signature", "sha256=beef"),
            ],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("authorization", &bs), ("x-webhook-signature", &sig)],
            StatusCode::ACCEPTED,
        ),
    ];
    for (headers, want) in cases {
        let (s, v, _) = post(&h, "/api/v1/webhook/trigger", body, headers).await;
        assert_eq!(s, want, "{headers:?}: {v}");
        if s == StatusCode::ACCEPTED {
            assert_eq!(v["status"], "accepted");
        }
    }
    let runs = runs_of(&h, &agent).await;
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r["trigger_type"] == "TOKEN" && r["input"]["pr_number"] == 42));
}

#[tokio::test]
async fn agent_route_validates_sources() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let path = format!("/api/v1/agents/{agent}/webhook");
    let (s, _, _) = post(&h, &path, b"{}", &[]).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "no trigger registered for the agent route"
    );

    let t = trigger(
        &h,
        json!({"agent_id": agent, "name": "helpdesk", "agent_route": true,
        "allowed_sources": {"origins": ["https://desk.example.com"], "ips": ["10.0.0.0/8"]}}),
    )
    .await;
    let (s, v, _) = post(&h, &path, b"{}", &[]).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "127.0.0.1 without an allowed origin: {v}"
    );
    let (s, _, _) = post(&h, &path, b"{}", &[("origin", "https://evil.example.com")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v, _) = post(
        &h,
        &path,
        br#"{"ticket":7}"#,
        &[("origin", "https://desk.example.com")],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    let id = t["id"].as_str().unwrap();
    let (s, _) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhook-triggers/{id}"),
            Some(json!({"allowed_sources": {"ips": ["127.0.0.0/8"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = post(&h, &path, b"{}", &[]).await;
    assert_eq!(
        s,
        StatusCode::ACCEPTED,
        "the caller's IP is inside an allowed range"
    );
    let (s, _) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhook-triggers/{id}"),
            Some(json!({"allowed_sources": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = post(&h, &path, b"{}", &[]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "an empty allowlist allows all");

    // Only one trigger per agent answers its route.
    let (s, v) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(json!({"agent_id": agent, "name": "second", "agent_route": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The info endpoint lists the URLs, never a secret or a token.
    let (s, info) = h.get(&path).await;
    assert_eq!(s, StatusCode::OK);
    let urls: Vec<&str> = info["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["url"].as_str().unwrap())
        .collect();
    assert!(urls
        .iter()
        .any(|u| u.ends_with(&format!("/api/v1/agents/{agent}/webhook"))));
    assert!(urls
        .iter()
        .any(|u| u.ends_with(&format!("/api/webhooks/{id}"))));
    assert!(urls.iter().any(|u| u.ends_with("/trigger")));
    assert!(!info
        .to_string()
        .contains(&t["token"].as_str().unwrap()[12..]));
    assert_eq!(info["allowed_sources"], json!({"origins": [], "ips": []}));
}

#[tokio::test]
async fn github_stripe_slack_and_standard_webhooks_signatures() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let now = chrono::Utc::now().timestamp();

    // GitHub, with its published test secret.
    let gh_secret = "It's a Secret to Everybody";
    let gh = trigger(&h, json!({"agent_id": agent, "name": "gh", "secret": gh_secret, "signature": {"scheme": "github"},
        "event_types": ["pull_request.opened"]})).await;
    let path = format!("/api/webhooks/{}", gh["id"].as_str().unwrap());
    let body = br#"{"action":"opened","pull_request":{"title":"Add auth"}}"#;
    let sig = format!("sha256={}", hmac_hex(gh_secret.as_bytes(), &[body]));
    let hdrs = [
        ("x-hub-signature-256", sig.as_str()),
        ("x-github-event", "pull_request"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ];
    let (s, v, _) = post(&h, &path, body, &hdrs).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let first = v["run_id"].as_str().unwrap().to_owned();
    let run = h.wait_finished(&first, Duration::from_secs(20)).await;
    assert!(
        run["message"]
            .as_str()
            .unwrap()
            .starts_with("Webhook event received:\nEvent: pull_request.opened\nSource: github\n"),
        "the provider's event and source name the message: {}",
        run["message"]
    );
    let (s, v, _) = post(&h, &path, body, &hdrs).await;
    assert_eq!(
        (s, v["run_id"].as_str().unwrap()),
        (StatusCode::ACCEPTED, first.as_str()),
        "X-GitHub-Delivery dedups"
    );
    let push = br#"{"ref":"refs/heads/main"}"#;
    let push_sig = format!("sha256={}", hmac_hex(gh_secret.as_bytes(), &[push]));
    let (s, v, _) = post(
        &h,
        &path,
        push,
        &[
            ("x-hub-signature-256", &push_sig),
            ("x-github-event", "push"),
        ],
    )
    .await;
    assert_eq!(
        (s, v.clone()),
        (StatusCode::ACCEPTED, json!({"status": "ignored"})),
        "not among event_types"
    );
    let (s, _, _) = post(
        &h,
        &path,
        body,
        &[
            ("x-hub-signature-256", &push_sig),
            ("x-github-event", "pull_request"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a signature of another body");
    // GitHub's own vector: the signature passes, then the non-JSON body is a 400.
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let (s, _, _) = post(
        &h,
        &path,
        b"Hello, World!",
        &[("x-hub-signature-256", vector)],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Stripe: two v1 values, one made with a rolled (stale) secret.
    let st_secret = "whsec_stripe_endpoint_secret_1";
    let st = trigger(&h, json!({"agent_id": agent, "name": "stripe", "secret": st_secret, "signature": {"scheme": "stripe"}})).await;
    let path = format!("/api/webhooks/{}", st["id"].as_str().unwrap());
    let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let t = now.to_string();
    let good = hmac_hex(st_secret.as_bytes(), &[t.as_bytes(), b".", body]);
    let stale = hmac_hex(b"whsec_old_rolled_secret", &[t.as_bytes(), b".", body]);
    let header = format!("t={t},v1={stale},v1={good}");
    let (s, v, _) = post(&h, &path, body, &[("stripe-signature", &header)]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let old_t = (now - 600).to_string();
    let old = format!(
        "t={old_t},v1={}",
        hmac_hex(st_secret.as_bytes(), &[old_t.as_bytes(), b".", body])
    );
    let (s, _, _) = post(&h, &path, body, &[("stripe-signature", &old)]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "too old");
    let future_t = (now + 600).to_string();
    let future = format!(
        "t={future_t},v1={}",
        hmac_hex(st_secret.as_bytes(), &[future_t.as_bytes(), b".", body])
    );
    let (s, _, _) = post(&h, &path, body, &[("stripe-signature", &future)]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "too far in the future");

    // Slack: a form body, kept as text.
    let sl_secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let sl = trigger(&h, json!({"agent_id": agent, "name": "slack", "secret": sl_secret, "signature": {"scheme": "slack"}})).await;
    let path = format!("/api/webhooks/{}", sl["id"].as_str().unwrap());
    let body = b"token=x&command=%2Fdeploy&text=prod";
    let sig = format!(
        "v0={}",
        hmac_hex(sl_secret.as_bytes(), &[b"v0:", t.as_bytes(), b":", body])
    );
    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-slack-request-timestamp", t.as_str()),
        ("x-slack-signature", sig.as_str()),
    ];
    let (s, v, _) = post(&h, &path, body, &form).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = h
        .wait_finished(v["run_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(run["input"], "token=x&command=%2Fdeploy&text=prod");

    // Standard Webhooks, with a generated whsec_ key; webhook-id dedups.
    let sw = trigger(&h, json!({"agent_id": agent, "name": "sw", "generate_secret": true, "signature": {"scheme": "standard-webhooks"}})).await;
    let secret = sw["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(&secret[6..])
        .unwrap();
    let path = format!("/api/webhooks/{}", sw["id"].as_str().unwrap());
    let body = br#"{"type":"invoice.paid"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("msg_1.{t}.").as_bytes());
    mac.update(body);
    let sig = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let hdrs = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", t.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    let (s, a, _) = post(&h, &path, body, &hdrs).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    let (_, b, _) = post(&h, &path, body, &hdrs).await;
    assert_eq!(a["run_id"], b["run_id"]);
    let (s, _, _) = post(
        &h,
        &path,
        body,
        &[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", t.as_str()),
            ("webhook-signature", "v1,AAAA"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Grafana: a configurable hex header without prefix.
    let gf = trigger(&h, json!({"agent_id": agent, "name": "grafana", "secret": "grafana-secret", "signature": {"scheme": "hmac", "header": "X-Grafana-Alerting-Signature"}})).await;
    let body = br#"{"status":"firing"}"#;
    let sig = hmac_hex(b"grafana-secret", &[body]);
    let (s, v, _) = post(
        &h,
        &format!("/api/webhooks/{}", gf["id"].as_str().unwrap()),
        body,
        &[("x-grafana-alerting-signature", &sig)],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
}

#[tokio::test]
async fn input_mapping_builds_the_input() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(
        &h,
        json!({"agent_id": agent, "name": "m", "input_mapping": {
            "title": "/pull_request/title",
            "priority": {"pointer": "/priority", "default": "low"},
            "repo": {"pointer": "/repository/full_name", "required": true}
        }}),
    )
    .await;
    let path = format!("/api/webhooks/{}", t["id"].as_str().unwrap());
    let (s, v, _) = post(&h, &path, br#"{"message":"Review it","pull_request":{"title":"Fix"},"repository":{"full_name":"org/repo"},"noise":1}"#, &[]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = h
        .wait_finished(v["run_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(
        run["input"],
        json!({"title": "Fix", "priority": "low", "repo": "org/repo"})
    );
    assert_eq!(run["message"], "Review it");
    let (s, v, _) = post(&h, &path, br#"{"pull_request":{"title":"Fix"}}"#, &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("\"repo\""),
        "names the field: {v}"
    );
    assert_eq!(runs_of(&h, &agent).await.len(), 1);
}

#[tokio::test]
async fn limits_answer_429_with_headers() {
    let h = Hookrun::start_with(&[("HOOKRUN_RATE_LIMIT_PER_IP", "3")]);
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(&h, json!({"agent_id": agent, "name": "t", "rate_limit_per_minute": 2, "generate_secret": true})).await;
    let path = format!("/webhooks/runs/{}", t["token"].as_str().unwrap());
    let secret = t["secret"].as_str().unwrap();
    let sig = format!("sha256={}", hmac_hex(secret.as_bytes(), &[b"{}"]));
    // Calls straddling a minute boundary would see two windows: wait until
    // a fresh minute has room for the whole test.
    while chrono::Utc::now().timestamp() % 60 > 50 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for _ in 0..2 {
        let (s, _, hs) = post(&h, &path, b"{}", &[("x-webhook-signature", &sig)]).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(hs["ratelimit-limit"], "2");
    }
    let (s, v, hs) = post(&h, &path, b"{}", &[("x-webhook-signature", &sig)]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("for this trigger"),
        "{v}"
    );
    let retry: u64 = hs["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(hs["ratelimit-remaining"], "0");
    assert!(hs.contains_key("ratelimit-reset"));

    // The per-IP limit counts before authentication: a wrong secret gets a
    // 429, not a 401, once this IP spent its three calls.
    let id_path = format!("/api/webhooks/{}", t["id"].as_str().unwrap());
    let (s, v, _) = post(&h, &id_path, b"{}", &[("x-webhook-secret", "wrong-secret")]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per source IP"),
        "{v}"
    );
    assert_eq!(runs_of(&h, &agent).await.len(), 2);
}

#[tokio::test]
async fn idempotency_key_repeats_create_nothing() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(&h, json!({"agent_id": agent, "name": "t"})).await;
    let path = format!("/webhooks/runs/{}", t["token"].as_str().unwrap());
    let (_, a, _) = post(&h, &path, b"{}", &[("idempotency-key", "order-1")]).await;
    let (s, b, _) = post(&h, &path, b"{}", &[("idempotency-key", "order-1")]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(a["run_id"], b["run_id"]);
    // The repeat answers the run's status now (the echo agent is quick).
    h.wait_finished(
        a["run_id"].as_str().unwrap(),
        std::time::Duration::from_secs(20),
    )
    .await;
    let (_, later, _) = post(&h, &path, b"{}", &[("idempotency-key", "order-1")]).await;
    assert_eq!(later["status"], "succeeded", "{later}");
    // The same key with another body is refused, and creates nothing.
    let (s, other, _) = post(
        &h,
        &path,
        br#"{"other":"body"}"#,
        &[("idempotency-key", "order-1")],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    assert_eq!(other["error"]["code"], "unprocessable");
    let (_, c, _) = post(&h, &path, b"{}", &[("idempotency-key", "order-2")]).await;
    assert_ne!(a["run_id"], c["run_id"]);
    assert_eq!(runs_of(&h, &agent).await.len(), 2);
}

#[tokio::test]
async fn invocations_log_every_outcome_without_secrets() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(
        &h,
        json!({"agent_id": agent, "name": "t", "generate_secret": true, "event_types": ["deploy"]}),
    )
    .await;
    let (id, token, secret) = (
        t["id"].as_str().unwrap(),
        t["token"].as_str().unwrap(),
        t["secret"].as_str().unwrap(),
    );
    let bearer = format!("Bearer {token}");
    let ok_body = br#"{"event":"deploy","env":"prod"}"#;
    let ok_sig = format!("sha256={}", hmac_hex(secret.as_bytes(), &[ok_body]));
    let (s, _, _) = post(
        &h,
        "/api/v1/webhook/trigger",
        ok_body,
        &[("authorization", &bearer), ("x-webhook-signature", &ok_sig)],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, _) = post(
        &h,
        "/api/v1/webhook/trigger",
        ok_body,
        &[
            ("authorization", &bearer),
            ("x-webhook-signature", "sha256=00"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = br#"{"event":"build"}"#;
    let other_sig = format!("sha256={}", hmac_hex(secret.as_bytes(), &[other]));
    let (_, v, _) = post(
        &h,
        "/api/v1/webhook/trigger",
        other,
        &[
            ("authorization", &bearer),
            ("x-webhook-signature", &other_sig),
        ],
    )
    .await;
    assert_eq!(v["status"], "ignored");
    let (s, _, _) = post(
        &h,
        &format!("/api/webhooks/{id}"),
        ok_body,
        &[("x-webhook-secret", secret)],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let (s, log) = h
        .get(&format!("/api/v1/webhook-triggers/{id}/invocations"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{log}");
    let results: Vec<(&str, u64)> = entries
        .iter()
        .map(|e| (e["result"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        results,
        [("accepted", 202), ("ignored", 202), ("accepted", 202)],
        "newest first"
    );
    // The call that failed to authenticate is counted, not logged.
    let tallies = log["rejected_unauthenticated"].as_array().unwrap();
    assert_eq!(tallies.len(), 1, "{log}");
    assert_eq!(tallies[0]["reason"], "unauthorized");
    assert_eq!(tallies[0]["count"], 1);
    assert_eq!(tallies[0]["last_source_ip"], "127.0.0.1");
    assert_eq!(entries[2]["source_ip"], "127.0.0.1");
    assert!(entries[2]["run_id"].as_str().unwrap().starts_with("run_"));
    // An accepted call points to its run, which holds the payload; a call
    // that made no run keeps the start of its body.
    assert!(entries[2]["payload_excerpt"].is_null(), "{log}");
    assert_eq!(
        entries[1]["payload_excerpt"],
        std::str::from_utf8(other).unwrap()
    );
    assert!(entries[0]["timestamp"].is_string());
    // Kept for the retention period (14 days by default), then expired.
    let expires = entries[0]["expires_at"].as_i64().unwrap();
    let in_days = (expires - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!((13.9..=14.1).contains(&in_days), "{in_days} days");
    let text = log.to_string();
    for secret_thing in [token, secret, &ok_sig[7..]] {
        assert!(
            !text.contains(secret_thing),
            "the log holds no secret, token or signature"
        );
    }
    let (s, t2) = h.get(&format!("/api/v1/webhook-triggers/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(t2["last_used_at"].is_string());
    let (s, page) = h
        .get(&format!(
            "/api/v1/webhook-triggers/{id}/invocations?limit=2"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn inactive_deleted_regenerated_and_tested() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(
        &h,
        json!({"agent_id": agent, "name": "t", "generate_secret": true}),
    )
    .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let token = t["token"].as_str().unwrap().to_owned();
    let token_path = format!("/webhooks/runs/{token}");
    let sign =
        |secret: &str, body: &[u8]| format!("sha256={}", hmac_hex(secret.as_bytes(), &[body]));
    let old_secret = t["secret"].as_str().unwrap().to_owned();

    // Test event through the pipeline.
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/webhook-triggers/{id}/test"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = h
        .wait_finished(v["run_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(run["trigger_type"], "TEST");
    assert_eq!(run["trigger_id"], id.as_str());

    // Inactive → 403, active again → 202.
    let (s, v) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhook-triggers/{id}"),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!((s, v["is_active"].clone()), (StatusCode::OK, json!(false)));
    let (s, _, _) = post(
        &h,
        &token_path,
        b"{}",
        &[("x-webhook-signature", &sign(&old_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/webhook-triggers/{id}/test"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    h.admin(
        Method::PATCH,
        &format!("/api/v1/webhook-triggers/{id}"),
        Some(json!({"is_active": true})),
    )
    .await;
    let (s, _, _) = post(
        &h,
        &token_path,
        b"{}",
        &[("x-webhook-signature", &sign(&old_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // A new secret: the old one stops at once.
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/webhook-triggers/{id}/regenerate-secret"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_secret = v["secret"].as_str().unwrap().to_owned();
    let (s, _, _) = post(
        &h,
        &token_path,
        b"{}",
        &[("x-webhook-signature", &sign(&old_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = post(
        &h,
        &token_path,
        b"{}",
        &[("x-webhook-signature", &sign(&new_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // A new token: the old URL is gone at once.
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/webhook-triggers/{id}/regenerate-token"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_token = v["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    let (s, _, _) = post(
        &h,
        &token_path,
        b"{}",
        &[("x-webhook-signature", &sign(&new_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(
        &h,
        &format!("/webhooks/runs/{new_token}"),
        b"{}",
        &[("x-webhook-signature", &sign(&new_secret, b"{}"))],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // Deleted: every URL answers 404 (the bearer one: an unknown token, 401).
    let (s, _) = h
        .admin(
            Method::DELETE,
            &format!("/api/v1/webhook-triggers/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = post(&h, &format!("/webhooks/runs/{new_token}"), b"{}", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(
        &h,
        &format!("/api/webhooks/{id}"),
        b"{}",
        &[("x-webhook-secret", &new_secret)],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(
        &h,
        "/api/v1/webhook/trigger",
        b"{}",
        &[("authorization", &format!("Bearer {new_token}"))],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h.get(&format!("/api/v1/webhook-triggers/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Another workspace sees none of it.
    let t2 = trigger(&h, json!({"agent_id": agent, "name": "t2"})).await;
    let (_, key) = h.create_workspace("other");
    let resp = h
        .http
        .get(h.url(&format!(
            "/api/v1/webhook-triggers/{}",
            t2["id"].as_str().unwrap()
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = h
        .http
        .get(h.url(&format!("/api/v1/agents/{agent}/webhook")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_updates_name_limits_mapping_and_event_types() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let t = trigger(&h, json!({"agent_id": agent, "name": "old", "event_types": ["deploy"], "input_mapping": {"x": "/x"}})).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/api/v1/webhook-triggers/{id}");
    let (s, v) = h
        .admin(Method::PATCH, &path, Some(json!({"name": "new", "rate_limit_per_minute": 2, "event_types": ["build"], "input_mapping": null})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["rate_limit_per_minute"].as_u64()),
        (Some("new"), Some(2))
    );
    assert_eq!(v["event_types"], json!(["build"]));
    assert!(v["input_mapping"].is_null(), "null clears the mapping");
    assert_ne!(v["updated_at"], t["updated_at"]);

    // The new settings apply to calls at once (within one minute's window).
    while chrono::Utc::now().timestamp() % 60 > 50 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let token_path = format!("/webhooks/runs/{}", t["token"].as_str().unwrap());
    let (_, v, _) = post(&h, &token_path, br#"{"event":"deploy"}"#, &[]).await;
    assert_eq!(v["status"], "ignored", "deploy is no longer wanted");
    let (s, v, _) = post(&h, &token_path, br#"{"event":"build","y":2}"#, &[]).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = h
        .wait_finished(v["run_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(
        run["input"],
        json!({"event": "build", "y": 2}),
        "no mapping: the payload is the input"
    );
    let (s, _, _) = post(&h, &token_path, br#"{"event":"build"}"#, &[]).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the new limit of 2 a minute (the ignored call counted too)"
    );

    for bad in [
        json!({"rate_limit_per_minute": 0}),
        json!({"name": ""}),
        json!({"event_types": [""]}),
        json!({"token": "x"}),
    ] {
        let (s, v) = h.admin(Method::PATCH, &path, Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, _) = h
        .admin(
            Method::PATCH,
            "/api/v1/webhook-triggers/trg_nope",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A 401 names what the caller must send: the provider's signature header on
/// a signed trigger (the configured one for `hmac`), a Bearer token on the
/// bearer route.
#[tokio::test]
async fn a_401_names_the_credential_the_route_expects() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let gh = trigger(
        &h,
        json!({"agent_id": agent, "name": "gh", "secret": "s3cret-value-for-github",
        "signature": {"scheme": "github"}}),
    )
    .await;
    let custom = trigger(
        &h,
        json!({"agent_id": agent, "name": "custom", "secret": "s3cret-value-for-hmac",
        "signature": {"scheme": "hmac", "header": "X-Acme-Signature"}}),
    )
    .await;
    // The create answers name the same headers as the challenges below.
    assert_eq!(
        gh["authentication"]["by_id"],
        "the trigger's github signature in X-Hub-Signature-256"
    );
    assert_eq!(
        custom["authentication"]["bearer"],
        "Authorization: Bearer with the trigger token, plus the trigger's hmac signature in X-Acme-Signature"
    );
    let body = br#"{"a":1}"#;
    let cases = [
        (
            format!("/api/webhooks/{}", gh["id"].as_str().unwrap()),
            vec![("x-hub-signature-256", "sha256=00")],
            r#"Signature realm="hookrun", header="X-Hub-Signature-256""#,
        ),
        (
            format!("/api/webhooks/{}", gh["id"].as_str().unwrap()),
            vec![("x-webhook-secret", "s3cret-value-for-github")],
            r#"Signature realm="hookrun", header="X-Hub-Signature-256""#,
        ),
        (
            format!("/api/webhooks/{}", custom["id"].as_str().unwrap()),
            vec![],
            r#"Signature realm="hookrun", header="X-Acme-Signature""#,
        ),
        (
            "/api/v1/webhook/trigger".to_string(),
            vec![("authorization", "Bearer wht_0000")],
            r#"Bearer realm="hookrun""#,
        ),
    ];
    for (path, headers, challenge) in cases {
        let (s, v, hs) = post(&h, &path, body, &headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} {headers:?}: {v}");
        assert_eq!(v["error"]["code"], "unauthorized", "{v}");
        assert_eq!(hs["www-authenticate"], challenge, "{path} {headers:?}");
    }
}
