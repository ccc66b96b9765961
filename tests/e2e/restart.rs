//! A stop and a restart with runs still queued: all of them finish, none
//! twice.

use std::time::Duration;

use serde_json::json;

use crate::harness::{FakeAgent, Hookrun};

#[tokio::test]
async fn queued_runs_survive_a_restart_and_run_once() {
    let fake = FakeAgent::start().await;
    let mut h = Hookrun::start_with(&[("HOOKRUN_EXECUTOR_CONCURRENCY", "1")]);
    let (agent, secret) = h
        .create_agent(json!({"name": "slow", "runner": {"type": "http", "url": fake.url("/slow")}}))
        .await;
    let mut ids = vec![];
    for i in 0..8 {
        ids.push(
            h.trigger(&agent, &secret, json!({"event": "n", "data": i}))
                .await,
        );
    }
    // Each run takes 300 ms one at a time: most are still queued now.
    h.stop();
    let done_before = fake.calls("/slow").len();
    assert!(
        done_before < ids.len(),
        "some runs were still queued at the stop ({done_before} done)"
    );

    h.restart();
    for id in &ids {
        let run = h.wait_finished(id, Duration::from_secs(30)).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["attempt"], 1, "{run}");
    }
    let mut seen: Vec<String> = fake
        .calls("/slow")
        .iter()
        .map(|c| c["run_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want, "every run reached the agent exactly once");
}
