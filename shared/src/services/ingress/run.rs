//! The run a call makes, and the operator's test of a trigger (the pipeline
//! from its fifth step on).

use serde_json::Value;

use super::{input, Accepted, AuthMethod, Disposition};
use crate::app::App;
use crate::error::{Entity, Error, LimitScope};
use crate::ids::RunId;
use crate::message::webhook_message;
use crate::model::{Agent, Run, RunStatus, Trigger, TriggerType};
use crate::services::{agents, ratelimit, runs, triggers};

/// An operator's test of a trigger (`POST /api/v1/webhook-triggers/{id}/test`):
/// the pipeline from step 5 on, with trigger type TEST and no event filter.
/// It is logged with the trigger's invocations, marked as a test.
pub async fn test_trigger(app: &App, t: &Trigger, payload: Value) -> Result<RunId, Error> {
    let body = payload.to_string();
    let result = test_run(app, t, payload).await.map(|run_id| Accepted {
        disposition: Disposition::Queued,
        run_id: Some(run_id),
        auth: AuthMethod::Test,
        agent_id: t.agent_id.clone(),
        agent_version: 0,
        rate: None,
        run_status: None,
        respond_when: Default::default(),
        note: None,
    });
    let mut entry = super::log::invocation(app, t, None, &result, Some(body.as_bytes()));
    entry.test = true;
    triggers::record_invocation(app, entry).await;
    result.and_then(|a| {
        a.run_id
            .ok_or_else(|| Error::Internal("a queued test made no run".into()))
    })
}

async fn test_run(app: &App, t: &Trigger, payload: Value) -> Result<RunId, Error> {
    let agent = agents::find_any(app, &t.agent_id)
        .await?
        .filter(|a| a.workspace_id == t.workspace_id)
        .ok_or(Error::NotFound(Entity::Agent))?;
    if !t.is_active {
        return Err(Error::Forbidden("trigger is inactive"));
    }
    if !agent.enabled {
        return Err(Error::Forbidden("agent is disabled"));
    }
    let mut reports = Vec::new();
    let admitted = ratelimit::admit(
        app,
        LimitScope::Trigger,
        &t.id,
        t.rate_limit_per_minute
            .unwrap_or(app.settings.rate_limit_per_trigger),
        &mut reports,
    )
    .and_then(|_| {
        ratelimit::admit(
            app,
            LimitScope::Workspace,
            &t.workspace_id,
            app.settings.rate_limit_per_workspace,
            &mut reports,
        )
    });
    ratelimit::report(app, reports).await;
    admitted?;
    // A test keeps its concurrency key's value, so it waits its turn
    // behind the runs of that value; it never skips or replaces one.
    let concurrency = t.concurrency.as_ref().or(agent.concurrency.as_ref());
    let key_from_call =
        concurrency.and_then(|c| super::key::from_call(c, &axum::http::HeaderMap::new(), &payload));
    let (run_input, message) = input::map_input(t, payload, None, Some("hookrun"))?;
    let mut run = new_run(app, &agent, TriggerType::Test, run_input, None);
    run.message = message;
    run.trigger_id = Some(t.id.clone());
    run.environment = t.environment;
    if let Some(c) = concurrency {
        let read = key_from_call.unwrap_or_else(|| super::key::from_run(c, &run));
        super::keyed(&mut run, c, read);
    }
    check_stored_size(&run)?;
    Ok(runs::enqueue_once(app, &run, None).await?.run_id().clone())
}

/// A body under the limit can still grow past what one run item holds once
/// stored (escaping, number formats, a mapped input beside the message).
pub(super) fn check_stored_size(run: &Run) -> Result<(), Error> {
    if run.stored_size() > crate::model::run::MAX_STORED_RUN_BYTES {
        return Err(Error::PayloadTooLarge(
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
        id: RunId::generate(),
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
        usage: None,
        lease_expires_at: None,
        slot: None,
        timeout_seconds: agent.timeout_seconds,
        environment: Default::default(),
        expires_at: Some(app.retention_expiry()),
        control: Default::default(),
    }
}
