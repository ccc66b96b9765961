//! The AWS adapters: DynamoDB item table, SQS queues, Secrets
//! Manager secrets. SDK clients are built once per process (per Lambda cold
//! start) from the standard AWS environment (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).

pub mod calls;
mod dynamo;
pub mod provision;
pub mod relay;
mod secrets;
mod sqs;
#[cfg(feature = "aws-streams")]
pub mod stream;

use std::sync::Arc;

pub use aws_config::SdkConfig;
pub use aws_sdk_sqs::Client as SqsClient;
pub use dynamo::DynamoItemTable;
pub use secrets::SecretsManagerStore;
pub use sqs::SqsQueue;

use crate::app::App;
use crate::config::{AwsSettings, Settings};
use crate::error::StoreError;

/// The shared SDK configuration, loaded once.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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
    App::new(
        Arc::new(items),
        Arc::new(queue),
        Arc::new(secrets),
        settings,
    )
}

/// A backend error with the SDK error's whole chain (its Display alone is
/// only "service error").
pub(crate) fn backend<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError::Backend(crate::error::error_chain(&e))
}
