//! The WebSocket channel's messages, one protocol for `hookrun serve`'s
//! endpoint and API Gateway's WebSocket API (README, "Real-time events").

use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_event_id, Filter};
use crate::app::App;
use crate::error::Error;
use crate::ids::{RunId, WorkspaceId};
use crate::services::listen::{ListenDelivery, Resumed};
use crate::services::{agents, runs};

/// The subprotocol a client offers (and the server selects).
pub const PROTOCOL: &str = "hookrun.v1";
/// The prefix of the subprotocol entry that carries the admin key
/// (browsers cannot set headers on a WebSocket; a URL would be logged).
pub const BEARER_PROTOCOL: &str = "hookrun.bearer.";

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Auth {
        api_key: String,
    },
    Subscribe {
        channel: String,
        agent_id: Option<String>,
        run_id: Option<String>,
        last_event_id: Option<String>,
    },
    Unsubscribe,
    /// Forward this `hookrun listen` session's deliveries over this
    /// connection: the `listening` answer gives what is due now (a page;
    /// `more` says to ask again), the rest is pushed as it comes due. Said
    /// again every so often, it keeps the session alive; with `due: false`
    /// it gives nothing (a keep-alive while the client is busy).
    Listen {
        session_id: String,
        #[serde(default = "yes")]
        due: bool,
    },
    Ping,
}

/// The admin key offered in a `Sec-WebSocket-Protocol` value.
pub fn key_in_protocols<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL).map(str::to_owned))
        .filter(|k| !k.is_empty())
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Another workspace's channel: the connection is closed.
    #[error("this key may subscribe to {0} only")]
    OtherWorkspace(String),
    /// Anything else (an unknown agent or run, a bad resume point): the
    /// connection stays.
    #[error(transparent)]
    Invalid(#[from] Error),
}

/// A subscription request, checked: the channel must be the key's
/// workspace's; an agent or run named must be of that workspace.
pub async fn subscription(
    app: &App,
    workspace: &WorkspaceId,
    channel: &str,
    agent_id: Option<&str>,
    run_id: Option<&str>,
    last_event_id: Option<&str>,
) -> Result<(Filter, Option<(RunId, u32)>), Refused> {
    let mut filter = Filter::workspace(workspace.clone());
    if channel != filter.channel() {
        return Err(Refused::OtherWorkspace(filter.channel()));
    }
    if let Some(agent) = agent_id {
        filter.agent_id = Some(agents::get(app, workspace, agent).await?.id);
    }
    if let Some(run) = run_id {
        let run = runs::get(app, workspace, run).await?;
        if filter.agent_id.as_ref().is_some_and(|a| *a != run.agent_id) {
            return Err(Error::NotFound(crate::error::Entity::Run).into());
        }
        filter.agent_id = Some(run.agent_id);
        filter.run_id = Some(run.id);
    }
    let last = match last_event_id {
        None => None,
        Some(raw) => Some(parse_event_id(raw).ok_or_else(|| {
            Error::invalid(
                "last_event_id",
                "last_event_id must be an event id as the channel sent it: {run_id}:{seq}",
            )
        })?),
    };
    Ok((filter, last))
}

pub fn ready(workspace: &WorkspaceId) -> Value {
    json!({"type": "ready", "workspace_id": workspace, "channel": Filter::workspace(workspace.clone()).channel()})
}

pub fn subscribed(filter: &Filter) -> Value {
    json!({
        "type": "subscribed",
        "channel": filter.channel(),
        "agent_id": filter.agent_id,
        "run_id": filter.run_id,
    })
}

