//! Runs executed by the http runner against a fake agent: success with
//! output and logs, an agent error, and a timeout.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{FakeAgent, Hookrun};

async fn logs(h: &Hookrun, agent: &str, run: &str) -> Vec<Value> {
    let (s, v) = h
        .get(&format!("/api/v1/agents/{agent}/logs?run_id={run}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_run_succeeds_with_the_agents_output_and_logs() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({"name": "ok", "runner": {"type": "http", "url": fake.url("/ok")}}))
        .await;
    let run_id = h
        .trigger(
            &agent,
            &secret,
            json!({"event": "build.failed", "source": "ci", "data": {"job": 7}}),
        )
        .await;
    let run = h.wait_finished(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["attempt"], 1);
    assert!(run["error"].is_null());
    assert!(run["started_at"].is_string() && run["completed_at"].is_string());
    assert!(run["duration_ms"].is_u64());
    let expected = "Webhook event received:\nEvent: build.failed\nSource: ci\nData: {\"job\":7}";
    assert_eq!(run["output"]["result"], format!("done: {expected}"));

    // What the agent was sent.
    let calls = fake.calls("/ok");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["run_id"], run_id.as_str());
    assert_eq!(calls[0]["agent_id"], agent.as_str());
    assert_eq!(calls[0]["message"], expected);
    assert_eq!(calls[0]["input"]["data"]["job"], 7);
    assert_eq!(calls[0]["trigger"]["type"], "WEBHOOK");

    let lines = logs(&h, &agent, &run_id).await;
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].starts_with("run started (attempt 1"),
        "{messages:?}"
    );
    assert!(lines.iter().any(|l| l["stream"] == "output"
        && l["message"]
            .as_str()
            .unwrap()
            .contains("done: Webhook event received")));
    assert!(
        messages.last().unwrap().starts_with("run succeeded"),
        "{messages:?}"
    );
    assert!(lines.iter().all(|l| l["run_id"] == run_id.as_str()));

    // The agent-wide log view (no run_id) has the same lines, newest first.
    let (_, all) = h.get(&format!("/api/v1/agents/{agent}/logs")).await;
    let all = all["data"].as_array().unwrap();
    assert_eq!(all.len(), lines.len());
    assert!(all[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("run succeeded"));
}

#[tokio::test]
async fn an_agent_answering_500_fails_the_run() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({"name": "fail", "runner": {"type": "http", "url": fake.url("/fail")}}))
        .await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "x"})).await;
    let run = h.wait_finished(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"], "agent answered HTTP 500: agent exploded");
    assert_eq!(run["exit_code"], 1);
    assert!(run["output"].is_null());
    let lines = logs(&h, &agent, &run_id).await;
    assert!(lines
        .iter()
        .any(|l| l["level"] == "error" && l["message"].as_str().unwrap().contains("HTTP 500")));
    assert_eq!(fake.calls("/fail").len(), 1, "a failed run is not retried");
}

#[tokio::test]
async fn an_agent_hanging_past_the_timeout_fails_the_run() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({"name": "hang", "timeout_seconds": 1, "runner": {"type": "http", "url": fake.url("/hang")}}))
        .await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "x"})).await;
    let run = h.wait_finished(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"], "timeout");
    assert_eq!(run["exit_code"], 124);
    let ms = run["duration_ms"].as_u64().unwrap();
    assert!((1000..5000).contains(&ms), "{ms} ms");
    let lines = logs(&h, &agent, &run_id).await;
    assert!(lines
        .iter()
        .any(|l| l["message"] == "run failed: run timed out after 1 s"));
}

#[tokio::test]
async fn an_unreachable_agent_fails_the_run_with_a_clear_error() {
    let h = Hookrun::start();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (agent, secret) = h
        .create_agent(json!({"name": "gone", "runner": {"type": "http", "url": format!("http://127.0.0.1:{port}/x")}}))
        .await;
    let run_id = h.trigger(&agent, &secret, json!({})).await;
    let run = h.wait_finished(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    let err = run["error"].as_str().unwrap();
    assert!(err.starts_with("agent request failed"), "{err}");
    assert!(
        !err.contains(&port.to_string()),
        "the agent URL is not echoed: {err}"
    );
}

#[tokio::test]
async fn the_echo_runner_answers_with_the_message() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    let run_id = h
        .trigger(
            &agent,
            &secret,
            json!({"event": "e", "source": "s", "data": 1}),
        )
        .await;
    let run = h.wait_finished(&run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        run["output"]["message"],
        "Webhook event received:\nEvent: e\nSource: s\nData: 1"
    );
}

#[tokio::test]
async fn output_too_large_to_keep_fails_the_run_saying_so() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start_with(&[("HOOKRUN_MAX_OUTPUT_BYTES", "1048576")]);
    let (agent, secret) = h
        .create_agent(json!({"name": "big", "runner": {"type": "http", "url": fake.url("/big")}}))
        .await;
    let run_id = h.trigger(&agent, &secret, json!({})).await;
    let run = h.wait_finished(&run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "failed", "{}", run["error"]);
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("agent output too large to keep"),
        "{}",
        run["error"]
    );
    assert!(run["output"].is_null());
    assert_eq!(fake.calls("/big").len(), 1, "the agent ran once");
}

#[tokio::test]
async fn a_body_too_large_once_stored_is_413() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let (s, t) = h
        .admin(
            reqwest::Method::POST,
            "/api/v1/webhook-triggers",
            Some(json!({"agent_id": agent, "name": "form"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // 200 KB of quotes: under the 256 KiB body limit, twice that once escaped.
    let body = "\"".repeat(200_000);
    let resp = h
        .http
        .post(h.url(&format!("/webhooks/runs/{}", t["token"].as_str().unwrap())))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, runs) = h.get(&format!("/api/v1/agents/{agent}/runs")).await;
    assert_eq!(runs["data"], json!([]));
}
