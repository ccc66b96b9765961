//! Deliveries as stored: created once per derived id, and their attempts.

use super::{Listing, Repo};
use crate::error::StoreResult;
use crate::model::{Delivery, DeliveryAttempt, Record};
use crate::ports::{Condition, Index, Query};

impl Repo {
    pub async fn record_attempt(&self, a: &DeliveryAttempt) -> StoreResult<()> {
        self.table().put(a.to_item(), Condition::None).await
    }

    /// A delivery's attempts, oldest first.
    pub async fn attempts(&self, delivery_id: &str) -> StoreResult<Vec<DeliveryAttempt>> {
        let (pk, _) = Delivery::key_for(delivery_id);
        self.all(
            Query::partition(Index::Primary, pk)
                .prefix(DeliveryAttempt::SORT_PREFIX)
                .limit(100),
        )
        .await
    }

    /// A subscription's deliveries, newest first.
    pub async fn deliveries_of(
        &self,
        subscription_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Listing<Delivery>> {
        self.page(
            Self::gsi_query(Delivery::list_partition(subscription_id), true)
                .limit(limit)
                .after(cursor),
        )
        .await
    }
}
