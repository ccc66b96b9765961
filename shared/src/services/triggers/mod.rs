//! Triggers: named, token-authenticated ways in to an agent, and their
//! invocation logs. Request and answer shapes are in [`requests`], the
//! checks in [`validate`], usage (last use, invocations) in [`usage`], the
//! agent's webhook summary in [`info`]; storage is `crate::repo::triggers`.

mod info;
mod requests;
mod usage;
pub mod validate;

pub use info::{agent_webhook_info, AgentWebhookInfo, WebhookUrl};
pub use requests::{base_url, view, CreateTrigger, RegenerateSecret, TriggerView, UpdateTrigger};
pub use usage::{
    count_rejection, invocations, may_log, record_invocation, rejection_tallies, touch,
};

use crate::app::App;
use crate::error::{Error, StoreError};
use crate::ids::{self, AgentId, TriggerId, WorkspaceId};
use crate::model::{Agent, SignatureScheme, Trigger};
use crate::providers;
use crate::repo::{Listing, Versioned};
use crate::services::{concurrency, sealing};

/// A lost condition on a trigger write: a concurrent change, or a second
/// trigger claiming the agent's route.
fn route_conflict(e: StoreError) -> Error {
    match e {
        StoreError::ConditionFailed => Error::Conflict(
            "the trigger changed concurrently, or the agent already has a trigger with agent_route"
                .into(),
        ),
        other => other.into(),
    }
}

