//! Triggers: named, token-authenticated ways in to an agent (seeds 001–004),
//! and their invocation logs.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::App;
use crate::error::{ApiError, StoreError};
use crate::ids;
use crate::model::subscription::ENVIRONMENTS;
use crate::model::{from_item, AllowedSources, Invocation, SignatureConfig, Trigger};
use crate::ports::{Condition, Index, Item, Query, TxOp};
use crate::providers;
use crate::seal;
use crate::services::{agents, subscriptions};

/// A trigger token: shown once, stored as its SHA-256.
pub fn new_token() -> String {
    format!("wht_{}", ids::random_hex(24))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    pub agent_id: String,
    pub name: String,
    pub description: Option<String>,
    /// Make a signing secret (shown once).
    #[serde(default)]
    pub generate_secret: bool,
    /// Or use this one (e.g. a Stripe or Slack signing secret).
    pub secret: Option<String>,
    pub signature: Option<SignatureConfig>,
    pub allowed_sources: Option<AllowedSources>,
    pub input_mapping: Option<serde_json::Map<String, Value>>,
    pub event_types: Option<Vec<String>>,
    pub environment: Option<String>,
    pub rate_limit_per_minute: Option<u32>,
    pub metadata: Option<Value>,
    /// Also answer `POST /api/v1/agents/{agentId}/webhook` (one per agent).
    #[serde(default)]
    pub agent_route: bool,
    pub is_active: Option<bool>,
}

/// `null` clears a field; absence keeps it.
fn some_or_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTrigger {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub rate_limit_per_minute: Option<Option<u32>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub input_mapping: Option<Option<serde_json::Map<String, Value>>>,
    pub allowed_sources: Option<AllowedSources>,
    pub event_types: Option<Vec<String>>,
    pub signature: Option<SignatureConfig>,
    pub environment: Option<String>,
    pub metadata: Option<Value>,
    pub agent_route: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegenerateSecret {
    /// Use this secret instead of making one.
    pub secret: Option<String>,
}

/// A trigger as the API shows it: never its secret or token.
#[derive(Debug, Serialize)]
pub struct TriggerView {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub name: String,
    pub description: Option<String>,
    pub token_prefix: String,
    pub is_active: bool,
    pub has_secret: bool,
    #[serde(with = "crate::clock::ts::option")]
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by_id: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
    pub signature: Option<SignatureConfig>,
    pub allowed_sources: AllowedSources,
    pub input_mapping: Option<serde_json::Map<String, Value>>,
    pub event_types: Vec<String>,
    pub environment: String,
    pub rate_limit_per_minute: Option<u32>,
    pub metadata: Value,
    pub agent_route: bool,
    /// The URLs that reach this trigger without its token in them.
    pub urls: Value,
}

pub fn view(app: &App, t: &Trigger) -> TriggerView {
    let base = app.settings.public_url.as_deref().unwrap_or("");
    let mut urls = json!({
        "by_id": format!("{base}/api/webhooks/{}", t.id),
        "bearer": format!("{base}/api/v1/webhook/trigger"),
        "token_url": format!("{base}/webhooks/runs/{}…", t.token_prefix),
    });
    if t.agent_route {
        urls["agent"] = json!(format!("{base}/api/v1/agents/{}/webhook", t.agent_id));
    }
    TriggerView {
        id: t.id.clone(),
        workspace_id: t.workspace_id.clone(),
        agent_id: t.agent_id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        token_prefix: t.token_prefix.clone(),
        is_active: t.is_active,
        has_secret: t.secret_sealed.is_some(),
        last_used_at: t.last_used_at,
        created_by_id: t.created_by_id.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        signature: t.secret_sealed.as_ref().map(|_| t.signature.clone()),
        allowed_sources: t.allowed_sources.clone(),
        input_mapping: t.input_mapping.clone(),
        event_types: t.event_types.clone(),
        environment: t.environment.clone(),
        rate_limit_per_minute: t.rate_limit_per_minute,
        metadata: t.metadata.clone(),
        agent_route: t.agent_route,
        urls,
    }
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(bad("name must be 1 to 200 characters"));
    }
    Ok(n.to_owned())
}

