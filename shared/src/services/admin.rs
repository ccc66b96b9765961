//! Workspaces and admin keys: who may use the management API.

use std::net::IpAddr;

use crate::app::App;
use crate::error::{Error, StoreError};
use crate::ids::{self, WorkspaceId};
use crate::model::{AdminKey, Workspace};
use crate::services::ratelimit;

/// Shortest admin key accepted from the operator (generated ones are longer).
pub const MIN_ADMIN_KEY_CHARS: usize = 32;

/// The record of a valid admin key (its workspace, its id). A wrong key
/// counts against its address ([`ratelimit::failed_auth`]); a right one
/// is never refused for its address's failures.
pub async fn authenticate(app: &App, presented: &str, from: IpAddr) -> Result<AdminKey, Error> {
    // Lookup by the key's hash: the comparison is an exact key match in the
    // store, so there is no secret-dependent comparison in our code at all.
    match app.repo.admin_key(&ids::sha256_hex(presented)).await? {
        Some(key) => Ok(key),
        None => {
            Err(ratelimit::failed_auth(app, from, Error::unauthorized("invalid admin key")).await)
        }
    }
}

pub async fn get_workspace(app: &App, id: &WorkspaceId) -> Result<Option<Workspace>, Error> {
    Ok(app.repo.get::<Workspace>(id).await?.map(|v| v.record))
}

/// Stores an admin key (hashed) for a workspace.
pub async fn add_admin_key(
    app: &App,
    workspace_id: &WorkspaceId,
    key: &str,
) -> Result<AdminKey, Error> {
    let record = admin_key_record(app, workspace_id, key);
    app.repo.add_admin_key(&record).await?;
    Ok(record)
}

fn admin_key_record(app: &App, workspace_id: &WorkspaceId, key: &str) -> AdminKey {
    AdminKey {
        id: ids::new_id("key"),
        workspace_id: workspace_id.clone(),
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
pub async fn bootstrap(app: &App, given_key: Option<&str>) -> Result<Bootstrap, Error> {
    if let Some(ws_id) = app.repo.bootstrapped_workspace().await? {
        let workspace = get_workspace(app, &ws_id)
            .await?
            .ok_or_else(|| Error::Internal("bootstrap marker names a missing workspace".into()))?;
        return Ok(Bootstrap {
            workspace,
            generated_key: None,
            fresh: false,
        });
    }
    if let Some(k) = given_key {
        if k.len() < MIN_ADMIN_KEY_CHARS {
            return Err(Error::invalid(
                "HOOKRUN_BOOTSTRAP_ADMIN_KEY",
                format!(
                    "HOOKRUN_BOOTSTRAP_ADMIN_KEY must be at least {MIN_ADMIN_KEY_CHARS} characters"
                ),
            ));
        }
    }
    let workspace = Workspace {
        id: WorkspaceId::generate(),
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
    let record = admin_key_record(app, &workspace.id, &key);
    match app.repo.bootstrap(&workspace, &record).await {
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
pub async fn create_workspace(app: &App, name: &str) -> Result<(Workspace, String), Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "name",
            "workspace name must be 1 to 200 characters",
        ));
    }
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        name: name.to_owned(),
        created_at: app.clock.now(),
    };
    let key = ids::admin_key();
    let record = admin_key_record(app, &workspace.id, &key);
    app.repo.create_workspace(&workspace, &record).await?;
    Ok((workspace, key))
}
