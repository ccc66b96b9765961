//! The http runner: POSTs the run as JSON to the agent's URL.

use serde_json::Value;

use super::{RunRequest, RunnerError};

#[derive(Clone)]
pub struct HttpRunner {
    client: reqwest::Client,
    max_response_bytes: usize,
}

/// Exit code recorded when the agent answered but not with a 2xx.
const EXIT_HTTP_STATUS: i32 = 1;
/// Exit code recorded when the agent could not be reached or its answer not read.
const EXIT_TRANSPORT: i32 = 2;

impl HttpRunner {
    pub fn new(max_response_bytes: usize) -> Self {
        let client = reqwest::Client::builder()
            // A redirect could lead the run (and its input) somewhere the
            // operator did not configure.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookrun/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client builds");
        HttpRunner {
            client,
            max_response_bytes,
        }
    }

    pub async fn run(&self, url: &str, req: &RunRequest) -> Result<Value, RunnerError> {
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
