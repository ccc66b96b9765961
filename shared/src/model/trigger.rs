use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Environment, Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, RunId, TriggerId, WorkspaceId};
use crate::ports::Item;

/// How a trigger's callers sign their calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum SignatureScheme {
    /// An HMAC-SHA256 of the body in a header of the trigger's choosing
    /// (Grafana, Shopify and many others).
    #[default]
    Hmac,
    /// `X-Hub-Signature-256`.
    Github,
    /// `Stripe-Signature` (`t=…,v1=…`).
    Stripe,
    /// `X-Slack-Signature` with `X-Slack-Request-Timestamp`.
    Slack,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks,
}

impl SignatureScheme {
    pub const ALL: [SignatureScheme; 5] = [
        SignatureScheme::Hmac,
        SignatureScheme::Github,
        SignatureScheme::Stripe,
        SignatureScheme::Slack,
        SignatureScheme::StandardWebhooks,
    ];

    /// The header a provider's signature arrives in (`hmac`: the default
    /// one; a trigger may name another).
    pub fn header_name(self) -> &'static str {
        match self {
            SignatureScheme::Hmac => "X-Webhook-Signature",
            SignatureScheme::Github => "X-Hub-Signature-256",
            SignatureScheme::Stripe => "Stripe-Signature",
            SignatureScheme::Slack => "X-Slack-Signature",
            SignatureScheme::StandardWebhooks => "webhook-signature",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureScheme::Hmac => "hmac",
            SignatureScheme::Github => "github",
            SignatureScheme::Stripe => "stripe",
            SignatureScheme::Slack => "slack",
            SignatureScheme::StandardWebhooks => "standard-webhooks",
        }
    }
}

impl TryFrom<String> for SignatureScheme {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("signature.scheme must be one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a trigger's callers prove they hold its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureConfig {
    /// `hmac` (default), `github`, `stripe`, `slack` or `standard-webhooks`.
    #[serde(default)]
    pub scheme: SignatureScheme,
    /// `hmac` only: the header carrying the signature (default `X-Webhook-Signature`).
    #[serde(default)]
    pub header: Option<String>,
    /// `hmac` only: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `hmac` only: text before the signature (default `sha256=` for the
    /// default header, none otherwise).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Timestamped schemes: largest clock difference accepted, in seconds (default 300).
    #[serde(default)]
    pub tolerance: Option<u64>,
}

impl SignatureConfig {
    /// The header a signed call carries: an `hmac` trigger's own header,
    /// else its scheme's (what a 401 challenge and the trigger's
    /// `authentication` name).
    pub fn header_name(&self) -> &str {
        match &self.header {
            Some(h) if self.scheme == SignatureScheme::Hmac => h,
            _ => self.scheme.header_name(),
        }
    }
}

impl Default for SignatureConfig {
    fn default() -> Self {
        SignatureConfig {
            scheme: SignatureScheme::Hmac,
            header: None,
            encoding: None,
            prefix: None,
            tolerance: None,
        }
    }
}

/// Who may call a trigger: an empty list allows everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedSources {
    /// Hosts (or origins such as `https://hooks.example.com`) the `Origin`
    /// header may name.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Addresses or CIDR ranges the caller's IP may be in.
    #[serde(default)]
    pub ips: Vec<String>,
}

impl AllowedSources {
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty() && self.ips.is_empty()
    }
}

/// When a trigger's token route answers a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RespondWhen {
    /// At once, the run queued (`"status":"queued"`).
    #[default]
    Queued,
    /// Once the run has started (`"status":"running"`), waiting up to
    /// 10 s; still `"queued"` when it has not by then.
    Started,
}

/// A named way in to an agent: a token URL, an id URL, a bearer token, and
/// optionally the agent's own source-validated route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: TriggerId,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub name: String,
    pub description: Option<String>,
    pub token_hash: String,
    pub token_prefix: String,
    pub is_active: bool,
    pub secret_sealed: Option<String>,
    pub signature: SignatureConfig,
    pub allowed_sources: AllowedSources,
    /// Input name → JSON pointer (or `{pointer, default, required}`).
    pub input_mapping: Option<serde_json::Map<String, Value>>,
    pub event_types: Vec<String>,
    pub environment: Environment,
    pub rate_limit_per_minute: Option<u32>,
    pub metadata: Value,
    /// Whether `POST /api/v1/agents/{agentId}/webhook` reaches the agent
    /// through this trigger (at most one per agent).
    pub agent_route: bool,
    /// When the token route answers a call.
    #[serde(default)]
    pub respond_when: RespondWhen,
    /// Its calls' runs with the same key value never overlap (instead of
    /// the agent's key, when the agent has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<super::Concurrency>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by_id: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
}

