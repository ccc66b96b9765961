//! What a resume costs: reading back a finished run of 8,000 log lines
//! from the embedded store as events (`replay::run_events`, a run-scoped
//! resume from the start) and as an agent-scoped resume from its first
//! event (`replay::since`). Criterion reports the time per replay and
//! events per second; the time per 1,000 events is the time / 8.
//!
//! Run with `cargo bench -p hookrun-core --bench replay`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hookrun_core::live::{replay, Filter};
use hookrun_core::model::{LogLine, Run, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::services::{admin, agents, ingress, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{App, Settings};

/// Lines of the replayed run (about what a chatty streaming agent writes).
const LINES: u32 = 8_000;

fn replays(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = App::embedded(
        SqliteStore::open_dir(dir.path()).unwrap(),
        Settings::default(),
    );
    let (ws, run) = rt.block_on(async {
        let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
        let req = agents::CreateAgent {
            name: "bench".into(),
            runner: RunnerConfig::Echo,
            timeout_seconds: None,
            enabled: None,
        };
        let agent = agents::create(&app, &ws, req).await.unwrap().0;
        let mut run = ingress::new_run(
            &app,
            &agent,
            TriggerType::Webhook,
            serde_json::json!({"event": "bench"}),
            None,
        );
        runs::enqueue(&app, &run).await.unwrap();
        let now = app.clock.now();
        let lines: Vec<LogLine> = (0..LINES)
            .map(|i| LogLine {
                run_id: run.id.clone(),
                agent_id: agent.id.clone(),
                seq: 10_010 + i,
                timestamp: now,
                stream: "output".into(),
                level: "info".into(),
                message: format!("line {i}: {}", "x".repeat(80)),
                expires_at: None,
            })
            .collect();
        for chunk in lines.chunks(500) {
            app.repo.append_logs(chunk).await.unwrap();
        }
        let mut stored = app.repo.get::<Run>(&run.id).await.unwrap().unwrap();
        stored.record.status = RunStatus::Succeeded;
        stored.record.attempt = 1;
        stored.record.started_at = Some(now);
        stored.record.completed_at = Some(now);
        app.repo.save(&mut stored).await.unwrap();
        run = stored.record;
        (ws, run)
    });
    let mut group = c.benchmark_group("replay");
    group.sample_size(20);
    group.throughput(Throughput::Elements(u64::from(LINES)));
    group.bench_function("run_8000_lines", |b| {
        b.iter(|| {
            let events = rt.block_on(replay::run_events(&app, &run, None)).unwrap();
            assert!(events.len() as u32 > LINES);
        })
    });
    let filter = Filter {
        agent_id: Some(run.agent_id.clone()),
        ..Filter::workspace(ws)
    };
    group.bench_function("agent_resume_8000_lines", |b| {
        b.iter(|| {
            let events = rt
                .block_on(replay::since(&app, &filter, Some((run.id.clone(), 0))))
                .unwrap();
            assert!(events.len() as u32 >= LINES);
        })
    });
    group.finish();
}

criterion_group!(benches, replays);
criterion_main!(benches);