fn validate_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > 2000 => {
            Err(bad("description must be at most 2000 characters"))
        }
        other => Ok(other),
    }
}

/// An origin entry as a bare lowercase host.
pub fn origin_host(entry: &str) -> Option<String> {
    let e = entry.trim();
    let host = if e.contains("://") {
        reqwest::Url::parse(e).ok()?.host_str()?.to_owned()
    } else {
        e.split('/').next()?.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

pub fn parse_ip_entry(entry: &str) -> Option<IpNet> {
    let e = entry.trim();
    e.parse::<IpNet>()
        .ok()
        .or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from))
}

fn validate_sources(s: AllowedSources) -> Result<AllowedSources, ApiError> {
    if s.origins.len() + s.ips.len() > 100 {
        return Err(bad("allowed_sources holds at most 100 entries"));
    }
    for o in &s.origins {
        origin_host(o).ok_or_else(|| {
            bad(format!(
                "allowed_sources.origins: {o:?} is not a host or origin"
            ))
        })?;
    }
    for ip in &s.ips {
        parse_ip_entry(ip).ok_or_else(|| {
            bad(format!(
                "allowed_sources.ips: {ip:?} is not an IP address or CIDR"
            ))
        })?;
    }
    Ok(s)
}

/// Mapping values are a JSON pointer, or `{pointer, default, required}`.
fn validate_mapping(m: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    if m.len() > 100 {
        return Err(bad("input_mapping holds at most 100 fields"));
    }
    for (name, spec) in m {
        if name.is_empty() {
            return Err(bad("input_mapping field names must not be empty"));
        }
        let pointer = match spec {
            Value::String(p) => p.as_str(),
            Value::Object(o) => {
                if let Some(k) = o
                    .keys()
                    .find(|k| !["pointer", "default", "required"].contains(&k.as_str()))
                {
                    return Err(bad(format!("input_mapping.{name}: unknown key {k:?}")));
                }
                if o.get("required").is_some_and(|r| !r.is_boolean()) {
                    return Err(bad(format!(
                        "input_mapping.{name}.required must be true or false"
                    )));
                }
                o.get("pointer").and_then(Value::as_str).ok_or_else(|| {
                    bad(format!(
                        "input_mapping.{name}.pointer must be a JSON pointer string"
                    ))
                })?
            }
            _ => {
                return Err(bad(format!(
                    "input_mapping.{name} must be a JSON pointer or an object"
                )))
            }
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(bad(format!(
                "input_mapping.{name}: {pointer:?} is not a JSON pointer (it starts with /)"
            )));
        }
    }
    Ok(())
}

fn validate_events(e: Vec<String>) -> Result<Vec<String>, ApiError> {
    if e.len() > 100 || e.iter().any(|x| x.trim().is_empty() || x.len() > 200) {
        return Err(bad("event_types holds at most 100 non-empty names"));
    }
    Ok(e)
}

fn validate_environment(e: Option<String>) -> Result<String, ApiError> {
    let e = e.unwrap_or_else(|| "production".into());
    if !ENVIRONMENTS.contains(&e.as_str()) {
        return Err(bad("environment must be production or staging"));
    }
    Ok(e)
}

fn validate_rate(r: Option<u32>) -> Result<Option<u32>, ApiError> {
    match r {
        Some(n) if !(1..=100_000).contains(&n) => {
            Err(bad("rate_limit_per_minute must be between 1 and 100000"))
        }
        other => Ok(other),
    }
}

fn validate_metadata(m: Option<Value>) -> Result<Value, ApiError> {
    let m = m.unwrap_or_else(|| json!({}));
    if !m.is_object() {
        return Err(bad("metadata must be a JSON object"));
    }
    if m.to_string().len() > 8 * 1024 {
        return Err(bad("metadata must be at most 8 KiB"));
    }
    Ok(m)
}

