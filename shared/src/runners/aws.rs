//! What the AWS runners (`bedrock`, `lambda`) share: the SDK configuration,
//! loaded on first use (a process whose agents never call AWS never loads
//! it), their clients per region, their timeouts, and how an SDK error
//! becomes a run's error under the retry rule ([`super::retry`]).
//!
//! Credentials are the process's: on Lambda (the executor) the function
//! role's, from its environment ([`crate::aws::lambda_sdk_config`]); in
//! `hookrun serve` the SDK's default chain ([`crate::aws::sdk_config`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::OnceCell;

use super::retry::Failed;
use super::RunnerError;

/// The SDK configuration of the AWS runners, loaded once on first use.
#[derive(Clone, Default)]
pub struct AwsSdk {
    config: Arc<OnceCell<SdkConfig>>,
}

impl AwsSdk {
    /// A configuration given up front (tests, against a fake endpoint).
    pub fn preset(config: SdkConfig) -> Self {
        AwsSdk {
            config: Arc::new(OnceCell::new_with(Some(config))),
        }
    }

    pub async fn config(&self) -> &SdkConfig {
        self.config
            .get_or_init(|| async {
                // Lambda sets AWS_LAMBDA_FUNCTION_NAME in every function.
                if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                    crate::aws::lambda_sdk_config()
                } else {
                    crate::aws::sdk_config().await
                }
            })
            .await
    }
}

/// Clients of one service, one per region, made on first use.
pub struct PerRegion<C> {
    sdk: AwsSdk,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> PerRegion<C> {
    pub fn new(sdk: AwsSdk) -> Self {
        PerRegion {
            sdk,
            clients: Mutex::default(),
        }
    }

    /// The client for `region` (the process's when `None`); `make` builds
    /// one from the shared configuration.
    pub async fn get(
        &self,
        region: Option<&str>,
        make: impl FnOnce(&SdkConfig, Region) -> C,
    ) -> Result<C, RunnerError> {
        let sdk = self.sdk.config().await;
        let region = match region {
            Some(r) => Region::new(r.to_owned()),
            None => sdk.region().cloned().ok_or_else(|| {
                RunnerError::Config(
                    "no AWS region: name one in the runner or set AWS_REGION".into(),
                )
            })?,
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        Ok(clients
            .entry(region.to_string())
            .or_insert_with(|| make(sdk, region))
            .clone())
    }
}

/// A client of an AWS SDK crate (`aws_sdk_bedrockruntime`, `aws_sdk_lambda`)
/// on the runners' rules: `sdk`'s configuration in `region`, [`timeouts`],
/// the SDK's own retries off (hookrun's rule applies, noted in the run's
/// log), stalled-stream protection off (a model may pause between deltas
/// for longer than its grace; the run's timeout bounds it), and the
/// service's endpoint variable ([`endpoint_override`]). A macro: each SDK
/// crate has its own config builder type, with no trait in common.
macro_rules! runner_client {
    ($krate:ident, $sdk:expr, $region:expr, $service:literal) => {{
        let mut conf = $krate::config::Builder::from($sdk)
            .region($region)
            .timeout_config($crate::runners::aws::timeouts())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .stalled_stream_protection(
                aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
            );
        if let Some(url) = $crate::runners::aws::endpoint_override($service) {
            conf = conf.endpoint_url(url);
        }
        $krate::Client::from_conf(conf.build())
    }};
}
pub(crate) use runner_client;

/// A service's own endpoint from the environment
/// (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `AWS_ENDPOINT_URL_LAMBDA`): the
/// SDK's default loader reads these, a Lambda function's configuration
/// does not, so both read them here.
pub fn endpoint_override(service: &str) -> Option<String> {
    std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// The runners' timeouts: the SDK's connect timeout, and a read timeout
/// above the longest run's (the executor's own timeout ends a run first),
/// no attempt or operation timeout (a model may write for minutes).
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .read_timeout(Duration::from_secs(
            crate::model::agent::MAX_TIMEOUT_SECONDS + 60,
        ))
        .build()
}

/// An SDK call's error under the retry rule: throttling (429), the
/// service's 5xx and a failed connection are retried; anything else
/// fails the run with the service's own code and message.
pub fn failed<E>(e: SdkError<E, HttpResponse>, backoff: Duration) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            Failed::Retry(backoff, RunnerError::Transport(describe(&e)))
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let err = RunnerError::Provider(describe(&e));
            if status == 429 || status >= 500 {
                Failed::Retry(backoff, err)
            } else {
                Failed::Fail(err)
            }
        }
        _ => Failed::Fail(RunnerError::Config(describe(&e))),
    }
}

/// What an SDK error says: `Code: message` for the service's errors,
/// else the whole chain of causes.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = match e {
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
            }
        }
        _ => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    };
    let mut text = text;
    crate::message::truncate_utf8(&mut text, 1024);
    text
}
