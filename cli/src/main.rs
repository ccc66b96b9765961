//! `hookrun`: run the whole service (`hookrun serve`), small helpers for
//! operators, and a client of a running service's management API
//! (`agents`, `triggers`, … in `commands`). Flags override the
//! environment; the service's environment is read by `hookrun_core::config`
//! alone (each command's `--help` lists what it reads); the client's
//! connection variables (`HOOKRUN_URL`, `HOOKRUN_API_KEY`) are clap's, as
//! they configure the client, not the service.

mod client;
mod commands;
mod console;
mod fixtures;
mod listener;
mod output;
mod serve;

use std::io::Read;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use hookrun_core::config::{self, vars, ServeSettings};

use crate::client::{Connection, EXIT_CODES_HELP};
use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "hookrun",
    version,
    about = "Webhook-to-agent trigger service",
    after_help = EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    conn: Connection,
    /// Deprecated spelling of --server, accepted before the subcommand
    /// only, and refused where the subcommand has a --url of its own.
    #[arg(long = "url", hide = true, value_name = "URL")]
    deprecated_url: Option<String>,
    /// Print the API's JSON answers as they are, for scripts (client
    /// commands and verify).
    #[arg(long, global = true)]
    json: bool,
}

static SERVE_ENV: LazyLock<String> = LazyLock::new(|| vars::help_text(&["serve", "all", "aws"]));
static STORE_ENV: LazyLock<String> = LazyLock::new(|| vars::help_text(&["serve", "aws"]));
static SIGN_ENV: LazyLock<String> = LazyLock::new(|| vars::help_text(&["cli"]));

