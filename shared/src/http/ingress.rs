//! Public trigger routes (the ingress function's routes). Each is a thin
//! adapter: name the target, run the one pipeline, shape the answer.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use super::extract::{ApiPath, SourceIp};
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::services::ingress::{self, Accepted, AuthMethod, Disposition, Inbound, Route};

/// When the plaintext `X-Webhook-Secret` scheme stops working.
pub const SECRET_HEADER_SUNSET: &str = "Thu, 31 Dec 2026 23:59:59 GMT";

/// Runs the pipeline for one request: the pipeline names the target, then
/// this reads the body within the pipeline's limit.
async fn run(
    app: &App,
    route: Route<'_>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Accepted, Error> {
    let (parts, body) = req.into_parts();
    let inbound = Inbound {
        headers: parts.headers,
        source_ip: Some(ip.0),
    };
    ingress::handle(app, route, inbound, |limit| read_limited(body, limit)).await
}

/// Reads at most `limit` bytes of the body, else 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Error> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes reports the limit as a LengthLimitError somewhere in the
        // chain; any other failure is the client's connection going away.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return Error::PayloadTooLarge(limit);
            }
            source = s.source();
        }
        Error::invalid("body", format!("could not read the request body: {e}"))
    })
}

fn answer(accepted: &Accepted, body: Value) -> Response {
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(r) = accepted.rate {
        super::ratelimit_headers(resp.headers_mut(), r.limit, r.remaining, r.reset_secs);
    }
    resp
}

/// `{"status":"accepted","run_id":…}`, or `{"status":"ignored"}`; a
/// repeat also says so and gives its run's status now.
fn accepted_body(a: &Accepted) -> Value {
    match a.disposition {
        Disposition::Ignored => json!({ "status": "ignored" }),
        Disposition::Queued => json!({ "status": "accepted", "run_id": a.run_id }),
        Disposition::Duplicate => json!({
            "status": "accepted",
            "run_id": a.run_id,
            "duplicate": true,
            "run_status": a.run_status.map(|s| s.as_str()),
        }),
    }
}

/// `POST /api/v1/webhooks/{crewId}/{agentId}/trigger`: per-agent HMAC.
pub async fn agent_trigger(
    State(app): State<App>,
    ApiPath((workspace_id, agent_id)): ApiPath<(String, String)>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let route = Route::AgentSigned {
        workspace_id: &workspace_id,
        agent_id: &agent_id,
    };
    let accepted = run(&app, route, ip, req).await?;
    let mut resp = answer(&accepted, accepted_body(&accepted));
    if accepted.auth == AuthMethod::PlaintextSecret {
        let h = resp.headers_mut();
        h.insert("deprecation", HeaderValue::from_static("true"));
        h.insert("sunset", HeaderValue::from_static(SECRET_HEADER_SUNSET));
    }
    Ok(resp)
}

/// `POST /webhooks/runs/{token}`: answers with the agent version
/// the run was made for.
pub async fn token_url(
    State(app): State<App>,
    ApiPath(token): ApiPath<String>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let accepted = run(&app, Route::TokenUrl { token: &token }, ip, req).await?;
    let body = match accepted.disposition {
        Disposition::Ignored => json!({ "status": "ignored" }),
        _ => json!({
            "run_id": accepted.run_id,
            "version_id": format!("ver_{}_{}", accepted.agent_id.trim_start_matches("agt_"), accepted.agent_version),
            "version_number": accepted.agent_version,
            // A repeat answers its run's status now.
            "status": accepted.run_status.map_or("queued", |s| s.as_str()),
        }),
    };
    Ok(answer(&accepted, body))
}

/// `POST /api/webhooks/{triggerId}`.
pub async fn by_trigger_id(
    State(app): State<App>,
    ApiPath(trigger_id): ApiPath<String>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let route = Route::TriggerId {
        trigger_id: &trigger_id,
    };
    let accepted = run(&app, route, ip, req).await?;
    Ok(answer(&accepted, accepted_body(&accepted)))
}

/// `POST /api/v1/webhook/trigger` with `Authorization: Bearer wht_…`.
pub async fn bearer(
    State(app): State<App>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let accepted = run(&app, Route::Bearer, ip, req).await?;
    Ok(answer(&accepted, accepted_body(&accepted)))
}

/// `POST /api/v1/agents/{agentId}/webhook`: source-validated.
pub async fn agent_source(
    State(app): State<App>,
    ApiPath(agent_id): ApiPath<String>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let route = Route::AgentSource {
        agent_id: &agent_id,
    };
    let accepted = run(&app, route, ip, req).await?;
    Ok(answer(&accepted, accepted_body(&accepted)))
}
