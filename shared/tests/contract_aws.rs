//! The port contract suites on the AWS adapters, against the local AWS
//! emulator (moto) that `./infra/test.sh` starts and points
//! `AWS_ENDPOINT_URL` at. Marked `ignore` so a bare `cargo test` without the
//! emulator does not fail on them; the test command runs them with
//! `--include-ignored`.

use std::time::Duration;

use hookrun_core::aws::{self, provision, DynamoItemTable, SecretsManagerStore, SqsQueue};
use hookrun_core::contract;

async fn setup() -> (aws_config::SdkConfig, hookrun_core::config::AwsSettings) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run these tests through ./infra/test.sh, which starts the local AWS emulator"
    );
    let sdk = aws::sdk_config().await;
    let prefix = format!("contract-{}", ulid::Ulid::new().to_string().to_lowercase());
    let settings = provision::provision(&sdk, &prefix)
        .await
        .expect("emulator resources are created");
    (sdk, settings)
}

fn table(sdk: &aws_config::SdkConfig, s: &hookrun_core::config::AwsSettings) -> DynamoItemTable {
    DynamoItemTable::new(aws_sdk_dynamodb::Client::new(sdk), s.table_name.clone())
}

fn queue(sdk: &aws_config::SdkConfig, s: &hookrun_core::config::AwsSettings) -> SqsQueue {
    SqsQueue::new(aws_sdk_sqs::Client::new(sdk), s.queue_urls.clone())
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_conditional_writes() {
    let (sdk, s) = setup().await;
    contract::items_conditional_writes(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_put_batch() {
    let (sdk, s) = setup().await;
    contract::items_put_batch(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_ttl() {
    let (sdk, s) = setup().await;
    contract::items_ttl(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_query_and_paging() {
    let (sdk, s) = setup().await;
    contract::items_query_and_paging(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_outbox() {
    let (sdk, s) = setup().await;
    let t = table(&sdk, &s);
    let q = std::sync::Arc::new(queue(&sdk, &s));
    // The repository the relay keeps its stream position in.
    let repo = hookrun_core::repo::Repo::new(std::sync::Arc::new(table(&sdk, &s)));
    let relay =
        hookrun_core::aws::stream::StreamRelay::new(&sdk, s.table_name.clone(), repo, q.clone());
    contract::items_outbox(&t, q.as_ref(), "t-", || async {
        relay.drain().await.expect("the stream relays");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_transactions() {
    let (sdk, s) = setup().await;
    contract::items_transactions(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_items_counters() {
    let (sdk, s) = setup().await;
    contract::items_counters(&table(&sdk, &s), "t-").await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_queue_semantics() {
    let (sdk, s) = setup().await;
    contract::queue_semantics(&queue(&sdk, &s)).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_queue_dead_letter() {
    let (sdk, s) = setup().await;
    contract::queue_dead_letter(&queue(&sdk, &s), provision::MAX_RECEIVE_COUNT).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_secrets_roundtrip() {
    let (sdk, _) = setup().await;
    let store = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO);
    contract::secrets_roundtrip(&store, "t-").await;
}

/// The in-process cache answers repeated reads, and a put through the same
/// store is seen at once.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_secrets_cache() {
    use hookrun_core::ports::{SecretStore, SecretVersions};
    let (sdk, _) = setup().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let cached = SecretsManagerStore::new(client.clone(), Duration::from_secs(300));
    let other = SecretsManagerStore::new(client, Duration::ZERO);
    let name = format!("hookrun/cache-{}/agents/a", ulid::Ulid::new());
    cached
        .put(&name, &SecretVersions::new("one".into()))
        .await
        .unwrap();
    assert_eq!(cached.get(&name).await.unwrap().unwrap().current, "one");
    // Another process rotates it: the cache still answers the old value...
    other
        .put(&name, &SecretVersions::new("two".into()))
        .await
        .unwrap();
    assert_eq!(cached.get(&name).await.unwrap().unwrap().current, "one");
    // ...and a fresh read (after the refresh interval) sees the new one.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        cached.get_fresh(&name).await.unwrap().unwrap().current,
        "two"
    );
    assert_eq!(cached.get(&name).await.unwrap().unwrap().current, "two");
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_secrets_master_keys() {
    let (sdk, s) = setup().await;
    let store = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO)
        .with_master_key(s.master_key_secret.clone());
    contract::secrets_master_keys(&store).await;
}

/// The Lambda functions' SDK configuration (built from the environment
/// alone, without the default provider chain) reaches all three services.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn moto_lambda_sdk_config() {
    let (_, s) = setup().await;
    let sdk = aws::lambda_sdk_config();
    assert_eq!(
        sdk.region().map(|r| r.as_ref()),
        std::env::var("AWS_REGION").ok().as_deref()
    );
    contract::items_conditional_writes(&table(&sdk, &s), "lambda-").await;
    contract::queue_semantics(&queue(&sdk, &s)).await;
    let store = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), Duration::ZERO);
    contract::secrets_roundtrip(&store, "lambda-").await;
}
