//! Subscriptions (outgoing webhooks) and their deliveries, as the
//! management API sees them.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{ApiError, StoreError};
use crate::ids;
use crate::model::subscription::{ENVIRONMENTS, EVENTS};
use crate::model::{from_item, Delivery, DeliveryAttempt, Subscription};
use crate::ports::{Condition, Index, Query, QueueId};
use crate::seal;
use crate::services::delivery::DeliveryMessage;

/// `whsec_` + base64 of 32 random bytes (the Standard Webhooks form).
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub environment: Option<String>,
    pub agent_id: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub environment: Option<String>,
    /// `null` removes the agent filter.
    #[serde(default, with = "double_option")]
    pub agent_id: Option<Option<String>>,
    pub enabled: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSubscriptionSecret {
    /// How long the previous secret also signs deliveries (default 0).
    pub grace_seconds: Option<i64>,
}

/// A subscription as the API shows it: never its secret.
#[derive(Debug, Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub environment: String,
    pub agent_id: Option<String>,
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
            environment: s.environment.clone(),
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

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn validate_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "events must name at least one of {}",
            EVENTS.join(", ")
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown event {e:?}; events are {}",
                EVENTS.join(", ")
            )));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn validate_environment(env: Option<&str>) -> Result<String, ApiError> {
    let env = env.unwrap_or("production");
    if !ENVIRONMENTS.contains(&env) {
        return Err(ApiError::BadRequest(
            "environment must be production or staging".into(),
        ));
    }
    Ok(env.to_owned())
}

async fn validate_url(app: &App, url: &str) -> Result<String, ApiError> {
    app.settings
        .outbound
        .check_destination(url)
        .await
        .map_err(|e| ApiError::BadRequest(format!("url {e}")))?;
    Ok(url.to_owned())
}

async fn validate_agent(
    app: &App,
    workspace_id: &str,
    agent_id: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(a) = agent_id {
        if crate::services::agents::find(app, workspace_id, a)
            .await?
            .is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "agent_id {a:?} is not an agent of this workspace"
            )));
        }
    }
    Ok(())
}

/// The subscription and, once, its secret.
pub async fn create(
    app: &App,
    workspace_id: &str,
    req: CreateSubscription,
) -> Result<(Subscription, String), ApiError> {
    let name = validate_name(&req.name)?;
    let events = validate_events(&req.events)?;
    let environment = validate_environment(req.environment.as_deref())?;
    validate_agent(app, workspace_id, req.agent_id.as_deref()).await?;
    let url = validate_url(app, &req.url).await?;
    let secret = new_secret();
    let now = app.clock.now();
    let sub = Subscription {
        id: ids::new_id("sub"),
        workspace_id: workspace_id.to_owned(),
        name,
        url,
        events,
        environment,
        agent_id: req.agent_id,
        enabled: req.enabled.unwrap_or(true),
        disabled_reason: None,
        failing_since: None,
        secret_sealed: seal::seal_with_current(app, &secret).await?,
        previous_secret_sealed: None,
        previous_secret_valid_until: None,
        created_at: now,
        updated_at: now,
    };
    app.items.put(sub.to_item(1), Condition::NotExists).await?;
    Ok((sub, secret))
}

pub async fn find(
    app: &App,
    workspace_id: &str,
    id: &str,
) -> Result<Option<(Subscription, u64)>, ApiError> {
    match load(app, id).await? {
        Some((s, v)) if s.workspace_id == workspace_id => Ok(Some((s, v))),
        _ => Ok(None),
    }
}

/// A subscription by id alone (the delivery worker's view).
pub async fn load(app: &App, id: &str) -> Result<Option<(Subscription, u64)>, ApiError> {
    Ok(crate::model::load(app, id, Subscription::key).await?)
}

pub async fn get(app: &App, workspace_id: &str, id: &str) -> Result<Subscription, ApiError> {
    find(app, workspace_id, id)
        .await?
        .map(|(s, _)| s)
        .ok_or(ApiError::NotFound("subscription"))
}

pub async fn list(
    app: &App,
    workspace_id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Subscription>, Option<String>), ApiError> {
    Ok(crate::model::page_of(
        app,
        Query::partition(Index::Gsi1, Subscription::list_partition(workspace_id))
            .limit(limit)
            .after(cursor),
    )
    .await?)
}

