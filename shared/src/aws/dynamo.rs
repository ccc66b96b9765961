//! Over 400 lines: the one DynamoDB adapter; its methods share the key,
//! condition-expression and cursor helpers above them.
//!
//! The item-table port on DynamoDB: one table (`pk`, `sk`), one GSI `gsi1`
//! (`gsi1pk`, `gsi1sk`), TTL on `expires_at`, the document as a JSON string
//! in `data`, the optimistic-concurrency counter in `version`. Every port
//! operation is one DynamoDB call; nothing scans.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::backend;
use crate::clock::{Clock, SystemClock};
use crate::error::{StoreError, StoreResult};
use crate::ports::items::{
    Condition, Index, Item, ItemTable, OutboxMessage, Page, Query, TxOp, MAX_TX_OPS,
};

pub const GSI1: &str = "gsi1";
pub const GSI2: &str = "gsi2";

#[derive(Clone)]
pub struct DynamoItemTable {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn to_attrs(item: &Item) -> StoreResult<Attrs> {
    if item.pk.is_empty() || item.sk.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    let mut a = key(&item.pk, &item.sk);
    if let Some((gpk, gsk)) = &item.gsi1 {
        a.insert("gsi1pk".into(), s(gpk));
        a.insert("gsi1sk".into(), s(gsk));
    }
    if let Some((gpk, gsk)) = &item.gsi2 {
        a.insert("gsi2pk".into(), s(gpk));
        a.insert("gsi2sk".into(), s(gsk));
    }
    if let Some(exp) = item.expires_at {
        a.insert("expires_at".into(), n(exp));
    }
    a.insert("version".into(), n(item.version));
    a.insert("data".into(), s(serde_json::to_string(&item.data)?));
    Ok(a)
}

fn get_s<'a>(a: &'a Attrs, k: &str) -> Option<&'a str> {
    a.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(a: &Attrs, k: &str) -> Option<i64> {
    a.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn from_attrs(a: &Attrs) -> StoreResult<Item> {
    let corrupt = || StoreError::Backend("item without its key attributes".into());
    let mut data: serde_json::Value = match get_s(a, "data") {
        Some(d) => serde_json::from_str(d)?,
        None => serde_json::json!({}),
    };
    // Counters keep their number as a top-level attribute so UpdateItem can
    // add to it atomically.
    if let Some(count) = get_n(a, "count") {
        data["count"] = serde_json::json!(count);
    }
    if let Some(note) = get_s(a, "note") {
        data["note"] = serde_json::json!(note);
    }
    Ok(Item {
        pk: get_s(a, "pk").ok_or_else(corrupt)?.to_owned(),
        sk: get_s(a, "sk").ok_or_else(corrupt)?.to_owned(),
        gsi1: get_s(a, "gsi1pk")
            .zip(get_s(a, "gsi1sk"))
            .map(|(p, s)| (p.to_owned(), s.to_owned())),
        gsi2: get_s(a, "gsi2pk")
            .zip(get_s(a, "gsi2sk"))
            .map(|(p, s)| (p.to_owned(), s.to_owned())),
        expires_at: get_n(a, "expires_at"),
        version: get_n(a, "version").unwrap_or(0) as u64,
        data,
    })
}

fn is_live(a: &Attrs, now: i64) -> bool {
    get_n(a, "expires_at").is_none_or(|e| e > now)
}

/// A condition as a ConditionExpression with its values. An item whose TTL
/// passed but which DynamoDB has not deleted yet counts as absent.
struct Expr {
    expression: Option<String>,
    values: Attrs,
}

fn condition_expr(c: Condition, now: i64) -> Expr {
    let live = "(attribute_not_exists(expires_at) OR expires_at > :now)";
    let (expression, version) = match c {
        Condition::None => (None, None),
        Condition::NotExists => (
            Some("(attribute_not_exists(pk) OR expires_at <= :now)".to_owned()),
            None,
        ),
        Condition::Exists => (Some(format!("attribute_exists(pk) AND {live}")), None),
        Condition::Version(v) => (
            Some(format!("version = :expected_version AND {live}")),
            Some(v),
        ),
    };
    let mut values = Attrs::new();
    if expression.is_some() {
        values.insert(":now".into(), n(now));
    }
    if let Some(v) = version {
        values.insert(":expected_version".into(), n(v));
    }
    Expr { expression, values }
}

fn opt_values(v: Attrs) -> Option<Attrs> {
    (!v.is_empty()).then_some(v)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor(HashMap<String, String>);

fn encode_cursor(lek: &Attrs) -> StoreResult<String> {
    let mut m = HashMap::new();
    for (k, v) in lek {
        let v = v
            .as_s()
            .map_err(|_| StoreError::Backend("non-string key in LastEvaluatedKey".into()))?;
        m.insert(k.clone(), v.clone());
    }
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Cursor(m))?))
}

