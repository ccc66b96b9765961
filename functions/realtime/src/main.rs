//! Lambda: API Gateway's WebSocket API (`$connect`, `$disconnect`, and the
//! channel's messages on `$default`): authenticates connections, records
//! what each subscribed to, and replays what a resuming client missed.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use hookrun_core::aws::websocket::ApiGatewayFanout;
use hookrun_core::config::{AwsSettings, Settings};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookrun_core::lambda::init_logging();
    let sdk = hookrun_core::aws::lambda_sdk_config();
    let aws = AwsSettings::from_env()?;
    let callback = aws
        .websocket_callback_url
        .clone()
        .ok_or("HOOKRUN_WEBSOCKET_CALLBACK_URL is required by the realtime function")?;
    let app = hookrun_core::aws::app(&sdk, &aws, Settings::from_env()?);
    let fanout = ApiGatewayFanout::new(&sdk, &callback, app.repo.clone());
    let (app, fanout) = (&app, &fanout);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<ApiGatewayProxyResponse, lambda_runtime::Error>(
                hookrun_core::lambda::handle_websocket_event(app, fanout, event.payload).await,
            )
        },
    ))
    .await
}
