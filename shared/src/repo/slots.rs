//! Execution slots as stored: one partition per pool (a workspace's, or
//! one agent's), one item per slot, expiring with its lease; and the runs
//! waiting for an agent's slot, one expiring item each, oldest first.

use serde_json::json;

use super::{Repo, Versioned};
use crate::error::{StoreError, StoreResult};
use crate::ids::{RunId, WorkspaceId};
use crate::model::{from_item, Pool, Slot};
use crate::ports::{Condition, Index, Item, Query};

/// Waiting runs read at most (the rest wait behind them anyway).
const MAX_WAITERS_READ: usize = 1000;

impl Repo {
    /// The workspace's slots held now (expired ones are absent).
    pub async fn live_slots(
        &self,
        workspace_id: &WorkspaceId,
    ) -> StoreResult<Vec<Versioned<Slot>>> {
        self.live_slots_of(&Pool::Workspace(workspace_id.clone()))
            .await
    }

    /// A pool's slots held now.
    pub async fn live_slots_of(&self, pool: &Pool) -> StoreResult<Vec<Versioned<Slot>>> {
        let page = self
            .table()
            .query(Query::partition(Index::Primary, pool.partition()).limit(1000))
            .await?;
        page.items
            .iter()
            .map(|item| {
                Ok(Versioned {
                    record: from_item(item)?,
                    version: item.version,
                })
            })
            .collect()
    }

    /// The workspace's slot at `index`, if it is held now.
    pub async fn slot(
        &self,
        workspace_id: &WorkspaceId,
        index: u32,
    ) -> StoreResult<Option<Versioned<Slot>>> {
        self.slot_of(&Pool::Workspace(workspace_id.clone()), index)
            .await
    }

    /// A pool's slot at `index`, if it is held now.
    pub async fn slot_of(&self, pool: &Pool, index: u32) -> StoreResult<Option<Versioned<Slot>>> {
        let (pk, sk) = pool.key(index);
        match self.table().get(&pk, &sk).await? {
            Some(item) => Ok(Some(Versioned {
                record: from_item(&item)?,
                version: item.version,
            })),
            None => Ok(None),
        }
    }

    /// Takes a free (or expired) slot: None when somebody holds it. Each
    /// hold starts at a version of its own (`version`, random), so a holder
    /// whose hold expired can never renew or release the next holder's.
    pub async fn take_slot(
        &self,
        slot: Slot,
        version: u64,
    ) -> StoreResult<Option<Versioned<Slot>>> {
        match self
            .table()
            .put(slot.to_item(version), Condition::NotExists)
            .await
        {
            Ok(()) => Ok(Some(Versioned {
                record: slot,
                version,
            })),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Extends a held slot: false when it was lost (expired and taken).
    pub async fn renew_slot(&self, v: &mut Versioned<Slot>) -> StoreResult<bool> {
        let next = v.version + 1;
        match self
            .table()
            .put(v.record.to_item(next), Condition::Version(v.version))
            .await
        {
            Ok(()) => {
                v.version = next;
                Ok(true)
            }
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives a slot back (nothing happens when it was lost already).
    pub async fn release_slot(&self, v: &Versioned<Slot>) -> StoreResult<()> {
        let (pk, sk) = v.pool().key(v.index);
        match self
            .table()
            .delete(&pk, &sk, Condition::Version(v.version))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Notes (or keeps noting, until `expires_at`) that `run_id` waits for
    /// a slot of `pool`.
    pub async fn wait_for_slot(
        &self,
        pool: &Pool,
        run_id: &RunId,
        expires_at: i64,
    ) -> StoreResult<()> {
        let item = Item::new(
            pool.waiting_partition(),
            run_id.to_string(),
            json!({ "run_id": run_id }),
        )
        .with_expiry(Some(expires_at));
        self.table().put(item, Condition::None).await
    }

    /// The runs waiting for a slot of `pool` now, oldest first.
    pub async fn slot_waiters(&self, pool: &Pool) -> StoreResult<Vec<String>> {
        let page = self
            .table()
            .query(
                Query::partition(Index::Primary, pool.waiting_partition()).limit(MAX_WAITERS_READ),
            )
            .await?;
        Ok(page.items.into_iter().map(|i| i.sk).collect())
    }

    /// `run_id` waits no more.
    pub async fn stop_waiting(&self, pool: &Pool, run_id: &RunId) -> StoreResult<()> {
        self.table()
            .delete(&pool.waiting_partition(), run_id.as_str(), Condition::None)
            .await
    }
}
