//! Lambda: consumes the runs queue (SQS event source with
//! ReportBatchItemFailures) and executes runs.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hookrun_core::config::{AwsSettings, Settings};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookrun_core::lambda::init_logging();
    let sdk = hookrun_core::aws::lambda_sdk_config();
    let app = hookrun_core::aws::app(&sdk, &AwsSettings::from_env()?, Settings::from_env()?);
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            hookrun_core::lambda::handle_runs_batch(app, event.payload).await,
        )
    }))
    .await
}
