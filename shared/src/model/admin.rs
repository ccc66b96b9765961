use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Key;
use crate::ids::WorkspaceId;
use crate::ports::Item;

/// A management API key. Only its SHA-256 is stored; the key itself is shown
/// once when it is made. Found by its hash, never by id, so it is not a
/// [`super::Record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminKey {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub key_hash: String,
    pub key_prefix: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
}

impl AdminKey {
    pub fn key(hash: &str) -> Key {
        (format!("ADMINKEY#{hash}"), "KEY".to_owned())
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
