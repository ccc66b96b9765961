//! `hookrun listen --forward-to URL`: hookrun's outgoing webhooks on this
//! machine, without a public URL. Each `--forward-to` opens a listen
//! session (`services::listen`: a short-lived subscription), receives its
//! deliveries over the real-time channel (a WebSocket: `hookrun serve`'s,
//! or API Gateway's on AWS), POSTs each to the local URL with the exact
//! body and headers a subscription's receiver gets, and reports what the
//! local server answered: a 2xx settles the delivery, anything else makes
//! it due again by the subscription's retry schedule, when it is pushed
//! again.
//!
//! What survives: the session is the same for this machine and URL, so a
//! restart of `listen`, of the server, a dropped network or a laptop
//! that slept resume its pending deliveries in order (the `listen`
//! message gives what is due); a delivery this process already forwarded
//! is reported again, not forwarded twice.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::Ctx;
use crate::client::{CliError, Result};

/// How often the client says `listen` again: the session lives on, and
/// what is due but was not pushed is given (at most this late).
const RELISTEN_EVERY: Duration = Duration::from_secs(30);
/// A connection that brought nothing for this long is dead (a laptop that
/// slept, a network that went away without a word): serve pings every
/// 20 s, and every `listen` is answered.
const SILENT_FOR: Duration = Duration::from_secs(75);
/// How long the channel may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a delivery's attempt is remembered as taken.
const SEEN_FOR: Duration = Duration::from_secs(3600);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a local receiver may take to answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A URL on this machine to POST each delivery to; repeatable.
    #[arg(long = "forward-to", value_name = "URL", required = true)]
    forward_to: Vec<String>,
    /// The run events to forward, comma-separated (default: all). Given
    /// once, for every --forward-to; given once per --forward-to, each for
    /// the one in the same place.
    #[arg(long = "events", value_name = "EVENTS")]
    events: Vec<String>,
    /// Only this agent's runs.
    #[arg(long = "agent", value_name = "AGENT_ID")]
    agent_id: Option<String>,
    /// Also print what the local server answered.
    #[arg(long)]
    print_body: bool,
    /// The real-time channel to receive deliveries on (default: /api/v1/ws
    /// under --server, as `hookrun serve` has it; on AWS, the stack's
    /// WebSocketUrl output). Also HOOKRUN_WS_URL.
    #[arg(long, value_name = "URL")]
    ws_url: Option<String>,
}

/// One `--forward-to` and the events it wants.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    events: Option<Vec<String>>,
}

fn targets(args: &Args) -> Result<Vec<Target>> {
    if args.events.len() > 1 && args.events.len() != args.forward_to.len() {
        return Err(CliError::usage(
            "give --events once (for every --forward-to) or once per --forward-to, in the same order",
        ));
    }
    args.forward_to
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| CliError::usage(format!("--forward-to {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(CliError::usage(format!(
                    "--forward-to {url:?}: expected an http:// or https:// URL"
                )));
            }
            let events = args
                .events
                .get(if args.events.len() == 1 { 0 } else { i })
                .map(|e| {
                    e.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                });
            Ok(Target {
                url: url.clone(),
                events,
            })
        })
        .collect()
}

/// Where `listen` keeps this machine's id and its listen secret:
/// `$XDG_CONFIG_HOME/hookrun` or `~/.config/hookrun`.
fn config_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            CliError::usage("set HOME or XDG_CONFIG_HOME: listen keeps its secret there")
        })?;
    Ok(base.join("hookrun"))
}

/// The value in `file`, or `make()`'s, written there first (owner-only).
fn kept(file: &PathBuf, make: impl FnOnce() -> String) -> Result<String> {
    if let Ok(v) = std::fs::read_to_string(file) {
        let v = v.trim().to_owned();
        if !v.is_empty() {
            return Ok(v);
        }
    }
    let v = make();
    let io = |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(file, format!("{v}\n")).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
    }
    Ok(v)
}