fn validate_secret(secret: &str, scheme: &str) -> Result<(), ApiError> {
    if !(8..=512).contains(&secret.len()) {
        return Err(bad("secret must be 8 to 512 characters"));
    }
    if scheme == "standard-webhooks" {
        use base64::Engine;
        let key = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| bad("a standard-webhooks secret starts with whsec_"))?;
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| bad("a standard-webhooks secret is whsec_ and base64"))?;
    }
    Ok(())
}

/// The writes that save a trigger: the trigger item (conditionally), and
/// the token item's copy.
fn save_ops(t: &Trigger, version: u64, cond: Condition) -> Vec<TxOp> {
    vec![
        TxOp::Put(t.to_item(version), cond),
        TxOp::Put(t.token_item(), Condition::None),
    ]
}

fn route_item(t: &Trigger) -> Item {
    let (pk, sk) = Trigger::agent_route_key(&t.agent_id);
    Item::new(pk, sk, json!({ "trigger_id": t.id }))
}

fn route_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::ConditionFailed => ApiError::Conflict(
            "the trigger changed concurrently, or the agent already has a trigger with agent_route"
                .into(),
        ),
        other => other.into(),
    }
}

/// The trigger, its token, and its secret (if any), the last two shown once.
pub async fn create(
    app: &App,
    workspace_id: &str,
    created_by: &str,
    req: CreateTrigger,
) -> Result<(Trigger, String, Option<String>), ApiError> {
    let name = validate_name(&req.name)?;
    agents::find(app, workspace_id, &req.agent_id)
        .await?
        .ok_or_else(|| {
            bad(format!(
                "agent_id {:?} is not an agent of this workspace",
                req.agent_id
            ))
        })?;
    let asked_signature = req.signature.is_some();
    let signature = req.signature.unwrap_or_default();
    providers::validate(&signature).map_err(bad)?;
    let secret = match (req.generate_secret, req.secret) {
        (true, Some(_)) => return Err(bad("give either generate_secret or secret, not both")),
        (true, None) => Some(subscriptions::new_secret()),
        (false, Some(s)) => {
            validate_secret(&s, &signature.scheme)?;
            Some(s)
        }
        (false, None) if asked_signature => {
            return Err(bad(
                "a signature scheme needs a secret: add generate_secret: true or secret",
            ));
        }
        (false, None) => None,
    };
    if let Some(mapping) = &req.input_mapping {
        validate_mapping(mapping)?;
    }
    let now = app.clock.now();
    let token = new_token();
    let trigger = Trigger {
        id: ids::new_id("trg"),
        workspace_id: workspace_id.to_owned(),
        agent_id: req.agent_id,
        name,
        description: validate_description(req.description)?,
        token_hash: ids::sha256_hex(&token),
        token_prefix: ids::display_prefix(&token),
        is_active: req.is_active.unwrap_or(true),
        secret_sealed: match &secret {
            Some(s) => Some(seal::seal_with_current(app, s).await?),
            None => None,
        },
        signature,
        allowed_sources: validate_sources(req.allowed_sources.unwrap_or_default())?,
        input_mapping: req.input_mapping,
        event_types: validate_events(req.event_types.unwrap_or_default())?,
        environment: validate_environment(req.environment)?,
        rate_limit_per_minute: validate_rate(req.rate_limit_per_minute)?,
        metadata: validate_metadata(req.metadata)?,
        agent_route: req.agent_route,
        last_used_at: None,
        created_by_id: created_by.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let mut ops = vec![
        TxOp::Put(trigger.to_item(1), Condition::NotExists),
        TxOp::Put(trigger.token_item(), Condition::NotExists),
    ];
    if trigger.agent_route {
        ops.push(TxOp::Put(route_item(&trigger), Condition::NotExists));
    }
    app.items.transact(ops).await.map_err(route_conflict)?;
    Ok((trigger, token, secret))
}

/// A trigger by id alone, with its version.
pub async fn load(app: &App, id: &str) -> Result<Option<(Trigger, u64)>, ApiError> {
    Ok(crate::model::load(app, id, Trigger::key).await?)
}

/// The trigger a token belongs to (one GetItem on the token's hash).
pub async fn by_token(app: &App, token: &str) -> Result<Option<Trigger>, ApiError> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let (pk, sk) = Trigger::token_key(&ids::sha256_hex(token));
    Ok(match app.items.get(&pk, &sk).await? {
        Some(item) => Some(from_item(&item)?),
        None => None,
    })
}

