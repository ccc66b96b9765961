//! The `openai` runner against a local OpenAI-compatible fake replaying
//! what real servers send: text in chunks with a usage-only last chunk,
//! vLLM's null or missing `choices`, a stream cut before its usage,
//! `finish_reason: "length"`, an error object in the stream, a plain JSON
//! answer, 401, 429 then 200, and 5xx every time. Runs go through the
//! executor, so what is asserted is what a run records: status, output,
//! usage, log lines, error.

mod common;

use common::{lines_at, run_once};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::runner::{OpenAiConfig, WriteOnly};
use hookrun_core::model::{Agent, LogLine, Run, RunStatus, RunnerConfig};
use hookrun_core::services::{admin, agents, usage};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{App, Settings};
use serde_json::{json, Value};

const KEY: &str = "sk-test-0123456789wxyz";

/// A request the fake got: its `Authorization` and its body.
type Seen = (Option<String>, Value);

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn sse(chunks: &[Value], done: bool) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

fn delta(text: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-test-2024",
           "system_fingerprint": "fp_x", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null, "logprobs": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"id": "c1", "model": "gpt-test-2024", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn stream_response(body: String) -> Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

/// The scenario is the model's name.
async fn completions(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(req): Json<Value>,
) -> Response {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    fake.seen.lock().unwrap().push((auth, req.clone()));
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17});
    let text = [
        delta("Hello "),
        delta("there.\nSecond"),
        delta(" line\n\nLast"),
    ];
    match req["model"].as_str().unwrap() {
        "text" => {
            let mut chunks = text.to_vec();
            chunks.push(finish("stop"));
            chunks.push(json!({"id": "c1", "model": "gpt-test-2024", "choices": [], "usage": usage}));
            stream_response(sse(&chunks, true))
        }
        "null-choices" => {
            let mut chunks = text.to_vec();
            chunks.push(finish("stop"));
            chunks.push(json!({"id": "c1", "model": "vllm-model", "choices": null, "usage": usage}));
            chunks.push(json!({"id": "c1", "model": "vllm-model", "usage": usage}));
            stream_response(sse(&chunks, true))
        }
        "length" => {
            let mut chunks = text.to_vec();
            chunks.push(finish("length"));
            chunks.push(json!({"choices": [], "usage": usage}));
            stream_response(sse(&chunks, true))
        }
        "cut" => {
            // Two chunks, then the connection breaks mid-body.
            let first = sse(&text[..2], false);
            let parts = futures_util::stream::unfold(Some(first), |first| async move {
                match first {
                    Some(first) => Some((Ok(bytes::Bytes::from(first)), None)),
                    None => {
                        // After the first chunk has gone out.
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Some((Err(std::io::Error::other("gone")), None))
                    }
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(parts))
                .unwrap()
        }
        "error-in-stream" => {
            let chunks = [
                delta("Hel"),
                json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}),
            ];
            stream_response(sse(&chunks, false))
        }
        "json" => Json(json!({
            "id": "c2", "object": "chat.completion", "model": "gpt-json",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole answer."}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response(),
        "unauthorized" => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided: sk-test-****wxyz.", "type": "invalid_request_error", "code": "invalid_api_key"}})),
        )
            .into_response(),
        "busy-once" if n == 0 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            Json(json!({"error": {"message": "Rate limit reached"}})),
        )
            .into_response(),
        "busy-once" => stream_response(sse(&[delta("ok"), finish("stop")], true)),
        "down" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "0")],
            "upstream unavailable",
        )
            .into_response(),
        other => (StatusCode::NOT_FOUND, format!("no scenario {other}")).into_response(),
    }
}

struct Fixture {
    app: App,
    ws: WorkspaceId,
    fake: Fake,
    base_url: String,
}

async fn fixture() -> Fixture {
    let fake = Fake::default();
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut settings = Settings::default();
    settings.outbound.allow_http = true;
    settings.outbound.allow = vec!["127.0.0.0/8".parse().unwrap()];
    let app = App::embedded(SqliteStore::in_memory().unwrap(), settings);
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    Fixture {
        app,
        ws,
        fake,
        base_url,
    }
}

fn config(f: &Fixture, model: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: f.base_url.clone(),
        model: model.into(),
        api_key: Some(WriteOnly::Plain(KEY.into())),
        system: Some("You review {{ trigger.type }} calls.".into()),
        prompt: Some("Title: {{ input.title }}".into()),
        max_tokens: Some(256),
        temperature: Some(0.2),
    }
}

