//! Subscriptions (outgoing webhooks) and their deliveries, as the
//! management API sees them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, StoreError};
use crate::ids::{self, AgentId, WorkspaceId};
use crate::model::subscription::EVENTS;
use crate::model::{Agent, Delivery, DeliveryAttempt, Environment, Subscription};
use crate::repo::{Listing, Repo};
use crate::services::sealing;
use crate::work::{self, Message};

/// A run event a subscription can hear of, in the document: its names are
/// `model::subscription::EVENTS`, the list the service checks against.
pub struct EventName;

impl utoipa::PartialSchema for EventName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A run event a subscription can hear of."))
            .enum_values(Some(EVENTS))
            .into()
    }
}

impl utoipa::ToSchema for EventName {}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// HTTPS (unless `HOOKRUN_OUTBOUND_ALLOW_HTTP`), to a public address.
    pub url: String,
    #[schema(value_type = Vec<EventName>, min_items = 1)]
    pub events: Vec<String>,
    pub environment: Option<Environment>,
    pub agent_id: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<EventName>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    pub environment: Option<Environment>,
    /// `null` removes the agent filter.
    #[serde(default, deserialize_with = "crate::json::present")]
    pub agent_id: Option<Option<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSubscriptionSecret {
    /// How long the previous secret also signs deliveries (default 0).
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_seconds: Option<i64>,
}

