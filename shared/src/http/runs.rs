//! Management routes for runs and logs.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Paging};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::model::listing::Listing;
use crate::model::{LogLine, Run, RunStatus, TriggerType};
use crate::services::agents;
use crate::services::control::{self, CancelReason};
use crate::services::replay::{self, ReplayAnswer, ReplayRequest};
use crate::services::runs::{self, RunFilter};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs started this way (any case).
    #[param(value_type = Option<TriggerType>)]
    trigger_type: Option<String>,
    /// Only runs in these states: one, or several separated by commas
    /// (`failed,cancelled`).
    #[param(value_type = Option<String>, example = "failed,cancelled")]
    status: Option<String>,
    /// Only runs of this trigger.
    trigger_id: Option<String>,
    /// Only runs this schedule's fires made.
    schedule_id: Option<String>,
    /// Only runs with this concurrency key value.
    concurrency_key: Option<String>,
    /// Only runs made at or after this time (RFC 3339).
    created_after: Option<String>,
    /// Only runs made before this time (RFC 3339).
    created_before: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page (of the same filter).
    cursor: Option<String>,
}

impl RunsQuery {
    /// The filter it asks for; a bad value is a 400 naming its field.
    fn filter(&self) -> Result<RunFilter, Error> {
        let trigger_type = self
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
            .transpose()?;
        let mut status = Vec::new();
        for s in self.status.as_deref().unwrap_or_default().split(',') {
            if s.trim().is_empty() {
                continue;
            }
            status.push(RunStatus::parse(s.trim()).ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "status {:?} is none of queued, running, succeeded, failed, cancelled",
                        s.trim()
                    ),
                )
            })?);
        }
        let created_after = runs::time_param("created_after", self.created_after.as_deref())?;
        let created_before = runs::time_param("created_before", self.created_before.as_deref())?;
        if let (Some(a), Some(b)) = (created_after, created_before) {
            if a >= b {
                return Err(Error::invalid(
                    "created_before",
                    "created_before must be later than created_after",
                ));
            }
        }
        Ok(RunFilter {
            trigger_type,
            status,
            trigger_id: self.trigger_id.clone(),
            schedule_id: self.schedule_id.clone(),
            concurrency_key: self.concurrency_key.clone(),
            created_after,
            created_before,
        })
    }

    fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// An agent's runs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}/runs",
    tag = "agents",
    operation_id = "list_runs",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id"), RunsQuery),
    responses((status = 200, body = Listing<Run>), ManagementErrors)
)]
pub async fn list_for_agent(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    let filter = q.filter()?;
    let paging = q.paging();
    let listing =
        runs::list_for_agent(&app, &agent.id, &filter, paging.limit()?, paging.cursor()).await?;
    Ok(Json(listing))
}

/// The agent a workspace listing narrows to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentParam {
    /// Only runs of this agent.
    agent_id: Option<String>,
}

/// The workspace's runs, newest first, across its agents: from an index
/// of the workspace's runs, never a scan. Runs recorded before hookrun
/// kept that index are listed only per agent (or with `agent_id`).
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "agents",
    operation_id = "list_workspace_runs",
    security(("admin_key" = [])),
    params(AgentParam, RunsQuery),
    responses((status = 200, body = Listing<Run>), ManagementErrors)
)]
pub async fn list(
    State(app): State<App>,
    admin: Admin,
    ApiQuery(agent): ApiQuery<AgentParam>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let filter = q.filter()?;
    let paging = q.paging();
    let listing = runs::list(
        &app,
        &admin.workspace_id,
        agent.agent_id.as_deref(),
        &filter,
        paging.limit()?,
        paging.cursor(),
    )
    .await?;
    Ok(Json(listing))
}

/// One run: status, input, message, output, error, times.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run_id}",
    tag = "agents",
    operation_id = "get_run",
    security(("admin_key" = [])),
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, body = Run), ManagementErrors)
)]
pub async fn get(
    State(app): State<App>,
    admin: Admin,
    ApiPath(run_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(runs::get(&app, &admin.workspace_id, &run_id).await?))
}

/// Cancel a queued or running run. A queued run never starts; a running
/// run's runner is stopped (its request dropped). Cancelling a cancelled
/// run answers it as it is; a finished run is a `409` naming its status.
#[utoipa::path(
    post,
    path = "/api/v1/runs/{run_id}/cancel",
    tag = "agents",
    operation_id = "cancel_run",
    security(("admin_key" = [])),
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The run, cancelled", body = Run), ManagementErrors)
)]
pub async fn cancel(
    State(app): State<App>,
    admin: Admin,
    ApiPath(run_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let run = control::cancel(
        &app,
        &admin.workspace_id,
        &run_id,
        Some(&admin.key_id),
        CancelReason::Requested,
    )
    .await?;
    Ok(Json(run))
}

/// Retry a finished run: a new run with the same input and message,
/// through the agent's current configuration. It names the original
/// (`retry_of`) and the original lists it (`retries`).
#[utoipa::path(
    post,
    path = "/api/v1/runs/{run_id}/retry",
    tag = "agents",
    operation_id = "retry_run",
    security(("admin_key" = [])),
    params(("run_id" = String, Path, description = "The run to retry")),
    responses((status = 201, description = "The new run, queued", body = Run), ManagementErrors)
)]
pub async fn retry(
    State(app): State<App>,
    admin: Admin,
    ApiPath(run_id): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let run = control::retry(&app, &admin.workspace_id, &run_id).await?;
    Ok((axum::http::StatusCode::CREATED, Json(run)))
}

/// Replay an agent's finished runs that match a filter (`status`, default
/// `failed`; `created_after`/`created_before`; `trigger_id`): retries of at
/// most `limit` (1000) of them per call, newest first, with a cursor to go
/// on; a repeated call makes none twice. With `dry_run`, only their count
/// and first ids.
#[utoipa::path(
    post,
    path = "/api/v1/runs/replay",
    tag = "agents",
    operation_id = "replay_runs",
    security(("admin_key" = [])),
    request_body = ReplayRequest,
    responses((status = 200, body = ReplayAnswer), ManagementErrors)
)]
pub async fn replay(
    State(app): State<App>,
    admin: Admin,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(replay::replay(&app, &admin.workspace_id, req).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only this run's lines.
    run_id: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An agent's log lines, in the order its runs wrote them.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}/logs",
    tag = "agents",
    operation_id = "list_logs",
    security(("admin_key" = [])),
    params(("agent_id" = String, Path, description = "The agent's id"), LogsQuery),
    responses((status = 200, body = Listing<LogLine>), ManagementErrors)
)]
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
