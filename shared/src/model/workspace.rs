use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Key, Record};
use crate::error::Entity;
use crate::ids::WorkspaceId;

/// A tenant: agents, runs and keys belong to exactly one workspace (the
/// compatibility routes' `crewId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
}

impl Record for Workspace {
    const ENTITY: Entity = Entity::Workspace;

    fn key_for(id: &str) -> Key {
        (format!("WS#{id}"), "WS".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }
}
