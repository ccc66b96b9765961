//! What an external system needs to register an agent's webhooks: every
//! URL that reaches it and how each authenticates. Never a secret or token.

use serde_json::{json, Value};

use super::requests::{authentication, base_url};
use crate::app::App;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::model::Agent;

pub async fn agent_webhook_info(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: &str,
) -> Result<Value, Error> {
    let agent = app.repo.find::<Agent>(workspace_id, agent_id).await?;
    let base = base_url(app);
    let mut urls = vec![json!({
        "url": format!("{base}/api/v1/webhooks/{}/{}/trigger", agent.workspace_id, agent.id),
        "method": "POST",
        "auth": "X-Signature: hex HMAC-SHA256 of the body with the agent's webhook secret (X-Webhook-Secret deprecated)",
    })];
    let triggers = super::list(app, workspace_id, Some(&agent.id), 100, None)
        .await?
        .data;
    for t in &triggers {
        let auth = authentication(t);
        urls.push(json!({
            "trigger_id": t.id,
            "name": t.name,
            "is_active": t.is_active,
            "url": format!("{base}/api/webhooks/{}", t.id),
            "method": "POST",
            "auth": auth["by_id"],
        }));
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/api/v1/webhook/trigger"),
            "method": "POST",
            "auth": auth["bearer"],
        }));
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/webhooks/runs/{}…", t.token_prefix),
            "method": "POST",
            "auth": auth["token_url"],
        }));
    }
    let route = super::by_agent_route(app, &agent.id).await?;
    if let Some(t) = &route {
        urls.push(json!({
            "trigger_id": t.id,
            "url": format!("{base}/api/v1/agents/{}/webhook", agent.id),
            "method": "POST",
            "auth": authentication(t)["agent"],
        }));
    }
    Ok(json!({
        "agent_id": agent.id,
        "enabled": agent.enabled,
        "urls": urls,
        "allowed_sources": route.map(|t| serde_json::to_value(&t.allowed_sources).unwrap_or_default()),
    }))
}
