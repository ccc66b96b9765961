//! Management routes for subscriptions (outgoing webhooks) and deliveries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, OptionalJson, Paging};
use super::ApiError;
use crate::app::App;
use crate::services::subscriptions::{
    self, CreateSubscription, RotateSubscriptionSecret, SubscriptionView, UpdateSubscription,
};

pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateSubscription>,
) -> Result<impl IntoResponse, ApiError> {
    let (sub, secret) = subscriptions::create(&app, &admin.workspace_id, req).await?;
    let mut body = serde_json::to_value(SubscriptionView::from(&sub)).expect("serialises");
    body["secret"] = json!(secret);
    Ok(super::created(
        format!("/api/v1/subscriptions/{}", sub.id),
        body,
    ))
}

pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing =
        subscriptions::list(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing.map(|s| SubscriptionView::from(&s))))
}

pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = subscriptions::get(&app, &admin.workspace_id, &id).await?;
    Ok(Json(SubscriptionView::from(&sub)))
}

pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateSubscription>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = subscriptions::update(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(SubscriptionView::from(&sub)))
}

pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    subscriptions::delete(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateSubscriptionSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let (sub, secret) = subscriptions::rotate_secret(&app, &admin.workspace_id, &id, req).await?;
    let mut body = serde_json::to_value(SubscriptionView::from(&sub)).expect("serialises");
    body["secret"] = json!(secret);
    Ok(Json(body))
}

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

pub async fn delivery(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (d, attempts) = subscriptions::delivery(&app, &admin.workspace_id, &id).await?;
    let mut body = serde_json::to_value(&d).expect("serialises");
    body["attempt_log"] = serde_json::to_value(&attempts).expect("serialises");
    Ok(Json(body))
}

pub async fn redeliver(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let d = subscriptions::redeliver(&app, &admin.workspace_id, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "delivery_id": d.id, "status": "queued" })),
    ))
}
