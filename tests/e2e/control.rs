//! Run control through `hookrun serve` and the client: a running run
//! cancelled with `hookrun runs cancel` stops within 2 s and is announced
//! as `run.cancelled` to a subscription that selects it; cancelling again
//! answers the same, a finished run is a 409 naming its status; `hookrun
//! runs retry` makes a new run of the same input that names its original;
//! `hookrun runs replay` counts an agent's failed runs, then retries them
//! through its fixed configuration, and a second replay makes none twice.

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

#[tokio::test]
async fn failed_runs_are_replayed_once_through_the_fixed_agent() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(
            json!({"name": "flaky", "runner": {"type": "http", "url": fake.url("/fail")}}),
        )
        .await;
    let mut failed = Vec::new();
    for n in 0..3 {
        let run = h.trigger(&agent, &secret, json!({"n": n})).await;
        assert_eq!(h.wait_finished(&run, WAIT).await["status"], "failed");
        failed.push(run);
    }
    let dry = cli(
        &h,
        &[
            "--json",
            "runs",
            "replay",
            "--agent",
            &agent,
            "--since",
            "1h",
            "--dry-run",
        ],
    )
    .ok()
    .json();
    assert_eq!(dry["count"], 3, "{dry}");
    assert_eq!(dry["first_ids"][0], failed[2].as_str());

    let (s, fixed) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{agent}"),
            Some(json!({"runner": {"type": "http", "url": fake.url("/ok")}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{fixed}");
    let replayed = cli(
        &h,
        &[
            "--json", "runs", "replay", "--agent", &agent, "--status", "failed",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (replayed["count"].as_u64(), replayed["created"].as_u64()),
        (Some(3), Some(3)),
        "{replayed}"
    );
    for r in replayed["retries"].as_array().unwrap() {
        let run = h.wait_finished(r["run_id"].as_str().unwrap(), WAIT).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["retry_of"], r["retry_of"]);
    }
    let again = cli(
        &h,
        &[
            "--json", "runs", "replay", "--agent", &agent, "--status", "failed",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (again["count"].as_u64(), again["created"].as_u64()),
        (Some(3), Some(0)),
        "{again}"
    );
    // A bad filter is refused naming the field.
    let (s, e) = h
        .admin(
            Method::POST,
            "/api/v1/runs/replay",
            Some(json!({"agent_id": agent, "status": "running"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("status"),
        "{e}"
    );
}

#[tokio::test]
async fn an_agents_cap_keeps_its_runs_apart_and_in_order() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({
            "name": "serial",
            "runner": {"type": "http", "url": fake.url("/slow")},
            "max_concurrent_runs": 1,
        }))
        .await;
    let (_, shown) = h.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(shown["max_concurrent_runs"], 1, "{shown}");
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(h.trigger(&agent, &secret, json!({"n": n})).await);
    }
    let mut spans = Vec::new();
    for id in &ids {
        let run = h.wait_finished(id, WAIT).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap()).unwrap();
        spans.push((at("started_at"), at("completed_at")));
    }
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "never two at once, in the order they came: {spans:?}"
        );
    }
    // Bad caps are refused naming the field; null removes the cap.
    let (s, e) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{agent}"),
            Some(json!({"max_concurrent_runs": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("max_concurrent_runs"));
    let (s, cleared) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{agent}"),
            Some(json!({"max_concurrent_runs": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cleared["max_concurrent_runs"], serde_json::Value::Null);
    // The client sets and removes it too.
    let set = cli(
        &h,
        &[
            "--json",
            "agents",
            "update",
            &agent,
            "--max-concurrent-runs",
            "2",
        ],
    )
    .ok()
    .json();
    assert_eq!(set["max_concurrent_runs"], 2, "{set}");
    let unset = cli(
        &h,
        &[
            "--json",
            "agents",
            "update",
            &agent,
            "--max-concurrent-runs",
            "none",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        unset["max_concurrent_runs"],
        serde_json::Value::Null,
        "{unset}"
    );
}

#[tokio::test]
async fn a_token_url_can_answer_once_its_run_has_started() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, _) = h
        .create_agent(json!({"name": "slow", "runner": {"type": "http", "url": fake.url("/slow")}}))
        .await;
    let trigger = |respond_when: Option<&str>| {
        let mut body = json!({"agent_id": agent, "name": "t"});
        if let Some(r) = respond_when {
            body["respond_when"] = json!(r);
        }
        body
    };
    let (s, started) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(trigger(Some("started"))),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    assert_eq!(started["respond_when"], "started");
    let (s, plain) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(trigger(None)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plain}");
    assert_eq!(plain["respond_when"], "queued");

    let call = |token: String| {
        let h = &h;
        async move {
            let resp = h
                .http
                .post(h.url(&format!("/webhooks/runs/{token}")))
                .json(&json!({"topic": "AI agents"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    // As the seed's product answers: the run is executing.
    let ans = call(started["token"].as_str().unwrap().to_owned()).await;
    assert_eq!(ans["status"], "running", "{ans}");
    let (_, run) = h
        .get(&format!("/api/v1/runs/{}", ans["run_id"].as_str().unwrap()))
        .await;
    assert_ne!(run["status"], "queued", "{run}");
    // The default answers at once.
    let ans = call(plain["token"].as_str().unwrap().to_owned()).await;
    assert_eq!(ans["status"], "queued", "{ans}");

    // A bad value is refused.
    let (s, e) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(trigger(Some("later"))),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // And it can be changed.
    let id = started["id"].as_str().unwrap();
    let (s, changed) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhook-triggers/{id}"),
            Some(json!({"respond_when": "queued"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(changed["respond_when"], "queued");
    let back = cli(
        &h,
        &[
            "--json",
            "triggers",
            "update",
            id,
            "--respond-when",
            "started",
        ],
    )
    .ok()
    .json();
    assert_eq!(back["respond_when"], "started", "{back}");
}

#[tokio::test]
async fn a_concurrency_key_skips_then_replaces_the_run_going() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, _) = h
        .create_agent(
            json!({"name": "hangs", "runner": {"type": "http", "url": fake.url("/hang")}}),
        )
        .await;
    let made = cli(
        &h,
        &[
            "--json",
            "triggers",
            "create",
            "--agent",
            &agent,
            "--name",
            "per pr",
            "--concurrency-key",
            "/pull_request/number",
            "--on-conflict",
            "skip",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        made["concurrency"],
        json!({"key": "/pull_request/number", "on_conflict": "skip"}),
        "{made}"
    );
    let (trigger, token) = (
        made["id"].as_str().unwrap().to_owned(),
        made["token"].as_str().unwrap().to_owned(),
    );
    let call = |body: serde_json::Value| {
        let (h, token) = (&h, &token);
        async move {
            let resp = h
                .http
                .post(h.url(&format!("/webhooks/runs/{token}")))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let first = call(json!({"pull_request": {"number": 7}})).await;
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    let again = call(json!({"pull_request": {"number": 7}})).await;
    assert_eq!(again, json!({"status": "skipped", "run_id": first_id}));
    // Another pull request is another key value.
    let other = call(json!({"pull_request": {"number": 8}})).await;
    assert_eq!(other["status"], "queued", "{other}");
    let (_, invocations) = h
        .get(&format!("/api/v1/webhook-triggers/{trigger}/invocations"))
        .await;
    let skipped = invocations["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["result"] == "skipped")
        .expect("the skipped call is logged");
    assert_eq!(skipped["run_id"], first_id.as_str());
    assert!(
        skipped["note"].as_str().unwrap().contains(&first_id),
        "{skipped}"
    );

    // Now replace: the run going is cancelled, naming the new one.
    let changed = cli(
        &h,
        &[
            "--json",
            "triggers",
            "update",
            &trigger,
            "--concurrency-key",
            "/pull_request/number",
            "--on-conflict",
            "replace",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        changed["concurrency"]["on_conflict"], "replace",
        "{changed}"
    );
    let newer = call(json!({"pull_request": {"number": 7}})).await;
    let newer_id = newer["run_id"].as_str().unwrap().to_owned();
    // The executor cancels the run it replaces (a message written with
    // the new run).
    let deadline = Instant::now() + WAIT;
    let old = loop {
        let (_, old) = h.get(&format!("/api/v1/runs/{first_id}")).await;
        if old["status"] != "running" && old["status"] != "queued" {
            break old;
        }
        assert!(Instant::now() < deadline, "not replaced: {old}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(old["status"], "cancelled", "{old}");
    assert_eq!(old["cancel_reason"], "replaced");
    assert_eq!(old["replaced_by"], newer_id.as_str());
    let (_, run) = h.get(&format!("/api/v1/runs/{newer_id}")).await;
    assert_eq!(run["concurrency_key"], "7", "{run}");

    // A bad key is refused naming the field; none removes it.
    let (s, e) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/webhook-triggers/{trigger}"),
            Some(json!({"concurrency": {"key": "pull_request"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrency.key"),
        "{e}"
    );
    let removed = cli(
        &h,
        &[
            "--json",
            "triggers",
            "update",
            &trigger,
            "--concurrency-key",
            "none",
        ],
    )
    .ok()
    .json();
    assert_eq!(removed["concurrency"], serde_json::Value::Null, "{removed}");
}

#[tokio::test]
async fn a_workspaces_runs_are_listed_across_its_agents_and_filtered() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (good, good_secret) = h
        .create_agent(json!({"name": "good", "runner": {"type": "http", "url": fake.url("/ok")}}))
        .await;
    let (bad, bad_secret) = h
        .create_agent(json!({"name": "bad", "runner": {"type": "http", "url": fake.url("/fail")}}))
        .await;
    let (s, t) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(json!({"agent_id": good, "name": "t", "concurrency": {"key": "/pr"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let mut made = Vec::new();
    made.push(h.trigger(&good, &good_secret, json!({"n": 1})).await);
    made.push(h.trigger(&bad, &bad_secret, json!({"n": 2})).await);
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    made.push(h.trigger(&bad, &bad_secret, json!({"n": 3})).await);
    let resp = h
        .http
        .post(h.url(&format!("/webhooks/runs/{}", t["token"].as_str().unwrap())))
        .json(&json!({"pr": 9}))
        .send()
        .await
        .unwrap();
    let by_token: serde_json::Value = resp.json().await.unwrap();
    made.push(by_token["run_id"].as_str().unwrap().to_owned());
    for id in &made {
        h.wait_finished(id, WAIT).await;
    }
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let (s, all) = h.get("/api/v1/runs").await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), newest_first, "every agent's, newest first");
    let (_, page) = h.get("/api/v1/runs?limit=3").await;
    assert_eq!(ids(&page), newest_first[..3]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = h
        .get(&format!("/api/v1/runs?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest), newest_first[3..]);
    let (_, failed) = h.get("/api/v1/runs?status=failed").await;
    assert_eq!(ids(&failed), [made[2].clone(), made[1].clone()]);
    let (_, either) = h.get("/api/v1/runs?status=failed,succeeded").await;
    assert_eq!(ids(&either).len(), 4);
    let (_, of_bad) = h.get(&format!("/api/v1/runs?agent_id={bad}")).await;
    assert_eq!(ids(&of_bad), [made[2].clone(), made[1].clone()]);
    let (_, token) = h.get("/api/v1/runs?trigger_type=token").await;
    assert_eq!(ids(&token), [made[3].clone()]);
    let (_, by_trigger) = h
        .get(&format!(
            "/api/v1/runs?trigger_id={}",
            t["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ids(&by_trigger), [made[3].clone()]);
    let (_, keyed) = h.get("/api/v1/runs?concurrency_key=9").await;
    assert_eq!(ids(&keyed), [made[3].clone()]);
    let at = middle.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (_, later) = h
        .get(&format!(
            "/api/v1/runs?created_after={}",
            at.replace('+', "%2B")
        ))
        .await;
    assert_eq!(ids(&later), newest_first[..2]);
    let (_, earlier) = h.get(&format!("/api/v1/runs?created_before={at}")).await;
    assert_eq!(ids(&earlier), newest_first[2..]);
    // Another workspace's agent has no runs here.
    let (_, none) = h
        .get("/api/v1/runs?agent_id=agt_01jx0000000000000000000000")
        .await;
    assert!(ids(&none).is_empty(), "{none}");
    for (query, field) in [
        ("status=done", "status"),
        ("created_after=yesterday", "created_after"),
        (
            &format!("created_after={at}&created_before={at}") as &str,
            "created_before",
        ),
        ("trigger_type=cron", "trigger_type"),
        ("limit=0", "limit"),
    ] {
        let (s, e) = h.get(&format!("/api/v1/runs?{query}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{query}: {e}"
        );
    }
    // The client lists the workspace's runs without --agent.
    let listed = cli(&h, &["--json", "runs", "list", "--status", "failed"])
        .ok()
        .json();
    assert_eq!(ids(&listed), [made[2].clone(), made[1].clone()]);
    let table = cli(&h, &["runs", "list", "--since", "1h"]).ok().stdout;
    assert!(table.contains(&good) && table.contains(&bad), "{table}");
}
