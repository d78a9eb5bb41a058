//! `alliance-simulation`: the simulation service on its own. It reads every partition of the
//! Kafka topic (`read_committed`) into read models of its own, runs simulations on them, and
//! records each completed run through the command service (`--commands`) with the caller's
//! credentials. It writes nothing to the log itself, so any number of replicas may run.

use std::net::SocketAddr;
use std::path::PathBuf;

use alliance_eventlog_kafka::{KafkaLogConfig, TopicReader};
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_simulation::Recorder;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Monte Carlo simulation of the alliance plans on a Kafka topic, served over gRPC"
)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, env = "ALLIANCE_SIMULATION_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: String,
    /// Kafka topic.
    #[arg(
        long,
        env = "ALLIANCE_SIMULATION_KAFKA_TOPIC",
        default_value = "alliance.events"
    )]
    kafka_topic: String,
    /// Client settings passed to librdkafka as they are, KEY=VALUE (security.protocol, sasl.*,
    /// ssl.*); repeatable, or comma-separated in the environment.
    #[arg(long, env = "ALLIANCE_SIMULATION_KAFKA_CLIENT", value_delimiter = ',')]
    kafka_client: Vec<String>,
    /// A file of client settings, KEY=VALUE lines (for secrets such as `sasl.password`);
    /// --kafka-client settings override it.
    #[arg(long, env = "ALLIANCE_SIMULATION_KAFKA_CLIENT_FILE")]
    kafka_client_file: Option<PathBuf>,
    /// The command service that records completed runs (any instance; it forwards).
    #[arg(
        long,
        env = "ALLIANCE_SIMULATION_COMMANDS",
        default_value = "http://127.0.0.1:50051"
    )]
    commands: String,
    /// Listen address; port 0 picks a free port.
    #[arg(
        long,
        env = "ALLIANCE_SIMULATION_LISTEN",
        default_value = "127.0.0.1:50071"
    )]
    listen: SocketAddr,
    /// Directory of this replica's read-model snapshot, kept runs and security log.
    #[arg(
        long,
        env = "ALLIANCE_SIMULATION_DATA_DIR",
        default_value = "data/simulation"
    )]
    data_dir: PathBuf,
    /// Bearer tokens and their teams (development default).
    #[arg(
        long,
        env = "ALLIANCE_SIMULATION_TOKEN_FILE",
        default_value = "deploy/dev-tokens.toml"
    )]
    token_file: PathBuf,
    #[command(flatten)]
    security: alliance_server::serve::SecurityArgs,
    /// Simulation model data [default: the shipped deploy/simulation-model.toml].
    #[arg(long, env = "ALLIANCE_SIMULATION_MODEL")]
    model: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = alliance_telemetry::init("alliance-simulation")?;
    let args = Args::parse();
    let model = alliance_simulation::load_model(&args.model.clone().unwrap_or_default())?;
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
    let commands = alliance_server::calls::endpoint(&args.commands, replica.peer.as_ref())
        .map_err(|status| anyhow::anyhow!("--commands: {}", status.message()))?
        .connect_lazy();
    let (routes, health) = alliance_server::serve::base_routes()?;
    let model_version = model.data.version.clone();
    let (routes, _) = alliance_simulation::add_routes(
        routes,
        &health,
        replica.projection.clone(),
        replica.auth,
        model,
        &args.data_dir,
        Recorder::Remote(PlanCommandsClient::new(commands)),
    )
    .await?;
    println!(
        "alliance-simulation: alliance.v1.Simulation, grpc.health.v1 and reflection listening on {} (Kafka topic {} at {}, {} plans read, model data {}, runs recorded through {})",
        replica.listener.local_addr()?,
        args.kafka_topic,
        args.kafka_bootstrap,
        replica.projection.plan_ids().len(),
        model_version,
        args.commands
    );
    alliance_projection::serve_until_stopped(
        "alliance-simulation",
        replica.listener,
        routes,
        &replica.projection,
        &replica.snapshot,
        replica.guard,
    )
    .await?;
    Ok(())
}