/// The trigger, its token, and its secret (if any), the last two shown once.
pub async fn create(
    app: &App,
    workspace_id: &WorkspaceId,
    created_by: &str,
    req: CreateTrigger,
) -> Result<(Trigger, String, Option<String>), Error> {
    let name = validate::name(&req.name)?;
    let agent = match app.repo.find::<Agent>(workspace_id, &req.agent_id).await {
        Ok(a) => a.record,
        Err(Error::NotFound(_)) => {
            return Err(Error::invalid(
                "agent_id",
                format!(
                    "agent_id {:?} is not an agent of this workspace",
                    req.agent_id
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let asked_signature = req.signature.is_some();
    let signature = req.signature.unwrap_or_default();
    providers::validate(&signature).map_err(|m| Error::invalid("signature", m))?;
    let secret = match (req.generate_secret, req.secret) {
        (true, Some(_)) => {
            return Err(Error::invalid(
                "secret",
                "give either generate_secret or secret, not both",
            ))
        }
        (true, None) => Some(ids::signing_secret()),
        (false, Some(s)) => {
            validate::secret(&s, signature.scheme)?;
            Some(s)
        }
        (false, None) if asked_signature => {
            return Err(Error::invalid(
                "secret",
                "a signature scheme needs a secret: add generate_secret: true or secret",
            ));
        }
        (false, None) => None,
    };
    if let Some(mapping) = &req.input_mapping {
        validate::mapping(mapping)?;
    }
    if let Some(c) = &req.concurrency {
        concurrency::validate(c)?;
    }
    let now = app.clock.now();
    let token = ids::trigger_token();
    let trigger = Trigger {
        id: TriggerId::generate(),
        workspace_id: workspace_id.clone(),
        agent_id: agent.id,
        name,
        description: validate::description(req.description)?,
        token_hash: ids::sha256_hex(&token),
        token_prefix: ids::display_prefix(&token),
        is_active: req.is_active.unwrap_or(true),
        secret_sealed: match &secret {
            Some(s) => Some(sealing::seal_with_current(app, s).await?),
            None => None,
        },
        signature,
        allowed_sources: validate::sources(req.allowed_sources.unwrap_or_default())?,
        input_mapping: req.input_mapping,
        event_types: validate::event_types(req.event_types.unwrap_or_default())?,
        environment: req.environment.unwrap_or_default(),
        rate_limit_per_minute: validate::rate(req.rate_limit_per_minute)?,
        metadata: validate::metadata(req.metadata)?,
        agent_route: req.agent_route,
        respond_when: req.respond_when.unwrap_or_default(),
        concurrency: req.concurrency,
        last_used_at: None,
        created_by_id: created_by.to_owned(),
        created_at: now,
        updated_at: now,
    };
    app.repo
        .create_trigger(&trigger)
        .await
        .map_err(route_conflict)?;
    app.forget_cached();
    Ok((trigger, token, secret))
}

/// A trigger by id alone (the id route), without its last use.
pub async fn by_id(app: &App, id: &str) -> Result<Option<Trigger>, Error> {
    Ok(app.repo.get::<Trigger>(id).await?.map(|v| v.record))
}

/// The trigger a token belongs to (one GetItem on the token's hash).
pub async fn by_token(app: &App, token: &str) -> Result<Option<Trigger>, Error> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    Ok(app
        .repo
        .trigger_by_token_hash(&ids::sha256_hex(token))
        .await?)
}

/// The trigger that answers an agent's source-validated route.
pub async fn by_agent_route(app: &App, agent_id: &str) -> Result<Option<Trigger>, Error> {
    let Some(agent_id) = AgentId::parse(agent_id) else {
        return Ok(None);
    };
    match app.repo.agent_route(&agent_id).await? {
        Some(id) => by_id(app, &id).await,
        None => Ok(None),
    }
}

/// A trigger of the workspace with its last use, and its version.
pub async fn find(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<Versioned<Trigger>, Error> {
    let mut t = app.repo.find::<Trigger>(workspace_id, id).await?;
    t.last_used_at = app.repo.last_used(&t.id).await?;
    Ok(t)
}

/// The workspace's triggers (optionally one agent's) in creation order.
pub async fn list(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: Option<&str>,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Trigger>, Error> {
    let agent_id = match agent_id {
        Some(raw) => match AgentId::parse(raw) {
            Some(a) => Some(a),
            // No agent has that id: no trigger belongs to it.
            None => return Ok(Listing::empty()),
        },
        None => None,
    };
    let mut listing = app
        .repo
        .triggers(workspace_id, agent_id.as_ref(), limit, cursor)
        .await?;
    listing.data = usage::all_with_last_used(app, std::mem::take(&mut listing.data)).await?;
    Ok(listing)
}

pub async fn update(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    req: UpdateTrigger,
) -> Result<Trigger, Error> {
    let mut t = find(app, workspace_id, id).await?;
    let old = t.record.clone();
    if let Some(n) = &req.name {
        t.name = validate::name(n)?;
    }
    if let Some(d) = req.description {
        t.description = validate::description(d)?;
    }
    if let Some(a) = req.is_active {
        t.is_active = a;
    }
    if let Some(r) = req.respond_when {
        t.respond_when = r;
    }
    if let Some(c) = req.concurrency {
        if let Some(c) = &c {
            concurrency::validate(c)?;
        }
        t.concurrency = c;
    }
    if let Some(r) = req.rate_limit_per_minute {
        t.rate_limit_per_minute = validate::rate(r)?;
    }
    if let Some(m) = req.input_mapping {
        if let Some(m) = &m {
            validate::mapping(m)?;
        }
        t.input_mapping = m;
    }
    if let Some(s) = req.allowed_sources {
        t.allowed_sources = validate::sources(s)?;
    }
    if let Some(e) = req.event_types {
        t.event_types = validate::event_types(e)?;
    }
    if let Some(s) = req.signature {
        providers::validate(&s).map_err(|m| Error::invalid("signature", m))?;
        let Some(sealed) = t.secret_sealed.as_deref() else {
            return Err(Error::invalid(
                "signature",
                "a signature scheme needs a secret: set one with regenerate-secret first",
            ));
        };
        if s.scheme == SignatureScheme::StandardWebhooks {
            let secret = sealing::open_sealed(app, sealed).await?;
            validate::secret(&secret, s.scheme)?;
        }
        t.signature = s;
    }
    if let Some(e) = req.environment {
        t.environment = e;
    }
    if req.metadata.is_some() {
        t.metadata = validate::metadata(req.metadata)?;
    }
    if let Some(r) = req.agent_route {
        t.agent_route = r;
    }
    t.updated_at = app.clock.now();
    app.repo
        .save_trigger(&mut t, &old)
        .await
        .map_err(route_conflict)?;
    app.forget_cached();
    Ok(t.record)
}

/// Deletes the trigger; its token and id URLs answer 404 from now on.
pub async fn delete(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<(), Error> {
    let t = app.repo.find::<Trigger>(workspace_id, id).await?;
    app.repo.delete_trigger(&t).await.map_err(route_conflict)?;
    app.forget_cached();
    Ok(())
}

/// A new token (shown once); the old one stops working at once.
pub async fn regenerate_token(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<(Trigger, String), Error> {
    let mut t = find(app, workspace_id, id).await?;
    let old = t.record.clone();
    let token = ids::trigger_token();
    t.token_hash = ids::sha256_hex(&token);
    t.token_prefix = ids::display_prefix(&token);
    t.updated_at = app.clock.now();
    app.repo
        .save_trigger(&mut t, &old)
        .await
        .map_err(route_conflict)?;
    app.forget_cached();
    Ok((t.record, token))
}

/// A new secret (made, or the one given), shown once; the old one stops at once.
pub async fn regenerate_secret(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    req: RegenerateSecret,
) -> Result<(Trigger, String), Error> {
    let mut t = find(app, workspace_id, id).await?;
    let old = t.record.clone();
    let secret = match req.secret {
        Some(s) => {
            validate::secret(&s, t.signature.scheme)?;
            s
        }
        None => ids::signing_secret(),
    };
    t.secret_sealed = Some(sealing::seal_with_current(app, &secret).await?);
    t.updated_at = app.clock.now();
    app.repo
        .save_trigger(&mut t, &old)
        .await
        .map_err(route_conflict)?;
    app.forget_cached();
    Ok((t.record, secret))
}
