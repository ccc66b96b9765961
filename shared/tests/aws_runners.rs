//! The `bedrock` and `lambda` runners against local fakes that speak the
//! services' wire formats (`application/vnd.amazon.eventstream` frames
//! written by `aws-smithy-eventstream`, the SDK's REST-JSON errors), and
//! the `lambda` runner's happy path against the local emulator's Lambda
//! with its Docker-less backend (ignored unless `--include-ignored`, with
//! `AWS_ENDPOINT_URL` set: `infra/test.sh` runs it).
//!
//! Runs go through the executor, so what is asserted is what a run
//! records: status, output, usage, log lines, error.

mod common;

use common::{lines_at, run_once};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::runner::{BedrockConfig, LambdaConfig};
use hookrun_core::model::{Agent, LogLine, Run, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::runners::{RunRequest, TriggerInfo};
use hookrun_core::services::{admin, agents, ingress, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{work, App, Settings};
use serde_json::{json, Value};

// ---- event-stream frames --------------------------------------------------

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut message = Message::new(Bytes::copy_from_slice(payload));
    for (name, value) in headers {
        message = message.add_header(Header::new(
            name.to_string(),
            HeaderValue::String(value.to_string().into()),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

fn text(t: &str) -> Vec<u8> {
    event(
        "contentBlockDelta",
        &json!({"contentBlockIndex": 0, "delta": {"text": t}, "p": "abcd"}),
    )
}

fn stop(reason: &str) -> Vec<u8> {
    event("messageStop", &json!({ "stopReason": reason }))
}

fn metadata() -> Vec<u8> {
    event(
        "metadata",
        &json!({"usage": {"inputTokens": 21, "outputTokens": 8, "totalTokens": 29},
                "metrics": {"latencyMs": 420}}),
    )
}

/// An event-stream answer sent a part at a time; `None` in `parts` waits
/// for the fake's `release` before going on.
fn streamed(parts: Vec<Option<Vec<u8>>>, release: Arc<tokio::sync::Notify>) -> Response {
    let stream = futures_util::stream::unfold(
        (parts.into_iter(), release),
        |(mut parts, release)| async move {
            loop {
                match parts.next()? {
                    Some(bytes) => {
                        return Some((
                            Ok::<_, std::io::Error>(Bytes::from(bytes)),
                            (parts, release),
                        ))
                    }
                    None => release.notified().await,
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "application/vnd.amazon.eventstream")
        .header("x-amzn-requestid", "req-1")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

// ---- the fake ------------------------------------------------------------

#[derive(Clone, Default)]
struct Fake {
    /// Calls per scenario.
    calls: Arc<Mutex<HashMap<String, usize>>>,
    /// Request bodies, in order.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    release: Arc<tokio::sync::Notify>,
}

impl Fake {
    fn call(&self, scenario: &str, body: &[u8]) -> usize {
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.seen.lock().unwrap().push((scenario.to_owned(), body));
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(scenario.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn calls(&self, scenario: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(scenario)
            .copied()
            .unwrap_or(0)
    }
}

/// Bedrock's ConverseStream; the scenario is the model id.
async fn converse_stream(
    State(fake): State<Fake>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    let n = fake.call(&model, &body);
    let release = fake.release.clone();
    let whole =
        |parts: Vec<Vec<u8>>| streamed(parts.into_iter().map(Some).collect(), release.clone());
    match model.as_str() {
        "text" => whole(vec![
            text("Hello "),
            text("there.\nSecond"),
            text(" line\n\nLast"),
            stop("end_turn"),
            metadata(),
        ]),
        "slow" => streamed(
            vec![
                Some(text("first line\n")),
                None,
                Some(text("second line")),
                Some(stop("end_turn")),
                Some(metadata()),
            ],
            release,
        ),
        "max" => whole(vec![text("cut sho"), stop("max_tokens"), metadata()]),
        "stream-error" => whole(vec![
            text("partial\n"),
            exception(
                "modelStreamErrorException",
                "The model stream was interrupted: try again",
            ),
        ]),
        // The connection ends in the middle of a frame.
        "cut" => {
            let mut partial = text("kept line\n");
            let next = text("never whole");
            partial.extend_from_slice(&next[..next.len() / 2]);
            whole(vec![partial])
        }
        "no-usage" => whole(vec![text("ok"), stop("end_turn")]),
        "throttled-twice" if n <= 2 => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        "throttled-twice" => whole(vec![text("third time"), stop("end_turn"), metadata()]),
        "denied" => aws_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        other => aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no scenario {other}"),
        ),
    }
}

/// Lambda's Invoke; the scenario is the function name.
async fn invoke(State(fake): State<Fake>, Path(function): Path<String>, body: Bytes) -> Response {
    let n = fake.call(&function, &body);
    let ok = |payload: Value| {
        ([("x-amz-executed-version", "$LATEST")], payload.to_string()).into_response()
    };
    let function_error = |kind: &'static str, payload: Value| {
        (
            [
                ("x-amz-function-error", kind),
                ("x-amz-executed-version", "$LATEST"),
            ],
            payload.to_string(),
        )
            .into_response()
    };
    match function.as_str() {
        "answer" => ok(json!({
            "verdict": "approve",
            "usage": {"prompt_tokens": 30, "completion_tokens": 12},
            "model": "in-function-model",
        })),
        "unhandled" => function_error(
            "Unhandled",
            json!({"errorType": "TypeError", "errorMessage": "Cannot read properties of undefined (reading 'title')", "trace": ["at handler (index.mjs:3)"]}),
        ),
        "handled" => function_error(
            "Handled",
            json!({"errorType": "ReviewRefused", "errorMessage": "diff too large"}),
        ),
        "too-large" => function_error(
            "Unhandled",
            json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes)."}),
        ),
        "throttled-once" if n == 1 => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate Exceeded.",
        ),
        "throttled-once" => ok(json!({"after": "retry"})),
        "missing" => aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing",
        ),
        other => aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no scenario {other}"),
        ),
    }
}

fn payload_chunk(bytes: &[u8]) -> Vec<u8> {
    frame(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    )
}

fn invoke_complete(payload: &Value) -> Vec<u8> {
    event("InvokeComplete", payload)
}

/// Lambda's InvokeWithResponseStream; the scenario is the function name.
async fn invoke_streamed(
    State(fake): State<Fake>,
    Path(function): Path<String>,
    body: Bytes,
) -> Response {
    fake.call(&function, &body);
    let release = fake.release.clone();
    match function.as_str() {
        // Records split across chunks; the last one is the output.
        "ndjson" => streamed(
            vec![
                Some(payload_chunk(
                    b"{\"level\":\"info\",\"message\":\"reading the diff\"}\n{\"st",
                )),
                Some(payload_chunk(b"ep\":2}\n{\"verdict\":\"approve\",")),
                Some(payload_chunk(
                    b"\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}\n",
                )),
                Some(invoke_complete(&json!({}))),
            ],
            release,
        ),
        "sse" => streamed(
            vec![
                Some(payload_chunk(
                    b"event: progress\ndata: {\"message\":\"half way\"}\n\n",
                )),
                Some(payload_chunk(b"data: {\"done\":true}\n\n")),
                Some(invoke_complete(&json!({}))),
            ],
            release,
        ),
        "fails-midway" => streamed(
            vec![
                Some(payload_chunk(b"{\"step\":1}\n")),
                Some(invoke_complete(&json!({
                    "ErrorCode": "Unhandled",
                    "ErrorDetails": "RangeError: Maximum call stack size exceeded",
                }))),
            ],
            release,
        ),
        other => aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no scenario {other}"),
        ),
    }
}

// ---- fixture -------------------------------------------------------------

struct Fixture {
    app: App,
    ws: WorkspaceId,
    fake: Fake,
}

/// The SDK configuration of the tests: fixed credentials and region, the
/// service at `endpoint`.
fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"),
        ))
        .http_client(hookrun_core::aws::http_client())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .endpoint_url(endpoint)
        .build()
}

async fn fixture_at(endpoint: Option<String>) -> Fixture {
    let fake = Fake::default();
    let router = axum::Router::new()
        .route(
            "/model/{model}/converse-stream",
            axum::routing::post(converse_stream),
        )
        .route(
            "/2015-03-31/functions/{function}/invocations",
            axum::routing::post(invoke),
        )
        .route(
            "/2021-11-15/functions/{function}/response-streaming-invocations",
            axum::routing::post(invoke_streamed),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let settings = Settings::default();
    let mut app = App::embedded(SqliteStore::in_memory().unwrap(), settings.clone());
    app.runners = hookrun_core::runners::Runners::with_aws_config(
        &settings,
        sdk_config(&endpoint.unwrap_or(url)),
    );
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    Fixture { app, ws, fake }
}

async fn fixture() -> Fixture {
    fixture_at(None).await
}

async fn agent(f: &Fixture, runner: RunnerConfig) -> Agent {
    let req = agents::CreateAgent {
        name: "aws".into(),
        runner,
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create(&f.app, &f.ws, req).await.unwrap().0
}

fn bedrock(model: &str) -> RunnerConfig {
    RunnerConfig::Bedrock(BedrockConfig {
        model_id: model.into(),
        region: None,
        system: Some("You review {{ trigger.type }} calls.".into()),
        prompt: Some("Title: {{ input.title }}".into()),
        max_tokens: Some(256),
        temperature: Some(0.5),
    })
}

fn lambda(function: &str, stream: bool) -> RunnerConfig {
    RunnerConfig::Lambda(LambdaConfig {
        function: function.into(),
        stream,
    })
}

async fn scenario(runner: RunnerConfig) -> (Fixture, Run, Vec<LogLine>) {
    let f = fixture().await;
    let a = agent(&f, runner).await;
    let (run, logs) = run_once(&f.app, &a).await;
    (f, run, logs)
}

// ---- bedrock ---------------------------------------------------------------

#[tokio::test]
async fn bedrock_text_is_logged_line_by_line_with_the_streams_usage() {
    let (f, run, logs) = scenario(bedrock("text")).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let out = run.output.unwrap();
    assert_eq!(out["text"], "Hello there.\nSecond line\n\nLast");
    assert_eq!(out["model"], "text");
    assert_eq!(out["finish_reason"], "end_turn");
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 21, "output_tokens": 8})
    );
    let usage = run.usage.unwrap();
    assert_eq!(usage.model.as_deref(), Some("text"));
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(21), Some(8))
    );
    assert_eq!(
        lines_at(&logs, "info"),
        ["Hello there.", "Second line", "Last"]
    );
    assert!(lines_at(&logs, "warn").is_empty(), "{logs:?}");
    // What was sent: the rendered templates and the inference settings.
    let seen = f.fake.seen.lock().unwrap().clone();
    let (_, req) = &seen[0];
    assert_eq!(
        req["system"],
        json!([{"text": "You review WEBHOOK calls."}])
    );
    assert_eq!(
        req["messages"],
        json!([{"role": "user", "content": [{"text": "Title: Fix the parser"}]}])
    );
    assert_eq!(
        req["inferenceConfig"],
        json!({"maxTokens": 256, "temperature": 0.5})
    );
}

