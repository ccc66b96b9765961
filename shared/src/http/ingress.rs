//! Public trigger routes (the ingress function's routes).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::extract::{ApiPath, SourceIp};
use crate::app::App;
use crate::error::ApiError;
use crate::services::ingress::{self, AuthMethod, Inbound};

/// When the plaintext `X-Webhook-Secret` scheme stops working (seed 000).
pub const SECRET_HEADER_SUNSET: &str = "Thu, 31 Dec 2026 23:59:59 GMT";

/// `POST /api/v1/webhooks/{crewId}/{agentId}/trigger` (seed 000).
pub async fn agent_trigger(
    State(app): State<App>,
    ApiPath((workspace_id, agent_id)): ApiPath<(String, String)>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let inbound = Inbound {
        headers: parts.headers,
        body,
        source_ip: Some(ip.0.to_string()),
    };
    let accepted = ingress::agent_webhook(&app, &workspace_id, &agent_id, inbound).await?;
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "run_id": accepted.run_id })),
    )
        .into_response();
    if accepted.auth == AuthMethod::PlaintextSecret {
        let h = resp.headers_mut();
        h.insert("deprecation", HeaderValue::from_static("true"));
        h.insert("sunset", HeaderValue::from_static(SECRET_HEADER_SUNSET));
    }
    Ok(resp)
}
