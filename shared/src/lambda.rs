//! Glue between Lambda events and the shared services, so the function
//! binaries stay a few lines of wiring and this logic is tested here.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::extract::Request;
use axum::Router;
use lambda_http::request::RequestContext;

use crate::app::App;
use crate::http::SourceIp;
use crate::ports::QueueId;
use crate::work::{self, Outcome, Settled};

/// Logging for the Lambda functions, as Lambda's advanced logging controls
/// set it: the level from `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG` holding a
/// level; default INFO), JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`,
/// no timestamps (Lambda adds its own). It stands in for lambda_runtime's
/// default subscriber, which also reads per-module `RUST_LOG` directives:
/// their regex engines were most of a megabyte in every bootstrap, for a
/// setting the template never uses.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .without_time();
    if json {
        fmt.json().init()
    } else {
        fmt.init()
    }
}

/// The router as a Lambda handler: API Gateway HTTP API (payload 2.0) and
/// REST API (1.0) requests both work; the caller's IP comes from the request
/// context, never from a client-set header. For a REST API with a named
/// stage, set `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` (template.yaml
/// does) so routes match without the stage prefix.
pub fn http_handler(router: Router) -> Router {
    router.layer(axum::middleware::map_request(copy_source_ip))
}

async fn copy_source_ip(mut req: Request) -> Request {
    let ip = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        req.extensions_mut().insert(SourceIp(ip));
    }
    req
}

/// Runs one batch from the runs queue and reports the messages to retry
/// (partial batch failures, `ReportBatchItemFailures`). A message that can
/// never be processed goes straight to the dead-letter queue and counts as
/// handled, so it is not retried.
pub async fn handle_runs_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    handle_batch(app, QueueId::Runs, event).await
}

/// The same for the deliveries queue (outgoing webhooks).
pub async fn handle_deliveries_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    handle_batch(app, QueueId::Deliveries, event).await
}

/// Processes every record of a batch from `queue` concurrently. A record is
/// reported as failed (and so retried) unless it was settled as removed; a
/// record whose task panicked is reported as failed too, never dropped.
pub async fn handle_batch(app: &App, queue: QueueId, event: SqsEvent) -> SqsBatchResponse {
    let app = app.clone();
    run_batch(queue, event, move |record| {
        let app = app.clone();
        async move {
            let body = record.body.as_deref().unwrap_or("");
            let receipt = record.receipt_handle.as_deref();
            let outcome = work::process(&app, queue, body, receipt).await;
            match &record.receipt_handle {
                Some(receipt) => work::settle(&app, queue, receipt, body, outcome).await,
                // Without a receipt nothing can be changed: only a finished
                // message counts as handled.
                None if outcome == Outcome::Done => Settled::Remove,
                None => Settled::Keep,
            }
        }
    })
    .await
}

/// Runs `each` on every record concurrently and reports, by message id,
/// every record not settled as removed, panicked ones included.
async fn run_batch<F, Fut>(queue: QueueId, event: SqsEvent, each: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Settled> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = HashMap::new();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let handle = tasks.spawn(each(record));
        ids.insert(handle.id(), message_id);
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, Settled::Remove)) => {}
            Ok((task, Settled::Keep)) => failures.extend(ids.remove(&task)),
            Err(e) => {
                tracing::error!(queue = queue.name(), error = %e, "batch record panicked; it will be retried");
                failures.extend(ids.remove(&e.id()));
            }
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    resp
}

/// Relays the outbox of every record of a stream batch, in order (the
/// `relay` function). On a failure, that record and every later one are
/// reported (`ReportBatchItemFailures` for streams: the batch is retried
/// from there), so every message is sent at least once.
pub async fn handle_stream_batch(
    queue: &dyn crate::ports::Queue,
    event: serde_json::Value,
) -> serde_json::Value {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    for record in &records {
        let outbox = crate::aws::relay::outbox_of_lambda_record(record);
        if let Err(e) = crate::aws::relay::relay(queue, outbox).await {
            let seq = record["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap_or_default();
            tracing::error!(error = %e, sequence_number = seq, "outbox relay failed; the batch is retried from this record");
            return serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": seq }] });
        }
    }
    serde_json::json!({ "batchItemFailures": [] })
}

/// One event of API Gateway's WebSocket API (the `realtime` function):
/// `$connect`, `$disconnect`, or a message (`$default`).
#[cfg(feature = "aws-realtime")]
pub async fn handle_websocket_event(
    app: &App,
    fanout: &crate::aws::websocket::ApiGatewayFanout,
    event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
) -> aws_lambda_events::apigw::ApiGatewayProxyResponse {
    use crate::aws::websocket::{handle, WsRequest};
    let header = |name: &str| {
        event
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ctx = &event.request_context;
    let req = WsRequest {
        route_key: ctx.route_key.clone().unwrap_or_default(),
        connection_id: ctx.connection_id.clone().unwrap_or_default(),
        protocols: header("sec-websocket-protocol"),
        authorization: header("authorization"),
        source_ip: ctx
            .identity
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        body: event.body.clone(),
    };
    let answer = handle(app, fanout, req).await;
    let mut resp = aws_lambda_events::apigw::ApiGatewayProxyResponse::default();
    resp.status_code = i64::from(answer.status);
    if let Some(p) = answer.protocol {
        resp.headers.insert(
            "sec-websocket-protocol",
            axum::http::HeaderValue::from_static(p),
        );
    }
    resp.body = answer.body.map(aws_lambda_events::encodings::Body::Text);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kept_and_panicked_records_are_reported_by_id() {
        let records: Vec<serde_json::Value> = ["remove", "keep", "panic"]
            .iter()
            .map(|b| serde_json::json!({ "messageId": format!("m-{b}"), "body": b }))
            .collect();
        let event: SqsEvent =
            serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
        let resp = run_batch(QueueId::Runs, event, |record| async move {
            match record.body.as_deref() {
                Some("panic") => panic!("a record whose processing panics"),
                Some("keep") => Settled::Keep,
                _ => Settled::Remove,
            }
        })
        .await;
        let mut failed: Vec<String> = resp
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        failed.sort();
        assert_eq!(failed, vec!["m-keep", "m-panic"]);
    }
}