#[tokio::test]
async fn bedrock_text_reaches_the_log_while_the_model_is_still_writing() {
    let f = fixture().await;
    let req = RunRequest {
        run_id: hookrun_core::ids::RunId::generate(),
        agent_id: hookrun_core::ids::AgentId::generate(),
        message: "hi".into(),
        input: json!({"title": "t"}),
        trigger: TriggerInfo {
            kind: TriggerType::Webhook,
            id: None,
        },
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let runners = f.app.runners.clone();
    let config = bedrock("slow");
    let running = tokio::spawn(async move { runners.run(&config, &req, &[], tx).await });
    // The first line arrives while the fake holds back the rest.
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("the first line arrives before the answer ends")
        .unwrap();
    assert_eq!(first.line, "first line");
    assert!(!running.is_finished());
    f.fake.release.notify_one();
    let out = running.await.unwrap().unwrap();
    assert_eq!(out.output["text"], "first line\nsecond line");
    assert_eq!(rx.recv().await.unwrap().line, "second line");
}

#[tokio::test]
async fn bedrock_throttling_is_retried_and_access_denied_is_not() {
    let (f, run, logs) = scenario(bedrock("throttled-twice")).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output.unwrap()["text"], "third time");
    assert_eq!(f.fake.calls("throttled-twice"), 3);
    let warnings = lines_at(&logs, "warn");
    assert!(
        warnings[0].contains("ThrottlingException: Too many requests")
            && warnings[0].contains("attempt 2 of 3"),
        "{warnings:?}"
    );

    let (f, run, _) = scenario(bedrock("denied")).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(f.fake.calls("denied"), 1);
    let error = run.error.unwrap();
    assert_eq!(
        error,
        "model error: AccessDeniedException: You don't have access to the model with the specified model ID."
    );
    assert_eq!(run.exit_code, Some(1));
}

