//! Starting hookrun and a fake agent, and a few client helpers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789-abcdefghij";
pub const INTERNAL_TOKEN: &str = "e2e-internal-token-abcdef";

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Arguments that choose the store: the embedded one in `data_dir`, or,
/// when `HOOKRUN_E2E_BACKEND=aws` (set by infra/test.sh for the second run
/// of this suite), the AWS adapters on the local emulator with resources of
/// their own, named after the data directory.
pub fn backend_args(data_dir: &Path) -> Vec<String> {
    match std::env::var("HOOKRUN_E2E_BACKEND").as_deref() {
        Ok("aws") => {
            let name = data_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase();
            let prefix: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            vec![
                "--backend".into(),
                "aws".into(),
                "--provision".into(),
                format!("e2e-{prefix}"),
            ]
        }
        Ok("sqlite") | Err(_) => vec![
            "--backend".into(),
            "sqlite".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ],
        Ok(other) => panic!("unknown HOOKRUN_E2E_BACKEND {other:?}"),
    }
}

/// Whether this run of the suite is on the AWS backend.
pub fn on_aws() -> bool {
    std::env::var("HOOKRUN_E2E_BACKEND").as_deref() == Ok("aws")
}

/// `hookrun ARGS` on the store of `data_dir`.
pub fn hookrun_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrun"));
    cmd.args(args).args(backend_args(data_dir));
    cmd
}

