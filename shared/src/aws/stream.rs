//! The outbox relay of `hookrun serve --backend aws`: reads the table's
//! change stream as the `relay` Lambda's event source would, every open
//! shard in turn, and keeps its position in the table, so a restart resumes
//! where it stopped and a message written just before a crash is still
//! sent. (A first start, with no position kept, reads each shard from its
//! oldest record: at most the stream's 24 h, sent again at least once.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{backend, relay};
use crate::error::{StoreError, StoreResult};
use crate::ports::Queue;
use crate::repo::Repo;

/// How long an idle relay waits before asking the stream again.
const IDLE: Duration = Duration::from_millis(200);
/// How often the list of shards is read again (shards split and close).
const RESHARD: Duration = Duration::from_secs(10);

pub struct StreamRelay {
    tables: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    repo: Repo,
    queue: Arc<dyn Queue>,
}

/// Where the relay is in one shard.
struct ShardCursor {
    iterator: Option<String>,
    /// The last record read (sequence number, event id): an idle read asks
    /// again from it, and skips it by its event id. (An iterator that
    /// followed a shard the emulator replaced would never see more.)
    last_seen: Option<(String, String)>,
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
        self.relay(false, &mut running).await
    }

    /// Relays until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            if let Err(e) = self.relay(true, &mut shutdown).await {
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

    /// Every shard id of the stream, through DescribeStream's pages.
    async fn shard_ids(&self, arn: &str) -> StoreResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(backend)?;
            let Some(d) = out.stream_description() else {
                return Ok(ids);
            };
            ids.extend(
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned)),
            );
            match d.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(ids),
            }
        }
    }

    async fn iterator(
        &self,
        arn: &str,
        shard_id: &str,
        after: Option<&str>,
        at: bool,
    ) -> StoreResult<Option<String>> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard_id);
        let request = match after {
            Some(seq) => request
                .shard_iterator_type(if at {
                    ShardIteratorType::AtSequenceNumber
                } else {
                    ShardIteratorType::AfterSequenceNumber
                })
                .sequence_number(seq),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        Ok(request
            .send()
            .await
            .map_err(backend)?
            .shard_iterator()
            .map(str::to_owned))
    }

    /// Reads every open shard in turn, one page each per round: until a
    /// round finds nothing new (`follow` false), or until shutdown.
    async fn relay(
        &self,
        follow: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> StoreResult<usize> {
        let arn = self.stream_arn().await?;
        let mut cursors: HashMap<String, ShardCursor> = HashMap::new();
        let mut described: Option<Instant> = None;
        let mut relayed_total = 0;
        loop {
            if *shutdown.borrow() {
                return Ok(relayed_total);
            }
            if described.is_none_or(|at| at.elapsed() >= RESHARD) {
                for id in self.shard_ids(&arn).await? {
                    if cursors.contains_key(&id) {
                        continue;
                    }
                    let position = self.repo.relay_position(&id).await?;
                    let iterator = self.iterator(&arn, &id, position.as_deref(), false).await?;
                    cursors.insert(
                        id,
                        ShardCursor {
                            iterator,
                            last_seen: None,
                        },
                    );
                }
                described = Some(Instant::now());
            }
            let mut fresh_total = 0;
            for (shard_id, cursor) in cursors.iter_mut() {
                let Some(it) = cursor.iterator.take() else {
                    continue;
                };
                let out = self
                    .streams
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .map_err(backend)?;
                let (mut relayed, mut fresh) = (false, 0);
                for record in out.records() {
                    let id = record.event_id().unwrap_or_default().to_owned();
                    if cursor
                        .last_seen
                        .as_ref()
                        .is_some_and(|(_, seen)| *seen == id)
                    {
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
                        cursor.last_seen = Some((seq.to_owned(), id));
                    }
                }
                // Only after relaying: the position's own write is a stream
                // record too, and must not make the relay write again.
                if let (Some((seq, _)), true) = (&cursor.last_seen, relayed) {
                    self.repo.set_relay_position(shard_id, seq).await?;
                }
                cursor.iterator = match (out.next_shard_iterator(), fresh, &cursor.last_seen) {
                    // A closed shard: nothing more to read in it.
                    (None, _, _) => None,
                    (Some(next), n, _) if n > 0 => Some(next.to_owned()),
                    // Idle: ask again from the last record read.
                    (Some(_), _, Some((seq, _))) => {
                        self.iterator(&arn, shard_id, Some(seq), true).await?
                    }
                    (Some(next), _, None) => Some(next.to_owned()),
                };
                fresh_total += fresh;
            }
            if fresh_total == 0 {
                if !follow {
                    return Ok(relayed_total);
                }
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}
