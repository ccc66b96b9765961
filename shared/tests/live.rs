//! Real-time events on the embedded store: what a follower is given when
//! replay and live events overlap, slow subscribers, the hub closing, and
//! broad resumes across runs.

use std::time::Duration;

use hookrun_core::ids::WorkspaceId;
use hookrun_core::live::{
    replay, Ended, EventKind, Filter, Follower, Hub, LiveEvent, SUBSCRIBER_BUFFER,
};
use hookrun_core::model::{Agent, Run, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::services::{admin, agents, ingress, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::work;
use hookrun_core::{App, Settings};
use serde_json::json;

async fn fixture() -> (App, WorkspaceId, Agent) {
    let store = SqliteStore::in_memory().unwrap();
    let app = App::embedded(store, Settings::default()).with_live(Hub::local());
    let boot = admin::bootstrap(&app, None).await.unwrap();
    let req = agents::CreateAgent {
        name: "echo".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let agent = agents::create(&app, &boot.workspace.id, req)
        .await
        .unwrap()
        .0;
    (app, boot.workspace.id, agent)
}

async fn executed_run(app: &App, agent: &Agent) -> Run {
    let run = ingress::new_run(
        app,
        agent,
        TriggerType::Webhook,
        json!({"event": "e"}),
        None,
    );
    runs::enqueue(app, &run).await.unwrap();
    let body = json!({ "run_id": run.id }).to_string();
    assert_eq!(
        work::process(app, QueueId::Runs, &body, None).await,
        work::Outcome::Done
    );
    app.repo.get::<Run>(&run.id).await.unwrap().unwrap().record
}

async fn next(f: &mut Follower) -> Result<LiveEvent, Ended> {
    tokio::time::timeout(Duration::from_secs(5), f.next())
        .await
        .expect("an event in time")
}

#[tokio::test]
async fn a_run_replays_as_it_was_published() {
    let (app, ws, agent) = fixture().await;
    let mut live = app.live.subscribe();
    let run = executed_run(&app, &agent).await;
    let mut published = vec![];
    while let Ok(e) = live.try_recv() {
        published.push(LiveEvent::clone(&e));
    }
    let kinds: Vec<EventKind> = published.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::RunQueued));
    assert_eq!(kinds[1], EventKind::RunStarted);
    assert_eq!(kinds.last(), Some(&EventKind::RunSucceeded));
    let replayed = replay::run_events(&app, &run, None).await.unwrap();
    let ids = |v: &[LiveEvent]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&replayed),
        ids(&published),
        "the replay is what was published"
    );
    // Lifecycle events carry the run's summary as it was then.
    assert_eq!(
        serde_json::to_value(&replayed[0].data).unwrap()["status"],
        "queued"
    );
    assert_eq!(
        serde_json::to_value(&replayed[1].data).unwrap()["status"],
        "running"
    );
    assert_eq!(replayed[0].workspace_id, ws);
    let after = replay::run_events(&app, &run, Some(replayed[2].seq))
        .await
        .unwrap();
    assert_eq!(ids(&after), ids(&replayed[3..]));
}

