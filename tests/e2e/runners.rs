//! Agents that run a model: a trigger starts an `openai` agent (against
//! an OpenAI-compatible fake), its lines come over the WebSocket as
//! `agent.log` events as they stream, and its usage is on the run, on the
//! terminal event and in the outgoing webhook's `data.usage`. Its API key
//! is shown once as a hint and appears in no answer and no log line.
//! A `bedrock` agent reaches Bedrock where `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
//! says (a fake writing event-stream frames), with the default chain's
//! credentials.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{FakeAgent, Hookrun, Receiver, ADMIN_KEY, LOOPBACK_DELIVERIES};
use crate::live::{next_json, subscribe, ws_connect};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "sk-e2e-0123456789-never-shown-ABCD";

#[tokio::test]
async fn an_openai_agent_streams_its_lines_and_reports_its_usage_everywhere() {
    let fake = FakeAgent::start().await;
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let mut answers: Vec<Value> = Vec::new();
    let (s, sub) = h
        .admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "ops", "url": rx.url(), "events": ["run.succeeded"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let (s, created) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({
                "name": "reviewer",
                "runner": {
                    "type": "openai",
                    "base_url": fake.url("/v1"),
                    "model": "gpt-fake",
                    "api_key": KEY,
                    "system": "You review {{ trigger.type }} events.",
                    "prompt": "Review: {{ input.title }}",
                },
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["runner"]["has_api_key"], true);
    assert_eq!(created["runner"]["api_key_hint"], "ABCD");
    answers.push(created.clone());
    let agent = created["id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();

    let mut ws = ws_connect(&h, ADMIN_KEY).await;
    let channel = format!("workspace:{}", h.workspace);
    subscribe(
        &mut ws,
        json!({"type": "subscribe", "channel": channel, "agent_id": agent}),
    )
    .await;
    let run_id = h
        .trigger(&agent, &secret, json!({"title": "Fix the parser"}))
        .await;
    let mut lines = Vec::new();
    let terminal = loop {
        let e = tokio::time::timeout(WAIT, next_json(&mut ws))
            .await
            .expect("events in time");
        assert_eq!(e["run_id"], run_id.as_str(), "{e}");
        match e["type"].as_str().unwrap() {
            "agent.log" if e["data"]["stream"] == "output" => {
                lines.push(e["data"]["line"].as_str().unwrap().to_owned())
            }
            "run.succeeded" | "run.failed" => break e,
            _ => {}
        }
    };
    assert_eq!(terminal["type"], "run.succeeded", "{terminal}");
    assert_eq!(lines, ["Looks good.", "Ship it."]);
    let usage = json!({"model": "gpt-fake", "input_tokens": 12, "output_tokens": 5});
    assert_eq!(terminal["data"]["usage"], usage, "{terminal}");

    // The model was asked as configured, with the key.
    let calls = fake.calls("/v1/chat/completions");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["auth"], format!("Bearer {KEY}"));
    assert_eq!(
        calls[0]["messages"][0]["content"],
        "You review WEBHOOK events."
    );
    assert_eq!(calls[0]["messages"][1]["content"], "Review: Fix the parser");

    // The run, its listing and the outgoing webhook carry the usage.
    let (_, run) = h.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["usage"], usage, "{run}");
    assert_eq!(run["output"]["text"], "Looks good.\nShip it.");
    answers.push(run);
    // Summed per day and model, over the API and the CLI.
    let (s, report) = h.get(&format!("/api/v1/agents/{agent}/usage")).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["days"][0]["model"], "gpt-fake", "{report}");
    assert_eq!(report["days"][0]["input_tokens"], 12, "{report}");
    let (s, bad) = h
        .get(&format!("/api/v1/agents/{agent}/usage?since=yesterday"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    let runs = crate::cli::cli(&h, &["runs", "list", "--agent", &agent]);
    assert!(runs.stdout.contains("12/5"), "{}", runs.stdout);
    let table = crate::cli::cli(&h, &["agents", "usage", &agent]);
    assert!(
        table.stdout.contains("gpt-fake") && table.stdout.contains("12"),
        "{}",
        table.stdout
    );
    let got = rx.wait_for(1, WAIT).await;
    let delivered = got[0].json();
    assert_eq!(delivered["data"]["usage"], usage, "{delivered}");

    // The key is in no answer and no log line.
    for path in [
        format!("/api/v1/agents/{agent}"),
        "/api/v1/agents".to_owned(),
        format!("/api/v1/runs/{run_id}/logs"),
    ] {
        answers.push(h.get(&path).await.1);
    }
    let (s, updated) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{agent}"),
            Some(json!({"runner": {"type": "openai", "base_url": fake.url("/v1"), "model": "gpt-fake-2"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["runner"]["api_key_hint"], "ABCD",
        "kept by an update without it"
    );
    answers.push(updated);
    for answer in &answers {
        assert!(!answer.to_string().contains("0123456789-never"), "{answer}");
    }
    assert!(
        !h.log().contains("0123456789-never"),
        "the server log has the key"
    );
}

#[tokio::test]
async fn a_bad_openai_configuration_is_refused_naming_the_field() {
    let h = Hookrun::start();
    for (runner, field) in [
        (
            json!({"type": "openai", "model": "m", "prompt": "{{ nope }}"}),
            "runner.prompt",
        ),
        (
            json!({"type": "openai", "model": "m", "system": "{% for %}"}),
            "runner.system",
        ),
        (
            json!({"type": "openai", "model": "m", "api_key": 42}),
            "a credential must be a string",
        ),
        (
            json!({"type": "openai", "model": "m", "base_url": "http://169.254.169.254/v1"}),
            "runner.base_url",
        ),
        (
            json!({"type": "openai", "model": "m", "temperature": 9}),
            "runner.temperature",
        ),
    ] {
        let (s, e) = h
            .admin(
                Method::POST,
                "/api/v1/agents",
                Some(json!({"name": "bad", "runner": runner})),
            )
            .await;
        // A body that does not fit the schema is a 422, a bad value 400.
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&s),
            "{runner}: {s} {e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{runner}: {e}"
        );
    }
    let (_, list) = h.get("/api/v1/agents").await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["name"] != "bad"));
}

/// Every call to an `http` agent is signed (Standard Webhooks) with the
/// agent's signing secret, shown once at creation; a rotation with a
/// grace window signs with both, without one with the new only.
#[tokio::test]
async fn http_agents_are_called_signed_and_their_signing_secret_rotates() {
    let agent_side = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (s, created) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"name": "signed", "runner": {"type": "http", "url": agent_side.url()}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let first = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{created}");
    let agent = created["id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let (_, shown) = h.get(&format!("/api/v1/agents/{agent}")).await;
    assert!(
        !shown.to_string().contains(&first[6..]),
        "shown once: {shown}"
    );

    let run_id = h.trigger(&agent, &secret, json!({"event": "one"})).await;
    h.wait_finished(&run_id, WAIT).await;
    let call = &agent_side.wait_for(1, WAIT).await[0];
    assert_eq!(call.header("webhook-id"), run_id);
    assert!(
        crate::outgoing::standard_verify(&first, call),
        "signed: {:?}",
        call.headers
    );
    assert_eq!(call.json()["run_id"], run_id.as_str());

    // Rotated with a grace window: both secrets verify the next call.
    let path = format!("/api/v1/agents/{agent}/rotate-signing-secret");
    let (s, rotated) = h
        .admin(Method::POST, &path, Some(json!({"grace_seconds": 600})))
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let second = rotated["signing_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");
    let run_id = h.trigger(&agent, &secret, json!({"event": "two"})).await;
    h.wait_finished(&run_id, WAIT).await;
    let call = &agent_side.wait_for(2, WAIT).await[1];
    assert!(crate::outgoing::standard_verify(&second, call));
    assert!(crate::outgoing::standard_verify(&first, call));

    // Without one: the new secret only.
    let (s, rotated) = h
        .admin(Method::POST, &path, Some(json!({"grace_seconds": 0})))
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let third = rotated["signing_secret"].as_str().unwrap().to_owned();
    let run_id = h.trigger(&agent, &secret, json!({"event": "three"})).await;
    h.wait_finished(&run_id, WAIT).await;
    let call = &agent_side.wait_for(3, WAIT).await[2];
    assert!(crate::outgoing::standard_verify(&third, call));
    assert!(!crate::outgoing::standard_verify(&second, call));

    // hookrun verify checks an agent's call as it checks a delivery.
    let dir = tempfile::tempdir().unwrap();
    let headers: String = call
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    std::fs::write(dir.path().join("headers"), headers).unwrap();
    std::fs::write(dir.path().join("body"), &call.body).unwrap();
    let (h_path, b_path) = (dir.path().join("headers"), dir.path().join("body"));
    let verify = |secret: &str| {
        crate::cli::cli(
            &h,
            &[
                "verify",
                "--secret",
                secret,
                "--headers",
                h_path.to_str().unwrap(),
                "--body",
                b_path.to_str().unwrap(),
            ],
        )
    };
    let ok = verify(&third);
    assert_eq!(ok.code, 0, "{} {}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout.contains("webhook-signature      valid"),
        "{}",
        ok.stdout
    );
    assert_ne!(verify(&first).code, 0);
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/agents/agt_nope/rotate-signing-secret",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// An `http` agent's own headers (an `Authorization` for its gateway) go
/// with every call; their values are write-only, kept by an update that
/// leaves them out, removed by `{}`, never shown or logged.
#[tokio::test]
async fn http_agent_headers_are_sent_and_never_shown() {
    let agent_side = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let token = "Bearer gateway-token-0123456789-WXYZ";
    let runner = json!({"type": "http", "url": agent_side.url(), "headers": {"Authorization": token, "X-Team": "reviews-team"}});
    let (s, created) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"name": "gated", "runner": runner})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["runner"]["headers"]["Authorization"],
        json!({"set": true, "hint": "WXYZ"})
    );
    assert!(!created.to_string().contains("gateway-token"), "{created}");
    let agent = created["id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let run = h.trigger(&agent, &secret, json!({"event": "one"})).await;
    h.wait_finished(&run, WAIT).await;
    let call = &agent_side.wait_for(1, WAIT).await[0];
    assert_eq!(call.header("authorization"), token);
    assert_eq!(call.header("x-team"), "reviews-team");
    assert_eq!(call.header("content-type"), "application/json");

    // An update without headers keeps them; `{}` removes them.
    let path = format!("/api/v1/agents/{agent}");
    let url = agent_side.url();
    let (s, kept) = h
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"runner": {"type": "http", "url": url}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{kept}");
    assert_eq!(kept["runner"]["headers"]["X-Team"]["set"], true, "{kept}");
    let run = h.trigger(&agent, &secret, json!({"event": "two"})).await;
    h.wait_finished(&run, WAIT).await;
    assert_eq!(
        agent_side.wait_for(2, WAIT).await[1].header("authorization"),
        token
    );
    let (s, cleared) = h
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"runner": {"type": "http", "url": url, "headers": {}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["runner"]["headers"], json!({}));
    let run = h.trigger(&agent, &secret, json!({"event": "three"})).await;
    h.wait_finished(&run, WAIT).await;
    let third = &agent_side.wait_for(3, WAIT).await[2];
    assert!(
        !third.headers.contains_key("authorization"),
        "{:?}",
        third.headers
    );

    // Headers hookrun sets itself, and bad names or values, are refused.
    for (headers, field) in [
        (
            json!({"Content-Type": "text/plain"}),
            "runner.headers.Content-Type",
        ),
        (
            json!({"webhook-signature": "v1,x"}),
            "runner.headers.webhook-signature",
        ),
        (json!({"Bad Name": "x"}), "runner.headers"),
        (json!({"X-Ok": "line\nbreak"}), "runner.headers.X-Ok"),
    ] {
        let (s, e) = h
            .admin(
                Method::POST,
                "/api/v1/agents",
                Some(json!({"name": "bad", "runner": {"type": "http", "url": url, "headers": headers}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{headers}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")) || message.starts_with(&format!("{field} ")),
            "{e}"
        );
    }
    assert!(
        !h.log().contains("gateway-token"),
        "the server log has the header"
    );
}

/// A Bedrock ConverseStream fake: two text deltas, the stop, the usage.
async fn bedrock_fake() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    fn event(kind: &str, payload: Value) -> Vec<u8> {
        let message = Message::new(payload.to_string().into_bytes())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_fake = seen.clone();
    let router = axum::Router::new().route(
        "/model/{model}/converse-stream",
        axum::routing::post(
            move |axum::extract::Path(model): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let seen = seen_by_fake.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push((format!("{model} {auth}"), body));
                    let mut frames = Vec::new();
                    for t in ["Looks good.\n", "Ship it."] {
                        frames.extend(event(
                            "contentBlockDelta",
                            json!({"contentBlockIndex": 0, "delta": {"text": t}}),
                        ));
                    }
                    frames.extend(event("messageStop", json!({"stopReason": "end_turn"})));
                    frames.extend(event(
                        "metadata",
                        json!({"usage": {"inputTokens": 40, "outputTokens": 4, "totalTokens": 44}, "metrics": {"latencyMs": 9}}),
                    ));
                    (
                        [("content-type", "application/vnd.amazon.eventstream")],
                        frames,
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn a_bedrock_agent_runs_where_the_endpoint_variable_says_with_its_usage() {
    let (endpoint, seen) = bedrock_fake().await;
    let mut env: Vec<(&str, &str)> = LOOPBACK_DELIVERIES.to_vec();
    env.extend([
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let h = Hookrun::start_with(&env);
    let (agent, secret) = h
        .create_agent(json!({
            "name": "bedrock reviewer",
            "runner": {
                "type": "bedrock",
                "model_id": "anthropic.claude-3-5-haiku-20241022-v1:0",
                "region": "eu-west-1",
                "system": "You review {{ trigger.type }} events.",
                "prompt": "Review: {{ input.title }}",
                "max_tokens": 100,
            },
        }))
        .await;
    let run_id = h
        .trigger(&agent, &secret, json!({"title": "Fix the parser"}))
        .await;
    let run = h.wait_finished(&run_id, WAIT).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["text"], "Looks good.\nShip it.");
    assert_eq!(run["output"]["finish_reason"], "end_turn");
    assert_eq!(
        run["usage"],
        json!({"model": "anthropic.claude-3-5-haiku-20241022-v1:0", "input_tokens": 40, "output_tokens": 4})
    );
    let (s, logs) = h
        .get(&format!("/api/v1/agents/{agent}/logs?run_id={run_id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{logs}");
    let output: Vec<&str> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["stream"] == "output")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(output, ["Looks good.", "Ship it."]);
    // Signed for the runner's region with the default chain's credentials.
    let seen = seen.lock().unwrap().clone();
    let (call, body) = &seen[0];
    assert!(
        call.starts_with(
            "anthropic.claude-3-5-haiku-20241022-v1:0 AWS4-HMAC-SHA256 Credential=testing/"
        ) && call.contains("/eu-west-1/bedrock/aws4_request"),
        "{call}"
    );
    assert_eq!(
        body["messages"][0]["content"][0]["text"],
        "Review: Fix the parser"
    );
    assert_eq!(body["system"][0]["text"], "You review WEBHOOK events.");
}
