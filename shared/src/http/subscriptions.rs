//! Management routes for subscriptions (outgoing webhooks) and deliveries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, OptionalJson, Paging};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::model::listing::Listing;
use crate::model::{Delivery, DeliveryAttempt};
use crate::services::subscriptions::{
    self, CreateSubscription, RotateSubscriptionSecret, SubscriptionView, UpdateSubscription,
};

/// A subscription with its signing secret: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    subscription: SubscriptionView,
    /// `whsec_…`: signs every delivery. Not shown again.
    secret: String,
}

/// One delivery and every attempt at it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: Delivery,
    attempt_log: Vec<DeliveryAttempt>,
}

/// A manual attempt, queued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    delivery_id: String,
    /// Always `queued`.
    #[schema(example = "queued")]
    status: &'static str,
}

/// Subscribe a URL to run events.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions",
    tag = "subscriptions",
    operation_id = "create_subscription",
    security(("admin_key" = [])),
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "Created; `Location` names it", body = SubscriptionWithSecret, headers(("Location" = String, description = "The new resource's path"))),
        ManagementErrors
    )
)]
pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateSubscription>,
) -> Result<impl IntoResponse, ApiError> {
    let (sub, secret) = subscriptions::create(&app, &admin.workspace_id, req).await?;
    Ok(super::created(
        format!("/api/v1/subscriptions/{}", sub.id),
        SubscriptionWithSecret {
            subscription: SubscriptionView::from(&sub),
            secret,
        },
    ))
}

/// List the workspace's subscriptions.
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions",
    tag = "subscriptions",
    operation_id = "list_subscriptions",
    security(("admin_key" = [])),
    params(Paging),
    responses((status = 200, body = Listing<SubscriptionView>), ManagementErrors)
)]
pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing =
        subscriptions::list(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing.map(|s| SubscriptionView::from(&s))))
}

/// Read a subscription (`disabled_reason` says why hookrun disabled it).
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions/{id}",
    tag = "subscriptions",
    operation_id = "get_subscription",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 200, body = SubscriptionView), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = subscriptions::get(&app, &admin.workspace_id, &id).await?;
    Ok(Json(SubscriptionView::from(&sub)))
}

/// Update a subscription; absent fields are kept.
#[utoipa::path(
    patch,
    path = "/api/v1/subscriptions/{id}",
    tag = "subscriptions",
    operation_id = "update_subscription",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    request_body = UpdateSubscription,
    responses((status = 200, body = SubscriptionView), ManagementErrors)
)]
pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateSubscription>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = subscriptions::update(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(SubscriptionView::from(&sub)))
}

/// Delete a subscription; deliveries in flight stop.
#[utoipa::path(
    delete,
    path = "/api/v1/subscriptions/{id}",
    tag = "subscriptions",
    operation_id = "delete_subscription",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 204, description = "Deleted"), ManagementErrors)
)]
pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    subscriptions::delete(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give the subscription a new secret (shown once); with
/// `grace_seconds`, the previous one also signs until the window ends.
/// The body may be empty.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/rotate-secret",
    tag = "subscriptions",
    operation_id = "rotate_subscription_secret",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    request_body(content = Option<RotateSubscriptionSecret>, description = "Optional"),
    responses((status = 200, body = SubscriptionWithSecret), ManagementErrors)
)]
pub async fn rotate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateSubscriptionSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let (sub, secret) = subscriptions::rotate_secret(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(SubscriptionWithSecret {
        subscription: SubscriptionView::from(&sub),
        secret,
    }))
}

/// A subscription's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions/{id}/deliveries",
    tag = "subscriptions",
    operation_id = "list_deliveries",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The subscription's id"), Paging),
    responses((status = 200, body = Listing<Delivery>), ManagementErrors)
)]
pub async fn deliveries(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing = subscriptions::deliveries(
        &app,
        &admin.workspace_id,
        &id,
        paging.limit()?,
        paging.cursor(),
    )
    .await?;
    Ok(Json(listing))
}

/// One delivery and its attempts (time, status code, error, duration,
/// the first 4 KiB of each answer).
#[utoipa::path(
    get,
    path = "/api/v1/deliveries/{id}",
    tag = "subscriptions",
    operation_id = "get_delivery",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 200, body = DeliveryDetail), ManagementErrors)
)]
pub async fn delivery(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (delivery, attempt_log) = subscriptions::delivery(&app, &admin.workspace_id, &id).await?;
    Ok(Json(DeliveryDetail {
        delivery,
        attempt_log,
    }))
}

/// Queue one manual attempt of a delivery (not retried).
#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{id}/redeliver",
    tag = "subscriptions",
    operation_id = "redeliver",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 202, body = Redelivery), ManagementErrors)
)]
pub async fn redeliver(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let d = subscriptions::redeliver(&app, &admin.workspace_id, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            delivery_id: d.id,
            status: "queued",
        }),
    ))
}
