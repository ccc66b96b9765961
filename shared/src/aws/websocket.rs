//! Real-time events on AWS (docs/ARCHITECTURE.md, "Real-time events"): API
//! Gateway's WebSocket API holds the connections; the `realtime` function
//! answers `$connect`, `$disconnect` and the channel's messages
//! ([`handle`]), keeping one item per connection with what it subscribed
//! to; the executor posts each event to the workspace's subscribed
//! connections ([`ApiGatewayFanout`]) through the Management API, and
//! removes the connections that are gone (410).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use serde_json::Value;

use crate::app::App;
use crate::cache::TtlCache;
use crate::error::Error;
use crate::http::ApiError;
use crate::ids::WorkspaceId;
use crate::live::protocol::{self, ClientMessage, Refused, PROTOCOL};
use crate::live::{replay, Fanout, Filter, ListenPush, LiveEvent};
use crate::model::connection::CONNECTION_TTL_SECONDS;
use crate::model::Connection;
use crate::repo::{Repo, Versioned};
use crate::services::{admin, listen};

/// How long the executor keeps a workspace's connection list: a new
/// subscription hears events from at most this much later (its replay
/// covers what came before).
pub const CONNECTIONS_CACHE: Duration = Duration::from_secs(1);

/// Posts events and replies to API Gateway WebSocket connections.
pub struct ApiGatewayFanout {
    client: Client,
    repo: Repo,
    connections: TtlCache<WorkspaceId, Arc<Vec<Connection>>>,
}

/// Whether a post reached its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Sent,
    /// The connection is gone (410): its item was removed.
    Gone,
    Failed,
}

impl ApiGatewayFanout {
    /// `callback_url`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub fn new(sdk: &aws_config::SdkConfig, callback_url: &str, repo: Repo) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(callback_url)
            .build();
        ApiGatewayFanout {
            client: Client::from_conf(conf),
            repo,
            connections: TtlCache::new(CONNECTIONS_CACHE, 10_000),
        }
    }

    /// Sends one text frame to a connection.
    pub async fn post(&self, connection_id: &str, text: String) -> Posted {
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(text))
            .send()
            .await;
        match sent {
            Ok(_) => Posted::Sent,
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|s| s.is_gone_exception())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 410);
                if gone {
                    self.forget(connection_id).await;
                    Posted::Gone
                } else {
                    tracing::warn!(connection_id, error = %crate::error::error_chain(&e), "could not post to a WebSocket connection");
                    Posted::Failed
                }
            }
        }
    }

    async fn post_json(&self, connection_id: &str, value: Value) -> Posted {
        self.post(connection_id, value.to_string()).await
    }

    /// Closes a connection (a refused one), and forgets it.
    async fn close(&self, connection_id: &str) {
        let _ = self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await;
        self.forget(connection_id).await;
    }

    async fn forget(&self, connection_id: &str) {
        let id = Connection::id_for(connection_id);
        if let Ok(Some(v)) = self.repo.get::<Connection>(&id).await {
            if let Some(ws) = &v.workspace_id {
                self.connections.remove(ws);
            }
            let _ = self.repo.delete(&v).await;
        }
    }

    async fn subscribers(&self, ws: &WorkspaceId) -> Result<Arc<Vec<Connection>>, Error> {
        if let Some(hit) = self.connections.get(ws) {
            return Ok(hit);
        }
        let all: Vec<Connection> = self
            .repo
            .all(Repo::gsi_query(Connection::list_partition(ws), false))
            .await?;
        let subscribed = Arc::new(all.into_iter().filter(|c| c.subscribed).collect::<Vec<_>>());
        self.connections.insert(ws.clone(), subscribed.clone());
        Ok(subscribed)
    }
}

/// The filter a connection subscribed with; None before it subscribed.
pub fn filter_of(c: &Connection) -> Option<Filter> {
    let workspace_id = c.workspace_id.clone().filter(|_| c.subscribed)?;
    Some(Filter {
        workspace_id,
        agent_id: c.agent_id.clone(),
        run_id: c.run_id.clone(),
    })
}

