//! Outgoing calls use no proxy unless `HOOKRUN_OUTBOUND_PROXY` names one,
//! and the destination guard holds through a proxy. Its own test binary:
//! it sets the process's proxy variables.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookrun_core::outbound::{parse_allowlist, OutboundError, OutboundPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A "proxy" that counts connections and answers 502.
async fn recorder() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    (url, hits)
}

#[tokio::test]
async fn no_proxy_but_the_configured_one_and_the_guard_holds_through_it() {
    let (proxy_url, proxy_hits) = recorder().await;
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/hook", target.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "direct" });
    tokio::spawn(async move { axum::serve(target, app).await.unwrap() });

    // The environment's proxy variables are ignored.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        std::env::set_var(var, &proxy_url);
    }
    std::env::remove_var("NO_PROXY");
    let direct = OutboundPolicy {
        allow_http: true,
        allow: parse_allowlist("127.0.0.1/32").unwrap(),
        proxy: None,
    };
    let resp = direct
        .client(Duration::from_secs(5))
        .post(&target_url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "direct");
    assert_eq!(proxy_hits.load(Ordering::SeqCst), 0, "no proxy was used");

    // Through the configured proxy, a refused destination is refused
    // before any connection: the proxy would resolve it itself.
    let proxied = OutboundPolicy {
        allow_http: true,
        allow: vec![],
        proxy: Some(proxy_url.clone()),
    };
    let err = proxied.guard("http://localhost:9/x").await.unwrap_err();
    assert_eq!(err, OutboundError::NotPublic("localhost".into()));
    assert_eq!(proxy_hits.load(Ordering::SeqCst), 0);

    // An allowed destination goes through it.
    let allowed = OutboundPolicy {
        allow_http: true,
        allow: parse_allowlist("127.0.0.1/32").unwrap(),
        proxy: Some(proxy_url),
    };
    allowed.guard(&target_url).await.unwrap();
    let resp = allowed
        .client(Duration::from_secs(5))
        .post(&target_url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 502, "answered by the proxy");
    assert_eq!(proxy_hits.load(Ordering::SeqCst), 1);
}
