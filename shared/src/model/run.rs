use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Environment, Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{AgentId, RunId, TriggerId, WorkspaceId};
use crate::message::webhook_message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Stopped by a cancel (or replaced by a newer run): never started, or
    /// its runner stopped.
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// The event a run ending in this state announces.
    pub fn terminal_event(self) -> Option<&'static str> {
        match self {
            RunStatus::Succeeded => Some("run.succeeded"),
            RunStatus::Failed => Some("run.failed"),
            RunStatus::Cancelled => Some("run.cancelled"),
            RunStatus::Queued | RunStatus::Running => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerType {
    Webhook,
    Token,
    Schedule,
    Api,
    Test,
}

impl TriggerType {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_ascii_uppercase())).ok()
    }
}

/// What a run's model used, as its provider reported it (a field the
/// provider did not report is null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl Usage {
    /// An OpenAI-style `usage` in an answer (`prompt_tokens` /
    /// `completion_tokens`, or `input_tokens` / `output_tokens`), with the
    /// answer's `model`; None when it carries no token counts.
    pub fn in_answer(answer: &Value) -> Option<Usage> {
        let usage = answer.get("usage")?;
        let count = |names: [&str; 2]| names.iter().find_map(|n| usage.get(*n)?.as_u64());
        let input_tokens = count(["prompt_tokens", "input_tokens"]);
        let output_tokens = count(["completion_tokens", "output_tokens"]);
        if input_tokens.is_none() && output_tokens.is_none() {
            return None;
        }
        let model = answer
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Usage {
            model,
            input_tokens,
            output_tokens,
        })
    }
}

/// One run of an agent. Written `queued` before the trigger's 202; every
/// later change is a conditional write on the item's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub id: RunId,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub agent_version: u64,
    pub trigger_id: Option<TriggerId>,
    pub trigger_type: TriggerType,
    pub status: RunStatus,
    pub input: Value,
    pub message: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    /// How many times an executor has started this run.
    pub attempt: u32,
    pub session_id: String,
    pub source_ip: Option<String>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// Tokens its model used (null when the agent reported none).
    #[serde(default)]
    pub usage: Option<Usage>,
    /// While `running`: the end of the executor's first lease on it (the
    /// lease itself is its slot, renewed while the agent runs).
    #[serde(with = "crate::clock::ts::option", default)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// While `running`: which of its workspace's slots the executor holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    pub timeout_seconds: u64,
    /// Which subscriptions hear of it.
    #[serde(default)]
    pub environment: Environment,
    /// Unix seconds; the item's TTL.
    pub expires_at: Option<i64>,
    /// Its cancellation and its retries.
    #[serde(flatten, default)]
    pub control: RunControl,
}

/// Run control: who cancelled a run and why, and the retries made of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunControl {
    #[serde(with = "crate::clock::ts::option", default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The admin key that cancelled it (its id), when one did.
    #[serde(default)]
    pub cancelled_by: Option<String>,
    /// `requested` (a cancel call) or `replaced` (a newer run of its
    /// concurrency key).
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// The run this one retries (same input and message).
    #[serde(default)]
    pub retry_of: Option<RunId>,
    /// The runs made as retries of this one, oldest first (at most
    /// [`MAX_LISTED_RETRIES`]).
    #[serde(default)]
    pub retries: Vec<RunId>,
    /// The value of its agent's or trigger's concurrency key: runs with
    /// the same value never overlap. None: the run is unconstrained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// The newer run of its concurrency key that replaced it
    /// (`cancel_reason: replaced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<RunId>,
    /// The schedule whose fire made it (`trigger_type: SCHEDULE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<crate::ids::ScheduleId>,
}

/// Retries a run lists at most (more may exist; each names its original).
pub const MAX_LISTED_RETRIES: usize = 100;

/// Largest run document stored: DynamoDB items hold 400 KB, keys and the
/// other attributes included.
pub const MAX_STORED_RUN_BYTES: usize = 350 * 1024;

impl Run {
    /// The size of the stored document.
    pub fn stored_size(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    pub fn agent_partition(agent_id: &str) -> String {
        format!("AGENT#{agent_id}#RUNS")
    }

    /// The workspace's runs, in the second GSI.
    pub fn workspace_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#RUNS")
    }
}

/// The partition-key prefix of run items.
pub(crate) const PK_PREFIX: &str = "RUN#";

/// Puts back the message a stored run left out (see [`Record::to_doc`]
/// for [`Run`]): the one its input makes.
pub(crate) fn expand_doc(doc: &mut Value) {
    if let Some(obj) = doc.as_object_mut() {
        if !obj.contains_key("message") {
            let message = obj.get("input").map(webhook_message).unwrap_or_default();
            obj.insert("message".into(), Value::String(message));
        }
    }
}

impl Record for Run {
    const ENTITY: Entity = Entity::Run;

    fn key_for(id: &str) -> Key {
        (format!("{PK_PREFIX}{id}"), "RUN".to_owned())
    }

    /// The payload is stored once: a message that is the formatted input
    /// (always on the agent route, and on trigger routes whose payload
    /// names its own event and source) is left out and rebuilt on reading,
    /// which halves a run item and each of its writes.
    fn to_doc(&self) -> Value {
        let mut doc = super::to_doc(self);
        if self.message == webhook_message(&self.input) {
            if let Some(obj) = doc.as_object_mut() {
                obj.remove("message");
            }
        }
        doc
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn gsi1(&self) -> Option<Key> {
        Some((Self::agent_partition(&self.agent_id), self.id.to_string()))
    }

    fn gsi2(&self) -> Option<Key> {
        Some((
            Self::workspace_partition(&self.workspace_id),
            self.id.to_string(),
        ))
    }

    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

impl Scoped for Run {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::from_item;
    use serde_json::json;

    fn run(input: Value, message: String) -> Run {
        Run {
            id: RunId::generate(),
            workspace_id: WorkspaceId::generate(),
            agent_id: AgentId::generate(),
            agent_version: 1,
            trigger_id: None,
            trigger_type: TriggerType::Webhook,
            status: RunStatus::Queued,
            input,
            message,
            output: None,
            error: None,
            exit_code: None,
            attempt: 0,
            session_id: "s".into(),
            source_ip: None,
            // Stored to the millisecond.
            created_at: DateTime::from_timestamp_millis(1_795_000_000_123).unwrap(),
            started_at: None,
            completed_at: None,
            duration_ms: None,
            usage: None,
            lease_expires_at: None,
            slot: None,
            timeout_seconds: 60,
            environment: Environment::default(),
            expires_at: None,
            control: RunControl::default(),
        }
    }

    #[test]
    fn the_payload_is_stored_once_and_the_message_rebuilt() {
        let input = json!({"event": "push", "data": {"big": "x".repeat(2000)}});
        let r = run(input.clone(), webhook_message(&input));
        let item = r.to_item(1);
        assert!(item.data.get("message").is_none(), "derived: not stored");
        let full = serde_json::to_string(&r).unwrap().len();
        assert!(
            item.data.to_string().len() + 2000 < full,
            "the payload once, not twice"
        );
        let back: Run = from_item(&item).unwrap();
        assert_eq!(back, r, "read back whole");

        // A message of its own (a payload's `message`, a mapped input) is kept.
        let own = run(input, "deploy v2".into());
        let item = own.to_item(1);
        assert_eq!(item.data["message"], "deploy v2");
        assert_eq!(from_item::<Run>(&item).unwrap(), own);
    }
}
