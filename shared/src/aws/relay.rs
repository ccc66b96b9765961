//! The outbox relay (docs/ARCHITECTURE.md, "Atomic accept"): queue
//! messages written with an item ride on it as its `outbox` attribute, and
//! the table's change stream carries every such item to this relay, which
//! sends the messages. The write is the only thing a caller waits for, and
//! once it is durable the stream delivers it: nothing between the write and
//! the message can be lost. The relay runs as the `relay` Lambda function
//! (stream event source) and, for `hookrun serve --backend aws`, as an
//! in-process stream poller (`crate::aws::stream`).

use serde_json::Value;

use crate::error::StoreResult;
use crate::ports::{OutboxMessage, Queue};

/// The item attribute holding the messages (a JSON array, as a string).
pub const OUTBOX_ATTRIBUTE: &str = "outbox";

/// The messages an outbox attribute holds.
pub fn decode(outbox_json: &str) -> Result<Vec<OutboxMessage>, String> {
    serde_json::from_str(outbox_json).map_err(|e| format!("malformed outbox attribute: {e}"))
}

/// The outbox of one stream record as Lambda hands it over (DynamoDB JSON:
/// `dynamodb.NewImage.outbox.S`); `None` when the record carries none
/// (removals, items written without messages).
pub fn outbox_of_lambda_record(record: &Value) -> Option<&str> {
    if record["eventName"] == "REMOVE" {
        return None;
    }
    record["dynamodb"]["NewImage"][OUTBOX_ATTRIBUTE]["S"].as_str()
}

/// Sends the messages to their queues; a failure leaves the rest unsent
/// and is reported, so the stream record is relayed again.
pub async fn send_all(queue: &dyn Queue, messages: &[OutboxMessage]) -> StoreResult<()> {
    for m in messages {
        queue.send(m.queue, &m.body, m.delay).await?;
    }
    Ok(())
}

/// Relays one record's outbox: Ok(false) when there was none. An outbox
/// that does not decode can never be sent: it is logged and skipped, so it
/// cannot hold up the records behind it. A failed send is an error (the
/// record is relayed again).
pub async fn relay(queue: &dyn Queue, outbox: Option<&str>) -> StoreResult<bool> {
    let Some(raw) = outbox else {
        return Ok(false);
    };
    let messages = match decode(raw) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "skipping an outbox that does not decode");
            return Ok(false);
        }
    };
    send_all(queue, &messages).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::QueueId;
    use std::time::Duration;

    #[test]
    fn records_carry_their_messages() {
        let messages = vec![OutboxMessage {
            queue: QueueId::Runs,
            body: r#"{"run_id":"run_1"}"#.into(),
            delay: Duration::from_secs(3),
        }];
        let json = serde_json::to_string(&messages).unwrap();
        assert_eq!(
            json,
            r#"[{"queue":"runs","body":"{\"run_id\":\"run_1\"}","delay":3}]"#
        );
        let record = serde_json::json!({
            "eventName": "INSERT",
            "dynamodb": { "NewImage": { "outbox": { "S": json } } }
        });
        let raw = outbox_of_lambda_record(&record).unwrap();
        assert_eq!(decode(raw).unwrap(), messages);
        let removed = serde_json::json!({ "eventName": "REMOVE", "dynamodb": {} });
        assert_eq!(outbox_of_lambda_record(&removed), None);
        let plain = serde_json::json!({ "eventName": "MODIFY", "dynamodb": { "NewImage": {} } });
        assert_eq!(outbox_of_lambda_record(&plain), None);
        assert!(decode("nope").is_err());
    }
}