#[tokio::test]
async fn bedrock_errors_in_the_stream_fail_the_run_with_the_services_message() {
    let (_, run, logs) = scenario(bedrock("stream-error")).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(
        error.contains("modelStreamErrorException")
            && error.contains("The model stream was interrupted: try again"),
        "{error}"
    );
    // What came before the error was logged as it came.
    assert_eq!(lines_at(&logs, "info"), ["partial"]);
}

#[tokio::test]
async fn bedrock_cut_streams_max_tokens_and_missing_usage_are_noted() {
    let (_, run, logs) = scenario(bedrock("cut")).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output.as_ref().unwrap()["text"], "kept line\n");
    assert!(run.usage.is_none());
    let warnings = lines_at(&logs, "warn").join("\n");
    assert!(warnings.contains("stream was cut"), "{warnings}");
    assert!(warnings.contains("usage unknown"), "{warnings}");

    let (_, run, logs) = scenario(bedrock("max")).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output.unwrap()["finish_reason"], "max_tokens");
    let warnings = lines_at(&logs, "warn").join("\n");
    assert!(warnings.contains("cut at max_tokens"), "{warnings}");

    let (_, run, logs) = scenario(bedrock("no-usage")).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.usage.is_none());
    assert!(lines_at(&logs, "warn").join("\n").contains("usage unknown"));
}

