//! A WebSocket connection of API Gateway's WebSocket API (AWS only:
//! `hookrun serve` holds its connections in memory): whose it is, and what
//! it subscribed to. The executor reads a workspace's connections to fan
//! its events out (docs/ARCHITECTURE.md, "Real-time events").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Key, Record};
use crate::error::Entity;
use crate::ids::{AgentId, RunId, WorkspaceId};

/// API Gateway closes a WebSocket connection after two hours; its item
/// outlives it a little in case `$disconnect` never came.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// The record's id: [`Connection::id_for`] its connection id.
    pub id: String,
    /// API Gateway's connection id (base64-like: `=` and `+` are not id
    /// characters, so it is not the key itself).
    pub connection_id: String,
    /// Set once the connection authenticated (at `$connect`, or by its
    /// first message).
    pub workspace_id: Option<WorkspaceId>,
    /// What it subscribed to; nothing is sent before it subscribes.
    #[serde(default)]
    pub subscribed: bool,
    pub agent_id: Option<AgentId>,
    pub run_id: Option<RunId>,
    /// The `hookrun listen` session whose deliveries it forwards (its
    /// `listen` message): the delivery function pushes them to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_session: Option<String>,
    #[serde(with = "crate::clock::ts")]
    pub connected_at: DateTime<Utc>,
    pub expires_at: i64,
}

impl Connection {
    /// The record id of API Gateway's connection `connection_id`.
    pub fn id_for(connection_id: &str) -> String {
        format!("conn_{}", hex::encode(connection_id))
    }

    pub fn list_partition(workspace_id: &WorkspaceId) -> String {
        format!("WS#{workspace_id}#CONNS")
    }
}

impl Record for Connection {
    const ENTITY: Entity = Entity::Connection;

    fn key_for(id: &str) -> Key {
        (format!("WSCONN#{id}"), "CONN".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    /// Listed under its workspace once it authenticated.
    fn gsi1(&self) -> Option<Key> {
        self.workspace_id
            .as_ref()
            .map(|w| (Self::list_partition(w), self.id.clone()))
    }

    fn expires_at(&self) -> Option<i64> {
        Some(self.expires_at)
    }
}
