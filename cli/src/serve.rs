//! `hookrun serve`: everything in one process on SQLite.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hookrun_core::config::{self, AwsSettings, Backend, LogFormat, ServeSettings};
use hookrun_core::ids::WorkspaceId;
use hookrun_core::model::RunnerConfig;
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::worker::{run_worker, Work};
use hookrun_core::{App, Settings};
use tokio::sync::{watch, Notify};

use crate::ServeArgs;

/// How often expired items are swept from the database.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// An opened backend: the app, and what the embedded store adds.
pub struct Opened {
    pub app: App,
    /// Wakes the worker when a run is queued (embedded queue only).
    wake: Arc<Notify>,
    /// The SQLite store, which needs its TTL sweep (DynamoDB sweeps itself).
    sqlite: Option<SqliteStore>,
    /// The AWS backend's outbox relay (the `relay` function's counterpart).
    relay: Option<hookrun_core::aws::stream::StreamRelay>,
    description: String,
}

/// Opens the chosen backend with these settings.
/// Whether `data_dir` holds a store `hookrun serve` made (its database).
pub fn has_store(data_dir: &std::path::Path) -> bool {
    SqliteStore::database_path(data_dir).is_file()
}

pub async fn open(args: &ServeSettings, settings: Settings) -> anyhow::Result<Opened> {
    match args.backend {
        Backend::Sqlite => {
            let store =
                SqliteStore::open_dir_with_key(&args.data_dir, args.master_key_file.as_deref())
                    .with_context(|| {
                        format!("cannot open the data directory {}", args.data_dir.display())
                    })?;
            Ok(Opened {
                wake: store.queue_signal(),
                app: App::embedded(store.clone(), settings),
                sqlite: Some(store),
                relay: None,
                description: format!("sqlite store in {}", args.data_dir.display()),
            })
        }
        Backend::Aws => {
            let sdk = hookrun_core::aws::sdk_config().await;
            let aws = match &args.provision {
                Some(prefix) => hookrun_core::aws::provision::provision(&sdk, prefix)
                    .await
                    .with_context(|| format!("cannot provision AWS resources {prefix}"))?,
                None => AwsSettings::from_env()?,
            };
            let app = hookrun_core::aws::app(&sdk, &aws, settings);
            let relay = hookrun_core::aws::stream::StreamRelay::new(
                &sdk,
                aws.table_name.clone(),
                app.repo.clone(),
                app.queue.clone(),
            );
            Ok(Opened {
                description: format!("aws backend, table {}", aws.table_name),
                app,
                wake: Arc::new(Notify::new()),
                sqlite: None,
                relay: Some(relay),
            })
        }
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let serve = args.settings()?;
    let mut settings = Settings::from_env()?;
    init_logging(serve.log_format, &serve.log_filter)?;
    let listener = tokio::net::TcpListener::bind(&serve.addr)
        .await
        .with_context(|| format!("cannot listen on {}", serve.addr))?;
    let local = listener.local_addr()?;
    if settings.public_url.is_none() {
        settings.public_url = Some(format!("http://{local}"));
    }
    if args.allow_local_agents {
        settings.outbound.allow_http = true;
        settings.outbound.allow.extend(config::loopback());
    }
    if args.demo {
        settings.ip_limit_exempt = config::loopback();
    }
    let Opened {
        app,
        wake,
        sqlite,
        relay,
        description,
    } = open(&serve, settings).await?;
    // This process streams run events to its own WebSocket and SSE clients.
    let app = app.with_live(hookrun_core::live::Hub::local());

    let boot = admin::bootstrap(&app, serve.bootstrap_admin_key.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
    println!("hookrun {} on {description}", env!("CARGO_PKG_VERSION"));
    println!("workspace: {}", boot.workspace.id);
    if let Some(key) = &boot.generated_key {
        println!("admin API key (shown once, keep it): {key}");
    } else if boot.fresh {
        println!("admin API key: the one in HOOKRUN_BOOTSTRAP_ADMIN_KEY");
    } else if let Some(key) = serve.bootstrap_admin_key.as_deref() {
        // The variable only seeds a store's first start: say so rather
        // than leave its key answering 401.
        if !admin::has_key(&app, key).await.unwrap_or(true) {
            eprintln!(
                "hookrun: HOOKRUN_BOOTSTRAP_ADMIN_KEY is not a key of this store: it is used \
                 only on a store's first start, and this store was started before. Use a key \
                 the store has, or make one with `hookrun workspace add-key --data-dir …`, \
                 and unset the variable."
            );
        }
    }
    if args.demo {
        print_demo(&app, &boot.workspace.id, local).await?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let drain = serve.drain;
    let worker = tokio::spawn(run_worker(
        app.clone(),
        Work::Runs,
        wake.clone(),
        stop_rx.clone(),
        drain,
    ));
    let deliverer = tokio::spawn(run_worker(
        app.clone(),
        Work::Deliveries,
        wake,
        stop_rx.clone(),
        drain,
    ));
    // Schedules fire from this process unless an outside scheduler sends
    // their fires.
    let scheduler = (!app.fires.is_external()).then(|| {
        tokio::spawn(hookrun_core::scheduler::run_scheduler(
            app.clone(),
            stop_rx.clone(),
        ))
    });
    let relay = relay.map(|r| tokio::spawn(r.run(stop_rx.clone())));
    let purger = sqlite.map(|store| tokio::spawn(purge_loop(store, stop_rx)));

    let hub = app.live.clone();
    let trusted_proxies = app.settings.trusted_proxies.clone();
    // The console's routes have no fallback of their own: anything else
    // is the API's (and its JSON 404).
    let router = crate::console::routes().merge(hookrun_core::http::router(app));
    println!("listening on http://{local}");
    let limits = crate::listener::Limits {
        max_connections: serve.max_connections,
        per_address: serve.max_connections_per_address,
        trusted_proxies,
        http2: serve.http2,
        header_read: serve.header_read_timeout,
        idle: serve.idle_timeout,
        body_read: serve.body_read_timeout,
    };
    let stopping = async move {
        shutdown_signal().await;
        // Live streams end now (clients resume elsewhere or later), so the
        // listener's drain does not wait on them.
        hub.close();
    };
    crate::listener::serve(listener, router, limits, stopping).await?;
    tracing::info!("stopping: no new runs are started");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(worker, deliverer);
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    if let Some(p) = purger {
        p.abort();
    }
    if let Some(r) = relay {
        let _ = r.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn purge_loop(store: SqliteStore, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PURGE_EVERY) => {}
            _ = stop.changed() => return,
        }
        match store.purge_expired().await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "expired items removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid value for HOOKRUN_LOG: {e}"))?;
    // Colours only for a person at a terminal: a file, a pipe or a log
    // collector gets plain text (and `NO_COLOR` turns them off anyway).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Creates (or reuses) the `demo` echo agent and prints a signed curl call.
async fn print_demo(
    app: &App,
    workspace_id: &WorkspaceId,
    local: SocketAddr,
) -> anyhow::Result<()> {
    let err = |e: hookrun_core::Error| anyhow::anyhow!("demo agent: {e}");
    let existing = agents::list(app, workspace_id, 100, None)
        .await
        .map_err(err)?
        .data;
    let agent = match existing
        .into_iter()
        .find(|a| a.name == "demo" && a.runner == RunnerConfig::Echo)
    {
        Some(a) => a,
        None => {
            let req = agents::CreateAgent {
                name: "demo".into(),
                runner: RunnerConfig::Echo,
                timeout_seconds: None,
                enabled: None,
                max_concurrent_runs: None,
                concurrency: None,
            };
            let (agent, secret) = agents::create(app, workspace_id, req).await.map_err(err)?;
            // Shown once, like any new agent's secret, so other bodies can
            // be signed for the demo agent too.
            println!("demo agent webhook secret (shown once): {secret}");
            agent
        }
    };
    let secret = agents::secret(app, &agent).await.map_err(err)?;
    let body = r#"{"event":"demo.ping","source":"curl","data":{"hello":"world"}}"#;
    let signature = hookrun_core::signature::sign_hex(&secret.current, body.as_bytes());
    println!("demo agent: {} (echo runner)", agent.id);
    println!("try it:");
    println!(
        "  curl -sS -X POST 'http://{local}/api/v1/webhooks/{workspace_id}/{}/trigger' \\\n    -H 'Content-Type: application/json' \\\n    -H 'X-Signature: {signature}' \\\n    -d '{body}'",
        agent.id
    );
    Ok(())
}
