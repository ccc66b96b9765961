//! The queue port on SQLite: SQS semantics in one table.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::ports::queue::{Queue, QueueId, QueueMessage, MAX_DELAY};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Adds a message (inside the caller's transaction when `c` is one); its id.
pub(super) fn insert_message(
    c: &rusqlite::Connection,
    queue: QueueId,
    body: &str,
    delay: Duration,
    now_millis: i64,
) -> StoreResult<String> {
    if delay > MAX_DELAY {
        return Err(StoreError::Invalid(format!(
            "delay {delay:?} exceeds the queue maximum of {MAX_DELAY:?}"
        )));
    }
    let id = ulid::Ulid::new().to_string();
    c.prepare_cached(
        "INSERT INTO queue_messages (id, queue, body, visible_at, receive_count, seq)
         VALUES (?1, ?2, ?3, ?4, 0, COALESCE((SELECT MAX(seq) FROM queue_messages), 0) + 1)",
    )?
    .execute(params![id, queue.name(), body, now_millis + millis(delay)])?;
    Ok(id)
}

#[async_trait]
impl Queue for SqliteStore {
    async fn send(&self, queue: QueueId, body: &str, delay: Duration) -> StoreResult<String> {
        if delay > MAX_DELAY {
            return Err(StoreError::Invalid(format!(
                "delay {delay:?} exceeds the queue maximum of {MAX_DELAY:?}"
            )));
        }
        let body = body.to_owned();
        let clock = self.clock.clone();
        let id = self
            .write(move |c| insert_message(c, queue, &body, delay, clock.now().timestamp_millis()))
            .await?;
        self.queue_signal.notify_waiters();
        Ok(id)
    }

    async fn receive(
        &self,
        queue: QueueId,
        max: usize,
        visibility: Duration,
    ) -> StoreResult<Vec<QueueMessage>> {
        let max_receives = self.max_receives;
        let clock = self.clock.clone();
        let moved = self
            .write(move |tx| {
                let now = clock.now().timestamp_millis();
                let candidates: Vec<(String, String, u32)> = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT id, body, receive_count FROM queue_messages
                         WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
                    )?;
                    let rows = stmt
                        .query_map(params![queue.name(), now, max as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    rows
                };
                let mut out = Vec::new();
                let mut moved = false;
                for (id, body, count) in candidates {
                    match queue.dead_letter() {
                        Some(dlq) if count >= max_receives => {
                            // Redrive: the message keeps its id and body, its
                            // receive count starts again in the DLQ.
                            tx.prepare_cached("UPDATE queue_messages SET queue = ?2, visible_at = ?3, receive_count = 0, receipt = NULL WHERE id = ?1")?.execute(params![id, dlq.name(), now],
                            )?;
                            moved = true;
                        }
                        _ => {
                            let receipt = ulid::Ulid::new().to_string();
                            tx.prepare_cached("UPDATE queue_messages SET visible_at = ?2, receive_count = receive_count + 1, receipt = ?3 WHERE id = ?1")?.execute(params![id, now + millis(visibility), receipt],
                            )?;
                            out.push(QueueMessage {
                                id,
                                receipt,
                                body,
                                receive_count: count + 1,
                            });
                        }
                    }
                }
                Ok((out, moved))
            })
            .await?;
        if moved.1 {
            self.queue_signal.notify_waiters();
        }
        Ok(moved.0)
    }

    async fn delete(&self, queue: QueueId, receipt: &str) -> StoreResult<()> {
        let receipt = receipt.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2")?
                .execute(params![queue.name(), receipt])?;
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        queue: QueueId,
        receipt: &str,
        visibility: Duration,
    ) -> StoreResult<()> {
        let receipt = receipt.to_owned();
        let clock = self.clock.clone();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
                )?
                .execute(params![
                    queue.name(),
                    receipt,
                    clock.now().timestamp_millis() + millis(visibility)
                ])?;
            if n == 0 {
                return Err(StoreError::Invalid("unknown or stale receipt".into()));
            }
            Ok(())
        })
        .await?;
        if visibility.is_zero() {
            self.queue_signal.notify_waiters();
        }
        Ok(())
    }
}