#[tokio::test]
async fn bedrock_and_lambda_configurations_are_checked_when_saved() {
    let f = fixture().await;
    let bad = |runner: Value| {
        let f = &f;
        async move {
            let runner: RunnerConfig = serde_json::from_value(runner).unwrap();
            let req = agents::CreateAgent {
                name: "bad".into(),
                runner,
                timeout_seconds: None,
                enabled: None,
                max_concurrent_runs: None,
                concurrency: None,
            };
            agents::create(&f.app, &f.ws, req)
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let e = bad(json!({"type": "bedrock", "model_id": " "})).await;
    assert!(e.contains("runner.model_id"), "{e}");
    let e = bad(json!({"type": "bedrock", "model_id": "m", "region": "Mars"})).await;
    assert!(
        e.contains("runner.region") && e.contains("us-east-1"),
        "{e}"
    );
    let e = bad(json!({"type": "bedrock", "model_id": "m", "prompt": "{{ secrets }}"})).await;
    assert!(e.contains("runner.prompt names secrets"), "{e}");
    let e = bad(json!({"type": "bedrock", "model_id": "m", "temperature": 3})).await;
    assert!(e.contains("runner.temperature"), "{e}");
    let e = bad(json!({"type": "lambda", "function": "not a function"})).await;
    assert!(
        e.contains("runner.function") && e.contains("not a Lambda function"),
        "{e}"
    );
    let e = bad(json!({"type": "lambda", "function": "arn:aws:s3:::bucket"})).await;
    assert!(e.contains("runner.function"), "{e}");
    // Unknown fields are refused by the runner's schema.
    let unknown: Result<RunnerConfig, _> =
        serde_json::from_value(json!({"type": "lambda", "function": "f", "qualifier": "x"}));
    assert!(unknown.unwrap_err().to_string().contains("qualifier"));
    // Nothing was stored.
    let listed = agents::list(&f.app, &f.ws, 10, None).await.unwrap();
    assert!(listed.data.is_empty());
}

// ---- lambda ----------------------------------------------------------------

#[tokio::test]
async fn a_functions_json_result_is_the_output_and_its_usage_the_runs() {
    let (f, run, _) = scenario(lambda("answer", false)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let out = run.output.unwrap();
    assert_eq!(out["verdict"], "approve");
    let usage = run.usage.unwrap();
    assert_eq!(usage.model.as_deref(), Some("in-function-model"));
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(30), Some(12))
    );
    // The function got the run as the http runner POSTs it.
    let seen = f.fake.seen.lock().unwrap().clone();
    let (_, req) = &seen[0];
    assert_eq!(req["run_id"], run.id.as_str());
    assert_eq!(req["agent_id"], run.agent_id.as_str());
    assert_eq!(req["input"], json!({"title": "Fix the parser"}));
    assert_eq!(req["trigger"]["type"], "WEBHOOK");
    assert!(req["message"].is_string());
}

#[tokio::test]
async fn function_errors_fail_the_run_with_the_functions_words() {
    let (_, run, _) = scenario(lambda("unhandled", false)).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("function error: Unhandled: TypeError: Cannot read properties of undefined (reading 'title')")
    );
    assert_eq!(run.exit_code, Some(1));

    let (_, run, _) = scenario(lambda("handled", false)).await;
    assert_eq!(
        run.error.as_deref(),
        Some("function error: Handled: ReviewRefused: diff too large")
    );

    let (_, run, _) = scenario(lambda("too-large", false)).await;
    let error = run.error.unwrap();
    assert!(
        error.contains("Function.ResponseSizeTooLarge") && error.contains("6 MB"),
        "{error}"
    );
}

