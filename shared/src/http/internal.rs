//! Internal routes (between services only): `X-Internal-Token`, nothing else.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::extract::ApiPath;
use super::ApiError;
use crate::app::App;
use crate::error::{Entity, Error};
use crate::services::agents;
use crate::signature::secrets_equal;

pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

fn check_token(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
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
        Err(Error::unauthorized("invalid internal token").into())
    }
}

/// `GET /api/v1/internal/agents/{agentId}/webhook-secret`
pub async fn agent_webhook_secret(
    State(app): State<App>,
    headers: HeaderMap,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_token(&app, &headers)?;
    let agent = agents::find_any(&app, &agent_id)
        .await?
        .ok_or(Error::NotFound(Entity::Agent))?;
    let secret = agents::secret(&app, &agent).await?;
    Ok(Json(json!({
        "agent_id": agent.id,
        "workspace_id": agent.workspace_id,
        "webhook_secret": secret.current,
    })))
}
