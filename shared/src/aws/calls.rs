//! A record of the AWS calls a process makes: which operation, on which
//! kind of item, how many bytes it wrote, and when it started and ended.
//!
//! It is an SDK interceptor on every client [`super::app_recording`]
//! builds, so it sees exactly what goes to AWS. The cost test counts calls
//! per trigger with it and fails when a route exceeds its budget
//! (docs/cost.md); [`sequential`] turns the start and end times into the
//! number of round trips a caller waited for.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// One AWS call.
#[derive(Clone, Debug)]
pub struct Call {
    /// `DynamoDB`, `SQS`, `Secrets Manager`.
    pub service: String,
    /// `PutItem`, `SendMessage`, …
    pub operation: String,
    /// The kinds of item a DynamoDB call touches, by partition-key prefix
    /// (`RUN#`, `RL#`, …), one per item of a transaction or batch.
    pub items: Vec<String>,
    /// Bytes of the items a DynamoDB write puts, as DynamoDB sizes them
    /// (attribute names plus values), one per item; what write units cost.
    pub item_bytes: Vec<usize>,
    /// Bytes of the items a DynamoDB read returned, one per item.
    pub read_bytes: Vec<usize>,
    pub started: Instant,
    pub ended: Instant,
}

impl Call {
    /// `PutItem RUN#`, or `TransactWriteItems RUN#+DEDUP#`.
    pub fn label(&self) -> String {
        if self.items.is_empty() {
            self.operation.clone()
        } else {
            format!("{} {}", self.operation, self.items.join("+"))
        }
    }

    /// The read units this call costs on demand: 1 per started 4 KiB for a
    /// strongly consistent GetItem (hookrun's reads are), the sum of the
    /// items read, halved and rounded up, for a Query (index queries are
    /// eventually consistent; a key query counts half too, which
    /// understates it by at most one unit).
    pub fn read_units(&self) -> f64 {
        match self.operation.as_str() {
            "GetItem" => self
                .read_bytes
                .iter()
                .map(|b| b.div_ceil(4096).max(1))
                .sum::<usize>() as f64,
            "Query" => {
                let total: usize = self.read_bytes.iter().sum();
                (total.div_ceil(4096).max(1) as f64) / 2.0
            }
            _ => 0.0,
        }
    }

    /// The write units this call costs on demand (1 per started KiB of
    /// each item written; twice that in a transaction).
    pub fn write_units(&self) -> usize {
        let units: usize = self
            .item_bytes
            .iter()
            .map(|b| b.div_ceil(1024).max(1))
            .sum();
        match self.operation.as_str() {
            "TransactWriteItems" => 2 * units,
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => units,
            _ => 0,
        }
    }
}

/// The calls recorded so far; clones share one record.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    ended: Arc<Mutex<Vec<Call>>>,
    /// Operation names of every call started, finished or not (a long poll
    /// cut short by a shutdown never ends).
    started: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    /// Every call that ended since the last `take`, in order of ending.
    pub fn take(&self) -> Vec<Call> {
        self.take_started();
        std::mem::take(&mut *self.ended.lock().expect("call log lock"))
    }

    /// The operations started since the last `take` or `take_started`.
    pub fn take_started(&self) -> Vec<String> {
        std::mem::take(&mut *self.started.lock().expect("call log lock"))
    }

    fn push(&self, call: Call) {
        self.ended.lock().expect("call log lock").push(call);
    }
}

/// How many round trips a caller waited for one after the other: the
/// longest chain of calls each of which started after the previous one
/// ended (calls that overlap ran concurrently and count once).
pub fn sequential(calls: &[Call]) -> usize {
    let mut by_end: Vec<&Call> = calls.iter().collect();
    by_end.sort_by_key(|c| c.ended);
    let mut chain = 0;
    let mut last_end: Option<Instant> = None;
    for c in by_end {
        if last_end.is_none_or(|end| c.started >= end) {
            chain += 1;
            last_end = Some(c.ended);
        }
    }
    chain
}

/// The SDK interceptor that fills a [`CallLog`].
#[derive(Debug)]
pub(super) struct Recorder(pub CallLog);

