//! Internal routes (between services only): `X-Internal-Token`, nothing else.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;

use super::extract::{ApiPath, SourceIp};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::error::{Entity, Error};
use crate::ids::{AgentId, WorkspaceId};
use crate::services::{agents, ratelimit};
use crate::signature::secrets_equal;

pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

async fn check_token(app: &App, headers: &HeaderMap, from: SourceIp) -> Result<(), ApiError> {
    // Without a configured token the internal routes do not exist: they
    // answer as an unregistered route would.
    let Some(expected) = app.settings.internal_token.as_deref() else {
        return Err(ApiError::no_route());
    };
    let presented = headers
        .get(INTERNAL_TOKEN_HEADER)
        .ok_or_else(|| Error::unauthorized("missing X-Internal-Token"))?
        .to_str()
        .unwrap_or("");
    if secrets_equal(expected, presented) {
        Ok(())
    } else {
        let refused = Error::unauthorized("invalid internal token");
        Err(ratelimit::failed_auth(app, from.0, refused).await.into())
    }
}

/// An agent's current webhook secret, for services of the same deployment.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct InternalAgentSecret {
    agent_id: AgentId,
    workspace_id: WorkspaceId,
    webhook_secret: String,
}

/// An agent's current webhook secret, for other services of the same
/// deployment. Absent (404) unless `HOOKRUN_INTERNAL_TOKEN` is set.
#[utoipa::path(
    get,
    path = "/api/v1/internal/agents/{agent_id}/webhook-secret",
    tag = "agents",
    operation_id = "get_agent_secret_internal",
    security(("internal_token" = [])),
    params(("agent_id" = String, Path, description = "The agent's id")),
    responses((status = 200, body = InternalAgentSecret), ManagementErrors)
)]
pub async fn agent_webhook_secret(
    State(app): State<App>,
    from: SourceIp,
    headers: HeaderMap,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_token(&app, &headers, from).await?;
    let agent = agents::find_any(&app, &agent_id)
        .await?
        .ok_or(Error::NotFound(Entity::Agent))?;
    let secret = agents::secret(&app, &agent).await?;
    Ok(Json(InternalAgentSecret {
        agent_id: agent.id,
        workspace_id: agent.workspace_id,
        webhook_secret: secret.current,
    }))
}
