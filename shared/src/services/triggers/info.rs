//! What an external system needs to register an agent's webhooks: every
//! URL that reaches it and how each authenticates. Never a secret or token.

use serde::Serialize;

use super::requests::{authentication, base_url};
use crate::app::App;
use crate::error::Error;
use crate::ids::{AgentId, TriggerId, WorkspaceId};
use crate::model::{Agent, AllowedSources};

/// Every URL that reaches an agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentWebhookInfo {
    pub agent_id: AgentId,
    pub enabled: bool,
    pub urls: Vec<WebhookUrl>,
    /// The allowed sources of the agent's `agent_route` trigger, if any.
    pub allowed_sources: Option<AllowedSources>,
}

/// One URL and how a call to it authenticates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookUrl {
    /// The trigger it reaches; absent for the agent's own signed route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<TriggerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Token URLs show the token's prefix only.
    pub url: String,
    #[schema(example = "POST")]
    pub method: &'static str,
    /// How a call authenticates, in words.
    pub auth: String,
}

impl WebhookUrl {
    fn post(trigger_id: Option<&TriggerId>, url: String, auth: &serde_json::Value) -> Self {
        WebhookUrl {
            trigger_id: trigger_id.cloned(),
            name: None,
            is_active: None,
            url,
            method: "POST",
            auth: auth.as_str().unwrap_or_default().to_owned(),
        }
    }
}

pub async fn agent_webhook_info(
    app: &App,
    workspace_id: &WorkspaceId,
    agent_id: &str,
) -> Result<AgentWebhookInfo, Error> {
    let agent = app.repo.find::<Agent>(workspace_id, agent_id).await?;
    let base = base_url(app);
    let mut urls = vec![WebhookUrl::post(
        None,
        format!(
            "{base}/api/v1/webhooks/{}/{}/trigger",
            agent.workspace_id, agent.id
        ),
        &serde_json::json!("X-Signature: hex HMAC-SHA256 of the body with the agent's webhook secret (X-Webhook-Secret deprecated)"),
    )];
    let triggers = super::list(app, workspace_id, Some(&agent.id), 100, None)
        .await?
        .data;
    for t in &triggers {
        let auth = authentication(t);
        urls.push(WebhookUrl {
            name: Some(t.name.clone()),
            is_active: Some(t.is_active),
            ..WebhookUrl::post(
                Some(&t.id),
                format!("{base}/api/webhooks/{}", t.id),
                &auth["by_id"],
            )
        });
        urls.push(WebhookUrl::post(
            Some(&t.id),
            format!("{base}/api/v1/webhook/trigger"),
            &auth["bearer"],
        ));
        urls.push(WebhookUrl::post(
            Some(&t.id),
            format!("{base}/webhooks/runs/{}…", t.token_prefix),
            &auth["token_url"],
        ));
    }
    let route = super::by_agent_route(app, &agent.id).await?;
    if let Some(t) = &route {
        urls.push(WebhookUrl::post(
            Some(&t.id),
            format!("{base}/api/v1/agents/{}/webhook", agent.id),
            &authentication(t)["agent"],
        ));
    }
    Ok(AgentWebhookInfo {
        agent_id: agent.id.clone(),
        enabled: agent.enabled,
        urls,
        allowed_sources: route.map(|t| t.allowed_sources),
    })
}
