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
