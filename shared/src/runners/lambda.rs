//! The `lambda` runner: the agent is a Lambda function. It is invoked with
//! the JSON body the `http` runner POSTs; its JSON result is the run's
//! output (as an `http` agent's answer: an OpenAI-style `usage` in it is
//! the run's). A function error (`Unhandled`, `Handled`) fails the run
//! with the function's `errorType: errorMessage`.
//!
//! With `stream: true` the function is invoked with response streaming
//! (`InvokeWithResponseStream`): the payload chunks are read as they
//! arrive under the `http` runner's rules (server-sent events when the
//! function's stream says `text/event-stream`, else one line a record),
//! each logged, the last one the output.
//!
//! Lambda's limits are named in errors: 6 MB for a request's payload and
//! for a synchronous result (a streamed result may be longer, up to
//! `HOOKRUN_MAX_OUTPUT_BYTES`). Throttling (429) and Lambda's 5xx are
//! retried ([`super::retry`]).

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;
use aws_sdk_lambda::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use serde_json::Value;

use super::aws::{describe, failed, AwsSdk, PerRegion};
use super::retry::{backoff, with_retries};
use super::stream::{Capped, Format};
use super::{LineSender, RunOutput, RunRequest, RunnerError};
use crate::model::runner::{function_region, LambdaConfig};

/// Lambda's limit of a synchronous invocation's request and of its
/// result: 6 MB.
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

pub struct LambdaRunner {
    clients: PerRegion<Client>,
    max_response_bytes: usize,
}

impl LambdaRunner {
    pub fn new(sdk: AwsSdk, max_response_bytes: usize) -> Self {
        LambdaRunner {
            clients: PerRegion::new(sdk),
            max_response_bytes,
        }
    }

    pub async fn run(
        &self,
        cfg: &LambdaConfig,
        req: &RunRequest,
        lines: LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let payload = serde_json::to_vec(req).expect("a run request serializes");
        if payload.len() > MAX_SYNC_PAYLOAD_BYTES {
            return Err(RunnerError::Function(format!(
                "the run's request is {} bytes, over Lambda's 6 MB limit ({MAX_SYNC_PAYLOAD_BYTES} bytes) for an invocation's payload",
                payload.len()
            )));
        }
        let client = self
            .clients
            .get(function_region(&cfg.function), |sdk, region| {
                super::aws::runner_client!(aws_sdk_lambda, sdk, region, "LAMBDA")
            })
            .await?;
        let payload = Blob::new(payload);
        if cfg.stream {
            self.invoke_streamed(&client, &cfg.function, payload, &lines)
                .await
        } else {
            self.invoke(&client, &cfg.function, payload, &lines).await
        }
    }

    async fn invoke(
        &self,
        client: &Client,
        function: &str,
        payload: Blob,
        lines: &LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let call = client.invoke().function_name(function).payload(payload);
        let out = with_retries("function call", lines, |attempt| {
            let call = call.clone();
            async move { call.send().await.map_err(|e| failed(e, backoff(attempt))) }
        })
        .await?;
        let body = out.payload.map(Blob::into_inner).unwrap_or_default();
        if let Some(kind) = out.function_error {
            return Err(RunnerError::Function(function_error(&kind, &body)));
        }
        if body.len() > self.max_response_bytes {
            return Err(RunnerError::TooLarge(self.max_response_bytes));
        }
        Ok(RunOutput::answer(super::http::output_of(&body)))
    }

