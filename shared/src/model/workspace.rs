use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::Item;

/// A tenant: agents, runs and keys belong to exactly one workspace (the
/// seed's `crewId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
}

impl Workspace {
    pub fn key(id: &str) -> (String, String) {
        (format!("WS#{id}"), "WS".to_owned())
    }

    pub fn to_item(&self) -> Item {
        let (pk, sk) = Self::key(&self.id);
        Item::new(pk, sk, super::to_doc(self))
    }
}
