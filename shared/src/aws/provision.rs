//! Creates the table and queues the AWS backend needs, for local emulators
//! and tests (`hookrun serve --backend aws --provision`). Deployed stacks get
//! theirs from template.yaml, which this mirrors: same keys, GSI, TTL
//! attribute and redrive policy.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::backend;
use crate::config::{AwsSettings, QueueUrls};
use crate::error::{StoreError, StoreResult};

/// Receives before a message moves to its dead-letter queue (as in template.yaml).
pub const MAX_RECEIVE_COUNT: u32 = 5;

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Creates `{prefix}` (table) and `{prefix}-runs`, `{prefix}-runs-dlq`,
/// `{prefix}-deliveries`, `{prefix}-deliveries-dlq` (queues) when missing,
/// and returns settings pointing at them.
pub async fn provision(sdk: &aws_config::SdkConfig, prefix: &str) -> StoreResult<AwsSettings> {
    create_table(&aws_sdk_dynamodb::Client::new(sdk), prefix).await?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (runs, runs_dlq) = queue_pair(&sqs, &format!("{prefix}-runs"), 960).await?;
    let (deliveries, deliveries_dlq) =
        queue_pair(&sqs, &format!("{prefix}-deliveries"), 90).await?;
    let master_key = format!("{prefix}/master-key");
    create_master_key(&aws_sdk_secretsmanager::Client::new(sdk), &master_key).await?;
    Ok(AwsSettings {
        table_name: prefix.to_owned(),
        queue_urls: QueueUrls {
            runs: Some(runs),
            runs_dlq: Some(runs_dlq),
            deliveries: Some(deliveries),
            deliveries_dlq: Some(deliveries_dlq),
        },
        secret_cache: std::time::Duration::from_secs(5),
        master_key_secret: Some(master_key),
        websocket_callback_url: None,
        scheduler: None,
    })
}

async fn create_master_key(client: &aws_sdk_secretsmanager::Client, name: &str) -> StoreResult<()> {
    if client
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    client
        .create_secret()
        .name(name)
        .description("hookrun master key (provisioned)")
        .secret_string(crate::ids::random_hex(32))
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

fn key(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(invalid)
}

fn attr(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(invalid)
}

async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> StoreResult<()> {
    let gsi = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(invalid)
    };
    if let Ok(table) = client.describe_table().table_name(name).send().await {
        // A table made before the second index: add it (a workspace's
        // runs; those written before it are not in it).
        let has_gsi2 = table
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .any(|g| g.index_name() == Some(super::dynamo::GSI2));
        if !has_gsi2 {
            let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                .index_name(super::dynamo::GSI2)
                .key_schema(key("gsi2pk", KeyType::Hash)?)
                .key_schema(key("gsi2sk", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(invalid)?;
            client
                .update_table()
                .table_name(name)
                .attribute_definitions(attr("gsi2pk")?)
                .attribute_definitions(attr("gsi2sk")?)
                .global_secondary_index_updates(
                    aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                        .create(create)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| StoreError::Backend(format!("adding index gsi2 to {name}: {e:?}")))?;
        }
        return Ok(());
    }
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi(super::dynamo::GSI1, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(gsi(super::dynamo::GSI2, "gsi2pk", "gsi2sk")?)
        // The outbox relay reads new images (docs/ARCHITECTURE.md, "Atomic accept").
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(backend)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

/// A work queue (visibility as in template.yaml: above its consumer's
/// timeout) and its dead-letter queue; returns both URLs.
async fn queue_pair(
    client: &aws_sdk_sqs::Client,
    name: &str,
    visibility_secs: u32,
) -> StoreResult<(String, String)> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(backend)?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(backend)?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| StoreError::Backend("dead-letter queue has no ARN".into()))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT.to_string() });
    let url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .send()
        .await
        .map_err(backend)?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    Ok((url, dlq_url))
}
