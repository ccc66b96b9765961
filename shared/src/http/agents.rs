//! Management routes for agents.

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
use crate::model::runner::RunnerView;
use crate::model::Agent;
use crate::services::agents::{
    self, CreateAgent, RotateSecret, RotatedSecret, RotatedSigningSecret, UpdateAgent,
};
use crate::services::usage::{self, UsageReport};

/// An agent as the API shows it: its record (write-only credentials as
/// whether they are set) and where to send its webhooks.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentView {
    id: crate::ids::AgentId,
    workspace_id: crate::ids::WorkspaceId,
    name: String,
    runner: RunnerView,
    /// Bumped by every update; runs record the version they were made for.
    version: u64,
    timeout_seconds: u64,
    enabled: bool,
    /// Runs executing at once at most; null: only the workspace's cap.
    max_concurrent_runs: Option<u32>,
    /// Its runs with the same key value never overlap (null: no key).
    concurrency: Option<crate::model::Concurrency>,
    #[serde(with = "crate::clock::ts")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::clock::ts")]
    updated_at: chrono::DateTime<chrono::Utc>,
    /// The per-agent trigger URL (`X-Signature` with the agent's secret).
    webhook_url: String,
}

/// A new agent, with its secrets: shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedAgent {
    #[serde(flatten)]
    agent: AgentView,
    /// `whk_…`: signs calls to `webhook_url`. Not shown again.
    webhook_secret: String,
    /// `whsec_…`: hookrun signs its calls to an `http` agent with it
    /// (Standard Webhooks `webhook-*` headers). Not shown again.
    signing_secret: String,
}

pub fn view(app: &App, agent: Agent) -> AgentView {
    let base = app.settings.public_url.as_deref().unwrap_or("");
    AgentView {
        webhook_url: format!(
            "{base}/api/v1/webhooks/{}/{}/trigger",
            agent.workspace_id, agent.id
        ),
        runner: agent.runner.view(),
        id: agent.id,
        workspace_id: agent.workspace_id,
        name: agent.name,
        version: agent.version,
        timeout_seconds: agent.timeout_seconds,
        enabled: agent.enabled,
        max_concurrent_runs: agent.max_concurrent_runs,
        concurrency: agent.concurrency,
        created_at: agent.created_at,
        updated_at: agent.updated_at,
    }
}

/// Create an agent.
#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    operation_id = "create_agent",
    security(("admin_key" = [])),
    request_body = CreateAgent,
    responses(
        (status = 201, description = "Created; `Location` names it", body = CreatedAgent, headers(("Location" = String, description = "The new resource's path"))),
        ManagementErrors
    )
)]
pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let created = agents::create_agent(&app, &admin.workspace_id, req).await?;
    let location = format!("/api/v1/agents/{}", created.agent.id);
    let body = CreatedAgent {
        agent: view(&app, created.agent),
        webhook_secret: created.webhook_secret,
        signing_secret: created.signing_secret,
    };
    Ok(super::created(location, body))
}

/// List the workspace's agents.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    operation_id = "list_agents",
    security(("admin_key" = [])),
    params(Paging),
    responses((status = 200, body = Listing<AgentView>), ManagementErrors)
)]
pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing = agents::list(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing.map(|a| view(&app, a))))
}

/// Read an agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}",
    tag = "agents",
    operation_id = "get_agent",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    responses((status = 200, body = AgentView), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    Ok(Json(view(&app, agent)))
}

/// Update an agent (bumps its `version`); absent fields are kept.
#[utoipa::path(
    patch,
    path = "/api/v1/agents/{agent_id}",
    tag = "agents",
    operation_id = "update_agent",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    request_body = UpdateAgent,
    responses((status = 200, body = AgentView), ManagementErrors)
)]
pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::update(&app, &admin.workspace_id, &agent_id, req).await?;
    Ok(Json(view(&app, agent)))
}

/// Delete an agent, its triggers and its secret.
#[utoipa::path(
    delete,
    path = "/api/v1/agents/{agent_id}",
    tag = "agents",
    operation_id = "delete_agent",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    responses((status = 204, description = "Deleted"), ManagementErrors)
)]
pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    agents::delete(&app, &admin.workspace_id, &agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give the agent a new webhook secret (shown once); the previous one
/// keeps working for `grace_seconds`. The body may be empty.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{agent_id}/rotate-secret",
    tag = "agents",
    operation_id = "rotate_agent_secret",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    request_body(content = Option<RotateSecret>, description = "Optional"),
    responses((status = 200, body = RotatedSecret), ManagementErrors)
)]
pub async fn rotate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let rotated = agents::rotate_secret(&app, &admin.workspace_id, &agent_id, req).await?;
    Ok(Json(rotated))
}

/// Give the agent a new signing secret (shown once), the secret hookrun
/// signs its calls to an `http` agent with; during `grace_seconds` calls
/// carry a signature by the previous one too. The body may be empty.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{agent_id}/rotate-signing-secret",
    tag = "agents",
    operation_id = "rotate_agent_signing_secret",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    request_body(content = Option<RotateSecret>, description = "Optional"),
    responses((status = 200, body = RotatedSigningSecret), ManagementErrors)
)]
pub async fn rotate_signing_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let rotated = agents::rotate_signing_secret(&app, &admin.workspace_id, &agent_id, req).await?;
    Ok(Json(rotated))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Count runs created at or after this time: RFC 3339, or a date
    /// (`YYYY-MM-DD`, midnight UTC). Default: 30 days ago.
    since: Option<String>,
}

/// Tokens the agent's runs used, per day (UTC) and model.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}/usage",
    tag = "agents",
    operation_id = "get_agent_usage",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id"), UsageQuery),
    responses((status = 200, body = UsageReport), ManagementErrors)
)]
pub async fn usage(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    let since = usage::parse_since(q.since.as_deref(), app.clock.now())?;
    Ok(Json(usage::of_agent(&app, &agent, since).await?))
}
