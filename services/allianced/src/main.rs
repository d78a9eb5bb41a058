//! `allianced`: every service of the planning backend in one process, on the embedded event log
//! (one SQLite file in the data directory, no broker). On first start it loads the reference plan.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{Authenticator, CommandService, PlanCommandsApi, TokenFile};
use alliance_eventlog::{SqliteLog, SqliteLogConfig};
use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// mimalloc: the command path allocates many small, short-lived buffers (requests, envelopes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Settings, from an optional TOML file; each flag or environment variable overrides the file.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Address the gRPC server listens on.
    listen: SocketAddr,
    /// Directory of the embedded event log (`alliance.db`).
    data_dir: PathBuf,
    /// Bearer tokens and their teams (development default).
    token_file: PathBuf,
    /// Reference plan loaded at start if not yet in the log; empty to skip.
    reference_plan: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("data"),
            token_file: PathBuf::from("deploy/dev-tokens.toml"),
            reference_plan: PathBuf::from("deploy/reference-plan.json"),
        }
    }
}

#[derive(Debug, Parser)]
#[command(version, about = "Alliance planning backend on the embedded event log")]
struct Args {
    /// TOML configuration file (e.g. deploy/allianced.toml).
    #[arg(long, env = "ALLIANCED_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:50051]; port 0 picks a free port.
    #[arg(long, env = "ALLIANCED_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory [default: data].
    #[arg(long, env = "ALLIANCED_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Token file [default: deploy/dev-tokens.toml].
    #[arg(long, env = "ALLIANCED_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Reference plan file [default: deploy/reference-plan.json].
    #[arg(long, env = "ALLIANCED_REFERENCE_PLAN")]
    reference_plan: Option<PathBuf>,
    /// Start without loading the reference plan.
    #[arg(long, env = "ALLIANCED_SKIP_REFERENCE_PLAN")]
    skip_reference_plan: bool,
}

fn config(args: Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.token_file {
        config.token_file = v;
    }
    if let Some(v) = args.reference_plan {
        config.reference_plan = v;
    }
    if args.skip_reference_plan {
        config.reference_plan = PathBuf::new();
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = config(Args::parse())?;

    let auth = Authenticator::from_token_file(&TokenFile::load(&config.token_file)?)?;
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "the static development token file is in use on a non-loopback address: anyone holding a development token can edit plans"
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let db = config.data_dir.join("alliance.db");
    let log = SqliteLog::open(SqliteLogConfig::new(&db))
        .with_context(|| format!("cannot open event log {}", db.display()))?;
    let service = Arc::new(CommandService::open(log).await?);

    load_reference(&service, &auth, &config.reference_plan).await?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "allianced: alliance.v1.PlanCommands, grpc.health.v1 and reflection listening on {addr} (embedded log {})",
        db.display()
    );
    let api = PlanCommandsApi::new(service, Arc::new(auth));
    // Served from a task so connections run on the runtime's workers, not on the main thread.
    tokio::spawn(alliance_commands::server::serve(
        listener,
        api,
        shutdown_signal(),
    ))
    .await??;
    println!("allianced: stopped");
    Ok(())
}

async fn load_reference(
    service: &CommandService<SqliteLog>,
    auth: &Authenticator,
    path: &Path,
) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let plan = ReferencePlan::read(path)?;
    let report = reference::load(service, auth, &plan).await?;
    println!(
        "allianced: reference plan {} \"{}\" ({} entries loaded now, {} already present)",
        plan.plan_id, plan.name, report.applied, report.already_present
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
