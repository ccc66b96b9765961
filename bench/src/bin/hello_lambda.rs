//! The baseline of `infra/bench-coldstart.sh`: the lambda_runtime
//! hello-world (its `basic-lambda` example: the default tracing subscriber
//! and one handler that answers at once), built with the same profile as
//! the bootstraps it is compared with.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({ "statusCode": 200, "body": "hello" }))
    }))
    .await
}
