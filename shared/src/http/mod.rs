//! The one axum router of every HTTP route: `hookrun serve` hands it to
//! `axum::serve`, the Lambda functions to `lambda_http::run`. Handlers are
//! thin: extract, call one service, shape the answer; `error` maps service
//! errors to statuses.

mod admin_keys;
mod agents;
mod error;
mod events;
pub mod extract;
mod ingress;
mod internal;
mod listen;
pub mod openapi;
mod runs;
mod schedules;
mod subscriptions;
mod triggers;
#[cfg(feature = "websocket")]
pub mod ws;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;

pub use error::{protocol_error_body, status_of, ApiError, ErrorBody};
pub use extract::SourceIp;
pub use internal::INTERNAL_TOKEN_HEADER;

/// Largest management API request body.
pub const MAX_MANAGEMENT_BODY_BYTES: usize = 64 * 1024;

/// Registers a path's handlers on a router from their `#[utoipa::path]`
/// annotations: the path and the methods, nothing else. Building the
/// OpenAPI operations too (`documented!`) would cost a Lambda function's
/// cold start several milliseconds for a document it never serves.
macro_rules! route {
    ($router:expr, $($module:ident :: $handler:ident),+ $(,)?) => {{
        let mut path: Option<String> = None;
        let mut methods = axum::routing::MethodRouter::new();
        $(
            pastey::paste! {
                let this = <$module::[<__path_ $handler>] as utoipa::Path>::path();
                assert!(
                    path.as_ref().is_none_or(|p| *p == this),
                    "the handlers of one route! share one path"
                );
                for m in <$module::[<__path_ $handler>] as utoipa::Path>::methods() {
                    methods = methods.on(
                        utoipa_axum::PathItemExt::to_method_filter(&m),
                        $module::$handler,
                    );
                }
                path = Some(this);
            }
        )+
        $router.route(&path.expect("a handler"), methods)
    }};
}

/// Registers a path's handlers with their OpenAPI operations
/// (utoipa-axum), for the document.
macro_rules! documented {
    ($router:expr, $($module:ident :: $handler:ident),+ $(,)?) => {
        $router.routes(utoipa_axum::routes!($($module::$handler),+))
    };
}

/// The public trigger routes (docs/ARCHITECTURE.md, glossary), one line
/// per path, registered with `$register!` (`route!` or `documented!`): one
/// list for the routers and the document, so they cannot differ.
macro_rules! trigger_routes {
    ($register:ident, $router:expr) => {{
        let r = $router;
        let r = $register!(r, ingress::agent_trigger);
        let r = $register!(r, ingress::token_url);
        let r = $register!(r, ingress::by_trigger_id);
        let r = $register!(r, ingress::bearer);
        $register!(r, ingress::agent_source)
    }};
}

