//! The trigger pipeline (DESIGN §4). Every public trigger route runs these
//! steps in this order; only how the target is named and authenticated
//! differs:
//!
//! 1. resolve the target → 404 (unknown, deleted, other workspace alike);
//! 2. body size limit → 413;
//! 3. per-source-IP limit, before authentication → 429;
//! 4. authenticate on the raw bytes, constant time → 401;
//! 5. source allowlist, inactive trigger or agent → 403;
//! 6. per-trigger and per-workspace limits → 429;
//! 7. parse → 400 (and the event filter: not wanted → 202 ignored);
//! 8. map the input → 400 naming a missing required field;
//! 9. dedup + write the run + queue it → 202 (a repeat → 202 with the
//!    original run id);
//! 10. log the invocation (triggers), whatever the outcome.
//!
//! A rejected request writes no run.

use std::net::IpAddr;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::app::App;
use crate::error::ApiError;
use crate::ids;
use crate::message::{truncate_utf8, webhook_message, webhook_message_with};
use crate::model::{Agent, Invocation, Run, RunStatus, Trigger, TriggerType};
use crate::ports::SecretVersions;
use crate::providers;
use crate::services::ratelimit::{self, RateState};
use crate::services::{agents, runs, triggers};
use crate::{seal, signature};

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const SECRET_HEADER: &str = "x-webhook-secret";
/// Headers whose value makes a call idempotent per target for 24 h.
pub const DEDUP_HEADERS: [&str; 3] = ["idempotency-key", "x-github-delivery", "webhook-id"];
const DEDUP_SECONDS: i64 = 24 * 3600;
const PAYLOAD_EXCERPT_BYTES: usize = 2048;

/// How a request was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `X-Signature`: HMAC of the body with the agent secret (seed 000).
    Signature,
    /// `X-Webhook-Secret` in plaintext (deprecated on the agent route).
    PlaintextSecret,
    /// A trigger token (URL or bearer), and its signature if it has a secret.
    Token,
    /// A trigger signature scheme.
    TriggerSignature,
    /// No credential: a trigger without secret, behind its source allowlist.
    Open,
    /// An operator's test through the management API.
    Test,
}