/// The trigger that answers an agent's source-validated route.
pub async fn by_agent_route(app: &App, agent_id: &str) -> Result<Option<Trigger>, ApiError> {
    if !ids::is_plausible_id(agent_id) {
        return Ok(None);
    }
    let (pk, sk) = Trigger::agent_route_key(agent_id);
    let Some(item) = app.items.get(&pk, &sk).await? else {
        return Ok(None);
    };
    let id = item.data["trigger_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(load(app, &id).await?.map(|(t, _)| t))
}

pub async fn find(app: &App, workspace_id: &str, id: &str) -> Result<(Trigger, u64), ApiError> {
    let (t, v) = load(app, id)
        .await?
        .filter(|(t, _)| t.workspace_id == workspace_id)
        .ok_or(ApiError::NotFound("trigger"))?;
    Ok((with_last_used(app, t).await?, v))
}

pub async fn list(
    app: &App,
    workspace_id: &str,
    agent_id: Option<&str>,
    limit: usize,
    mut cursor: Option<String>,
) -> Result<(Vec<Trigger>, Option<String>), ApiError> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let page = app
            .items
            .query(
                Query::partition(Index::Gsi1, Trigger::list_partition(workspace_id))
                    .limit(limit - out.len())
                    .after(cursor.take()),
            )
            .await?;
        for item in &page.items {
            let t: Trigger = from_item(item)?;
            if agent_id.is_none_or(|a| a == t.agent_id) {
                out.push(with_last_used(app, t).await?);
            }
        }
        cursor = page.next_cursor;
        if out.len() >= limit || cursor.is_none() {
            break;
        }
    }
    Ok((out, cursor))
}

pub async fn update(
    app: &App,
    workspace_id: &str,
    id: &str,
    req: UpdateTrigger,
) -> Result<Trigger, ApiError> {
    let (mut t, version) = find(app, workspace_id, id).await?;
    let was_route = t.agent_route;
    if let Some(n) = &req.name {
        t.name = validate_name(n)?;
    }
    if let Some(d) = req.description {
        t.description = validate_description(d)?;
    }
    if let Some(a) = req.is_active {
        t.is_active = a;
    }
    if let Some(r) = req.rate_limit_per_minute {
        t.rate_limit_per_minute = validate_rate(r)?;
    }
    if let Some(m) = req.input_mapping {
        if let Some(m) = &m {
            validate_mapping(m)?;
        }
        t.input_mapping = m;
    }
    if let Some(s) = req.allowed_sources {
        t.allowed_sources = validate_sources(s)?;
    }
    if let Some(e) = req.event_types {
        t.event_types = validate_events(e)?;
    }
    if let Some(s) = req.signature {
        providers::validate(&s).map_err(bad)?;
        if t.secret_sealed.is_none() {
            return Err(bad(
                "a signature scheme needs a secret: set one with regenerate-secret first",
            ));
        }
        if s.scheme == "standard-webhooks" && t.secret_sealed.is_some() {
            let secret =
                seal::open_sealed(app, t.secret_sealed.as_deref().unwrap_or_default()).await?;
            validate_secret(&secret, &s.scheme)?;
        }
        t.signature = s;
    }
    if req.environment.is_some() {
        t.environment = validate_environment(req.environment)?;
    }
    if req.metadata.is_some() {
        t.metadata = validate_metadata(req.metadata)?;
    }
    if let Some(r) = req.agent_route {
        t.agent_route = r;
    }
    t.updated_at = app.clock.now();
    let mut ops = save_ops(&t, version + 1, Condition::Version(version));
    match (was_route, t.agent_route) {
        (false, true) => ops.push(TxOp::Put(route_item(&t), Condition::NotExists)),
        (true, false) => {
            let (pk, sk) = Trigger::agent_route_key(&t.agent_id);
            ops.push(TxOp::Delete {
                pk,
                sk,
                condition: Condition::None,
            });
        }
        _ => {}
    }
    app.items.transact(ops).await.map_err(route_conflict)?;
    Ok(t)
}