/// What is known of a call when it starts.
#[derive(Debug, Clone)]
struct Started {
    at: Instant,
    items: Vec<String>,
    item_bytes: Vec<usize>,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "hookrun-call-recorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (items, item_bytes) = dynamo_items(context.input());
        cfg.interceptor_state().store_put(Started {
            at: Instant::now(),
            items,
            item_bytes,
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let name = meta.name().to_owned();
            self.0.started.lock().expect("call log lock").push(name);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(started), Some(meta)) = (cfg.load::<Started>(), cfg.load::<Metadata>()) else {
            return Ok(());
        };
        self.0.push(Call {
            service: meta.service().to_owned(),
            operation: meta.name().to_owned(),
            items: started.items.clone(),
            item_bytes: started.item_bytes.clone(),
            read_bytes: match context.output_or_error() {
                Some(Ok(output)) => dynamo_read(output),
                _ => vec![],
            },
            started: started.at,
            ended: Instant::now(),
        });
        Ok(())
    }
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// The item kinds (and written sizes) of a DynamoDB operation's input.
fn dynamo_items(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> (Vec<String>, Vec<usize>) {
    use aws_sdk_dynamodb::operation as op;
    let kind = |key: Option<&Item>| kind_of(key.and_then(|k| k.get("pk")));
    if let Some(i) = input.downcast_ref::<op::put_item::PutItemInput>() {
        let item = i.item();
        return (vec![kind(item)], vec![item.map_or(0, item_size)]);
    }
    if let Some(i) = input.downcast_ref::<op::get_item::GetItemInput>() {
        return (vec![kind(i.key())], vec![]);
    }
    if let Some(i) = input.downcast_ref::<op::update_item::UpdateItemInput>() {
        // The updated item's size is not known here; counters are small.
        return (vec![kind(i.key())], vec![0]);
    }
    if let Some(i) = input.downcast_ref::<op::delete_item::DeleteItemInput>() {
        return (vec![kind(i.key())], vec![0]);
    }
    if let Some(i) = input.downcast_ref::<op::query::QueryInput>() {
        let pk = i
            .expression_attribute_values()
            .and_then(|v| v.values().find_map(|v| v.as_s().ok()));
        return (vec![prefix(pk.map(String::as_str))], vec![]);
    }
    if let Some(i) = input.downcast_ref::<op::transact_write_items::TransactWriteItemsInput>() {
        let mut kinds = Vec::new();
        let mut sizes = Vec::new();
        for t in i.transact_items() {
            if let Some(p) = t.put() {
                kinds.push(kind(Some(p.item())));
                sizes.push(item_size(p.item()));
            } else if let Some(u) = t.update() {
                kinds.push(kind(Some(u.key())));
                sizes.push(0);
            } else if let Some(d) = t.delete() {
                kinds.push(kind(Some(d.key())));
                sizes.push(0);
            } else if let Some(c) = t.condition_check() {
                kinds.push(format!("check {}", kind(Some(c.key()))));
            }
        }
        return (kinds, sizes);
    }
    if let Some(i) = input.downcast_ref::<op::batch_write_item::BatchWriteItemInput>() {
        let mut kinds = Vec::new();
        let mut sizes = Vec::new();
        for w in i
            .request_items()
            .into_iter()
            .flat_map(|m| m.values())
            .flatten()
        {
            if let Some(p) = w.put_request() {
                kinds.push(kind(Some(p.item())));
                sizes.push(item_size(p.item()));
            } else if let Some(d) = w.delete_request() {
                kinds.push(kind(Some(d.key())));
                sizes.push(0);
            }
        }
        return (kinds, sizes);
    }
    (vec![], vec![])
}

/// The sizes of the items a DynamoDB read returned.
fn dynamo_read(
    output: &aws_smithy_runtime_api::client::interceptors::context::Output,
) -> Vec<usize> {
    use aws_sdk_dynamodb::operation as op;
    if let Some(o) = output.downcast_ref::<op::get_item::GetItemOutput>() {
        return vec![o.item().map_or(0, item_size)];
    }
    if let Some(o) = output.downcast_ref::<op::query::QueryOutput>() {
        return o.items().iter().map(item_size).collect();
    }
    vec![]
}

fn kind_of(pk: Option<&AttributeValue>) -> String {
    prefix(pk.and_then(|v| v.as_s().ok()).map(String::as_str))
}

/// `RUN#run_01…` → `RUN#`; `META` → `META`.
fn prefix(pk: Option<&str>) -> String {
    match pk {
        Some(pk) => match pk.find('#') {
            Some(i) => pk[..=i].to_owned(),
            None => pk.to_owned(),
        },
        None => "?".into(),
    }
}

/// An item's size as DynamoDB bills it: each attribute's name plus its
/// value (strings by their UTF-8 length, numbers about one byte per two
/// digits plus one).
fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(n) => n.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(start_ms: u64, end_ms: u64) -> Call {
        let t0 = Instant::now();
        Call {
            service: "DynamoDB".into(),
            operation: "GetItem".into(),
            items: vec![],
            item_bytes: vec![],
            read_bytes: vec![],
            started: t0 + Duration::from_millis(start_ms),
            ended: t0 + Duration::from_millis(end_ms),
        }
    }

    #[test]
    fn concurrent_calls_count_as_one_round_trip() {
        assert_eq!(sequential(&[]), 0);
        // Three in a row.
        assert_eq!(sequential(&[call(0, 5), call(5, 9), call(10, 12)]), 3);
        // Two at once, then one.
        assert_eq!(sequential(&[call(0, 5), call(1, 6), call(7, 9)]), 2);
        // All overlapping.
        assert_eq!(sequential(&[call(0, 5), call(1, 6), call(2, 7)]), 1);
    }

    #[test]
    fn write_units_round_up_per_item_and_double_in_transactions() {
        let mut c = call(0, 1);
        c.operation = "PutItem".into();
        c.item_bytes = vec![1025];
        assert_eq!(c.write_units(), 2);
        c.operation = "TransactWriteItems".into();
        c.item_bytes = vec![100, 2048];
        assert_eq!(c.write_units(), 6);
        c.operation = "GetItem".into();
        assert_eq!(c.write_units(), 0);
    }
}
