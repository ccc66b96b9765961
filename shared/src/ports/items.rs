//! The item table: a DynamoDB-shaped key/value store.
//!
//! The data model is written once against this port. It only offers what
//! DynamoDB does in a single call (GetItem, conditional PutItem/DeleteItem,
//! Query on the table or on one GSI with a key-prefix condition and a cursor,
//! TransactWriteItems, an atomic counter via UpdateItem), so the AWS adapter
//! maps each operation to one request and no Scan is ever needed.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::queue::QueueId;
use crate::error::StoreResult;

/// One stored item. `data` is the document; the key attributes, the TTL and
/// the optimistic-concurrency version live beside it so both engines can index
/// and condition on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Keys of the first global secondary index (`gsi1pk`, `gsi1sk`), if
    /// the item is projected into it.
    pub gsi1: Option<(String, String)>,
    /// Keys of the second (`gsi2pk`, `gsi2sk`): a second way to list the
    /// same items (runs by workspace, besides by agent).
    pub gsi2: Option<(String, String)>,
    /// Unix seconds after which the item no longer exists for readers
    /// (DynamoDB TTL deletes lazily, so adapters also filter on read).
    pub expires_at: Option<i64>,
    /// Written as given; conditions compare against the stored value.
    pub version: u64,
    pub data: Value,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Value) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            gsi1: None,
            gsi2: None,
            expires_at: None,
            version: 1,
            data,
        }
    }

    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    pub fn with_gsi2(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi2 = Some((pk.into(), sk.into()));
        self
    }

    pub fn with_expiry(mut self, unix_seconds: Option<i64>) -> Self {
        self.expires_at = unix_seconds;
        self
    }
}

/// The condition a write must meet, checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional.
    None,
    /// No live item with this key exists (an expired item counts as absent).
    NotExists,
    /// A live item with this key exists.
    Exists,
    /// A live item exists and its version is exactly this.
    Version(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// The table's own key: partition `pk`, sort `sk`.
    Primary,
    /// The first GSI: partition `gsi1pk`, sort `gsi1sk`.
    Gsi1,
    /// The second GSI: partition `gsi2pk`, sort `gsi2sk`.
    Gsi2,
}

impl Index {
    /// Its partition and sort key attributes.
    pub fn key_names(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => ("pk", "sk"),
            Index::Gsi1 => ("gsi1pk", "gsi1sk"),
            Index::Gsi2 => ("gsi2pk", "gsi2sk"),
        }
    }
}

/// A Query: one partition, optionally narrowed to sort keys with a prefix.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk_prefix: Option<String>,
    /// Only sort keys from the first to the second, both included (not
    /// with `sk_prefix`: DynamoDB takes one sort key condition).
    pub sk_between: Option<(String, String)>,
    /// Ascending sort-key order when true, descending when false.
    pub forward: bool,
    pub limit: usize,
    /// A cursor from a previous page of the same query.
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(index: Index, pk: impl Into<String>) -> Self {
        Query {
            index,
            pk: pk.into(),
            sk_prefix: None,
            sk_between: None,
            forward: true,
            limit: 50,
            cursor: None,
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = Some(prefix.into());
        self
    }

    pub fn between(mut self, low: impl Into<String>, high: impl Into<String>) -> Self {
        self.sk_between = Some((low.into(), high.into()));
        self
    }

    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow; opaque to callers.
    pub next_cursor: Option<String>,
}

/// One operation of an all-or-nothing transaction.
#[derive(Debug, Clone)]
pub enum TxOp {
    Put(Item, Condition),
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

/// A queue message written together with items (a transactional outbox):
/// durable when the write is, delivered at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub queue: QueueId,
    pub body: String,
    /// Hidden this long after it is delivered to its queue (at most 15 min).
    #[serde(with = "secs")]
    pub delay: Duration,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Largest transaction DynamoDB's TransactWriteItems accepts.
pub const MAX_TX_OPS: usize = 100;

#[async_trait]
pub trait ItemTable: Send + Sync + 'static {
    /// The live item with this key, if any.
    async fn get(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>>;
    /// Writes the whole item if `condition` holds, else `ConditionFailed`.
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()>;
    /// Removes the item if `condition` holds, else `ConditionFailed`.
    /// Deleting a missing item with `Condition::None` succeeds.
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> StoreResult<()>;
    /// One page of a query, in sort-key order.
    async fn query(&self, query: Query) -> StoreResult<Page>;
    /// Applies every operation or none; `ConditionFailed` if any condition fails.
    async fn transact(&self, ops: Vec<TxOp>) -> StoreResult<()>;
    /// Unconditional puts that need not be atomic (log lines): on DynamoDB
    /// a BatchWriteItem, which costs half a transaction. Items may become
    /// visible one by one; on an error some may have been written.
    async fn put_batch(&self, items: Vec<Item>) -> StoreResult<()> {
        for chunk in items.chunks(MAX_TX_OPS) {
            let ops = chunk
                .iter()
                .map(|i| TxOp::Put(i.clone(), Condition::None))
                .collect();
            self.transact(ops).await?;
        }
        Ok(())
    }
    /// [`ItemTable::transact`], and with it `messages`: when this returns
    /// Ok, every message will reach its queue at least once; when it fails,
    /// neither the writes nor the messages happened. The first operation
    /// must be a `Put`: an adapter that relays messages through the table's
    /// change stream carries them on that item (docs/ARCHITECTURE.md,
    /// "Atomic accept").
    async fn transact_with_messages(
        &self,
        ops: Vec<TxOp>,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<()>;
    /// Atomically adds `by` to the numeric field `counter` of the document at
    /// this key, creating the item (with `expires_at`) when absent, unless the
    /// result would exceed `max`, in which case nothing changes and
    /// `ConditionFailed` is returned. Returns the new value. `note`, when
    /// given, is stored beside the count as the document's `note` (the
    /// latest one wins). This is DynamoDB's `UpdateItem` with a condition,
    /// for rate counters and rejection tallies.
    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        by: i64,
        max: i64,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> StoreResult<i64>;
}
