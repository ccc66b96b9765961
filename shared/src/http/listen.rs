//! Management routes for `hookrun listen` sessions (`services::listen`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::model::Delivery;
use crate::services::listen::{self, ListenAttempt, ListenDelivery, ListenView, OpenListen};

/// Open a listen session, or renew this machine's for the same label:
/// a short-lived subscription whose deliveries its client receives over
/// the real-time channel (a `listen` message) and forwards (`hookrun
/// listen`).
#[utoipa::path(
    post,
    path = "/api/v1/listen",
    tag = "listen",
    operation_id = "open_listen_session",
    security(("admin_key" = [])),
    request_body = OpenListen,
    responses(
        (status = 201, description = "Opened or renewed; `Location` names it", body = ListenView, headers(("Location" = String, description = "The session's path"))),
        ManagementErrors
    )
)]
pub async fn open(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<OpenListen>,
) -> Result<impl IntoResponse, ApiError> {
    let s = listen::open(&app, &admin.workspace_id, req).await?;
    Ok(super::created(
        format!("/api/v1/listen/{}", s.id),
        listen::view(&s),
    ))
}

/// `?wait=`: how long to wait for a delivery.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Seconds to wait for a delivery when none is due, 0 to 20 (default 0).
    #[param(minimum = 0, maximum = 20)]
    wait: Option<u64>,
}

/// The deliveries to forward.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DueDeliveries {
    /// Due now, oldest first (at most 25).
    data: Vec<ListenDelivery>,
}

/// The session's deliveries due now, oldest first, each with the exact
/// headers and body a subscription's receiver gets; waits up to `wait`
/// seconds for one. Fetching keeps the session alive. For a client that
/// cannot hold a WebSocket (the channel's `listen` pushes them).
#[utoipa::path(
    get,
    path = "/api/v1/listen/{id}/deliveries",
    tag = "listen",
    operation_id = "listen_deliveries",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The session's id"), Wait),
    responses((status = 200, body = DueDeliveries), ManagementErrors)
)]
pub async fn deliveries(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<Wait>,
) -> Result<impl IntoResponse, ApiError> {
    let wait = match q.wait {
        None => 0,
        Some(w) if w <= listen::MAX_WAIT.as_secs() => w,
        Some(_) => {
            return Err(Error::invalid("wait", "wait must be 0 to 20 seconds").into());
        }
    };
    let data = listen::due(
        &app,
        &admin.workspace_id,
        &id,
        std::time::Duration::from_secs(wait),
    )
    .await?;
    Ok(Json(DueDeliveries { data }))
}

/// Report what became of a forwarded delivery: a 2xx settles it, anything
/// else makes it due again by the retry schedule.
#[utoipa::path(
    post,
    path = "/api/v1/listen/{id}/deliveries/{delivery_id}/attempts",
    tag = "listen",
    operation_id = "report_listen_attempt",
    security(("admin_key" = [])),
    params(
        ("id" = String, Path, description = "The session's id"),
        ("delivery_id" = String, Path, description = "The delivery's id")
    ),
    request_body = ListenAttempt,
    responses((status = 200, body = Delivery), ManagementErrors)
)]
pub async fn report(
    State(app): State<App>,
    admin: Admin,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<ListenAttempt>,
) -> Result<impl IntoResponse, ApiError> {
    let d = listen::report(&app, &admin.workspace_id, &id, &delivery_id, req).await?;
    Ok(Json(d))
}

/// End a listen session at once; its deliveries stay in the log.
#[utoipa::path(
    delete,
    path = "/api/v1/listen/{id}",
    tag = "listen",
    operation_id = "close_listen_session",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 204, description = "Ended"), ManagementErrors)
)]
pub async fn close(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    listen::close(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
