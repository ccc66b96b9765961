//! Public trigger routes (the ingress function's routes). Each is a thin
//! adapter: name the target, run the one pipeline, shape the answer.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;

use super::extract::{ApiPath, SourceIp};
use super::openapi::TriggerErrors;
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::model::{RespondWhen, RunStatus};
use crate::services::ingress::{self, Accepted, AuthMethod, Disposition, Inbound, Route};
use crate::services::runs;

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

fn answer(accepted: &Accepted, body: impl Serialize) -> Response {
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(r) = accepted.rate {
        super::ratelimit_headers(resp.headers_mut(), r.limit, r.remaining, r.reset_secs);
    }
    resp
}

/// Whether a call made (or repeats) a run, or was not wanted.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Ignored,
    /// A run of the call's concurrency key is going (`on_conflict:
    /// skip`): no new run; `run_id` is the one going.
    Skipped,
}

/// The `202` of a trigger route: `{"status":"accepted","run_id":…}`, or
/// `{"status":"ignored"}` for an event the trigger does not want. A repeat
/// (same idempotency key and body) also says `duplicate` and gives its
/// run's status now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TriggerAnswer {
    pub status: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// A repeat's run status now (`null` once the run has expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RunStatus>)]
    pub run_status: Option<Option<RunStatus>>,
}

impl TriggerAnswer {
    pub fn of(a: &Accepted) -> Self {
        let (status, duplicate) = match a.disposition {
            Disposition::Ignored => (Outcome::Ignored, None),
            Disposition::Queued => (Outcome::Accepted, None),
            Disposition::Duplicate => (Outcome::Accepted, Some(true)),
            Disposition::Skipped => (Outcome::Skipped, None),
        };
        TriggerAnswer {
            status,
            run_id: a.run_id.clone().filter(|_| status_has_run(a)),
            duplicate,
            run_status: duplicate.map(|_| a.run_status),
        }
    }
}

fn status_has_run(a: &Accepted) -> bool {
    a.disposition != Disposition::Ignored
}

/// The token route's `202`, in its original product's shape: the run and
/// the agent version it was made for, or `{"status":"ignored"}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TokenAnswer {
    Run {
        run_id: Option<RunId>,
        /// `ver_{agent}_{version}`.
        version_id: String,
        version_number: u64,
        /// `queued`, or a repeat's run status now.
        status: RunStatus,
    },
    Ignored {
        status: IgnoredOnly,
    },
    /// A run of the call's concurrency key is going (`on_conflict:
    /// skip`): no new run; `run_id` is the one going.
    Skipped {
        status: SkippedOnly,
        run_id: Option<RunId>,
    },
}

/// Only `skipped`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkippedOnly {
    Skipped,
}

/// Only `ignored`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IgnoredOnly {
    Ignored,
}

/// Start a run of an agent, signed with the agent's webhook secret.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{crew_id}/{agent_id}/trigger",
    tag = "triggers",
    operation_id = "trigger_agent",
    security(("agent_signature" = []), ("webhook_secret" = [])),
    params(
        ("crew_id" = String, Path, description = "The agent's workspace id"),
        ("agent_id" = String, Path, description = "The agent's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call idempotent for 24 h (also `X-GitHub-Delivery`, `webhook-id`)"),
    ),
    request_body(description = "Any JSON payload; the agent gets it as `Webhook event received:` with its `event`, `source` and `data`", content((Option<serde_json::Value> = "application/json"), (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "A run was queued (or the call repeats one, or was ignored)", body = TriggerAnswer, headers(("RateLimit-Limit" = u32, description = "The tightest limit that counted the call, when one did"), ("RateLimit-Remaining" = u32), ("RateLimit-Reset" = u64))),
        TriggerErrors
    )
)]
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
    let mut resp = answer(&accepted, TriggerAnswer::of(&accepted));
    if accepted.auth == AuthMethod::PlaintextSecret {
        let h = resp.headers_mut();
        h.insert("deprecation", HeaderValue::from_static("true"));
        let sunset = crate::clock::http_date(app.settings.plaintext_secret_until);
        h.insert(
            "sunset",
            HeaderValue::from_str(&sunset).expect("an HTTP date is a header value"),
        );
    }
    Ok(resp)
}

/// Longest a `respond_when: started` call waits for its run to start.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Start a run through a trigger's token URL; also checks the trigger's
/// signature when it has a secret.
#[utoipa::path(
    post,
    path = "/webhooks/runs/{token}",
    tag = "triggers",
    operation_id = "trigger_by_token_url",
    security((), ("trigger_signature" = [])),
    params(
        ("token" = String, Path, description = "The trigger's token (`wht_…`): a credential, keep it secret"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call idempotent for 24 h"),
    ),
    request_body(description = "The payload: JSON (or a form body, kept as text)", content((Option<serde_json::Value> = "application/json"), (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "A run was queued (or the call repeats one, or was ignored)", body = TokenAnswer, headers(("RateLimit-Limit" = u32, description = "The tightest limit that counted the call, when one did"), ("RateLimit-Remaining" = u32), ("RateLimit-Reset" = u64))),
        TriggerErrors
    )
)]
pub async fn token_url(
    State(app): State<App>,
    ApiPath(token): ApiPath<String>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let mut accepted = run(&app, Route::TokenUrl { token: &token }, ip, req).await?;
    // As the seed's product answers: once the run has started, when the
    // trigger asks for it.
    if let (Disposition::Queued, RespondWhen::Started, Some(run_id)) = (
        accepted.disposition,
        accepted.respond_when,
        &accepted.run_id,
    ) {
        accepted.run_status = Some(runs::wait_started(&app, run_id, START_WAIT).await);
    }
    let body = match accepted.disposition {
        Disposition::Ignored => TokenAnswer::Ignored {
            status: IgnoredOnly::Ignored,
        },
        Disposition::Skipped => TokenAnswer::Skipped {
            status: SkippedOnly::Skipped,
            run_id: accepted.run_id.clone(),
        },
        _ => TokenAnswer::Run {
            run_id: accepted.run_id.clone(),
            version_id: format!(
                "ver_{}_{}",
                accepted.agent_id.trim_start_matches("agt_"),
                accepted.agent_version
            ),
            version_number: accepted.agent_version,
            // A repeat answers its run's status now.
            status: accepted.run_status.unwrap_or(RunStatus::Queued),
        },
    };
    Ok(answer(&accepted, body))
}

