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

use super::stream::{Capped, Format, Streamed};
use super::{template, transport, LineSender, RunOutput, RunRequest, RunnerError};
use crate::model::run::Usage;
use crate::model::runner::{OpenAiConfig, WriteOnly};
use crate::outbound::OutboundPolicy;

/// Attempts of one call at most.
pub const ATTEMPTS: u32 = 3;
/// Longest wait between attempts (a longer `Retry-After` is cut to it).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// Most of an error answer read.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct OpenAiRunner {
    client: reqwest::Client,
    policy: OutboundPolicy,
    max_response_bytes: usize,
}

/// How one attempt ended, when it did not give an answer.
enum Failed {
    /// Worth another attempt after the wait.
    Retry(Duration, RunnerError),
    Fail(RunnerError),
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
        let mut attempt = 1;
        loop {
            match self.attempt(&url, key, &body, attempt, &lines).await {
                Ok(mut out) => {
                    if let Some(usage) = &mut out.usage {
                        usage.model.get_or_insert_with(|| cfg.model.clone());
                    }
                    return Ok(out);
                }
                Err(Failed::Retry(wait, e)) if attempt < ATTEMPTS => {
                    let note = format!(
                        "model call failed ({e}); attempt {} of {ATTEMPTS} in {} s",
                        attempt + 1,
                        wait.as_secs_f32()
                    );
                    let _ = lines.send(warning(note)).await;
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Failed::Retry(_, e) | Failed::Fail(e)) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        key: Option<&str>,
        body: &Value,
        attempt: u32,
        lines: &LineSender,
    ) -> Result<RunOutput, Failed> {
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
        let backoff = Duration::from_secs(1 << (attempt - 1).min(4));
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
            let wait = retry_after(&resp).unwrap_or(backoff).min(MAX_RETRY_WAIT);
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
            self.read_whole(resp, lines).await
        };
        result.map_err(Failed::Fail)
    }

    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        lines: &LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let mut parser = Capped::new(Format::Sse, self.max_response_bytes);
        let mut answer = Answer::default();
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
                if answer.take(&event.raw)? {
                    return answer.finish(lines).await;
                }
                answer.send_lines(lines).await;
            }
            if end {
                break;
            }
        }
        answer.finish(lines).await
    }

    /// A server that answered with one JSON completion.
    async fn read_whole(
        &self,
        resp: reqwest::Response,
        lines: &LineSender,
    ) -> Result<RunOutput, RunnerError> {
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
        let mut answer = Answer::default();
        let choice = first_choice(&value);
        if let Some(text) = choice
            .and_then(|c| c.pointer("/message/content"))
            .and_then(Value::as_str)
        {
            answer.push_text(text);
        }
        answer.note_chunk(&value, choice);
        answer.done = true;
        answer.finish(lines).await
    }
}

/// The chat completions request.
fn request_body(cfg: &OpenAiConfig, req: &RunRequest) -> Result<Value, RunnerError> {
    let render = |field: &str, source: &str| {
        template::render(source, req)
            .map_err(|e| RunnerError::Template(format!("runner.{field}: {e}")))
    };
    let mut messages = Vec::new();
    if let Some(system) = &cfg.system {
        messages.push(json!({"role": "system", "content": render("system", system)?}));
    }
    let prompt = match &cfg.prompt {
        Some(prompt) => render("prompt", prompt)?,
        None => req.message.clone(),
    };
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

/// The answer as it streams in.
#[derive(Default)]
struct Answer {
    text: String,
    /// Text after the last complete line, not handed on yet.
    pending: String,
    /// Complete lines not handed on yet.
    ready: Vec<String>,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    got_any: bool,
    /// `[DONE]` (or a whole JSON answer) came.
    done: bool,
    /// Why the stream ended early.
    cut: Option<String>,
}

impl Answer {
    /// One event's data; true at `[DONE]`.
    fn take(&mut self, raw: &str) -> Result<bool, RunnerError> {
        let raw = raw.trim();
        if raw == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        let Ok(chunk) = serde_json::from_str::<Value>(raw) else {
            return Ok(false);
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(RunnerError::Provider(error_text(error)));
        }
        self.got_any = true;
        let choice = first_choice(&chunk);
        if let Some(text) = choice
            .and_then(|c| c.pointer("/delta/content"))
            .and_then(Value::as_str)
        {
            self.push_text(text);
        }
        self.note_chunk(&chunk, choice);
        Ok(false)
    }

    /// The model, finish reason and usage a chunk (or whole answer) gives.
    fn note_chunk(&mut self, chunk: &Value, choice: Option<&Value>) {
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        if let Some(reason) = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
        {
            self.finish_reason = Some(reason.to_owned());
        }
        // The same reading of an OpenAI-style `usage` as an http agent's
        // answer gets.
        if let Some(usage) = Usage::in_answer(chunk) {
            self.usage = Some(usage);
        }
    }

    fn push_text(&mut self, text: &str) {
        self.got_any = true;
        self.text.push_str(text);
        self.pending.push_str(text);
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() {
                self.ready.push(line.to_owned());
            }
        }
    }

    async fn send_lines(&mut self, lines: &LineSender) {
        for line in self.ready.drain(..) {
            // The executor may have stopped listening (a lost lease).
            let _ = lines
                .send(Streamed {
                    level: "info".into(),
                    line: line.clone(),
                    raw: line,
                })
                .await;
        }
    }

    async fn finish(mut self, lines: &LineSender) -> Result<RunOutput, RunnerError> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.trim().is_empty() {
            self.ready.push(rest);
        }
        self.send_lines(lines).await;
        let mut notes = Vec::new();
        if let Some(why) = &self.cut {
            notes.push(format!(
                "the model's stream was cut ({why}); the run keeps the text it got"
            ));
        } else if !self.done && self.finish_reason.is_none() {
            notes.push(
                "the model's stream ended before it finished; the run keeps the text it got"
                    .to_owned(),
            );
        }
        if self.finish_reason.as_deref() == Some("length") {
            notes.push("the answer was cut at max_tokens (finish_reason: length)".to_owned());
        }
        if self.usage.is_none() {
            notes.push("the model reported no token usage: usage unknown".to_owned());
        }
        for note in notes {
            let _ = lines.send(warning(note)).await;
        }
        let usage = self.usage.take().map(|mut u| {
            // A usage chunk without a model: the stream's.
            u.model = u.model.or_else(|| self.model.clone());
            u
        });
        let output = json!({
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": usage.as_ref().map(|u| json!({
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
            })),
        });
        Ok(RunOutput { output, usage })
    }
}

fn first_choice(chunk: &Value) -> Option<&Value> {
    chunk.get("choices")?.as_array()?.first()
}

fn warning(line: String) -> Streamed {
    Streamed {
        level: "warn".into(),
        raw: line.clone(),
        line,
    }
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
