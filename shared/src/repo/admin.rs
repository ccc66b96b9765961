//! Workspaces, admin keys, the bootstrap marker and the relay's stream
//! position as stored.

use super::{create_op, Repo};
use crate::error::StoreResult;
use crate::ids::WorkspaceId;
use crate::model::{from_item, keys, AdminKey, Workspace};
use crate::ports::{Condition, Item, TxOp};

impl Repo {
    /// The last stream sequence number the in-process relay handled.
    pub async fn relay_position(&self, shard_id: &str) -> StoreResult<Option<String>> {
        let (pk, sk) = keys::relay_position(shard_id);
        Ok(self
            .table()
            .get(&pk, &sk)
            .await?
            .and_then(|item| item.data["sequence_number"].as_str().map(str::to_owned)))
    }

    pub async fn set_relay_position(&self, shard_id: &str, seq: &str) -> StoreResult<()> {
        let (pk, sk) = keys::relay_position(shard_id);
        let item = Item::new(pk, sk, serde_json::json!({ "sequence_number": seq }));
        self.table().put(item, Condition::None).await
    }

    /// The admin key with this hash, if any.
    pub async fn admin_key(&self, hash: &str) -> StoreResult<Option<AdminKey>> {
        let (pk, sk) = AdminKey::key(hash);
        match self.table().get(&pk, &sk).await? {
            Some(item) => Ok(Some(from_item(&item)?)),
            None => Ok(None),
        }
    }

    pub async fn add_admin_key(&self, key: &AdminKey) -> StoreResult<()> {
        self.table().put(key.to_item(), Condition::NotExists).await
    }

    /// A new workspace with its first admin key, in one transaction.
    pub async fn create_workspace(&self, ws: &Workspace, key: &AdminKey) -> StoreResult<()> {
        self.transact(vec![
            create_op(ws),
            TxOp::Put(key.to_item(), Condition::NotExists),
        ])
        .await
    }

    /// The default workspace a store's first start made, if it did.
    pub async fn bootstrapped_workspace(&self) -> StoreResult<Option<WorkspaceId>> {
        let (pk, sk) = keys::bootstrap();
        Ok(self.table().get(&pk, &sk).await?.and_then(|item| {
            item.data["workspace_id"]
                .as_str()
                .and_then(WorkspaceId::parse)
        }))
    }

    /// The first start's writes, all or none: a crash can never leave a
    /// marker without its workspace and key, and a concurrent first start
    /// loses cleanly (`ConditionFailed`).
    pub async fn bootstrap(&self, ws: &Workspace, key: &AdminKey) -> StoreResult<()> {
        let (pk, sk) = keys::bootstrap();
        let marker = Item::new(pk, sk, serde_json::json!({ "workspace_id": ws.id }));
        self.transact(vec![
            TxOp::Put(marker, Condition::NotExists),
            create_op(ws),
            TxOp::Put(key.to_item(), Condition::NotExists),
        ])
        .await
    }
}