async fn agent(f: &Fixture, cfg: OpenAiConfig) -> Agent {
    let req = agents::CreateAgent {
        name: "model".into(),
        runner: RunnerConfig::Openai(cfg),
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create(&f.app, &f.ws, req).await.unwrap().0
}

async fn scenario(model: &str) -> (Fixture, Run, Vec<LogLine>) {
    let f = fixture().await;
    let a = agent(&f, config(&f, model)).await;
    let (run, logs) = run_once(&f.app, &a).await;
    (f, run, logs)
}

#[tokio::test]
async fn a_streamed_answer_is_logged_line_by_line_with_its_usage() {
    let (f, run, logs) = scenario("text").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let out = run.output.unwrap();
    assert_eq!(out["text"], "Hello there.\nSecond line\n\nLast");
    assert_eq!(out["model"], "gpt-test-2024");
    assert_eq!(out["finish_reason"], "stop");
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 12, "output_tokens": 5})
    );
    let usage = run.usage.unwrap();
    assert_eq!(usage.model.as_deref(), Some("gpt-test-2024"));
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(12), Some(5))
    );
    assert_eq!(
        lines_at(&logs, "info"),
        ["Hello there.", "Second line", "Last"]
    );
    assert!(lines_at(&logs, "warn").is_empty(), "{logs:?}");
    // What was sent: streamed, usage asked for, templates rendered, the key.
    let seen = f.fake.seen.lock().unwrap().clone();
    let (auth, req) = &seen[0];
    assert_eq!(auth.as_deref(), Some(&*format!("Bearer {KEY}")));
    assert_eq!(req["stream"], true);
    assert_eq!(req["stream_options"]["include_usage"], true);
    assert_eq!(req["max_tokens"], 256);
    assert_eq!(req["temperature"], 0.2);
    assert_eq!(
        req["messages"],
        json!([
            {"role": "system", "content": "You review WEBHOOK calls."},
            {"role": "user", "content": "Title: Fix the parser"},
        ])
    );
}

