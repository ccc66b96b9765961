//! The http runner: POSTs the run as JSON to the agent's URL.

use std::collections::BTreeMap;

use serde_json::Value;

use super::stream::{Capped, Format};
use super::{LineSender, RunRequest, RunnerError};
use crate::model::runner::WriteOnly;
use crate::outbound::OutboundPolicy;

#[derive(Clone)]
pub struct HttpRunner {
    client: reqwest::Client,
    policy: OutboundPolicy,
    max_response_bytes: usize,
}

impl HttpRunner {
    pub fn new(client: reqwest::Client, policy: OutboundPolicy, max_response_bytes: usize) -> Self {
        HttpRunner {
            client,
            policy,
            max_response_bytes,
        }
    }

    /// POSTs the run to `url`, signed with `signing` (Standard Webhooks:
    /// `webhook-id` is the run's id, so an agent can ignore a repeated
    /// call; `webhook-signature` has one entry per secret, the previous
    /// one's during a rotation) when the agent has signing secrets.
    pub async fn run(
        &self,
        url: &str,
        headers: Option<&BTreeMap<String, WriteOnly>>,
        req: &RunRequest,
        signing: &[String],
        lines: LineSender,
    ) -> Result<Value, RunnerError> {
        self.policy.guard(url).await.map_err(RunnerError::Refused)?;
        let transport = super::transport;
        let body = serde_json::to_string(req).expect("a run request serializes");
        let mut call = self.client.post(url);
        // The agent's own headers (opened), then hookrun's, which win.
        for (name, value) in headers.into_iter().flatten() {
            let WriteOnly::Plain(value) = value else {
                return Err(RunnerError::Config(format!("header {name} was not opened")));
            };
            call = call.header(name.as_str(), value.as_str());
        }
        let mut call = call.header(reqwest::header::CONTENT_TYPE, "application/json");
        if !signing.is_empty() {
            let id = req.run_id.as_str();
            let timestamp = chrono::Utc::now().timestamp();
            let signature = crate::signature::standard_webhooks(id, timestamp, &body, signing);
            call = call
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature);
        }
        let mut resp = call.body(body).send().await.map_err(transport)?;
        let status = resp.status();
        let streamed = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::of);
        if let (true, Some(format)) = (status.is_success(), streamed) {
            return self.read_stream(resp, format, lines, transport).await;
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(RunnerError::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let mut excerpt = String::from_utf8_lossy(&body).into_owned();
            crate::message::truncate_utf8(&mut excerpt, 512);
            return Err(RunnerError::Status {
                status: status.as_u16(),
                excerpt,
            });
        }
        Ok(output_of(&body))
    }

    /// Reads a streamed answer: every event or line goes to `lines` as it
    /// completes, the last one is the output. The size cap counts the
    /// whole stream; the run's timeout (the executor's) bounds its time.
    async fn read_stream(
        &self,
        mut resp: reqwest::Response,
        format: Format,
        lines: LineSender,
        transport: impl Fn(reqwest::Error) -> RunnerError,
    ) -> Result<Value, RunnerError> {
        let mut parser = Capped::new(format, self.max_response_bytes);
        let mut last = None;
        loop {
            let chunk = resp.chunk().await.map_err(&transport)?;
            let done = chunk.is_none();
            let events = parser.feed(chunk.as_deref())?;
            for event in events {
                last = Some(event.raw.clone());
                // The executor may have stopped listening (a lost lease).
                let _ = lines.send(event).await;
            }
            if done {
                break;
            }
        }
        Ok(last.map_or(Value::Null, |raw| output_of(raw.as_bytes())))
    }
}

/// An answer as the run's output: JSON when it is JSON hookrun can keep (an
/// answer nested deeper than hookrun keeps is kept as text), else text.
pub(super) fn output_of(body: &[u8]) -> Value {
    let parsed = crate::json::check_depth(body)
        .ok()
        .and_then(|()| serde_json::from_slice(body).ok());
    parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(body).into_owned()))
}
