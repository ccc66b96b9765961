//! Management routes for triggers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Admin, ApiBytes, ApiJson, ApiPath, ApiQuery, OptionalJson, Paging};
use super::ApiError;
use crate::app::App;
use crate::services::ingress;
use crate::services::triggers::{self, CreateTrigger, RegenerateSecret, UpdateTrigger};

fn with_secrets(
    app: &App,
    t: &crate::model::Trigger,
    token: Option<&str>,
    secret: Option<&str>,
) -> Value {
    let mut v = serde_json::to_value(triggers::view(app, t)).expect("serialises");
    if let Some(token) = token {
        let base = triggers::base_url(app);
        v["token"] = json!(token);
        v["urls"]["token_url"] = json!(format!("{base}/webhooks/runs/{token}"));
    }
    if let Some(secret) = secret {
        v["secret"] = json!(secret);
    }
    v
}

pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateTrigger>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, token, secret) =
        triggers::create(&app, &admin.workspace_id, &admin.key_id, req).await?;
    Ok(super::created(
        format!("/api/v1/webhook-triggers/{}", t.id),
        with_secrets(&app, &t, Some(&token), secret.as_deref()),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    agent_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let paging = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    let listing = triggers::list(
        &app,
        &admin.workspace_id,
        q.agent_id.as_deref(),
        paging.limit()?,
        paging.cursor(),
    )
    .await?;
    Ok(Json(listing.map(|t| triggers::view(&app, &t))))
}

pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let t = triggers::find(&app, &admin.workspace_id, &id).await?;
    Ok(Json(triggers::view(&app, &t)))
}

pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateTrigger>,
) -> Result<impl IntoResponse, ApiError> {
    let t = triggers::update(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(triggers::view(&app, &t)))
}

pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    triggers::delete(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn regenerate_token(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, token) = triggers::regenerate_token(&app, &admin.workspace_id, &id).await?;
    Ok(Json(with_secrets(&app, &t, Some(&token), None)))
}

pub async fn regenerate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RegenerateSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, secret) = triggers::regenerate_secret(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(with_secrets(&app, &t, None, Some(&secret))))
}

/// Sends a test event (the body, or a default one) through the pipeline.
pub async fn test(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = triggers::find(&app, &admin.workspace_id, &id).await?;
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({
            "event": "hookrun.test",
            "source": "hookrun",
            "message": format!("Test event for trigger {}", t.name),
            "data": { "trigger_id": t.id },
        })
    } else {
        ingress::input::parse_json(&body)?
    };
    let run_id = ingress::test_trigger(&app, &t, payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "run_id": run_id })),
    ))
}

pub async fn invocations(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let first_page = paging.cursor().is_none();
    let listing = triggers::invocations(
        &app,
        &admin.workspace_id,
        &id,
        paging.limit()?,
        paging.cursor(),
    )
    .await?;
    let mut body = serde_json::to_value(&listing).expect("serialises");
    // Calls refused before they authenticated are tallied, not listed:
    // the first page shows the latest tallies.
    if first_page {
        let tallies = triggers::rejection_tallies(&app, &admin.workspace_id, &id).await?;
        body["rejected_unauthenticated"] = serde_json::to_value(tallies).expect("serialises");
    }
    Ok(Json(body))
}

/// `GET /api/v1/agents/{agentId}/webhook` (the agent's webhook summary).
pub async fn agent_webhook_info(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        triggers::agent_webhook_info(&app, &admin.workspace_id, &agent_id).await?,
    ))
}
