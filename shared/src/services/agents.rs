//! Agents: create, read, update, delete, and their webhook secrets.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{ApiError, StoreError};
use crate::ids;
use crate::model::agent::{DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS};
use crate::model::{Agent, RunnerConfig};
use crate::ports::{Condition, Index, Query, SecretVersions};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(default = "default_runner")]
    pub runner: RunnerConfig,
    pub timeout_seconds: Option<u64>,
    pub enabled: Option<bool>,
}

fn default_runner() -> RunnerConfig {
    RunnerConfig::Echo
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    pub name: Option<String>,
    pub runner: Option<RunnerConfig>,
    pub timeout_seconds: Option<u64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps working; default from settings.
    pub grace_seconds: Option<i64>,
}

/// The answer to a rotation: the new secret, shown once.
#[derive(Debug, Serialize)]
pub struct RotatedSecret {
    pub agent_id: String,
    pub webhook_secret: String,
    #[serde(with = "crate::clock::ts::option")]
    pub previous_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

const MAX_NAME_CHARS: usize = 200;
const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

/// The URL's form, and an IP-literal host against the outbound policy; a
/// name is checked when it is resolved at run time.
fn validate_runner(app: &App, runner: &RunnerConfig) -> Result<(), ApiError> {
    if let RunnerConfig::Http { url } = runner {
        app.settings
            .outbound
            .check_url(url)
            .map_err(|e| ApiError::BadRequest(format!("runner.url {e}")))?;
    }
    Ok(())
}

fn validate_timeout(t: Option<u64>) -> Result<u64, ApiError> {
    let t = t.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&t) {
        return Err(ApiError::BadRequest(format!(
            "timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}"
        )));
    }
    Ok(t)
}

