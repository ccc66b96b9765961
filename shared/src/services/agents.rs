//! Agents: create, read, update, delete, and their webhook secrets.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, StoreError};
use crate::ids::{self, AgentId, WorkspaceId};
use crate::model::agent::SigningKey;
use crate::model::agent::{DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS};
use crate::model::runner::WriteOnly;
use crate::model::{Agent, Concurrency, RunnerConfig};
use crate::ports::SecretVersions;
use crate::repo::{Listing, Repo};
use crate::runners::template;
use crate::services::{concurrency, sealing};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// How the agent runs (default `{"type":"echo"}`).
    #[serde(default = "default_runner")]
    pub runner: RunnerConfig,
    /// Default 600.
    #[schema(minimum = 1, maximum = 840)]
    pub timeout_seconds: Option<u64>,
    pub enabled: Option<bool>,
    /// Runs of this agent executing at once at most; more wait their turn
    /// in order. Absent: only the workspace's cap.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent_runs: Option<u32>,
    /// Its runs with the same key value never overlap.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
}

fn default_runner() -> RunnerConfig {
    RunnerConfig::Echo
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub runner: Option<RunnerConfig>,
    #[schema(minimum = 1, maximum = 840)]
    pub timeout_seconds: Option<u64>,
    pub enabled: Option<bool>,
    /// A number sets the cap; `null` removes it.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub max_concurrent_runs: Option<Option<u32>>,
    /// A key replaces the agent's; `null` removes it.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<Concurrency>)]
    pub concurrency: Option<Option<Concurrency>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps working; default from settings.
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_seconds: Option<i64>,
}

/// The answer to a rotation: the new secret, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub agent_id: AgentId,
    pub webhook_secret: String,
    #[serde(with = "crate::clock::ts::option")]
    pub previous_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

const MAX_NAME_CHARS: usize = 200;
const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

fn validate_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The URL's form, and an IP-literal host against the outbound policy (a
/// name is checked when it is resolved at run time); a model runner's
/// model, numbers, templates and credential.
fn validate_runner(app: &App, runner: &RunnerConfig) -> Result<(), Error> {
    let outbound = &app.settings.outbound;
    match runner {
        RunnerConfig::Echo => {}
        RunnerConfig::Http { url, headers } => {
            outbound
                .check_url(url)
                .map_err(|e| Error::invalid("runner.url", format!("runner.url {e}")))?;
            validate_headers(headers.as_ref())?;
        }
        RunnerConfig::Openai(o) => {
            outbound
                .check_url(&o.base_url)
                .map_err(|e| Error::invalid("runner.base_url", format!("runner.base_url {e}")))?;
            validate_model("runner.model", &o.model)?;
            validate_prompting(&o.system, &o.prompt, o.max_tokens, o.temperature)?;
        }
        RunnerConfig::Bedrock(b) => {
            validate_model("runner.model_id", &b.model_id)?;
            if let Some(region) = &b.region {
                validate_region(region)?;
            }
            validate_prompting(&b.system, &b.prompt, b.max_tokens, b.temperature)?;
        }
        RunnerConfig::Lambda(l) => {
            crate::model::runner::check_function(&l.function)
                .map_err(|e| Error::invalid("runner.function", format!("runner.function {e}")))?;
        }
    }
    Ok(())
}

fn validate_model(field: &str, model: &str) -> Result<(), Error> {
    let model = model.trim();
    if model.is_empty() || model.len() > 2048 {
        return Err(Error::invalid(
            field,
            format!("{field} must be 1 to 2048 characters"),
        ));
    }
    Ok(())
}

/// An AWS region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`.
fn validate_region(region: &str) -> Result<(), Error> {
    let ok = (4..=32).contains(&region.len())
        && region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.ends_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(Error::invalid(
            "runner.region",
            format!("runner.region {region:?} is not an AWS region name (like us-east-1)"),
        ));
    }
    Ok(())
}

/// What the model runners share: their templates and numbers.
fn validate_prompting(
    system: &Option<String>,
    prompt: &Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
) -> Result<(), Error> {
    if max_tokens.is_some_and(|m| !(1..=1_000_000).contains(&m)) {
        return Err(Error::invalid(
            "runner.max_tokens",
            "runner.max_tokens must be between 1 and 1000000",
        ));
    }
    if temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(Error::invalid(
            "runner.temperature",
            "runner.temperature must be between 0 and 2",
        ));
    }
    if let Some(system) = system {
        template::check("runner.system", system)?;
    }
    if let Some(prompt) = prompt {
        template::check("runner.prompt", prompt)?;
    }
    Ok(())
}

