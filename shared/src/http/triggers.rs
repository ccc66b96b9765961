//! Management routes for triggers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::extract::{Admin, ApiBytes, ApiJson, ApiPath, ApiQuery, OptionalJson, Paging};
use super::ingress::{Outcome, TriggerAnswer};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::model::listing::Listing;
use crate::model::{Invocation, RejectionTally};
use crate::services::ingress;
use crate::services::triggers::{
    self, AgentWebhookInfo, CreateTrigger, RegenerateSecret, TriggerView, UpdateTrigger,
};

/// A trigger with what is shown once: its token (and the full token
/// URL in `urls.token_url`) and its secret, when just made.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TriggerWithSecrets {
    #[serde(flatten)]
    trigger: TriggerView,
    /// `wht_…`: the trigger's token. Not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The signing secret. Not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn with_secrets(
    app: &App,
    t: &crate::model::Trigger,
    token: Option<String>,
    secret: Option<String>,
) -> TriggerWithSecrets {
    let mut view = triggers::view(app, t);
    if let Some(token) = &token {
        let base = triggers::base_url(app);
        view.urls["token_url"] = json!(format!("{base}/webhooks/runs/{token}"));
    }
    TriggerWithSecrets {
        trigger: view,
        token,
        secret,
    }
}

/// The invocations of a trigger: each call that authenticated, newest
/// first, and on the first page the tallies of calls refused before.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvocationListing {
    #[serde(flatten)]
    listing: Listing<Invocation>,
    /// First page only: calls refused before they authenticated (or over
    /// the per-minute log cap), counted per minute and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_unauthenticated: Option<Vec<RejectionTally>>,
}

/// Create a trigger for an agent.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-triggers",
    tag = "webhook-triggers",
    operation_id = "create_trigger",
    security(("admin_key" = [])),
    request_body = CreateTrigger,
    responses(
        (status = 201, description = "Created; `Location` names it. `token` and `secret` are shown this once", body = TriggerWithSecrets, headers(("Location" = String, description = "The new resource's path"))),
        ManagementErrors
    )
)]
pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateTrigger>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, token, secret) =
        triggers::create(&app, &admin.workspace_id, &admin.key_id, req).await?;
    Ok(super::created(
        format!("/api/v1/webhook-triggers/{}", t.id),
        with_secrets(&app, &t, Some(token), secret),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this agent's triggers.
    agent_id: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List the workspace's triggers.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-triggers",
    tag = "webhook-triggers",
    operation_id = "list_triggers",
    security(("admin_key" = [])),
    params(ListQuery),
    responses((status = 200, body = Listing<TriggerView>), ManagementErrors)
)]
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

/// Read a trigger (never its token or secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhook-triggers/{id}",
    tag = "webhook-triggers",
    operation_id = "get_trigger",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    responses((status = 200, body = TriggerView), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let t = triggers::find(&app, &admin.workspace_id, &id).await?;
    Ok(Json(triggers::view(&app, &t)))
}

/// Update a trigger; absent fields are kept, `null` clears.
#[utoipa::path(
    patch,
    path = "/api/v1/webhook-triggers/{id}",
    tag = "webhook-triggers",
    operation_id = "update_trigger",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    request_body = UpdateTrigger,
    responses((status = 200, body = TriggerView), ManagementErrors)
)]
pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateTrigger>,
) -> Result<impl IntoResponse, ApiError> {
    let t = triggers::update(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(triggers::view(&app, &t)))
}

/// Delete a trigger: its URLs answer 404 at once.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-triggers/{id}",
    tag = "webhook-triggers",
    operation_id = "delete_trigger",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    responses((status = 204, description = "Deleted"), ManagementErrors)
)]
pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    triggers::delete(&app, &admin.workspace_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new token, shown once; the old one stops at once.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-triggers/{id}/regenerate-token",
    tag = "webhook-triggers",
    operation_id = "regenerate_trigger_token",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    responses((status = 200, body = TriggerWithSecrets), ManagementErrors)
)]
pub async fn regenerate_token(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, token) = triggers::regenerate_token(&app, &admin.workspace_id, &id).await?;
    Ok(Json(with_secrets(&app, &t, Some(token), None)))
}

/// A new signing secret (or the one given), shown once; the old one
/// stops at once. The body may be empty.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-triggers/{id}/regenerate-secret",
    tag = "webhook-triggers",
    operation_id = "regenerate_trigger_secret",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    request_body(content = Option<RegenerateSecret>, description = "Optional"),
    responses((status = 200, body = TriggerWithSecrets), ManagementErrors)
)]
pub async fn regenerate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RegenerateSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let (t, secret) = triggers::regenerate_secret(&app, &admin.workspace_id, &id, req).await?;
    Ok(Json(with_secrets(&app, &t, None, Some(secret))))
}

/// Send a test event (the body, or a default one) through the pipeline;
/// the run's type is `TEST`.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-triggers/{id}/test",
    tag = "webhook-triggers",
    operation_id = "test_trigger",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id")),
    request_body(content = Option<Value>, content_type = "application/json", description = "Optional payload, any JSON"),
    responses((status = 202, body = TriggerAnswer), ManagementErrors)
)]
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
        Json(TriggerAnswer {
            status: Outcome::Accepted,
            run_id: Some(run_id),
            duplicate: None,
            run_status: None,
        }),
    ))
}

/// Every call of the trigger that authenticated, newest first (never a
/// secret, token or signature); kept 14 days.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-triggers/{id}/invocations",
    tag = "webhook-triggers",
    operation_id = "list_invocations",
    security(("admin_key" = [])),
    params(("id" = String, Path, description = "The trigger's id"), Paging),
    responses((status = 200, body = InvocationListing), ManagementErrors)
)]
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
    // Calls refused before they authenticated are tallied, not listed:
    // the first page shows the latest tallies.
    let rejected_unauthenticated = if first_page {
        Some(triggers::rejection_tallies(&app, &admin.workspace_id, &id).await?)
    } else {
        None
    };
    Ok(Json(InvocationListing {
        listing,
        rejected_unauthenticated,
    }))
}

/// Every URL that reaches an agent and how each authenticates; never a
/// secret.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}/webhook",
    tag = "agents",
    operation_id = "get_agent_webhooks",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    responses((status = 200, body = AgentWebhookInfo), ManagementErrors)
)]
pub async fn agent_webhook_info(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        triggers::agent_webhook_info(&app, &admin.workspace_id, &agent_id).await?,
    ))
}