pub async fn update(
    app: &App,
    workspace_id: &str,
    id: &str,
    req: UpdateSubscription,
) -> Result<Subscription, ApiError> {
    let (mut sub, version) = find(app, workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("subscription"))?;
    if let Some(n) = &req.name {
        sub.name = validate_name(n)?;
    }
    if let Some(e) = &req.events {
        sub.events = validate_events(e)?;
    }
    if req.environment.is_some() {
        sub.environment = validate_environment(req.environment.as_deref())?;
    }
    if let Some(agent) = req.agent_id {
        validate_agent(app, workspace_id, agent.as_deref()).await?;
        sub.agent_id = agent;
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
    app.items
        .put(sub.to_item(version + 1), Condition::Version(version))
        .await?;
    Ok(sub)
}

pub async fn delete(app: &App, workspace_id: &str, id: &str) -> Result<(), ApiError> {
    let (sub, version) = find(app, workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("subscription"))?;
    let (pk, sk) = Subscription::key(&sub.id);
    match app
        .items
        .delete(&pk, &sk, Condition::Version(version))
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed) => {
            Err(ApiError::Conflict("the subscription changed; retry".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The new secret (shown once) and until when the previous one also signs.
pub async fn rotate_secret(
    app: &App,
    workspace_id: &str,
    id: &str,
    req: RotateSubscriptionSecret,
) -> Result<(Subscription, String), ApiError> {
    let grace = req.grace_seconds.unwrap_or(0);
    if !(0..=30 * 24 * 3600).contains(&grace) {
        return Err(ApiError::BadRequest(
            "grace_seconds must be between 0 and 2592000".into(),
        ));
    }
    let (mut sub, version) = find(app, workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("subscription"))?;
    let secret = new_secret();
    let now = app.clock.now();
    let old = std::mem::replace(
        &mut sub.secret_sealed,
        seal::seal_with_current(app, &secret).await?,
    );
    if grace > 0 {
        sub.previous_secret_sealed = Some(old);
        sub.previous_secret_valid_until = Some(now + chrono::Duration::seconds(grace));
    } else {
        sub.previous_secret_sealed = None;
        sub.previous_secret_valid_until = None;
    }
    sub.updated_at = now;
    app.items
        .put(sub.to_item(version + 1), Condition::Version(version))
        .await?;
    Ok((sub, secret))
}

pub async fn deliveries(
    app: &App,
    workspace_id: &str,
    subscription_id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Delivery>, Option<String>), ApiError> {
    let sub = get(app, workspace_id, subscription_id).await?;
    Ok(crate::model::page_of(
        app,
        Query::partition(Index::Gsi1, Delivery::list_partition(&sub.id))
            .backward()
            .limit(limit)
            .after(cursor),
    )
    .await?)
}

/// A delivery by id alone, with its item version.
pub async fn load_delivery(app: &App, id: &str) -> Result<Option<(Delivery, u64)>, ApiError> {
    Ok(crate::model::load(app, id, Delivery::key).await?)
}

/// A delivery of the workspace and its attempts, oldest first.
pub async fn delivery(
    app: &App,
    workspace_id: &str,
    id: &str,
) -> Result<(Delivery, Vec<DeliveryAttempt>), ApiError> {
    let (d, _) = load_delivery(app, id)
        .await?
        .filter(|(d, _)| d.workspace_id == workspace_id)
        .ok_or(ApiError::NotFound("delivery"))?;
    let (pk, _) = Delivery::key(&d.id);
    let mut attempts = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .items
            .query(
                Query::partition(Index::Primary, &pk)
                    .prefix("ATT#")
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        attempts.extend(
            page.items
                .iter()
                .map(from_item)
                .collect::<Result<Vec<DeliveryAttempt>, _>>()?,
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok((d, attempts))
}

/// Queues one manual attempt of a delivery (not retried if it fails).
pub async fn redeliver(app: &App, workspace_id: &str, id: &str) -> Result<Delivery, ApiError> {
    let (d, _) = delivery(app, workspace_id, id).await?;
    let msg = DeliveryMessage {
        delivery_id: d.id.clone(),
        manual: true,
    };
    app.queue
        .send(
            QueueId::Deliveries,
            &serde_json::to_string(&msg).expect("serialises"),
            Duration::ZERO,
        )
        .await?;
    Ok(d)
}
