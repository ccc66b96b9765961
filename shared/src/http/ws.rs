//! The WebSocket channel `workspace:{workspaceId}` of `hookrun serve`
//! (docs/ARCHITECTURE.md, "Real-time events"; the protocol is in the
//! README). The admin key never travels in the URL, where it would be
//! logged: it comes in `Sec-WebSocket-Protocol` (`hookrun.v1,
//! hookrun.bearer.<key>`, for browsers, which cannot set headers), in
//! `Authorization`, or as the first message.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::extract::SourceIp;
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::live::protocol::{self, ClientMessage, Refused, PROTOCOL};
use crate::live::{Ended, Follower, ListenPush, StreamSlot};
use crate::services::{admin, listen};

/// Where the channel is served.
pub const PATH: &str = "/api/v1/ws";

/// The close codes the channel uses besides the standard ones.
pub mod close {
    /// No valid admin key (or none within [`super::AUTH_WAIT`]).
    pub const UNAUTHORIZED: u16 = 4001;
    /// Another workspace's channel.
    pub const FORBIDDEN: u16 = 4003;
    /// The client fell behind: reconnect with the last event id.
    pub const TOO_SLOW: u16 = 4008;
    /// A message that is not the protocol's.
    pub const BAD_MESSAGE: u16 = 1008;
    /// The server is stopping.
    pub const GOING_AWAY: u16 = 1001;
    /// No pong to two pings.
    pub const NO_PONG: u16 = 4009;
    /// Too many event streams open (in all, of the workspace or of the
    /// key): retry later.
    pub const TOO_MANY_STREAMS: u16 = 4029;
    /// RFC 6455: a frame that breaks the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// RFC 6455: a text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// RFC 6455: a message over the size the connection accepts.
    pub const TOO_BIG: u16 = 1009;
    /// RFC 6455 ("internal error"): what was missed could not be read
    /// back; reconnect with the last event id.
    pub const UNAVAILABLE: u16 = 1011;
}

/// How long an unauthenticated connection may wait for its auth message.
pub const AUTH_WAIT: Duration = Duration::from_secs(10);
/// Pings every this often; a client that answered none of two is dropped.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// How long the close frame may take to go out. A client that stopped
/// reading is given up on after `HOOKRUN_STREAM_SEND_TIMEOUT_SECONDS` with
/// a frame half sent; its close (4008) goes out after the rest of that
/// frame, so a client that reads again within this time finds whole
/// frames and then the close code, never a cut frame. One that never
/// reads again is dropped after it (its stream slot held until then). A
/// stopping server waits the send timeout only.
const CLOSE_GRACE: Duration = Duration::from_secs(60);
/// Largest message (and frame) an authenticated client may send.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Largest message (and frame) before the client authenticated: the auth
/// message and no more, so an unauthenticated client cannot make the
/// server hold megabytes (the frame limit matters: a single frame is read
/// whole before a message limit applies).
const MAX_UNAUTHENTICATED_MESSAGE: usize = 4 * 1024;

/// The upgrade: a key offered in the handshake is checked before it, so a
/// bad one gets an ordinary `401`.
pub async fn upgrade(
    State(app): State<App>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    SourceIp(ip): SourceIp,
) -> Result<Response, ApiError> {
    // Not a WebSocket handshake: a JSON answer like every other error.
    let ws = ws.map_err(|r| {
        ApiError::BadRequest(format!(
            "{PATH} is a WebSocket endpoint: {} (connect with Upgrade: websocket)",
            r.body_text()
        ))
    })?;
    let offered = handshake_key(&headers);
    let key = match offered {
        Some(key) => Some(admin::authenticate(&app, &key, ip).await?),
        None => None,
    };
    let workspace = key.as_ref().map(|k| k.workspace_id.clone());
    // A WebSocket counts against the stream caps from its upgrade, signed
    // in or not, and no longer against the connections'.
    let slot = app.streams.take_anonymous().and_then(|mut slot| {
        if let Some(k) = &key {
            app.streams.claim(&mut slot, &k.workspace_id, &k.id)?;
        }
        Ok(slot)
    });
    super::ConnectionSlot::release_for(&extensions);
    // A client that authenticates with its first message keeps the small
    // limit: every message of the protocol fits it.
    let limit = if workspace.is_some() {
        MAX_CLIENT_MESSAGE
    } else {
        MAX_UNAUTHENTICATED_MESSAGE
    };
    Ok(ws
        .protocols([PROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            Connection {
                send_timeout: app.settings.streams.send_timeout,
                app,
                socket,
                ip,
                follower: None,
                starting: None,
                listening: None,
            }
            .run(workspace, slot)
            .await
        })
        .into_response())
}

