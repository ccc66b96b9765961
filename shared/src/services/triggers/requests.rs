//! What the management API sends and gets back for triggers: the request
//! bodies, and the trigger as shown (never its secret or token).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::App;
use crate::ids::{AgentId, TriggerId, WorkspaceId};
use crate::model::{
    AllowedSources, Concurrency, Environment, RespondWhen, SignatureConfig, Trigger,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    pub agent_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Make a signing secret (shown once).
    #[serde(default)]
    pub generate_secret: bool,
    /// Or use this one (e.g. a Stripe or Slack signing secret).
    #[schema(min_length = 8, max_length = 512)]
    pub secret: Option<String>,
    pub signature: Option<SignatureConfig>,
    pub allowed_sources: Option<AllowedSources>,
    /// Input field name to a JSON pointer into the payload, or
    /// `{"pointer", "default", "required"}`.
    pub input_mapping: Option<serde_json::Map<String, Value>>,
    /// Only these events start runs (others answer `ignored`).
    #[schema(max_items = 100)]
    pub event_types: Option<Vec<String>>,
    pub environment: Option<Environment>,
    #[schema(minimum = 1, maximum = 100_000)]
    pub rate_limit_per_minute: Option<u32>,
    /// A JSON object of at most 8 KiB.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Also answer `POST /api/v1/agents/{agentId}/webhook` (one per agent).
    #[serde(default)]
    pub agent_route: bool,
    pub is_active: Option<bool>,
    /// When the token route answers: `queued` (default, at once) or
    /// `started` (once the run starts, waiting up to 10 s).
    #[serde(default)]
    pub respond_when: Option<RespondWhen>,
    /// Its calls' runs with the same key value never overlap (instead
    /// of the agent's key).
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTrigger {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(max_length = 2000)]
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(minimum = 1, maximum = 100_000)]
    pub rate_limit_per_minute: Option<Option<u32>>,
    #[serde(default, deserialize_with = "crate::json::present")]
    pub input_mapping: Option<Option<serde_json::Map<String, Value>>>,
    pub allowed_sources: Option<AllowedSources>,
    #[schema(max_items = 100)]
    pub event_types: Option<Vec<String>>,
    pub signature: Option<SignatureConfig>,
    pub environment: Option<Environment>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub agent_route: Option<bool>,
    pub respond_when: Option<RespondWhen>,
    /// A key replaces the trigger's; `null` removes it (its calls then
    /// follow the agent's key, if any).
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(value_type = Option<Concurrency>)]
    pub concurrency: Option<Option<Concurrency>>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateSecret {
    /// Use this secret instead of making one.
    #[schema(min_length = 8, max_length = 512)]
    pub secret: Option<String>,
}

/// A trigger as the API shows it: never its secret or token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    pub id: TriggerId,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub name: String,
    pub description: Option<String>,
    pub token_prefix: String,
    pub is_active: bool,
    pub has_secret: bool,
    /// The last accepted call, written at most once a minute per trigger
    /// and process: it may lag the last call by up to a minute.
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
    pub environment: Environment,
    pub rate_limit_per_minute: Option<u32>,
    pub metadata: Value,
    pub agent_route: bool,
    pub respond_when: RespondWhen,
    /// Its own concurrency key (null: the agent's, if any, counts).
    pub concurrency: Option<Concurrency>,
    /// The URLs that reach this trigger without its token in them.
    pub urls: Value,
    /// How a call to each of `urls` authenticates, in words, under the
    /// same keys. A trigger without a secret says so here: its id URL
    /// (and agent route) then take calls from anyone who knows the id.
    pub authentication: Value,
}

/// How each of a trigger's URLs authenticates (`TriggerView::authentication`).
pub fn authentication(t: &Trigger) -> Value {
    let signed = t.secret_sealed.as_ref().map(|_| {
        format!(
            "the trigger's {} signature in {}",
            t.signature.scheme,
            t.signature.header_name()
        )
    });
    let by_id = match &signed {
        Some(sig) if t.signature.scheme == crate::model::SignatureScheme::Hmac => {
            format!("{sig}, or the secret itself in X-Webhook-Secret")
        }
        Some(sig) => sig.clone(),
        None => "none: anyone who knows the trigger id can call it; give the trigger a secret \
                 (regenerate-secret) to require a signature"
            .to_owned(),
    };
    let plus = |base: &str| match &signed {
        Some(sig) => format!("{base}, plus {sig}"),
        None => base.to_owned(),
    };
    let mut auth = json!({
        "by_id": by_id,
        "bearer": plus("Authorization: Bearer with the trigger token"),
        "token_url": plus("the trigger token in the URL"),
    });
    if t.agent_route {
        auth["agent"] = json!(match &signed {
            Some(sig) => format!("the allowed sources, plus {sig}"),
            None => "the allowed sources only (Origin host or caller IP; an empty list allows all)"
                .to_owned(),
        });
    }
    auth
}

/// The base every shown URL starts with (`HOOKRUN_PUBLIC_URL`, or none).
pub fn base_url(app: &App) -> &str {
    app.settings.public_url.as_deref().unwrap_or("")
}

pub fn view(app: &App, t: &Trigger) -> TriggerView {
    let base = base_url(app);
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
        environment: t.environment,
        rate_limit_per_minute: t.rate_limit_per_minute,
        metadata: t.metadata.clone(),
        agent_route: t.agent_route,
        respond_when: t.respond_when,
        concurrency: t.concurrency.clone(),
        urls,
        authentication: authentication(t),
    }
}
