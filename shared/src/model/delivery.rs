use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Key, Record, Scoped};
use crate::error::Entity;
use crate::ids::{RunId, WorkspaceId};
use crate::ports::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// One event for one subscription. The body is fixed when the event is
/// emitted, so every attempt sends the same bytes under the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub subscription_id: String,
    pub run_id: RunId,
    pub event: String,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(with = "crate::clock::ts::option", default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "crate::clock::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "crate::clock::ts::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<i64>,
    /// Made for a `hookrun listen` session: the listening client makes its
    /// attempts (`services::listen`), not the delivery worker.
    #[serde(default)]
    pub listen: bool,
}

impl Delivery {
    pub fn list_partition(subscription_id: &str) -> String {
        format!("SUB#{subscription_id}#DLVS")
    }

    /// The second index's partition of a listen session's pending
    /// deliveries, sorted by when each is due (`due_key`).
    pub fn due_partition(subscription_id: &str) -> String {
        format!("LISTEN#{subscription_id}#DUE")
    }

    pub fn due_key(at: DateTime<Utc>, id: &str) -> String {
        format!("{:013}#{id}", at.timestamp_millis().max(0))
    }
}

impl Record for Delivery {
    const ENTITY: Entity = Entity::Delivery;

    fn key_for(id: &str) -> Key {
        (format!("DLV#{id}"), "DLV".to_owned())
    }

    fn id(&self) -> &str {
        &self.id
    }

    /// Delivery ids are derived from the event, not from time: the
    /// listing sorts by creation time, then id.
    fn gsi1(&self) -> Option<Key> {
        Some((
            Self::list_partition(&self.subscription_id),
            format!("{}#{}", crate::clock::rfc3339(self.created_at), self.id),
        ))
    }

    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
    /// A listen session's pending delivery is in its session's due index
    /// until it is settled.
    fn gsi2(&self) -> Option<Key> {
        let at = self
            .next_attempt_at
            .filter(|_| self.listen && self.status == DeliveryStatus::Pending)?;
        Some((
            Self::due_partition(&self.subscription_id),
            Self::due_key(at, &self.id),
        ))
    }
}

impl Scoped for Delivery {
    fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub delivery_id: String,
    pub attempt: u32,
    #[serde(with = "crate::clock::ts")]
    pub timestamp: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The first 4 KiB of the answer.
    pub response_excerpt: Option<String>,
    /// Made by `POST /api/v1/deliveries/{id}/redeliver`.
    pub manual: bool,
    pub expires_at: Option<i64>,
}

impl DeliveryAttempt {
    /// Attempts live in their delivery's partition, in order.
    pub const SORT_PREFIX: &'static str = "ATT#";

    pub fn to_item(&self) -> Item {
        let (pk, _) = Delivery::key_for(&self.delivery_id);
        Item::new(
            pk,
            format!("{}{:04}", Self::SORT_PREFIX, self.attempt),
            super::to_doc(self),
        )
        .with_expiry(self.expires_at)
    }
}
