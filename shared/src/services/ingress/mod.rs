//! The trigger pipeline (docs/ARCHITECTURE.md, "A trigger call, from HTTP
//! to the 202").
//! Every public trigger route runs these steps in this order; only how the
//! target is named and authenticated differs:
//!
//! 1. resolve the target → 404 (unknown, deleted, other workspace alike);
//! 2. body size limit → 413;
//! 3. per-source-IP limit, before authentication → 429;
//! 4. authenticate on the raw bytes, constant time → 401 ([`auth`]);
//! 5. source allowlist, inactive trigger or agent → 403;
//! 6. per-trigger and per-workspace limits → 429;
//! 7. parse → 400 (and the event filter: not wanted → 202 ignored) ([`input`]);
//! 8. map the input → 400 naming a missing required field;
//! 9. dedup + write the run + queue it → 202 (a repeat → 202 with the
//!    original run id);
//! 10. log the invocation (triggers), whatever the outcome.
//!
//! A rejected request writes no run. The HTTP layer reads the body: the
//! pipeline asks for it, with its limit, once the target is known.

pub mod auth;
pub mod input;
mod log;
mod run;

use log::{invocation, rejection_reason};
use run::check_stored_size;
pub use run::{new_run, test_trigger};

use std::future::Future;
use std::net::IpAddr;

use axum::http::HeaderMap;
use bytes::Bytes;

use crate::app::App;
use crate::error::{Entity, Error, LimitScope, RateState};
use crate::ids::{AgentId, RunId};
use crate::message::webhook_message;
use crate::model::{Agent, Run, SignatureScheme, Trigger, TriggerType};
use crate::repo::runs::dedup_key;
use crate::services::runs::{self, Enqueued};
use crate::services::{agents, ratelimit, triggers};

pub const SIGNATURE_HEADER: &str = "x-signature";
pub const SECRET_HEADER: &str = "x-webhook-secret";
/// Headers whose value makes a call idempotent per target for 24 h.
pub const DEDUP_HEADERS: [&str; 3] = ["idempotency-key", "x-github-delivery", "webhook-id"];
const DEDUP_SECONDS: i64 = 24 * 3600;
const PAYLOAD_EXCERPT_BYTES: usize = 2048;

/// How a request was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `X-Signature`: HMAC of the body with the agent secret.
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

