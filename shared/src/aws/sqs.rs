//! The queue port on SQS. Each work queue's RedrivePolicy (set by the SAM
//! template, or by [`super::provision`]) moves a message to its dead-letter
//! queue after too many receives.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::Client;

use super::backend;
use crate::config::QueueUrls;
use crate::error::{StoreError, StoreResult};
use crate::ports::queue::{Queue, QueueId, QueueMessage, MAX_DELAY};

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
}

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// The longest a receive may wait for a message (SQS's limit).
const MAX_WAIT: Duration = Duration::from_secs(20);

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl SqsQueue {
    pub fn new(client: Client, urls: QueueUrls) -> Self {
        SqsQueue { client, urls }
    }

    fn url(&self, q: QueueId) -> StoreResult<&str> {
        let url = match q {
            QueueId::Runs => &self.urls.runs,
            QueueId::RunsDlq => &self.urls.runs_dlq,
            QueueId::Deliveries => &self.urls.deliveries,
            QueueId::DeliveriesDlq => &self.urls.deliveries_dlq,
        };
        url.as_deref().ok_or_else(|| {
            StoreError::Invalid(format!("no URL configured for the {} queue", q.name()))
        })
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: QueueId, body: &str, delay: Duration) -> StoreResult<String> {
        if delay > MAX_DELAY {
            return Err(StoreError::Invalid(format!(
                "delay {delay:?} exceeds {MAX_DELAY:?}"
            )));
        }
        let out = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(body)
            .delay_seconds(secs(delay))
            .send()
            .await
            .map_err(backend)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn receive(
        &self,
        queue: QueueId,
        max: usize,
        visibility: Duration,
    ) -> StoreResult<Vec<QueueMessage>> {
        self.receive_waiting(queue, max, visibility, Duration::ZERO)
            .await
    }

    async fn receive_waiting(
        &self,
        queue: QueueId,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<QueueMessage>> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(secs(visibility.min(MAX_VISIBILITY)))
            .wait_time_seconds(secs(wait.min(MAX_WAIT)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| QueueMessage {
                id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, queue: QueueId, receipt: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        receipt: &str,
        visibility: Duration,
    ) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility.min(MAX_VISIBILITY)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
