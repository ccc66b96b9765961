//! What the trigger pipeline resolves a route to (`services::ingress::target`),
//! and what a process caches it under (`App::targets`).

use crate::model::{Agent, Trigger};

/// What a call is for: an agent, and the trigger when the route names one.
#[derive(Clone, Debug)]
pub struct Target {
    pub agent: Agent,
    pub trigger: Option<Trigger>,
}

impl Target {
    /// The id limits and dedup keys are scoped to.
    pub fn id(&self) -> &str {
        self.trigger
            .as_ref()
            .map(|t| t.id.as_str())
            .unwrap_or(&self.agent.id)
    }
}

/// What a target is cached under: how the route named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetKey {
    Agent {
        workspace: String,
        agent: String,
    },
    /// The SHA-256 of a trigger token (URL and bearer routes).
    Token(String),
    Trigger(String),
    AgentRoute(String),
}
