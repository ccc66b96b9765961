//! Management routes for agents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, OptionalJson, Paging};
use super::ApiError;
use crate::app::App;
use crate::model::Agent;
use crate::services::agents::{self, CreateAgent, RotateSecret, UpdateAgent};

/// An agent as the API shows it: its record and where to send its webhooks.
#[derive(Serialize)]
pub struct AgentView<'a> {
    #[serde(flatten)]
    agent: &'a Agent,
    webhook_url: String,
}

pub fn view<'a>(app: &App, agent: &'a Agent) -> AgentView<'a> {
    let base = app.settings.public_url.as_deref().unwrap_or("");
    AgentView {
        agent,
        webhook_url: format!(
            "{base}/api/v1/webhooks/{}/{}/trigger",
            agent.workspace_id, agent.id
        ),
    }
}

pub async fn create(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let (agent, secret) = agents::create(&app, &admin.workspace_id, req).await?;
    let mut body = serde_json::to_value(view(&app, &agent)).expect("serialises");
    body["webhook_secret"] = json!(secret);
    Ok(super::created(format!("/api/v1/agents/{}", agent.id), body))
}

pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let listing = agents::list(&app, &admin.workspace_id, paging.limit()?, paging.cursor()).await?;
    let listing = listing.map(|a| serde_json::to_value(view(&app, &a)).expect("serialises"));
    Ok(Json(listing))
}

pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    Ok(Json(
        serde_json::to_value(view(&app, &agent)).expect("serialises"),
    ))
}

pub async fn update(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::update(&app, &admin.workspace_id, &agent_id, req).await?;
    Ok(Json(
        serde_json::to_value(view(&app, &agent)).expect("serialises"),
    ))
}

pub async fn delete(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    agents::delete(&app, &admin.workspace_id, &agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateSecret>,
) -> Result<impl IntoResponse, ApiError> {
    let rotated = agents::rotate_secret(&app, &admin.workspace_id, &agent_id, req).await?;
    Ok(Json(rotated))
}
