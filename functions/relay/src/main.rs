//! Lambda: the outbox relay. Consumes the table's change stream (DynamoDB
//! stream event source, filtered to items that carry messages) and sends
//! the messages to their queues.

use hookrun_core::aws::{SqsClient, SqsQueue};
use hookrun_core::config::AwsSettings;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookrun_core::lambda::init_logging();
    let sdk = hookrun_core::aws::lambda_sdk_config();
    let aws = AwsSettings::from_env()?;
    let queue = SqsQueue::new(SqsClient::new(&sdk), aws.queue_urls);
    let queue = &queue;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, lambda_runtime::Error>(
            hookrun_core::lambda::handle_stream_batch(queue, event.payload).await,
        )
    }))
    .await
}