#[async_trait::async_trait]
impl Fanout for ApiGatewayFanout {
    /// Each subscribed connection of the events' workspace gets the events
    /// it wants, in order; connections are served side by side.
    async fn send(&self, events: &[LiveEvent]) {
        let Some(ws) = events.first().map(|e| e.workspace_id.clone()) else {
            return;
        };
        let connections = match self.subscribers(&ws).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(workspace_id = %ws, error = %e, "could not read the workspace's WebSocket connections");
                return;
            }
        };
        let sends = connections.iter().filter_map(|c| {
            let filter = filter_of(c)?;
            let mine: Vec<String> = events
                .iter()
                .filter(|e| filter.matches(e))
                .map(LiveEvent::to_json)
                .collect();
            (!mine.is_empty()).then_some(async move {
                for text in mine {
                    if self.post(&c.connection_id, text).await != Posted::Sent {
                        return;
                    }
                }
            })
        });
        futures_util::future::join_all(sends).await;
    }

    /// The workspace's connections listening to the session, read now
    /// (not from the cache: a client that just said `listen` is found).
    async fn listen(&self, push: &ListenPush) {
        let all: Vec<Connection> = match self
            .repo
            .all(Repo::gsi_query(
                Connection::list_partition(&push.workspace_id),
                false,
            ))
            .await
        {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(workspace_id = %push.workspace_id, error = %e, "could not read the workspace's WebSocket connections");
                return;
            }
        };
        let sends = all
            .iter()
            .filter(|c| c.listen_session.as_deref() == Some(push.session_id.as_str()))
            .map(|c| self.post(&c.connection_id, push.text.clone()));
        futures_util::future::join_all(sends).await;
    }
}

/// One event of the WebSocket API, as the `realtime` function hands it on.
#[derive(Debug, Clone)]
pub struct WsRequest {
    /// `$connect`, `$disconnect` or `$default`.
    pub route_key: String,
    pub connection_id: String,
    /// `$connect`: the `Sec-WebSocket-Protocol` header.
    pub protocols: Option<String>,
    /// `$connect`: the `Authorization` header.
    pub authorization: Option<String>,
    pub source_ip: IpAddr,
    /// `$default`: the message.
    pub body: Option<String>,
}

/// The answer to API Gateway: a `$connect` answered other than 200 refuses
/// the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsResponse {
    pub status: u16,
    /// The subprotocol selected (`$connect`).
    pub protocol: Option<&'static str>,
    pub body: Option<String>,
}

impl WsResponse {
    fn ok() -> Self {
        WsResponse {
            status: 200,
            protocol: None,
            body: None,
        }
    }
}

/// Handles one event of the WebSocket API.
pub async fn handle(app: &App, fanout: &ApiGatewayFanout, req: WsRequest) -> WsResponse {
    match req.route_key.as_str() {
        "$connect" => connect(app, req).await,
        "$disconnect" => {
            fanout.forget(&req.connection_id).await;
            WsResponse::ok()
        }
        _ => {
            message(app, fanout, req).await;
            WsResponse::ok()
        }
    }
}

async fn connect(app: &App, req: WsRequest) -> WsResponse {
    let offered = req
        .protocols
        .as_deref()
        .and_then(|p| protocol::key_in_protocols([p]));
    let key = offered.or_else(|| {
        req.authorization
            .as_deref()?
            .strip_prefix("Bearer ")
            .map(|k| k.trim().to_owned())
    });
    let workspace = match key {
        Some(key) => match admin::authenticate(app, &key, req.source_ip).await {
            Ok(k) => Some(k.workspace_id),
            Err(e) => return refusal(e),
        },
        None => None,
    };
    let connection = Connection {
        id: Connection::id_for(&req.connection_id),
        connection_id: req.connection_id.clone(),
        workspace_id: workspace,
        subscribed: false,
        agent_id: None,
        run_id: None,
        listen_session: None,
        connected_at: app.clock.now(),
        expires_at: app.clock.now().timestamp() + CONNECTION_TTL_SECONDS,
    };
    if let Err(e) = app.repo.create(&connection).await {
        return refusal(e.into());
    }
    let offers_protocol = req
        .protocols
        .as_deref()
        .is_some_and(|p| p.split(',').any(|p| p.trim() == PROTOCOL));
    WsResponse {
        status: 200,
        protocol: offers_protocol.then_some(PROTOCOL),
        body: None,
    }
}

fn refusal(e: Error) -> WsResponse {
    let e = ApiError::from(e);
    WsResponse {
        status: e.status().as_u16(),
        protocol: None,
        body: Some(protocol::error(e.code(), &e.message()).to_string()),
    }
}

fn describe(e: Error) -> Value {
    let e = ApiError::from(e);
    protocol::error(e.code(), &e.message())
}

