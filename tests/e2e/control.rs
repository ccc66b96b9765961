//! Run control through `hookrun serve` and the client: a running run
//! cancelled with `hookrun runs cancel` stops within 2 s and is announced
//! as `run.cancelled` to a subscription that selects it; cancelling again
//! answers the same, a finished run is a 409 naming its status; `hookrun
//! runs retry` makes a new run of the same input that names its original.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::cli::cli;
use crate::harness::{FakeAgent, Hookrun, Receiver, LOOPBACK_DELIVERIES};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_running_run_is_cancelled_announced_and_a_finished_one_retried() {
    let fake = FakeAgent::start().await;
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (s, sub) = h
        .admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "cancels", "url": rx.url(), "events": ["run.cancelled"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let (hanging, secret) = h
        .create_agent(
            json!({"name": "hangs", "runner": {"type": "http", "url": fake.url("/hang")}}),
        )
        .await;
    let run_id = h.trigger(&hanging, &secret, json!({"n": 1})).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, run) = h.get(&format!("/api/v1/runs/{run_id}")).await;
        if run["status"] == "running" && !fake.calls("/hang").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not running: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let asked = Instant::now();
    let out = cli(&h, &["--json", "runs", "cancel", &run_id]).ok().json();
    assert_eq!(out["status"], "cancelled", "{out}");
    assert_eq!(out["cancel_reason"], "requested");
    assert!(!out["cancelled_by"].as_str().unwrap().is_empty(), "{out}");
    // The executor noticed: its note follows the cancel's in the log.
    loop {
        let (_, logs) = h
            .get(&format!("/api/v1/agents/{hanging}/logs?run_id={run_id}"))
            .await;
        let stopped = logs["data"].as_array().unwrap().iter().any(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("runner stopped after")
        });
        if stopped {
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "the runner was not stopped within 2 s: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = rx.wait_for(1, WAIT).await;
    let event = got[0].json();
    assert_eq!(event["event"], "run.cancelled", "{event}");
    assert_eq!(event["data"]["run_id"], run_id.as_str());
    assert_eq!(event["data"]["status"], "cancelled");
    assert_eq!(event["data"]["cancel_reason"], "requested");

    // Again: the same answer. Over HTTP too.
    let again = cli(&h, &["--json", "runs", "cancel", &run_id]).ok().json();
    assert_eq!(again["cancelled_at"], out["cancelled_at"]);
    let (s, _) = h
        .admin(Method::POST, &format!("/api/v1/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A finished run: 409 naming its status; the client exits non-zero.
    let (echo, echo_secret) = h.create_agent(json!({"name": "echo"})).await;
    let done = h.trigger(&echo, &echo_secret, json!({"n": 2})).await;
    let finished = h.wait_finished(&done, WAIT).await;
    assert_eq!(finished["status"], "succeeded");
    let (s, e) = h
        .admin(Method::POST, &format!("/api/v1/runs/{done}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already succeeded"),
        "{e}"
    );
    let refused = cli(&h, &["runs", "cancel", &done]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("already succeeded"),
        "{}",
        refused.stderr
    );

    // Retry: a new run of the same input, naming its original.
    let retry = cli(&h, &["--json", "runs", "retry", &done]).ok().json();
    let retry_id = retry["id"].as_str().unwrap().to_owned();
    assert_ne!(retry_id, done);
    assert_eq!(retry["retry_of"], done.as_str());
    assert_eq!(retry["input"], finished["input"]);
    let retried = h.wait_finished(&retry_id, WAIT).await;
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(retried["output"], finished["output"]);
    let (_, original) = h.get(&format!("/api/v1/runs/{done}")).await;
    assert_eq!(original["retries"], json!([retry_id]));
    // A run not finished yet cannot be retried; an unknown one is not found.
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/runs/run_01kaaaaaaaaaaaaaaaaaaaaaaa/retry",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Listings filter by the new status.
    let (s, listing) = h
        .get(&format!("/api/v1/agents/{hanging}/runs?status=cancelled"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listing["data"][0]["id"], run_id.as_str(), "{listing}");
}