/// The admin key of the handshake: a `hookrun.bearer.<key>` subprotocol
/// entry, or `Authorization: Bearer <key>`.
fn handshake_key(headers: &HeaderMap) -> Option<String> {
    let from_protocol = protocol::key_in_protocols(
        headers
            .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    from_protocol.or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(|k| k.trim().to_owned())
    })
}

struct Connection {
    app: App,
    /// How long one frame may take to go out before the client counts as
    /// too slow.
    send_timeout: Duration,
    socket: WebSocket,
    ip: std::net::IpAddr,
    follower: Option<Follower>,
    /// A subscription being set up (its replay read): a newer subscribe
    /// or an unsubscribe drops it, and the work it had left with it.
    starting: Option<Starting>,
    /// The `hookrun listen` session whose deliveries this connection
    /// forwards, and the pushes it gets.
    listening: Option<Listening>,
}

struct Listening {
    session_id: String,
    pushes: tokio::sync::broadcast::Receiver<std::sync::Arc<ListenPush>>,
}

type Starting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Follower, Refused>> + Send>>;

/// Why the connection ends.
struct Close(u16, String);

impl Connection {
    async fn run(mut self, workspace: Option<WorkspaceId>, slot: Result<StreamSlot, Error>) {
        // The slot is held until the connection ends, close included.
        let (end, _slot) = match slot {
            Err(e) => {
                let (_, message) = describe(e);
                let end = self
                    .refuse("too_many_streams", &message, close::TOO_MANY_STREAMS)
                    .await;
                (end, None)
            }
            Ok(mut slot) => {
                let end = match workspace {
                    Some(ws) => self.serve(ws).await,
                    None => match self.authenticate(&mut slot).await {
                        Ok(ws) => self.serve(ws).await,
                        Err(close) => close,
                    },
                };
                (end, Some(slot))
            }
        };
        let Close(code, reason) = end;
        // A stopping server does not wait a minute on a client that reads
        // nothing.
        let grace = if code == close::GOING_AWAY {
            self.send_timeout
        } else {
            CLOSE_GRACE
        };
        let _ = tokio::time::timeout(
            grace,
            self.socket.send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason),
            }))),
        )
        .await;
    }

    /// Waits for `{"type":"auth","api_key":…}`.
    async fn authenticate(&mut self, slot: &mut StreamSlot) -> Result<WorkspaceId, Close> {
        let first = tokio::time::timeout(AUTH_WAIT, self.socket.recv()).await;
        let text = match first {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Err(e))) => return Err(broken(e)),
            Ok(Some(Ok(_))) | Ok(None) | Err(_) => {
                return Err(self.refuse("unauthorized", "send {\"type\":\"auth\",\"api_key\":\"hka_…\"} first, or offer the key in Sec-WebSocket-Protocol", close::UNAUTHORIZED).await);
            }
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Auth { api_key }) => {
                match admin::authenticate(&self.app, &api_key, self.ip).await {
                    Ok(key) => match self.app.streams.claim(slot, &key.workspace_id, &key.id) {
                        Ok(()) => Ok(key.workspace_id),
                        Err(e) => {
                            let (_, message) = describe(e);
                            Err(self
                                .refuse("too_many_streams", &message, close::TOO_MANY_STREAMS)
                                .await)
                        }
                    },
                    Err(e) => {
                        let (code, message) = describe(e);
                        Err(self.refuse(code, &message, close::UNAUTHORIZED).await)
                    }
                }
            }
            _ => Err(self
                .refuse(
                    "unauthorized",
                    "the first message must be {\"type\":\"auth\",\"api_key\":\"hka_…\"}",
                    close::UNAUTHORIZED,
                )
                .await),
        }
    }

    async fn refuse(&mut self, code: &str, message: &str, close: u16) -> Close {
        self.send_json(protocol::error(code, message)).await;
        Close(close, code.to_owned())
    }

    async fn serve(&mut self, workspace: WorkspaceId) -> Close {
        if !self.send_json(protocol::ready(&workspace)).await {
            return Close(close::GOING_AWAY, "send failed".into());
        }
        let mut pings = tokio::time::interval(PING_EVERY);
        pings.tick().await;
        let mut unanswered = 0u32;
        let hub = self.app.live.clone();
        loop {
            let follower = &mut self.follower;
            let next_event = async {
                match follower {
                    Some(f) => f.next().await,
                    None => std::future::pending().await,
                }
            };
            let listening = &mut self.listening;
            let ws = &workspace;
            let next_push = async {
                match listening {
                    Some(l) => loop {
                        match l.pushes.recv().await {
                            Ok(p) if p.session_id == l.session_id && p.workspace_id == *ws => {
                                break Ok(p)
                            }
                            Ok(_) => continue,
                            Err(e) => break Err(e),
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            let starting = &mut self.starting;
            let started = async {
                match starting {
                    Some(s) => s.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            // In this order when several are ready: what the client sent
            // first (a newer subscribe replaces one whose replay would go
            // out otherwise), then a subscription set up, keep-alives, and
            // the next event.
            tokio::select! {
                biased;
                () = hub.closed() => return Close(close::GOING_AWAY, "going_away".into()),
                incoming = self.socket.recv() => {
                    unanswered = 0;
                    match incoming {
                        None | Some(Ok(Message::Close(_))) => {
                            return Close(1000, "bye".into());
                        }
                        Some(Err(e)) => return broken(e),
                        Some(Ok(Message::Text(text))) => {
                            if let Err(close) = self.handle(&workspace, &text).await {
                                return close;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            return self.refuse("invalid_message", "messages are JSON text frames", close::BAD_MESSAGE).await;
                        }
                        Some(Ok(_)) => {} // ping (answered for us), pong
                    }
                }
                result = started => {
                    self.starting = None;
                    if let Err(close) = self.started(result).await {
                        return close;
                    }
                }
                _ = pings.tick() => {
                    if unanswered >= 2 {
                        return Close(close::NO_PONG, "no_pong".into());
                    }
                    unanswered += 1;
                    if tokio::time::timeout(self.send_timeout, self.socket.send(Message::Ping(Default::default()))).await.is_err() {
                        return Close(close::TOO_SLOW, "too_slow".into());
                    }
                }
                push = next_push => match push {
                    Ok(p) => {
                        if !self.send_text(p.text.clone()).await {
                            return Close(close::TOO_SLOW, "too_slow".into());
                        }
                    }
                    // What it missed stays due: it gets it again when it
                    // reconnects and says `listen`.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        return self.refuse("too_slow", "fell behind the listen session's deliveries: reconnect", close::TOO_SLOW).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Close(close::GOING_AWAY, "going_away".into());
                    }
                },
                event = next_event => match event {
                    Ok(e) => {
                        if !self.send_text(e.to_json()).await {
                            return Close(close::TOO_SLOW, "too_slow".into());
                        }
                    }
                    Err(Ended::Lagged) => {
                        return self.refuse("too_slow", &Ended::Lagged.to_string(), close::TOO_SLOW).await;
                    }
                    Err(Ended::Closed) => return Close(close::GOING_AWAY, "going_away".into()),
                    Err(Ended::Unavailable) => {
                        return self.refuse("unavailable", &Ended::Unavailable.to_string(), close::UNAVAILABLE).await;
                    }
                },
            }
        }
    }

    /// One client message after authentication.
    async fn handle(&mut self, workspace: &WorkspaceId, text: &str) -> Result<(), Close> {
        let msg = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                self.send_error(
                    "invalid_message",
                    &format!("not a message of this channel: {e}"),
                )
                .await;
                return Ok(());
            }
        };
        match msg {
            ClientMessage::Auth { .. } => {
                self.send_error("invalid_message", "already authenticated")
                    .await;
            }
            ClientMessage::Ping => {
                self.send_json(protocol::pong()).await;
            }
            ClientMessage::Unsubscribe => {
                self.follower = None;
                self.starting = None;
                self.send_json(protocol::unsubscribed()).await;
            }
            ClientMessage::Listen { session_id, due } => {
                // Pushes are heard from before what is due is read, so
                // none made in between is lost; one given by both is the
                // same delivery and attempt, which the client forwards
                // once. The same session said again keeps its pushes.
                let pushes = match self.listening.take() {
                    Some(l) if l.session_id == session_id => l.pushes,
                    _ => self.app.live.subscribe_listen(),
                };
                match listen::resume(&self.app, workspace, &session_id, due).await {
                    Ok(resumed) => {
                        self.listening = Some(Listening {
                            session_id: resumed.session.id.clone(),
                            pushes,
                        });
                        if !self.send_json(protocol::listening(&resumed)).await {
                            return Err(Close(close::TOO_SLOW, "too_slow".into()));
                        }
                    }
                    Err(e) => {
                        let (code, message) = describe(e);
                        self.send_error(code, &message).await;
                    }
                }
            }
            ClientMessage::Subscribe {
                channel,
                agent_id,
                run_id,
                last_event_id,
            } => {
                // A new subscription replaces the last one, and one still
                // being set up (its replay is not read any further). The
                // replay of what was missed goes out before any live event.
                self.follower = None;
                let (app, workspace) = (self.app.clone(), workspace.clone());
                self.starting = Some(Box::pin(async move {
                    let (filter, last) = protocol::subscription(
                        &app,
                        &workspace,
                        &channel,
                        agent_id.as_deref(),
                        run_id.as_deref(),
                        last_event_id.as_deref(),
                    )
                    .await?;
                    Follower::start(&app, filter, last)
                        .await
                        .map_err(Refused::Invalid)
                }));
            }
        }
        Ok(())
    }

    /// A subscription set up (or refused).
    async fn started(&mut self, result: Result<Follower, Refused>) -> Result<(), Close> {
        match result {
            Ok(follower) => {
                self.send_json(protocol::subscribed(follower.filter()))
                    .await;
                self.follower = Some(follower);
            }
            Err(Refused::OtherWorkspace(only)) => {
                let message = Refused::OtherWorkspace(only).to_string();
                return Err(self.refuse("forbidden", &message, close::FORBIDDEN).await);
            }
            Err(Refused::Invalid(e)) => {
                let (code, message) = describe(e);
                self.send_error(code, &message).await;
            }
        }
        Ok(())
    }

    async fn send_error(&mut self, code: &str, message: &str) {
        self.send_json(protocol::error(code, message)).await;
    }

    async fn send_json(&mut self, value: Value) -> bool {
        self.send_text(value.to_string()).await
    }

    /// False when the frame did not go out in time (or at all).
    async fn send_text(&mut self, text: String) -> bool {
        matches!(
            tokio::time::timeout(
                self.send_timeout,
                self.socket.send(Message::Text(text.into()))
            )
            .await,
            Ok(Ok(()))
        )
    }
}

/// How a connection whose next frame could not be read ends: with the
/// RFC 6455 code for what the frame did wrong (too big, not UTF-8, not
/// the protocol), or a plain close when the connection is simply gone.
fn broken(e: axum::Error) -> Close {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Close(close::TOO_BIG, "message_too_big".into()),
        Some(tungstenite::Error::Utf8(_)) => Close(close::INVALID_DATA, "invalid_utf8".into()),
        Some(tungstenite::Error::Protocol(_)) => {
            Close(close::PROTOCOL_ERROR, "protocol_error".into())
        }
        _ => Close(1000, "bye".into()),
    }
}

/// The code and message an error gets on the channel: the HTTP API's.
fn describe(e: Error) -> (&'static str, String) {
    let e = ApiError::from(e);
    (e.code(), e.message())
}
