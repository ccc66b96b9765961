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

/// Exit code recorded when the agent answered but not with a 2xx.
const EXIT_HTTP_STATUS: i32 = 1;
/// Exit code recorded when the agent could not be reached or its answer not read.
const EXIT_TRANSPORT: i32 = 2;

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
        if let Err(e) = self.policy.check_url(url) {
            return Err(RunnerError {
                message: format!("destination refused: agent url {e}"),
                exit_code: EXIT_TRANSPORT,
            });
        }
        // The URL is left out: it may carry a credential.
        let transport = |e: reqwest::Error| RunnerError {
            message: format!(
                "agent request failed: {}",
                crate::error::error_chain(&e.without_url())
            ),
            exit_code: EXIT_TRANSPORT,
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
                return Err(RunnerError {
                    message: format!(
                        "agent response exceeds the limit of {} bytes",
                        self.max_response_bytes
                    ),
                    exit_code: EXIT_TRANSPORT,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let mut excerpt = String::from_utf8_lossy(&body).into_owned();
            crate::message::truncate_utf8(&mut excerpt, 512);
            return Err(RunnerError {
                message: format!("agent answered HTTP {}: {excerpt}", status.as_u16()),
                exit_code: EXIT_HTTP_STATUS,
            });
        }
        Ok(serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())))
    }
}
