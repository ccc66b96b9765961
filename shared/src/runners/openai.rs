//! The `openai` runner: a model behind an OpenAI-compatible chat
//! completions endpoint (OpenAI, Azure OpenAI's compatible route, Ollama,
//! vLLM, llama.cpp server, LiteLLM), streamed. Each completed line of the
//! assistant's text is handed on as it arrives (logged and broadcast as
//! `agent.log`); the output is `{text, model, finish_reason, usage}`.
//!
//! What real servers send, and what happens:
//! - a last usage-only chunk with `choices` empty, null or missing
//!   (vLLM): its usage is the run's;
//! - unknown fields: ignored; `[DONE]`: the end;
//! - a stream cut before its usage chunk (or before `[DONE]`): the run
//!   keeps the text it got, usage unknown, and a warning line says so;
//! - `finish_reason: "length"`: succeeded, with a warning line;
//! - an `error` object in the stream: the run fails with its message;
//! - a plain JSON answer (a server that ignores `stream`): read whole.
//!
//! 429, 5xx and connection errors before the answer starts are retried
//! (at most 3 attempts, waiting `Retry-After` when it is given); other
//! statuses fail at once with the provider's own message.

use std::time::Duration;

use serde_json::{json, Value};

use super::answer::ModelAnswer;
use super::retry::{backoff, with_retries, Failed};
use super::stream::{Capped, Format};
use super::{template, transport, LineSender, RunOutput, RunRequest, RunnerError};
use crate::model::run::Usage;
use crate::model::runner::{OpenAiConfig, WriteOnly};
use crate::outbound::OutboundPolicy;

/// Most of an error answer read.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct OpenAiRunner {
    client: reqwest::Client,
    policy: OutboundPolicy,
    max_response_bytes: usize,
}

impl OpenAiRunner {
    pub fn new(client: reqwest::Client, policy: OutboundPolicy, max_response_bytes: usize) -> Self {
        OpenAiRunner {
            client,
            policy,
            max_response_bytes,
        }
    }

    pub async fn run(
        &self,
        cfg: &OpenAiConfig,
        req: &RunRequest,
        lines: LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        self.policy
            .guard(&url)
            .await
            .map_err(RunnerError::Refused)?;
        let key = match &cfg.api_key {
            None => None,
            Some(WriteOnly::Plain(key)) => Some(key.as_str()),
            Some(WriteOnly::Sealed { .. }) => {
                return Err(RunnerError::Config("the API key was not opened".into()))
            }
        };
        let body = request_body(cfg, req)?;
        let answer = with_retries("model call", &lines, |attempt| {
            self.attempt(&url, key, &body, attempt, &lines)
        })
        .await?;
        Ok(answer.finish(&cfg.model, &lines).await)
    }