/// Decodes a cursor and checks it belongs to this query (right key
/// attributes, same partition), so a forged cursor is refused here rather
/// than by DynamoDB as a 5xx-looking validation error.
fn decode_cursor(raw: &str, q: &Query) -> StoreResult<Attrs> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| StoreError::InvalidCursor)?;
    let Cursor(m) = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    let (pcol, scol) = q.index.key_names();
    let expected: &[&str] = match q.index {
        Index::Primary => &["pk", "sk"],
        Index::Gsi1 | Index::Gsi2 => &["pk", "sk", pcol, scol],
    };
    if m.len() != expected.len() || expected.iter().any(|k| !m.contains_key(*k)) {
        return Err(StoreError::InvalidCursor);
    }
    let partition = &m[pcol];
    if partition != &q.pk {
        return Err(StoreError::InvalidCursor);
    }
    Ok(m.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoItemTable {
    pub fn new(client: Client, table: String) -> Self {
        DynamoItemTable {
            client,
            table,
            clock: Arc::new(SystemClock),
        }
    }

    /// TTL checks on this clock (the application's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn put_op(&self, attrs: Attrs, c: Condition, now: i64) -> StoreResult<TransactWriteItem> {
        let e = condition_expr(c, now);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .set_condition_expression(e.expression)
            .set_expression_attribute_values(opt_values(e.values))
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// PutItem of prepared attributes, conditionally.
    async fn put_attrs(&self, attrs: Attrs, condition: Condition) -> StoreResult<()> {
        let e = condition_expr(condition, self.now());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .set_condition_expression(e.expression)
            .set_expression_attribute_values(opt_values(e.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::ConditionFailed),
                e => Err(backend(e)),
            },
        }
    }

    /// TransactWriteItems, retried on a transaction conflict.
    async fn transact_items(&self, items: Vec<TransactWriteItem>) -> StoreResult<()> {
        // A TransactionConflict means another transaction held one of the
        // items for a moment (e.g. two calls with the same dedup key): try
        // again shortly, so the loser sees the winner's condition instead
        // of a 503.
        let mut attempt = 0u32;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err.into_service_error(),
            };
            let retry = match &err {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<&str> = e
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .collect();
                    if codes.contains(&"ConditionalCheckFailed") {
                        return Err(StoreError::ConditionFailed);
                    }
                    codes.contains(&"TransactionConflict")
                }
                TransactWriteItemsError::TransactionInProgressException(_) => true,
                _ => false,
            };
            if !retry || attempt == 3 {
                return Err(backend(err));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            attempt += 1;
        }
    }

    fn delete_op(
        &self,
        pk: &str,
        sk: &str,
        c: Condition,
        now: i64,
    ) -> StoreResult<TransactWriteItem> {
        let e = condition_expr(c, now);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(e.expression)
            .set_expression_attribute_values(opt_values(e.values))
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

#[async_trait]
impl ItemTable for DynamoItemTable {
    async fn get(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        match out.item() {
            Some(a) if is_live(a, self.now()) => Ok(Some(from_attrs(a)?)),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        self.put_attrs(to_attrs(&item)?, condition).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> StoreResult<()> {
        let e = condition_expr(condition, self.now());
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(e.expression)
            .set_expression_attribute_values(opt_values(e.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::ConditionFailed),
                e => Err(backend(e)),
            },
        }
    }

    async fn query(&self, q: Query) -> StoreResult<Page> {
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be positive".into()));
        }
        let start = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &q))
            .transpose()?;
        let (pcol, scol) = q.index.key_names();
        let mut key_expr = "#p = :p".to_owned();
        let mut names = HashMap::from([("#p".to_owned(), pcol.to_owned())]);
        let mut values = HashMap::from([
            (":p".to_owned(), s(&q.pk)),
            (":now".to_owned(), n(self.now())),
        ]);
        if let Some(prefix) = &q.sk_prefix {
            key_expr.push_str(" AND begins_with(#s, :prefix)");
            names.insert("#s".into(), scol.into());
            values.insert(":prefix".into(), s(prefix));
        }
        if let Some((low, high)) = &q.sk_between {
            if q.sk_prefix.is_some() {
                return Err(StoreError::Invalid(
                    "a query takes one sort key condition: a prefix or a range".into(),
                ));
            }
            key_expr.push_str(" AND #s BETWEEN :low AND :high");
            names.insert("#s".into(), scol.into());
            values.insert(":low".into(), s(low));
            values.insert(":high".into(), s(high));
        }
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_expr)
            .filter_expression("attribute_not_exists(expires_at) OR expires_at > :now")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(q.forward)
            .limit(i32::try_from(q.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        req = match q.index {
            Index::Primary => req.consistent_read(true),
            Index::Gsi1 => req.index_name(GSI1),
            Index::Gsi2 => req.index_name(GSI2),
        };
        let out = req.send().await.map_err(backend)?;
        let items = out
            .items()
            .iter()
            .map(from_attrs)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = out.last_evaluated_key().map(encode_cursor).transpose()?;
        Ok(Page { items, next_cursor })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> StoreResult<()> {
        if ops.is_empty() || ops.len() > MAX_TX_OPS {
            return Err(StoreError::Invalid(format!(
                "a transaction holds 1 to {MAX_TX_OPS} operations, got {}",
                ops.len()
            )));
        }
        // One operation needs no transaction, which would cost it twice.
        if let [op] = ops.as_slice() {
            return match op {
                TxOp::Put(item, c) => self.put(item.clone(), *c).await,
                TxOp::Delete { pk, sk, condition } => self.delete(pk, sk, *condition).await,
            };
        }
        let t = self.now();
        let items = ops
            .iter()
            .map(|op| match op {
                TxOp::Put(item, c) => self.put_op(to_attrs(item)?, *c, t),
                TxOp::Delete { pk, sk, condition } => self.delete_op(pk, sk, *condition, t),
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.transact_items(items).await
    }

    /// BatchWriteItem in groups of 25, sending again what DynamoDB left
    /// unprocessed (throttling) a few times before giving up.
    async fn put_batch(&self, items: Vec<Item>) -> StoreResult<()> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|i| {
                    let put = PutRequest::builder()
                        .set_item(Some(to_attrs(i)?))
                        .build()
                        .map_err(backend)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<StoreResult<Vec<_>>>()?;
            for attempt in 0..5u64 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| backend(e.into_service_error()))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::Backend(format!(
                    "{} items left unprocessed by BatchWriteItem",
                    requests.len()
                )));
            }
        }
        Ok(())
    }

    /// The messages ride on the first item as its `outbox` attribute; the
    /// table's stream relays them (`crate::aws::relay`). A single put stays
    /// a PutItem.
    async fn transact_with_messages(
        &self,
        mut ops: Vec<TxOp>,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<()> {
        if messages.is_empty() {
            return self.transact(ops).await;
        }
        if ops.is_empty() || ops.len() > MAX_TX_OPS {
            return Err(StoreError::Invalid(format!(
                "a transaction holds 1 to {MAX_TX_OPS} operations, got {}",
                ops.len()
            )));
        }
        let TxOp::Put(first, condition) = ops.remove(0) else {
            return Err(StoreError::Invalid(
                "messages ride on a put: the first operation must be one".into(),
            ));
        };
        let mut attrs = to_attrs(&first)?;
        attrs.insert(
            super::relay::OUTBOX_ATTRIBUTE.into(),
            s(serde_json::to_string(&messages)?),
        );
        if ops.is_empty() {
            return self.put_attrs(attrs, condition).await;
        }
        let t = self.now();
        let mut items = vec![self.put_op(attrs, condition, t)?];
        for op in &ops {
            items.push(match op {
                TxOp::Put(item, c) => self.put_op(to_attrs(item)?, *c, t)?,
                TxOp::Delete { pk, sk, condition } => self.delete_op(pk, sk, *condition, t)?,
            });
        }
        self.transact_items(items).await
    }

    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        by: i64,
        max: i64,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> StoreResult<i64> {
        if pk.is_empty() || sk.is_empty() {
            return Err(StoreError::Invalid("empty key".into()));
        }
        let mut update =
            "SET #c = if_not_exists(#c, :zero) + :by, version = if_not_exists(version, :zero) + :one".to_owned();
        let mut values = HashMap::from([
            (":zero".to_owned(), n(0)),
            (":one".to_owned(), n(1)),
            (":by".to_owned(), n(by)),
            (":ceiling".to_owned(), n(max - by)),
        ]);
        if let Some(exp) = expires_at {
            update.push_str(", expires_at = if_not_exists(expires_at, :exp)");
            values.insert(":exp".into(), n(exp));
        }
        if let Some(note) = note {
            update.push_str(", note = :note");
            values.insert(":note".into(), s(note));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression(update)
            .condition_expression("attribute_not_exists(#c) OR #c <= :ceiling")
            .expression_attribute_names("#c", "count")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes()
                .and_then(|a| get_n(a, "count"))
                .ok_or_else(|| StoreError::Backend("UpdateItem returned no count".into())),
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::ConditionFailed),
                e => Err(backend(e)),
            },
        }
    }
}
