//! Workspaces and admin keys: who may use the management API.

use crate::app::App;
use crate::error::{ApiError, StoreError};
use crate::ids;
use crate::model::{from_item, AdminKey, Workspace};
use crate::ports::{Condition, Item, TxOp};

/// The record of a valid admin key (its workspace, its id).
pub async fn authenticate(app: &App, presented: &str) -> Result<AdminKey, ApiError> {
    // Lookup by the key's hash: the comparison is an exact key match in the
    // store, so there is no secret-dependent comparison in our code at all.
    let (pk, sk) = AdminKey::key(&ids::sha256_hex(presented));
    match app.items.get(&pk, &sk).await? {
        Some(item) => Ok(from_item::<AdminKey>(&item)?),
        None => Err(ApiError::Unauthorized("invalid admin key")),
    }
}

pub async fn get_workspace(app: &App, id: &str) -> Result<Option<Workspace>, ApiError> {
    let (pk, sk) = Workspace::key(id);
    Ok(match app.items.get(&pk, &sk).await? {
        Some(item) => Some(from_item(&item)?),
        None => None,
    })
}

/// Stores an admin key (hashed) for a workspace.
pub async fn add_admin_key(app: &App, workspace_id: &str, key: &str) -> Result<AdminKey, ApiError> {
    let record = admin_key_record(app, workspace_id, key);
    app.items
        .put(record.to_item(), Condition::NotExists)
        .await?;
    Ok(record)
}

fn admin_key_record(app: &App, workspace_id: &str, key: &str) -> AdminKey {
    AdminKey {
        id: ids::new_id("key"),
        workspace_id: workspace_id.to_owned(),
        key_hash: ids::sha256_hex(key),
        key_prefix: ids::display_prefix(key),
        created_at: app.clock.now(),
    }
}

/// What the first start of a fresh store produced.
#[derive(Debug)]
pub struct Bootstrap {
    pub workspace: Workspace,
    /// The admin key, when this call made it and it was not given: shown once.
    pub generated_key: Option<String>,
    /// False when the store had been bootstrapped before.
    pub fresh: bool,
}

/// On a store's first start, creates the default workspace and its admin
/// key (`given_key`, or a generated one). Later starts return the existing
/// workspace and change nothing. Safe against two processes starting at once:
/// the marker is a conditional put.
pub async fn bootstrap(app: &App, given_key: Option<&str>) -> Result<Bootstrap, ApiError> {
    if let Some(item) = app.items.get("META", "BOOTSTRAP").await? {
        let ws_id = item.data["workspace_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let workspace = get_workspace(app, &ws_id).await?.ok_or_else(|| {
            ApiError::Internal("bootstrap marker names a missing workspace".into())
        })?;
        return Ok(Bootstrap {
            workspace,
            generated_key: None,
            fresh: false,
        });
    }
    if let Some(k) = given_key {
        if k.len() < 16 {
            return Err(ApiError::BadRequest(
                "HOOKRUN_BOOTSTRAP_ADMIN_KEY must be at least 16 characters".into(),
            ));
        }
    }
    let workspace = Workspace {
        id: ids::workspace_id(),
        name: "default".into(),
        created_at: app.clock.now(),
    };
    let (key, generated) = match given_key {
        Some(k) => (k.to_owned(), None),
        None => {
            let k = ids::admin_key();
            (k.clone(), Some(k))
        }
    };
    let marker = Item::new(
        "META",
        "BOOTSTRAP",
        serde_json::json!({ "workspace_id": workspace.id }),
    );
    // One transaction: a crash can never leave a marker without its
    // workspace and key, and a concurrent first start loses cleanly.
    let ops = vec![
        TxOp::Put(marker, Condition::NotExists),
        TxOp::Put(workspace.to_item(), Condition::NotExists),
        TxOp::Put(
            admin_key_record(app, &workspace.id, &key).to_item(),
            Condition::NotExists,
        ),
    ];
    match app.items.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Box::pin(bootstrap(app, given_key)).await,
        Err(e) => return Err(e.into()),
    }
    Ok(Bootstrap {
        workspace,
        generated_key: generated,
        fresh: true,
    })
}

/// A new workspace with its first admin key (shown once).
pub async fn create_workspace(app: &App, name: &str) -> Result<(Workspace, String), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "workspace name must be 1 to 200 characters".into(),
        ));
    }
    let workspace = Workspace {
        id: ids::workspace_id(),
        name: name.to_owned(),
        created_at: app.clock.now(),
    };
    let key = ids::admin_key();
    app.items
        .transact(vec![
            TxOp::Put(workspace.to_item(), Condition::NotExists),
            TxOp::Put(
                admin_key_record(app, &workspace.id, &key).to_item(),
                Condition::NotExists,
            ),
        ])
        .await?;
    Ok((workspace, key))
}
