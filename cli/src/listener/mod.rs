//! The HTTP server of `hookrun serve`, with the limits an open port needs:
//! a cap on concurrent connections and on those of one client address, a
//! time limit on reading a request's headers (slowloris), on an idle
//! connection, and on reading a body; HTTP/1.1 only unless HTTP/2 is
//! turned on (it has no header or idle timer of its own: its limits are
//! pings and a stream cap).
//! Requests hyper cannot parse are answered in the JSON error shape too
//! (`protocol_errors`). (On Lambda, API Gateway does all of this.)

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

mod protocol_errors;
use protocol_errors::JsonProtocolErrors;

/// The limits (each from its `HOOKRUN_*` setting).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub per_address: usize,
    /// Peers not capped as one client (`HOOKRUN_TRUSTED_PROXIES`: many
    /// clients come through each).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Cleartext HTTP/2 besides HTTP/1.1.
    pub http2: bool,
    /// Time to send a request's headers, from the connection's first byte
    /// or the previous answer.
    pub header_read: Duration,
    /// Time a connection may stay open without a request.
    pub idle: Duration,
    /// Time to send a request's body.
    pub body_read: Duration,
}

/// Serves `router` until `shutdown` resolves, then lets the requests in
/// progress finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let addresses = Arc::new(AddressSlots::new(
        limits.per_address,
        limits.trusted_proxies.clone(),
    ));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    if limits.http2 {
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(HTTP2_PING_EVERY)
            .keep_alive_timeout(limits.header_read)
            .max_concurrent_streams(HTTP2_MAX_STREAMS);
    }
    tokio::pin!(shutdown);
    loop {
        // The cap: no accept until a connection slot is free.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Over its address's cap: closed at once (its global slot, taken
        // for the accept, is given back with it).
        let Some(address_slot) = addresses.take(peer.ip()) else {
            drop(stream);
            continue;
        };
        // The connection's slot, which a request whose answer becomes an
        // event stream gives back (`ConnectionSlot`): streams have caps
        // of their own.
        let permit = Arc::new(Mutex::new(Some(permit)));
        let release = {
            let permit = permit.clone();
            hookrun_core::http::ConnectionSlot(Arc::new(move || {
                permit.lock().unwrap_or_else(|p| p.into_inner()).take();
            }))
        };
        let service =
            router
                .clone()
                .map_request(move |req: axum::http::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    req.extensions_mut().insert(release.clone());
                    req
                });
        let service = TowerToHyperService::new(service);
        let idle = limits.idle;
        let (http2, header_read) = (limits.http2, limits.header_read);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            // A connection that sends nothing is closed after the idle time
            // (the header timer starts with the first byte).
            let mut first = [0u8; 1];
            match tokio::time::timeout(idle, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            // HTTP/2 off: a connection that opens with its preface is
            // closed. (hyper's builder picks HTTP/2 by the preface itself
            // on connections that may upgrade, whatever it is told.)
            if !http2 && first[0] == H2_PREFACE[0] && opens_http2(&stream, header_read).await {
                return;
            }
            let conn = builder.serve_connection_with_upgrades(
                JsonProtocolErrors::new(TokioIo::new(stream)),
                service,
            );
            let conn = watcher.watch(conn.into_owned());
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// How an HTTP/2 (prior knowledge) connection starts; no HTTP/1.1 request
/// does (`PRI` is no method of ours).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Whether the connection opens with the HTTP/2 preface (true too when
/// its first bytes do not come within `within`: such a connection would
/// not get further anyway). Looks without taking the bytes.
async fn opens_http2(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return true,
        };
        if buf[..n] != H2_PREFACE[..n] {
            return false;
        }
        if n == H2_PREFACE.len() {
            return true;
        }
        // A prefix of it so far: wait for more (peek would answer at once).
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(10)))
            .await
            .is_err()
        {
            return true;
        }
    }
}

/// How often an HTTP/2 connection is pinged; one that does not answer
/// within the header-read time is closed.
const HTTP2_PING_EVERY: Duration = Duration::from_secs(20);
/// Requests one HTTP/2 connection may have in flight at once.
const HTTP2_MAX_STREAMS: u32 = 32;

/// The connections each client address holds (an IPv6 address counted by
/// its /64, as the rate limits count it).
struct AddressSlots {
    cap: usize,
    trusted: Vec<ipnet::IpNet>,
    held: Mutex<HashMap<String, usize>>,
}

/// One connection's place in its address's count, given back when dropped.
struct AddressSlot {
    slots: Arc<AddressSlots>,
    /// None for a trusted proxy (not counted).
    key: Option<String>,
}

impl AddressSlots {
    fn new(cap: usize, trusted: Vec<ipnet::IpNet>) -> Self {
        AddressSlots {
            cap,
            trusted,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a connection from `ip`, unless its address holds its cap.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        if self.trusted.iter().any(|n| n.contains(&ip)) {
            return Some(AddressSlot {
                slots: self.clone(),
                key: None,
            });
        }
        let key = hookrun_core::services::ratelimit::client_key(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: self.clone(),
            key: Some(key),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_and_proxies_are_not_capped() {
        let proxy: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let slots = Arc::new(AddressSlots::new(2, vec![proxy]));
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let a = slots.take(one).expect("first");
        let _b = slots.take(one).expect("second");
        assert!(slots.take(one).is_none(), "a third is refused");
        assert!(
            slots.take("192.0.2.2".parse().unwrap()).is_some(),
            "another address"
        );
        drop(a);
        assert!(slots.take(one).is_some(), "a slot given back is free again");
        // One IPv6 /64 is one client; a trusted proxy is not counted.
        let _c = slots.take("2001:db8::1".parse().unwrap()).unwrap();
        let _d = slots.take("2001:db8::2".parse().unwrap()).unwrap();
        assert!(slots.take("2001:db8::ffff".parse().unwrap()).is_none());
        let proxied: Vec<_> = (0..10)
            .filter_map(|_| slots.take("10.1.2.3".parse().unwrap()))
            .collect();
        assert_eq!(proxied.len(), 10);
        assert!(
            slots.held.lock().unwrap().len() <= 3,
            "proxies are not in the count"
        );
    }
}