/// A running `hookrun serve`.
pub struct Hookrun {
    child: Option<Child>,
    pub base: String,
    pub workspace: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Hookrun {
    pub fn start() -> Hookrun {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Hookrun {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut h = Self::spawn(&dir, &env);
        h._tmp = Some(tmp);
        h
    }

    fn spawn(data_dir: &Path, env: &[(String, String)]) -> Hookrun {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("hookrun.log"))
            .unwrap();
        // A test that restarts the server in place gives it a fixed
        // address (HOOKRUN_ADDR); otherwise any free port.
        let addr = env
            .iter()
            .find(|(k, _)| k == "HOOKRUN_ADDR")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "127.0.0.1:0".to_owned());
        let mut cmd = hookrun_command(data_dir, &["serve", "--addr", &addr]);
        cmd.env("HOOKRUN_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .env("HOOKRUN_INTERNAL_TOKEN", INTERNAL_TOKEN)
            .env_remove("HOOKRUN_PUBLIC_URL")
            // The fake agents and receivers listen on loopback; tests that
            // check the SSRF guard turn these off again.
            .env("HOOKRUN_OUTBOUND_ALLOW_HTTP", "true")
            .env("HOOKRUN_OUTBOUND_ALLOW_CIDRS", "127.0.0.1/32")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("hookrun starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut workspace = None;
            let mut banner = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("hookrun ") {
                    banner = line.clone();
                }
                if let Some(ws) = line.strip_prefix("workspace: ") {
                    workspace = Some(ws.to_owned());
                }
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send((
                        url.to_owned(),
                        workspace.clone().unwrap_or_default(),
                        banner.clone(),
                    ));
                }
            }
        });
        let (base, workspace, banner) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("hookrun did not start; log: {}", read_log(data_dir)));
        // The suite runs on the backend it was asked to run on.
        let want = if backend_args(data_dir).contains(&"aws".to_string()) {
            "aws backend"
        } else {
            "sqlite store"
        };
        assert!(banner.contains(want), "expected the {want}, got {banner:?}");
        Hookrun {
            child: Some(child),
            base,
            workspace,
            data_dir: data_dir.to_path_buf(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            env: env.to_vec(),
            _tmp: None,
        }
    }

    /// Stops with SIGTERM (a graceful stop) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "hookrun exited with {status}; log: {}",
                        read_log(&self.data_dir)
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("hookrun did not stop within 30 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts again on the same data directory (and a new port).
    pub fn restart(&mut self) {
        self.stop();
        self.respawn();
    }

    /// Starts again on the same data directory with `env` added.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.stop();
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.respawn();
    }

    /// Kills the process at once (SIGKILL: no drain, nothing flushed that
    /// was not already durable) and waits for it to be gone (the crash test).
    ///
    /// On SQS a receive in flight outlives its killed caller: it still
    /// takes the next message, which then stays hidden for its whole
    /// visibility timeout (45 s for a run, 70 s or more for a delivery)
    /// before another worker gets it. That is SQS's rule, and nothing is
    /// lost by it, but a test of what a restart keeps would wait on it at
    /// random; so on the AWS backend this returns once such a receive has
    /// ended.
    #[allow(dead_code)]
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if on_aws() {
                std::thread::sleep(hookrun_core::worker::LONG_POLL + Duration::from_secs(1));
            }
        }
    }

    /// Starts a stopped or killed instance again on its data directory.
    pub fn respawn(&mut self) {
        let tmp = self._tmp.take();
        let mut fresh = Self::spawn(&self.data_dir, &self.env);
        fresh._tmp = tmp;
        *self = fresh;
    }

    /// `hookrun ARGS` on this instance's store.
    pub fn command(&self, args: &[&str]) -> Command {
        hookrun_command(&self.data_dir, args)
    }

    /// Creates another workspace; returns its id and admin key.
    pub fn create_workspace(&self, name: &str) -> (String, String) {
        let out = self
            .command(&["workspace", "create", "--name", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let ws = stdout
            .lines()
            .find_map(|l| l.strip_prefix("workspace: "))
            .unwrap()
            .to_owned();
        let key = stdout
            .lines()
            .find_map(|l| l.split("keep it): ").nth(1))
            .unwrap()
            .to_owned();
        (ws, key)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> String {
        read_log(&self.data_dir)
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(ADMIN_KEY, method, path, body).await
    }

    /// `method path` with the admin key `key`: the status and the JSON
    /// answer (a string when it is not JSON).
    pub async fn call_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// Creates an agent; returns its id and webhook secret.
    pub async fn create_agent(&self, body: Value) -> (String, String) {
        let (status, agent) = self
            .admin(reqwest::Method::POST, "/api/v1/agents", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        (
            agent["id"].as_str().unwrap().to_owned(),
            agent["webhook_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub fn trigger_path(&self, agent: &str) -> String {
        format!("/api/v1/webhooks/{}/{agent}/trigger", self.workspace)
    }

    /// Posts raw bytes to the agent's trigger URL with these headers.
    pub async fn trigger_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Triggers with a valid X-Signature; returns the run id.
    pub async fn trigger(&self, agent: &str, secret: &str, payload: Value) -> String {
        let body = serde_json::to_vec(&payload).unwrap();
        let sig = sign(secret, &body);
        let resp = self
            .trigger_raw(&self.trigger_path(agent), body, &[("x-signature", &sig)])
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "accepted");
        v["run_id"].as_str().unwrap().to_owned()
    }

    /// Waits until the run is finished (succeeded or failed).
    pub async fn wait_finished(&self, run_id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, run) = self.get(&format!("/api/v1/runs/{run_id}")).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            if matches!(
                run["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} not finished in time: {run}; log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Hookrun {
    fn drop(&mut self) {
        // A failed test shows what the server logged last.
        if std::thread::panicking() {
            let log = read_log(&self.data_dir);
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "hookrun's log (last lines):\n{}",
                lines[lines.len().saturating_sub(150)..].join("\n")
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("hookrun.log")).unwrap_or_default()
}

/// A fake http agent: `/ok` answers with the message it got, `/fail` with
/// 500, `/hang` never in time, `/slow` after 300 ms, `/work` after 100 ms
/// (recording the call on arrival). It records every run id
/// it was called with, per path.
#[derive(Clone, Default)]
pub struct FakeAgent {
    pub addr: Option<SocketAddr>,
    pub calls: Arc<Mutex<HashMap<String, Vec<Value>>>>,
}

impl FakeAgent {
    /// Serves on its own thread and runtime, so a test that blocks its own
    /// runtime (waiting for hookrun to stop) does not stall the agent.
    pub async fn start() -> FakeAgent {
        let mut agent = FakeAgent::default();
        let state = agent.calls.clone();
        let app = Router::new()
            .route("/ok", post(ok))
            .route("/fail", post(fail))
            .route("/hang", post(hang))
            .route("/slow", post(slow))
            .route("/big", post(big))
            .route("/mirror", post(mirror))
            .route("/work", post(work))
            .route("/stream", post(stream))
            .route("/v1/chat/completions", post(chat))
            .with_state(state);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        agent.addr = Some(listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap()
            })
        });
        agent
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }

    pub fn calls(&self, path: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

type Calls = State<Arc<Mutex<HashMap<String, Vec<Value>>>>>;

fn record(calls: &Calls, path: &str, body: &Value) {
    calls
        .0
        .lock()
        .unwrap()
        .entry(path.into())
        .or_default()
        .push(body.clone());
}

async fn ok(calls: Calls, Json(body): Json<Value>) -> Json<Value> {
    record(&calls, "/ok", &body);
    Json(json!({ "result": format!("done: {}", body["message"].as_str().unwrap_or("")) }))
}

async fn fail(calls: Calls, Json(body): Json<Value>) -> (StatusCode, &'static str) {
    record(&calls, "/fail", &body);
    (StatusCode::INTERNAL_SERVER_ERROR, "agent exploded")
}

async fn hang(calls: Calls, Json(body): Json<Value>) -> &'static str {
    record(&calls, "/hang", &body);
    tokio::time::sleep(Duration::from_secs(120)).await;
    "too late"
}

/// Answers with the whole run request it got (so a big payload makes a
/// big output).
async fn mirror(calls: Calls, Json(body): Json<Value>) -> Json<Value> {
    record(&calls, "/mirror", &body);
    Json(json!({ "mirror": body }))
}

async fn big(calls: Calls, Json(body): Json<Value>) -> Json<Value> {
    record(&calls, "/big", &body);
    Json(json!({ "blob": "x".repeat(400_000) }))
}

/// Records the call as it arrives (so a call cut off by a crash counts),
/// then takes 100 ms.
async fn work(calls: Calls, Json(body): Json<Value>) -> Json<Value> {
    record(&calls, "/work", &body);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Json(json!({ "worked": true }))
}

#[derive(serde::Deserialize)]
pub struct StreamParams {
    /// Lines before the last one.
    n: usize,
    /// Milliseconds between lines.
    #[serde(default)]
    delay_ms: u64,
    /// `sse` or `ndjson`.
    format: String,
    /// Bytes of padding after each line's text.
    #[serde(default)]
    pad: usize,
}

/// A streaming agent: `n` lines `line {i}` (`sse`: events, `ndjson`: JSON
/// lines with a level), `delay_ms` apart, then a last one that is the
/// output, `{"done":true,"lines":n}`.
async fn stream(
    calls: Calls,
    axum::extract::Query(p): axum::extract::Query<StreamParams>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    record(&calls, "/stream", &body);
    let sse = p.format == "sse";
    let chunks = futures_util::stream::unfold(0usize, move |i| async move {
        if i > p.n {
            return None;
        }
        if i > 0 && p.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(p.delay_ms)).await;
        }
        let text = if i == p.n {
            let done = json!({"done": true, "lines": p.n}).to_string();
            if sse {
                format!("event: result\ndata: {done}\n\n")
            } else {
                format!("{done}\n")
            }
        } else if sse {
            format!(": keep-alive\ndata: line {i}{}\n\n", ".".repeat(p.pad))
        } else {
            format!(
                "{}\n",
                json!({"level": if i % 10 == 9 { "warn" } else { "info" }, "message": format!("line {i}{}", ".".repeat(p.pad))})
            )
        };
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(text)),
            i + 1,
        ))
    });
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    axum::response::Response::builder()
        .header("content-type", content_type)
        .body(axum::body::Body::from_stream(chunks))
        .unwrap()
}

