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
pub mod key;
mod log;
mod run;
pub mod target;

use log::{invocation, rejection_reason};
use run::check_stored_size;
pub use run::{new_run, test_trigger};
use target::Target;

use std::future::Future;
use std::net::IpAddr;

use axum::http::HeaderMap;
use bytes::Bytes;

use crate::app::App;
use crate::error::{Error, LimitScope, RateState};
use crate::ids::{AgentId, RunId};
use crate::message::webhook_message;
use crate::model::{Concurrency, OnConflict, Run, SignatureScheme, TriggerType};
use crate::repo::runs::{dedup_key, DedupKey};
use crate::services::concurrency;
use crate::services::ratelimit::{self, Report};
use crate::services::runs::Enqueued;
use crate::services::triggers;

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
    /// A run of its concurrency key is going (`on_conflict: skip`): no
    /// new run; `run_id` is the one going.
    Skipped,
}

#[derive(Debug, Clone)]
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
    /// When the token route answers (the trigger's `respond_when`).
    pub respond_when: crate::model::RespondWhen,
    /// What the invocation log adds: why the call was skipped, or that
    /// its concurrency key read no value.
    pub note: Option<String>,
}

/// A trigger call as it reached us, less its body.
pub struct Inbound {
    pub headers: HeaderMap,
    pub source_ip: Option<IpAddr>,
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// Runs the whole pipeline for one call. `read_body(limit)` reads the
/// request body, refusing more than `limit` bytes; it is called once the
/// target is known (so an unknown target is a 404 whatever its body).
///
/// Every check before the run's write is answered from this process's
/// memory when it can (cached target and secret, pre-aggregated rate
/// limits); the writes at the end (the run, the invocation log, the
/// trigger's last use, the rate-limit reports) go out together.
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
    let target = target::resolve(app, route, &req.headers, req.source_ip).await?;
    let ip = req.source_ip;
    let mut authenticated = false;
    let mut reports = Vec::new();
    let (decision, body) = match read_body(app.settings.max_body_bytes).await {
        Ok(body) => {
            let decision = accept(
                app,
                route,
                &target,
                &req.headers,
                &body,
                ip,
                &mut authenticated,
                &mut reports,
            )
            .await;
            (decision, Some(body))
        }
        Err(e) => (Err(e), None),
    };
    let (write, result) = match decision {
        Ok(Decision::Write {
            run,
            dedup,
            on_conflict,
            accepted,
        }) => (Some((run, dedup, on_conflict)), Ok(accepted)),
        Ok(Decision::Answer(accepted)) => (None, Ok(accepted)),
        Err(e) => (None, Err(e)),
    };
    let Some(t) = &target.trigger else {
        // The agent route keeps no invocation log.
        let (enqueued, ()) =
            tokio::join!(enqueue(app, write, result), ratelimit::report(app, reports));
        return enqueued;
    };
    // What the invocation log keeps: a row for a call that authenticated,
    // written as accepted beside the run and corrected in the rare case the
    // write says otherwise; a tally for the rest.
    let row = match &result {
        Err(e) if !authenticated => {
            let reason = rejection_reason(e);
            let ((), ()) = tokio::join!(
                triggers::count_rejection(app, t, reason, ip),
                ratelimit::report(app, reports)
            );
            return result;
        }
        _ if triggers::may_log(app, t) => Some(invocation(app, t, ip, &result, body.as_deref())),
        _ => None,
    };
    let log = async {
        match &row {
            Some(entry) => triggers::record_invocation(app, entry.clone()).await,
            None => triggers::count_rejection(app, t, "not_logged", ip).await,
        }
    };
    let used = result.is_ok();
    let touch = async {
        if used {
            triggers::touch(app, t).await
        }
    };
    let planned = result
        .as_ref()
        .ok()
        .map(|a| (a.disposition, a.run_id.clone()));
    let (result, (), (), ()) = tokio::join!(
        enqueue(app, write, result),
        log,
        touch,
        ratelimit::report(app, reports)
    );
    if let Some(mut entry) = row {
        let outcome = result
            .as_ref()
            .ok()
            .map(|a| (a.disposition, a.run_id.clone()));
        if outcome != planned {
            let fresh = invocation(app, t, ip, &result, body.as_deref());
            entry.result = fresh.result;
            entry.status = fresh.status;
            entry.run_id = fresh.run_id;
            entry.error = fresh.error;
            entry.payload_excerpt = fresh.payload_excerpt;
            entry.note = fresh.note;
            triggers::record_invocation(app, entry).await;
        }
    }
    result
}

/// What the checks decided: answer now, or write this run first.
enum Decision {
    Answer(Accepted),
    Write {
        run: Box<Run>,
        dedup: Option<DedupKey>,
        /// What the run's concurrency key does while another run of its
        /// value is going.
        on_conflict: OnConflict,
        accepted: Accepted,
    },
}

