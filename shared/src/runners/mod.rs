//! Agent runners: how a run's message reaches an agent and its answer comes
//! back. The executor applies the run's timeout around every runner.

mod http;

use serde::Serialize;
use serde_json::Value;

use crate::config::Settings;
use crate::model::RunnerConfig;

/// What a runner is given: the run, as the http runner POSTs it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRequest {
    pub run_id: String,
    pub agent_id: String,
    pub message: String,
    pub input: Value,
    pub trigger: TriggerInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct TriggerInfo {
    #[serde(rename = "type")]
    pub kind: crate::model::TriggerType,
    pub id: Option<String>,
}

/// A run the agent could not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RunnerError {
    pub message: String,
    pub exit_code: i32,
}

/// The runners, sharing one HTTP client (connection pool, TLS config).
#[derive(Clone)]
pub struct Runners {
    http: http::HttpRunner,
}

impl Runners {
    pub fn new(settings: &Settings) -> Self {
        Runners {
            http: http::HttpRunner::new(settings.max_output_bytes, settings.outbound.clone()),
        }
    }

    pub async fn run(&self, config: &RunnerConfig, req: &RunRequest) -> Result<Value, RunnerError> {
        match config {
            RunnerConfig::Echo => Ok(serde_json::json!({ "message": req.message })),
            RunnerConfig::Http { url } => self.http.run(url, req).await,
        }
    }
}