/// An OpenAI-compatible chat completions endpoint: the answer
/// `Looks good.` / `Ship it.` streamed in chunks 50 ms apart, then a
/// usage-only chunk (12 in, 5 out) and `[DONE]`. Records each request
/// with its `Authorization` header under `auth`.
async fn chat(
    calls: Calls,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<Value>,
) -> axum::response::Response {
    body["auth"] = json!(headers.get("authorization").and_then(|v| v.to_str().ok()));
    record(&calls, "/v1/chat/completions", &body);
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let chunks: Vec<Value> = ["Looks ", "good.\nShip", " it."]
        .iter()
        .map(|t| json!({"model": model, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}))
        .chain([
            json!({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"model": model, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}),
        ])
        .collect();
    let events = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| format!("data: {c}\n\n"))
            .chain(["data: [DONE]\n\n".to_owned()]),
    )
    .then(|text| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(text))
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(events))
        .unwrap()
}

async fn slow(calls: Calls, Json(body): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    record(&calls, "/slow", &body);
    Json(json!({ "slow": true }))
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A subscriber endpoint: records every request and answers with the next
/// scripted status (200 once the script is used up).
#[derive(Clone, Default)]
pub struct Receiver {
    pub addr: Option<SocketAddr>,
    pub got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<std::collections::VecDeque<u16>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let mut r = Receiver::default();
        let (got, script) = (r.got.clone(), r.script.clone());
        let app = Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
            let (got, script) = (got.clone(), script.clone());
            async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                got.lock().unwrap().push(Received { headers, body });
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                let mut resp = axum::response::Response::new(axum::body::Body::from(format!(
                    "answer {status}"
                )));
                *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                if (300..400).contains(&status) {
                    resp.headers_mut()
                        .insert("location", "http://127.0.0.1:9/elsewhere".parse().unwrap());
                }
                resp
            }
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        r.addr = Some(listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap()
            })
        });
        r
    }

    /// The next answers, in order.
    pub fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses.iter().copied());
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr.unwrap())
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Settings that let hookrun deliver to a receiver on loopback quickly.
pub const LOOPBACK_DELIVERIES: &[(&str, &str)] = &[
    ("HOOKRUN_OUTBOUND_ALLOW_HTTP", "true"),
    ("HOOKRUN_OUTBOUND_ALLOW_CIDRS", "127.0.0.1/32"),
    ("HOOKRUN_DELIVERY_RETRY_SCHEDULE", "1,1,1,1,1,1,1"),
];