/// This machine's id, and its listen secret for this server: the same
/// every time, so the local handler's configuration stays as it is.
fn identity(server: &str) -> Result<(String, String, PathBuf)> {
    let dir = config_dir()?;
    let machine = kept(&dir.join("machine-id"), || {
        hookrun_core::ids::random_hex(24)
    })?;
    let server_key = &hookrun_core::ids::sha256_hex(server.trim_end_matches('/'))[..16];
    let file = dir.join("listen").join(format!("{server_key}.secret"));
    let secret = kept(&file, hookrun_core::ids::signing_secret)?;
    Ok((machine, secret, file))
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// What one forward came to.
struct Forwarded {
    status: Option<u16>,
    error: Option<String>,
    answer: String,
    duration: Duration,
}

/// Forwards a delivery, first reading its body when the channel left it
/// out.
async fn forward(
    client: crate::client::Client,
    http: reqwest::Client,
    url: String,
    mut d: Value,
) -> (Value, std::result::Result<Forwarded, String>) {
    if d["body_omitted"] == true {
        match body_of(&client, &d).await {
            Ok(body) => d["body"] = Value::String(body),
            Err(why) => return (d, Err(why)),
        }
    }
    let f = forward_once(&http, &url, &d).await;
    (d, Ok(f))
}

async fn forward_once(http: &reqwest::Client, url: &str, d: &Value) -> Forwarded {
    let started = Instant::now();
    let mut req = http.post(url);
    if let Some(headers) = d.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                req = req.header(k.as_str(), v);
            }
        }
    }
    let body = d
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let answer = resp.text().await.unwrap_or_default();
            Forwarded {
                status: Some(status),
                error: None,
                answer,
                duration: started.elapsed(),
            }
        }
        Err(e) => {
            let mut root: &dyn std::error::Error = &e;
            while let Some(s) = root.source() {
                root = s;
            }
            Forwarded {
                status: None,
                error: Some(root.to_string()),
                answer: String::new(),
                duration: started.elapsed(),
            }
        }
    }
}

/// Why a connection to the channel ended.
enum Dropped {
    /// The session is gone (expired while away, or closed): open it again.
    SessionEnded,
    /// The connection went away: reconnect after a while.
    Lost(String),
    /// Retrying would not help (a revoked key, a refused request).
    Fatal(CliError),
}

impl From<CliError> for Dropped {
    fn from(e: CliError) -> Self {
        match e {
            CliError::Api { status: 404, .. } => Dropped::SessionEnded,
            e if e.exit_code() == crate::client::exit::UNAVAILABLE => Dropped::Lost(e.to_string()),
            e => Dropped::Fatal(e),
        }
    }
}

/// A failed WebSocket handshake: an HTTP refusal other than a 5xx or a
/// 429 (a revoked key: 401) is final; anything else is retried.
fn handshake_failed(url: &reqwest::Url, e: tokio_tungstenite::tungstenite::Error) -> Dropped {
    use tokio_tungstenite::tungstenite::Error as WsError;
    if let WsError::Http(resp) = &e {
        let status = resp.status().as_u16();
        if status == 404 {
            return Dropped::Fatal(CliError::usage(format!(
                "no real-time channel at {url} (404): against a stack on AWS, give its \
                 WebSocketUrl output with --ws-url (or HOOKRUN_WS_URL)"
            )));
        }
        let body: Value = resp
            .body()
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let err = CliError::Api {
            status,
            code: body["error"]["code"]
                .as_str()
                .unwrap_or("refused")
                .to_owned(),
            message: body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{url} refused the WebSocket")),
        };
        return Dropped::from(err);
    }
    Dropped::Lost(format!("{url}: {e}"))
}