pub fn error(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

pub fn pong() -> Value {
    json!({"type": "pong"})
}

pub fn unsubscribed() -> Value {
    json!({"type": "unsubscribed"})
}

fn yes() -> bool {
    true
}

/// The answer to `listen`: the session, as the API shows it, and, when
/// asked for, the deliveries due now, oldest first, in one message of at
/// most [`MAX_DELIVERY_MESSAGE`] (at least one is given; a body too big is
/// left out as in [`delivery`]). `more`: others are due, ask again.
pub fn listening(resumed: &Resumed) -> Value {
    let Some(given) = &resumed.due else {
        return json!({"type": "listening", "session": resumed.session});
    };
    let mut due = Vec::new();
    let mut size = 0;
    let mut more = resumed.more;
    for d in given {
        let value = delivery_value(d);
        let len = value.to_string().len();
        if !due.is_empty() && size + len > MAX_DELIVERY_MESSAGE {
            more = true;
            break;
        }
        size += len;
        due.push(value);
    }
    json!({"type": "listening", "session": resumed.session, "due": due, "more": more})
}

/// The largest `delivery` message the channel sends: API Gateway's
/// WebSocket messages are at most 128 KB.
pub const MAX_DELIVERY_MESSAGE: usize = 100 * 1024;

/// A listen session's delivery to forward. One whose message would be
/// over [`MAX_DELIVERY_MESSAGE`] goes without its body (`"body": null,
/// "body_omitted": true`): its client reads the body from `GET
/// /api/v1/deliveries/{id}`, and the headers, signed over it, are here.
pub fn delivery(session_id: &str, delivery: &ListenDelivery) -> Value {
    json!({"type": "delivery", "session_id": session_id, "delivery": delivery_value(delivery)})
}

/// A delivery as the channel carries it: whole, or without its body when
/// that would make a message over [`MAX_DELIVERY_MESSAGE`] (with room
/// for the message around it).
fn delivery_value(delivery: &ListenDelivery) -> Value {
    let mut value = serde_json::to_value(delivery).expect("serialises");
    if value.to_string().len() > MAX_DELIVERY_MESSAGE - 1024 {
        value["body"] = Value::Null;
        value["body_omitted"] = Value::Bool(true);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery_of(body_len: usize) -> ListenDelivery {
        ListenDelivery {
            id: "dlv_1".into(),
            event: "run.succeeded".into(),
            run_id: crate::ids::RunId::generate(),
            attempt: 1,
            headers: [("webhook-id".to_owned(), "dlv_1".to_owned())].into(),
            body: "\"".repeat(body_len),
        }
    }

    #[test]
    fn a_delivery_too_big_for_a_message_goes_without_its_body() {
        let small = delivery("sub_listen_a", &delivery_of(1000));
        assert_eq!(small["delivery"]["body"].as_str().map(str::len), Some(1000));
        assert!(small["delivery"].get("body_omitted").is_none());
        // Quotes double when escaped: 60 KiB of them is over the limit.
        let big = delivery("sub_listen_a", &delivery_of(60 * 1024));
        assert!(big["delivery"]["body"].is_null());
        assert_eq!(big["delivery"]["body_omitted"], true);
        assert_eq!(big["delivery"]["headers"]["webhook-id"], "dlv_1");
        assert!(big.to_string().len() <= MAX_DELIVERY_MESSAGE);
    }

    fn resumed(sizes: &[usize], more: bool) -> Resumed {
        Resumed {
            session: crate::services::listen::ListenView {
                id: "sub_listen_a".into(),
                events: vec![],
                agent_id: None,
                environment: Default::default(),
                expires_at: chrono::Utc::now(),
            },
            due: Some(sizes.iter().map(|n| delivery_of(*n)).collect()),
            more,
        }
    }

    #[test]
    fn listening_gives_what_fits_one_message_and_says_there_is_more() {
        let all = listening(&resumed(&[100, 200], false));
        assert_eq!(all["due"].as_array().map(Vec::len), Some(2));
        assert_eq!(all["more"], false);
        // 30 KiB bodies (60 escaped): one fits, the next would not.
        let cut = listening(&resumed(&[30 * 1024, 30 * 1024, 10], false));
        assert_eq!(cut["due"].as_array().map(Vec::len), Some(1));
        assert_eq!(cut["more"], true);
        assert!(cut.to_string().len() <= MAX_DELIVERY_MESSAGE + 1024);
        // Each one is given: one too big alone goes without its body.
        let alone = listening(&resumed(&[200 * 1024], false));
        assert_eq!(alone["due"][0]["body_omitted"], true);
        // The service's own `more` stands.
        assert_eq!(listening(&resumed(&[10], true))["more"], true);
        // A keep-alive's answer carries neither.
        let mut keep = resumed(&[], false);
        keep.due = None;
        let k = listening(&keep);
        assert!(k.get("due").is_none() && k.get("more").is_none());
    }
}