impl Trigger {
    /// Where a token leads: the token item holds a copy of the trigger, so
    /// a token call is resolved with one GetItem.
    pub fn token_key(token_hash: &str) -> Key {
        (format!("TOKEN#{token_hash}"), "TOKEN".to_owned())
    }

    /// Which trigger answers the agent's source-validated route.
    pub fn agent_route_key(agent_id: &str) -> Key {
        (format!("AGENTROUTE#{agent_id}"), "ROUTE".to_owned())
    }

    /// When the trigger was last used: an item of its own, so the ingress
    /// function never rewrites a trigger's configuration.
    pub fn usage_key(id: &str) -> Key {
        (format!("TRGUSED#{id}"), "USED".to_owned())
    }

    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#TRIGGERS")
    }

    pub fn token_item(&self) -> Item {
        let (pk, sk) = Self::token_key(&self.token_hash);
        Item::new(pk, sk, super::to_doc(self))
    }

    pub fn agent_route_item(&self) -> Item {
        let (pk, sk) = Self::agent_route_key(&self.agent_id);
        Item::new(pk, sk, serde_json::json!({ "trigger_id": self.id }))
    }
}

impl Record for Trigger {
    const ENTITY: Entity = Entity::Trigger;

    fn key_for(id: &str) -> Key {
        (format!("TRG#{id}"), "TRG".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn gsi1(&self) -> Option<Key> {
        Some((
            Self::list_partition(&self.workspace_id),
            self.id.to_string(),
        ))
    }
}

impl Scoped for Trigger {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}

/// Calls of a trigger in one minute that were refused before they
/// authenticated (or not logged one by one), by reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectionTally {
    #[serde(with = "crate::clock::ts")]
    pub minute: DateTime<Utc>,
    /// `unauthorized`, `rate_limited`, `too_large`, `bad_request`, or
    /// `not_logged` for calls over the per-minute log cap.
    pub reason: String,
    pub count: u64,
    pub last_source_ip: Option<String>,
}

/// What became of one call of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvocationResult {
    /// A new run was queued.
    Accepted,
    /// A repeat of an earlier call (same idempotency key).
    Duplicate,
    /// The trigger does not want this event.
    Ignored,
    /// A run of its concurrency key was going (`on_conflict: skip`): no
    /// new run; `run_id` names the one going.
    Skipped,
    /// Refused (authentication, limits, bad input).
    Rejected,
}

/// One call of a trigger, kept for its retention period. Never holds a
/// secret, a token or a signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invocation {
    pub id: String,
    pub trigger_id: TriggerId,
    #[serde(with = "crate::clock::ts")]
    pub timestamp: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub result: InvocationResult,
    pub status: u16,
    pub run_id: Option<RunId>,
    pub error: Option<String>,
    /// The first 2 KiB of the body.
    pub payload_excerpt: Option<String>,
    pub expires_at: Option<i64>,
    /// An operator's test (`POST /api/v1/webhook-triggers/{id}/test`,
    /// `hookrun triggers test`), not a call from outside.
    #[serde(default)]
    pub test: bool,
    /// What else the call came to: why it was skipped, or that its
    /// concurrency key had no value in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Invocation {
    pub fn partition(trigger_id: &str) -> String {
        format!("INVOC#{trigger_id}")
    }

    /// Where calls refused before they authenticated are tallied: one
    /// counter per minute and reason, never a row per call.
    pub fn rejection_partition(trigger_id: &str) -> String {
        format!("INVOCAGG#{trigger_id}")
    }

    pub fn rejection_sort_key(minute: i64, reason: &str) -> String {
        format!("{minute:012}#{reason}")
    }

    pub fn to_item(&self) -> Item {
        Item::new(
            Self::partition(&self.trigger_id),
            self.id.clone(),
            super::to_doc(self),
        )
        .with_expiry(self.expires_at)
    }
}
