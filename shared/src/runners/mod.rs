//! Agent runners: how a run's message reaches an agent and its answer comes
//! back. The executor applies the run's timeout around every runner.

#[cfg(any(feature = "runner-openai", feature = "runner-bedrock"))]
mod answer;
#[cfg(any(feature = "runner-bedrock", feature = "runner-lambda"))]
pub mod aws;
#[cfg(feature = "runner-bedrock")]
mod bedrock;
mod http;
#[cfg(feature = "runner-lambda")]
mod lambda;
#[cfg(feature = "runner-openai")]
mod openai;
pub mod retry;
pub mod stream;
pub mod template;

use serde::Serialize;
use serde_json::Value;

use crate::config::Settings;
use crate::model::run::Usage;
use crate::model::RunnerConfig;

/// What a runner gives back: the run's output and, when the agent
/// reported it, the tokens its model used.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub output: Value,
    pub usage: Option<Usage>,
}

impl RunOutput {
    /// An agent's answer: its OpenAI-style `usage`, if it has one, is the
    /// run's.
    pub fn answer(output: Value) -> Self {
        RunOutput {
            usage: Usage::in_answer(&output),
            output,
        }
    }
}

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
    /// The model's provider reported an error (in its stream or answer).
    #[error("model error: {0}")]
    Provider(String),
    /// The agent's Lambda function failed (its `errorType: errorMessage`),
    /// or Lambda refused the invocation.
    #[error("function error: {0}")]
    Function(String),
    /// A prompt template could not be rendered for this run.
    #[error("template error: {0}")]
    Template(String),
    /// The agent's configuration could not be used (a credential that
    /// does not open, a runner this build leaves out).
    #[error("agent configuration: {0}")]
    Config(String),
}

/// Exit code of a run that hit its timeout (as `timeout(1)` reports it).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code recorded when the agent answered but not with a 2xx (or its
/// model reported an error, or its configuration could not be used).
pub const EXIT_HTTP_STATUS: i32 = 1;
/// Exit code recorded when the agent could not be reached or its answer not read.
pub const EXIT_TRANSPORT: i32 = 2;

impl RunnerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerError::Timeout => EXIT_TIMEOUT,
            RunnerError::Status { .. }
            | RunnerError::Provider(_)
            | RunnerError::Function(_)
            | RunnerError::Template(_)
            | RunnerError::Config(_) => EXIT_HTTP_STATUS,
            RunnerError::Refused(_) | RunnerError::Transport(_) | RunnerError::TooLarge(_) => {
                EXIT_TRANSPORT
            }
        }
    }
}

/// Where a runner hands the events or lines an agent streams, as they
/// arrive (the executor logs and broadcasts them).
pub type LineSender = tokio::sync::mpsc::Sender<stream::Streamed>;

/// The runners, sharing one HTTP client (connection pool, TLS config)
/// and, for those on AWS, one SDK configuration loaded on first use.
#[derive(Clone)]
pub struct Runners {
    http: http::HttpRunner,
    #[cfg(feature = "runner-openai")]
    openai: openai::OpenAiRunner,
    #[cfg(feature = "runner-bedrock")]
    bedrock: std::sync::Arc<bedrock::BedrockRunner>,
    #[cfg(feature = "runner-lambda")]
    lambda: std::sync::Arc<lambda::LambdaRunner>,
}

impl Runners {
    /// Agent and model URLs follow the same outbound policy as subscriber
    /// URLs: in a shared deployment a workspace admin must not reach
    /// internal or metadata addresses through an agent (the answer would
    /// come back in the run's output). No redirects: they could lead the
    /// run elsewhere. The executor bounds every run by its own timeout.
    pub fn new(settings: &Settings) -> Self {
        Self::build(
            settings,
            #[cfg(any(feature = "runner-bedrock", feature = "runner-lambda"))]
            aws::AwsSdk::default(),
        )
    }

    /// The same runners calling AWS with `sdk` (tests: a fake endpoint).
    #[cfg(any(feature = "runner-bedrock", feature = "runner-lambda"))]
    pub fn with_aws_config(settings: &Settings, sdk: aws_config::SdkConfig) -> Self {
        Self::build(settings, aws::AwsSdk::preset(sdk))
    }

    fn build(
        settings: &Settings,
        #[cfg(any(feature = "runner-bedrock", feature = "runner-lambda"))] sdk: aws::AwsSdk,
    ) -> Self {
        let policy = settings.outbound.clone();
        let client = policy.client(std::time::Duration::from_secs(
            crate::model::agent::MAX_TIMEOUT_SECONDS + 60,
        ));
        let max = settings.max_output_bytes;
        Runners {
            http: http::HttpRunner::new(client.clone(), policy.clone(), max),
            #[cfg(feature = "runner-openai")]
            openai: openai::OpenAiRunner::new(client, policy, max),
            #[cfg(feature = "runner-bedrock")]
            bedrock: std::sync::Arc::new(bedrock::BedrockRunner::new(sdk.clone(), max)),
            #[cfg(feature = "runner-lambda")]
            lambda: std::sync::Arc::new(lambda::LambdaRunner::new(sdk, max)),
        }
    }

    /// Runs `req` (with `config`'s write-only values opened); an agent
    /// that streams its answer has each event or line sent to `lines` as
    /// it arrives. `signing` holds the agent's signing secrets (current
    /// first), for the runners that call the agent over HTTP.
    pub async fn run(
        &self,
        config: &RunnerConfig,
        req: &RunRequest,
        signing: &[String],
        lines: LineSender,
    ) -> Result<RunOutput, RunnerError> {
        match config {
            RunnerConfig::Echo => Ok(RunOutput {
                output: serde_json::json!({ "message": req.message }),
                usage: None,
            }),
            RunnerConfig::Http { url, headers } => self
                .http
                .run(url, headers.as_ref(), req, signing, lines)
                .await
                .map(RunOutput::answer),
            #[cfg(feature = "runner-openai")]
            RunnerConfig::Openai(cfg) => self.openai.run(cfg, req, lines).await,
            #[cfg(feature = "runner-bedrock")]
            RunnerConfig::Bedrock(cfg) => self.bedrock.run(cfg, req, lines).await,
            #[cfg(feature = "runner-lambda")]
            RunnerConfig::Lambda(cfg) => self.lambda.run(cfg, req, lines).await,
            #[allow(unreachable_patterns)]
            other => Err(left_out(other.kind())),
        }
    }
}

/// The error of a run whose runner this build leaves out.
#[allow(dead_code)]
fn left_out(kind: &str) -> RunnerError {
    RunnerError::Config(format!(
        "this build of hookrun leaves out the {kind} runner (cargo feature runner-{kind})"
    ))
}

/// A failed request as a runner error. The URL is left out: it may carry
/// a credential. A name that resolves only to refused addresses is
/// refused, not a transport error.
fn transport(e: reqwest::Error) -> RunnerError {
    match crate::outbound::refusal_in(&e) {
        Some(refused) => RunnerError::Refused(refused),
        None => RunnerError::Transport(crate::error::error_chain(&e.without_url())),
    }
}