/// Start a run through a trigger's id. A trigger without a secret takes
/// calls here from anyone who knows its id.
#[utoipa::path(
    post,
    path = "/api/webhooks/{trigger_id}",
    tag = "triggers",
    operation_id = "trigger_by_id",
    security(("trigger_signature" = []), ("webhook_secret" = []), ()),
    params(
        ("trigger_id" = String, Path, description = "The trigger's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call idempotent for 24 h"),
    ),
    request_body(description = "The payload: JSON (or a form body, kept as text)", content((Option<serde_json::Value> = "application/json"), (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "A run was queued (or the call repeats one, or was ignored)", body = TriggerAnswer, headers(("RateLimit-Limit" = u32, description = "The tightest limit that counted the call, when one did"), ("RateLimit-Remaining" = u32), ("RateLimit-Reset" = u64))),
        TriggerErrors
    )
)]
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
    Ok(answer(&accepted, TriggerAnswer::of(&accepted)))
}

/// Start a run with a trigger's token as a bearer token, plus the
/// trigger's signature (`X-Webhook-Signature: sha256=<hex>` by default)
/// when it has a secret.
#[utoipa::path(
    post,
    path = "/api/v1/webhook/trigger",
    tag = "triggers",
    operation_id = "trigger_by_bearer",
    security(("trigger_token" = []), ("trigger_token" = [], "trigger_signature" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call idempotent for 24 h"),
    ),
    request_body(description = "The payload: JSON (or a form body, kept as text)", content((Option<serde_json::Value> = "application/json"), (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "A run was queued (or the call repeats one, or was ignored)", body = TriggerAnswer, headers(("RateLimit-Limit" = u32, description = "The tightest limit that counted the call, when one did"), ("RateLimit-Remaining" = u32), ("RateLimit-Reset" = u64))),
        TriggerErrors
    )
)]
pub async fn bearer(
    State(app): State<App>,
    ip: SourceIp,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let accepted = run(&app, Route::Bearer, ip, req).await?;
    Ok(answer(&accepted, TriggerAnswer::of(&accepted)))
}

/// Start a run through the agent's `agent_route` trigger: the caller's
/// `Origin` host or IP must be allowed, plus the trigger's signature when
/// it has a secret.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{agent_id}/webhook",
    tag = "triggers",
    operation_id = "trigger_agent_route",
    security((), ("trigger_signature" = [])),
    params(
        ("agent_id" = String, Path, description = "The agent's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call idempotent for 24 h"),
    ),
    request_body(description = "The payload: JSON (or a form body, kept as text)", content((Option<serde_json::Value> = "application/json"), (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "A run was queued (or the call repeats one, or was ignored)", body = TriggerAnswer, headers(("RateLimit-Limit" = u32, description = "The tightest limit that counted the call, when one did"), ("RateLimit-Remaining" = u32), ("RateLimit-Reset" = u64))),
        TriggerErrors
    )
)]
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
    Ok(answer(&accepted, TriggerAnswer::of(&accepted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AgentId;

    fn accepted(disposition: Disposition, run_status: Option<RunStatus>) -> Accepted {
        Accepted {
            disposition,
            run_id: Some(RunId::generate()),
            auth: AuthMethod::Signature,
            agent_id: AgentId::generate(),
            agent_version: 1,
            rate: None,
            run_status,
            respond_when: Default::default(),
            note: None,
        }
    }

    fn answer_of(a: &Accepted) -> serde_json::Value {
        serde_json::to_value(TriggerAnswer::of(a)).unwrap()
    }

    #[test]
    fn answers_keep_their_documented_shapes() {
        let queued = answer_of(&accepted(Disposition::Queued, None));
        assert_eq!(queued["status"], "accepted");
        assert!(queued["run_id"].is_string());
        assert!(queued.get("duplicate").is_none() && queued.get("run_status").is_none());

        let repeat = answer_of(&accepted(Disposition::Duplicate, Some(RunStatus::Running)));
        assert_eq!(repeat["duplicate"], true);
        assert_eq!(repeat["run_status"], "running");
        // A repeat whose run has expired still says so, with null.
        let expired = answer_of(&accepted(Disposition::Duplicate, None));
        assert!(expired["run_status"].is_null() && expired.get("run_status").is_some());

        let ignored = answer_of(&accepted(Disposition::Ignored, None));
        assert_eq!(ignored, serde_json::json!({ "status": "ignored" }));
    }
}
