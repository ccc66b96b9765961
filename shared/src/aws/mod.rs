//! The AWS adapters (DESIGN §3): DynamoDB item table, SQS queues, Secrets
//! Manager secrets. SDK clients are built once per process (per Lambda cold
//! start) from the standard AWS environment (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).

mod dynamo;
pub mod provision;
mod secrets;
mod sqs;

use std::sync::Arc;
use std::time::Duration;

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
    let items = DynamoItemTable::new(aws_sdk_dynamodb::Client::new(sdk), aws.table_name.clone());
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), aws.queue_urls.clone());
    let secrets = SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        Duration::from_secs(aws.secret_cache_seconds),
    );
    App::new(
        Arc::new(items),
        Arc::new(queue),
        Arc::new(secrets),
        settings,
    )
}

/// The whole error chain of an SDK error (its Display is only "service error").
pub(crate) fn backend<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError::Backend(format!("{}", aws_smithy_types_display(&e)))
}

fn aws_smithy_types_display(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
