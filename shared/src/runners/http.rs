//! The http runner: POSTs the run as JSON to the agent's URL.

use serde_json::Value;

use super::{RunRequest, RunnerError};
use crate::outbound::OutboundPolicy;

#[derive(Clone)]
pub struct HttpRunner {
    client: reqwest::Client,
    policy: OutboundPolicy,
    max_response_bytes: usize,
}

impl HttpRunner {
    /// Agent URLs follow the same outbound policy as subscriber URLs: in a
    /// shared deployment a workspace admin must not reach internal or
    /// metadata addresses through an agent (the answer would come back in
    /// the run's output). No redirects: they could lead the run elsewhere.
    pub fn new(max_response_bytes: usize, policy: OutboundPolicy) -> Self {
        // The executor bounds every run by its own timeout.
        let client = policy.client(std::time::Duration::from_secs(
            crate::model::agent::MAX_TIMEOUT_SECONDS + 60,
        ));
        HttpRunner {
            client,
            policy,
            max_response_bytes,
        }
    }

    pub async fn run(&self, url: &str, req: &RunRequest) -> Result<Value, RunnerError> {
        self.policy.guard(url).await.map_err(RunnerError::Refused)?;
        // The URL is left out: it may carry a credential. A name that
        // resolves only to refused addresses is refused, not a transport error.
        let transport = |e: reqwest::Error| match crate::outbound::refusal_in(&e) {
            Some(refused) => RunnerError::Refused(refused),
            None => RunnerError::Transport(crate::error::error_chain(&e.without_url())),
        };
        let mut resp = self
            .client
            .post(url)
            .json(req)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
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
        // An answer nested deeper than hookrun keeps is kept as text.
        let parsed = crate::json::check_depth(&body)
            .ok()
            .and_then(|()| serde_json::from_slice(&body).ok());
        Ok(parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(&body).into_owned())))
    }
}