/// One session's loop, until the process is stopped.
#[allow(clippy::too_many_arguments)]
async fn listen_one(
    ctx: &Ctx,
    ws_url: &reqwest::Url,
    target: &Target,
    agent_id: Option<&str>,
    machine: &str,
    secret: &str,
    print_body: bool,
    open_sessions: &Mutex<Vec<String>>,
) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(FORWARD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::usage(format!("cannot set up the HTTP client: {e}")))?;
    let open_body = json!({
        "machine_id": machine,
        "label": target.url,
        "events": target.events,
        "agent_id": agent_id,
        "secret": secret,
    });
    let mut state = Session {
        unreported: HashMap::new(),
        seen: HashMap::new(),
        print_body,
    };
    let mut session: Option<String> = None;
    // Whether the session answered `listen` since it was opened: one that
    // ends again before it did is opened again after a wait, not at once.
    let mut listened = false;
    let mut backoff = Duration::from_secs(1);
    let mut down_since: Option<Instant> = None;
    loop {
        let step: std::result::Result<(), Dropped> = async {
            let id = match &session {
                Some(id) => id.clone(),
                None => {
                    let id = open(ctx, &open_body, &target.url).await?;
                    let mut open = open_sessions.lock().expect("not poisoned");
                    if !open.contains(&id) {
                        open.push(id.clone());
                    }
                    session = Some(id.clone());
                    id
                }
            };
            // Reports first: what was forwarded before the drop.
            let pending: Vec<String> = state.unreported.keys().cloned().collect();
            for delivery_id in pending {
                settle(ctx, &id, &delivery_id, &mut state.unreported).await?;
            }
            let request = ctx.client.websocket_request(ws_url)?;
            let (mut socket, _) = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_tungstenite::connect_async(request),
            )
            .await
            .map_err(|_| Dropped::Lost(format!("{ws_url}: no answer in time")))?
            .map_err(|e| handshake_failed(ws_url, e))?;
            let listen = |due: bool| {
                WsMessage::text(json!({"type": "listen", "session_id": id, "due": due}).to_string())
            };
            if let Err(e) = socket.send(listen(true)).await {
                return Err(Dropped::Lost(e.to_string()));
            }
            let mut relisten = tokio::time::interval(RELISTEN_EVERY);
            relisten.tick().await;
            let mut queue: VecDeque<Value> = VecDeque::new();
            let mut current: Option<Forwarding> = None;
            let mut current_id: Option<String> = None;
            let mut last_heard = Instant::now();
            // A catch-up under way (`listening` said `more`): pushes are
            // left to it, so what was due is forwarded in order before
            // what came due since; the next page is asked for once the
            // queue is drained.
            let mut catching_up = false;
            let mut asked = true;
            // Ends with why the connection ended; a forward under way is
            // finished first, so it is reported on reconnection, never
            // made twice.
            let end: Dropped = async {
                loop {
                    if current.is_none() {
                        if let Some(d) = queue.pop_front() {
                            current_id = d["id"].as_str().map(str::to_owned);
                            current = Some(Box::pin(forward(
                                ctx.client.clone(),
                                http.clone(),
                                target.url.clone(),
                                d,
                            )));
                        } else if catching_up && !asked {
                            if let Err(e) = socket.send(listen(true)).await {
                                return Dropped::Lost(e.to_string());
                            }
                            asked = true;
                        }
                    }
                    let forwarding = async {
                        match current.as_mut() {
                            Some(f) => f.await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        incoming = socket.next() => {
                            last_heard = Instant::now();
                            let text = match incoming {
                                Some(Ok(WsMessage::Text(t))) => t,
                                Some(Ok(WsMessage::Close(frame))) => {
                                    let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                                    return Dropped::Lost(format!("the server closed the connection ({why})"));
                                }
                                Some(Ok(_)) => continue,
                                Some(Err(e)) => return Dropped::Lost(e.to_string()),
                                None => return Dropped::Lost("the connection ended".into()),
                            };
                            let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                            match msg["type"].as_str() {
                                Some("listening") if msg["session"]["id"] == id.as_str() => {
                                    if let Some(since) = down_since.take() {
                                        println!(
                                            "{} reconnected after {}s: resuming where it stopped",
                                            now(),
                                            since.elapsed().as_secs()
                                        );
                                    }
                                    backoff = Duration::from_secs(1);
                                    listened = true;
                                    if let Some(due) = msg["due"].as_array() {
                                        for d in due {
                                            state.take(d, &mut queue, current_id.as_deref());
                                        }
                                        asked = false;
                                        catching_up = msg["more"] == true;
                                    }
                                }
                                // During a catch-up a push is left to it.
                                Some("delivery") if msg["session_id"] == id.as_str() && !catching_up => {
                                    state.take(&msg["delivery"], &mut queue, current_id.as_deref());
                                }
                                Some("error") => return channel_error(&msg, ws_url),
                                _ => {}
                            }
                        }
                        (d, f) = forwarding => {
                            current = None;
                            current_id = None;
                            let f = match f {
                                Ok(f) => f,
                                // Not forwarded: it is given again once back.
                                Err(why) => return Dropped::Lost(why),
                            };
                            state.forwarded(&d);
                            state.print(&d, &f);
                            let delivery_id = d["id"].as_str().unwrap_or_default().to_owned();
                            state.unreported.insert(delivery_id.clone(), f);
                            if let Err(e) = settle(ctx, &id, &delivery_id, &mut state.unreported).await {
                                return e.into();
                            }
                        }
                        _ = relisten.tick() => {
                            if last_heard.elapsed() > SILENT_FOR {
                                return Dropped::Lost(format!(
                                    "nothing from the server for {}s",
                                    last_heard.elapsed().as_secs()
                                ));
                            }
                            // Keeps the session alive; when idle, also gives
                            // again what is due but no push reached (a
                            // client that was away), or a page of a
                            // catch-up whose answer never came.
                            state.forget_old();
                            let idle = current.is_none() && queue.is_empty();
                            if let Err(e) = socket.send(listen(idle)).await {
                                return Dropped::Lost(e.to_string());
                            }
                            asked |= idle;
                        }
                    }
                }
            }
            .await;
            if let Some(forwarding) = current.take() {
                let (d, f) = forwarding.await;
                let Ok(f) = f else { return Err(end) };
                state.forwarded(&d);
                state.print(&d, &f);
                let delivery_id = d["id"].as_str().unwrap_or_default().to_owned();
                state.unreported.insert(delivery_id, f);
            }
            Err(end)
        }
        .await;
        match step {
            Ok(()) => {}
            Err(Dropped::SessionEnded) => {
                println!("{} the session ended while away: opening it again", now());
                if !listened {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                listened = false;
                session = None;
            }
            Err(Dropped::Fatal(e)) => return Err(e),
            Err(Dropped::Lost(why)) => {
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    println!("{} lost the connection ({why}); reconnecting…", now());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// An `error` message of the channel: the session gone opens it again; a
/// refusal that retrying cannot change ends `listen`; anything else
/// reconnects.
fn channel_error(msg: &Value, url: &reqwest::Url) -> Dropped {
    let code = msg["code"].as_str().unwrap_or("?");
    let message = msg["message"].as_str().unwrap_or("?");
    let refused = |status: u16, hint: &str| {
        Dropped::Fatal(CliError::Api {
            status,
            code: code.to_owned(),
            message: format!("{message}{hint}"),
        })
    };
    match code {
        "not_found" => Dropped::SessionEnded,
        "invalid_message" => refused(
            400,
            &format!(
                " (the channel at {url} does not take listen: a server older than this client?)"
            ),
        ),
        "unauthorized" => refused(401, ""),
        "forbidden" => refused(403, ""),
        _ => Dropped::Lost(format!("the channel said {code}: {message}")),
    }
}

/// The body of a delivery too big for the channel's message, read from
/// the delivery log (the message's headers are signed over it).
async fn body_of(client: &crate::client::Client, d: &Value) -> std::result::Result<String, String> {
    let id = d["id"].as_str().unwrap_or_default();
    let detail = client
        .get(&["api", "v1", "deliveries", id], &[])
        .await
        .map_err(|e| format!("could not read delivery {id}'s body: {e}"))?;
    detail.json["body"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("delivery {id} came without its body"))
}

/// A forward under way: the delivery and what came of it (an error when
/// it could not be made: its body could not be read).
type Forwarding = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Value, std::result::Result<Forwarded, String>)> + Send>,
>;

/// Opens (or renews) the session of this machine and URL; its id.
async fn open(ctx: &Ctx, body: &Value, url: &str) -> std::result::Result<String, Dropped> {
    // A 404 here is no session to open again (an unknown agent): final.
    let s = ctx
        .client
        .post(&["api", "v1", "listen"], Some(body))
        .await
        .map_err(|e| match e {
            e @ CliError::Api { status: 404, .. } => Dropped::Fatal(e),
            e => Dropped::from(e),
        })?;
    let id = s.json["id"].as_str().unwrap_or_default().to_owned();
    let events = s.json["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    println!("{} listening: {events} → {url} (session {id})", now());
    Ok(id)
}

/// What one session's client remembers across reconnections.
struct Session {
    /// Forwarded and not yet reported (a report lost to a dropped
    /// connection is made again; the forward is not).
    unreported: HashMap<String, Forwarded>,
    /// Each delivery's latest attempt forwarded, and when: the same
    /// attempt given again (pushed and then given by a `listen` before its
    /// report landed) is not forwarded twice. What was given but not yet
    /// forwarded when a connection dropped is not here, so the next
    /// connection forwards it.
    seen: HashMap<String, (u64, Instant)>,
    print_body: bool,
}

impl Session {
    /// Queues a delivery given, unless it is an attempt already
    /// forwarded or being forwarded now; one already waiting its turn
    /// takes the fresh headers (a signature's time stays recent).
    fn take(&self, d: &Value, queue: &mut VecDeque<Value>, current: Option<&str>) {
        let (Some(id), Some(attempt)) = (d["id"].as_str(), d["attempt"].as_u64()) else {
            return;
        };
        if self.seen.get(id).is_some_and(|(a, _)| *a >= attempt) || current == Some(id) {
            return;
        }
        match queue.iter_mut().find(|q| q["id"] == id) {
            Some(waiting) => waiting["headers"] = d["headers"].clone(),
            None => queue.push_back(d.clone()),
        }
    }

    fn forwarded(&mut self, d: &Value) {
        if let (Some(id), Some(attempt)) = (d["id"].as_str(), d["attempt"].as_u64()) {
            self.seen.insert(id.to_owned(), (attempt, Instant::now()));
        }
    }

    /// Forgets attempts taken long ago (a delivery settles within its
    /// retry schedule; the same attempt is not given again that late).
    fn forget_old(&mut self) {
        self.seen.retain(|_, (_, at)| at.elapsed() < SEEN_FOR);
    }

    fn print(&self, d: &Value, f: &Forwarded) {
        let outcome = match (f.status, &f.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".to_owned(),
        };
        println!(
            "{} {} {} attempt {} → {} in {} ms",
            now(),
            d["event"].as_str().unwrap_or("?"),
            d["run_id"].as_str().unwrap_or("?"),
            d["attempt"],
            outcome,
            f.duration.as_millis()
        );
        if self.print_body && !f.answer.is_empty() {
            println!("{}", f.answer.trim_end());
        }
        if !f.status.is_some_and(|s| (200..300).contains(&s)) {
            println!("    retried by the subscription's schedule while listen runs");
        }
    }
}

/// Reports a forwarded delivery and forgets it once reported. A `404`
/// (the delivery expired, or the session ended) forgets it too, so it is
/// never reported forever; the error goes on, and an ended session is
/// opened again.
async fn settle(
    ctx: &Ctx,
    session: &str,
    delivery_id: &str,
    unreported: &mut HashMap<String, Forwarded>,
) -> Result<()> {
    let Some(f) = unreported.get(delivery_id) else {
        return Ok(());
    };
    match report(ctx, session, delivery_id, f).await {
        Ok(()) => {
            unreported.remove(delivery_id);
            Ok(())
        }
        Err(e @ CliError::Api { status: 404, .. }) => {
            unreported.remove(delivery_id);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn report(ctx: &Ctx, session: &str, delivery_id: &str, f: &Forwarded) -> Result<()> {
    let answer: String = f.answer.chars().take(4096).collect();
    let body = json!({
        "status_code": f.status,
        "error": f.error,
        "duration_ms": f.duration.as_millis() as u64,
        "response": if answer.is_empty() { None } else { Some(answer) },
    });
    ctx.client
        .post(
            &[
                "api",
                "v1",
                "listen",
                session,
                "deliveries",
                delivery_id,
                "attempts",
            ],
            Some(&body),
        )
        .await?;
    Ok(())
}

pub async fn run(ctx: &Ctx, server: &str, args: Args) -> Result<()> {
    let targets = targets(&args)?;
    let ws_url = args
        .ws_url
        .clone()
        .or_else(hookrun_core::config::ws_url_from_env);
    let ws_url = ctx.client.websocket_url(ws_url.as_deref())?;
    let (machine, secret, file) = identity(server)?;
    println!("listen secret: {secret}");
    println!(
        "  (kept in {}: the same every time on this machine; verify deliveries with it)",
        file.display()
    );
    let open_sessions = Mutex::new(Vec::new());
    let loops = targets.iter().map(|t| {
        listen_one(
            ctx,
            &ws_url,
            t,
            args.agent_id.as_deref(),
            &machine,
            &secret,
            args.print_body,
            &open_sessions,
        )
    });
    let all = futures_util::future::try_join_all(loops);
    let result = tokio::select! {
        r = all => r.map(|_| ()),
        _ = tokio::signal::ctrl_c() => {
            println!("{} stopping: closing the sessions", now());
            Ok(())
        }
    };
    // Ended at once rather than left to expire (on Ctrl-C, or a refusal
    // that ended `listen`): runs from now on are not delivered to them.
    let ids = open_sessions.lock().expect("not poisoned").clone();
    for id in ids {
        let _ = ctx.client.delete(&["api", "v1", "listen", &id]).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(forward: &[&str], events: &[&str]) -> Args {
        Args {
            forward_to: forward.iter().map(|s| (*s).to_owned()).collect(),
            events: events.iter().map(|s| (*s).to_owned()).collect(),
            agent_id: None,
            print_body: false,
            ws_url: None,
        }
    }

    #[test]
    fn events_go_with_their_forward_to() {
        let one = targets(&args(&["http://a/1", "http://b/2"], &["run.failed"])).unwrap();
        assert_eq!(one[0].events, Some(vec!["run.failed".to_owned()]));
        assert_eq!(one[1].events, Some(vec!["run.failed".to_owned()]));
        let each = targets(&args(
            &["http://a/1", "http://b/2"],
            &["run.failed", "run.succeeded, run.cancelled"],
        ))
        .unwrap();
        assert_eq!(each[0].events, Some(vec!["run.failed".to_owned()]));
        assert_eq!(
            each[1].events,
            Some(vec!["run.succeeded".to_owned(), "run.cancelled".to_owned()])
        );
        assert_eq!(
            targets(&args(&["http://a/1"], &[])).unwrap()[0].events,
            None
        );
    }

    #[test]
    fn bad_forward_tos_and_unmatched_events_are_usage_errors() {
        for a in [
            args(&["http://a/1", "http://b/2", "http://c/3"], &["x", "y"]),
            args(&["not a url"], &[]),
            args(&["ftp://host/x"], &[]),
        ] {
            assert!(matches!(targets(&a), Err(CliError::Usage(_))), "{a:?}");
        }
    }

    #[test]
    fn a_delivery_given_again_is_forwarded_once_and_a_waiting_one_takes_fresh_headers() {
        let mut state = Session {
            unreported: HashMap::new(),
            seen: HashMap::new(),
            print_body: false,
        };
        let d = |id: &str, attempt: u64, ts: &str| json!({"id": id, "attempt": attempt, "headers": {"webhook-timestamp": ts}});
        let mut queue = VecDeque::new();
        state.take(&d("a", 1, "1"), &mut queue, None);
        state.take(&d("b", 1, "1"), &mut queue, None);
        // Given again while waiting: not queued twice, fresh headers.
        state.take(&d("a", 1, "9"), &mut queue, None);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue[0]["headers"]["webhook-timestamp"], "9");
        // Being forwarded now, or forwarded already: left out.
        state.take(&d("c", 1, "1"), &mut queue, Some("c"));
        state.forwarded(&d("e", 1, "1"));
        state.take(&d("e", 1, "2"), &mut queue, None);
        assert_eq!(queue.len(), 2);
        // Its next attempt is new.
        state.take(&d("e", 2, "3"), &mut queue, None);
        assert_eq!(queue.len(), 3);
        // Malformed: ignored.
        state.take(&json!({"id": "x"}), &mut queue, None);
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn the_channels_refusals_end_listen_and_the_rest_reconnect() {
        let url = reqwest::Url::parse("ws://h/api/v1/ws").unwrap();
        let err = |code: &str| {
            channel_error(
                &json!({"type": "error", "code": code, "message": "m"}),
                &url,
            )
        };
        assert!(matches!(err("not_found"), Dropped::SessionEnded));
        for code in ["invalid_message", "unauthorized", "forbidden"] {
            assert!(matches!(err(code), Dropped::Fatal(_)), "{code}");
        }
        for code in ["too_slow", "too_many_streams", "unavailable"] {
            assert!(matches!(err(code), Dropped::Lost(_)), "{code}");
        }
    }

    #[test]
    fn the_machine_and_its_secret_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x/secret");
        let first = kept(&file, || "one".to_owned()).unwrap();
        let again = kept(&file, || "two".to_owned()).unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("one", "one"));
    }
}
