//! The local development loop: `hookrun trigger` sends each provider
//! fixture, signed for the target, to a trigger of the matching scheme
//! (accepted) and with a wrong secret (refused), to an agent's own route,
//! and follows the run's log; on both backends.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::{client, run};
use crate::harness::{Hookrun, ADMIN_KEY};

/// The trigger body for a fixture's scheme, and the secret it signs with.
fn trigger_for(scheme: &str) -> (Value, String) {
    let secret = match scheme {
        // Standard Webhooks secrets are base64 keys.
        "standard-webhooks" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        other => format!("{other}-signing-secret-0123456789"),
    };
    let body = json!({"signature": {"scheme": scheme}, "secret": secret});
    (body, secret)
}

#[tokio::test]
async fn each_fixture_is_accepted_by_a_trigger_of_its_scheme_and_refused_with_a_wrong_secret() {
    let h = Hookrun::start();
    let (agent, _) = h
        .create_agent(json!({"name": "fixtures", "runner": {"type": "echo"}}))
        .await;
    let listed = run(client(&h.base, None), &["trigger", "--list-fixtures"]).ok();
    let names: Vec<&str> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.len(), 9, "{}", listed.stdout);
    for name in names {
        let scheme = match name.split(':').next().unwrap() {
            "grafana" | "generic" => "hmac",
            s => s,
        };
        let (mut body, secret) = trigger_for(scheme);
        body["agent_id"] = json!(agent);
        body["name"] = json!(name);
        let (s, t) = h
            .admin(
                reqwest::Method::POST,
                "/api/v1/webhook-triggers",
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let id = t["id"].as_str().unwrap();

        let sent = run(
            client(&h.base, Some(ADMIN_KEY)),
            &["trigger", id, "--fixture", name, "--secret", &secret],
        )
        .ok();
        assert!(
            sent.stdout.starts_with("accepted: run run_"),
            "{name}: {}",
            sent.stdout
        );
        // Sent again: a new delivery id, so a new run (not a duplicate).
        let again = run(
            client(&h.base, Some(ADMIN_KEY)),
            &[
                "trigger",
                id,
                "--fixture",
                name,
                "--secret",
                &secret,
                "--json",
            ],
        )
        .ok();
        assert_eq!(again.json()["status"], "accepted", "{name}");
        assert_ne!(
            again.json()["run_id"].as_str(),
            sent.stdout.trim().strip_prefix("accepted: run "),
            "{name}: each call is new"
        );

        let wrong = run(
            client(&h.base, Some(ADMIN_KEY)),
            &[
                "trigger",
                id,
                "--fixture",
                name,
                "--secret",
                "whsec_d3Jvbmcgc2VjcmV0",
            ],
        );
        assert_eq!(wrong.code, 1, "{name}: {} {}", wrong.stdout, wrong.stderr);
        assert!(wrong.stderr.contains("401"), "{name}: {}", wrong.stderr);
    }
}

