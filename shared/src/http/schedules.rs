//! Management routes for schedules.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Paging};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::model::listing::Listing;
use crate::services::schedules::{self, CreateSchedule, ScheduleView, UpdateSchedule};

/// Fires an answer shows.
const SHOWN_FIRES: usize = 5;

/// Run an agent (or a trigger) on a cron, in a time zone.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    tag = "schedules",
    operation_id = "create_schedule",
    security(("admin_key" = [])),
    request_body = CreateSchedule,
    responses(
        (status = 201, description = "Created; `Location` names it", body = ScheduleView, headers(("Location" = String, description = "The new resource's path"))),
        ManagementErrors
    )
)]
pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateSchedule>,
) -> Result<impl IntoResponse, ApiError> {
    let s = schedules::create(&app, &admin.workspace_id, req).await?;
    Ok(super::created(
        format!("/api/v1/schedules/{}", s.id),
        schedules::view(&app, s, SHOWN_FIRES),
    ))
}

/// List the workspace's schedules.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    operation_id = "list_schedules",
    security(("admin_key" = [])),
    params(Paging),
    responses((status = 200, body = Listing<ScheduleView>), ManagementErrors)
)]
pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing =
        schedules::list(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing.map(|s| schedules::view(&app, s, SHOWN_FIRES))))
}

/// The next fire times of a cron expression in a time zone, before any
/// schedule is saved (a form's preview): the checks a create makes, so a
/// bad expression or zone is the `400` a create would answer.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/preview",
    tag = "schedules",
    operation_id = "preview_schedule",
    security(("admin_key" = [])),
    params(PreviewQuery),
    responses((status = 200, body = Preview), ManagementErrors)
)]
pub async fn preview(
    State(app): State<App>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let next_fire_times = schedules::preview(&app, &q.cron, q.timezone.as_deref(), SHOWN_FIRES)?;
    Ok(Json(Preview { next_fire_times }))
}

/// A cron expression and its zone, to preview.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// As a schedule's `cron`: five fields, `cron(…)` or `rate(…)`.
    cron: String,
    /// An IANA zone (default `UTC`).
    timezone: Option<String>,
}

/// The next fires of a previewed expression.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The next five, in UTC and in the zone.
    next_fire_times: Vec<schedules::FireTime>,
}

/// Read a schedule: its next five fires, its last fire and run, the fires
/// it skipped.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "get_schedule",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 200, body = ScheduleView), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let s = schedules::get(&app, &admin.workspace_id, &id).await?;
    Ok(Json(schedules::view(&app, s, SHOWN_FIRES)))
}

/// Update a schedule; absent fields are kept. A new `cron` or `timezone`
/// counts from now.
#[utoipa::path(
    patch,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "update_schedule",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    request_body = UpdateSchedule,
    responses((status = 200, body = ScheduleView), ManagementErrors)
)]
pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateSchedule>,
) -> Result<impl IntoResponse, ApiError> {
    let s = schedules::update(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(schedules::view(&app, s, SHOWN_FIRES)))
}

/// Delete a schedule; it fires no more.
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "delete_schedule",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 204, description = "Deleted"), ManagementErrors)
)]
pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    schedules::delete(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause a schedule: no fires until it is resumed.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{id}/pause",
    tag = "schedules",
    operation_id = "pause_schedule",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 200, body = ScheduleView), ManagementErrors)
)]
pub async fn pause(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let s = schedules::set_paused(&app, &admin.workspace_id, &id, true).await?;
    Ok(Json(schedules::view(&app, s, SHOWN_FIRES)))
}

/// Resume a paused schedule: the fire it missed last runs if its
/// `catch_up` says so (`latest`: when less than an hour old).
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{id}/resume",
    tag = "schedules",
    operation_id = "resume_schedule",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 200, body = ScheduleView), ManagementErrors)
)]
pub async fn resume(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let s = schedules::set_paused(&app, &admin.workspace_id, &id, false).await?;
    Ok(Json(schedules::view(&app, s, SHOWN_FIRES)))
}