    async fn invoke_streamed(
        &self,
        client: &Client,
        function: &str,
        payload: Blob,
        lines: &LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let call = client
            .invoke_with_response_stream()
            .function_name(function)
            .payload(payload);
        let out = with_retries("function call", lines, |attempt| {
            let call = call.clone();
            async move { call.send().await.map_err(|e| failed(e, backoff(attempt))) }
        })
        .await?;
        // Lambda's answer names the event stream, not what the function
        // writes: a stream is server-sent events when the function says so
        // or its first bytes are SSE's, else one line a record.
        let declared = out
            .response_stream_content_type
            .as_deref()
            .and_then(Format::of);
        let mut stream = out.event_stream;
        let mut parser: Option<Capped> = None;
        let mut last = None;
        loop {
            let chunk = match stream.recv().await {
                Ok(Some(Event::PayloadChunk(update))) => {
                    update.payload.map(Blob::into_inner).unwrap_or_default()
                }
                Ok(Some(Event::InvokeComplete(done))) => {
                    if let Some(code) = done.error_code {
                        let details = done.error_details.unwrap_or_default();
                        return Err(RunnerError::Function(limit_named(&format!(
                            "{code}: {details}"
                        ))));
                    }
                    break;
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e @ SdkError::ServiceError(_)) => {
                    return Err(RunnerError::Function(describe(&e)))
                }
                Err(e) => return Err(RunnerError::Transport(describe(&e))),
            };
            if chunk.is_empty() {
                continue;
            }
            let parser = parser.get_or_insert_with(|| {
                let format = declared.unwrap_or_else(|| sniff(&chunk));
                Capped::new(format, self.max_response_bytes)
            });
            for event in parser.feed(Some(&chunk))? {
                last = Some(event.raw.clone());
                // The executor may have stopped listening (a lost lease).
                let _ = lines.send(event).await;
            }
        }
        if let Some(parser) = &mut parser {
            for event in parser.feed(None)? {
                last = Some(event.raw.clone());
                let _ = lines.send(event).await;
            }
        }
        let output = last.map_or(Value::Null, |raw| super::http::output_of(raw.as_bytes()));
        Ok(RunOutput::answer(output))
    }
}

/// How a function's stream reads, from its first bytes: server-sent
/// events start with a field (`data:`, `event:`, `id:`, `retry:`) or a
/// comment (`:`); anything else is lines.
fn sniff(first: &[u8]) -> Format {
    let start = first.trim_ascii_start();
    let sse = [&b"data:"[..], b"event:", b"id:", b"retry:", b":"]
        .iter()
        .any(|p| start.starts_with(p));
    if sse {
        Format::Sse
    } else {
        Format::Ndjson
    }
}

/// A function error's text: the function's `errorType: errorMessage`
/// (Lambda's own JSON for an unhandled error, the runtime's for a handled
/// one), with Lambda's limit named when that is what it was.
fn function_error(kind: &str, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let text = match (field("errorType"), field("errorMessage")) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (Some(t), None) => t,
        (None, Some(m)) => m,
        (None, None) => {
            let mut excerpt = String::from_utf8_lossy(body).into_owned();
            crate::message::truncate_utf8(&mut excerpt, 512);
            excerpt
        }
    };
    let mut text = format!("{kind}: {}", limit_named(&text));
    crate::message::truncate_utf8(&mut text, 1024);
    text
}

/// Names Lambda's 6 MB limit in an error about a result too large for it.
fn limit_named(text: &str) -> String {
    if text.contains("ResponseSizeTooLarge") || text.contains("RequestTooLarge") {
        format!(
            "{text} (Lambda's limit of a synchronous invocation's payload is 6 MB, {MAX_SYNC_PAYLOAD_BYTES} bytes; a streamed answer, \"stream\": true, may be longer)"
        )
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_sse_when_its_first_bytes_are() {
        assert_eq!(sniff(b"data: {\"a\":1}\n\n"), Format::Sse);
        assert_eq!(sniff(b"\n: keep-alive\n"), Format::Sse);
        assert_eq!(sniff(b"event: progress\n"), Format::Sse);
        assert_eq!(sniff(b"{\"step\":1}\n"), Format::Ndjson);
        assert_eq!(sniff(b"plain text\n"), Format::Ndjson);
    }

    #[test]
    fn function_errors_read_as_the_function_said_them() {
        assert_eq!(
            function_error(
                "Unhandled",
                br#"{"errorType":"TypeError","errorMessage":"x is undefined","trace":["at f"]}"#
            ),
            "Unhandled: TypeError: x is undefined"
        );
        assert_eq!(
            function_error("Handled", b"plain words"),
            "Handled: plain words"
        );
        let big = function_error(
            "Unhandled",
            br#"{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes)."}"#,
        );
        assert!(
            big.contains("limit of a synchronous invocation's payload is 6 MB"),
            "{big}"
        );
    }
}