/// The management, internal and service routes, as `trigger_routes!`.
macro_rules! management_routes {
    ($register:ident, $router:expr) => {{
        let r = $router;
        let r = $register!(r, agents::create, agents::list);
        let r = $register!(r, agents::get, agents::update, agents::delete);
        let r = $register!(r, agents::rotate_secret);
        let r = $register!(r, agents::usage);
        let r = $register!(r, agents::rotate_signing_secret);
        let r = $register!(r, runs::list_for_agent);
        let r = $register!(r, runs::list);
        let r = $register!(r, runs::logs);
        let r = $register!(r, runs::get);
        let r = $register!(r, runs::cancel);
        let r = $register!(r, runs::retry);
        let r = $register!(r, runs::replay);
        let r = $register!(r, events::run_events);
        let r = $register!(r, events::agent_events);
        let r = $register!(r, schedules::create, schedules::list);
        let r = $register!(r, schedules::preview);
        let r = $register!(r, schedules::get, schedules::update, schedules::delete);
        let r = $register!(r, schedules::pause);
        let r = $register!(r, schedules::resume);
        let r = $register!(r, subscriptions::create, subscriptions::list);
        let r = $register!(
            r,
            subscriptions::get,
            subscriptions::update,
            subscriptions::delete
        );
        let r = $register!(r, subscriptions::rotate_secret);
        let r = $register!(r, subscriptions::deliveries);
        let r = $register!(r, subscriptions::delivery);
        let r = $register!(r, subscriptions::redeliver);
        let r = $register!(r, listen::open);
        let r = $register!(r, listen::deliveries);
        let r = $register!(r, listen::report);
        let r = $register!(r, listen::close);
        let r = $register!(r, triggers::create, triggers::list);
        let r = $register!(r, triggers::get, triggers::update, triggers::delete);
        let r = $register!(r, triggers::regenerate_token);
        let r = $register!(r, triggers::regenerate_secret);
        let r = $register!(r, triggers::test);
        let r = $register!(r, triggers::invocations);
        let r = $register!(r, triggers::agent_webhook_info);
        let r = $register!(r, admin_keys::create, admin_keys::list);
        let r = $register!(r, admin_keys::get, admin_keys::revoke);
        let r = $register!(r, internal::agent_webhook_secret);
        let r = $register!(r, openapi::health);
        $register!(r, openapi::serve_document)
    }};
}

/// Public trigger routes only (the ingress function). Trigger bodies are
/// read by the pipeline itself, which enforces its own limit after
/// resolving the target (404 before 413).
pub fn ingress_router(app: App) -> Router {
    finish(trigger_routes!(route, Router::new()), app)
}

/// Management and internal routes only (the api function).
pub fn api_router(app: App) -> Router {
    finish(management_router(), app)
}

/// Every route (`hookrun serve`), and the WebSocket channel.
pub fn router(app: App) -> Router {
    let routes = management_router().merge(trigger_routes!(route, Router::new()));
    #[cfg(feature = "websocket")]
    let routes = routes.route(ws::PATH, axum::routing::get(ws::upgrade));
    finish(routes, app)
}

fn management_router() -> Router<App> {
    management_routes!(route, Router::new()).layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES))
}

/// Every route with its OpenAPI description (`openapi::document`).
fn documented_routes() -> OpenApiRouter<App> {
    management_routes!(documented, OpenApiRouter::new())
        .merge(trigger_routes!(documented, OpenApiRouter::new()))
}

fn finish(routes: Router<App>, app: App) -> Router {
    routes
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

/// One log line per request, and [`API_VERSION_HEADER`] on its answer. It
/// names the route template, never the URI: some URIs carry credentials
/// (token URLs), and none of them is logged.
/// Put on each request by `hookrun serve`'s listener: gives back the
/// request's connection slot (`HOOKRUN_MAX_CONNECTIONS`) when its answer
/// becomes a long-lived event stream, which counts against the stream
/// budget instead (`live::StreamBudget`), so streams can never starve
/// trigger and management calls of connections.
#[derive(Clone)]
pub struct ConnectionSlot(pub std::sync::Arc<dyn Fn() + Send + Sync>);

impl ConnectionSlot {
    /// Gives the slot back (the connection stays open; later calls do
    /// nothing).
    pub fn release(&self) {
        (self.0)()
    }

    /// The slot on a request, if its server put one there.
    pub fn release_for(extensions: &axum::http::Extensions) {
        if let Some(slot) = extensions.get::<ConnectionSlot>() {
            slot.release();
        }
    }
}

/// Names hookrun's answers (every route's, errors included), so a client
/// can tell them from another server's: the command-line client sends
/// the admin key to `--server` and refuses to take an answer without it
/// as hookrun's. No version of the software, just of this API.
pub const API_VERSION_HEADER: &str = "hookrun-api-version";

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".into());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        API_VERSION_HEADER,
        axum::http::HeaderValue::from_static("1"),
    );
    tracing::info!(
        %method,
        route,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