/// Step 9: dedup, write the run with its queue message (and its
/// concurrency key's hold). A repeat answers with the first call's run,
/// as it is now; a skipped call with the run going.
async fn enqueue(
    app: &App,
    write: Option<(Box<Run>, Option<DedupKey>, OnConflict)>,
    result: Result<Accepted, Error>,
) -> Result<Accepted, Error> {
    let (Some((run, dedup, on_conflict)), Ok(accepted)) = (write, &result) else {
        return result;
    };
    Ok(
        match concurrency::admit(app, &run, dedup, on_conflict).await? {
            Enqueued::New(id) => Accepted {
                run_id: Some(id),
                ..accepted.clone()
            },
            Enqueued::Skipped(id) => Accepted {
                disposition: Disposition::Skipped,
                note: Some(format!(
                    "skipped: run {id} of concurrency key {:?} is still going (on_conflict: skip)",
                    run.control.concurrency_key.as_deref().unwrap_or_default()
                )),
                run_id: Some(id),
                ..accepted.clone()
            },
            Enqueued::Repeat(id) => {
                let status = app.repo.get::<Run>(&id).await?.map(|r| r.status);
                Accepted {
                    disposition: Disposition::Duplicate,
                    run_id: Some(id),
                    run_status: status,
                    ..accepted.clone()
                }
            }
        },
    )
}

/// Steps 3–8, and the run step 9 writes.
#[allow(clippy::too_many_arguments)]
async fn accept(
    app: &App,
    route: Route<'_>,
    target: &Target,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
    authenticated: &mut bool,
    reports: &mut Vec<Report>,
) -> Result<Decision, Error> {
    // 3. per source IP (an IPv6 /64), before authentication.
    let ip_key = format!(
        "{}#{}",
        target.id(),
        ip.map(ratelimit::client_key).unwrap_or_default()
    );
    let exempt = ip.is_some_and(|ip| {
        let ip = ip.to_canonical();
        app.settings.ip_limit_exempt.iter().any(|n| n.contains(&ip))
    });
    let per_ip = if exempt {
        0
    } else {
        app.settings.rate_limit_per_ip
    };
    let ip_rate = ratelimit::admit(app, LimitScope::Ip, &ip_key, per_ip, reports)?;
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
    let target_rate = ratelimit::admit(app, scope, target.id(), per_target, reports)?;
    let workspace_rate = ratelimit::admit(
        app,
        LimitScope::Workspace,
        &target.agent.workspace_id,
        app.settings.rate_limit_per_workspace,
        reports,
    )?;
    // The headers describe the limit closest to refusing this caller.
    let rate = [ip_rate, target_rate, workspace_rate]
        .into_iter()
        .flatten()
        .min_by_key(|r| r.remaining);
    let accepted = |disposition| Accepted {
        disposition,
        run_id: None,
        auth,
        agent_id: target.agent.id.clone(),
        agent_version: target.agent.version,
        rate,
        run_status: None,
        respond_when: target
            .trigger
            .as_ref()
            .map(|t| t.respond_when)
            .unwrap_or_default(),
        note: None,
    };
    // 7. parse; the event filter.
    let payload = match &target.trigger {
        None => input::parse_json(body)?,
        Some(_) => input::parse_body(headers, body)?,
    };
    if let Some(t) = &target.trigger {
        if !input::wanted(t, headers, &payload) {
            return Ok(Decision::Answer(accepted(Disposition::Ignored)));
        }
    }
    // The concurrency key: a trigger's own, else its agent's. A pointer
    // or header reads the call (the payload before it is mapped).
    let concurrency = target
        .trigger
        .as_ref()
        .and_then(|t| t.concurrency.as_ref())
        .or(target.agent.concurrency.as_ref());
    let key_from_call = concurrency.and_then(|c| key::from_call(c, headers, &payload));
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
    let note = concurrency.and_then(|c| {
        let read = key_from_call.unwrap_or_else(|| key::from_run(c, &run));
        keyed(&mut run, c, read)
    });
    check_stored_size(&run)?;
    let dedup = idempotency_key(target, headers).map(|key| {
        dedup_key(
            target.id(),
            key,
            app.clock.now().timestamp() + DEDUP_SECONDS,
            body,
        )
    });
    Ok(Decision::Write {
        accepted: Accepted {
            run_id: Some(run.id.clone()),
            note,
            ..accepted(Disposition::Queued)
        },
        on_conflict: concurrency.map(|c| c.on_conflict).unwrap_or_default(),
        run: Box::new(run),
        dedup,
    })
}

/// Gives the run its concurrency key's value; the invocation log's note
/// when the call has none.
pub(crate) fn keyed(run: &mut Run, c: &Concurrency, read: key::KeyRead) -> Option<String> {
    match read {
        key::KeyRead::Value(value) => {
            run.control.concurrency_key = Some(value);
            None
        }
        key::KeyRead::Missing(why) => Some(key::missing_note(c, &why)),
    }
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
