//! Abuse of every kind at once against one `hookrun serve`, each from an
//! address of its own on loopback, in bounded counts: silent connections,
//! HTTP/2 prefaces, event streams past their caps, oversized WebSocket
//! frames before authentication, and repeated resumes of a long run.
//! Throughout, a trigger call from another address is answered (a
//! liveness bound, not a timing target; the latencies are printed).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{sign, FakeAgent, Hookrun, ADMIN_KEY};

/// A TCP connection to `to` from loopback address 127.0.0.`from`.
async fn connect_from(from: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from([127, 0, 0, from]), 0))?;
    socket.connect(to).await
}

#[tokio::test]
async fn abuse_of_every_kind_leaves_other_clients_served() {
    let fake = FakeAgent::start().await;
    let h = Arc::new(Hookrun::start_with(&[
        ("HOOKRUN_IDLE_TIMEOUT_SECONDS", "5"),
        ("HOOKRUN_HEADER_READ_TIMEOUT_SECONDS", "2"),
    ]));
    let addr: SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    // A long run to resume from its start.
    let (streamer, streamer_secret) = h
        .create_agent(json!({"name": "streamer", "runner": {"type": "http", "url": fake.url("/stream?n=1500&format=ndjson")}}))
        .await;
    let long_run = h
        .trigger(&streamer, &streamer_secret, json!({"event": "long"}))
        .await;
    h.wait_finished(&long_run, Duration::from_secs(60)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut attacks = Vec::new();
    // 1. Silent connections (127.0.0.3): held up to the address's cap.
    attacks.push(tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..300 {
            if let Ok(s) = connect_from(3, addr).await {
                held.push(s);
            }
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        held.len()
    }));
    // 2. HTTP/2 prefaces, then nothing (127.0.0.4).
    attacks.push(tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..30 {
            if let Ok(mut s) = connect_from(4, addr).await {
                let _ = s
                    .write_all(
                        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
                    )
                    .await;
                held.push(s);
            }
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        held.len()
    }));
    // 3. Event streams past their caps, one key (127.0.0.5).
    let (base, agent_for_streams) = (h.base.clone(), agent.clone());
    attacks.push(tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 5]))
            .build()
            .unwrap();
        let mut open = Vec::new();
        let mut refused = 0;
        for _ in 0..40 {
            let r = client
                .get(format!("{base}/api/v1/agents/{agent_for_streams}/events"))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => open.push(r),
                Ok(r) if r.status() == 429 => refused += 1,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(refused > 0, "the per-key cap refused some of 40 streams");
        open.len()
    }));
    // 4. Oversized frames before authenticating (127.0.0.6).
    let ws_url = format!("{}/api/v1/ws", h.base.replacen("http", "ws", 1));
    let url = ws_url.clone();
    attacks.push(tokio::spawn(async move {
        let mut closed = 0;
        for _ in 0..20 {
            let Ok(stream) = connect_from(6, addr).await else {
                continue;
            };
            let req = url.clone().into_client_request().unwrap();
            let Ok((mut ws, _)) = tokio_tungstenite::client_async(req, stream).await else {
                continue;
            };
            let big = "x".repeat(1024 * 1024);
            let _ = ws.send(Message::Text(big.into())).await;
            closed += 1;
        }
        closed
    }));
    // 5. Resumes of the long run from its start, again and again, on a few
    //    sockets (127.0.0.7).
    let channel = format!("workspace:{}", h.workspace);
    let resume = format!("{long_run}:0");
    let stop_resumes = stop.clone();
    attacks.push(tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..4 {
            let Ok(stream) = connect_from(7, addr).await else {
                continue;
            };
            let mut req = ws_url.clone().into_client_request().unwrap();
            req.headers_mut().insert(
                "sec-websocket-protocol",
                format!("hookrun.v1, hookrun.bearer.{ADMIN_KEY}")
                    .parse()
                    .unwrap(),
            );
            let Ok((mut ws, _)) = tokio_tungstenite::client_async(req, stream).await else {
                continue;
            };
            for _ in 0..10 {
                if stop_resumes.load(Ordering::Relaxed) {
                    break;
                }
                let m = json!({"type": "subscribe", "channel": channel, "last_event_id": resume});
                if ws.send(Message::Text(m.to_string().into())).await.is_ok() {
                    sent += 1;
                }
            }
            // Never read: the server keeps its own pace.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(8)).await;
                drop(ws);
            });
        }
        sent
    }));

    // Meanwhile, from 127.0.0.2: a signed trigger every 200 ms for 6 s.
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = h.url(&h.trigger_path(&agent));
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_secs(6);
    let mut i = 0;
    while Instant::now() < until {
        let body = json!({"event": "alive", "n": i}).to_string();
        let started = Instant::now();
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-signature", sign(&secret, body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("call {i} under abuse not answered within 2 s: {e}"));
        assert_eq!(resp.status(), 202, "call {i}");
        latencies.push(started.elapsed());
        i += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for a in attacks {
        outcomes.push(a.await.unwrap());
    }
    latencies.sort();
    eprintln!(
        "abuse: {} calls from another address, p50 {:?}, max {:?}; silent connections held {}, HTTP/2 prefaces {}, streams open {}, oversized frames {}, resumes sent {}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        outcomes[0],
        outcomes[1],
        outcomes[2],
        outcomes[3],
        outcomes[4],
    );
    assert!(
        outcomes[2] <= 16,
        "streams of one key stay under its cap: {}",
        outcomes[2]
    );
}
