//! A closed-loop load generator: `loadgen URL SECRET SECONDS CONNECTIONS`
//! sends signed 1 KiB JSON bodies (`X-Signature`: hex HMAC-SHA256) over
//! CONNECTIONS keep-alive connections for SECONDS, then prints one JSON line:
//! accepted calls per second, p50 and p99 latency, and any other statuses.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn body(n: u64) -> Vec<u8> {
    let head = format!(r#"{{"event":"push","source":"bench","n":{n},"data":""#);
    let mut b = head.into_bytes();
    b.resize(1022, b'x');
    b.extend_from_slice(br#""}"#);
    b
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, secret, seconds, connections] = args.as_slice() else {
        anyhow::bail!("usage: loadgen URL SECRET SECONDS CONNECTIONS");
    };
    let seconds: u64 = seconds.parse()?;
    let connections: u64 = connections.parse()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut other = 0u64;
                let mut n = c << 40;
                while Instant::now() < deadline {
                    n += 1;
                    let b = body(n);
                    let sig = sign(&secret, &b);
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-signature", sig)
                        .body(b)
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().as_u16() == 202 => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed().as_micros() as u64);
                        }
                        Ok(r) => {
                            other += 1;
                            let _ = r.bytes().await;
                        }
                        Err(_) => other += 1,
                    }
                }
                (latencies, other)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut other = 0;
    for t in tasks {
        let (l, o) = t.await?;
        all.extend(l);
        other += o;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "accepted_per_second": (all.len() as f64 / elapsed).round(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "not_accepted": other,
        })
    );
    Ok(())
}