/// The agent and, once, its webhook secret.
pub async fn create(
    app: &App,
    workspace_id: &str,
    req: CreateAgent,
) -> Result<(Agent, String), ApiError> {
    let name = validate_name(&req.name)?;
    validate_runner(app, &req.runner)?;
    let timeout_seconds = validate_timeout(req.timeout_seconds)?;
    let now = app.clock.now();
    let agent = Agent {
        id: ids::agent_id(),
        workspace_id: workspace_id.to_owned(),
        name,
        runner: req.runner,
        version: 1,
        timeout_seconds,
        enabled: req.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let secret = ids::agent_secret();
    let secret_name = Agent::secret_name(&app.settings.secret_prefix, workspace_id, &agent.id);
    // Secret first: an agent item never exists without its secret.
    app.secrets
        .put(&secret_name, &SecretVersions::new(secret.clone()))
        .await?;
    if let Err(e) = app.items.put(agent.to_item(), Condition::NotExists).await {
        if let Err(cleanup) = app.secrets.delete(&secret_name).await {
            tracing::warn!(agent_id = %agent.id, error = %cleanup, "orphaned agent secret after failed create");
        }
        return Err(e.into());
    }
    Ok((agent, secret))
}

/// The agent, if it exists and belongs to the workspace; other workspaces'
/// agents are indistinguishable from missing ones.
pub async fn find(
    app: &App,
    workspace_id: &str,
    agent_id: &str,
) -> Result<Option<(Agent, u64)>, ApiError> {
    let found: Option<(Agent, u64)> = crate::model::load(app, agent_id, Agent::key).await?;
    Ok(found.filter(|(a, _)| a.workspace_id == workspace_id))
}

pub async fn get(app: &App, workspace_id: &str, agent_id: &str) -> Result<Agent, ApiError> {
    find(app, workspace_id, agent_id)
        .await?
        .map(|(a, _)| a)
        .ok_or(ApiError::NotFound("agent"))
}

pub async fn list(
    app: &App,
    workspace_id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Agent>, Option<String>), ApiError> {
    let query = Query::partition(Index::Gsi1, Agent::list_partition(workspace_id))
        .limit(limit)
        .after(cursor);
    Ok(crate::model::page_of(app, query).await?)
}

pub async fn update(
    app: &App,
    workspace_id: &str,
    agent_id: &str,
    req: UpdateAgent,
) -> Result<Agent, ApiError> {
    let (mut agent, version) = find(app, workspace_id, agent_id)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    if let Some(name) = &req.name {
        agent.name = validate_name(name)?;
    }
    if let Some(runner) = req.runner {
        validate_runner(app, &runner)?;
        agent.runner = runner;
    }
    if req.timeout_seconds.is_some() {
        agent.timeout_seconds = validate_timeout(req.timeout_seconds)?;
    }
    if let Some(enabled) = req.enabled {
        agent.enabled = enabled;
    }
    agent.version = version + 1;
    agent.updated_at = app.clock.now();
    app.items
        .put(agent.to_item(), Condition::Version(version))
        .await?;
    Ok(agent)
}

pub async fn delete(app: &App, workspace_id: &str, agent_id: &str) -> Result<(), ApiError> {
    let (agent, version) = find(app, workspace_id, agent_id)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    let (pk, sk) = Agent::key(&agent.id);
    match app
        .items
        .delete(&pk, &sk, Condition::Version(version))
        .await
    {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Err(ApiError::NotFound("agent")),
        Err(e) => return Err(e.into()),
    }
    // The agent is gone for every route already; the secret goes next.
    app.secrets
        .delete(&Agent::secret_name(
            &app.settings.secret_prefix,
            workspace_id,
            &agent.id,
        ))
        .await?;
    Ok(())
}

/// Replaces the webhook secret; the previous one stays valid for the grace
/// window (0 ends it at once).
pub async fn rotate_secret(
    app: &App,
    workspace_id: &str,
    agent_id: &str,
    req: RotateSecret,
) -> Result<RotatedSecret, ApiError> {
    let agent = get(app, workspace_id, agent_id).await?;
    let grace = req
        .grace_seconds
        .unwrap_or(app.settings.default_secret_grace_seconds);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::BadRequest(format!(
            "grace_seconds must be between 0 and {MAX_GRACE_SECONDS}"
        )));
    }
    let name = Agent::secret_name(&app.settings.secret_prefix, workspace_id, &agent.id);
    // Past any cache: a rotation must build on the value stored now, or a
    // second rotation elsewhere would keep a stale "previous".
    let old = app
        .secrets
        .get_uncached(&name)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("agent {} has no secret", agent.id)))?;
    let now = app.clock.now();
    let new_secret = ids::agent_secret();
    let until = (grace > 0).then(|| now + Duration::seconds(grace));
    let value = SecretVersions {
        current: new_secret.clone(),
        previous: until.map(|_| old.current),
        previous_valid_until: until,
    };
    app.secrets.put(&name, &value).await?;
    Ok(RotatedSecret {
        agent_id: agent.id,
        webhook_secret: new_secret,
        previous_valid_until: until,
    })
}

/// The agent's secret values, for the internal route and for ingress
/// (possibly from a short-lived cache).
pub async fn secret(app: &App, agent: &Agent) -> Result<SecretVersions, ApiError> {
    app.secrets
        .get(&Agent::secret_name(
            &app.settings.secret_prefix,
            &agent.workspace_id,
            &agent.id,
        ))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("agent {} has no secret", agent.id)))
}

/// The agent's secret values read past any cache.
pub async fn fresh_secret(app: &App, agent: &Agent) -> Result<SecretVersions, ApiError> {
    app.secrets
        .get_fresh(&Agent::secret_name(
            &app.settings.secret_prefix,
            &agent.workspace_id,
            &agent.id,
        ))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("agent {} has no secret", agent.id)))
}

/// An agent by id alone, for the internal route (no workspace context).
pub async fn find_any(app: &App, agent_id: &str) -> Result<Option<Agent>, ApiError> {
    Ok(crate::model::load(app, agent_id, Agent::key)
        .await?
        .map(|(a, _)| a))
}
