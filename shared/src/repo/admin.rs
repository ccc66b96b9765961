//! Workspaces, admin keys, the bootstrap marker and the relay's stream
//! position as stored.

use chrono::{DateTime, Utc};

use super::{create_op, save_op, Listing, Repo, Versioned};
use crate::error::StoreResult;
use crate::ids::{is_plausible_id, WorkspaceId};
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

    /// A page of the workspace's admin keys, oldest first.
    pub async fn admin_keys(
        &self,
        workspace_id: &WorkspaceId,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Listing<AdminKey>> {
        let q = Self::gsi_query(AdminKey::list_partition(workspace_id), false)
            .limit(limit)
            .after(cursor);
        self.page(q).await
    }

    /// The workspace's admin key with this id, if any.
    pub async fn admin_key_by_id(
        &self,
        workspace_id: &WorkspaceId,
        id: &str,
    ) -> StoreResult<Option<AdminKey>> {
        if !is_plausible_id(id) {
            return Ok(None);
        }
        let q = Self::gsi_query(AdminKey::list_partition(workspace_id), false)
            .prefix(id.to_owned())
            .limit(1);
        let page: Listing<AdminKey> = self.page(q).await?;
        Ok(page.data.into_iter().find(|k| k.id == id))
    }

    /// Deletes the key (it authenticates nothing from then on) and its
    /// last-use mark, and saves `workspace` unchanged but for its version:
    /// so revocations in one workspace happen one after the other (a
    /// second one made on the same version fails), and a revocation's
    /// check that another admin key remains cannot race another's.
    /// `ConditionFailed` when the key is already gone or the workspace
    /// changed meanwhile.
    pub async fn delete_admin_key(
        &self,
        key: &AdminKey,
        workspace: &mut Versioned<Workspace>,
    ) -> StoreResult<()> {
        let (pk, sk) = AdminKey::key(&key.key_hash);
        let (used_pk, used_sk) = AdminKey::usage_key(&key.id);
        self.transact(vec![
            TxOp::Delete {
                pk,
                sk,
                condition: Condition::Exists,
            },
            TxOp::Delete {
                pk: used_pk,
                sk: used_sk,
                condition: Condition::None,
            },
            save_op(workspace),
        ])
        .await?;
        workspace.saved();
        Ok(())
    }

    /// When the key was last used, if it was.
    pub async fn admin_key_last_used(&self, id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let (pk, sk) = AdminKey::usage_key(id);
        Ok(self
            .table()
            .get(&pk, &sk)
            .await?
            .and_then(|item| item.data["last_used_at"].as_str()?.parse().ok()))
    }

    /// Records that the key was used at `at`.
    pub async fn record_admin_key_use(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let (pk, sk) = AdminKey::usage_key(id);
        let item = Item::new(
            pk,
            sk,
            serde_json::json!({ "last_used_at": crate::clock::rfc3339(at) }),
        );
        self.table().put(item, Condition::None).await
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