/// How the target is named on the route (docs/ARCHITECTURE.md, glossary).
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// `POST /api/v1/webhooks/{crewId}/{agentId}/trigger`: per-agent HMAC.
    AgentSigned {
        workspace_id: &'a str,
        agent_id: &'a str,
    },
    /// `POST /webhooks/runs/{token}`: the token in the URL.
    TokenUrl { token: &'a str },
    /// `POST /api/v1/webhook/trigger` with `Authorization: Bearer wht_…`.
    Bearer,
    /// `POST /api/webhooks/{triggerId}`.
    TriggerId { trigger_id: &'a str },
    /// `POST /api/v1/agents/{agentId}/webhook`: source-validated.
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
    pub run_id: Option<RunId>,
    pub auth: AuthMethod,
    pub agent_id: AgentId,
    pub agent_version: u64,
    /// The tightest limit that counted this call, for `RateLimit-*` headers.
    pub rate: Option<RateState>,
    /// A repeat's run as it is now.
    pub run_status: Option<crate::model::RunStatus>,
}

/// A trigger call as it reached us, less its body.
pub struct Inbound {
    pub headers: HeaderMap,
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

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// Step 1: the agent (and trigger) a route names. A token is a credential:
/// an address that guessed wrong too often this minute is refused before
/// the lookup, and a wrong guess is counted.
async fn resolve(
    app: &App,
    route: Route<'_>,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Result<Target, Error> {
    let by_token = matches!(route, Route::TokenUrl { .. } | Route::Bearer);
    if let (true, Some(ip)) = (by_token, ip) {
        ratelimit::check_auth_failures(app, ip).await?;
    }
    let result = resolve_target(app, route, headers).await;
    if let (true, Some(ip), Err(Error::NotFound(_) | Error::Unauthorized(_))) =
        (by_token, ip, &result)
    {
        ratelimit::note_auth_failure(app, ip).await;
    }
    result
}

async fn resolve_target(app: &App, route: Route<'_>, headers: &HeaderMap) -> Result<Target, Error> {
    let trigger = match route {
        Route::AgentSigned {
            workspace_id,
            agent_id,
        } => {
            let agent = agents::find_any(app, agent_id)
                .await?
                .filter(|a| a.workspace_id == workspace_id)
                .ok_or(Error::NotFound(Entity::Agent))?;
            return Ok(Target {
                agent,
                trigger: None,
            });
        }
        Route::TokenUrl { token } => triggers::by_token(app, token).await?,
        Route::TriggerId { trigger_id } => triggers::by_id(app, trigger_id).await?,
        Route::AgentSource { agent_id } => triggers::by_agent_route(app, agent_id).await?,
        Route::Bearer => {
            let token = auth::bearer(headers).ok_or_else(|| {
                Error::unauthorized("missing Authorization: Bearer <trigger token>")
            })?;
            // An unknown bearer token is a failed authentication, not a 404.
            Some(
                triggers::by_token(app, token)
                    .await?
                    .ok_or_else(|| Error::unauthorized("invalid trigger token"))?,
            )
        }
    };
    let trigger = trigger.ok_or(Error::NotFound(Entity::Trigger))?;
    let agent = agents::find_any(app, &trigger.agent_id)
        .await?
        .filter(|a| a.workspace_id == trigger.workspace_id)
        .ok_or(Error::NotFound(Entity::Trigger))?;
    Ok(Target {
        agent,
        trigger: Some(trigger),
    })
}

/// Runs the whole pipeline for one call. `read_body(limit)` reads the
/// request body, refusing more than `limit` bytes; it is called once the
/// target is known (so an unknown target is a 404 whatever its body).
pub async fn handle<F, Fut>(
    app: &App,
    route: Route<'_>,
    req: Inbound,
    read_body: F,
) -> Result<Accepted, Error>
where
    F: FnOnce(usize) -> Fut,
    Fut: Future<Output = Result<Bytes, Error>>,
{
    let target = resolve(app, route, &req.headers, req.source_ip).await?;
    let ip = req.source_ip;
    let mut authenticated = false;
    let (result, body) = match read_body(app.settings.max_body_bytes).await {
        Ok(body) => {
            let result = accept(
                app,
                route,
                &target,
                &req.headers,
                &body,
                ip,
                &mut authenticated,
            )
            .await;
            (result, Some(body))
        }
        Err(e) => (Err(e), None),
    };
    if let Some(t) = &target.trigger {
        match &result {
            // Refused before it authenticated: counted, not logged, so
            // hostile traffic writes one counter, not a row per call.
            Err(e) if !authenticated => {
                triggers::count_rejection(app, t, rejection_reason(e), ip).await
            }
            _ if triggers::may_log(app, t) => {
                let entry = invocation(app, t, ip, &result, body.as_deref());
                triggers::record_invocation(app, entry).await
            }
            _ => triggers::count_rejection(app, t, "not_logged", ip).await,
        }
        if result.is_ok() {
            triggers::touch(app, t).await;
        }
    }
    result
}

/// Steps 3–9.
async fn accept(
    app: &App,
    route: Route<'_>,
    target: &Target,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
    authenticated: &mut bool,
) -> Result<Accepted, Error> {
    // 3. per source IP (an IPv6 /64), before authentication.
    let ip_key = format!(
        "{}#{}",
        target.id(),
        ip.map(ratelimit::client_key).unwrap_or_default()
    );
    let ip_rate =
        ratelimit::hit(app, LimitScope::Ip, &ip_key, app.settings.rate_limit_per_ip).await?;
    // 4. authenticate.
    let auth = match &target.trigger {
        None => auth::authenticate_agent(app, &target.agent, headers, body).await?,
        Some(t) => auth::authenticate_trigger(app, route, t, headers, body).await?,
    };
    *authenticated = true;
    // 5. sources, then inactive.
    if let Some(t) = &target.trigger {
        auth::check_sources(t, headers, ip)?;
        if !t.is_active {
            return Err(Error::Forbidden("trigger is inactive"));
        }
    }
    if !target.agent.enabled {
        return Err(Error::Forbidden("agent is disabled"));
    }
    // 6. per trigger (or agent), per workspace.
    let (scope, per_target) = match &target.trigger {
        Some(t) => (
            LimitScope::Trigger,
            t.rate_limit_per_minute
                .unwrap_or(app.settings.rate_limit_per_trigger),
        ),
        None => (LimitScope::Agent, app.settings.rate_limit_per_trigger),
    };
    let target_rate = ratelimit::hit(app, scope, target.id(), per_target).await?;
    let workspace_rate = ratelimit::hit(
        app,
        LimitScope::Workspace,
        &target.agent.workspace_id,
        app.settings.rate_limit_per_workspace,
    )
    .await?;
    // The headers describe the limit closest to refusing this caller.
    let rate = [ip_rate, target_rate, workspace_rate]
        .into_iter()
        .flatten()
        .min_by_key(|r| r.remaining);
    let accepted = |disposition, run_id| Accepted {
        disposition,
        run_id,
        auth,
        agent_id: target.agent.id.clone(),
        agent_version: target.agent.version,
        rate,
        run_status: None,
    };
    // 7. parse; the event filter.
    let payload = match &target.trigger {
        None => input::parse_json(body)?,
        Some(_) => input::parse_body(headers, body)?,
    };
    if let Some(t) = &target.trigger {
        if !input::wanted(t, headers, &payload) {
            return Ok(accepted(Disposition::Ignored, None));
        }
    }
    // 8. input and message.
    let (run_input, message) = match &target.trigger {
        None => {
            let message = webhook_message(&payload);
            (payload, message)
        }
        Some(t) => {
            let event = input::event_names(headers, &payload).into_iter().next();
            input::map_input(
                t,
                payload,
                event.as_deref(),
                crate::providers::source_header(headers),
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
        run_input,
        ip.map(|i| i.to_string()),
    );
    run.message = message;
    if let Some(t) = &target.trigger {
        run.trigger_id = Some(t.id.clone());
        run.environment = t.environment;
    }
    check_stored_size(&run)?;
    // 9. dedup, write, queue.
    let dedup = idempotency_key(target, headers).map(|key| {
        dedup_key(
            target.id(),
            key,
            app.clock.now().timestamp() + DEDUP_SECONDS,
            body,
        )
    });
    Ok(match runs::enqueue_once(app, &run, dedup).await? {
        Enqueued::New(id) => accepted(Disposition::Queued, Some(id)),
        Enqueued::Repeat(id) => {
            let status = app.repo.get::<Run>(&id).await?.map(|r| r.status);
            Accepted {
                run_status: status,
                ..accepted(Disposition::Duplicate, Some(id))
            }
        }
    })
}

/// The key that makes a call idempotent: a delivery id the caller's
/// signature covers comes first (Standard Webhooks signs `webhook-id`, so a
/// replayed call cannot choose another key), then `Idempotency-Key`,
/// `X-GitHub-Delivery`, `webhook-id`.
fn idempotency_key<'a>(target: &Target, headers: &'a HeaderMap) -> Option<&'a str> {
    let present = |h: &str| header(headers, h).filter(|v| !v.trim().is_empty());
    let signed_id = target.trigger.as_ref().is_some_and(|t| {
        t.secret_sealed.is_some() && t.signature.scheme == SignatureScheme::StandardWebhooks
    });
    if signed_id {
        if let Some(id) = present("webhook-id") {
            return Some(id);
        }
    }
    DEDUP_HEADERS.iter().find_map(|h| present(h))
}
