//! Management routes for runs and logs.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::extract::{Admin, ApiPath, ApiQuery, Paging};
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::model::{RunStatus, TriggerType};
use crate::services::agents;
use crate::services::runs::{self, RunFilter};

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    trigger_type: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/v1/agents/{agentId}/runs?trigger_type=&status=&limit=&cursor=`
pub async fn list_for_agent(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    let filter = RunFilter {
        trigger_type: q
            .trigger_type
            .as_deref()
            .map(|t| {
                TriggerType::parse(t).ok_or_else(|| {
                    Error::invalid(
                        "trigger_type",
                        "trigger_type must be one of WEBHOOK, TOKEN, SCHEDULE, API, TEST",
                    )
                })
            })
            .transpose()?,
        status: q
            .status
            .as_deref()
            .map(|s| {
                RunStatus::parse(s).ok_or_else(|| {
                    Error::invalid(
                        "status",
                        "status must be one of queued, running, succeeded, failed",
                    )
                })
            })
            .transpose()?,
    };
    let paging = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    let listing =
        runs::list_for_agent(&app, &agent.id, &filter, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing))
}

/// `GET /api/v1/runs/{runId}`
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(run_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(runs::get(&app, &admin.workspace_id, &run_id).await?))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    run_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/v1/agents/{agentId}/logs?run_id=&limit=&cursor=`
pub async fn logs(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    let paging = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    let listing = runs::logs(
        &app,
        &agent.id,
        q.run_id.as_deref(),
        paging.limit()?,
        paging.cursor(),
    )
    .await?;
    Ok(Json(listing))
}
