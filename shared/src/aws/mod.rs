//! The AWS adapters: DynamoDB item table, SQS queues, Secrets
//! Manager secrets. SDK clients are built once per process (per Lambda cold
//! start) from the standard AWS environment (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).

pub mod calls;
mod dynamo;
mod http;
pub mod provision;
pub mod relay;
#[cfg(feature = "aws-scheduler")]
pub mod scheduler;
mod secrets;
mod sqs;
#[cfg(feature = "aws-streams")]
pub mod stream;
#[cfg(feature = "aws-realtime")]
pub mod websocket;

use std::sync::Arc;

pub use aws_config::SdkConfig;
pub use aws_sdk_sqs::Client as SqsClient;
pub use dynamo::DynamoItemTable;
/// The SDK HTTP client hookrun's configurations use (tests build theirs
/// against fakes with it).
pub use http::client as http_client;
pub use secrets::SecretsManagerStore;
pub use sqs::SqsQueue;

use crate::app::App;
use crate::config::{AwsSettings, Settings};
use crate::error::StoreError;

/// The shared SDK configuration, loaded once, on hookrun's HTTP client
/// ([`http`]).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http::client())
        .load()
        .await
}

/// The SDK configuration of a Lambda function, from what Lambda puts in
/// every function's environment: the region (`AWS_REGION`), the execution
/// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and, for tests against an emulator,
/// `AWS_ENDPOINT_URL`; otherwise the SDK's defaults for
/// `BehaviorVersion::latest()` (standard retries, a 3.1 s connect timeout,
/// a lazy identity cache).
///
/// Why not [`sdk_config`]: its default chain (profile files, SSO, web
/// identity with its own STS client, container and instance metadata)
/// never applies on Lambda, and linking it made each bootstrap about
/// 0.5 MB larger (docs/cost.md, "Cold starts").
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(
            std::env::var("AWS_REGION")
                .ok()
                .map(aws_config::Region::new),
        )
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http::client())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .identity_cache(aws_config::identity::IdentityCache::lazy().build())
        .retry_config(aws_config::retry::RetryConfig::standard())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(3100))
                .build(),
        );
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// An [`App`] on the AWS adapters.
pub fn app(sdk: &aws_config::SdkConfig, aws: &AwsSettings, settings: Settings) -> App {
    build_app(sdk, aws, settings, None)
}

/// An [`App`] on the AWS adapters whose every AWS call is recorded in
/// `log` (the cost test's counter).
pub fn app_recording(
    sdk: &aws_config::SdkConfig,
    aws: &AwsSettings,
    settings: Settings,
    log: calls::CallLog,
) -> App {
    build_app(sdk, aws, settings, Some(log))
}

fn build_app(
    sdk: &aws_config::SdkConfig,
    aws: &AwsSettings,
    settings: Settings,
    log: Option<calls::CallLog>,
) -> App {
    let recorder = || log.clone().map(calls::Recorder);
    let mut dynamo = aws_sdk_dynamodb::config::Builder::from(sdk);
    let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
    let mut secrets = aws_sdk_secretsmanager::config::Builder::from(sdk);
    if let Some(r) = recorder() {
        dynamo = dynamo.interceptor(r);
    }
    if let Some(r) = recorder() {
        sqs = sqs.interceptor(r);
    }
    if let Some(r) = recorder() {
        secrets = secrets.interceptor(r);
    }
    let items = DynamoItemTable::new(
        aws_sdk_dynamodb::Client::from_conf(dynamo.build()),
        aws.table_name.clone(),
    );
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(sqs.build()),
        aws.queue_urls.clone(),
    );
    let secrets = SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
        aws.secret_cache,
    )
    .with_master_key(aws.master_key_secret.clone());
    let app = App::new(
        Arc::new(items),
        Arc::new(queue),
        Arc::new(secrets),
        settings,
    );
    // Schedules fire from EventBridge Scheduler where it is configured
    // (the api function keeps them in step).
    #[cfg(feature = "aws-scheduler")]
    let app = match &aws.scheduler {
        Some(sched) => app.with_fires(Arc::new(scheduler::EventBridgeFires::new(
            sdk,
            sched.clone(),
        ))),
        None => app,
    };
    // Run events go to API Gateway's WebSocket connections where there are
    // any (the executor; on AWS no function streams to its own clients).
    #[cfg(feature = "aws-realtime")]
    if let Some(url) = &aws.websocket_callback_url {
        let fanout = websocket::ApiGatewayFanout::new(sdk, url, app.repo.clone());
        return app.with_live(crate::live::Hub::default().with_fanout(Arc::new(fanout)));
    }
    app
}

/// A backend error with the SDK error's whole chain (its Display alone is
/// only "service error").
pub(crate) fn backend<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError::Backend(crate::error::error_chain(&e))
}