#[tokio::test]
async fn usage_chunks_with_null_or_missing_choices_count() {
    let (_, run, _) = scenario("null-choices").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let usage = run.usage.unwrap();
    assert_eq!(usage.model.as_deref(), Some("vllm-model"));
    assert_eq!(usage.output_tokens, Some(5));
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_succeeds_with_a_warning() {
    let (_, run, logs) = scenario("length").await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output.unwrap()["finish_reason"], "length");
    let warnings = lines_at(&logs, "warn");
    assert!(
        warnings.iter().any(|w| w.contains("max_tokens")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_cut_stream_keeps_its_text_and_marks_usage_unknown() {
    let (_, run, logs) = scenario("cut").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output.as_ref().unwrap()["text"], "Hello there.\nSecond");
    assert_eq!(run.output.as_ref().unwrap()["usage"], Value::Null);
    assert!(run.usage.is_none());
    let warnings = lines_at(&logs, "warn");
    assert!(warnings.iter().any(|w| w.contains("cut")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("usage unknown")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_error_in_the_stream_fails_the_run_with_its_message() {
    let (_, run, _) = scenario("error-in-stream").await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(
        error.contains("model error: The server had an error"),
        "{error}"
    );
}

#[tokio::test]
async fn a_plain_json_answer_is_read_whole() {
    let (_, run, logs) = scenario("json").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output.unwrap()["text"], "Whole answer.");
    assert_eq!(run.usage.unwrap().model.as_deref(), Some("gpt-json"));
    assert_eq!(lines_at(&logs, "info"), ["Whole answer."]);
}

#[tokio::test]
async fn a_bad_key_fails_at_once_with_the_providers_message() {
    let (f, run, _) = scenario("unauthorized").await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(error.contains("Incorrect API key provided"), "{error}");
    assert_eq!(f.fake.calls.load(Ordering::SeqCst), 1, "no retry of a 401");
}

#[tokio::test]
async fn a_429_is_retried_and_5xx_gives_up_after_three_attempts() {
    let (f, run, logs) = scenario("busy-once").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(f.fake.calls.load(Ordering::SeqCst), 2);
    let warnings = lines_at(&logs, "warn");
    assert!(
        warnings.iter().any(|w| w.contains("attempt 2 of 3")),
        "{warnings:?}"
    );
    let (f, run, _) = scenario("down").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("HTTP 503"));
    assert_eq!(f.fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_template_that_fails_at_run_time_fails_the_run() {
    let f = fixture().await;
    let mut cfg = config(&f, "text");
    cfg.prompt = Some("{{ input.pull_request.title }}".into());
    let a = agent(&f, cfg).await;
    let (run, _) = run_once(&f.app, &a).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("template error: runner.prompt"), "{error}");
    assert_eq!(f.fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_key_is_sealed_shown_as_a_hint_and_kept_or_replaced_by_updates() {
    let f = fixture().await;
    let a = agent(&f, config(&f, "text")).await;
    let stored = serde_json::to_string(
        &f.app
            .repo
            .get::<Agent>(&a.id)
            .await
            .unwrap()
            .unwrap()
            .record,
    )
    .unwrap();
    assert!(!stored.contains("0123456789"), "sealed at rest: {stored}");
    let view = serde_json::to_value(a.runner.view()).unwrap();
    assert_eq!(view["has_api_key"], true);
    assert_eq!(view["api_key_hint"], "wxyz");
    assert!(!view.to_string().contains("0123456789"));
    // An update without the key keeps it; the run still authenticates.
    let mut cfg = config(&f, "text");
    cfg.api_key = None;
    let update = agents::UpdateAgent {
        runner: Some(RunnerConfig::Openai(cfg)),
        ..Default::default()
    };
    let a = agents::update(&f.app, &f.ws, &a.id, update).await.unwrap();
    run_once(&f.app, &a).await;
    let auth = f.fake.seen.lock().unwrap().last().unwrap().0.clone();
    assert_eq!(auth.as_deref(), Some(&*format!("Bearer {KEY}")));
    // A new key replaces it.
    let mut cfg = config(&f, "text");
    cfg.api_key = Some(WriteOnly::Plain("sk-rotated-abcdefgh1234".into()));
    let update = agents::UpdateAgent {
        runner: Some(RunnerConfig::Openai(cfg)),
        ..Default::default()
    };
    let a = agents::update(&f.app, &f.ws, &a.id, update).await.unwrap();
    assert_eq!(
        serde_json::to_value(a.runner.view()).unwrap()["api_key_hint"],
        "1234"
    );
    run_once(&f.app, &a).await;
    let auth = f.fake.seen.lock().unwrap().last().unwrap().0.clone();
    assert_eq!(auth.as_deref(), Some("Bearer sk-rotated-abcdefgh1234"));
}

#[tokio::test]
async fn bad_configurations_are_refused_naming_the_field() {
    let f = fixture().await;
    type Change = Box<dyn Fn(&mut OpenAiConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "runner.prompt",
            Box::new(|c| c.prompt = Some("{{ secrets.key }}".into())),
        ),
        (
            "runner.system",
            Box::new(|c| c.system = Some("{% if %}".into())),
        ),
        ("runner.model", Box::new(|c| c.model = " ".into())),
        (
            "runner.temperature",
            Box::new(|c| c.temperature = Some(3.0)),
        ),
        ("runner.max_tokens", Box::new(|c| c.max_tokens = Some(0))),
        (
            "runner.api_key",
            Box::new(|c| c.api_key = Some(WriteOnly::Plain(String::new()))),
        ),
        (
            "runner.base_url",
            Box::new(|c| c.base_url = "http://10.0.0.1/v1".into()),
        ),
        (
            "runner.api_key",
            Box::new(|c| {
                c.api_key = Some(WriteOnly::Sealed {
                    sealed: "v1.x.y".into(),
                    hint: String::new(),
                })
            }),
        ),
    ];
    for (field, change) in cases {
        let mut cfg = config(&f, "text");
        change(&mut cfg);
        let req = agents::CreateAgent {
            name: "bad".into(),
            runner: RunnerConfig::Openai(cfg),
            timeout_seconds: None,
            enabled: None,
            max_concurrent_runs: None,
            concurrency: None,
        };
        let e = agents::create(&f.app, &f.ws, req).await.unwrap_err();
        match &e {
            hookrun_core::error::Error::Invalid { field: got, .. } => assert_eq!(got, field, "{e}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let listed = agents::list(&f.app, &f.ws, 100, None).await.unwrap();
    assert!(listed.data.is_empty(), "nothing half-made");
}

#[tokio::test]
async fn usage_is_summed_per_day_and_model() {
    let f = fixture().await;
    let a = agent(&f, config(&f, "text")).await;
    run_once(&f.app, &a).await;
    run_once(&f.app, &a).await;
    // A run whose stream was cut reports no usage: read, not counted.
    let mut cut = config(&f, "cut");
    cut.model = "cut".into();
    let update = agents::UpdateAgent {
        runner: Some(RunnerConfig::Openai(cut)),
        ..Default::default()
    };
    let a = agents::update(&f.app, &f.ws, &a.id, update).await.unwrap();
    run_once(&f.app, &a).await;
    let now = chrono::Utc::now();
    let since = usage::parse_since(None, now).unwrap();
    assert_eq!(now - since, chrono::Duration::days(usage::DEFAULT_DAYS));
    let report = usage::of_agent(&f.app, &a, since).await.unwrap();
    assert_eq!(report.runs_read, 3);
    assert!(!report.truncated);
    assert_eq!(
        report.days,
        [usage::DayUsage {
            date: now.format("%Y-%m-%d").to_string(),
            model: Some("gpt-test-2024".into()),
            runs: 2,
            input_tokens: 24,
            output_tokens: 10,
        }]
    );
    let later = usage::parse_since(Some("2999-01-01"), now).unwrap();
    let report = usage::of_agent(&f.app, &a, later).await.unwrap();
    assert!(report.days.is_empty() && report.runs_read == 0);
    assert!(usage::parse_since(Some("2026-12-01T00:00:00+01:00"), now).is_ok());
    let e = usage::parse_since(Some("last week"), now).unwrap_err();
    assert!(
        matches!(e, hookrun_core::error::Error::Invalid { ref field, .. } if field == "since"),
        "{e}"
    );
}