/// Headers an `http` agent may be given at most.
const MAX_HEADERS: usize = 20;
/// Headers hookrun sets itself (or that shape the connection): an agent's
/// own headers may not replace them.
const RESERVED_HEADERS: [&str; 14] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

fn validate_headers(
    headers: Option<&std::collections::BTreeMap<String, WriteOnly>>,
) -> Result<(), Error> {
    let Some(headers) = headers else {
        return Ok(());
    };
    if headers.len() > MAX_HEADERS {
        return Err(Error::invalid(
            "runner.headers",
            format!("runner.headers may name at most {MAX_HEADERS} headers"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in headers {
        let field = format!("runner.headers.{name}");
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Error::invalid(
                "runner.headers",
                format!("runner.headers: {name:?} is not a header name"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || !seen.insert(lower) {
            return Err(Error::invalid(
                &field,
                format!("{field}: hookrun sets this header itself (or it is given twice)"),
            ));
        }
        if let WriteOnly::Plain(v) = value {
            if reqwest::header::HeaderValue::from_str(v).is_err() {
                return Err(Error::invalid(
                    &field,
                    format!("{field} must be printable ASCII"),
                ));
            }
        }
    }
    Ok(())
}

/// Longest credential a runner takes.
const MAX_CREDENTIAL_BYTES: usize = 4096;

/// Seals the runner's write-only values given in plain text (and refuses
/// a sealed form in a request: only the store holds those).
async fn seal_runner(app: &App, runner: &mut RunnerConfig) -> Result<(), Error> {
    for (field, value) in runner.secrets_mut() {
        let WriteOnly::Plain(plain) = &*value else {
            return Err(Error::invalid(&field, format!("{field} must be a string")));
        };
        let plain = plain.clone();
        if plain.is_empty()
            || plain.len() > MAX_CREDENTIAL_BYTES
            || plain.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                &field,
                format!(
                    "{field} must be 1 to {MAX_CREDENTIAL_BYTES} bytes without control characters"
                ),
            ));
        }
        let hint = value.hint();
        let sealed = sealing::seal_with_current(app, &plain).await?;
        *value = WriteOnly::Sealed { sealed, hint };
    }
    Ok(())
}

/// The runner with its write-only values opened, for one run (never
/// stored or shown).
pub async fn opened_runner(app: &App, runner: &RunnerConfig) -> Result<RunnerConfig, Error> {
    let mut opened = runner.clone();
    for (_, value) in opened.secrets_mut() {
        if let WriteOnly::Sealed { sealed, .. } = value {
            *value = WriteOnly::Plain(sealing::open_sealed(app, sealed).await?);
        }
    }
    Ok(opened)
}

fn validate_max_concurrent(max: Option<u32>) -> Result<Option<u32>, Error> {
    use crate::model::agent::MAX_CONCURRENT_RUNS;
    match max {
        Some(n) if !(1..=MAX_CONCURRENT_RUNS).contains(&n) => Err(Error::invalid(
            "max_concurrent_runs",
            format!("max_concurrent_runs must be between 1 and {MAX_CONCURRENT_RUNS} (leave it out, or null, for no cap of the agent's own)"),
        )),
        other => Ok(other),
    }
}

fn validate_timeout(t: Option<u64>) -> Result<u64, Error> {
    let t = t.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&t) {
        return Err(Error::invalid(
            "timeout_seconds",
            format!("timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}"),
        ));
    }
    Ok(t)
}

/// The agent and, once, its webhook secret (see [`create_agent`]).
pub async fn create(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateAgent,
) -> Result<(Agent, String), Error> {
    let created = create_agent(app, workspace_id, req).await?;
    Ok((created.agent, created.webhook_secret))
}

/// A new agent with the secrets its creation shows once.
pub struct Created {
    pub agent: Agent,
    /// `whk_…`: callers sign webhooks to the agent with it.
    pub webhook_secret: String,
    /// `whsec_…`: hookrun signs its calls to an `http` agent with it.
    pub signing_secret: String,
}

/// Creates an agent, its webhook secret and its signing secret.
pub async fn create_agent(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateAgent,
) -> Result<Created, Error> {
    let name = validate_name(&req.name)?;
    validate_runner(app, &req.runner)?;
    let timeout_seconds = validate_timeout(req.timeout_seconds)?;
    let max_concurrent_runs = validate_max_concurrent(req.max_concurrent_runs)?;
    if let Some(c) = &req.concurrency {
        concurrency::validate(c)?;
    }
    let mut runner = req.runner;
    seal_runner(app, &mut runner).await?;
    let signing_secret = ids::signing_secret();
    let signing = SigningKey {
        sealed: sealing::seal_with_current(app, &signing_secret).await?,
        previous_sealed: None,
        previous_valid_until: None,
    };
    let now = app.clock.now();
    let agent = Agent {
        id: AgentId::generate(),
        workspace_id: workspace_id.clone(),
        name,
        runner,
        version: 1,
        timeout_seconds,
        enabled: req.enabled.unwrap_or(true),
        max_concurrent_runs,
        concurrency: req.concurrency,
        created_at: now,
        updated_at: now,
        signing: Some(signing),
    };
    let secret = ids::agent_secret();
    let secret_name = Agent::secret_name(&app.settings.secret_prefix, workspace_id, &agent.id);
    // Secret first: an agent item never exists without its secret.
    app.secrets
        .put(&secret_name, &SecretVersions::new(secret.clone()))
        .await?;
    if let Err(e) = app.repo.create(&agent).await {
        if let Err(cleanup) = app.secrets.delete(&secret_name).await {
            tracing::warn!(agent_id = %agent.id, error = %cleanup, "orphaned agent secret after failed create");
        }
        return Err(e.into());
    }
    Ok(Created {
        agent,
        webhook_secret: secret,
        signing_secret,
    })
}

/// The answer to a signing-secret rotation: the new secret, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSigningSecret {
    pub agent_id: AgentId,
    /// `whsec_…`: hookrun signs its calls to the agent with it from now on.
    pub signing_secret: String,
    /// Until when calls also carry a signature by the previous secret.
    #[serde(with = "crate::clock::ts::option")]
    pub previous_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Replaces the signing secret; during the grace window (default as for
/// the webhook secret, 0 ends it at once) calls carry a signature by
/// each, so the agent can switch at its own pace.
pub async fn rotate_signing_secret(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: &str,
    req: RotateSecret,
) -> Result<RotatedSigningSecret, Error> {
    let grace = grace_seconds(app, req.grace_seconds)?;
    let mut agent = app.repo.find::<Agent>(workspace_id, agent_id).await?;
    let secret = ids::signing_secret();
    let now = app.clock.now();
    let until = (grace > 0).then(|| now + Duration::seconds(grace));
    let previous = agent.signing.take().map(|k| k.sealed);
    agent.signing = Some(SigningKey {
        sealed: sealing::seal_with_current(app, &secret).await?,
        previous_sealed: until.and(previous),
        previous_valid_until: until,
    });
    agent.updated_at = now;
    app.repo.save(&mut agent).await?;
    app.forget_cached();
    Ok(RotatedSigningSecret {
        agent_id: agent.record.id,
        signing_secret: secret,
        previous_valid_until: until,
    })
}

/// The agent's signing secrets valid now, current first (none for an
/// agent made before agents had one).
pub async fn signing_secrets(app: &App, agent: &Agent) -> Result<Vec<String>, Error> {
    match &agent.signing {
        None => Ok(vec![]),
        Some(k) => {
            sealing::open_current_and_previous(
                app,
                &k.sealed,
                k.previous_sealed.as_deref(),
                k.previous_valid_until,
            )
            .await
        }
    }
}

/// The agent, if it exists and belongs to the workspace; other workspaces'
/// agents are indistinguishable from missing ones.
pub async fn get(app: &App, workspace_id: &WorkspaceId, agent_id: &str) -> Result<Agent, Error> {
    Ok(app.repo.find::<Agent>(workspace_id, agent_id).await?.record)
}

pub async fn list(
    app: &App,
    workspace_id: &WorkspaceId,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Agent>, Error> {
    let query = Repo::gsi_query(Agent::list_partition(workspace_id), false)
        .limit(limit)
        .after(cursor);
    Ok(app.repo.page(query).await?)
}

pub async fn update(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: &str,
    req: UpdateAgent,
) -> Result<Agent, Error> {
    let mut agent = app.repo.find::<Agent>(workspace_id, agent_id).await?;
    if let Some(name) = &req.name {
        agent.name = validate_name(name)?;
    }
    if let Some(mut runner) = req.runner {
        validate_runner(app, &runner)?;
        seal_runner(app, &mut runner).await?;
        // A credential left out is kept; a new one replaces it.
        runner.keep_secrets_of(&agent.runner);
        agent.runner = runner;
    }
    if req.timeout_seconds.is_some() {
        agent.timeout_seconds = validate_timeout(req.timeout_seconds)?;
    }
    if let Some(enabled) = req.enabled {
        agent.enabled = enabled;
    }
    if let Some(max) = req.max_concurrent_runs {
        agent.max_concurrent_runs = validate_max_concurrent(max)?;
    }
    if let Some(c) = req.concurrency {
        if let Some(c) = &c {
            concurrency::validate(c)?;
        }
        agent.concurrency = c;
    }
    agent.updated_at = app.clock.now();
    app.repo.save(&mut agent).await?;
    app.forget_cached();
    Ok(agent.record)
}

pub async fn delete(app: &App, workspace_id: &WorkspaceId, agent_id: &str) -> Result<(), Error> {
    let agent = app.repo.find::<Agent>(workspace_id, agent_id).await?;
    match app.repo.delete(&agent).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(Error::NotFound(crate::error::Entity::Agent))
        }
        Err(e) => return Err(e.into()),
    }
    app.forget_cached();
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

/// A rotation's grace window: as asked, or the deployment's default.
fn grace_seconds(app: &App, asked: Option<i64>) -> Result<i64, Error> {
    let grace = asked.unwrap_or_else(|| {
        i64::try_from(app.settings.default_secret_grace.as_secs()).unwrap_or(MAX_GRACE_SECONDS)
    });
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(Error::invalid(
            "grace_seconds",
            format!("grace_seconds must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    Ok(grace)
}

/// Replaces the webhook secret; the previous one stays valid for the grace
/// window (0 ends it at once).
pub async fn rotate_secret(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: &str,
    req: RotateSecret,
) -> Result<RotatedSecret, Error> {
    let agent = get(app, workspace_id, agent_id).await?;
    let grace = grace_seconds(app, req.grace_seconds)?;
    let name = Agent::secret_name(&app.settings.secret_prefix, workspace_id, &agent.id);
    // Past any cache: a rotation must build on the value stored now, or a
    // second rotation elsewhere would keep a stale "previous".
    let old = app
        .secrets
        .get_uncached(&name)
        .await?
        .ok_or_else(|| Error::Internal(format!("agent {} has no secret", agent.id)))?;
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
pub async fn secret(app: &App, agent: &Agent) -> Result<SecretVersions, Error> {
    app.secrets
        .get(&Agent::secret_name(
            &app.settings.secret_prefix,
            &agent.workspace_id,
            &agent.id,
        ))
        .await?
        .ok_or_else(|| Error::Internal(format!("agent {} has no secret", agent.id)))
}

/// The agent's secret values read past any cache.
pub async fn fresh_secret(app: &App, agent: &Agent) -> Result<SecretVersions, Error> {
    app.secrets
        .get_fresh(&Agent::secret_name(
            &app.settings.secret_prefix,
            &agent.workspace_id,
            &agent.id,
        ))
        .await?
        .ok_or_else(|| Error::Internal(format!("agent {} has no secret", agent.id)))
}

/// [`find_any`] through this process's cache of agents (kept
/// `HOOKRUN_TARGET_CACHE_SECONDS`): the executor's read, so a busy agent
/// costs one read per few seconds, and a disabled or deleted agent stops
/// starting runs within that time everywhere (at once in this process).
pub async fn find_any_cached(app: &App, agent_id: &str) -> Result<Option<Agent>, Error> {
    if let Some(hit) = app.agents.get(&agent_id.to_owned()) {
        return Ok(Some(hit));
    }
    let agent = find_any(app, agent_id).await?;
    if let Some(a) = &agent {
        app.agents.insert(agent_id.to_owned(), a.clone());
    }
    Ok(agent)
}

/// An agent by id alone, for the internal route and the executor (no
/// workspace context).
pub async fn find_any(app: &App, agent_id: &str) -> Result<Option<Agent>, Error> {
    Ok(app.repo.get::<Agent>(agent_id).await?.map(|v| v.record))
}
