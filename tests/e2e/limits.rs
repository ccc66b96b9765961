//! `hookrun serve` on an open port: slow and idle connections are closed
//! after their time, a slow body is cut off, and other clients are served
//! promptly meanwhile.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Hookrun;

#[tokio::test]
async fn slowloris_connections_are_closed_and_others_served_promptly() {
    let h = Hookrun::start_with(&[
        ("HOOKRUN_HEADER_READ_TIMEOUT_SECONDS", "2"),
        ("HOOKRUN_IDLE_TIMEOUT_SECONDS", "2"),
        ("HOOKRUN_BODY_READ_TIMEOUT_SECONDS", "2"),
        ("HOOKRUN_MAX_CONNECTIONS", "400"),
        // The timers are under test here, not the cap per address.
        ("HOOKRUN_MAX_CONNECTIONS_PER_ADDRESS", "1000"),
    ]);
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Headers that never end.
            s.write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    let started = Instant::now();
    let (status, body) = h.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served in {:?} beside 300 slow connections",
        started.elapsed()
    );

    // A body that never arrives is cut off too.
    let mut body = TcpStream::connect(&addr).await.unwrap();
    body.write_all(b"POST /api/webhooks/trg_x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"")
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut closed = 0;
    for mut s in slow {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            // Closed (possibly after a 408 answer).
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => {
                if matches!(
                    tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                ) {
                    closed += 1;
                }
            }
            Err(_) => {}
        }
    }
    assert_eq!(closed, 300, "every slow or idle connection was closed");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), body.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a stalled body is not waited on forever");
}

/// Sends `request` on a new connection and reads the answer to its end
/// (hyper closes the connection after a request it cannot parse).
async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("the connection is closed after the answer")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// The last answer in `raw`: its status and its body as JSON.
fn last_json_answer(raw: &str) -> (u16, serde_json::Value) {
    let start = raw.rfind("HTTP/1.1 ").expect("an answer");
    let (head, body) = raw[start..].split_once("\r\n\r\n").expect("a head");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status = head[9..12].parse().unwrap();
    (status, serde_json::from_str(body).expect(body))
}

#[tokio::test]
async fn requests_the_server_cannot_parse_get_json_errors() {
    let h = Hookrun::start();
    let addr = h.base.trim_start_matches("http://").to_owned();
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: [(Vec<u8>, u16, &str); 5] = [
        (
            b"POST /api/webhooks/trg_x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        (
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello".to_vec(),
            400,
            "invalid_request",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            // A good request, then garbage on the same connection.
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (request, status, code) in cases {
        let raw = raw_exchange(&addr, &request).await;
        let (got, body) = last_json_answer(&raw);
        assert_eq!(got, status, "{raw}");
        assert_eq!(body["error"]["code"], code, "{raw}");
    }
    // The server still serves.
    let (status, body) = h.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
}

/// The HTTP/2 connection preface and an empty SETTINGS frame, then
/// nothing: what a client with HTTP/2 prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads until the server closes the connection (true), or `within` ends.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Cleartext HTTP/2 is off by default: a prior-knowledge connection is
/// answered as a bad HTTP/1.1 request and closed at once, so it cannot
/// outlive the header and idle timers as it used to.
#[tokio::test]
async fn http2_prior_knowledge_is_refused_unless_turned_on() {
    let h = Hookrun::start_with(&[
        ("HOOKRUN_HEADER_READ_TIMEOUT_SECONDS", "2"),
        ("HOOKRUN_IDLE_TIMEOUT_SECONDS", "5"),
    ]);
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "an HTTP/2 connection is closed"
    );
    // HTTP/1.1 is served as before.
    let (status, _) = h.get("/healthz").await;
    assert_eq!(status, 200);

    // Turned on, it is served, and a connection that answers no ping is
    // closed (interval 20 s, then the header-read time).
    let h2 = Hookrun::start_with(&[
        ("HOOKRUN_HTTP2", "true"),
        ("HOOKRUN_HEADER_READ_TIMEOUT_SECONDS", "2"),
    ]);
    let addr = h2.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    let mut first = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut first))
        .await
        .expect("the server's SETTINGS in time")
        .unwrap();
    assert_eq!(first[3], 0x4, "a SETTINGS frame: HTTP/2 is served");
    assert!(
        closed_within(&mut s, Duration::from_secs(30)).await,
        "a silent HTTP/2 connection is closed after an unanswered ping"
    );
}

/// One address holds at most its cap of connections (here the default,
/// 64): 600 silent connections from 127.0.0.1 leave room for everyone
/// else, and a trigger call from 127.0.0.2 is answered promptly (a
/// liveness bound, not a timing target).
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(serde_json::json!({"name": "a"})).await;
    let addr: std::net::SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..600 {
        // Refused outright is fine too.
        if let Ok(s) = TcpStream::connect(addr).await {
            idle.push(s);
        }
    }
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = serde_json::json!({"event": "e"}).to_string();
    let started = Instant::now();
    let resp = other
        .post(h.url(&h.trigger_path(&agent)))
        .header("content-type", "application/json")
        .header(
            "x-signature",
            crate::harness::sign(&secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("another address is answered");
    assert_eq!(resp.status(), 202);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?} beside 600 idle connections of one address",
        started.elapsed()
    );
    // Of the 600, the server kept at most its cap open.
    let mut open = 0;
    for s in &mut idle {
        let mut buf = [0u8; 1];
        // Still open: nothing to read yet.
        if tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    assert!(open <= 64, "{open} connections of one address held open");
    assert!(open >= 32, "{open}: the first ones were kept");
}