/// A subscription as the API shows it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub environment: Environment,
    pub agent_id: Option<AgentId>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(with = "crate::clock::ts::option")]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts::option")]
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        SubscriptionView {
            id: s.id.clone(),
            workspace_id: s.workspace_id.clone(),
            name: s.name.clone(),
            url: s.url.clone(),
            events: s.events.clone(),
            environment: s.environment,
            agent_id: s.agent_id.clone(),
            enabled: s.enabled,
            disabled_reason: s.disabled_reason.clone(),
            failing_since: s.failing_since,
            previous_secret_valid_until: s.previous_secret_valid_until,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

fn validate_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("name", "name must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

pub(crate) fn validate_events(events: &[String]) -> Result<Vec<String>, Error> {
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            format!("events must name at least one of {}", EVENTS.join(", ")),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(Error::invalid(
                "events",
                format!("unknown event {e:?}; events are {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

async fn validate_url(app: &App, url: &str) -> Result<String, Error> {
    app.settings
        .outbound
        .check_destination(url)
        .await
        .map_err(|e| Error::invalid("url", format!("url {e}")))?;
    Ok(url.to_owned())
}

/// The agent a subscription may be narrowed to: one of this workspace's.
pub(crate) async fn validate_agent(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: Option<&str>,
) -> Result<Option<AgentId>, Error> {
    let Some(a) = agent_id else {
        return Ok(None);
    };
    match app.repo.find::<Agent>(workspace_id, a).await {
        Ok(agent) => Ok(Some(agent.record.id)),
        Err(Error::NotFound(_)) => Err(Error::invalid(
            "agent_id",
            format!("agent_id {a:?} is not an agent of this workspace"),
        )),
        Err(e) => Err(e),
    }
}

/// The subscription and, once, its secret.
pub async fn create(
    app: &App,
    workspace_id: &WorkspaceId,
    req: CreateSubscription,
) -> Result<(Subscription, String), Error> {
    let name = validate_name(&req.name)?;
    let events = validate_events(&req.events)?;
    let environment = req.environment.unwrap_or_default();
    let agent_id = validate_agent(app, workspace_id, req.agent_id.as_deref()).await?;
    let url = validate_url(app, &req.url).await?;
    let secret = crate::ids::signing_secret();
    let now = app.clock.now();
    let sub = Subscription {
        id: ids::new_id("sub"),
        workspace_id: workspace_id.clone(),
        name,
        url,
        events,
        environment,
        agent_id,
        enabled: req.enabled.unwrap_or(true),
        disabled_reason: None,
        failing_since: None,
        secret_sealed: sealing::seal_with_current(app, &secret).await?,
        previous_secret_sealed: None,
        previous_secret_valid_until: None,
        created_at: now,
        updated_at: now,
        listen: None,
    };
    app.repo.create(&sub).await?;
    app.forget_cached();
    Ok((sub, secret))
}

pub async fn get(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<Subscription, Error> {
    Ok(app
        .repo
        .find::<Subscription>(workspace_id, id)
        .await?
        .record)
}

pub async fn list(
    app: &App,
    workspace_id: &WorkspaceId,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Subscription>, Error> {
    let query = Repo::gsi_query(Subscription::list_partition(workspace_id), false)
        .limit(limit)
        .after(cursor);
    Ok(app.repo.page(query).await?)
}

/// A `hookrun listen` session is kept by its client (`services::listen`):
/// a change or a new secret here would leave the client forwarding
/// deliveries it can no longer check. Deleting it ends it.
fn refuse_listen_session(sub: &Subscription) -> Result<(), Error> {
    if sub.listen.is_some() {
        return Err(Error::Conflict(
            "a listen session is kept by its hookrun listen client: stop or restart that instead (deleting it ends it)".into(),
        ));
    }
    Ok(())
}

pub async fn update(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    req: UpdateSubscription,
) -> Result<Subscription, Error> {
    let mut sub = app.repo.find::<Subscription>(workspace_id, id).await?;
    refuse_listen_session(&sub)?;
    if let Some(n) = &req.name {
        sub.name = validate_name(n)?;
    }
    if let Some(e) = &req.events {
        sub.events = validate_events(e)?;
    }
    if let Some(env) = req.environment {
        sub.environment = env;
    }
    if let Some(agent) = req.agent_id {
        sub.agent_id = validate_agent(app, workspace_id, agent.as_deref()).await?;
    }
    if let Some(u) = &req.url {
        sub.url = validate_url(app, u).await?;
    }
    if let Some(enabled) = req.enabled {
        sub.enabled = enabled;
        if enabled {
            // Enabling again starts afresh: new events flow, the failure
            // streak that may have disabled it is forgotten.
            sub.disabled_reason = None;
            sub.failing_since = None;
        }
    }
    sub.updated_at = app.clock.now();
    app.repo.save(&mut sub).await?;
    app.forget_cached();
    Ok(sub.record)
}

pub async fn delete(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<(), Error> {
    let sub = app.repo.find::<Subscription>(workspace_id, id).await?;
    match app.repo.delete(&sub).await {
        Ok(()) => {
            app.forget_cached();
            Ok(())
        }
        Err(StoreError::ConditionFailed) => {
            Err(Error::Conflict("the subscription changed; retry".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The new secret (shown once) and until when the previous one also signs.
pub async fn rotate_secret(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    req: RotateSubscriptionSecret,
) -> Result<(Subscription, String), Error> {
    let grace = req.grace_seconds.unwrap_or(0);
    if !(0..=30 * 24 * 3600).contains(&grace) {
        return Err(Error::invalid(
            "grace_seconds",
            "grace_seconds must be between 0 and 2592000",
        ));
    }
    let mut sub = app.repo.find::<Subscription>(workspace_id, id).await?;
    refuse_listen_session(&sub)?;
    let secret = crate::ids::signing_secret();
    let now = app.clock.now();
    let old = std::mem::replace(
        &mut sub.secret_sealed,
        sealing::seal_with_current(app, &secret).await?,
    );
    if grace > 0 {
        sub.previous_secret_sealed = Some(old);
        sub.previous_secret_valid_until = Some(now + chrono::Duration::seconds(grace));
    } else {
        sub.previous_secret_sealed = None;
        sub.previous_secret_valid_until = None;
    }
    sub.updated_at = now;
    app.repo.save(&mut sub).await?;
    app.forget_cached();
    Ok((sub.record, secret))
}

pub async fn deliveries(
    app: &App,
    workspace_id: &WorkspaceId,
    subscription_id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Delivery>, Error> {
    let sub = get(app, workspace_id, subscription_id).await?;
    Ok(app.repo.deliveries_of(&sub.id, limit, cursor).await?)
}

/// A delivery of the workspace and its attempts, oldest first.
pub async fn delivery(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<(Delivery, Vec<DeliveryAttempt>), Error> {
    let d = app.repo.find::<Delivery>(workspace_id, id).await?.record;
    let attempts = app.repo.attempts(&d.id).await?;
    Ok((d, attempts))
}

/// Queues one manual attempt of a delivery (not retried if it fails).
pub async fn redeliver(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<Delivery, Error> {
    let d = app.repo.find::<Delivery>(workspace_id, id).await?.record;
    let msg = Message::Delivery {
        delivery_id: d.id.clone(),
        manual: true,
    };
    work::send(app, &msg, Duration::ZERO).await?;
    Ok(d)
}
