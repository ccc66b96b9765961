//! The `hookrun` command-line client against a running `hookrun serve`:
//! every resource's commands, table and `--json` output, the exit codes
//! scripts rely on, `logs --follow`, `verify` on a real delivery, and the
//! completion scripts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{FakeAgent, Hookrun, Received, Receiver, ADMIN_KEY, LOOPBACK_DELIVERIES};

/// What one run of the binary came to.
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// Asserts success and returns itself.
    pub(crate) fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The client pointed at `url` with `key`, nothing inherited.
pub(crate) fn client(url: &str, key: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrun"));
    cmd.env_remove("HOOKRUN_URL")
        .env_remove("HOOKRUN_API_KEY")
        .env_remove("COLUMNS")
        .env_remove("HOOKRUN_SUBSCRIPTION_SECRET")
        .env("HOOKRUN_URL", url)
        .stdin(Stdio::null());
    if let Some(k) = key {
        cmd.env("HOOKRUN_API_KEY", k);
    }
    cmd
}

pub(crate) fn run(mut cmd: Command, args: &[&str]) -> Out {
    let out = cmd.args(args).output().expect("hookrun runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "hookrun {args:?} panicked: {stderr}"
    );
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    }
}

/// `hookrun ARGS` against `h` with the admin key.
pub(crate) fn cli(h: &Hookrun, args: &[&str]) -> Out {
    run(client(&h.base, Some(ADMIN_KEY)), args)
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

fn ids(listing: &Value) -> Vec<String> {
    listing["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {listing}"))
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test]
async fn cli_agents_create_list_get_update_rotate_delete() {
    let h = Hookrun::start();
    // Table output: the record, and the secret on a line of its own.
    let created = cli(&h, &["agents", "create", "--name", "alpha"]).ok();
    let secret_line = created
        .stdout
        .lines()
        .find(|l| l.starts_with("webhook_secret (shown once, keep it): whk_"))
        .unwrap_or_else(|| panic!("no secret line: {}", created.stdout));
    assert!(created.stdout.contains("alpha"));
    let first_secret = secret_line.rsplit(' ').next().unwrap().to_owned();

    let beta = cli(
        &h,
        &[
            "agents",
            "create",
            "--name",
            "beta",
            "--runner-url",
            "http://127.0.0.1:9/run",
            "--timeout-seconds",
            "30",
            "--json",
        ],
    )
    .ok()
    .json();
    let beta_id = id_of(&beta);
    assert_eq!(
        beta["runner"],
        json!({"type": "http", "url": "http://127.0.0.1:9/run", "headers": {}})
    );
    assert_eq!(beta["timeout_seconds"], 30);
    assert!(beta["webhook_secret"].as_str().unwrap().starts_with("whk_"));

    // --body reaches every field; flags override it.
    let gamma = cli(
        &h,
        &[
            "agents",
            "create",
            "--body",
            r#"{"name":"ignored","enabled":false}"#,
            "--name",
            "gamma",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (gamma["name"].as_str(), gamma["enabled"].as_bool()),
        (Some("gamma"), Some(false))
    );

    let listing = cli(&h, &["agents", "list", "--json"]).ok().json();
    let all_ids = ids(&listing);
    assert_eq!(all_ids.len(), 3, "{listing}");
    assert!(all_ids.contains(&beta_id));
    let table = cli(&h, &["agents", "list"]).ok().stdout;
    for id in &all_ids {
        assert!(table.contains(id.as_str()), "{id} missing from\n{table}");
    }
    assert!(table.contains("http http://127.0.0.1:9/run"), "{table}");

    // Paging: one per page, then --all follows the cursors.
    let page = cli(&h, &["agents", "list", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&page).len(), 1);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = cli(
        &h,
        &[
            "agents", "list", "--limit", "1", "--cursor", &cursor, "--json",
        ],
    )
    .ok()
    .json();
    assert_ne!(ids(&next), ids(&page));
    let every = cli(&h, &["agents", "list", "--limit", "1", "--all", "--json"])
        .ok()
        .json();
    let mut got = ids(&every);
    let mut want = all_ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(every["next_cursor"], Value::Null);

    let got = cli(&h, &["agents", "get", &beta_id, "--json"]).ok().json();
    assert_eq!(got["name"], "beta");
    assert!(got.get("webhook_secret").is_none());
    assert!(cli(&h, &["agents", "get", &beta_id])
        .ok()
        .stdout
        .contains(&beta_id));

    let updated = cli(
        &h,
        &[
            "agents",
            "update",
            &beta_id,
            "--name",
            "beta2",
            "--echo",
            "--enabled",
            "false",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(updated["name"], "beta2");
    assert_eq!(updated["runner"], json!({"type": "echo"}));
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["version"], 2);

    let alpha_id = all_ids
        .iter()
        .find(|i| **i != beta_id && **i != id_of(&gamma))
        .unwrap()
        .clone();
    let rotated = cli(
        &h,
        &[
            "agents",
            "rotate-secret",
            &alpha_id,
            "--grace-seconds",
            "0",
            "--json",
        ],
    )
    .ok()
    .json();
    let new_secret = rotated["webhook_secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whk_"));
    assert_ne!(new_secret, first_secret);
    let shown = cli(&h, &["agents", "rotate-secret", &alpha_id]).ok().stdout;
    assert!(
        shown.contains("webhook_secret (shown once, keep it): whk_"),
        "{shown}"
    );

    let deleted = cli(&h, &["agents", "delete", &beta_id]).ok();
    assert!(deleted.stdout.contains(&format!("deleted agent {beta_id}")));
    let gone = cli(&h, &["agents", "get", &beta_id]);
    assert_eq!(gone.code, 4, "{}", gone.stderr);
    assert!(gone.stderr.contains("not_found"), "{}", gone.stderr);
}

#[tokio::test]
async fn cli_triggers_and_runs() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "echo"})).await;
    let created = cli(
        &h,
        &[
            "triggers",
            "create",
            "--agent",
            &agent,
            "--name",
            "ci",
            "--generate-secret",
            "--event-type",
            "push",
            "--rate-limit",
            "30",
            "--json",
        ],
    )
    .ok()
    .json();
    let trigger = id_of(&created);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wht_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["event_types"], json!(["push"]));
    assert_eq!(created["rate_limit_per_minute"], 30);

    let table = cli(&h, &["triggers", "list", "--agent", &agent])
        .ok()
        .stdout;
    assert!(
        table.contains(&trigger) && table.contains(&agent),
        "{table}"
    );
    let listing = cli(&h, &["triggers", "list", "--json"]).ok().json();
    assert_eq!(ids(&listing), vec![trigger.clone()]);
    let got = cli(&h, &["triggers", "get", &trigger, "--json"])
        .ok()
        .json();
    assert_eq!(got["has_secret"], true);
    assert!(got.get("token").is_none());

    let updated = cli(
        &h,
        &[
            "triggers",
            "update",
            &trigger,
            "--enabled",
            "false",
            "--description",
            "from CI",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(updated["is_active"], false);
    assert_eq!(updated["description"], "from CI");
    cli(&h, &["triggers", "update", &trigger, "--active", "true"]).ok();

    let retoken = cli(&h, &["triggers", "regenerate-token", &trigger, "--json"])
        .ok()
        .json();
    assert_ne!(retoken["token"].as_str().unwrap(), token);
    // In the table, the new token is printed once, below it: the token
    // URL in `urls` names it instead of repeating it.
    let retoken = cli(&h, &["triggers", "regenerate-token", &trigger])
        .ok()
        .stdout;
    let shown = retoken
        .lines()
        .find_map(|l| l.strip_prefix("token (shown once, keep it): "))
        .unwrap_or_else(|| panic!("{retoken}"))
        .to_owned();
    assert_eq!(retoken.matches(shown.as_str()).count(), 1, "{retoken}");
    assert!(retoken.contains("<token, below>"), "{retoken}");
    let resecret = cli(&h, &["triggers", "regenerate-secret", &trigger])
        .ok()
        .stdout;
    assert!(
        resecret.contains("secret (shown once, keep it): whsec_"),
        "{resecret}"
    );

    // An action that makes a run, then the run through `runs`.
    let test = cli(
        &h,
        &[
            "triggers",
            "test",
            &trigger,
            "--payload",
            r#"{"event":"push","source":"cli"}"#,
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(test["status"], "accepted");
    let run_id = test["run_id"].as_str().unwrap().to_owned();
    h.wait_finished(&run_id, Duration::from_secs(10)).await;
    let runs = cli(
        &h,
        &[
            "runs",
            "list",
            "--agent",
            &agent,
            "--trigger-type",
            "test",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(ids(&runs), vec![run_id.clone()]);
    let none = cli(
        &h,
        &[
            "runs", "list", "--agent", &agent, "--status", "failed", "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(ids(&none), Vec::<String>::new());
    assert!(cli(&h, &["runs", "list", "--agent", &agent])
        .ok()
        .stdout
        .contains(&run_id));
    let run = cli(&h, &["runs", "get", &run_id, "--json"]).ok().json();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["input"]["source"], "cli");

    let inv = cli(&h, &["triggers", "invocations", &trigger, "--json"])
        .ok()
        .json();
    assert!(inv["data"].is_array(), "{inv}");

    cli(&h, &["triggers", "delete", &trigger]).ok();
    assert_eq!(cli(&h, &["triggers", "get", &trigger]).code, 4);
}

/// A received delivery as the raw HTTP request a receiver would save.
fn raw_request(r: &Received, body: &str) -> String {
    let mut raw = String::from("POST /hook HTTP/1.1\r\n");
    for (k, v) in &r.headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw
}

fn verify(file: &Path, secret: &str) -> Out {
    run(
        client("http://127.0.0.1:9", None),
        &[
            "verify",
            "--secret",
            secret,
            "--request",
            file.to_str().unwrap(),
        ],
    )
}

#[tokio::test]
async fn cli_subscriptions_deliveries_and_verify() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let (agent, agent_secret) = h.create_agent(json!({"name": "echo"})).await;
    let created = cli(
        &h,
        &[
            "subscriptions",
            "create",
            "--name",
            "ops",
            "--url",
            &rx.url(),
            "--event",
            "run.succeeded",
            "--event",
            "run.failed",
            "--agent",
            &agent,
            "--json",
        ],
    )
    .ok()
    .json();
    let sub = id_of(&created);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["url"], rx.url());
    assert_eq!(created["events"], json!(["run.succeeded", "run.failed"]));
    let table = cli(&h, &["subscriptions", "list"]).ok().stdout;
    assert!(table.contains(&sub) && table.contains(&rx.url()), "{table}");
    let updated = cli(
        &h,
        &["subscriptions", "update", &sub, "--name", "ops2", "--json"],
    )
    .ok()
    .json();
    assert_eq!(updated["name"], "ops2");
    assert_eq!(
        cli(&h, &["subscriptions", "get", &sub, "--json"])
            .ok()
            .json()["name"],
        "ops2"
    );

    let run_id = h
        .trigger(&agent, &agent_secret, json!({"event": "e", "source": "s"}))
        .await;
    h.wait_finished(&run_id, Duration::from_secs(10)).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;

    let deliveries = cli(&h, &["subscriptions", "deliveries", &sub, "--json"])
        .ok()
        .json();
    let delivery = ids(&deliveries).first().cloned().expect("a delivery");
    let one = cli(&h, &["deliveries", "get", &delivery, "--json"])
        .ok()
        .json();
    assert_eq!(one["run_id"], run_id);
    assert!(one["attempt_log"].is_array());
    let shown = cli(&h, &["deliveries", "get", &delivery]).ok().stdout;
    assert!(
        shown.contains("attempts:") && shown.contains(&run_id),
        "{shown}"
    );
    let again = cli(&h, &["deliveries", "redeliver", &delivery, "--json"])
        .ok()
        .json();
    assert_eq!(again["status"], "queued");
    rx.wait_for(2, Duration::from_secs(10)).await;

    // verify: the delivery as received, then tampered, wrong secret, stale.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("delivery.http");
    std::fs::write(&saved, raw_request(&got[0], &got[0].body)).unwrap();
    let ok = verify(&saved, &secret);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout.contains("X-Crewship-Signature   valid"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout.contains("webhook-signature      valid"),
        "{}",
        ok.stdout
    );
    let report = run(
        client("http://127.0.0.1:9", None),
        &[
            "verify",
            "--secret",
            &secret,
            "--request",
            saved.to_str().unwrap(),
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(report["valid"], true);

    // Same length, so Content-Length still fits: only the signature can tell.
    let tampered_body = got[0].body.replacen("succeeded", "SUCCEEDED", 1);
    assert_ne!(tampered_body, got[0].body);
    let tampered = dir.path().join("tampered.http");
    std::fs::write(&tampered, raw_request(&got[0], &tampered_body)).unwrap();
    let bad = verify(&tampered, &secret);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(bad.stdout.contains("invalid"), "{}", bad.stdout);
    assert!(!bad.stdout.contains(" valid"), "{}", bad.stdout);

    let wrong = verify(&saved, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_eq!(wrong.code, 1, "{}", wrong.stdout);

    // Signed correctly, an hour ago: valid signatures, refused as stale.
    let old = got[0].header("webhook-timestamp").parse::<i64>().unwrap() - 3600;
    let mut stale = got[0].clone();
    for (k, v) in hookrun_core::services::delivery::signature_headers(
        got[0].header("webhook-id"),
        got[0].header("x-crewship-event"),
        old,
        &got[0].body,
        std::slice::from_ref(&secret),
    ) {
        stale.headers.insert(k.to_owned(), v);
    }
    let stale_file = dir.path().join("stale.http");
    std::fs::write(&stale_file, raw_request(&stale, &stale.body)).unwrap();
    let late = verify(&stale_file, &secret);
    assert_eq!(late.code, 1, "{}", late.stdout);
    assert!(late.stdout.contains("stale"), "{}", late.stdout);
    // ... and accepted with a tolerance that covers it.
    let wide = run(
        client("http://127.0.0.1:9", None),
        &[
            "verify",
            "--secret",
            &secret,
            "--request",
            stale_file.to_str().unwrap(),
            "--tolerance",
            "2h",
        ],
    );
    assert_eq!(wide.code, 0, "{}", wide.stdout);

    // The headers and body saved apart.
    let (head, body) = (dir.path().join("headers.txt"), dir.path().join("body.json"));
    let head_text: String = got[0]
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    std::fs::write(&head, head_text).unwrap();
    std::fs::write(&body, &got[0].body).unwrap();
    let parts = run(
        client("http://127.0.0.1:9", None),
        &[
            "verify",
            "--secret",
            &secret,
            "--headers",
            head.to_str().unwrap(),
            "--body",
            body.to_str().unwrap(),
        ],
    );
    assert_eq!(parts.code, 0, "{}{}", parts.stdout, parts.stderr);
    // The secret from a file (with an editor's final newline), out of argv.
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let from_file = verify(&saved, &format!("@{}", secret_file.display()));
    assert_eq!(
        from_file.code, 0,
        "{}{}",
        from_file.stdout, from_file.stderr
    );

    let rotated = cli(&h, &["subscriptions", "rotate-secret", &sub, "--json"])
        .ok()
        .json();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    cli(&h, &["subscriptions", "delete", &sub]).ok();
    assert_eq!(cli(&h, &["subscriptions", "get", &sub]).code, 4);
}

#[tokio::test]
async fn cli_exit_codes_and_errors() {
    let h = Hookrun::start();
    let missing = cli(&h, &["agents", "get", "agt_01m82neerarxp7t5pt9bhz9y32"]);
    assert_eq!(missing.code, 4);
    assert!(
        missing.stderr.contains("404 not_found"),
        "{}",
        missing.stderr
    );

    let bad_key = run(client(&h.base, Some("wrong-key")), &["agents", "list"]);
    assert_eq!(bad_key.code, 1);
    assert!(
        bad_key.stderr.contains("unauthorized"),
        "{}",
        bad_key.stderr
    );
    assert!(
        !bad_key.stderr.contains("wrong-key"),
        "the key is never printed"
    );

    let invalid = cli(&h, &["agents", "create", "--name", " "]);
    assert_eq!(invalid.code, 1);
    assert!(
        invalid.stderr.contains("400 invalid_request"),
        "{}",
        invalid.stderr
    );
    let unknown_field = cli(
        &h,
        &["agents", "create", "--body", r#"{"name":"x","nope":1}"#],
    );
    assert_eq!(unknown_field.code, 1);
    assert!(
        unknown_field.stderr.contains("nope"),
        "{}",
        unknown_field.stderr
    );

    // Usage errors, caught before anything is sent.
    let malformed = cli(&h, &["agents", "create", "--body", "{not json"]);
    assert_eq!(malformed.code, 2);
    assert!(malformed.stderr.contains("--body"), "{}", malformed.stderr);
    let no_key = run(client(&h.base, None), &["agents", "list"]);
    assert_eq!(no_key.code, 2);
    assert!(
        no_key.stderr.contains("HOOKRUN_API_KEY"),
        "{}",
        no_key.stderr
    );
    assert_eq!(cli(&h, &["agents", "frobnicate"]).code, 2);
    assert_eq!(cli(&h, &["agents", "list", "--limit", "0"]).code, 2);

    // Nothing listening: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = run(
        client(&format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY)),
        &["agents", "list"],
    );
    assert_eq!(down.code, 3);
    assert!(down.stderr.contains("cannot reach"), "{}", down.stderr);
    // --server overrides HOOKRUN_URL.
    let flag = run(
        client(&format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY)),
        &["--server", &h.base, "agents", "list", "--json"],
    );
    assert_eq!(flag.ok().json()["data"], json!([]));

    // The codes are documented where scripts' authors look.
    let help = run(client(&h.base, None), &["--help"]).ok().stdout;
    assert!(
        help.contains("Exit codes:") && help.contains("4  not found"),
        "{help}"
    );
}

#[tokio::test]
async fn cli_logs_follow_a_run_to_its_end() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (slow, slow_secret) = h
        .create_agent(json!({"name": "slow", "runner": {"type": "http", "url": fake.url("/slow")}}))
        .await;
    let run_id = h
        .trigger(&slow, &slow_secret, json!({"event": "e", "source": "s"}))
        .await;
    // Started while the run is queued or running; ends on its own.
    let followed = cli(
        &h,
        &["logs", "--agent", &slow, "--run", &run_id, "--follow"],
    )
    .ok();
    let lines: Vec<&str> = followed.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("run started")),
        "{lines:?}"
    );
    assert!(
        lines.last().is_some_and(|l| l.contains("run succeeded")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.contains(&run_id)), "{lines:?}");
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "no line twice: {lines:?}");

    let (failing, failing_secret) = h
        .create_agent(json!({"name": "fail", "runner": {"type": "http", "url": fake.url("/fail")}}))
        .await;
    let failed_run = h
        .trigger(
            &failing,
            &failing_secret,
            json!({"event": "e", "source": "s"}),
        )
        .await;
    let failed = cli(
        &h,
        &[
            "logs",
            "--agent",
            &failing,
            "--run",
            &failed_run,
            "--follow",
        ],
    );
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(failed.stdout.contains("run failed"), "{}", failed.stdout);
    assert!(
        failed.stderr.contains(&format!("run {failed_run} failed")),
        "{}",
        failed.stderr
    );

    // Without --follow: the lines once, as the API gives them with --json.
    let page = cli(&h, &["logs", "--agent", &slow, "--run", &run_id, "--json"])
        .ok()
        .json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(lines.len()));
    let all = cli(&h, &["logs", "--agent", &slow]).ok().stdout;
    assert!(
        all.lines()
            .last()
            .is_some_and(|l| l.contains("run succeeded")),
        "oldest first: {all}"
    );

    // An agent's lines followed: what is there, then a new run's as it comes.
    let mut child = client(&h.base, Some(ADMIN_KEY))
        .args(["logs", "--agent", &slow, "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let wait_for = |run: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line of {run} in time"));
        if line["run_id"] == run
            && line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("run succeeded"))
        {
            break;
        }
    };
    wait_for(&run_id);
    let second = h
        .trigger(&slow, &slow_secret, json!({"event": "e", "source": "s"}))
        .await;
    wait_for(&second);
    assert!(
        child.try_wait().unwrap().is_none(),
        "an agent's logs are followed until interrupted"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn cli_completions_for_each_shell() {
    let bash = run(client("http://127.0.0.1:9", None), &["completions", "bash"])
        .ok()
        .stdout;
    assert!(
        bash.contains("_hookrun()") && bash.contains("complete -F"),
        "{bash}"
    );
    assert!(bash.contains("rotate-secret") && bash.contains("--api-key"));
    let zsh = run(client("http://127.0.0.1:9", None), &["completions", "zsh"])
        .ok()
        .stdout;
    assert!(zsh.starts_with("#compdef hookrun"), "{zsh}");
    for shell in ["fish", "powershell", "elvish"] {
        let out = run(client("http://127.0.0.1:9", None), &["completions", shell]).ok();
        assert!(out.stdout.contains("subscriptions"), "{shell}");
    }
    assert_eq!(
        run(client("http://127.0.0.1:9", None), &["completions", "tcsh"]).code,
        2
    );
}

/// The admin key goes to the service only: a subscription's `--url` is
/// the subscription's; the old top-level `--url` is refused where the
/// command has a `--url` of its own; an answer that is not hookrun's (a
/// 2xx that is not JSON, a redirect, a 404 page) says so and exits 3; no
/// redirect is followed.
#[tokio::test]
async fn cli_sends_the_admin_key_to_the_service_only() {
    let rx = Receiver::start();
    let h = Hookrun::start_with(LOOPBACK_DELIVERIES);
    let created = cli(
        &h,
        &[
            "subscriptions",
            "create",
            "--name",
            "x",
            "--url",
            &rx.url(),
            "--event",
            "run.failed",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(created["url"], rx.url());
    let sub = id_of(&created);
    let elsewhere = format!("{}/other", rx.url());
    let updated = cli(
        &h,
        &[
            "subscriptions",
            "update",
            &sub,
            "--endpoint",
            &elsewhere,
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(updated["url"], elsewhere, "--endpoint still names it");
    // The old spelling of the service's address, where the command has a
    // --url of its own: refused before anything is sent.
    for args in [
        vec![
            "--url",
            &h.base,
            "subscriptions",
            "create",
            "--name",
            "y",
            "--url",
            &elsewhere,
        ],
        vec![
            "--url",
            &h.base,
            "subscriptions",
            "update",
            &sub,
            "--name",
            "y",
        ],
    ] {
        let refused = run(client("http://127.0.0.1:9", Some(ADMIN_KEY)), &args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(refused.stderr.contains("--server"), "{}", refused.stderr);
    }
    assert_eq!(
        cli(&h, &["subscriptions", "get", &sub, "--json"])
            .ok()
            .json()["name"],
        "x"
    );
    assert!(
        rx.got().is_empty(),
        "the client sent nothing to the subscriber"
    );
    // Elsewhere it still works, with a warning.
    let old = run(
        client("http://127.0.0.1:9", Some(ADMIN_KEY)),
        &["--url", &h.base, "agents", "list", "--json"],
    )
    .ok();
    assert!(old.stderr.contains("deprecated"), "{}", old.stderr);
    assert!(old.json()["data"].is_array());

    // A --server that is not hookrun: each answer says so, exit 3.
    rx.answer(&[200, 302, 404]);
    for (what, said) in [
        ("200", "without the hookrun-api-version header"),
        ("302", "redirect (not followed)"),
        ("404", "error body"),
    ] {
        let wrong = run(client(&rx.url(), Some(ADMIN_KEY)), &["agents", "list"]);
        assert_eq!(wrong.code, 3, "{what}: {}", wrong.stderr);
        assert!(
            wrong.stderr.contains("not hookrun's") && wrong.stderr.contains(said),
            "{what}: {}",
            wrong.stderr
        );
        assert!(!wrong.stderr.contains(ADMIN_KEY), "{}", wrong.stderr);
    }
    // The redirect went nowhere: three requests, all to the receiver.
    assert_eq!(rx.got().len(), 3);
}

#[tokio::test]
async fn cli_keys_create_list_revoke() {
    let h = Hookrun::start();
    let created = cli(
        &h,
        &[
            "keys", "create", "--name", "ci", "--role", "viewer", "--json",
        ],
    )
    .ok()
    .json();
    let id = id_of(&created);
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "viewer");
    // The table shows the key once, below it, and the listing never.
    let shown = cli(&h, &["keys", "create", "--name", "other"]).ok().stdout;
    assert_eq!(
        shown.matches("hka_").count(),
        2,
        "prefix row and the key below: {shown}"
    );
    assert!(shown.contains("key (shown once, keep it): hka_"), "{shown}");
    let table = cli(&h, &["keys", "list"]).ok().stdout;
    assert!(table.contains(&id) && table.contains("viewer"), "{table}");
    assert!(!table.contains(&key), "{table}");
    // The viewer key reads, and is refused a change (exit 1).
    let as_viewer = run(client(&h.base, Some(&key)), &["agents", "list", "--json"]).ok();
    assert!(as_viewer.json()["data"].is_array());
    let refused = run(
        client(&h.base, Some(&key)),
        &["agents", "create", "--name", "x"],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("403 forbidden"),
        "{}",
        refused.stderr
    );
    let revoked = cli(&h, &["keys", "revoke", &id]).ok();
    assert!(revoked.stderr.contains("revoked") || revoked.stdout.contains("revoked"));
    assert_eq!(cli(&h, &["keys", "get", &id]).code, 4);
    assert_eq!(
        cli(&h, &["keys", "create", "--name", "x", "--role", "root"]).code,
        2
    );
}

#[test]
fn workspace_create_on_an_unreachable_store_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_hookrun"))
        .args(["workspace", "create", "--backend", "aws"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("HOOKRUN_TABLE_NAME", "unreachable")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("store unavailable"), "{stderr}");
}

/// Tables fit `$COLUMNS` (cells wrap); piped without it, rows stay whole.
/// A test call shows in the invocations, marked as a test.
#[tokio::test]
async fn cli_tables_fit_the_width_and_test_calls_are_marked() {
    let h = Hookrun::start();
    let long = format!("http://127.0.0.1:9/{}", "agent/".repeat(15));
    let agent = id_of(
        &cli(
            &h,
            &[
                "agents",
                "create",
                "--name",
                "a-rather-long-agent-name",
                "--runner-url",
                &long,
                "--json",
            ],
        )
        .ok()
        .json(),
    );
    let mut narrow = client(&h.base, Some(ADMIN_KEY));
    narrow.env("COLUMNS", "60");
    let table = run(narrow, &["agents", "list"]).ok().stdout;
    assert!(table.contains(&agent), "the id whole: {table}");
    assert!(table.contains('…'), "shortened, not wrapped: {table}");
    assert_eq!(table.lines().count(), 5, "one line per record: {table}");
    for line in table.lines() {
        assert!(
            line.chars().count() <= 60,
            "wider than 60: {line:?}\n{table}"
        );
    }
    let whole = cli(&h, &["agents", "list"]).ok().stdout;
    assert!(whole.lines().any(|l| l.chars().count() > 60), "{whole}");
    assert!(
        whole.contains(&long),
        "the whole value when not fitted: {whole}"
    );

    let trigger = id_of(
        &cli(
            &h,
            &[
                "triggers", "create", "--agent", &agent, "--name", "t", "--json",
            ],
        )
        .ok()
        .json(),
    );
    cli(&h, &["triggers", "test", &trigger]).ok();
    let listed = cli(&h, &["triggers", "invocations", &trigger, "--json"])
        .ok()
        .json();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    assert_eq!(data[0]["test"], true, "{listed}");
    assert_eq!(data[0]["result"], "accepted");
    assert!(data[0]["run_id"].is_string());
    let table = cli(&h, &["triggers", "invocations", &trigger]).ok().stdout;
    assert!(table.contains("accepted (test)"), "{table}");
}

/// `--api-key` reads as needed only when the environment has no key.
#[test]
fn api_key_help_says_whether_the_environment_has_one() {
    let with = run(
        client("http://127.0.0.1:9", Some(ADMIN_KEY)),
        &["agents", "list", "--help"],
    )
    .ok();
    assert!(
        with.stdout.contains("HOOKRUN_API_KEY is set"),
        "{}",
        with.stdout
    );
    let without = run(
        client("http://127.0.0.1:9", None),
        &["agents", "list", "--help"],
    )
    .ok();
    assert!(
        without
            .stdout
            .contains("client commands need it here or in HOOKRUN_API_KEY"),
        "{}",
        without.stdout
    );
    assert!(!without.stdout.contains("is set"), "{}", without.stdout);
}
