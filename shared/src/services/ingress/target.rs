//! Step 1 of the pipeline: the agent (and trigger) a route names.
//!
//! A process reuses what it looked up for `HOOKRUN_TARGET_CACHE_SECONDS`
//! (at most 5 s), so a busy trigger costs no read at all; that is also the
//! longest a deletion, deactivation or token regeneration made through
//! another process takes to be seen here (changes made through this
//! process clear its cache at once). Unknown targets are never cached, so
//! a new trigger answers at once.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::{auth, Route};
use crate::app::App;
use crate::error::{Entity, Error};
use crate::services::{agents, ratelimit, triggers};
pub use crate::state::targets::{Target, TargetKey};

fn key(route: Route<'_>, headers: &HeaderMap) -> Option<TargetKey> {
    Some(match route {
        Route::AgentSigned {
            workspace_id,
            agent_id,
        } => TargetKey::Agent {
            workspace: workspace_id.to_owned(),
            agent: agent_id.to_owned(),
        },
        Route::TokenUrl { token } => TargetKey::Token(crate::ids::sha256_hex(token)),
        Route::Bearer => TargetKey::Token(crate::ids::sha256_hex(auth::bearer(headers)?)),
        Route::TriggerId { trigger_id } => TargetKey::Trigger(trigger_id.to_owned()),
        Route::AgentSource { agent_id } => TargetKey::AgentRoute(agent_id.to_owned()),
    })
}

/// The route's target. A token is a credential: a wrong one counts
/// against its address, and past the limit is answered `429`
/// ([`ratelimit::failed_auth`]); a right one is never refused for its
/// address's failures.
pub(super) async fn resolve(
    app: &App,
    route: Route<'_>,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Result<Target, Error> {
    let by_token = matches!(route, Route::TokenUrl { .. } | Route::Bearer);
    let key = key(route, headers);
    if let Some(hit) = key.as_ref().and_then(|k| app.targets.get(k)) {
        return Ok(hit);
    }
    match lookup(app, route, headers).await {
        Ok(target) => {
            if let Some(k) = key {
                app.targets.insert(k, target.clone());
            }
            Ok(target)
        }
        Err(e @ (Error::NotFound(_) | Error::Unauthorized(_))) => match ip.filter(|_| by_token) {
            Some(ip) => Err(ratelimit::failed_auth(app, ip, e).await),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The target from the table: one read for the agent route; the trigger,
/// then its agent, with the master key read beside it when the trigger has
/// a sealed secret; on the agent-source route, the agent beside the route
/// item, then the trigger.
async fn lookup(app: &App, route: Route<'_>, headers: &HeaderMap) -> Result<Target, Error> {
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
        Route::AgentSource { agent_id } => {
            // The agent is named in the URL: read it beside its route (and
            // the master key, cached for minutes, in case the trigger has a
            // secret: its route item does not say).
            let (trigger, agent, _) = tokio::join!(
                triggers::by_agent_route(app, agent_id),
                agents::find_any(app, agent_id),
                app.secrets.master_keys()
            );
            let trigger = trigger?.ok_or(Error::NotFound(Entity::Trigger))?;
            let agent = agent?
                .filter(|a| a.workspace_id == trigger.workspace_id && a.id == trigger.agent_id)
                .ok_or(Error::NotFound(Entity::Trigger))?;
            return Ok(Target {
                agent,
                trigger: Some(trigger),
            });
        }
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
    let agent = agents::find_any(app, &trigger.agent_id);
    let agent = if trigger.secret_sealed.is_some() {
        // The master key opens the trigger's secret; it is cached for
        // minutes, so this read is a cold process's only.
        let (agent, _) = tokio::join!(agent, app.secrets.master_keys());
        agent
    } else {
        agent.await
    };
    let agent = agent?
        .filter(|a| a.workspace_id == trigger.workspace_id)
        .ok_or(Error::NotFound(Entity::Trigger))?;
    Ok(Target {
        agent,
        trigger: Some(trigger),
    })
}