#[tokio::test]
async fn lambda_throttling_is_retried_and_a_missing_function_is_not() {
    let (f, run, logs) = scenario(lambda("throttled-once", false)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output.unwrap(), json!({"after": "retry"}));
    assert_eq!(f.fake.calls("throttled-once"), 2);
    assert!(lines_at(&logs, "warn")[0].contains("TooManyRequestsException"));

    let (f, run, _) = scenario(lambda("missing", false)).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(f.fake.calls("missing"), 1);
    assert!(run
        .error
        .unwrap()
        .contains("ResourceNotFoundException: Function not found"),);
}

#[tokio::test]
async fn a_streamed_invocation_logs_each_record_and_ends_with_the_last() {
    let (_, run, logs) = scenario(lambda("ndjson", true)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        lines_at(&logs, "info"),
        [
            "reading the diff",
            r#"{"step":2}"#,
            r#"{"verdict":"approve","usage":{"input_tokens":5,"output_tokens":6}}"#
        ]
    );
    assert_eq!(run.output.as_ref().unwrap()["verdict"], "approve");
    assert_eq!(run.usage.unwrap().output_tokens, Some(6));

    let (_, run, logs) = scenario(lambda("sse", true)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(lines_at(&logs, "info")[0], r#"{"message":"half way"}"#);
    assert_eq!(run.output.unwrap(), json!({"done": true}));

    let (_, run, logs) = scenario(lambda("fails-midway", true)).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error.as_deref(),
        Some("function error: Unhandled: RangeError: Maximum call stack size exceeded")
    );
    assert_eq!(lines_at(&logs, "info"), [r#"{"step":1}"#]);
}

#[tokio::test]
async fn a_request_over_lambdas_payload_limit_is_refused_naming_it() {
    let f = fixture().await;
    let a = agent(&f, lambda("answer", false)).await;
    let run = ingress::new_run(
        &f.app,
        &a,
        TriggerType::Webhook,
        json!({"blob": "x".repeat(6 * 1024 * 1024 + 1)}),
        None,
    );
    runs::enqueue(&f.app, &run).await.unwrap();
    let body = json!({ "run_id": run.id }).to_string();
    work::process(&f.app, QueueId::Runs, &body, None).await;
    let run = f
        .app
        .repo
        .get::<Run>(&run.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("over Lambda's 6 MB limit"), "{error}");
    assert_eq!(f.fake.calls("answer"), 0);
}

/// The happy path against the local emulator's Lambda (Docker-less: it
/// answers with what it was sent, so the output is the run's request).
#[tokio::test]
#[ignore = "needs the local AWS emulator: AWS_ENDPOINT_URL (infra/test.sh)"]
async fn a_function_on_the_emulators_lambda_runs() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{endpoint}/moto-api/config"))
        .json(&json!({"lambda": {"use_docker": false}}))
        .send()
        .await
        .unwrap();
    assert!(ok.status().is_success(), "{ok:?}");
    // The function's role (IAM's query API; the emulator checks it exists).
    let role = format!(
        "agent-role-{}",
        hookrun_core::ids::RunId::generate().as_str()
    );
    let created = http
        .post(&endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", role.as_str()),
            ("AssumeRolePolicyDocument", r#"{"Version":"2012-10-17","Statement":[]}"#),
        ])
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let sdk = sdk_config(&endpoint);
    let lambda_client = aws_sdk_lambda::Client::new(&sdk);
    let name = format!("review-{}", &role[role.len() - 8..].to_ascii_lowercase());
    // An empty zip archive: the Docker-less backend never runs the code.
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend_from_slice(&[0; 18]);
    let function = lambda_client
        .create_function()
        .function_name(&name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(format!("arn:aws:iam::123456789012:role/{role}"))
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = function.function_arn.unwrap();

    let f = fixture_at(Some(endpoint)).await;
    let a = agent(&f, lambda(&arn, false)).await;
    let (run, _) = run_once(&f.app, &a).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let out = run.output.unwrap();
    assert_eq!(out["run_id"], run.id.as_str());
    assert_eq!(out["input"], json!({"title": "Fix the parser"}));
}
