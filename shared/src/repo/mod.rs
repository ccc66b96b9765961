//! The typed repository over the item table: what the services use
//! instead of the [`ItemTable`] port. Records know their keys
//! ([`crate::model::Record`]); this module knows how to load, create,
//! save (with optimistic concurrency on the item's version), delete and
//! page through them, so that dance is written once. Record-specific
//! storage (token lookups, dedup keys, counters, log lines, invocations)
//! lives in the submodules, one per concern.

pub mod admin;
pub mod deliveries;
pub mod holds;
pub mod ratelimit;
pub mod runs;
pub mod slots;
pub mod triggers;

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{Error, StoreError, StoreResult};
use crate::ids::{is_plausible_id, WorkspaceId};
use crate::model::{from_item, Record, Scoped};
use crate::ports::{Condition, Index, ItemTable, OutboxMessage, Query, TxOp};

/// A record with the version of the item it was read from: the condition
/// its next save is made on.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub record: T,
    pub version: u64,
}

impl<T> std::ops::Deref for Versioned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.record
    }
}

impl<T> std::ops::DerefMut for Versioned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.record
    }
}

pub use crate::model::listing::{Listing, Unreadable};

/// Pages of the underlying query a filtered listing reads before it
/// returns what it has (with a cursor to go on), so a rare filter value
/// cannot make one request read a whole history.
pub const MAX_PAGES_PER_LISTING: usize = 20;

#[derive(Clone)]
pub struct Repo {
    items: Arc<dyn ItemTable>,
}

impl Repo {
    pub fn new(items: Arc<dyn ItemTable>) -> Self {
        Repo { items }
    }

    /// The port itself, for the submodules.
    fn table(&self) -> &dyn ItemTable {
        self.items.as_ref()
    }

    /// A record by its id alone, with its version: `None` for ids that
    /// cannot be ours (checked before they shape a key) and for missing items.
    pub async fn get<T: Record>(&self, id: &str) -> StoreResult<Option<Versioned<T>>> {
        if !is_plausible_id(id) {
            return Ok(None);
        }
        let (pk, sk) = T::key_for(id);
        match self.items.get(&pk, &sk).await? {
            Some(item) => Ok(Some(Versioned {
                record: from_item(&item)?,
                version: item.version,
            })),
            None => Ok(None),
        }
    }

    /// A record of this workspace; another workspace's record is as
    /// missing as one that never existed.
    pub async fn find<T: Scoped>(
        &self,
        workspace_id: &WorkspaceId,
        id: &str,
    ) -> Result<Versioned<T>, Error> {
        self.get::<T>(id)
            .await?
            .filter(|v| v.record.workspace_id() == workspace_id)
            .ok_or(Error::NotFound(T::ENTITY))
    }

    /// Writes a new record (version 1); `ConditionFailed` if one exists.
    pub async fn create<T: Record>(&self, record: &T) -> StoreResult<()> {
        self.items
            .put(record.to_item(1), Condition::NotExists)
            .await
    }

    /// Writes the record if nobody changed it since it was read, and moves
    /// `v` to the new version; `ConditionFailed` if somebody did.
    pub async fn save<T: Record>(&self, v: &mut Versioned<T>) -> StoreResult<()> {
        let next = v.version + 1;
        v.record.set_version(next);
        self.items
            .put(v.record.to_item(next), Condition::Version(v.version))
            .await?;
        v.version = next;
        Ok(())
    }

