//! What a resume costs: reading back a finished run of 8,000 log lines
//! from the embedded store as events, a page at a time as a stream reads
//! it (`replay::Replay`), as a run-scoped resume from the start and as an
//! agent-scoped resume from its first event. Criterion reports the time
//! per replay and events per second; the time per 1,000 events is the
//! time / 8. It also prints the most events a replay held at once.
//!
//! Run with `cargo bench -p hookrun-core --bench replay`; against an
//! earlier commit, `bench/replay-before-after.sh <commit>`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hookrun_core::ids::RunId;
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
            max_concurrent_runs: None,
            concurrency: None,
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
    let run_scope = Filter {
        run_id: Some(run.id.clone()),
        ..Filter::workspace(ws.clone())
    };
    let agent_scope = Filter {
        agent_id: Some(run.agent_id.clone()),
        ..Filter::workspace(ws)
    };
    for (scope, last) in [
        (&run_scope, None),
        (&agent_scope, Some((run.id.clone(), 0))),
    ] {
        let (given, held) = rt.block_on(paged(&app, scope, last.clone()));
        println!("replay of {given} events held at most {held} at once");
    }
    group.bench_function("run_8000_lines", |b| {
        b.iter(|| {
            let (given, _) = rt.block_on(paged(&app, &run_scope, None));
            assert!(given as u32 > LINES);
        })
    });
    group.bench_function("agent_resume_8000_lines", |b| {
        b.iter(|| {
            let (given, _) = rt.block_on(paged(&app, &agent_scope, Some((run.id.clone(), 0))));
            assert!(given as u32 >= LINES);
        })
    });
    group.finish();
}

/// A replay read as a stream reads it, a page at a time: the events given
/// and the most held at once.
async fn paged(app: &App, filter: &Filter, last: Option<(RunId, u32)>) -> (usize, usize) {
    let mut replay = replay::Replay::start(app, filter, last).await.unwrap();
    let (mut given, mut held) = (0, 0);
    loop {
        let page = replay.next_page(app).await.unwrap();
        if page.is_empty() {
            return (given, held);
        }
        held = held.max(page.len());
        given += std::hint::black_box(page).len();
    }
}

criterion_group!(benches, replays);
criterion_main!(benches);