// Parsed once per process: the size of its largest variant (the client
// commands' options) costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the API, the trigger routes, the executor and the delivery worker
    /// in one process, on the embedded SQLite store (default) or on AWS
    /// (--backend aws).
    #[command(after_long_help = SERVE_ENV.as_str())]
    Serve(ServeArgs),
    /// Manage workspaces directly in the store (works while `hookrun serve`
    /// runs on the same data directory).
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Print the X-Signature of a body: hex HMAC-SHA256 keyed by an agent's
    /// webhook secret.
    #[command(after_long_help = SIGN_ENV.as_str())]
    Sign {
        /// The agent's webhook secret (default: HOOKRUN_WEBHOOK_SECRET).
        #[arg(long, hide_env_values = true)]
        secret: Option<String>,
        /// The body to sign; read from standard input when absent.
        #[arg(long)]
        data: Option<String>,
    },
    #[command(flatten)]
    Remote(commands::Remote),
    /// Check the signatures of an outgoing webhook (a delivery) saved as a
    /// raw HTTP request; exit 0 only if one is valid and fresh.
    Verify(commands::verify::Args),
    /// The web console's files, for a static host (`hookrun serve` serves
    /// them itself at `/`).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Print a shell completion script, e.g.
    /// `hookrun completions bash > /etc/bash_completion.d/hookrun`.
    Completions(commands::completions::Args),
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Write the console into a folder: `index.html`, `config.json` (where
    /// it finds the API and the WebSocket channel) and `assets/{version}/`;
    /// upload it to the stack's console bucket (README, "The web console").
    Export {
        /// The folder to write (made if missing).
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
        /// The API's base URL (the stack's `ApiUrl` output); default: the
        /// page's own origin.
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// The WebSocket channel's URL (the stack's `WebSocketUrl`
        /// output); default: `/api/v1/ws` on the page's own origin.
        #[arg(long, value_name = "URL")]
        ws_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace and print its id and first admin key (shown once).
    #[command(after_long_help = STORE_ENV.as_str())]
    Create {
        #[arg(long, default_value = "workspace")]
        name: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Add an admin key to a workspace and print it (shown once): for a
    /// lost key. Needs access to the store (the data directory, or AWS
    /// credentials that may write the table), not a key.
    #[command(after_long_help = STORE_ENV.as_str())]
    AddKey {
        /// The workspace (default: the one the store's first start made,
        /// as `hookrun serve` prints it).
        #[arg(long, value_name = "WORKSPACE_ID")]
        workspace: Option<String>,
        /// What the key is for.
        #[arg(long, default_value = "added with workspace add-key")]
        name: String,
        /// admin (default) or viewer (read only).
        #[arg(long, value_parser = commands::keys::role_arg(), default_value = "admin")]
        role: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

/// A store command's failure to reach its store (exit 3, as a client
/// command that cannot reach the service): retrying later may help.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
struct StoreUnavailable(String);

/// A store command's error: unavailable stores apart, so they exit 3.
fn store_error(e: hookrun_core::Error) -> anyhow::Error {
    match e {
        hookrun_core::Error::Store(hookrun_core::error::StoreError::Backend(detail))
        | hookrun_core::Error::Unavailable(detail) => StoreUnavailable(detail).into(),
        other => anyhow::anyhow!("{other}"),
    }
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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which store to use; shared by every command that opens one. Each flag
/// overrides its environment variable (HOOKRUN_BACKEND, HOOKRUN_DATA_DIR,
/// HOOKRUN_AWS_PROVISION).
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Where the SQLite database lives (sqlite backend; default ./hookrun-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// aws backend: create (if missing) a table named PREFIX and queues
    /// PREFIX-runs, PREFIX-deliveries and their DLQs, and use them. For
    /// local emulators and tests; deployed stacks get theirs from template.yaml.
    #[arg(long, value_name = "PREFIX")]
    pub provision: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub addr: Option<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Log format on standard error (default text).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Also create an echo agent and print a ready-to-paste curl command;
    /// calls from this machine (loopback) are not rate limited per
    /// address.
    #[arg(long)]
    pub demo: bool,
    /// Let agents and subscribers on this machine be reached: plain
    /// http:// and loopback addresses (127.0.0.0/8, ::1), as
    /// HOOKRUN_OUTBOUND_ALLOW_HTTP=true with those ranges in
    /// HOOKRUN_OUTBOUND_ALLOW_CIDRS would. For local development.
    #[arg(long)]
    pub allow_local_agents: bool,
    /// How long a stop waits for runs in progress before exiting (default 30).
    #[arg(long)]
    pub drain_seconds: Option<u64>,
}

impl BackendArgs {
    /// The environment's settings with these flags applied.
    pub fn apply(&self, s: &mut ServeSettings) {
        if let Some(b) = self.backend {
            s.backend = match b {
                Backend::Sqlite => config::Backend::Sqlite,
                Backend::Aws => config::Backend::Aws,
            };
        }
        if let Some(d) = &self.data_dir {
            s.data_dir = d.clone();
        }
        if let Some(p) = &self.provision {
            s.provision = Some(p.clone());
        }
    }
}

impl ServeArgs {
    /// The environment's settings with these flags applied; a flag's value
    /// is held to the same bounds as its variable.
    pub fn settings(&self) -> anyhow::Result<ServeSettings> {
        let mut s = ServeSettings::from_env()?;
        self.backend.apply(&mut s);
        if let Some(a) = &self.addr {
            s.addr = a.clone();
        }
        if let Some(f) = self.log_format {
            s.log_format = match f {
                LogFormat::Text => config::LogFormat::Text,
                LogFormat::Json => config::LogFormat::Json,
            };
        }
        if let Some(d) = self.drain_seconds {
            let d = vars::DRAIN_SECONDS
                .check(d)
                .map_err(|e| anyhow::anyhow!("--drain-seconds: {}", e.reason))?;
            s.drain = std::time::Duration::from_secs(d);
        }
        Ok(s)
    }
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
            let unavailable = e.downcast_ref::<StoreUnavailable>().is_some();
            std::process::ExitCode::from(if unavailable {
                client::exit::UNAVAILABLE
            } else {
                client::exit::USAGE
            })
        }
    }
}

/// A client command's outcome as an exit code; errors go to standard
/// error as the API's `code` and `message` (`client::CliError`).
fn finish(result: client::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::from(client::exit::OK),
        Err(e) => {
            eprintln!("hookrun: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// The command line, its `--api-key` help saying whether the key is
/// already in the environment (so the flag does not read as required
/// when it is not).
fn command_line() -> clap::Command {
    let key_set = std::env::var_os("HOOKRUN_API_KEY").is_some_and(|v| !v.is_empty());
    Cli::command().mut_arg("api_key", |a| {
        if key_set {
            a.help("Admin API key of the workspace (client commands); HOOKRUN_API_KEY is set and used, this flag would override it. Sent as `Authorization: Bearer`, never printed")
        } else {
            a.help("Admin API key of the workspace: client commands need it here or in HOOKRUN_API_KEY. Sent as `Authorization: Bearer`, never printed")
        }
    })
}

fn main() -> std::process::ExitCode {
    let mut cli = match Cli::from_arg_matches(&command_line().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let out = Output { json: cli.json };
    if let Some(url) = cli.deprecated_url.take() {
        if matches!(&cli.command, Command::Remote(cmd) if cmd.takes_url()) {
            return finish(Err(client::CliError::usage(
                "--url before the subcommand is the old spelling of --server, and this \
                 command's --url is the resource's own: give the service's address as \
                 --server (or HOOKRUN_URL) and the resource's URL after the subcommand",
            )));
        }
        eprintln!("hookrun: warning: --url for the service's address is deprecated; use --server (or HOOKRUN_URL)");
        cli.conn.server = url;
    }
    match cli.command {
        Command::Remote(cmd) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    return finish(Err(client::CliError::usage(format!("cannot start: {e}"))))
                }
            };
            finish(runtime.block_on(commands::run(cmd, &cli.conn, out)))
        }
        Command::Verify(args) => finish(commands::verify::run(args, out)),
        Command::Completions(args) => {
            commands::completions::print(args, Cli::command());
            std::process::ExitCode::SUCCESS
        }
        Command::Serve(args) => block_on(serve::serve(args)),
        Command::Console {
            command:
                ConsoleCommand::Export {
                    out,
                    api_url,
                    ws_url,
                },
        } => {
            let config = console::Config { api_url, ws_url };
            match console::export(&out, &config) {
                Ok(files) => {
                    println!(
                        "wrote {} files of console version {} to {}",
                        files.len(),
                        console::version(),
                        out.display()
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => finish(Err(client::CliError::usage(format!(
                    "cannot write {}: {e}",
                    out.display()
                )))),
            }
        }
        Command::Workspace {
            command: WorkspaceCommand::Create { name, backend },
        } => block_on(async move {
            let mut store = ServeSettings::from_env()?;
            backend.apply(&mut store);
            let app = serve::open(&store, hookrun_core::Settings::from_env()?)
                .await?
                .app;
            let (ws, key) = hookrun_core::services::admin::create_workspace(&app, &name)
                .await
                .map_err(store_error)?;
            println!("workspace: {}", ws.id);
            println!("admin API key (shown once, keep it): {key}");
            Ok(())
        }),
        Command::Workspace {
            command:
                WorkspaceCommand::AddKey {
                    workspace,
                    name,
                    role,
                    backend,
                },
        } => block_on(async move {
            use hookrun_core::services::admin;
            let workspace = match workspace {
                Some(id) => {
                    Some(hookrun_core::ids::WorkspaceId::parse(&id).ok_or_else(|| {
                        anyhow::anyhow!("--workspace {id:?} is not a workspace id")
                    })?)
                }
                None => None,
            };
            let mut store = ServeSettings::from_env()?;
            backend.apply(&mut store);
            if store.backend == config::Backend::Sqlite && !serve::has_store(&store.data_dir) {
                // A mistyped --data-dir would otherwise get a new, empty
                // store (and a master key) of its own.
                anyhow::bail!(
                    "no hookrun store in {} (give the --data-dir `hookrun serve` uses)",
                    store.data_dir.display()
                );
            }
            let app = serve::open(&store, hookrun_core::Settings::from_env()?)
                .await?
                .app;
            let workspace = match workspace {
                Some(ws) => ws,
                None => admin::default_workspace(&app)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "this store has no default workspace (it was not started by `hookrun serve`): give --workspace"
                        )
                    })?,
            };
            let role = hookrun_core::model::Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role {role:?} is not a role"))?;
            let req = admin::CreateAdminKey { name, role };
            let (view, key) = admin::recover_key(&app, &workspace, req)
                .await
                .map_err(store_error)?;
            println!("workspace: {workspace}");
            println!("key id: {} ({})", view.id, view.role.as_str());
            println!("admin API key (shown once, keep it): {key}");
            Ok(())
        }),
        Command::Sign { secret, data } => {
            let Some(secret) = secret.or_else(config::webhook_secret_from_env) else {
                eprintln!("hookrun: give --secret or set HOOKRUN_WEBHOOK_SECRET");
                return std::process::ExitCode::from(2);
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own checks of the command tree.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// No subcommand has a flag of its own named like a global one, by
    /// flag or by id (a field's name): clap would hand the value to one of
    /// them silently (the service's address is `--server`, so a
    /// subscription's `--url` is the subscription's).
    #[test]
    fn no_flag_shadows_a_global_one() {
        fn walk(cmd: &clap::Command, globals: &[String], path: &str) {
            for arg in cmd.get_arguments().filter(|a| !a.is_global_set()) {
                let id = arg.get_id().as_str().to_owned();
                let long = arg.get_long().unwrap_or_default().to_owned();
                assert!(
                    !globals.contains(&id) && !globals.contains(&long),
                    "{path} --{long} ({id}) shadows a global flag"
                );
            }
            for sub in cmd.get_subcommands() {
                walk(sub, globals, &format!("{path} {}", sub.get_name()));
            }
        }
        let cmd = Cli::command();
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .flat_map(|a| {
                [a.get_id().as_str().to_owned()]
                    .into_iter()
                    .chain(a.get_long().map(str::to_owned))
            })
            .collect();
        assert!(globals.contains(&"server".to_owned()), "{globals:?}");
        for sub in cmd.get_subcommands() {
            walk(sub, &globals, sub.get_name());
        }
    }
}
