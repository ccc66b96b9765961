//! Crash test: triggers under load while `hookrun serve` is killed with
//! SIGKILL and restarted on the same data directory. Every accepted trigger
//! must end as exactly one finished run, none stranded, soon after the last
//! restart; only runs in flight at a kill may call the agent twice.
//!
//! `cargo test -p hookrun --test crash` runs 2,000 triggers and 3 kills on
//! the embedded store (part of the test command). A longer soak:
//! `HOOKRUN_CRASH_TRIGGERS=20000 HOOKRUN_CRASH_KILLS=10 cargo test -p hookrun --test crash -- --nocapture`.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use harness::{sign, FakeAgent, Hookrun, ADMIN_KEY};
use serde_json::{json, Value};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Concurrent clients sending triggers.
const CLIENTS: usize = 32;
/// Runs one process executes at once: at most this many can be cut off
/// (and so call the agent again) at each kill.
const EXECUTOR_CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_trigger_runs_once_through_kills() {
    let triggers = setting("HOOKRUN_CRASH_TRIGGERS", 2000);
    let kills = setting("HOOKRUN_CRASH_KILLS", 3);
    let fake = FakeAgent::start().await;
    let mut h = Hookrun::start_with(&[
        ("HOOKRUN_RATE_LIMIT_PER_IP", "0"),
        ("HOOKRUN_RATE_LIMIT_PER_TRIGGER", "0"),
        ("HOOKRUN_RATE_LIMIT_PER_WORKSPACE", "0"),
        ("HOOKRUN_EXECUTOR_CONCURRENCY", "16"),
        ("HOOKRUN_WORKSPACE_CONCURRENCY", "16"),
        ("HOOKRUN_LEASE_SECONDS", "6"),
    ]);
    let (agent, secret) = h
        .create_agent(json!({"name": "worker", "runner": {"type": "http", "url": fake.url("/work")}, "timeout_seconds": 30}))
        .await;
    let path = h.trigger_path(&agent);
    let base = Arc::new(RwLock::new(h.base.clone()));
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (base, next, accepted, retries) = (
            base.clone(),
            next.clone(),
            accepted.clone(),
            retries.clone(),
        );
        let (path, secret) = (path.clone(), secret.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut runs: Vec<(usize, String)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= triggers {
                    return runs;
                }
                let body = json!({"event": "load", "data": {"n": i}}).to_string();
                let signature = sign(&secret, body.as_bytes());
                let deadline = Instant::now() + Duration::from_secs(120);
                // A refused or cut-off call is sent again with the same key.
                loop {
                    assert!(Instant::now() < deadline, "trigger {i} never accepted");
                    let url = format!("{}{path}", base.read().unwrap());
                    let sent = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-signature", &signature)
                        .header("idempotency-key", format!("load-{i}"))
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(resp) if resp.status().as_u16() == 202 => {
                            let v: Value = resp.json().await.unwrap_or(Value::Null);
                            if let Some(run) = v["run_id"].as_str() {
                                runs.push((i, run.to_owned()));
                                accepted.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        }
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            assert!(
                                status >= 500 || status == 409,
                                "trigger {i}: unexpected {status}"
                            );
                        }
                        Err(_) => {}
                    }
                    retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    // Kill and restart at even steps of the load.
    for k in 1..=kills {
        let at = triggers * k / (kills + 1);
        while accepted.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::task::block_in_place(|| {
            h.kill();
            h.respawn();
        });
        *base.write().unwrap() = h.base.clone();
    }
    let last_restart = Instant::now();

    let mut by_trigger: HashMap<usize, HashSet<String>> = HashMap::new();
    for c in clients {
        for (i, run) in c.await.unwrap() {
            by_trigger.entry(i).or_default().insert(run);
        }
    }
    let accepted_in = started.elapsed();
    assert_eq!(by_trigger.len(), triggers, "every trigger was accepted");
    assert!(
        by_trigger.values().all(|runs| runs.len() == 1),
        "a trigger got two different runs"
    );
    let expected: HashSet<String> = by_trigger.into_values().flatten().collect();
    assert_eq!(expected.len(), triggers, "one run per trigger");

    // Every run finishes, within a bounded time after the last restart.
    let deadline = last_restart + Duration::from_secs(120);
    let finished = loop {
        let runs = all_runs(&h, &agent).await;
        let done = runs
            .iter()
            .filter(|r| r["status"] == "succeeded" || r["status"] == "failed")
            .count();
        if done == runs.len() && runs.len() >= triggers {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} runs finished 120 s after the last restart; log: {}",
            done,
            runs.len(),
            h.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let settled_in = last_restart.elapsed();
    let stored: HashSet<String> = finished
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, expected, "exactly the accepted runs exist, no more");
    let failed: Vec<&Value> = finished
        .iter()
        .filter(|r| r["status"] != "succeeded")
        .collect();
    assert!(failed.is_empty(), "runs failed: {failed:?}");

    let calls = fake.calls("/work");
    let called: HashSet<&str> = calls.iter().filter_map(|c| c["run_id"].as_str()).collect();
    assert_eq!(called.len(), triggers, "every run reached the agent");
    let repeated = calls.len() - called.len();
    println!(
        "crash test: {triggers} triggers, {kills} SIGKILLs, accepted in {:.1} s with {} client retries; \
         all finished {:.1} s after the last restart; agent calls repeated: {repeated}",
        accepted_in.as_secs_f64(),
        retries.load(Ordering::SeqCst),
        settled_in.as_secs_f64(),
    );
    assert!(
        repeated <= kills * EXECUTOR_CONCURRENCY,
        "{repeated} repeated agent calls: only runs in flight at a kill may repeat"
    );
}

/// Every run of the agent, through the listing's pages.
async fn all_runs(h: &Hookrun, agent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/agents/{agent}/runs?limit=100", h.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let v: Value = h
            .http
            .get(&url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(v["data"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}
