//! The one axum router of every HTTP route: `hookrun serve` hands it to
//! `axum::serve`, the Lambda functions to `lambda_http::run`. Handlers are
//! thin: extract, call one service, shape the answer; `error` maps service
//! errors to statuses.

mod agents;
mod error;
pub mod extract;
mod ingress;
mod internal;
pub mod openapi;
mod runs;
mod subscriptions;
mod triggers;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;

pub use error::{protocol_error_body, status_of, ApiError, ErrorBody};
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
    finish(all_routes(), app)
}

/// Every route with its OpenAPI description (`openapi::document`).
fn all_routes() -> OpenApiRouter<App> {
    management_routes().merge(trigger_routes())
}

/// The public trigger routes (docs/ARCHITECTURE.md, glossary). Each route
/// is registered from its handler's `#[utoipa::path]`, which documents it.
fn trigger_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(ingress::agent_trigger))
        .routes(routes!(ingress::token_url))
        .routes(routes!(ingress::by_trigger_id))
        .routes(routes!(ingress::bearer))
        .routes(routes!(ingress::agent_source))
}

fn management_routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(agents::create, agents::list))
        .routes(routes!(agents::get, agents::update, agents::delete))
        .routes(routes!(agents::rotate_secret))
        .routes(routes!(runs::list_for_agent))
        .routes(routes!(runs::logs))
        .routes(routes!(runs::get))
        .routes(routes!(subscriptions::create, subscriptions::list))
        .routes(routes!(
            subscriptions::get,
            subscriptions::update,
            subscriptions::delete
        ))
        .routes(routes!(subscriptions::rotate_secret))
        .routes(routes!(subscriptions::deliveries))
        .routes(routes!(subscriptions::delivery))
        .routes(routes!(subscriptions::redeliver))
        .routes(routes!(triggers::create, triggers::list))
        .routes(routes!(triggers::get, triggers::update, triggers::delete))
        .routes(routes!(triggers::regenerate_token))
        .routes(routes!(triggers::regenerate_secret))
        .routes(routes!(triggers::test))
        .routes(routes!(triggers::invocations))
        .routes(routes!(triggers::agent_webhook_info))
        .routes(routes!(internal::agent_webhook_secret))
        .routes(routes!(openapi::health))
        .routes(routes!(openapi::serve_document))
        .layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES))
}

fn finish(routes: OpenApiRouter<App>, app: App) -> Router {
    Router::from(routes)
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

/// A `201 Created` answer with the new resource's `Location`.
pub fn created(location: String, body: impl serde::Serialize) -> axum::response::Response {
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
