//! Real-time event latency of `hookrun serve` (infra/bench-live.sh): a
//! streaming agent in this process sends LINES NDJSON lines DELAY_MS apart;
//! a WebSocket client in this process, subscribed to the agent, notes when
//! each line's `agent.log` event arrives. Prints p50/p99/max of
//!   - agent to client: the line written by the agent until its event is
//!     received (hookrun reads it, stores it with an fsync, publishes it);
//!   - recorded to client: the event's `time` (when hookrun recorded the
//!     line, millisecond clock) until it is received.
//!
//! Usage: live_latency BASE_URL ADMIN_KEY [LINES] [DELAY_MS]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Sent = Arc<Mutex<Vec<Option<Instant>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        bail!("usage: live_latency BASE_URL ADMIN_KEY [LINES] [DELAY_MS]");
    }
    let (base, key) = (args[1].trim_end_matches('/').to_owned(), args[2].clone());
    let lines: usize = args.get(3).map_or(Ok(1000), |a| a.parse())?;
    let delay = Duration::from_millis(args.get(4).map_or(Ok(2), |a| a.parse())?);

    let sent: Sent = Arc::new(Mutex::new(vec![None; lines]));
    let agent_url = start_agent(sent.clone(), lines, delay).await?;
    let http = reqwest::Client::new();
    let agent: Value = http
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(&key)
        .json(&json!({"name": "latency", "runner": {"type": "http", "url": agent_url}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let agent_id = agent["id"].as_str().context("agent id")?.to_owned();
    let secret = agent["webhook_secret"]
        .as_str()
        .context("secret")?
        .to_owned();
    let workspace = agent["workspace_id"]
        .as_str()
        .context("workspace")?
        .to_owned();

    let mut req = format!("{}/api/v1/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("hookrun.v1, hookrun.bearer.{key}").parse()?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let sub = json!({"type": "subscribe", "channel": format!("workspace:{workspace}"), "agent_id": agent_id});
    ws.send(Message::Text(sub.to_string().into())).await?;

    let body = json!({"event": "bench", "source": "live_latency"}).to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body.as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let mut subscribed = false;
    let mut agent_to_client = Vec::with_capacity(lines);
    let mut recorded_to_client = Vec::with_capacity(lines);
    let deadline = Instant::now() + Duration::from_secs(60) + delay * lines as u32;
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .context("timed out waiting for events")?
            .context("the connection closed")??;
        let Message::Text(text) = frame else { continue };
        let received = Instant::now();
        let received_wall = chrono::Utc::now();
        let e: Value = serde_json::from_str(&text)?;
        match e["type"].as_str() {
            Some("subscribed") if !subscribed => {
                subscribed = true;
                http.post(format!(
                    "{base}/api/v1/webhooks/{workspace}/{agent_id}/trigger"
                ))
                .header("content-type", "application/json")
                .header("x-signature", &sig)
                .body(body.clone())
                .send()
                .await?
                .error_for_status()?;
            }
            Some("agent.log") if e["data"]["stream"] == "output" => {
                let line = e["data"]["line"].as_str().unwrap_or("");
                if let Some(i) = line
                    .strip_prefix("line ")
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    if let Some(at) = sent.lock().unwrap().get(i).copied().flatten() {
                        agent_to_client.push(received - at);
                    }
                    if let Some(t) = e["time"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    {
                        let d = received_wall - t.with_timezone(&chrono::Utc);
                        recorded_to_client.push(d.to_std().unwrap_or_default());
                    }
                }
            }
            Some("run.succeeded") | Some("run.failed") => break,
            Some("error") => bail!("the channel refused: {e}"),
            _ => {}
        }
    }
    if agent_to_client.len() != lines {
        bail!("received {} of {lines} lines", agent_to_client.len());
    }
    println!("lines: {lines}, {} ms apart", delay.as_millis());
    report("agent to client", &mut agent_to_client);
    report("recorded to client (ms clock)", &mut recorded_to_client);
    Ok(())
}

fn report(what: &str, d: &mut [Duration]) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1];
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    );
}

/// An agent that streams `lines` NDJSON lines `delay` apart, noting when
/// each was written.
async fn start_agent(sent: Sent, lines: usize, delay: Duration) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/run",
        axum::routing::post(move || {
            let sent = sent.clone();
            async move {
                let body = futures_util::stream::unfold(0usize, move |i| {
                    let sent = sent.clone();
                    async move {
                        if i > lines {
                            return None;
                        }
                        tokio::time::sleep(delay).await;
                        let text = if i == lines {
                            "{\"done\":true}\n".to_owned()
                        } else {
                            sent.lock().unwrap()[i] = Some(Instant::now());
                            format!("{{\"level\":\"info\",\"message\":\"line {i}\"}}\n")
                        };
                        Some((
                            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(text)),
                            i + 1,
                        ))
                    }
                });
                axum::response::Response::builder()
                    .header("content-type", "application/x-ndjson")
                    .body(axum::body::Body::from_stream(body))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/run", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