    /// [`Repo::save`] where losing the race is an answer, not an error:
    /// false when somebody changed the record meanwhile.
    pub async fn try_save<T: Record>(&self, v: &mut Versioned<T>) -> StoreResult<bool> {
        match self.save(v).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`Repo::try_save`], with queue messages that are sent if and only if
    /// the save happens (the transactional outbox).
    pub async fn try_save_with_messages<T: Record>(
        &self,
        v: &mut Versioned<T>,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<bool> {
        match self
            .items
            .transact_with_messages(vec![save_op(v)], messages)
            .await
        {
            Ok(()) => {
                v.saved();
                Ok(true)
            }
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a new record with queue messages sent if and only if it is
    /// created: false when it existed (nothing is sent then).
    pub async fn create_with_messages<T: Record>(
        &self,
        record: &T,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<bool> {
        match self
            .items
            .transact_with_messages(vec![create_op(record)], messages)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the record if nobody changed it since it was read.
    pub async fn delete<T: Record>(&self, v: &Versioned<T>) -> StoreResult<()> {
        let item = v.record.to_item(v.version);
        self.items
            .delete(&item.pk, &item.sk, Condition::Version(v.version))
            .await
    }

    /// One page of a query, as records; items that do not decode are
    /// reported in `unreadable` (and logged), not fatal.
    pub async fn page<T: DeserializeOwned>(&self, query: Query) -> StoreResult<Listing<T>> {
        let page = self.items.query(query).await?;
        let mut out = Listing::empty();
        for item in &page.items {
            match from_item(item) {
                Ok(record) => out.data.push(record),
                Err(e) => {
                    let id = item.data["id"]
                        .as_str()
                        .map_or_else(|| item.sk.clone(), str::to_owned);
                    tracing::error!(pk = %item.pk, sk = %item.sk, error = %e, "a stored record does not decode");
                    out.unreadable.push(Unreadable {
                        id,
                        error: e.to_string(),
                    });
                }
            }
        }
        out.next_cursor = page.next_cursor;
        Ok(out)
    }

    /// Up to `limit` records of `query` that `keep` accepts, reading at
    /// most [`MAX_PAGES_PER_LISTING`] pages. Each page asks only for what
    /// is still missing, so every item read is either returned or filtered
    /// out and the cursor handed back is exact.
    pub async fn page_filtered<T: DeserializeOwned>(
        &self,
        query: Query,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> StoreResult<Listing<T>> {
        let mut out = Listing::empty();
        let mut cursor = query.cursor.clone();
        for _ in 0..MAX_PAGES_PER_LISTING {
            let missing = limit.saturating_sub(out.data.len() + out.unreadable.len());
            let q = query.clone().limit(missing.max(1)).after(cursor.take());
            let page = self.page::<T>(q).await?;
            out.data.extend(page.data.into_iter().filter(|r| keep(r)));
            out.unreadable.extend(page.unreadable);
            cursor = page.next_cursor;
            if out.data.len() + out.unreadable.len() >= limit || cursor.is_none() {
                break;
            }
        }
        out.next_cursor = cursor;
        Ok(out)
    }

    /// Every record of a query (small, bounded partitions only).
    pub async fn all<T: DeserializeOwned>(&self, query: Query) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.page::<T>(query.clone().after(cursor)).await?;
            out.extend(page.data);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// A listing of a GSI partition, newest first when `newest_first`.
    pub fn gsi_query(partition: String, newest_first: bool) -> Query {
        let q = Query::partition(Index::Gsi1, partition);
        if newest_first {
            q.backward()
        } else {
            q
        }
    }

    /// Applies all operations or none.
    pub async fn transact(&self, ops: Vec<TxOp>) -> StoreResult<()> {
        self.items.transact(ops).await
    }
}

/// The operation that creates `record` in a transaction.
pub fn create_op<T: Record>(record: &T) -> TxOp {
    TxOp::Put(record.to_item(1), Condition::NotExists)
}

/// The operation that saves `v` in a transaction; apply
/// [`Versioned::saved`] once the transaction succeeded.
pub fn save_op<T: Record>(v: &mut Versioned<T>) -> TxOp {
    let next = v.version + 1;
    v.record.set_version(next);
    TxOp::Put(v.record.to_item(next), Condition::Version(v.version))
}

/// The operation that deletes `v` (if unchanged) in a transaction.
pub fn delete_op<T: Record>(v: &Versioned<T>) -> TxOp {
    let item = v.record.to_item(v.version);
    TxOp::Delete {
        pk: item.pk,
        sk: item.sk,
        condition: Condition::Version(v.version),
    }
}

/// The operation that removes whatever is at `key`.
pub fn remove_op((pk, sk): crate::model::Key) -> TxOp {
    TxOp::Delete {
        pk,
        sk,
        condition: Condition::None,
    }
}

impl<T> Versioned<T> {
    /// After a transaction with [`save_op`] succeeded.
    pub fn saved(&mut self) {
        self.version += 1;
    }
}
