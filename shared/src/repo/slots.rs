//! Execution slots as stored: one partition per workspace, one item per
//! slot, expiring with its lease.

use super::{Repo, Versioned};
use crate::error::{StoreError, StoreResult};
use crate::ids::WorkspaceId;
use crate::model::{from_item, Slot};
use crate::ports::{Condition, Index, Query};

impl Repo {
    /// The workspace's slots held now (expired ones are absent).
    pub async fn live_slots(
        &self,
        workspace_id: &WorkspaceId,
    ) -> StoreResult<Vec<Versioned<Slot>>> {
        let page = self
            .table()
            .query(Query::partition(Index::Primary, Slot::partition(workspace_id)).limit(1000))
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

    /// The slot at `index`, if it is held now.
    pub async fn slot(
        &self,
        workspace_id: &WorkspaceId,
        index: u32,
    ) -> StoreResult<Option<Versioned<Slot>>> {
        let (pk, sk) = Slot::key(workspace_id, index);
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
        let (pk, sk) = Slot::key(&v.workspace_id, v.index);
        match self
            .table()
            .delete(&pk, &sk, Condition::Version(v.version))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
