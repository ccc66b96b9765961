use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::Item;

/// A management API key. Only its SHA-256 is stored; the key itself is shown
/// once when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminKey {
    pub id: String,
    pub workspace_id: String,
    pub key_hash: String,
    pub key_prefix: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
}

impl AdminKey {
    pub fn key(hash: &str) -> (String, String) {
        (format!("ADMINKEY#{hash}"), "KEY".to_owned())
    }

    pub fn to_item(&self) -> Item {
        let (pk, sk) = Self::key(&self.key_hash);
        Item::new(pk, sk, super::to_doc(self)).with_gsi1(
            format!("WS#{}#ADMINKEYS", self.workspace_id),
            self.id.clone(),
        )
    }
}
