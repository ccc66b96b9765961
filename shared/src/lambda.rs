//! Glue between Lambda events and the shared services, so the function
//! binaries stay a few lines of wiring and this logic is tested here.

use std::net::IpAddr;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use axum::extract::Request;
use axum::Router;
use lambda_http::request::RequestContext;

use crate::app::App;
use crate::http::SourceIp;
use crate::ports::QueueId;
use crate::services::delivery;
use crate::services::executor::{self, Outcome};

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

async fn handle_batch(app: &App, queue: QueueId, event: SqsEvent) -> SqsBatchResponse {
    let mut tasks = tokio::task::JoinSet::new();
    for record in event.records {
        let app = app.clone();
        tasks.spawn(async move {
            let body = record.body.as_deref().unwrap_or("");
            let outcome = match queue {
                QueueId::Deliveries => delivery::process_message(&app, body).await,
                _ => executor::process_message(&app, body).await,
            };
            settle(&app, queue, &record, outcome).await
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Some(id)) => failures.push(id),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "batch task failed"),
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

/// The id of the message if it must be retried.
async fn settle(
    app: &App,
    queue: QueueId,
    record: &SqsMessage,
    outcome: Outcome,
) -> Option<String> {
    let id = record.message_id.clone().unwrap_or_default();
    match outcome {
        Outcome::Done => None,
        Outcome::RetryAfter(delay) => {
            if let Some(receipt) = &record.receipt_handle {
                let delay = delay.min(Duration::from_secs(12 * 3600));
                if let Err(e) = app.queue.change_visibility(queue, receipt, delay).await {
                    tracing::warn!(error = %e, "could not delay a retried message");
                }
            }
            Some(id)
        }
        Outcome::Poison(reason) => {
            tracing::error!(message_id = %id, %reason, "moving unprocessable message to the dead-letter queue");
            let dlq = queue.dead_letter().unwrap_or(queue);
            match app
                .queue
                .send(dlq, record.body.as_deref().unwrap_or(""), Duration::ZERO)
                .await
            {
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(error = %e, "dead-letter send failed; the queue's redrive policy takes over");
                    Some(id)
                }
            }
        }
    }
}