/// How the target is named on the route.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// `POST /api/v1/webhooks/{crewId}/{agentId}/trigger` (seed 000).
    AgentSigned {
        workspace_id: &'a str,
        agent_id: &'a str,
    },
    /// `POST /webhooks/runs/{token}` (seed 001).
    TokenUrl { token: &'a str },
    /// `POST /api/v1/webhook/trigger` with `Authorization: Bearer wht_…` (seed 004).
    Bearer,
    /// `POST /api/webhooks/{triggerId}` (seed 002).
    TriggerId { trigger_id: &'a str },
    /// `POST /api/v1/agents/{agentId}/webhook` (seed 003).
    AgentSource { agent_id: &'a str },
}

/// What the pipeline decided for an accepted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A new run was queued.
    Queued,
    /// A repeat of an earlier call: the earlier run, nothing new.
    Duplicate,
    /// The trigger does not want this event: no run.
    Ignored,
}

#[derive(Debug)]
pub struct Accepted {
    pub disposition: Disposition,
    pub run_id: Option<String>,
    pub auth: AuthMethod,
    pub agent_id: String,
    pub agent_version: u64,
    /// The tightest limit that counted this call, for `RateLimit-*` headers.
    pub rate: Option<RateState>,
}

/// A trigger call as it reached us.
pub struct Inbound {
    pub headers: HeaderMap,
    pub body: Body,
    pub source_ip: Option<IpAddr>,
}

struct Target {
    agent: Agent,
    trigger: Option<Trigger>,
}

impl Target {
    /// The id limits and dedup keys are scoped to.
    fn id(&self) -> &str {
        self.trigger
            .as_ref()
            .map(|t| t.id.as_str())
            .unwrap_or(&self.agent.id)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Step 1: the agent (and trigger) a route names.
async fn resolve(app: &App, route: Route<'_>, headers: &HeaderMap) -> Result<Target, ApiError> {
    let trigger = match route {
        Route::AgentSigned {
            workspace_id,
            agent_id,
        } => {
            let agent = agents::find(app, workspace_id, agent_id)
                .await?
                .map(|(a, _)| a);
            return agent
                .map(|agent| Target {
                    agent,
                    trigger: None,
                })
                .ok_or(ApiError::NotFound("agent"));
        }
        Route::TokenUrl { token } => triggers::by_token(app, token).await?,
        Route::TriggerId { trigger_id } => triggers::load(app, trigger_id).await?.map(|(t, _)| t),
        Route::AgentSource { agent_id } => triggers::by_agent_route(app, agent_id).await?,
        Route::Bearer => {
            let token = bearer(headers).ok_or(ApiError::Unauthorized(
                "missing Authorization: Bearer <trigger token>",
            ))?;
            // An unknown bearer token is a failed authentication, not a 404.
            Some(
                triggers::by_token(app, token)
                    .await?
                    .ok_or(ApiError::Unauthorized("invalid trigger token"))?,
            )
        }
    };
    let trigger = trigger.ok_or(ApiError::NotFound("trigger"))?;
    let agent = agents::find(app, &trigger.workspace_id, &trigger.agent_id)
        .await?
        .map(|(a, _)| a)
        .ok_or(ApiError::NotFound("trigger"))?;
    Ok(Target {
        agent,
        trigger: Some(trigger),
    })
}

/// Runs the whole pipeline for one call.
pub async fn handle(app: &App, route: Route<'_>, req: Inbound) -> Result<Accepted, ApiError> {
    let target = resolve(app, route, &req.headers).await?;
    let ip = req.source_ip;
    let (result, body) = pipeline(app, route, &target, req).await;
    if let Some(t) = &target.trigger {
        let (result_name, status, run_id, error) = match &result {
            Ok(a) => (
                match a.disposition {
                    Disposition::Queued => "accepted",
                    Disposition::Duplicate => "duplicate",
                    Disposition::Ignored => "ignored",
                },
                202,
                a.run_id.clone(),
                None,
            ),
            Err(e) => ("rejected", e.status(), None, Some(e.to_string())),
        };
        triggers::record_invocation(
            app,
            invocation(
                app,
                t,
                ip,
                result_name,
                status,
                run_id,
                error,
                body.as_deref(),
            ),
        )
        .await;
        if result.is_ok() {
            triggers::touch(app, t).await;
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn invocation(
    app: &App,
    t: &Trigger,
    ip: Option<IpAddr>,
    result: &str,
    status: u16,
    run_id: Option<String>,
    error: Option<String>,
    body: Option<&[u8]>,
) -> Invocation {
    let now = app.clock.now();
    Invocation {
        id: ids::new_id("inv"),
        trigger_id: t.id.clone(),
        timestamp: now,
        source_ip: ip.map(|i| i.to_string()),
        result: result.into(),
        status,
        run_id,
        error,
        payload_excerpt: body.map(|b| {
            let mut s =
                String::from_utf8_lossy(&b[..b.len().min(PAYLOAD_EXCERPT_BYTES + 4)]).into_owned();
            truncate_utf8(&mut s, PAYLOAD_EXCERPT_BYTES);
            s
        }),
        expires_at: Some(
            (now + chrono::Duration::days(app.settings.invocation_retention_days)).timestamp(),
        ),
    }
}

/// Steps 2–9. Also hands back the body (when it was read) for the log.
async fn pipeline(
    app: &App,
    route: Route<'_>,
    target: &Target,
    req: Inbound,
) -> (Result<Accepted, ApiError>, Option<Bytes>) {
    let body = match read_limited(req.body, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return (Err(e), None),
    };
    let result = accept(app, route, target, &req.headers, &body, req.source_ip).await;
    (result, Some(body))
}

async fn accept(
    app: &App,
    route: Route<'_>,
    target: &Target,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<Accepted, ApiError> {
    // 3. per source IP, before authentication.
    let ip_key = format!(
        "{}#{}",
        target.id(),
        ip.map(|i| i.to_string()).unwrap_or_default()
    );
    let ip_rate = ratelimit::hit(app, "ip", &ip_key, app.settings.rate_limit_per_ip).await?;
    // 4. authenticate.
    let auth = match &target.trigger {
        None => authenticate(app, &target.agent, headers, body).await?,
        Some(t) => authenticate_trigger(app, route, t, headers, body).await?,
    };
    // 5. sources, then inactive.
    if let Some(t) = &target.trigger {
        check_sources(t, headers, ip)?;
        if !t.is_active {
            return Err(ApiError::Forbidden("trigger is inactive"));
        }
    }
    if !target.agent.enabled {
        return Err(ApiError::Forbidden("agent is disabled"));
    }
    // 6. per trigger (or agent), per workspace.
    let (scope, per_target) = match &target.trigger {
        Some(t) => (
            "trigger",
            t.rate_limit_per_minute
                .unwrap_or(app.settings.rate_limit_per_trigger),
        ),
        None => ("agent", app.settings.rate_limit_per_trigger),
    };
    let target_rate = ratelimit::hit(app, scope, target.id(), per_target).await?;
    let workspace_rate = ratelimit::hit(
        app,
        "workspace",
        &target.agent.workspace_id,
        app.settings.rate_limit_per_workspace,
    )
    .await?;
    // The headers describe the limit closest to refusing this caller.
    let rate = [ip_rate, target_rate, workspace_rate]
        .into_iter()
        .flatten()
        .min_by_key(|r| r.remaining);
    // 7. parse; the event filter.
    let payload = match &target.trigger {
        None => parse_json(body)?,
        Some(_) => parse_body(headers, body)?,
    };
    if let Some(t) = &target.trigger {
        if !t.event_types.is_empty() && !wanted(t, headers, &payload) {
            return Ok(Accepted {
                disposition: Disposition::Ignored,
                run_id: None,
                auth,
                agent_id: target.agent.id.clone(),
                agent_version: target.agent.version,
                rate,
            });
        }
    }
    // 8. input and message.
    let (input, message) = match &target.trigger {
        None => {
            let message = webhook_message(&payload);
            (payload, message)
        }
        Some(t) => {
            let event = event_names(headers, &payload).into_iter().next();
            map_input(
                t,
                payload,
                event.as_deref(),
                providers::source_header(headers),
            )?
        }
    };
    let trigger_type = match auth {
        AuthMethod::Token => TriggerType::Token,
        AuthMethod::Test => TriggerType::Test,
        _ => TriggerType::Webhook,
    };
    let mut run = new_run(
        app,
        &target.agent,
        trigger_type,
        input,
        ip.map(|i| i.to_string()),
    );
    run.message = message;
    if let Some(t) = &target.trigger {
        run.trigger_id = Some(t.id.clone());
        run.environment = t.environment.clone();
    }
    check_stored_size(&run)?;
    // 9. dedup, write, queue.
    let dedup = DEDUP_HEADERS
        .iter()
        .find_map(|h| header(headers, h).filter(|v| !v.trim().is_empty()));
    let dedup = dedup.map(|key| {
        (
            format!("DEDUP#{}#{}", target.id(), ids::sha256_hex(key)),
            app.clock.now().timestamp() + DEDUP_SECONDS,
        )
    });
    let outcome = runs::enqueue_once(app, &run, dedup).await?;
    Ok(Accepted {
        disposition: if outcome == run.id {
            Disposition::Queued
        } else {
            Disposition::Duplicate
        },
        run_id: Some(outcome),
        auth,
        agent_id: target.agent.id.clone(),
        agent_version: target.agent.version,
        rate,
    })
}

/// Reads at most `limit` bytes of the body, else 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
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

/// The seed 000 route: `X-Signature` (preferred) or `X-Webhook-Secret`
/// against every agent secret value valid now (the current one, and the
/// previous one during a rotation's grace window). When both headers are
/// present the signature decides.
pub async fn authenticate(
    app: &App,
    agent: &Agent,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AuthMethod, ApiError> {
    let (signature, plaintext) = (
        header(headers, SIGNATURE_HEADER),
        header(headers, SECRET_HEADER),
    );
    if signature.is_none() && plaintext.is_none() {
        return Err(ApiError::Unauthorized(
            "missing X-Signature (hex HMAC-SHA256 of the body) or X-Webhook-Secret",
        ));
    }
    let secret = agents::secret(app, agent).await?;
    let now = app.clock.now();
    if let Some(method) = check_agent_secret(&secret, now, signature, plaintext, body) {
        return Ok(method);
    }
    // The cached secret may predate a rotation made by another process.
    let fresh = agents::fresh_secret(app, agent).await?;
    if fresh != secret {
        if let Some(method) = check_agent_secret(&fresh, now, signature, plaintext, body) {
            return Ok(method);
        }
    }
    Err(ApiError::Unauthorized(if signature.is_some() {
        "invalid signature"
    } else {
        "invalid webhook secret"
    }))
}

/// Every valid value is checked, without stopping early, so timing does not
/// tell which one matched.
fn check_agent_secret(
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

/// Trigger routes: the token (already matched by its hash when resolving)
/// and, when the trigger has a secret, its signature scheme. The id route
/// also takes seed 002's plaintext `X-Webhook-Secret`.
async fn authenticate_trigger(
    app: &App,
    route: Route<'_>,
    t: &Trigger,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AuthMethod, ApiError> {
    let by_token = matches!(route, Route::TokenUrl { .. } | Route::Bearer);
    let Some(sealed) = &t.secret_sealed else {
        return Ok(if by_token {
            AuthMethod::Token
        } else {
            AuthMethod::Open
        });
    };
    let secret = seal::open_sealed(app, sealed).await?;
    if let (Route::TriggerId { .. }, Some(plain)) = (route, header(headers, SECRET_HEADER)) {
        return if signature::secrets_equal(&secret, plain) {
            Ok(AuthMethod::TriggerSignature)
        } else {
            Err(ApiError::Unauthorized("invalid webhook secret"))
        };
    }
    providers::verify(
        &t.signature,
        &secret,
        headers,
        body,
        app.clock.now().timestamp(),
    )
    .map_err(ApiError::Unauthorized)?;
    Ok(if by_token {
        AuthMethod::Token
    } else {
        AuthMethod::TriggerSignature
    })
}

/// An empty allowlist allows all; otherwise the `Origin`'s host must be
/// listed, or the caller's IP listed or inside a listed range.
fn check_sources(t: &Trigger, headers: &HeaderMap, ip: Option<IpAddr>) -> Result<(), ApiError> {
    let s = &t.allowed_sources;
    if s.is_empty() {
        return Ok(());
    }
    let origin = header(headers, "origin").and_then(triggers::origin_host);
    let origin_ok = origin.is_some_and(|o| {
        s.origins
            .iter()
            .any(|allowed| triggers::origin_host(allowed).as_deref() == Some(&o))
    });
    let ip_ok = ip.is_some_and(|ip| {
        s.ips
            .iter()
            .filter_map(|e| triggers::parse_ip_entry(e))
            .any(|net| net.contains(&ip))
    });
    if origin_ok || ip_ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden("source not allowed for this trigger"))
    }
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

/// Trigger bodies: JSON, or a form body kept as text (Slack commands, some
/// form tools), or nothing at all (a bare ping from a scheduler).
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        return std::str::from_utf8(body)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| ApiError::BadRequest("form body is not UTF-8".into()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_json(body)
}

/// The event a call carries: the provider's header (with GitHub's `action`
/// appended as `event.action` when present), else `event` or `type`.
fn event_names(headers: &HeaderMap, payload: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(h) = providers::event_header(headers) {
        if let Some(action) = payload.get("action").and_then(Value::as_str) {
            names.push(format!("{h}.{action}"));
        }
        names.push(h);
    }
    for k in ["event", "type"] {
        if let Some(v) = payload.get(k).and_then(Value::as_str) {
            names.push(v.to_owned());
        }
    }
    names
}

fn wanted(t: &Trigger, headers: &HeaderMap, payload: &Value) -> bool {
    event_names(headers, payload)
        .iter()
        .any(|n| t.event_types.iter().any(|e| e == n))
}

/// The run's input and message. Without a mapping the payload is the
/// input; with one, each field is read by its JSON pointer (or takes its
/// default). The message is the input's (or payload's) `message` string,
/// else the formatted webhook message.
fn map_input(
    t: &Trigger,
    payload: Value,
    event: Option<&str>,
    source: Option<&str>,
) -> Result<(Value, String), ApiError> {
    let input = match &t.input_mapping {
        None => payload.clone(),
        Some(mapping) => {
            let mut out = serde_json::Map::new();
            for (name, spec) in mapping {
                let (pointer, default, required) = match spec {
                    Value::String(p) => (p.as_str(), None, false),
                    Value::Object(o) => (
                        o.get("pointer").and_then(Value::as_str).unwrap_or(""),
                        o.get("default"),
                        o.get("required").and_then(Value::as_bool).unwrap_or(false),
                    ),
                    _ => continue,
                };
                match payload.pointer(pointer).or(default) {
                    Some(v) => {
                        out.insert(name.clone(), v.clone());
                    }
                    None if required => {
                        return Err(ApiError::BadRequest(format!(
                            "required input field {name:?} is missing (nothing at {pointer:?} in the payload)"
                        )))
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
    };
    let message = input
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| payload.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| webhook_message_with(&payload, event, source));
    Ok((input, message))
}

/// An operator's test of a trigger (`POST /api/v1/webhook-triggers/{id}/test`):
/// the pipeline from step 5 on, with trigger type TEST and no event filter.
pub async fn test_trigger(app: &App, t: &Trigger, payload: Value) -> Result<String, ApiError> {
    let agent = agents::find(app, &t.workspace_id, &t.agent_id)
        .await?
        .map(|(a, _)| a)
        .ok_or(ApiError::NotFound("agent"))?;
    if !t.is_active {
        return Err(ApiError::Forbidden("trigger is inactive"));
    }
    if !agent.enabled {
        return Err(ApiError::Forbidden("agent is disabled"));
    }
    ratelimit::hit(
        app,
        "trigger",
        &t.id,
        t.rate_limit_per_minute
            .unwrap_or(app.settings.rate_limit_per_trigger),
    )
    .await?;
    ratelimit::hit(
        app,
        "workspace",
        &t.workspace_id,
        app.settings.rate_limit_per_workspace,
    )
    .await?;
    let (input, message) = map_input(t, payload, None, Some("hookrun"))?;
    let mut run = new_run(app, &agent, TriggerType::Test, input, None);
    run.message = message;
    run.trigger_id = Some(t.id.clone());
    run.environment = t.environment.clone();
    check_stored_size(&run)?;
    runs::enqueue_once(app, &run, None).await
}

/// A body under the limit can still grow past what one run item holds once
/// stored (escaping, number formats, a mapped input beside the message).
fn check_stored_size(run: &Run) -> Result<(), ApiError> {
    if run.stored_size() > crate::model::run::MAX_STORED_RUN_BYTES {
        return Err(ApiError::PayloadTooLarge(
            crate::model::run::MAX_STORED_RUN_BYTES,
        ));
    }
    Ok(())
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
