//! Concurrency-key holds as stored: one item per key value of an agent,
//! naming the newest run admitted under it by `skip` or `replace`
//! (written with that run, see [`Repo::create_run`]).

use super::{Repo, Versioned};
use crate::error::{StoreError, StoreResult};
use crate::model::{from_item, KeyHold};
use crate::ports::Condition;

impl Repo {
    /// The hold of an agent's key value, if there is one.
    pub async fn key_hold(
        &self,
        workspace_id: &str,
        agent_id: &str,
        value: &str,
    ) -> StoreResult<Option<Versioned<KeyHold>>> {
        let (pk, sk) = KeyHold::key_of(workspace_id, agent_id, value);
        match self.table().get(&pk, &sk).await? {
            Some(item) => Ok(Some(Versioned {
                record: from_item(&item)?,
                version: item.version,
            })),
            None => Ok(None),
        }
    }

    /// Removes a hold as it was read (nothing happens when it has changed
    /// since: a newer run holds the key).
    pub async fn release_key_hold(&self, hold: &Versioned<KeyHold>) -> StoreResult<()> {
        let (pk, sk) = hold.storage_key();
        match self
            .table()
            .delete(&pk, &sk, Condition::Version(hold.version))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
