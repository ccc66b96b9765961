//! Outgoing webhooks against a real local receiver: payload, both signature
//! recipes, retries, 410, SSRF refusals, rotation, restart, redelivery.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::harness::{Hookrun, Received, Receiver, LOOPBACK_DELIVERIES};

/// The X-Crewship-Signature recipe: HMAC-SHA256 keyed by the secret string over
/// "{timestamp}.{body}", compared with the whole header.
fn seed_verify(secret: &str, r: &Received, header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", r.header("x-crewship-timestamp"), r.body).as_bytes());
    r.header(header) == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks algorithm: key = base64-decoded part after
/// `whsec_`, content "{id}.{timestamp}.{body}", any `v1,` entry may match.
pub(crate) fn standard_verify(secret: &str, r: &Received) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.body
        )
        .as_bytes(),
    );
    let expected = b64.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn subscribe(h: &Hookrun, body: Value) -> (String, String) {
    let (s, v) = h
        .admin(Method::POST, "/api/v1/subscriptions", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

async fn echo_agent_run(h: &Hookrun) -> (String, String) {
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    let run = h
        .trigger(&agent, &secret, json!({"event": "e", "source": "s"}))
        .await;
    (agent, run)
}

#[tokio::test]
async fn a_finished_run_is_delivered_signed_both_ways() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (sub, secret) = subscribe(
        &h,
        json!({"name": "ops", "url": rx.url(), "events": ["run.succeeded", "run.failed"]}),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&secret[6..])
            .unwrap()
            .len(),
        32
    );
    let (agent, run) = echo_agent_run(&h).await;

    let got = rx.wait_for(1, Duration::from_secs(20)).await;
    let r = &got[0];
    assert!(
        seed_verify(&secret, r, "x-crewship-signature"),
        "the X-Crewship-Signature recipe verifies"
    );
    assert!(standard_verify(&secret, r), "Standard Webhooks verifies");
    assert_eq!(r.header("x-crewship-event"), "run.succeeded");
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("user-agent").starts_with("hookrun/"));
    assert_eq!(r.header("x-crewship-delivery"), r.header("webhook-id"));
    assert_eq!(
        r.header("x-crewship-timestamp"),
        r.header("webhook-timestamp")
    );
    let ts: i64 = r.header("x-crewship-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);

    let p = r.json();
    assert_eq!(p["event"], "run.succeeded");
    let stamp = p["timestamp"].as_str().unwrap();
    assert_eq!(stamp.len(), 24, "ISO 8601 UTC with milliseconds: {stamp}");
    assert!(stamp.ends_with('Z'));
    assert_eq!(p["data"]["run_id"], run.as_str());
    assert_eq!(p["data"]["deployment_id"], agent.as_str());
    assert_eq!(p["data"]["status"], "succeeded");
    assert!(p["data"]["output"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Webhook event received"));
    assert!(p["data"]["started_at"].is_string() && p["data"]["completed_at"].is_string());
    let keys: Vec<&String> = p["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "completed_at",
            "deployment_id",
            "output",
            "run_id",
            "started_at",
            "status"
        ]
    );

    let (s, list) = h
        .get(&format!("/api/v1/subscriptions/{sub}/deliveries"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let d = &list["data"][0];
    assert_eq!(d["id"], r.header("x-crewship-delivery"));
    // The delivery is recorded as succeeded just after the receiver answered.
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = h
            .get(&format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()))
            .await
            .1;
        if detail["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["attempt_log"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attempt_log"][0]["status_code"], 200);
    assert_eq!(detail["attempt_log"][0]["response_excerpt"], "answer 200");
    assert!(detail["attempt_log"][0]["duration_ms"].is_u64());
    assert!(
        !detail.to_string().contains(&secret),
        "no secret in the delivery log"
    );
}

#[tokio::test]
async fn a_failed_run_carries_its_error_and_filters_apply() {
    let rx_failed = Receiver::start();
    let rx_other = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    // An agent that fails: its http runner points at a closed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (agent, secret) = h
        .create_agent(json!({"name": "broken", "runner": {"type": "http", "url": format!("http://127.0.0.1:{port}/")}}))
        .await;
    let (other_agent, _) = h.create_agent(json!({"name": "other"})).await;
    subscribe(&h, json!({"name": "failures", "url": rx_failed.url(), "events": ["run.failed"], "agent_id": agent})).await;
    subscribe(
        &h,
        json!({"name": "successes only", "url": rx_other.url(), "events": ["run.succeeded"]}),
    )
    .await;
    subscribe(&h, json!({"name": "other agent", "url": rx_other.url(), "events": ["run.failed"], "agent_id": other_agent})).await;
    subscribe(&h, json!({"name": "staging", "url": rx_other.url(), "events": ["run.failed"], "environment": "staging"})).await;

    let run = h.trigger(&agent, &secret, json!({"event": "x"})).await;
    let got = rx_failed.wait_for(1, Duration::from_secs(20)).await;
    let p = got[0].json();
    assert_eq!(p["event"], "run.failed");
    assert_eq!(p["data"]["run_id"], run.as_str());
    assert_eq!(p["data"]["status"], "failed");
    assert!(p["data"]["error"]
        .as_str()
        .unwrap()
        .starts_with("agent request failed"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx_other.got().is_empty(),
        "event, agent and environment filters hold"
    );
}

#[tokio::test]
async fn a_receiver_failing_three_times_sees_four_attempts_of_one_delivery() {
    let rx = Receiver::start();
    rx.answer(&[500, 503, 502]);
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (sub, _) = subscribe(
        &h,
        json!({"name": "flaky", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    echo_agent_run(&h).await;
    let got = rx.wait_for(4, Duration::from_secs(30)).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-crewship-delivery"))
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one delivery id on every retry: {ids:?}"
    );
    assert!(got.iter().all(|r| r.header("webhook-id") == ids[0]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 4, "no attempt after the success");

    let (_, list) = h
        .get(&format!("/api/v1/subscriptions/{sub}/deliveries"))
        .await;
    let (_, d) = h
        .get(&format!(
            "/api/v1/deliveries/{}",
            list["data"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempts"], 4);
    let codes: Vec<u64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 502, 200]);
    assert_eq!(d["attempt_log"][0]["error"], "HTTP 500");
    let (_, s) = h.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert!(
        s["failing_since"].is_null(),
        "a success ends the failure streak"
    );
}

#[tokio::test]
async fn redirects_are_failures_not_followed() {
    let rx = Receiver::start();
    rx.answer(&[302]);
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    subscribe(
        &h,
        json!({"name": "moved", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    echo_agent_run(&h).await;
    let got = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        got.len(),
        2,
        "the 302 was retried at the same URL, not followed"
    );
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let rx = Receiver::start();
    rx.answer(&[410]);
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (sub, _) = subscribe(
        &h,
        json!({"name": "gone", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    h.trigger(&agent, &secret, json!({})).await;
    rx.wait_for(1, Duration::from_secs(20)).await;
    let mut s = Value::Null;
    for _ in 0..100 {
        s = h.get(&format!("/api/v1/subscriptions/{sub}")).await.1;
        if s["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s["enabled"], false);
    assert!(
        s["disabled_reason"].as_str().unwrap().contains("410"),
        "{s}"
    );

    let run = h.trigger(&agent, &secret, json!({})).await;
    h.wait_finished(&run, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.got().len(),
        1,
        "a disabled subscription receives nothing"
    );

    // Enabled again, it hears of new events.
    let (st, v) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/subscriptions/{sub}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["disabled_reason"].is_null());
    h.trigger(&agent, &secret, json!({})).await;
    rx.wait_for(2, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn private_and_metadata_destinations_are_refused() {
    let h = Hookrun::start_with(&[
        ("HOOKRUN_OUTBOUND_ALLOW_HTTP", "true"),
        ("HOOKRUN_OUTBOUND_ALLOW_CIDRS", ""),
    ]);
    let rx = Receiver::start();
    for url in [
        rx.url(),
        "https://127.0.0.1/hook".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://10.0.0.1/x".into(),
        "https://localhost/x".into(),
        "http://[::1]:8080/x".into(),
    ] {
        let (s, v) = h
            .admin(
                Method::POST,
                "/api/v1/subscriptions",
                Some(json!({"name": "x", "url": url, "events": ["run.failed"]})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with("url "),
            "{v}"
        );
    }
    let strict = Hookrun::start_with(&[
        ("HOOKRUN_OUTBOUND_ALLOW_HTTP", "false"),
        ("HOOKRUN_OUTBOUND_ALLOW_CIDRS", ""),
    ]);
    let (s, v) = strict
        .admin(
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "x", "url": "http://example.com/hook", "events": ["run.failed"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("https"),
        "{v}"
    );
    let (_, list) = h.get("/api/v1/subscriptions").await;
    assert_eq!(list["data"], json!([]));

    // Agents' http runners follow the same rules.
    for url in [
        rx.url(),
        "https://169.254.169.254/latest".to_string(),
        "https://[fd00:ec2::254]/".to_string(),
    ] {
        let (s, v) = h
            .admin(
                Method::POST,
                "/api/v1/agents",
                Some(json!({"name": "a", "runner": {"type": "http", "url": url}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
    }
    // A name that resolves to loopback is refused when the run calls it.
    let (agent, secret) = h
        .create_agent(
            json!({"name": "a", "runner": {"type": "http", "url": "http://localhost:9/x"}}),
        )
        .await;
    let run = h.trigger(&agent, &secret, json!({})).await;
    let run = h.wait_finished(&run, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("destination refused"),
        "{run}"
    );
}

#[tokio::test]
async fn rotation_with_a_grace_window_sends_both_signatures() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (sub, old) = subscribe(
        &h,
        json!({"name": "r", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/subscriptions/{sub}/rotate-secret"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(v["previous_secret_valid_until"].is_string());
    echo_agent_run(&h).await;
    let r = rx.wait_for(1, Duration::from_secs(20)).await.remove(0);
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    assert!(standard_verify(&new, &r) && standard_verify(&old, &r));
    assert!(seed_verify(&new, &r, "x-crewship-signature"));
    assert!(seed_verify(&old, &r, "x-crewship-signature-previous"));

    // Without a grace window the old secret stops at once.
    let (_, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/subscriptions/{sub}/rotate-secret"),
            None,
        )
        .await;
    let newest = v["secret"].as_str().unwrap().to_owned();
    echo_agent_run(&h).await;
    let r = rx.wait_for(2, Duration::from_secs(20)).await.remove(1);
    assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    assert!(standard_verify(&newest, &r) && !standard_verify(&new, &r));
    assert!(!r.headers.contains_key("x-crewship-signature-previous"));
}

#[tokio::test]
async fn a_restart_between_attempts_loses_nothing() {
    let rx = Receiver::start();
    rx.answer(&[500]);
    let slow: Vec<(&str, &str)> = LOOPBACK_DELIVERIES
        .iter()
        .map(|(k, v)| {
            if *k == "HOOKRUN_DELIVERY_RETRY_SCHEDULE" {
                (*k, "3")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let mut h = Hookrun::start_with(&slow);
    let (sub, _) = subscribe(
        &h,
        json!({"name": "r", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    echo_agent_run(&h).await;
    rx.wait_for(1, Duration::from_secs(20)).await;
    h.stop();
    h.restart();
    let got = rx.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(
        got[0].header("x-crewship-delivery"),
        got[1].header("x-crewship-delivery")
    );
    let (_, list) = h
        .get(&format!("/api/v1/subscriptions/{sub}/deliveries"))
        .await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let (_, d) = h.get(&format!("/api/v1/deliveries/{id}")).await;
        if d["status"] == "succeeded" {
            assert_eq!(d["attempts"], 2);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery did not succeed after the restart");
}

#[tokio::test]
async fn redeliver_makes_one_manual_attempt() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (sub, _) = subscribe(
        &h,
        json!({"name": "r", "url": rx.url(), "events": ["run.succeeded"]}),
    )
    .await;
    echo_agent_run(&h).await;
    rx.wait_for(1, Duration::from_secs(20)).await;
    let (_, list) = h
        .get(&format!("/api/v1/subscriptions/{sub}/deliveries"))
        .await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    rx.answer(&[500]);
    let (s, v) = h
        .admin(
            Method::POST,
            &format!("/api/v1/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let got = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got[1].header("x-crewship-delivery"), id);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rx.got().len(), 2, "a failed manual attempt is not retried");
    let (_, d) = h.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(d["status"], "succeeded", "it keeps its outcome");
    assert_eq!(d["attempt_log"][1]["manual"], true);
    assert_eq!(d["attempt_log"][1]["status_code"], 500);

    let (s, _) = h
        .admin(Method::POST, "/api/v1/deliveries/dlv_nope/redeliver", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn subscription_management_and_bad_input() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let url = rx.url();
    for bad in [
        json!({"name": "x", "url": url, "events": []}),
        json!({"name": "x", "url": url, "events": ["run.exploded"]}),
        json!({"name": "x", "url": url, "events": ["run.failed"], "environment": "dev"}),
        json!({"name": "x", "url": url, "events": ["run.failed"], "agent_id": "agt_nope"}),
        json!({"name": "", "url": url, "events": ["run.failed"]}),
        json!({"name": "x", "events": ["run.failed"]}),
        json!({"name": "x", "url": "not a url", "events": ["run.failed"]}),
        json!({"name": "x", "url": url, "events": ["run.failed"], "secret": "mine"}),
    ] {
        let (s, v) = h
            .admin(Method::POST, "/api/v1/subscriptions", Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (sub, secret) = subscribe(&h, json!({"name": "ok", "url": url, "events": ["run.failed", "run.failed"], "agent_id": agent, "environment": "staging", "enabled": false})).await;
    let (s, v) = h.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["events"], json!(["run.failed"]), "duplicates are dropped");
    assert_eq!(v["environment"], "staging");
    assert_eq!(v["enabled"], false);
    assert!(!v.to_string().contains(&secret), "the secret is shown once");
    assert!(v.get("secret").is_none() && v.get("secret_sealed").is_none());

    let (s, v) = h
        .admin(Method::PATCH, &format!("/api/v1/subscriptions/{sub}"), Some(json!({"events": ["run.succeeded", "run.started"], "agent_id": null, "name": "renamed"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["events"], json!(["run.succeeded", "run.started"]));
    assert!(v["agent_id"].is_null());
    assert_eq!(v["name"], "renamed");
    let (s, _) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/subscriptions/{sub}"),
            Some(json!({"url": "https://10.1.2.3/"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/subscriptions/{sub}/rotate-secret"),
            Some(json!({"grace_seconds": -5})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, other_key) = h.create_workspace("other");
    let resp = h
        .http
        .get(h.url(&format!("/api/v1/subscriptions/{sub}")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = h
        .http
        .get(h.url(&format!("/api/v1/subscriptions/{sub}/deliveries")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let (s, list) = h.get("/api/v1/subscriptions").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, _) = h
        .admin(
            Method::DELETE,
            &format!("/api/v1/subscriptions/{sub}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = h.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn run_started_is_delivered_when_asked_for() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    subscribe(
        &h,
        json!({"name": "s", "url": rx.url(), "events": ["run.started"]}),
    )
    .await;
    let (_, run) = echo_agent_run(&h).await;
    let p = rx.wait_for(1, Duration::from_secs(20)).await[0].json();
    assert_eq!(p["event"], "run.started");
    assert_eq!(p["data"]["run_id"], run.as_str());
    assert_eq!(p["data"]["status"], "running");
    assert!(p["data"]["completed_at"].is_null());
}
