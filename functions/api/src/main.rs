//! Lambda: the management API. Clients and config are built once per cold
//! start; every request goes through the shared router.

use hookrun_core::config::{AwsSettings, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookrun_core::lambda::init_logging();
    let sdk = hookrun_core::aws::lambda_sdk_config();
    let app = hookrun_core::aws::app(&sdk, &AwsSettings::from_env()?, Settings::from_env()?);
    let router = hookrun_core::lambda::http_handler(hookrun_core::http::api_router(app));
    lambda_http::run(router).await
}
