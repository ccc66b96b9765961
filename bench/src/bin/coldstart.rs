//! Cold starts of Lambda bootstraps, measured side by side against a fake
//! Runtime API (`infra/bench-coldstart.sh`).
//!
//! Each run spawns one bootstrap with the environment Lambda gives it, the
//! Runtime API pointing here, and times two moments from the spawn:
//! - init: its first `GET …/invocation/next` (what Lambda bills as Init);
//! - first answer: its `POST …/invocation/{id}/response` to the first event,
//!   an API Gateway HTTP API request for `GET /healthz`, which needs no AWS
//!   call (the api function answers it 200; the ingress function has no
//!   such route and answers its JSON 404), so the figure is the bootstrap's
//!   own work, not the network's.
//!
//! A binary named `executor…` is given an empty SQS batch instead (the
//! executor consumes the runs queue) and answers with no failures.
//!
//! The binaries take turns run by run so that noise on the machine falls on
//! all of them alike. The first binary is the baseline: the others' medians
//! are printed as multiples of it.
//!
//! Usage: coldstart RUNS NAME=PATH [NAME=PATH…]   (prints a table, then JSON)

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

/// What the fake Runtime API saw, with when it saw it.
enum Seen {
    Next(Instant),
    Response(Instant, Bytes),
    Error(String),
}

#[derive(Default)]
struct Api {
    /// Where the current run's sightings go.
    tx: Mutex<Option<mpsc::UnboundedSender<Seen>>>,
    /// Whether the current run's one event was handed out: a second `next`
    /// waits forever (the bootstrap is stopped before it matters).
    served: AtomicBool,
    /// The current run's event.
    event: Mutex<&'static str>,
}

impl Api {
    fn see(&self, seen: Seen) {
        if let Some(tx) = self.tx.lock().unwrap().as_ref() {
            let _ = tx.send(seen);
        }
    }
}

const EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/healthz","rawQueryString":"",
"headers":{"host":"example.execute-api.us-east-1.amazonaws.com","user-agent":"coldstart"},
"requestContext":{"accountId":"123456789012","apiId":"example","domainName":"example.execute-api.us-east-1.amazonaws.com",
"domainPrefix":"example","http":{"method":"GET","path":"/healthz","protocol":"HTTP/1.1","sourceIp":"192.0.2.1",
"userAgent":"coldstart"},"requestId":"coldstart-request","routeKey":"$default","stage":"$default",
"time":"23/Nov/2026:10:00:00 +0000","timeEpoch":1795428000000},"isBase64Encoded":false}"#;

/// The executor's first event: a batch with nothing in it (no AWS call).
const SQS_EVENT: &str = r#"{"Records":[]}"#;

async fn next(State(api): State<Arc<Api>>) -> (HeaderMap, &'static str) {
    let event = *api.event.lock().unwrap();
    if api.served.swap(true, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    api.see(Seen::Next(Instant::now()));
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 30_000;
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "coldstart-request".to_string(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:coldstart".to_string(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_string(),
        ),
        ("content-type", "application/json".to_string()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("ASCII header"));
    }
    (headers, event)
}

