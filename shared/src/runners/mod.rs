//! Agent runners: how a run's message reaches an agent and its answer comes
//! back. The executor applies the run's timeout around every runner.

mod http;
pub mod stream;

use serde::Serialize;
use serde_json::Value;

use crate::config::Settings;
use crate::model::RunnerConfig;

/// What a runner is given: the run, as the http runner POSTs it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRequest {
    pub run_id: crate::ids::RunId,
    pub agent_id: crate::ids::AgentId,
    pub message: String,
    pub input: Value,
    pub trigger: TriggerInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct TriggerInfo {
    #[serde(rename = "type")]
    pub kind: crate::model::TriggerType,
    pub id: Option<crate::ids::TriggerId>,
}

/// Why a runner could not complete a run. The executor records the text as
/// the run's error and [`RunnerError::exit_code`] as its exit code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunnerError {
    /// The run's timeout passed first.
    #[error("timeout")]
    Timeout,
    /// The agent URL is one the outbound policy refuses (SSRF guard).
    #[error("destination refused: agent url {0}")]
    Refused(crate::outbound::OutboundError),
    /// The agent could not be reached or its answer not read.
    #[error("agent request failed: {0}")]
    Transport(String),
    /// The answer was longer than `HOOKRUN_MAX_OUTPUT_BYTES`.
    #[error("agent response exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// The agent answered, but not with a 2xx.
    #[error("agent answered HTTP {status}: {excerpt}")]
    Status { status: u16, excerpt: String },
}

/// Exit code of a run that hit its timeout (as `timeout(1)` reports it).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code recorded when the agent answered but not with a 2xx.
pub const EXIT_HTTP_STATUS: i32 = 1;
/// Exit code recorded when the agent could not be reached or its answer not read.
pub const EXIT_TRANSPORT: i32 = 2;

impl RunnerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerError::Timeout => EXIT_TIMEOUT,
            RunnerError::Status { .. } => EXIT_HTTP_STATUS,
            RunnerError::Refused(_) | RunnerError::Transport(_) | RunnerError::TooLarge(_) => {
                EXIT_TRANSPORT
            }
        }
    }
}

/// Where a runner hands the events or lines an agent streams, as they
/// arrive (the executor logs and broadcasts them).
pub type LineSender = tokio::sync::mpsc::Sender<stream::Streamed>;

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

    /// Runs `req`; an agent that streams its answer has each event or line
    /// sent to `lines` as it arrives.
    pub async fn run(
        &self,
        config: &RunnerConfig,
        req: &RunRequest,
        lines: LineSender,
    ) -> Result<Value, RunnerError> {
        match config {
            RunnerConfig::Echo => Ok(serde_json::json!({ "message": req.message })),
            RunnerConfig::Http { url } => self.http.run(url, req, lines).await,
        }
    }
}
