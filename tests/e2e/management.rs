//! The management API: admin keys, workspaces, agents, runs, logs and the
//! internal secret route, with their bad inputs.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Hookrun, ADMIN_KEY, INTERNAL_TOKEN};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn admin_key_is_required() {
    let h = Hookrun::start();
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some("Basic abc"),
        Some("Bearer "),
        Some(ADMIN_KEY),
    ] {
        let mut req = h.http.get(h.url("/api/v1/agents"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(code(&v), "unauthorized");
    }
}

#[tokio::test]
async fn agent_crud_and_versioning() {
    let h = Hookrun::start();
    let (s, created) = h
        .admin(
            Method::POST,
            "/api/v1/agents",
            Some(json!({"name": " triage ", "timeout_seconds": 30})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("agt_"));
    assert_eq!(created["name"], "triage");
    assert_eq!(created["version"], 1);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["timeout_seconds"], 30);
    assert_eq!(created["runner"], json!({"type": "echo"}));
    assert_eq!(created["workspace_id"], h.workspace.as_str());
    assert_eq!(created["webhook_url"], h.url(&h.trigger_path(id)));
    assert!(created["webhook_secret"].as_str().unwrap().len() >= 64);

    let (s, got) = h.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        got.get("webhook_secret").is_none(),
        "the secret is shown once only"
    );
    assert_eq!(got["created_at"], created["created_at"]);

    let (s, updated) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{id}"),
            Some(json!({"name": "triage-2", "enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "triage-2");
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["timeout_seconds"], 30, "fields not sent are kept");
    let (_, updated) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{id}"),
            Some(json!({"runner": {"type": "http", "url": "https://agent.example.com/run"}})),
        )
        .await;
    assert_eq!(updated["version"], 3);
    assert_eq!(updated["runner"]["url"], "https://agent.example.com/run");

    let (s, list) = h.get("/api/v1/agents").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["next_cursor"].is_null());

    let (s, _) = h
        .admin(Method::DELETE, &format!("/api/v1/agents/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = h.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _) = h
        .admin(Method::DELETE, &format!("/api/v1/agents/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h
        .admin(
            Method::PATCH,
            &format!("/api/v1/agents/{id}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn agent_bad_input_is_400_and_creates_nothing() {
    let h = Hookrun::start();
    // Each bad body, and the field the answer names (`error.field`, for
    // forms to mark) where a field's value is at fault.
    let bad = [
        (json!({}), None),
        (json!({"name": ""}), Some("name")),
        (json!({"name": "x".repeat(201)}), Some("name")),
        (
            json!({"name": "a", "timeout_seconds": 0}),
            Some("timeout_seconds"),
        ),
        (
            json!({"name": "a", "timeout_seconds": 841}),
            Some("timeout_seconds"),
        ),
        (json!({"name": "a", "runner": {"type": "http"}}), None),
        (
            json!({"name": "a", "runner": {"type": "http", "url": "not a url"}}),
            Some("runner.url"),
        ),
        (
            json!({"name": "a", "runner": {"type": "http", "url": "ftp://host/x"}}),
            Some("runner.url"),
        ),
        (json!({"name": "a", "runner": {"type": "shell"}}), None),
        (json!({"name": "a", "colour": "blue"}), None),
        (json!({"name": 5}), None),
        (json!([1, 2]), None),
    ];
    for (body, field) in bad {
        let (s, v) = h
            .admin(Method::POST, "/api/v1/agents", Some(body.clone()))
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body} -> {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(v["error"]["field"].as_str(), field, "{body} -> {v}");
    }
    let resp = h
        .http
        .post(h.url("/api/v1/agents"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h
        .http
        .post(h.url("/api/v1/agents"))
        .bearer_auth(ADMIN_KEY)
        .body(r#"{"name":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"name": "a", "pad": "x".repeat(70_000)});
    let (s, v) = h.admin(Method::POST, "/api/v1/agents", Some(huge)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let (_, list) = h.get("/api/v1/agents").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "no bad request created an agent"
    );

    let (s, v) = h.get("/api/v1/agents?limit=0").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let (s, _) = h.get("/api/v1/agents?limit=abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = h.get("/api/v1/agents?cursor=garbage").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn another_workspaces_key_sees_nothing() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "mine"})).await;
    let run = h.trigger(&agent, &secret, json!({"event": "x"})).await;

    let (_, key) = h.create_workspace("other");

    let other = |method: Method, path: String| {
        let req = h.http.request(method, h.url(&path)).bearer_auth(&key);
        async move {
            let resp = req
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    for (m, p) in [
        (Method::GET, format!("/api/v1/agents/{agent}")),
        (Method::PATCH, format!("/api/v1/agents/{agent}")),
        (Method::DELETE, format!("/api/v1/agents/{agent}")),
        (
            Method::POST,
            format!("/api/v1/agents/{agent}/rotate-secret"),
        ),
        (Method::GET, format!("/api/v1/agents/{agent}/runs")),
        (Method::GET, format!("/api/v1/agents/{agent}/logs")),
        (Method::GET, format!("/api/v1/runs/{run}")),
    ] {
        let (s, v) = other(m.clone(), p.clone()).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{m} {p}"
        );
    }
    let (s, v) = other(Method::GET, "/api/v1/agents".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"], json!([]));
    // And the agent is untouched.
    let (s, _) = h.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn runs_are_listed_newest_first_filtered_and_paged() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            h.trigger(&agent, &secret, json!({"event": "n", "data": i}))
                .await,
        );
    }
    for id in &ids {
        h.wait_finished(id, Duration::from_secs(20)).await;
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (s, page) = h.get(&format!("/api/v1/agents/{agent}/runs{q}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let count = |q: &'static str| {
        let h = &h;
        let agent = agent.clone();
        async move {
            let (s, v) = h.get(&format!("/api/v1/agents/{agent}/runs?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("trigger_type=WEBHOOK").await, 5);
    assert_eq!(count("trigger_type=webhook&status=succeeded").await, 5);
    assert_eq!(count("trigger_type=TOKEN").await, 0);
    assert_eq!(count("status=failed").await, 0);
    assert_eq!(count("status=succeeded&limit=3").await, 3);

    for q in [
        "trigger_type=NOPE",
        "status=done",
        "limit=101",
        "cursor=%%%",
    ] {
        let (s, v) = h.get(&format!("/api/v1/agents/{agent}/runs?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    let (s, _) = h.get("/api/v1/agents/agt_nope/runs").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.get("/api/v1/runs/run_nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_internal_secret_route_takes_the_internal_token_only() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let path = format!("/api/v1/internal/agents/{agent}/webhook-secret");

    let resp = h
        .http
        .get(h.url(&path))
        .header("x-internal-token", INTERNAL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["webhook_secret"], secret.as_str());
    assert_eq!(v["agent_id"], agent.as_str());

    let resp = h
        .http
        .get(h.url(&path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "an admin key is not the internal token"
    );
    let resp = h
        .http
        .get(h.url(&path))
        .header("x-internal-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = h
        .http
        .get(h.url("/api/v1/internal/agents/agt_nope/webhook-secret"))
        .header("x-internal-token", INTERNAL_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_an_internal_token_the_internal_route_does_not_exist() {
    let h = Hookrun::start_with(&[("HOOKRUN_INTERNAL_TOKEN", "")]);
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;
    let resp = h
        .http
        .get(h.url(&format!("/api/v1/internal/agents/{agent}/webhook-secret")))
        .header("x-internal-token", "")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_fresh_store_without_a_bootstrap_key_prints_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut child =
            crate::harness::hookrun_command(dir.path(), &["serve", "--addr", "127.0.0.1:0"])
                .env_remove("HOOKRUN_BOOTSTRAP_ADMIN_KEY")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
        let mut out = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0 {
                break;
            }
            out.push_str(&line);
            if line.starts_with("listening on") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        out
    };
    let first = run();
    let key = first
        .lines()
        .find_map(|l| l.split("keep it): ").nth(1))
        .expect("a key is printed")
        .to_owned();
    assert!(key.starts_with("hka_"));
    let second = run();
    assert!(!second.contains(&key), "the key is shown once");
    assert!(!second.contains("keep it"));
}

#[tokio::test]
async fn the_demo_prints_a_working_signed_curl_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        crate::harness::hookrun_command(dir.path(), &["serve", "--addr", "127.0.0.1:0", "--demo"])
            .env("HOOKRUN_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let mut out = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0 {
            break;
        }
        out.push_str(&line);
        if line.starts_with("listening on") {
            break;
        }
    }
    let curl = out
        .split("try it:")
        .nth(1)
        .expect("a curl command is printed");
    let quoted: Vec<&str> = curl.split('\'').skip(1).step_by(2).collect();
    let (url, sig, body) = (
        quoted[0],
        quoted[2].trim_start_matches("X-Signature: "),
        quoted[3],
    );
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
}

/// `hookrun serve` with `extra` flags and a per-address limit of 2 calls
/// a minute, loopback destinations not allowed by the environment: its
/// base URL and the child.
fn serve_for_local_development(
    dir: &std::path::Path,
    extra: &[&str],
) -> (String, std::process::Child) {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend(extra);
    let mut child = crate::harness::hookrun_command(dir, &args)
        .env("HOOKRUN_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
        .env("HOOKRUN_RATE_LIMIT_PER_IP", "2")
        .env_remove("HOOKRUN_OUTBOUND_ALLOW_HTTP")
        .env_remove("HOOKRUN_OUTBOUND_ALLOW_CIDRS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut url = None;
    if let Some(stdout) = child.stdout.take() {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
            if let Some(u) = line.trim().strip_prefix("listening on ") {
                url = Some(u.to_owned());
                break;
            }
            line.clear();
        }
    }
    match url {
        Some(url) => (url, child),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hookrun {extra:?} did not start");
        }
    }
}

/// `--allow-local-agents` lets an agent on this machine be reached (without
/// it, it is refused with a reason); `--demo` does not limit loopback
/// callers per address, while without it the third call from loopback in
/// a minute is `429`.
#[tokio::test]
async fn local_development_flags_allow_loopback_agents_and_unthrottled_local_calls() {
    let fake = crate::harness::FakeAgent::start().await;
    let http = reqwest::Client::new();
    for (flags, local_allowed, limited) in [
        (vec![], false, true),
        (vec!["--allow-local-agents", "--demo"], true, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (base, mut child) = serve_for_local_development(dir.path(), &flags);
        let resp = http
            .post(format!("{base}/api/v1/agents"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "local", "runner": {"type": "http", "url": fake.url("/ok")}}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        if local_allowed {
            assert_eq!(status, StatusCode::CREATED, "{flags:?}: {body}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{flags:?}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("runner.url"),
                "{body}"
            );
        }
        // An echo agent, called five times from loopback.
        let created: Value = http
            .post(format!("{base}/api/v1/agents"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "echo"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (agent, secret) = (
            created["id"].as_str().unwrap(),
            created["webhook_secret"].as_str().unwrap(),
        );
        let ws = created["workspace_id"].as_str().unwrap();
        let mut statuses = vec![];
        for i in 0..5 {
            let body = format!(r#"{{"event":"local","n":{i}}}"#);
            let resp = http
                .post(format!("{base}/api/v1/webhooks/{ws}/{agent}/trigger"))
                .header("content-type", "application/json")
                .header("x-signature", crate::harness::sign(secret, body.as_bytes()))
                .body(body)
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
        }
        let _ = child.kill();
        let _ = child.wait();
        if limited {
            assert_eq!(statuses, [202, 202, 429, 429, 429], "{flags:?}");
        } else {
            assert_eq!(statuses, [202; 5], "{flags:?}");
        }
    }
}

#[tokio::test]
async fn json_logs_hold_no_secret_key_or_token() {
    let h = Hookrun::start_with(&[("HOOKRUN_LOG_FORMAT", "json"), ("HOOKRUN_LOG", "debug")]);
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let run = h.trigger(&agent, &secret, json!({"event": "x"})).await;
    h.wait_finished(&run, Duration::from_secs(20)).await;
    let (_, t) = h
        .admin(
            Method::POST,
            "/api/v1/webhook-triggers",
            Some(json!({"agent_id": agent, "name": "t", "generate_secret": true})),
        )
        .await;
    let token = t["token"].as_str().unwrap();
    let resp = h
        .http
        .post(h.url(&format!("/webhooks/runs/{token}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no signature");
    let (_, rotated) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{agent}/rotate-secret"),
            None,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = h.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 5, "requests are logged");
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    for secret_thing in [
        ADMIN_KEY,
        secret.as_str(),
        token,
        t["secret"].as_str().unwrap(),
        rotated["webhook_secret"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret_thing), "a secret reached the log");
    }
    assert!(
        log.contains("/webhooks/runs/{token}"),
        "routes are logged by template"
    );
}

#[tokio::test]
async fn created_resources_carry_their_location() {
    let h = Hookrun::start();
    let resp = h
        .http
        .post(h.url("/api/v1/agents"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/agents/{}", body["id"].as_str().unwrap())
    );
    let (s, got) = h.get(&location).await;
    assert_eq!((s, got["id"].clone()), (StatusCode::OK, body["id"].clone()));
    let resp = h
        .http
        .post(h.url("/api/v1/webhook-triggers"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"agent_id": body["id"], "name": "t"}))
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/api/v1/webhook-triggers/trg_"),
        "{location}"
    );
    assert_eq!(h.get(&location).await.0, StatusCode::OK);
}

/// Logs written to a file (or a pipe, or a collector) are plain text: no
/// terminal colour codes in the way of grep or a log shipper.
#[tokio::test]
async fn text_logs_to_a_file_carry_no_colour_codes() {
    let h = Hookrun::start();
    let anonymous = reqwest::get(h.url("/api/v1/agents")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = h.get("/api/v1/agents").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = h.log();
    assert!(
        log.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "requests are logged: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

/// `serve --help` names both backends and lists the environment it reads
/// (it used to say "on the embedded SQLite store" only, and list none).
#[test]
fn serve_help_names_both_backends_and_its_environment() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrun"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("or on AWS (--backend aws)"), "{help}");
    for var in [
        "HOOKRUN_DATA_DIR",
        "HOOKRUN_ADDR",
        "HOOKRUN_BOOTSTRAP_ADMIN_KEY",
        "HOOKRUN_TABLE_NAME",
        "HOOKRUN_RATE_LIMIT_PER_IP",
    ] {
        assert!(help.contains(var), "serve --help lists {var}: {help}");
    }
}

/// A `--data-dir` that names a file is refused with "not a directory",
/// not an errno text, and nothing is started.
#[test]
fn a_data_dir_that_is_a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrun"))
        .args([
            "serve",
            "--backend",
            "sqlite",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a directory"), "{err}");
    assert!(!err.contains("os error 17"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