#[tokio::test]
async fn what_replay_and_live_both_give_is_given_once() {
    let (app, ws, agent) = fixture().await;
    let run = executed_run(&app, &agent).await;
    let stored = replay::run_events(&app, &run, None).await.unwrap();
    let filter = Filter {
        run_id: Some(run.id.clone()),
        ..Filter::workspace(ws)
    };
    let resume = (run.id.clone(), stored[1].seq);
    let mut f = Follower::start(&app, filter, Some(resume)).await.unwrap();
    // The race a follower is built for: events stored before its replay
    // read them, published after it subscribed.
    app.live.publish(stored.clone()).await;
    let mut got = vec![];
    for _ in 2..stored.len() {
        got.push(next(&mut f).await.unwrap().id);
    }
    let want: Vec<String> = stored[2..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(got, want);
    // Nothing else is pending: a newer event comes next.
    let mut later = stored.last().unwrap().clone();
    later.seq += 1;
    later.id = format!("{}:{}", run.id, later.seq);
    app.live.publish(vec![later.clone()]).await;
    assert_eq!(next(&mut f).await.unwrap().id, later.id);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_dropped_and_never_slows_publishing() {
    let (app, ws, agent) = fixture().await;
    let run = executed_run(&app, &agent).await;
    let mut f = Follower::start(&app, Filter::workspace(ws), None)
        .await
        .unwrap();
    let event = replay::run_events(&app, &run, None)
        .await
        .unwrap()
        .remove(0);
    // Many more events than the subscriber's buffer, nobody reading: the
    // publisher is not held up.
    tokio::time::timeout(Duration::from_secs(5), async {
        for _ in 0..(SUBSCRIBER_BUFFER * 3) {
            app.live.publish(vec![event.clone()]).await;
        }
    })
    .await
    .expect("publishing never waits for a subscriber");
    assert_eq!(next(&mut f).await, Err(Ended::Lagged));
}

#[tokio::test]
async fn closing_the_hub_ends_every_follow() {
    let (app, ws, _) = fixture().await;
    let hub = app.live.clone();
    let waiter = tokio::spawn(async move { hub.closed().await });
    app.live.close();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    // Closed before anyone waits: still closed.
    tokio::time::timeout(Duration::from_secs(5), app.live.closed())
        .await
        .unwrap();
    let _ = Follower::start(&app, Filter::workspace(ws), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broad_resume_brings_back_other_runs_from_that_moment() {
    let (app, ws, agent) = fixture().await;
    let first = executed_run(&app, &agent).await;
    let second = executed_run(&app, &agent).await;
    let first_events = replay::run_events(&app, &first, None).await.unwrap();
    let second_events = replay::run_events(&app, &second, None).await.unwrap();
    // Resumed from the first run's start line: the rest of it, and all of
    // the second run (which began later).
    let cursor = first_events[2].clone();
    let back = replay::since(
        &app,
        &Filter::workspace(ws.clone()),
        Some((first.id.clone(), cursor.seq)),
    )
    .await
    .unwrap();
    let mut want: Vec<String> = first_events[3..].iter().map(|e| e.id.clone()).collect();
    want.extend(second_events.iter().map(|e| e.id.clone()));
    let mut got: Vec<String> = back.iter().map(|e| e.id.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Each run in its own order.
    assert_each_run_in_order(&back);
    // Another agent's scope has none of it; a resume point of another
    // workspace gives nothing.
    let other = Filter {
        agent_id: agents::create(
            &app,
            &ws,
            agents::CreateAgent {
                name: "other".into(),
                runner: RunnerConfig::Echo,
                timeout_seconds: None,
                enabled: None,
                max_concurrent_runs: None,
                concurrency: None,
            },
        )
        .await
        .unwrap()
        .0
        .id
        .into(),
        ..Filter::workspace(ws.clone())
    };
    assert!(
        replay::since(&app, &other, Some((first.id.clone(), cursor.seq)))
            .await
            .unwrap()
            .is_empty()
    );
    let stranger = Filter::workspace(WorkspaceId::parse("ws_someoneelse").unwrap());
    assert!(replay::since(&app, &stranger, Some((first.id.clone(), 0)))
        .await
        .unwrap()
        .is_empty());
    // Without a resume point a broad subscription starts live.
    assert!(replay::since(&app, &Filter::workspace(ws), None)
        .await
        .unwrap()
        .is_empty());
}

/// Per run: each event once, in `seq` order, nothing after its terminal
/// event.
fn assert_each_run_in_order(events: &[LiveEvent]) {
    let mut last: std::collections::HashMap<&str, (u32, bool)> = Default::default();
    for e in events {
        if let Some((seq, ended)) = last.get(e.run_id.as_str()) {
            assert!(!ended, "{} after its run's terminal event", e.id);
            assert!(e.seq > *seq, "{} after seq {seq}", e.id);
        }
        last.insert(e.run_id.as_str(), (e.seq, e.kind.is_terminal()));
    }
}

#[tokio::test]
async fn a_broad_resume_from_any_event_gives_the_rest_of_its_run_in_order() {
    let (app, ws, agent) = fixture().await;
    let first = executed_run(&app, &agent).await;
    let second = executed_run(&app, &agent).await;
    // As the executor records it: the run's completion time is taken
    // before its outcome lines are written, so they are later than the
    // terminal event.
    let completed = first.completed_at.unwrap();
    let mut page = app
        .repo
        .logs(&agent.id, Some(&first.id), 100, None)
        .await
        .unwrap();
    for (i, line) in page.data.iter_mut().enumerate() {
        line.timestamp = completed + chrono::Duration::milliseconds(5 + i as i64);
    }
    app.repo.append_logs(&page.data).await.unwrap();
    let events = replay::run_events(&app, &first, None).await.unwrap();
    assert!(events.len() >= 5, "{events:?}");
    assert!(events.last().unwrap().kind.is_terminal());
    let agent_scope = Filter {
        agent_id: Some(agent.id.clone()),
        ..Filter::workspace(ws.clone())
    };
    for scope in [Filter::workspace(ws.clone()), agent_scope] {
        for (i, cursor) in events.iter().enumerate() {
            let back = replay::since(&app, &scope, Some((first.id.clone(), cursor.seq)))
                .await
                .unwrap();
            assert_each_run_in_order(&back);
            let rest: Vec<&str> = back
                .iter()
                .filter(|e| e.run_id == first.id)
                .map(|e| e.id.as_str())
                .collect();
            let want: Vec<&str> = events[i + 1..].iter().map(|e| e.id.as_str()).collect();
            assert_eq!(rest, want, "resumed from {}", cursor.id);
            // A run begun after the resume point is brought back whole.
            if cursor.time <= second.created_at {
                let later = back.iter().filter(|e| e.run_id == second.id).count();
                let second_events = replay::run_events(&app, &second, None).await.unwrap();
                assert_eq!(later, second_events.len(), "resumed from {}", cursor.id);
            }
        }
    }
}

/// The events `since` must give for a broad resume from `from_run`'s event
/// `after`, computed from whole runs as the replay did before it read a
/// page at a time: each run a suffix in `seq` order, runs interleaved by
/// a time that never goes back within a run.
fn broad_oracle(runs: &[Vec<LiveEvent>], from_run: usize, after: u32) -> Vec<String> {
    let from = runs[from_run].iter().find(|e| e.seq == after).unwrap().time;
    let mut all = Vec::new();
    for (r, events) in runs.iter().enumerate() {
        let mut latest = None;
        let mut reached = false;
        for e in events {
            let at = latest.map_or(e.time, |l: chrono::DateTime<chrono::Utc>| l.max(e.time));
            latest = Some(at);
            let keep = if r == from_run {
                e.seq > after
            } else {
                reached |= at >= from;
                reached
            };
            if keep {
                all.push((at, e.run_id.to_string(), e.seq, e.id.clone()));
            }
        }
    }
    all.sort();
    all.into_iter().map(|(.., id)| id).collect()
}

#[tokio::test]
async fn replays_are_read_a_page_at_a_time_and_give_what_whole_runs_would() {
    let (app, ws, agent) = fixture().await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(executed_run(&app, &agent).await);
    }
    // 250 streamed lines per run, their times interleaved across runs.
    let base = runs[0].created_at;
    for (r, run) in runs.iter().enumerate() {
        let lines: Vec<_> = (0..250u32)
            .map(|i| hookrun_core::model::LogLine {
                run_id: run.id.clone(),
                agent_id: agent.id.clone(),
                seq: hookrun_core::model::logs::seq::streamed_lines(1) + i,
                timestamp: base + chrono::Duration::milliseconds(i64::from(i) * 3 + r as i64),
                stream: "output".into(),
                level: "info".into(),
                message: format!("run {r} line {i}"),
                expires_at: None,
            })
            .collect();
        app.repo.append_logs(&lines).await.unwrap();
    }
    let whole: Vec<Vec<LiveEvent>> = {
        let mut all = Vec::new();
        for run in &runs {
            all.push(replay::run_events(&app, run, None).await.unwrap());
        }
        all
    };
    assert!(whole[0].len() > 250 + 4, "{}", whole[0].len());
    // A run: its events in `seq` order, no page over PAGE.
    let scope = Filter {
        run_id: Some(runs[1].id.clone()),
        ..Filter::workspace(ws.clone())
    };
    for after in [None, Some(whole[1][0].seq), Some(whole[1][120].seq)] {
        let last = after.map(|s| (runs[1].id.clone(), s));
        let mut replay = replay::Replay::start(&app, &scope, last).await.unwrap();
        let mut got = Vec::new();
        let mut pages = 0;
        loop {
            let page = replay.next_page(&app).await.unwrap();
            // A page of lines, and the run's lifecycle events among them.
            assert!(page.len() <= replay::PAGE + 3, "a page of {}", page.len());
            if page.is_empty() {
                break;
            }
            pages += 1;
            got.extend(page.into_iter().map(|e| e.id));
        }
        let want: Vec<String> = whole[1]
            .iter()
            .filter(|e| after.is_none_or(|a| e.seq > a))
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(got, want, "after {after:?}");
        assert!(pages >= 2, "{pages} pages");
    }
    // Several runs merged: the same as from whole runs.
    for (from_run, at) in [(0, 0), (0, 100), (1, 7), (2, 200)] {
        let after = whole[from_run][at].seq;
        let last = Some((runs[from_run].id.clone(), after));
        let mut replay = replay::Replay::start(&app, &Filter::workspace(ws.clone()), last)
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            let page = replay.next_page(&app).await.unwrap();
            assert!(page.len() <= replay::PAGE, "a page of {}", page.len());
            if page.is_empty() {
                break;
            }
            got.extend(page.into_iter().map(|e| e.id));
        }
        assert_eq!(
            got,
            broad_oracle(&whole, from_run, after),
            "resumed from run {from_run} event {at}"
        );
    }
}

/// `next` is awaited in `select!`s that drop it when something else is
/// ready first: a replay page being read is kept, not lost with it.
#[tokio::test]
async fn a_follow_dropped_while_it_reads_a_page_loses_nothing() {
    let (app, ws, agent) = fixture().await;
    let run = executed_run(&app, &agent).await;
    let lines: Vec<_> = (0..450u32)
        .map(|i| hookrun_core::model::LogLine {
            run_id: run.id.clone(),
            agent_id: agent.id.clone(),
            seq: hookrun_core::model::logs::seq::streamed_lines(1) + i,
            timestamp: run.created_at,
            stream: "output".into(),
            level: "info".into(),
            message: format!("line {i}"),
            expires_at: None,
        })
        .collect();
    app.repo.append_logs(&lines).await.unwrap();
    let want: Vec<String> = replay::run_events(&app, &run, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let filter = Filter {
        run_id: Some(run.id.clone()),
        ..Filter::workspace(ws.clone())
    };
    let mut f = Follower::start(&app, filter, None).await.unwrap();
    let (mut got, mut dropped) = (Vec::new(), 0);
    let mut turn = 0;
    while got.len() < want.len() {
        // Every other time with the workspace's replay turns all taken, so
        // a page to read waits for one (besides the store's own waits).
        turn += 1;
        let mut held = Vec::new();
        if turn % 2 == 0 {
            // Those free (a page being read holds one of its own).
            for _ in 0..replay::MAX_REPLAYS_PER_WORKSPACE {
                held.extend(futures_util::FutureExt::now_or_never(
                    app.replays.enter(&ws),
                ));
            }
        }
        // Polled once, then dropped if it is not ready.
        let polled = futures_util::FutureExt::now_or_never(f.next());
        drop(held);
        match polled {
            Some(e) => got.push(e.unwrap().id),
            None => {
                dropped += 1;
                assert!(
                    dropped < 100_000,
                    "no progress: {} of {}",
                    got.len(),
                    want.len()
                );
                tokio::task::yield_now().await;
            }
        }
    }
    assert_eq!(got, want);
    assert!(dropped > 0, "some reads were dropped half way");
}

/// A resume that read the run's record before its attempt started, and
/// its lines after: the replay reads the record again when it meets lines
/// of a later attempt, so `run.started` (which a follower would otherwise
/// drop as passed, arriving live after those lines) is given in its place.
#[tokio::test]
async fn a_replay_of_a_record_read_before_the_start_gives_the_start_in_its_place() {
    let (app, _, agent) = fixture().await;
    let queued = ingress::new_run(
        &app,
        &agent,
        TriggerType::Webhook,
        json!({"event": "e"}),
        None,
    );
    runs::enqueue(&app, &queued).await.unwrap();
    let stale = app
        .repo
        .get::<Run>(&queued.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    let body = json!({ "run_id": queued.id }).to_string();
    work::process(&app, QueueId::Runs, &body, None).await;
    let fresh = app
        .repo
        .get::<Run>(&queued.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    let seqs = |events: Vec<LiveEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let from_stale = seqs(replay::run_events(&app, &stale, Some(0)).await.unwrap());
    let from_fresh = seqs(replay::run_events(&app, &fresh, Some(0)).await.unwrap());
    assert_eq!(from_stale, from_fresh);
    assert_eq!(from_stale.first(), Some(&10_000), "the start first");
    assert_eq!(from_stale.last(), Some(&19_999), "the end last");
}