    async fn attempt(
        &self,
        url: &str,
        key: Option<&str>,
        body: &Value,
        attempt: u32,
        lines: &LineSender,
    ) -> Result<ModelAnswer, Failed> {
        let mut call = self
            .client
            .post(url)
            .header(
                reqwest::header::ACCEPT,
                "text/event-stream, application/json",
            )
            .json(body);
        if let Some(key) = key {
            call = call.bearer_auth(key);
        }
        let backoff = backoff(attempt);
        let resp = match call.send().await {
            Ok(resp) => resp,
            Err(e) => {
                return Err(match transport(e) {
                    refused @ RunnerError::Refused(_) => Failed::Fail(refused),
                    other => Failed::Retry(backoff, other),
                })
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let wait = retry_after(&resp).unwrap_or(backoff);
            let body = read_bounded(resp, MAX_ERROR_BODY).await;
            let e = RunnerError::Status {
                status: status.as_u16(),
                excerpt: error_message(&body),
            };
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                Failed::Retry(wait, e)
            } else {
                Failed::Fail(e)
            });
        }
        let streamed = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::of)
            == Some(Format::Sse);
        let result = if streamed {
            self.read_stream(resp, lines).await
        } else {
            self.read_whole(resp).await
        };
        result.map_err(Failed::Fail)
    }

    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        lines: &LineSender,
    ) -> Result<ModelAnswer, RunnerError> {
        let mut parser = Capped::new(Format::Sse, self.max_response_bytes);
        let mut answer = ModelAnswer::default();
        loop {
            let chunk = match resp.chunk().await {
                Ok(chunk) => chunk,
                // Cut: what came is the answer, if anything came.
                Err(e) if answer.got_any => {
                    answer.cut = Some(crate::error::error_chain(&e.without_url()));
                    break;
                }
                Err(e) => return Err(transport(e)),
            };
            let end = chunk.is_none();
            let events = parser.feed(chunk.as_deref())?;
            for event in events {
                if take_chunk(&mut answer, &event.raw)? {
                    return Ok(answer);
                }
                answer.send_lines(lines).await;
            }
            if end {
                break;
            }
        }
        Ok(answer)
    }

    /// A server that answered with one JSON completion.
    async fn read_whole(&self, resp: reqwest::Response) -> Result<ModelAnswer, RunnerError> {
        let len = resp.content_length().unwrap_or(0) as usize;
        if len > self.max_response_bytes {
            return Err(RunnerError::TooLarge(self.max_response_bytes));
        }
        let body = read_bounded(resp, self.max_response_bytes + 1).await;
        if body.len() > self.max_response_bytes {
            return Err(RunnerError::TooLarge(self.max_response_bytes));
        }
        let value: Value = serde_json::from_str(&body).map_err(|e| {
            RunnerError::Provider(format!("the answer is neither a stream nor JSON: {e}"))
        })?;
        if let Some(message) = value.get("error").map(error_text) {
            return Err(RunnerError::Provider(message));
        }
        let mut answer = ModelAnswer::default();
        let choice = first_choice(&value);
        if let Some(text) = choice
            .and_then(|c| c.pointer("/message/content"))
            .and_then(Value::as_str)
        {
            answer.push_text(text);
        }
        note_chunk(&mut answer, &value, choice);
        answer.done = true;
        Ok(answer)
    }
}

/// The chat completions request.
fn request_body(cfg: &OpenAiConfig, req: &RunRequest) -> Result<Value, RunnerError> {
    let (system, prompt) = template::prompts(cfg.system.as_deref(), cfg.prompt.as_deref(), req)?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": prompt}));
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(max) = cfg.max_tokens {
        body["max_tokens"] = json!(max);
    }
    if let Some(t) = cfg.temperature {
        body["temperature"] = json!(t);
    }
    Ok(body)
}

/// One event's data into the answer; true at `[DONE]`.
fn take_chunk(answer: &mut ModelAnswer, raw: &str) -> Result<bool, RunnerError> {
    let raw = raw.trim();
    if raw == "[DONE]" {
        answer.done = true;
        return Ok(true);
    }
    let Ok(chunk) = serde_json::from_str::<Value>(raw) else {
        return Ok(false);
    };
    if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
        return Err(RunnerError::Provider(error_text(error)));
    }
    answer.got_any = true;
    let choice = first_choice(&chunk);
    if let Some(text) = choice
        .and_then(|c| c.pointer("/delta/content"))
        .and_then(Value::as_str)
    {
        answer.push_text(text);
    }
    note_chunk(answer, &chunk, choice);
    Ok(false)
}

/// The model, finish reason and usage a chunk (or whole answer) gives.
fn note_chunk(answer: &mut ModelAnswer, chunk: &Value, choice: Option<&Value>) {
    if let Some(model) = chunk.get("model").and_then(Value::as_str) {
        answer.model = Some(model.to_owned());
    }
    if let Some(reason) = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
    {
        answer.finish_reason = Some(reason.to_owned());
    }
    // The same reading of an OpenAI-style `usage` as an http agent's
    // answer gets.
    if let Some(usage) = Usage::in_answer(chunk) {
        answer.usage = Some(usage);
    }
}

fn first_choice(chunk: &Value) -> Option<&Value> {
    chunk.get("choices")?.as_array()?.first()
}

/// An error object's message (`{"message": …}`, or the object itself).
fn error_text(error: &Value) -> String {
    let mut text = match error.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => match error.as_str() {
            Some(s) => s.to_owned(),
            None => error.to_string(),
        },
    };
    crate::message::truncate_utf8(&mut text, 512);
    text
}

/// What an error answer says: its `error.message` when it has one, else
/// the start of its body.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(error) => error_text(error),
        None => {
            let mut excerpt = body.to_owned();
            crate::message::truncate_utf8(&mut excerpt, 512);
            excerpt
        }
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

async fn read_bounded(mut resp: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= max {
            body.truncate(max);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
