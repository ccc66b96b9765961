//! Workspaces and admin keys: who may use the management API.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Entity, Error, StoreError};
use crate::ids::{self, WorkspaceId};
use crate::model::{AdminKey, Role, Workspace};
use crate::repo::Listing;
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

/// Admin keys one workspace may hold (so a revocation's check that
/// another admin key remains reads one page).
pub const MAX_KEYS_PER_WORKSPACE: usize = 100;

/// `POST /api/v1/admin-keys`, and `hookrun workspace add-key`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminKey {
    /// What the key is for (shown in listings).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// `admin` (default) or `viewer` (read only).
    #[serde(default)]
    pub role: Role,
}

/// An admin key as the API shows it: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AdminKeyView {
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "hka_3f9a0c1b")]
    pub key_prefix: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    /// Recorded at most once a minute per process, so it may lag by a
    /// minute.
    #[serde(with = "crate::clock::ts::option")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl AdminKeyView {
    fn of(key: AdminKey, last_used_at: Option<DateTime<Utc>>) -> Self {
        AdminKeyView {
            id: key.id,
            name: key.name,
            role: key.role,
            key_prefix: key.key_prefix,
            created_at: key.created_at,
            last_used_at,
        }
    }
}

/// A new admin key for the workspace; the key itself is in the answer
/// only (stored as its SHA-256).
pub async fn create_key(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateAdminKey,
) -> Result<(AdminKeyView, String), Error> {
    let existing = app
        .repo
        .admin_keys(workspace_id, MAX_KEYS_PER_WORKSPACE, None)
        .await?;
    if existing.data.len() + existing.unreadable.len() >= MAX_KEYS_PER_WORKSPACE {
        return Err(Error::Conflict(format!(
            "the workspace has {MAX_KEYS_PER_WORKSPACE} admin keys, the most it may hold; revoke one first"
        )));
    }
    add_key(app, workspace_id, req).await
}

/// [`create_key`] for whoever holds the store (`hookrun workspace
/// add-key`): the way back into a workspace whose keys are lost, so even
/// a workspace at its cap of keys gets one.
pub async fn recover_key(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateAdminKey,
) -> Result<(AdminKeyView, String), Error> {
    add_key(app, workspace_id, req).await
}

async fn add_key(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateAdminKey,
) -> Result<(AdminKeyView, String), Error> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "name must be 1 to 200 characters"));
    }
    if get_workspace(app, workspace_id).await?.is_none() {
        return Err(Error::NotFound(Entity::Workspace));
    }
    let key = ids::admin_key();
    let mut record = admin_key_record(app, workspace_id, &key);
    record.name = Some(name.to_owned());
    record.role = req.role;
    app.repo.add_admin_key(&record).await?;
    Ok((AdminKeyView::of(record, None), key))
}

/// A page of the workspace's admin keys, oldest first, with when each was
/// last used.
pub async fn list_keys(
    app: &App,
    workspace_id: &WorkspaceId,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<AdminKeyView>, Error> {
    let page = app.repo.admin_keys(workspace_id, limit, cursor).await?;
    let used = futures_util::future::try_join_all(
        page.data
            .iter()
            .map(|k| app.repo.admin_key_last_used(&k.id)),
    )
    .await?;
    let mut used = used.into_iter();
    Ok(page.map(|k| AdminKeyView::of(k, used.next().flatten())))
}

/// One of the workspace's admin keys.
pub async fn get_key(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<AdminKeyView, Error> {
    let key = find_key(app, workspace_id, id).await?;
    let used = app.repo.admin_key_last_used(&key.id).await?;
    Ok(AdminKeyView::of(key, used))
}

/// Revokes a key: from the next call on it authenticates nothing. The
/// workspace's last admin-role key is kept (`409`), so a workspace always
/// has a key that can manage it (a lost one is replaced with `hookrun
/// workspace add-key`, which needs the store, not a key). Revocations in a
/// workspace are serialised on the workspace's version, and the other
/// admin keys are counted by strongly consistent reads (the listing's
/// index may still show a key just revoked), so two keys revoking each
/// other at once cannot both go.
pub async fn revoke_key(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<(), Error> {
    for _ in 0..5 {
        let key = find_key(app, workspace_id, id).await?;
        let Some(mut workspace) = app.repo.get::<Workspace>(workspace_id).await? else {
            return Err(Error::NotFound(Entity::Workspace));
        };
        if key.role == Role::Admin && !another_admin_key(app, workspace_id, &key.id).await? {
            return Err(Error::Conflict(
                "this is the workspace's last admin key; create another admin key before revoking it".into(),
            ));
        }
        match app.repo.delete_admin_key(&key, &mut workspace).await {
            Ok(()) => return Ok(()),
            // Revoked meanwhile, or another revocation went first: look
            // again (the key may be gone, or the last admin key now).
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(
        "the workspace's keys kept changing; retry".into(),
    ))
}

/// Whether the workspace has an admin-role key other than `except` that
/// still exists (each checked by its hash, a strongly consistent read).
async fn another_admin_key(
    app: &App,
    workspace_id: &WorkspaceId,
    except: &str,
) -> Result<bool, Error> {
    let listed = app
        .repo
        .admin_keys(workspace_id, MAX_KEYS_PER_WORKSPACE, None)
        .await?;
    for candidate in listed
        .data
        .iter()
        .filter(|k| k.role == Role::Admin && k.id != except)
    {
        if app.repo.admin_key(&candidate.key_hash).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn find_key(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<AdminKey, Error> {
    app.repo
        .admin_key_by_id(workspace_id, id)
        .await?
        .ok_or(Error::NotFound(Entity::AdminKey))
}

/// Records that the key was used, at most once a minute per key and
/// process (best effort: a lost mark never fails the call).
pub async fn touch(app: &App, key: &AdminKey) {
    if !app.admin_key_use.due(&key.id) {
        return;
    }
    if let Err(e) = app
        .repo
        .record_admin_key_use(&key.id, app.clock.now())
        .await
    {
        tracing::debug!(key_id = %key.id, error = %e, "admin key last_used_at not recorded");
    }
}

fn admin_key_record(app: &App, workspace_id: &WorkspaceId, key: &str) -> AdminKey {
    AdminKey {
        id: ids::new_id("key"),
        workspace_id: workspace_id.clone(),
        key_hash: ids::sha256_hex(key),
        key_prefix: ids::display_prefix(key),
        created_at: app.clock.now(),
        name: None,
        role: Role::Admin,
    }
}

/// The workspace the store's first start made (`hookrun serve`), if any.
pub async fn default_workspace(app: &App) -> Result<Option<WorkspaceId>, Error> {
    Ok(app.repo.bootstrapped_workspace().await?)
}

/// Whether the store has this admin key (a start-up check of
/// `HOOKRUN_BOOTSTRAP_ADMIN_KEY`, which only a store's first start uses).
pub async fn has_key(app: &App, key: &str) -> Result<bool, Error> {
    Ok(app.repo.admin_key(&ids::sha256_hex(key)).await?.is_some())
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
    let mut record = admin_key_record(app, &workspace.id, &key);
    record.name = Some("first start (hookrun serve)".into());
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
    let mut record = admin_key_record(app, &workspace.id, &key);
    record.name = Some("workspace create".into());
    app.repo.create_workspace(&workspace, &record).await?;
    Ok((workspace, key))
}
