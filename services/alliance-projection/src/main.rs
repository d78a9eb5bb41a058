//! `alliance-projection`: the projection service on its own. It reads every partition of the
//! Kafka topic (`read_committed`) into the read models and serves `alliance.v1.PostureQueries`
//! and `alliance.v1.ReadModelAdmin`. It writes nothing to the log and joins no writers' group,
//! so any number of replicas may run; each answers every query, and read-your-writes holds on
//! each through `min_version`.

use std::net::SocketAddr;
use std::path::PathBuf;

use alliance_eventlog_kafka::{KafkaLogConfig, TopicReader};
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
    /// A file of client settings, KEY=VALUE lines (for secrets such as `sasl.password`);
    /// --kafka-client settings override it.
    #[arg(long, env = "ALLIANCE_PROJECTION_KAFKA_CLIENT_FILE")]
    kafka_client_file: Option<PathBuf>,
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
    #[command(flatten)]
    security: alliance_server::serve::SecurityArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = alliance_telemetry::init("alliance-projection")?;
    let args = Args::parse();
    let config = KafkaLogConfig::reader(
        &args.kafka_bootstrap,
        &args.kafka_topic,
        &args.kafka_client,
        args.kafka_client_file.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let reader = TopicReader::new(config);
    let replica = alliance_projection::start_replica(
        &reader,
        args.listen,
        &args.data_dir,
        &args.token_file,
        &args.security,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let (routes, health) = alliance_server::serve::base_routes()?;
    // Without an identity configuration (development) no writer's key is known here: the chain
    // is checked and signatures are not judged (allianced, which has its own key, judges them).
    let trusted = replica.signing_keys.map(std::sync::Arc::new);
    if trusted.is_none() {
        tracing::warn!(
            "no identity configuration: VerifyPlan checks each plan's hash chain but judges no \
             signature (list the writers' keys as [[signing_key]] to have them judged)"
        );
    }
    let routes = alliance_projection::add_routes(
        routes,
        &health,
        replica.projection.clone(),
        reader,
        replica.auth,
        Some(replica.security),
        alliance_projection::AuditKeys {
            trusted,
            signer: None,
            witnesses: replica.witness_keys.map(std::sync::Arc::new),
        },
    )
    .await;
    println!(
        "alliance-projection: alliance.v1.PostureQueries, alliance.v1.ReadModelAdmin, alliance.v1.AuditLog, grpc.health.v1 and reflection listening on {} (Kafka topic {} at {}, {} plans read)",
        replica.listener.local_addr()?,
        args.kafka_topic,
        args.kafka_bootstrap,
        replica.projection.plan_ids().len()
    );
    alliance_projection::serve_until_stopped(
        "alliance-projection",
        replica.listener,
        routes,
        &replica.projection,
        &replica.snapshot,
        replica.guard,
    )
    .await?;
    Ok(())
}
