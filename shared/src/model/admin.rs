use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Key;
use crate::ids::WorkspaceId;
use crate::ports::Item;

/// What a key may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything the management API offers (keys made before roles
    /// existed have this role).
    #[default]
    Admin,
    /// Read only: every `GET`, the event streams and the WebSocket channel;
    /// no change, and so no secret (secrets are shown only by the calls
    /// that make them).
    Viewer,
}

impl Role {
    /// Every role (the client offers their names).
    pub const ALL: [Role; 2] = [Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `name` (as [`Role::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A management API key. Only its SHA-256 is stored; the key itself is shown
/// once when it is made. Found by its hash (authentication) or, within its
/// workspace, by id in the GSI (listing, revoking); not a [`super::Record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminKey {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub key_hash: String,
    pub key_prefix: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    /// What the operator called it (keys made before names existed have
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Role,
}

impl AdminKey {
    pub fn key(hash: &str) -> Key {
        (format!("ADMINKEY#{hash}"), "KEY".to_owned())
    }

    /// Where its last use is recorded (its own item, so authenticating
    /// never rewrites the key).
    pub fn usage_key(id: &str) -> Key {
        (format!("KEYUSED#{id}"), "USED".to_owned())
    }

    pub fn list_partition(workspace_id: &str) -> String {
        format!("WS#{workspace_id}#ADMINKEYS")
    }

    pub fn to_item(&self) -> Item {
        let (pk, sk) = Self::key(&self.key_hash);
        Item::new(pk, sk, super::to_doc(self))
            .with_gsi1(Self::list_partition(&self.workspace_id), self.id.clone())
    }
}