#[tokio::test]
async fn a_fixture_reaches_an_agent_route_with_overrides_and_its_log_is_followed() {
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({"name": "direct", "runner": {"type": "echo"}}))
        .await;
    let out = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "github:pull_request.opened",
            "--secret",
            &secret,
            "--set",
            "/pull_request/title=Ship the console",
            "--follow",
        ],
    )
    .ok();
    assert!(
        out.stdout.starts_with("accepted: run run_"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("run succeeded"), "{}", out.stdout);
    let run_id = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("accepted: run ");
    let (_, r) = h.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(
        r["input"]["pull_request"]["title"], "Ship the console",
        "{r}"
    );

    // --dry-run prints the signed request and sends nothing.
    let dry = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "generic",
            "--secret",
            &secret,
            "--dry-run",
        ],
    )
    .ok();
    assert!(dry.stdout.starts_with("POST http"), "{}", dry.stdout);
    assert!(dry.stdout.contains("\nX-Signature: "), "{}", dry.stdout);
    let (_, runs) = h.get(&format!("/api/v1/agents/{agent}/runs")).await;
    assert_eq!(
        runs["data"].as_array().unwrap().len(),
        1,
        "a dry run sends nothing"
    );

    // The secret from HOOKRUN_TRIGGER_SECRET, and from a file with @.
    let mut from_env = client(&h.base, Some(ADMIN_KEY));
    from_env.env("HOOKRUN_TRIGGER_SECRET", &secret);
    let out = run(from_env, &["trigger", &agent, "--fixture", "generic"]).ok();
    assert!(
        out.stdout.starts_with("accepted: run run_"),
        "{}",
        out.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let at_file = format!("@{}", file.display());
    let out = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "generic",
            "--secret",
            &at_file,
        ],
    )
    .ok();
    assert!(
        out.stdout.starts_with("accepted: run run_"),
        "{}",
        out.stdout
    );
    let missing = format!("@{}", dir.path().join("nope").display());
    let out = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "generic",
            "--secret",
            &missing,
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    let (_, runs) = h.get(&format!("/api/v1/agents/{agent}/runs")).await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 3);

    // --follow exits as `logs --follow` does: 1 for a run that failed.
    let fake = crate::harness::FakeAgent::start().await;
    let (failing, failing_secret) = h
        .create_agent(
            json!({"name": "failing", "runner": {"type": "http", "url": fake.url("/fail")}}),
        )
        .await;
    let out = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &failing,
            "--fixture",
            "generic",
            "--secret",
            &failing_secret,
            "--follow",
        ],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let failed_run = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("accepted: run "))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_owned();
    let (_, r) = h.get(&format!("/api/v1/runs/{failed_run}")).await;
    assert_eq!(r["status"], "failed", "{r}");

    // A signed target without a secret, an unknown fixture, a bad --set.
    for (args, code, says) in [
        (
            vec!["trigger", agent.as_str(), "--fixture", "generic"],
            2,
            "--secret",
        ),
        (
            vec![
                "trigger",
                agent.as_str(),
                "--fixture",
                "github:nope",
                "--secret",
                "x",
            ],
            2,
            "github:push",
        ),
        (
            vec![
                "trigger",
                agent.as_str(),
                "--fixture",
                "generic",
                "--secret",
                "x",
                "--set",
                "/no/such=1",
            ],
            2,
            "/no",
        ),
    ] {
        let out = run(client(&h.base, Some(ADMIN_KEY)), &args);
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

/// A running `hookrun listen` and what it printed so far.
struct Listener {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _config: Option<tempfile::TempDir>,
}

impl Listener {
    fn start(h: &Hookrun, args: &[&str]) -> Listener {
        let config = tempfile::tempdir().unwrap();
        let mut l = Self::start_in(h, args, config.path());
        l._config = Some(config);
        l
    }

    /// With this config directory (the same machine id, so the same
    /// session, as a `listen` that ran there before).
    fn start_in(h: &Hookrun, args: &[&str], config: &std::path::Path) -> Listener {
        use std::io::BufRead;
        let mut cmd = client(&h.base, Some(ADMIN_KEY));
        cmd.env("XDG_CONFIG_HOME", config)
            .arg("listen")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let mut child = cmd.spawn().expect("hookrun listen starts");
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Listener {
            child,
            lines,
            _config: None,
        }
    }

    /// The first line printed so far that contains `text`, waiting for it.
    async fn line(&self, text: &str, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "listen printed no {text:?}: {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "hookrun listen printed:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run ended as succeeded: a run that failed would send no
/// `run.succeeded`, and a missing delivery would be misread.
async fn assert_succeeded(h: &Hookrun, run_id: &str) {
    let run = h.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// The listen sessions among the workspace's subscriptions.
async fn listen_sessions(h: &Hookrun) -> Vec<Value> {
    let (_, subs) = h.get("/api/v1/subscriptions").await;
    subs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with("sub_listen_"))
        .cloned()
        .collect()
}

/// Waits until the session's (only) delivery has this status.
async fn wait_delivery_status(h: &Hookrun, session: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = h
            .get(&format!("/api/v1/subscriptions/{session}/deliveries"))
            .await;
        if log["data"][0]["status"] == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery is not {want}: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both signatures of a forwarded delivery verify with the listen secret.
fn assert_signed(r: &crate::harness::Received, secret: &str) {
    let id = r.header("webhook-id");
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        r.header("webhook-signature"),
        hookrun_core::signature::standard_webhooks(id, ts, &r.body, &[secret.to_owned()]),
        "Standard Webhooks signature"
    );
    let crewship = format!(
        "sha256={}",
        hex::encode(hookrun_core::signature::hmac_sha256(
            secret.as_bytes(),
            format!("{}.{}", r.header("x-crewship-timestamp"), r.body).as_bytes()
        ))
    );
    assert_eq!(
        r.header("x-crewship-signature"),
        crewship,
        "X-Crewship signature"
    );
}

#[tokio::test]
async fn listen_forwards_signed_deliveries_retries_a_failure_and_survives_a_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut h = Hookrun::start_with(&[
        ("HOOKRUN_ADDR", &addr),
        ("HOOKRUN_DELIVERY_RETRY_SCHEDULE", "1,1,1,1,1,1,1"),
    ]);
    let (agent, agent_secret) = h
        .create_agent(json!({"name": "listened", "runner": {"type": "echo"}}))
        .await;
    let fake = crate::harness::FakeAgent::start().await;
    let (mirror, mirror_secret) = h
        .create_agent(
            json!({"name": "mirror", "runner": {"type": "http", "url": fake.url("/mirror")}}),
        )
        .await;
    let receiver = crate::harness::Receiver::start();
    receiver.answer(&[500, 200]);
    let listen = Listener::start(
        &h,
        &["--forward-to", &receiver.url(), "--events", "run.succeeded"],
    );
    let secret_line = listen
        .line("listen secret: ", Duration::from_secs(10))
        .await;
    let secret = secret_line.trim_start_matches("listen secret: ").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret_line}");
    listen
        .line("listening: run.succeeded", Duration::from_secs(10))
        .await;

    // A run's run.succeeded: forwarded, refused (500), retried, taken.
    let first = h.trigger(&agent, &agent_secret, json!({"n": 1})).await;
    assert_succeeded(&h, &first).await;
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "the same delivery again"
    );
    for r in &got {
        assert_signed(r, &secret);
        assert_eq!(r.json()["event"], "run.succeeded");
        assert_eq!(r.json()["data"]["run_id"], first.as_str());
    }
    listen.line("→ 500", Duration::from_secs(5)).await;
    // One line per delivery: time, event, run id, local status, duration.
    let line = listen.line("→ 200", Duration::from_secs(5)).await;
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        chrono::NaiveTime::parse_from_str(words[0], "%H:%M:%S").is_ok(),
        "{line}"
    );
    assert_eq!(&words[1..3], ["run.succeeded", first.as_str()], "{line}");
    assert!(line.contains("attempt 2 → 200 in "), "{line}");
    assert!(line.ends_with(" ms"), "{line}");
    // The delivery log shows both attempts, marked as a listen session's.
    let session = listen_sessions(&h)
        .await
        .into_iter()
        .next()
        .expect("the session is a subscription");
    wait_delivery_status(&h, session["id"].as_str().unwrap(), "succeeded").await;
    let (_, log) = h
        .get(&format!(
            "/api/v1/subscriptions/{}/deliveries",
            session["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(log["data"][0]["listen"], true);
    assert_eq!(log["data"][0]["status"], "succeeded");
    assert_eq!(log["data"][0]["attempts"], 2);

    // The server is killed (SIGKILL: no drain) and started again in the
    // middle: listen reconnects and resumes; nothing is lost or repeated.
    h.kill();
    h.respawn();
    let second = h.trigger(&agent, &agent_secret, json!({"n": 2})).await;
    assert_succeeded(&h, &second).await;
    let got = receiver.wait_for(3, Duration::from_secs(60)).await;
    assert_eq!(got[2].json()["data"]["run_id"], second.as_str());
    assert_signed(&got[2], &secret);
    listen.line("reconnected", Duration::from_secs(10)).await;
    // One too big for a channel message: its body is read from the
    // delivery log and forwarded whole, under the pushed signature.
    let big = "y".repeat(150 * 1024);
    let third = h
        .trigger(&mirror, &mirror_secret, json!({"big": big}))
        .await;
    assert_succeeded(&h, &third).await;
    let got = receiver.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(got[3].json()["data"]["run_id"], third.as_str());
    assert!(got[3].body.contains(&big));
    assert_signed(&got[3], &secret);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got().len(), 4, "nothing forwarded twice");

    // Ctrl-C ends it and closes the session.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &listen.child.id().to_string()])
        .status();
    listen.line("stopping", Duration::from_secs(10)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut listen = listen;
    loop {
        if let Some(status) = listen.child.try_wait().unwrap() {
            assert!(status.success(), "listen exited with {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "listen did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = listen_sessions(&h).await;
    assert!(left.is_empty(), "the session was closed: {left:?}");
}

/// A pushed delivery's Standard Webhooks signature verifies over `body`.
fn assert_pushed_signed(d: &Value, body: &str, secret: &str) {
    let ts: i64 = d["headers"]["webhook-timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        d["headers"]["webhook-signature"],
        hookrun_core::signature::standard_webhooks(
            d["id"].as_str().unwrap(),
            ts,
            body,
            &[secret.to_owned()]
        )
    );
}

/// The channel's side of a listen session, as any client speaks it: a
/// `listen` message is answered `listening`, a run's delivery is pushed as
/// it comes due, and a session of another workspace or a malformed
/// message gets an error while the connection stays.
#[tokio::test]
async fn the_channel_pushes_a_listen_sessions_deliveries_to_its_connection() {
    use crate::live::{next_json, send, ws_connect};
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let h = Hookrun::start();
    let (agent, agent_secret) = h
        .create_agent(json!({"name": "listened", "runner": {"type": "echo"}}))
        .await;
    let (status, session) = h
        .admin(
            reqwest::Method::POST,
            "/api/v1/listen",
            Some(json!({
                "machine_id": "laptop", "label": "http://localhost:3000/hooks",
                "events": ["run.succeeded"], "secret": SECRET,
            })),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().unwrap();

    let mut ws = ws_connect(&h, ADMIN_KEY).await;
    send(&mut ws, json!({"type": "listen"})).await;
    let bad = next_json(&mut ws).await;
    assert_eq!(
        (bad["type"].as_str(), bad["code"].as_str()),
        (Some("error"), Some("invalid_message")),
        "{bad}"
    );
    send(&mut ws, json!({"type": "listen", "session_id": session_id})).await;
    let listening = next_json(&mut ws).await;
    assert_eq!(listening["type"], "listening", "{listening}");
    assert_eq!(listening["session"]["id"], session_id);
    assert_eq!(
        (listening["due"].clone(), listening["more"].clone()),
        (json!([]), json!(false))
    );

    let run_id = h.trigger(&agent, &agent_secret, json!({"n": 1})).await;
    let pushed = next_json(&mut ws).await;
    assert_eq!(pushed["type"], "delivery", "{pushed}");
    assert_eq!(pushed["session_id"], session_id);
    let d = &pushed["delivery"];
    assert_eq!(d["event"], "run.succeeded");
    assert_eq!(
        (d["run_id"].as_str(), d["attempt"].as_u64()),
        (Some(run_id.as_str()), Some(1))
    );
    let body: Value = serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["run_id"], run_id.as_str());
    assert_pushed_signed(d, d["body"].as_str().unwrap(), SECRET);
    // Not reported: said `listen` again, it is given again (due until
    // reported), the same delivery and attempt.
    send(&mut ws, json!({"type": "listen", "session_id": session_id})).await;
    let again = next_json(&mut ws).await;
    assert_eq!(again["type"], "listening");
    assert_eq!(again["due"][0]["id"], d["id"]);
    assert_eq!(again["due"][0]["attempt"], 1);
    // A keep-alive (`due: false`) gives nothing.
    send(
        &mut ws,
        json!({"type": "listen", "session_id": session_id, "due": false}),
    )
    .await;
    let kept = next_json(&mut ws).await;
    assert_eq!(kept["type"], "listening");
    assert!(kept.get("due").is_none(), "{kept}");

    // A delivery too big for a channel message (API Gateway's are at most
    // 128 KB) comes without its body, which the delivery log has; the
    // headers are signed over it.
    let fake = crate::harness::FakeAgent::start().await;
    let (mirror, mirror_secret) = h
        .create_agent(
            json!({"name": "mirror", "runner": {"type": "http", "url": fake.url("/mirror")}}),
        )
        .await;
    let big = "x".repeat(150 * 1024);
    let big_run = h
        .trigger(&mirror, &mirror_secret, json!({"big": big}))
        .await;
    let pushed = loop {
        let m = next_json(&mut ws).await;
        if m["delivery"]["run_id"] == big_run.as_str() {
            break m;
        }
    };
    let d = &pushed["delivery"];
    assert_eq!(
        (d["body"].clone(), d["body_omitted"].clone()),
        (Value::Null, json!(true))
    );
    let (_, detail) = h
        .get(&format!("/api/v1/deliveries/{}", d["id"].as_str().unwrap()))
        .await;
    let body = detail["body"].as_str().unwrap();
    assert!(body.contains(&big));
    assert_pushed_signed(d, body, SECRET);

    // Another workspace's key cannot listen to the session.
    let (_, other_key) = h.create_workspace("other");
    let mut other = ws_connect(&h, &other_key).await;
    send(
        &mut other,
        json!({"type": "listen", "session_id": session_id}),
    )
    .await;
    let refused = next_json(&mut other).await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    send(&mut other, json!({"type": "ping"})).await;
    assert_eq!(
        next_json(&mut other).await["type"],
        "pong",
        "the connection stays"
    );
}

/// `listen` pointed at no channel (on AWS, --ws-url left out) stops at
/// once saying what to give, rather than retrying for ever.
#[tokio::test]
async fn listen_without_a_channel_says_what_to_give() {
    let h = Hookrun::start();
    let config = tempfile::tempdir().unwrap();
    let ws = format!("{}/api/v1/no-channel", h.base.replacen("http", "ws", 1));
    for (ws_url, code, says) in [
        (ws.as_str(), 2, "--ws-url"),
        (
            "https://example.com/ws",
            2,
            "expected a ws:// or wss:// URL",
        ),
    ] {
        let mut cmd = client(&h.base, Some(ADMIN_KEY));
        cmd.env("XDG_CONFIG_HOME", config.path());
        let out = run(
            cmd,
            &[
                "listen",
                "--forward-to",
                "http://127.0.0.1:9/hooks",
                "--ws-url",
                ws_url,
            ],
        );
        assert_eq!(out.code, code, "{ws_url}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{ws_url}: {}", out.stderr);
    }
    // The session it had opened was closed on the way out.
    let (_, subs) = h.get("/api/v1/subscriptions").await;
    assert_eq!(subs["data"], json!([]), "{subs}");
}

/// A backlog that built up while `listen` was away (a laptop back from a
/// weekend) is forwarded whole, oldest first, each once: a page at a
/// time, before what came due since.
#[tokio::test]
async fn a_backlog_is_forwarded_oldest_first_when_listen_comes_back() {
    let h = Hookrun::start_with(&[
        ("HOOKRUN_RATE_LIMIT_PER_IP", "1000"),
        ("HOOKRUN_RATE_LIMIT_PER_TRIGGER", "1000"),
        ("HOOKRUN_RATE_LIMIT_PER_WORKSPACE", "1000"),
    ]);
    let (agent, agent_secret) = h
        .create_agent(json!({"name": "busy", "runner": {"type": "echo"}}))
        .await;
    let receiver = crate::harness::Receiver::start();
    let args = ["--forward-to", &receiver.url(), "--events", "run.succeeded"];
    let config = tempfile::tempdir().unwrap();
    let first = Listener::start_in(&h, &args, config.path());
    first.line("listening: ", Duration::from_secs(10)).await;
    // Gone without a word (SIGKILL): the session stays, and fills up.
    drop(first);
    let mut runs = Vec::new();
    for n in 0..30 {
        runs.push(h.trigger(&agent, &agent_secret, json!({"n": n})).await);
    }
    for r in &runs {
        h.wait_finished(r, Duration::from_secs(30)).await;
    }
    assert!(receiver.got().is_empty());
    let back = Listener::start_in(&h, &args, config.path());
    // Well within the 30 s tick: each page is asked for as the last is
    // forwarded.
    let got = receiver.wait_for(30, Duration::from_secs(20)).await;
    // Once more, live, after the backlog.
    let live = h.trigger(&agent, &agent_secret, json!({"n": "live"})).await;
    let got_all = receiver.wait_for(31, Duration::from_secs(30)).await;
    assert_eq!(got_all[30].json()["data"]["run_id"], live.as_str());
    // Oldest first: in the order the deliveries came due, as the
    // delivery log has them (made, then id). Not by the event's own
    // time: two runs ending together may make their deliveries in the
    // other order.
    let session = listen_sessions(&h)
        .await
        .into_iter()
        .next()
        .expect("the session is a subscription")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, log) = h
        .get(&format!(
            "/api/v1/subscriptions/{session}/deliveries?limit=100"
        ))
        .await;
    let made: std::collections::HashMap<String, String> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["created_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let order: Vec<(String, String)> = got[..30]
        .iter()
        .map(|r| {
            let id = r.header("webhook-id").to_owned();
            (made[&id].clone(), id)
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "oldest first");
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "each once");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.got().len(), 31, "nothing forwarded twice");
    drop(back);
}

/// `--agent` keeps other agents' runs out, `--print-body` prints what the
/// local server answered, and a local URL nobody listens on is shown as
/// no answer and kept for its retry (the delivery stays pending).
#[tokio::test]
async fn listen_filters_by_agent_prints_answers_and_shows_a_refused_forward() {
    let h = Hookrun::start();
    let (mine, mine_secret) = h
        .create_agent(json!({"name": "mine", "runner": {"type": "echo"}}))
        .await;
    let (other, other_secret) = h
        .create_agent(json!({"name": "other", "runner": {"type": "echo"}}))
        .await;
    let receiver = crate::harness::Receiver::start();
    let nobody = format!(
        "http://{}/hooks",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    let listen = Listener::start(
        &h,
        &[
            "--forward-to",
            &receiver.url(),
            "--forward-to",
            &nobody,
            "--events",
            "run.succeeded",
            "--agent",
            &mine,
            "--print-body",
        ],
    );
    listen
        .line(&format!("→ {nobody}"), Duration::from_secs(10))
        .await;
    listen
        .line(&format!("→ {}", receiver.url()), Duration::from_secs(10))
        .await;

    let skipped = h.trigger(&other, &other_secret, json!({"n": 0})).await;
    h.wait_finished(&skipped, Duration::from_secs(30)).await;
    let run = h.trigger(&mine, &mine_secret, json!({"n": 1})).await;
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].json()["data"]["run_id"], run.as_str());
    // The local answer, printed after its line.
    listen.line("answer 200", Duration::from_secs(10)).await;
    // The URL nobody listens on: shown, and left pending for its retry.
    let refused = listen.line("no answer", Duration::from_secs(10)).await;
    assert!(refused.contains(run.as_str()), "{refused}");
    let sessions = listen_sessions(&h).await;
    assert_eq!(sessions.len(), 2, "one session per --forward-to");
    for s in sessions {
        assert_eq!(s["agent_id"], mine.as_str());
        let (_, log) = h
            .get(&format!(
                "/api/v1/subscriptions/{}/deliveries",
                s["id"].as_str().unwrap()
            ))
            .await;
        let data = log["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "only the agent's run: {log}");
        assert_eq!(data[0]["run_id"], run.as_str());
        if s["name"].as_str().unwrap().contains(&nobody) {
            assert_eq!(data[0]["status"], "pending", "{s}");
        } else {
            // Reported just after its line is printed.
            wait_delivery_status(&h, s["id"].as_str().unwrap(), "succeeded").await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.got().len(),
        1,
        "the other agent's run is not forwarded"
    );
}
