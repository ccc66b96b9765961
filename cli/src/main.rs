//! `hookrun`: run the whole service on the embedded store (`hookrun serve`),
//! and small helpers for operators.

mod serve;

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "hookrun", version, about = "Webhook-to-agent trigger service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the trigger routes and the executor in one process on
    /// the embedded SQLite store.
    Serve(ServeArgs),
    /// Manage workspaces of the embedded store directly (works while
    /// `hookrun serve` runs on the same data directory).
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Print the X-Signature of a body: hex HMAC-SHA256 keyed by an agent's
    /// webhook secret.
    Sign {
        /// The agent's webhook secret.
        #[arg(long, env = "HOOKRUN_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The body to sign; read from standard input when absent.
        #[arg(long)]
        data: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace and print its id and first admin key (shown once).
    Create {
        #[arg(long, default_value = "workspace")]
        name: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Embedded SQLite store in --data-dir.
    Sqlite,
    /// DynamoDB, SQS and Secrets Manager, from the standard AWS environment
    /// (AWS_REGION, credentials, AWS_ENDPOINT_URL for an emulator) and
    /// HOOKRUN_TABLE_NAME / HOOKRUN_*_QUEUE_URL.
    Aws,
}

/// Which store to use; shared by every command that opens one.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    #[arg(long, env = "HOOKRUN_BACKEND", value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// Where the SQLite database lives (sqlite backend).
    #[arg(long, env = "HOOKRUN_DATA_DIR", default_value = "./hookrun-data")]
    pub data_dir: PathBuf,
    /// aws backend: create (if missing) a table named PREFIX and queues
    /// PREFIX-runs, PREFIX-deliveries and their DLQs, and use them. For
    /// local emulators and tests; deployed stacks get theirs from template.yaml.
    #[arg(long, env = "HOOKRUN_AWS_PROVISION", value_name = "PREFIX")]
    pub provision: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOOKRUN_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Log format on standard error.
    #[arg(long, env = "HOOKRUN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Also create an echo agent and print a ready-to-paste curl command.
    #[arg(long)]
    pub demo: bool,
    /// How long a stop waits for runs in progress before exiting.
    #[arg(long, env = "HOOKRUN_DRAIN_SECONDS", default_value_t = 30)]
    pub drain_seconds: u64,
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(f) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrun: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => block_on(serve::serve(args)),
        Command::Workspace {
            command: WorkspaceCommand::Create { name, backend },
        } => block_on(async move {
            let app = serve::open(&backend, hookrun_core::Settings::from_env()?)
                .await?
                .app;
            let (ws, key) = hookrun_core::services::admin::create_workspace(&app, &name)
                .await
                .map_err(|e| match e {
                    hookrun_core::ApiError::Unavailable(detail) => {
                        anyhow::anyhow!("store unavailable: {detail}")
                    }
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("workspace: {}", ws.id);
            println!("admin API key (shown once, keep it): {key}");
            Ok(())
        }),
        Command::Sign { secret, data } => {
            let body = match data {
                Some(d) => d.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    if let Err(e) = std::io::stdin().read_to_end(&mut buf) {
                        eprintln!("hookrun: cannot read standard input: {e}");
                        return std::process::ExitCode::from(2);
                    }
                    buf
                }
            };
            println!("{}", hookrun_core::signature::sign_hex(&secret, &body));
            std::process::ExitCode::SUCCESS
        }
    }
}
