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
