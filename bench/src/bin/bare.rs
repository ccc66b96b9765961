//! The floor for `hookrun serve`'s trigger throughput: a server that does
//! only what a trigger call must (read the body, check its HMAC-SHA256
//! signature in constant time, parse the JSON) and answers 202.
//!
//! `bare ADDR SECRET`; route `POST /trigger` with `X-Signature`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let secret: &'static str = Box::leak(args.next().unwrap_or_default().into_boxed_str());
    let app = Router::new().route(
        "/trigger",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let sig = headers
                .get("x-signature")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| hex::decode(v).ok())
                .unwrap_or_default();
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
            mac.update(&body);
            if mac.verify_slice(&sig).is_err() {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "signature"})),
                );
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(_) => (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))),
                Err(_) => (StatusCode::BAD_REQUEST, Json(json!({"error": "json"}))),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
