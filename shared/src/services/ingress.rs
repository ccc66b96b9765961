//! The trigger pipeline (DESIGN §4) for the per-agent signed route of
//! seed 000: resolve, size limit, authenticate, check enabled, parse,
//! record and queue. Each step answers with its own status; a rejected
//! request writes nothing.

use axum::body::Body;
use axum::http::HeaderMap;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::ids;
use crate::message::webhook_message;
use crate::model::{Agent, Run, RunStatus, TriggerType};
use crate::ports::SecretVersions;
use crate::services::{agents, runs};
use crate::signature;

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// How a request proved it knows the agent's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `X-Signature`: HMAC of the body (preferred).
    Signature,
    /// `X-Webhook-Secret`: the secret in plaintext (deprecated; the answer
    /// carries Deprecation/Sunset headers).
    PlaintextSecret,
}

#[derive(Debug)]
pub struct Accepted {
    pub run_id: String,
    pub auth: AuthMethod,
}

/// A trigger call as it reached us.
pub struct Inbound {
    pub headers: HeaderMap,
    pub body: Body,
    pub source_ip: Option<String>,
}

/// Runs the whole pipeline for `POST /api/v1/webhooks/{crewId}/{agentId}/trigger`.
pub async fn agent_webhook(
    app: &App,
    workspace_id: &str,
    agent_id: &str,
    req: Inbound,
) -> Result<Accepted, ApiError> {
    // 1. resolve: unknown workspace, unknown agent and another workspace's
    //    agent all get the same 404.
    let agent = agents::find(app, workspace_id, agent_id)
        .await?
        .map(|(a, _)| a)
        .ok_or(ApiError::NotFound("agent"))?;
    // 2. size limit, while reading (Content-Length may be absent or lie).
    let body = read_limited(req.body, app.settings.max_body_bytes).await?;
    // 4. authenticate on the raw bytes.
    let auth = authenticate(app, &agent, &req.headers, &body).await?;
    // 5. inactive agent.
    if !agent.enabled {
        return Err(ApiError::Forbidden("agent is disabled"));
    }
    // 8. parse.
    let payload = parse_json(&body)?;
    // 9. record and queue.
    let run = new_run(app, &agent, TriggerType::Webhook, payload, req.source_ip);
    runs::enqueue(app, &run).await?;
    Ok(Accepted {
        run_id: run.id,
        auth,
    })
}

/// Reads at most `limit` bytes of the body, else 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes reports the limit as a LengthLimitError somewhere in the
        // chain; any other failure is the client's connection going away.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge(limit);
            }
            source = s.source();
        }
        ApiError::BadRequest(format!("could not read the request body: {e}"))
    })
}

/// Checks `X-Signature` (preferred) or `X-Webhook-Secret` against every
/// secret value valid now (the current one, and the previous one during a
/// rotation's grace window). When both headers are present the signature
/// decides.
pub async fn authenticate(
    app: &App,
    agent: &Agent,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AuthMethod, ApiError> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    let (signature, plaintext) = (header(SIGNATURE_HEADER), header(SECRET_HEADER));
    if signature.is_none() && plaintext.is_none() {
        return Err(ApiError::Unauthorized(
            "missing X-Signature (hex HMAC-SHA256 of the body) or X-Webhook-Secret",
        ));
    }
    let secret = agents::secret(app, agent).await?;
    let now = app.clock.now();
    if let Some(method) = check(&secret, now, signature, plaintext, body) {
        return Ok(method);
    }
    // The cached secret may predate a rotation made by another process.
    let fresh = agents::fresh_secret(app, agent).await?;
    if fresh != secret {
        if let Some(method) = check(&fresh, now, signature, plaintext, body) {
            return Ok(method);
        }
    }
    Err(ApiError::Unauthorized(if signature.is_some() {
        "invalid signature"
    } else {
        "invalid webhook secret"
    }))
}

/// Which scheme authenticates the request against these secret values.
/// Every valid value is checked, without stopping early, so timing does not
/// tell which one matched.
fn check(
    secret: &SecretVersions,
    now: chrono::DateTime<chrono::Utc>,
    signature: Option<&str>,
    plaintext: Option<&str>,
    body: &[u8],
) -> Option<AuthMethod> {
    if let Some(sig) = signature {
        let ok = secret
            .valid_at(now)
            .fold(false, |ok, s| signature::verify_hex(s, body, sig) | ok);
        return ok.then_some(AuthMethod::Signature);
    }
    let presented = plaintext.unwrap_or_default();
    let ok = secret
        .valid_at(now)
        .fold(false, |ok, s| signature::secrets_equal(s, presented) | ok);
    ok.then_some(AuthMethod::PlaintextSecret)
}

pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty; send a JSON document".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
}

/// A queued run of `agent` for this payload.
pub fn new_run(
    app: &App,
    agent: &Agent,
    trigger_type: TriggerType,
    payload: Value,
    source_ip: Option<String>,
) -> Run {
    let message = webhook_message(&payload);
    Run {
        id: ids::run_id(),
        workspace_id: agent.workspace_id.clone(),
        agent_id: agent.id.clone(),
        agent_version: agent.version,
        trigger_id: None,
        trigger_type,
        status: RunStatus::Queued,
        input: payload,
        message,
        output: None,
        error: None,
        exit_code: None,
        attempt: 0,
        session_id: agent.webhook_session_id(),
        source_ip,
        created_at: app.clock.now(),
        started_at: None,
        completed_at: None,
        duration_ms: None,
        lease_expires_at: None,
        timeout_seconds: agent.timeout_seconds,
        environment: "production".into(),
        events_emitted: false,
        expires_at: Some(app.retention_expiry()),
    }
}
