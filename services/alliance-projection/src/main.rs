//! `alliance-projection`: the projection service on its own. It reads every partition of the
//! Kafka topic (`read_committed`) into the read models and serves `alliance.v1.PostureQueries`
//! and `alliance.v1.ReadModelAdmin`. It writes nothing to the log and joins no writers' group,
//! so any number of replicas may run; each answers every query, and read-your-writes holds on
//! each through `min_version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alliance_commands::security::{DenialLayer, SecurityLog};
use alliance_commands::{Authenticator, TokenFile};
use alliance_eventlog_kafka::{KafkaLogConfig, TopicReader};
use anyhow::Context;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Read models of the alliance plans on a Kafka topic, served over gRPC"
)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "ALLIANCE_PROJECTION_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: String,
    /// Kafka topic.
    #[arg(
        long,
        env = "ALLIANCE_PROJECTION_KAFKA_TOPIC",
        default_value = "alliance.events"
    )]
    kafka_topic: String,
    /// Client settings passed to librdkafka as they are, KEY=VALUE (security.protocol, sasl.*,
    /// ssl.*); repeatable, or comma-separated in the environment.
    #[arg(long, env = "ALLIANCE_PROJECTION_KAFKA_CLIENT", value_delimiter = ',')]
    kafka_client: Vec<String>,
    /// Listen address; port 0 picks a free port.
    #[arg(
        long,
        env = "ALLIANCE_PROJECTION_LISTEN",
        default_value = "127.0.0.1:50061"
    )]
    listen: SocketAddr,
    /// Directory of this replica's read-model snapshot.
    #[arg(
        long,
        env = "ALLIANCE_PROJECTION_DATA_DIR",
        default_value = "data/projection"
    )]
    data_dir: PathBuf,
    /// Bearer tokens and their teams (development default).
    #[arg(
        long,
        env = "ALLIANCE_PROJECTION_TOKEN_FILE",
        default_value = "deploy/dev-tokens.toml"
    )]
    token_file: PathBuf,
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
    let args = Args::parse();
    let auth = Arc::new(Authenticator::from_token_file(&TokenFile::load(
        &args.token_file,
    )?)?);
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "the static development token file is in use on a non-loopback address"
        );
    }
    let config =
        KafkaLogConfig::reader(&args.kafka_bootstrap, &args.kafka_topic, &args.kafka_client)
            .map_err(anyhow::Error::msg)?;
    let reader = TopicReader::new(config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;

    let snapshot = args.data_dir.join("read-model.snapshot");
    // Until the broker answers and the topic exists (the command service creates it).
    let projection =
        alliance_commands::server::retry_until_stopped("cannot read the topic yet", || {
            alliance_projection::open(&reader, &snapshot)
        })
        .await
        .map_err(anyhow::Error::msg)?;
    tokio::spawn(projection.clone().follow(reader.clone()));
    let (routes, health) = alliance_commands::server::base_routes()?;
    // Refused requests go to a security log of their own.
    let security_path = args.data_dir.join("security.db");
    let security = SecurityLog::open(&security_path)
        .with_context(|| format!("cannot open the security log {}", security_path.display()))?;
    let denials = DenialLayer::new(security.clone(), auth.clone());
    let routes = alliance_projection::add_routes(
        routes,
        &health,
        projection.clone(),
        reader,
        auth,
        Some(security),
    )
    .await;
    println!(
        "alliance-projection: alliance.v1.PostureQueries, alliance.v1.ReadModelAdmin, alliance.v1.AuditLog, grpc.health.v1 and reflection listening on {} (Kafka topic {} at {}, {} plans read)",
        listener.local_addr()?,
        args.kafka_topic,
        args.kafka_bootstrap,
        projection.plan_ids().len()
    );
    alliance_projection::serve_until_stopped(
        "alliance-projection",
        listener,
        routes,
        &projection,
        &snapshot,
        denials,
    )
    .await?;
    Ok(())
}