/// Deletes the trigger; its token and id URLs answer 404 from now on.
pub async fn delete(app: &App, workspace_id: &str, id: &str) -> Result<(), ApiError> {
    let (t, version) = find(app, workspace_id, id).await?;
    let (pk, sk) = Trigger::key(&t.id);
    let (tpk, tsk) = Trigger::token_key(&t.token_hash);
    let mut ops = vec![
        TxOp::Delete {
            pk,
            sk,
            condition: Condition::Version(version),
        },
        TxOp::Delete {
            pk: tpk,
            sk: tsk,
            condition: Condition::None,
        },
    ];
    if t.agent_route {
        let (rpk, rsk) = Trigger::agent_route_key(&t.agent_id);
        ops.push(TxOp::Delete {
            pk: rpk,
            sk: rsk,
            condition: Condition::None,
        });
    }
    app.items.transact(ops).await.map_err(route_conflict)
}

/// A new token (shown once); the old one stops working at once.
pub async fn regenerate_token(
    app: &App,
    workspace_id: &str,
    id: &str,
) -> Result<(Trigger, String), ApiError> {
    let (mut t, version) = find(app, workspace_id, id).await?;
    let (old_pk, old_sk) = Trigger::token_key(&t.token_hash);
    let token = new_token();
    t.token_hash = ids::sha256_hex(&token);
    t.token_prefix = ids::display_prefix(&token);
    t.updated_at = app.clock.now();
    let mut ops = save_ops(&t, version + 1, Condition::Version(version));
    ops.push(TxOp::Delete {
        pk: old_pk,
        sk: old_sk,
        condition: Condition::None,
    });
    app.items.transact(ops).await.map_err(route_conflict)?;
    Ok((t, token))
}

/// A new secret (made, or the one given), shown once; the old one stops at once.
pub async fn regenerate_secret(
    app: &App,
    workspace_id: &str,
    id: &str,
    req: RegenerateSecret,
) -> Result<(Trigger, String), ApiError> {
    let (mut t, version) = find(app, workspace_id, id).await?;
    let secret = match req.secret {
        Some(s) => {
            validate_secret(&s, &t.signature.scheme)?;
            s
        }
        None => subscriptions::new_secret(),
    };
    t.secret_sealed = Some(seal::seal_with_current(app, &secret).await?);
    t.updated_at = app.clock.now();
    app.items
        .transact(save_ops(&t, version + 1, Condition::Version(version)))
        .await
        .map_err(route_conflict)?;
    Ok((t, secret))
}

pub async fn invocations(
    app: &App,
    workspace_id: &str,
    id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<Invocation>, Option<String>), ApiError> {
    let (t, _) = find(app, workspace_id, id).await?;
    Ok(crate::model::page_of(
        app,
        Query::partition(Index::Primary, Invocation::partition(&t.id))
            .backward()
            .limit(limit)
            .after(cursor),
    )
    .await?)
}

