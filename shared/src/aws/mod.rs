//! The AWS adapters: DynamoDB item table, SQS queues, Secrets
//! Manager secrets. SDK clients are built once per process (per Lambda cold
//! start) from the standard AWS environment (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).

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
    let items = DynamoItemTable::new(aws_sdk_dynamodb::Client::new(sdk), aws.table_name.clone());
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), aws.queue_urls.clone());
    let secrets =
        SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(sdk), aws.secret_cache)
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