async fn response(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    api.see(Seen::Response(Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    api.see(Seen::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

/// One cold start: (init, first answer).
async fn cold_start(
    api: &Arc<Api>,
    addr: &str,
    name: &str,
    path: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let sqs = name.starts_with("executor");
    let (tx, mut rx) = mpsc::unbounded_channel();
    *api.tx.lock().unwrap() = Some(tx);
    *api.event.lock().unwrap() = if sqs { SQS_EVENT } else { EVENT };
    api.served.store(false, Ordering::SeqCst);
    let mut command = Command::new(path);
    command
        .env_clear()
        .envs(lambda_environment(addr))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {path}"))?;
    let outcome = async {
        let mut init = None;
        loop {
            match rx.recv().await.context("the fake Runtime API stopped")? {
                Seen::Next(at) => init = Some(at - started),
                Seen::Response(at, body) => {
                    let init = init.context("an answer before any `next`")?;
                    let body: serde_json::Value = serde_json::from_slice(&body)?;
                    // An HTTP answer of the router (the ingress function
                    // has no `/healthz` and answers its JSON 404), not a
                    // runtime error.
                    let answered = if sqs {
                        body["batchItemFailures"] == serde_json::json!([])
                    } else {
                        matches!(body["statusCode"].as_u64(), Some(200 | 404))
                    };
                    if !answered {
                        bail!("{path} answered {body}");
                    }
                    return Ok((init, at - started));
                }
                Seen::Error(e) => bail!("{path} reported an error: {e}"),
            }
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(10), outcome).await;
    let _ = child.kill();
    let _ = child.wait();
    result.with_context(|| format!("{path} did not answer within 10 s"))?
}

/// What Lambda sets for a `provided.al2023` function, plus the settings the
/// hookrun bootstraps require (none of them is reached for `/healthz`).
fn lambda_environment(runtime_api: &str) -> Vec<(&'static str, String)> {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/hookrun";
    vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "coldstart".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE".into()),
        ("AWS_SECRET_ACCESS_KEY", "example".into()),
        ("AWS_SESSION_TOKEN", "example".into()),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true".into()),
        ("HOOKRUN_TABLE_NAME", "hookrun".into()),
        ("HOOKRUN_RUNS_QUEUE_URL", format!("{queue}-runs")),
        ("HOOKRUN_RUNS_DLQ_URL", format!("{queue}-runs-dlq")),
        (
            "HOOKRUN_DELIVERIES_QUEUE_URL",
            format!("{queue}-deliveries"),
        ),
        (
            "HOOKRUN_DELIVERIES_DLQ_URL",
            format!("{queue}-deliveries-dlq"),
        ),
        ("HOOKRUN_MASTER_KEY_SECRET", "hookrun-master-key".into()),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .context("usage: coldstart RUNS NAME=PATH…")?
        .parse()?;
    let binaries: Vec<(String, String)> = args
        .map(|a| {
            a.split_once('=')
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .with_context(|| format!("{a}: expected NAME=PATH"))
        })
        .collect::<anyhow::Result<_>>()?;
    if binaries.is_empty() || runs == 0 {
        bail!("usage: coldstart RUNS NAME=PATH…");
    }

    let api = Arc::new(Api::default());
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut times: BTreeMap<usize, (Vec<Duration>, Vec<Duration>)> = BTreeMap::new();
    for run in 0..runs {
        for k in 0..binaries.len() {
            // Rotate who goes first, so no binary always follows another.
            let i = (k + run) % binaries.len();
            let (name, path) = &binaries[i];
            let (init, answer) = cold_start(&api, &addr, name, path).await?;
            let entry = times.entry(i).or_default();
            entry.0.push(init);
            entry.1.push(answer);
        }
    }

    let mut report = serde_json::Map::new();
    let mut baseline = None;
    println!(
        "{:<14} {:>12} {:>12} {:>14} {:>14}",
        "bootstrap", "init p50", "init p90", "answer p50", "answer p90"
    );
    for (i, (name, _)) in binaries.iter().enumerate() {
        let (mut init, mut answer) = times.remove(&i).unwrap_or_default();
        init.sort();
        answer.sort();
        let figures = (
            percentile(&init, 0.5),
            percentile(&init, 0.9),
            percentile(&answer, 0.5),
            percentile(&answer, 0.9),
        );
        let (b_init, b_answer) = *baseline.get_or_insert((figures.0, figures.2));
        println!(
            "{name:<14} {:>9.2} ms {:>9.2} ms {:>11.2} ms {:>11.2} ms   init {:.2}x, answer {:.2}x",
            figures.0,
            figures.1,
            figures.2,
            figures.3,
            figures.0 / b_init,
            figures.2 / b_answer
        );
        report.insert(
            name.clone(),
            serde_json::json!({
                "runs": runs,
                "init_p50_ms": figures.0, "init_p90_ms": figures.1,
                "answer_p50_ms": figures.2, "answer_p90_ms": figures.3,
                "init_ratio": figures.0 / b_init, "answer_ratio": figures.2 / b_answer,
            }),
        );
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
