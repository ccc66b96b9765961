//! Management routes for the workspace's admin keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Paging};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::model::listing::Listing;
use crate::services::admin::{self, AdminKeyView, CreateAdminKey};

/// A new admin key, with the key itself: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedAdminKey {
    #[serde(flatten)]
    view: AdminKeyView,
    /// `hka_…`: `Authorization: Bearer <key>`. Stored as its SHA-256 and
    /// not shown again.
    key: String,
}

/// Create an admin key (`admin`, or `viewer`: read only).
#[utoipa::path(
    post,
    path = "/api/v1/admin-keys",
    tag = "admin-keys",
    operation_id = "create_admin_key",
    security(("admin_key" = [])),
    request_body = CreateAdminKey,
    responses(
        (status = 201, description = "Created; `Location` names it", body = CreatedAdminKey, headers(("Location" = String, description = "The new resource's path"))),
        ManagementErrors
    )
)]
pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateAdminKey>,
) -> Result<impl IntoResponse, ApiError> {
    let (view, key) = admin::create_key(&app, &admin.workspace_id, req).await?;
    Ok(super::created(
        format!("/api/v1/admin-keys/{}", view.id),
        CreatedAdminKey { view, key },
    ))
}

/// List the workspace's admin keys, oldest first (prefix, role, when
/// made and last used; never a key).
#[utoipa::path(
    get,
    path = "/api/v1/admin-keys",
    tag = "admin-keys",
    operation_id = "list_admin_keys",
    security(("admin_key" = [])),
    params(Paging),
    responses((status = 200, body = Listing<AdminKeyView>), ManagementErrors)
)]
pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing =
        admin::list_keys(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing))
}

/// Read an admin key (never the key itself).
#[utoipa::path(
    get,
    path = "/api/v1/admin-keys/{id}",
    tag = "admin-keys",
    operation_id = "get_admin_key",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses((status = 200, body = AdminKeyView), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(admin::get_key(&app, &admin.workspace_id, &id).await?))
}

/// Revoke an admin key: from the next call on it authenticates nothing.
/// The workspace's last `admin` key cannot be revoked (`409`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin-keys/{id}",
    tag = "admin-keys",
    operation_id = "revoke_admin_key",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses((status = 204, description = "Revoked"), ManagementErrors)
)]
pub async fn revoke(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    admin::revoke_key(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
