//! Lambda: the public trigger routes. Clients and config are built once per
//! cold start; every request goes through the shared router.

use hookrun_core::config::{AwsSettings, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = hookrun_core::aws::sdk_config().await;
    let app = hookrun_core::aws::app(&sdk, &AwsSettings::from_env()?, Settings::from_env()?);
    let router = hookrun_core::lambda::http_handler(hookrun_core::http::ingress_router(app));
    lambda_http::run(router).await
}