/// Records a call of a trigger (best effort: a lost log line never fails
/// the call itself).
pub async fn record_invocation(app: &App, inv: Invocation) {
    if let Err(e) = app.items.put(inv.to_item(), Condition::None).await {
        tracing::warn!(trigger_id = %inv.trigger_id, error = %e, "could not record an invocation");
    }
}

/// When this process last recorded a trigger's use.
static TOUCHED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
> = std::sync::LazyLock::new(Default::default);

fn used_key(id: &str) -> (String, String) {
    (format!("TRGUSED#{id}"), "USED".to_owned())
}

/// Records that the trigger was used, at most once a minute per trigger and
/// process. It is an item of its own, so the ingress function never
/// rewrites a trigger's configuration.
pub async fn touch(app: &App, t: &Trigger) {
    {
        let mut seen = TOUCHED.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .get(&t.id)
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(60))
        {
            return;
        }
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(t.id.clone(), std::time::Instant::now());
    }
    let (pk, sk) = used_key(&t.id);
    let item = Item::new(
        pk,
        sk,
        json!({ "last_used_at": crate::clock::rfc3339(app.clock.now()) }),
    );
    if let Err(e) = app.items.put(item, Condition::None).await {
        tracing::debug!(trigger_id = %t.id, error = %e, "last_used_at not recorded");
    }
}

/// Fills in `last_used_at` from its own item.
pub async fn with_last_used(app: &App, mut t: Trigger) -> Result<Trigger, ApiError> {
    let (pk, sk) = used_key(&t.id);
    if let Some(item) = app.items.get(&pk, &sk).await? {
        t.last_used_at = item.data["last_used_at"]
            .as_str()
            .and_then(|s| s.parse().ok());
    }
    Ok(t)
}

/// What an external system needs to register an agent's webhooks: every
/// URL that reaches it, how each authenticates, and the allowed sources.
/// Never a secret or a token.
pub async fn agent_webhook_info(
    app: &App,
    workspace_id: &str,
    agent_id: &str,
) -> Result<Value, ApiError> {
    let agent = agents::get(app, workspace_id, agent_id).await?;
    let base = app.settings.public_url.as_deref().unwrap_or("");
    let mut urls = vec![json!({
        "url": format!("{base}/api/v1/webhooks/{}/{}/trigger", agent.workspace_id, agent.id),
        "method": "POST",
        "auth": "X-Signature: hex HMAC-SHA256 of the body with the agent's webhook secret (X-Webhook-Secret deprecated)",
    })];
    let (triggers, _) = list(app, workspace_id, Some(&agent.id), 100, None).await?;
    for t in &triggers {
        let scheme = if t.secret_sealed.is_some() {
            t.signature.scheme.clone()
        } else {
            "none".into()
        };
        urls.push(json!({
            "trigger_id": t.id,
            "name": t.name,
            "is_active": t.is_active,
            "url": format!("{base}/api/webhooks/{}", t.id),
            "method": "POST",
            "auth": if t.secret_sealed.is_some() { format!("signature ({scheme}) or X-Webhook-Secret") } else { "none".into() },
        }));
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/api/v1/webhook/trigger"),
            "method": "POST",
            "auth": format!("Authorization: Bearer {}… (the trigger token){}", t.token_prefix, if t.secret_sealed.is_some() { format!(", plus signature ({scheme})") } else { String::new() }),
        }));
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/webhooks/runs/{}…", t.token_prefix),
            "method": "POST",
            "auth": "the trigger token in the URL",
        }));
    }
    let route = by_agent_route(app, &agent.id).await?;
    if let Some(t) = &route {
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/api/v1/agents/{}/webhook", agent.id),
            "method": "POST",
            "auth": if t.secret_sealed.is_some() { format!("source validation and signature ({})", t.signature.scheme) } else { "source validation".into() },
        }));
    }
    Ok(json!({
        "agent_id": agent.id,
        "enabled": agent.enabled,
        "urls": urls,
        "allowed_sources": route.map(|t| serde_json::to_value(&t.allowed_sources).unwrap_or_default()),
    }))
}
