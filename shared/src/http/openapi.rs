//! The OpenAPI 3.1 document of every route. It is generated: each handler
//! carries its `#[utoipa::path]` (route, parameters, bodies, answers) and
//! the routers are built from those same annotations and from the same
//! list of handlers (`trigger_routes!`, `management_routes!` in `super`),
//! so a route cannot exist undocumented or be documented at another path.
//! `docs/openapi.json` is the generated document, committed; a test keeps
//! it equal to what the code generates, and `GET /openapi.json` serves it.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::error::ErrorBody;

/// Security scheme names, as operations refer to them.
pub const ADMIN_KEY: &str = "admin_key";
pub const TRIGGER_TOKEN: &str = "trigger_token";
pub const AGENT_SIGNATURE: &str = "agent_signature";
pub const TRIGGER_SIGNATURE: &str = "trigger_signature";
pub const WEBHOOK_SECRET: &str = "webhook_secret";
pub const INTERNAL_TOKEN: &str = "internal_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrun",
        description = "Webhook-to-agent trigger service. Trigger routes take calls from outside systems and answer `202` once a run is recorded and queued; the management API (admin key) manages agents, triggers, subscriptions, runs, logs, invocations and deliveries. Every error is `{\"error\":{\"code\",\"message\"}}`."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, super::error::ErrorDetail)),
    tags(
        (name = "triggers", description = "Public routes that start runs; each authenticates the call its own way."),
        (name = "agents", description = "Agents, their webhook secrets, runs and logs."),
        (name = "webhook-triggers", description = "Named triggers of an agent: tokens, signature schemes, limits, input mapping, invocations."),
        (name = "subscriptions", description = "Outgoing webhooks (run events) and their deliveries."),
        (name = "schedules", description = "Agents (or triggers) run on a cron, in a time zone."),
        (name = "admin-keys", description = "The workspace's admin keys: `admin` (everything) or `viewer` (read only)."),
        (name = "service", description = "Health and this document."),
    )
)]
struct Base;

/// Adds the security schemes the operations name.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme(
            ADMIN_KEY,
            bearer("A workspace's admin key (`hka_…`): `Authorization: Bearer <key>`."),
        );
        components.add_security_scheme(
            TRIGGER_TOKEN,
            bearer("A trigger's token (`wht_…`): `Authorization: Bearer <token>`."),
        );
        components.add_security_scheme(
            AGENT_SIGNATURE,
            header(
                "X-Signature",
                "Lowercase (or uppercase) hex HMAC-SHA256 of the raw body, keyed by the agent's webhook secret as text.",
            ),
        );
        components.add_security_scheme(
            TRIGGER_SIGNATURE,
            header(
                "X-Webhook-Signature",
                "The trigger's signature scheme over the raw body: `hmac` (`X-Webhook-Signature: sha256=<hex>`, or the trigger's own header, encoding and prefix), `github` (`X-Hub-Signature-256`), `stripe` (`Stripe-Signature`), `slack` (`X-Slack-Signature` with `X-Slack-Request-Timestamp`) or `standard-webhooks` (`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
            ),
        );
        components.add_security_scheme(
            WEBHOOK_SECRET,
            header(
                "X-Webhook-Secret",
                "The secret itself, in plain text: deprecated on the per-agent route (its answers carry `Deprecation` and `Sunset`); on the trigger-id route, for triggers of the `hmac` scheme only.",
            ),
        );
        components.add_security_scheme(
            INTERNAL_TOKEN,
            header(
                "X-Internal-Token",
                "The deployment's internal token (`HOOKRUN_INTERNAL_TOKEN`), between services only.",
            ),
        );
    }
}

/// Answers every management route may give besides its success.
#[derive(utoipa::IntoResponses)]
pub enum ManagementErrors {
    /// Invalid input: a bad field (named in the message), JSON, query or
    /// path parameter, or cursor.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// A missing or unknown admin key.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"hookrun\"`")))]
    Unauthorized(ErrorBody),
    /// A `viewer` key asked for a change (viewer keys only read).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Nothing with that id in the key's workspace.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A conflicting change: the agent already has an agent-route trigger,
    /// or the record changed concurrently (retry).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// A body over 64 KiB.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// A JSON body without `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Too many failed authentications from this address, or (event
    /// streams) too many streams open.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    TooManyRequests(ErrorBody),
    /// The store is unavailable; retry.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody),
    /// Any other error, in the same shape.
    #[response(status = "default")]
    Other(ErrorBody),
}

/// Answers every trigger route may give besides its success, in the
/// order its pipeline checks (README, "Trigger routes").
#[derive(utoipa::IntoResponses)]
pub enum TriggerErrors {
    /// The body does not parse, or the input mapping misses a required field.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Authentication failed.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "The expected credential: `Signature realm=\"hookrun\", header=\"<the signature header>\"`, or `Bearer realm=\"hookrun\"` for a token")))]
    Unauthorized(ErrorBody),
    /// The source is not allowed, or the trigger or agent is inactive.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such target (the same answer for unknown, deleted and other
    /// workspaces' targets).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is over the limit (default 256 KiB).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The idempotency key was used with another body.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// A rate limit.
    #[response(status = 429, headers(
        ("Retry-After" = u64, description = "Seconds to wait"),
        ("RateLimit-Limit" = u32, description = "The limit that refused the call, per minute"),
        ("RateLimit-Remaining" = u32, description = "0"),
        ("RateLimit-Reset" = u64, description = "Seconds until the window resets"),
    ))]
    TooManyRequests(ErrorBody),
    /// The store is unavailable; retry.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody),
    /// Any other error, in the same shape.
    #[response(status = "default")]
    Other(ErrorBody),
}

/// The whole document: the annotated routes with the base above.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, paths) = super::documented_routes().split_for_parts();
    let mut doc = Base::openapi();
    doc.merge(paths);
    doc
}

/// The generated document as committed: pretty JSON, one trailing newline.
pub fn generated_json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).expect("the document serialises");
    s.push('\n');
    s
}

/// The document as served: the committed copy, which a test keeps equal
/// to [`generated_json`]. Serving it rather than generating it keeps the
/// schema-building code out of the binaries (a Lambda function would pay
/// milliseconds of cold start and a few hundred KB for it).
pub const SERVED_JSON: &str = include_str!("../../../docs/openapi.json");

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "get_openapi",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn serve_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SERVED_JSON)
}

/// The service's answer to a health check.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers HTTP. The store is not checked.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// For load balancers and supervisors; no authentication.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    operation_id = "health",
    responses((status = 200, description = "The process serves HTTP", body = Health))
)]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}
