//! The one axum router of every HTTP route: `hookrun serve` hands it to
//! `axum::serve`, the Lambda functions to `lambda_http::run`. Handlers are
//! thin: extract, call one service, shape the answer; `error` maps service
//! errors to statuses.

mod agents;
mod error;
pub mod extract;
mod ingress;
mod internal;
mod runs;
mod subscriptions;
mod triggers;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::app::App;

pub use error::{protocol_error_body, status_of, ApiError};
pub use extract::SourceIp;
pub use ingress::SECRET_HEADER_SUNSET;
pub use internal::INTERNAL_TOKEN_HEADER;

/// Largest management API request body.
pub const MAX_MANAGEMENT_BODY_BYTES: usize = 64 * 1024;

/// Public trigger routes only (the ingress function). Trigger bodies are
/// read by the pipeline itself, which enforces its own limit after
/// resolving the target (404 before 413).
pub fn ingress_router(app: App) -> Router {
    finish(trigger_routes(), app)
}

/// Management and internal routes only (the api function).
pub fn api_router(app: App) -> Router {
    finish(management_routes(), app)
}

/// Every route (`hookrun serve`).
pub fn router(app: App) -> Router {
    finish(management_routes().merge(trigger_routes()), app)
}

/// The public trigger routes (docs/ARCHITECTURE.md, glossary).
fn trigger_routes() -> Router<App> {
    Router::new()
        .route(
            "/api/v1/webhooks/{crew_id}/{agent_id}/trigger",
            post(ingress::agent_trigger),
        )
        .route("/webhooks/runs/{token}", post(ingress::token_url))
        .route("/api/webhooks/{trigger_id}", post(ingress::by_trigger_id))
        .route("/api/v1/webhook/trigger", post(ingress::bearer))
        .route(
            "/api/v1/agents/{agent_id}/webhook",
            post(ingress::agent_source),
        )
}

fn management_routes() -> Router<App> {
    Router::new()
        .route("/api/v1/agents", post(agents::create).get(agents::list))
        .route(
            "/api/v1/agents/{agent_id}",
            get(agents::get)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route(
            "/api/v1/agents/{agent_id}/rotate-secret",
            post(agents::rotate_secret),
        )
        .route("/api/v1/agents/{agent_id}/runs", get(runs::list_for_agent))
        .route("/api/v1/agents/{agent_id}/logs", get(runs::logs))
        .route("/api/v1/runs/{run_id}", get(runs::get))
        .route(
            "/api/v1/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/api/v1/subscriptions/{id}",
            get(subscriptions::get)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route(
            "/api/v1/subscriptions/{id}/rotate-secret",
            post(subscriptions::rotate_secret),
        )
        .route(
            "/api/v1/subscriptions/{id}/deliveries",
            get(subscriptions::deliveries),
        )
        .route("/api/v1/deliveries/{id}", get(subscriptions::delivery))
        .route(
            "/api/v1/deliveries/{id}/redeliver",
            post(subscriptions::redeliver),
        )
        .route(
            "/api/v1/webhook-triggers",
            post(triggers::create).get(triggers::list),
        )
        .route(
            "/api/v1/webhook-triggers/{id}",
            get(triggers::get)
                .patch(triggers::update)
                .delete(triggers::delete),
        )
        .route(
            "/api/v1/webhook-triggers/{id}/regenerate-token",
            post(triggers::regenerate_token),
        )
        .route(
            "/api/v1/webhook-triggers/{id}/regenerate-secret",
            post(triggers::regenerate_secret),
        )
        .route("/api/v1/webhook-triggers/{id}/test", post(triggers::test))
        .route(
            "/api/v1/webhook-triggers/{id}/invocations",
            get(triggers::invocations),
        )
        .route(
            "/api/v1/agents/{agent_id}/webhook",
            get(triggers::agent_webhook_info),
        )
        .route(
            "/api/v1/internal/agents/{agent_id}/webhook-secret",
            get(internal::agent_webhook_secret),
        )
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES))
}

fn finish(routes: Router<App>, app: App) -> Router {
    routes
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

/// A `201 Created` answer with the new resource's `Location`.
pub fn created(location: String, body: serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = (axum::http::StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds).
pub fn ratelimit_headers(
    h: &mut axum::http::HeaderMap,
    limit: u32,
    remaining: u32,
    reset_secs: u64,
) {
    h.insert("ratelimit-limit", axum::http::HeaderValue::from(limit));
    h.insert(
        "ratelimit-remaining",
        axum::http::HeaderValue::from(remaining),
    );
    h.insert("ratelimit-reset", axum::http::HeaderValue::from(reset_secs));
}

/// One log line per request. It names the route template, never the URI:
/// some URIs carry credentials (token URLs), and none of them is logged.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        %method,
        route,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
