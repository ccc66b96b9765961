//! The outbox relay of `hookrun serve --backend aws`: reads the table's
//! change stream as the `relay` Lambda's event source would, and keeps its
//! position in the table, so a restart resumes where it stopped and a
//! message written just before a crash is still sent.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::sync::watch;

use super::{backend, relay};
use crate::error::{StoreError, StoreResult};
use crate::ports::Queue;
use crate::repo::Repo;

/// How long an idle poller waits before asking the stream again.
const IDLE: Duration = Duration::from_millis(200);

pub struct StreamRelay {
    tables: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    repo: Repo,
    queue: Arc<dyn Queue>,
}

impl StreamRelay {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        table: String,
        repo: Repo,
        queue: Arc<dyn Queue>,
    ) -> Self {
        StreamRelay {
            tables: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            table,
            repo,
            queue,
        }
    }

    /// Relays everything written so far, then returns how many records
    /// carried messages.
    pub async fn drain(&self) -> StoreResult<usize> {
        let (_keep, mut running) = watch::channel(false);
        self.pass(false, &mut running).await
    }

    /// Relays until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if let Err(e) = self.pass(true, &mut shutdown).await {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    async fn stream_arn(&self) -> StoreResult<String> {
        self.tables
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(backend)?
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Backend(format!("table {} has no stream", self.table)))
    }

    /// One pass over every shard from the stored position: to the first
    /// empty page (`follow` false), or on until shutdown (`follow` true;
    /// a closed shard ends and the stream is described again).
    async fn pass(&self, follow: bool, shutdown: &mut watch::Receiver<bool>) -> StoreResult<usize> {
        let arn = self.stream_arn().await?;
        let shards = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .map_err(backend)?
            .stream_description()
            .map(|d| d.shards().to_vec())
            .unwrap_or_default();
        let mut relayed_total = 0;
        for shard in shards {
            let Some(shard_id) = shard.shard_id() else {
                continue;
            };
            let request = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard_id);
            let request = match self.repo.relay_position(shard_id).await? {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let mut iterator = request
                .send()
                .await
                .map_err(backend)?
                .shard_iterator()
                .map(str::to_owned);
            // The last record read: an idle poll asks again from it (an
            // iterator that followed a replaced shard would never see more),
            // and skips it by its event id.
            let mut last_seen: Option<(String, String)> = None;
            while let Some(it) = iterator {
                if *shutdown.borrow() {
                    return Ok(relayed_total);
                }
                let out = self
                    .streams
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .map_err(backend)?;
                let mut relayed = false;
                let mut fresh = 0;
                for record in out.records() {
                    let id = record.event_id().unwrap_or_default().to_owned();
                    if last_seen.as_ref().is_some_and(|(_, seen)| *seen == id) {
                        continue;
                    }
                    fresh += 1;
                    let outbox = record
                        .dynamodb()
                        .and_then(|d| d.new_image())
                        .and_then(|image| image.get(relay::OUTBOX_ATTRIBUTE))
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str);
                    if record.event_name().map(|e| e.as_str()) != Some("REMOVE")
                        && relay::relay(self.queue.as_ref(), outbox).await?
                    {
                        relayed = true;
                        relayed_total += 1;
                    }
                    if let Some(seq) = record.dynamodb().and_then(|d| d.sequence_number()) {
                        last_seen = Some((seq.to_owned(), id));
                    }
                }
                // Only after relaying: the position's own write is a stream
                // record too, and must not make the relay write again.
                if let (Some((seq, _)), true) = (&last_seen, relayed) {
                    self.repo.set_relay_position(shard_id, seq).await?;
                }
                iterator = out.next_shard_iterator().map(str::to_owned);
                if fresh == 0 {
                    if !follow {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE) => {}
                        _ = shutdown.changed() => {}
                    }
                    if iterator.is_some() {
                        if let Some((seq, _)) = &last_seen {
                            iterator = self
                                .streams
                                .get_shard_iterator()
                                .stream_arn(&arn)
                                .shard_id(shard_id)
                                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                                .sequence_number(seq)
                                .send()
                                .await
                                .map_err(backend)?
                                .shard_iterator()
                                .map(str::to_owned);
                        }
                    }
                }
            }
        }
        Ok(relayed_total)
    }
}