async fn message(app: &App, fanout: &ApiGatewayFanout, req: WsRequest) {
    let id = req.connection_id.as_str();
    let Ok(Some(mut conn)) = app.repo.get::<Connection>(&Connection::id_for(id)).await else {
        fanout
            .post_json(
                id,
                protocol::error("not_found", "this connection is not known; reconnect"),
            )
            .await;
        return;
    };
    let text = req.body.unwrap_or_default();
    let msg = match serde_json::from_str::<ClientMessage>(&text) {
        Ok(m) => m,
        Err(e) => {
            let error = protocol::error(
                "invalid_message",
                &format!("not a message of this channel: {e}"),
            );
            fanout.post_json(id, error).await;
            return;
        }
    };
    let workspace = conn.workspace_id.clone();
    match (msg, workspace) {
        (ClientMessage::Auth { api_key }, None) => {
            match admin::authenticate(app, &api_key, req.source_ip).await {
                Ok(key) => {
                    conn.workspace_id = Some(key.workspace_id.clone());
                    if save(app, fanout, &mut conn).await {
                        fanout
                            .post_json(id, protocol::ready(&key.workspace_id))
                            .await;
                    }
                }
                Err(e) => {
                    fanout.post_json(id, describe(e)).await;
                    fanout.close(id).await;
                }
            }
        }
        (_, None) => {
            let error = protocol::error(
                "unauthorized",
                "the first message must be {\"type\":\"auth\",\"api_key\":\"hka_…\"}",
            );
            fanout.post_json(id, error).await;
            fanout.close(id).await;
        }
        (ClientMessage::Auth { .. }, Some(_)) => {
            fanout
                .post_json(
                    id,
                    protocol::error("invalid_message", "already authenticated"),
                )
                .await;
        }
        (ClientMessage::Ping, Some(_)) => {
            fanout.post_json(id, protocol::pong()).await;
        }
        (ClientMessage::Unsubscribe, Some(_)) => {
            conn.subscribed = false;
            if save(app, fanout, &mut conn).await {
                fanout.post_json(id, protocol::unsubscribed()).await;
            }
        }
        (ClientMessage::Listen { session_id, due }, Some(ws)) => {
            // Marked on the connection before what is due is read, so a
            // delivery pushed in between finds it.
            if conn.listen_session.as_deref() != Some(session_id.as_str()) {
                conn.listen_session = Some(session_id.clone());
                if !save(app, fanout, &mut conn).await {
                    return;
                }
            }
            let answer = match listen::resume(app, &ws, &session_id, due).await {
                Ok(resumed) => protocol::listening(&resumed),
                Err(e) => describe(e),
            };
            fanout.post_json(id, answer).await;
        }
        (
            ClientMessage::Subscribe {
                channel,
                agent_id,
                run_id,
                last_event_id,
            },
            Some(ws),
        ) => {
            let checked = protocol::subscription(
                app,
                &ws,
                &channel,
                agent_id.as_deref(),
                run_id.as_deref(),
                last_event_id.as_deref(),
            )
            .await;
            let (filter, last) = match checked {
                Ok(ok) => ok,
                Err(Refused::OtherWorkspace(only)) => {
                    let message = Refused::OtherWorkspace(only).to_string();
                    fanout
                        .post_json(id, protocol::error("forbidden", &message))
                        .await;
                    fanout.close(id).await;
                    return;
                }
                Err(Refused::Invalid(e)) => {
                    fanout.post_json(id, describe(e)).await;
                    return;
                }
            };
            conn.subscribed = true;
            conn.agent_id = filter.agent_id.clone();
            conn.run_id = filter.run_id.clone();
            if !save(app, fanout, &mut conn).await {
                return;
            }
            fanout.post_json(id, protocol::subscribed(&filter)).await;
            // What it missed, a page at a time; a live event the executor
            // posts meanwhile may come twice (an event's id says which).
            if let Err(e) = replay_to(app, fanout, &conn, filter, last).await {
                fanout.post_json(id, describe(e)).await;
            }
        }
    }
}

/// Posts a replay to the connection a page at a time. Before each page
/// after the first it reads the connection's item again: a newer
/// `subscribe` (or an `unsubscribe`, or the client gone) changed it, and
/// this replay stops, as `hookrun serve` drops a replaced one.
async fn replay_to(
    app: &App,
    fanout: &ApiGatewayFanout,
    conn: &Versioned<Connection>,
    filter: Filter,
    last: Option<(crate::ids::RunId, u32)>,
) -> Result<(), Error> {
    let id = &conn.connection_id;
    let mut replay = replay::Replay::start(app, &filter, last).await?;
    let mut first = true;
    loop {
        if !first {
            let now = app.repo.get::<Connection>(&conn.id).await?;
            if now.is_none_or(|now| now.version != conn.version) {
                return Ok(());
            }
        }
        first = false;
        let page = replay.next_page(app).await?;
        if page.is_empty() {
            return Ok(());
        }
        for e in page {
            if fanout.post(id, e.to_json()).await != Posted::Sent {
                return Ok(());
            }
        }
    }
}

/// Saves the connection's item; on failure says so to the client.
async fn save(app: &App, fanout: &ApiGatewayFanout, conn: &mut Versioned<Connection>) -> bool {
    match app.repo.save(conn).await {
        Ok(()) => true,
        Err(e) => {
            fanout
                .post_json(&conn.connection_id, describe(e.into()))
                .await;
            false
        }
    }
}
