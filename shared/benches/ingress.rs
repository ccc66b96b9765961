//! Benchmarks of the trigger hot path: signature verification alone, and
//! the whole ingress pipeline (route, resolve, verify, parse, write the run,
//! queue it) on the embedded SQLite store, for 1 KiB and 64 KiB bodies.
//!
//! Run with `cargo bench -p hookrun-core --bench ingress`.

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{signature, App, Settings};
use tower::ServiceExt;

fn body_of(size: usize) -> Vec<u8> {
    let prefix = br#"{"event":"pull_request.opened","source":"github","data":""#;
    let mut b = prefix.to_vec();
    b.resize(size - 2, b'x');
    b.extend_from_slice(br#""}"#);
    b
}

const SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (64 * 1024, "64KiB")];

fn verify(c: &mut Criterion) {
    let secret = hookrun_core::ids::agent_secret();
    let mut group = c.benchmark_group("verify_signature");
    for (size, name) in SIZES {
        let body = body_of(size);
        let sig = signature::sign_hex(&secret, &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| assert!(signature::verify_hex(&secret, body, &sig)))
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Rate limits off: the benchmark sends far more than 30 calls a minute.
    let settings = Settings {
        rate_limit_per_ip: 0,
        rate_limit_per_trigger: 0,
        rate_limit_per_workspace: 0,
        ..Settings::default()
    };
    let app = App::embedded(SqliteStore::open_dir(dir.path()).unwrap(), settings);
    let (ws, agent, secret) = rt.block_on(async {
        let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
        let req = agents::CreateAgent {
            name: "bench".into(),
            runner: hookrun_core::model::RunnerConfig::Echo,
            timeout_seconds: None,
            enabled: None,
            max_concurrent_runs: None,
            concurrency: None,
        };
        let (agent, secret) = agents::create(&app, &ws, req).await.unwrap();
        (ws, agent.id, secret)
    });
    let router = hookrun_core::http::router(app);
    let uri = format!("/api/v1/webhooks/{ws}/{agent}/trigger");

    let mut group = c.benchmark_group("ingress_pipeline_sqlite");
    group.sample_size(50);
    for (size, name) in SIZES {
        let body = body_of(size);
        let sig = signature::sign_hex(&secret, &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = Request::post(&uri)
                        .header("content-type", "application/json")
                        .header("x-signature", &sig)
                        .body(Body::from(body.clone()))
                        .unwrap();
                    let resp = router.clone().oneshot(req).await.unwrap();
                    assert_eq!(resp.status(), 202);
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify, pipeline);
criterion_main!(benches);
