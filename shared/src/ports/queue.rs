//! The queue: SQS semantics (at-least-once, visibility timeout, receive
//! count, redrive to a dead-letter queue after too many receives).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreResult;

/// The queues hookrun uses. Each work queue has a dead-letter queue that
/// receives messages which were received too often without being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueId {
    Runs,
    RunsDlq,
    Deliveries,
    DeliveriesDlq,
}

impl QueueId {
    pub fn name(self) -> &'static str {
        match self {
            QueueId::Runs => "runs",
            QueueId::RunsDlq => "runs-dlq",
            QueueId::Deliveries => "deliveries",
            QueueId::DeliveriesDlq => "deliveries-dlq",
        }
    }

    /// Where a message goes after too many receives; `None` for a DLQ itself.
    pub fn dead_letter(self) -> Option<QueueId> {
        match self {
            QueueId::Runs => Some(QueueId::RunsDlq),
            QueueId::Deliveries => Some(QueueId::DeliveriesDlq),
            QueueId::RunsDlq | QueueId::DeliveriesDlq => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// Handle for delete/change-visibility; changes with every receive.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Longest delay SQS accepts on SendMessage; longer waits are chained by
/// the caller.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Enqueues a message, invisible for `delay` (at most [`MAX_DELAY`]).
    async fn send(&self, queue: QueueId, body: &str, delay: Duration) -> StoreResult<String>;
    /// Up to `max` visible messages, each hidden for `visibility` afterwards.
    /// A message already received `max_receives` times moves to the
    /// dead-letter queue instead of being returned.
    async fn receive(
        &self,
        queue: QueueId,
        max: usize,
        visibility: Duration,
    ) -> StoreResult<Vec<QueueMessage>>;
    /// Like `receive`, but when the queue is empty waits up to `wait` for a
    /// message (long polling: one request instead of one per poll). An
    /// engine without it answers at once, as the embedded queue does (its
    /// consumers are woken by sends instead).
    async fn receive_waiting(
        &self,
        queue: QueueId,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<QueueMessage>> {
        let _ = wait;
        self.receive(queue, max, visibility).await
    }
    /// Removes a received message for good.
    async fn delete(&self, queue: QueueId, receipt: &str) -> StoreResult<()>;
    /// Hides a received message for `visibility` from now (0 = visible now).
    async fn change_visibility(
        &self,
        queue: QueueId,
        receipt: &str,
        visibility: Duration,
    ) -> StoreResult<()>;
}
