//! `allianced`: the planning backend in one process. By default on the embedded event log (one
//! SQLite file in the data directory, no broker); with `--kafka-bootstrap` on an Apache Kafka
//! topic. On first start it loads the reference plan.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_eventlog::{EventLog, LogReader, SqliteLog, SqliteLogConfig};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader};
use alliance_server::Authenticator;
use alliance_server::security::{DenialLayer, SecurityLog};
use alliance_simulation::Recorder;
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
    /// Address the other instances reach this one at [default: the bound listen address].
    advertise: Option<String>,
    /// Directory of the embedded event log (`alliance.db`).
    data_dir: PathBuf,
    /// Bearer tokens and their teams (development default).
    token_file: PathBuf,
    /// The Ed25519 private key (PKCS#8 PEM) this instance signs each record with [default:
    /// `{data_dir}/signing-key.pem`, made on first start].
    signing_key: Option<PathBuf>,
    /// Reference plan loaded at start if not yet in the log; empty to skip.
    reference_plan: PathBuf,
    /// Simulation model data (TOML); empty: the shipped `deploy/simulation-model.toml`.
    simulation_model: PathBuf,
    /// The log on Apache Kafka instead of the embedded file, when set.
    kafka: Option<KafkaSettings>,
}

/// The `[kafka]` section. Its `Debug` hides the values of secret client settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSettings {
    bootstrap: String,
    #[serde(default = "default_topic")]
    topic: String,
    /// Partitions of the topic when it is created.
    #[serde(default = "default_partitions")]
    partitions: u32,
    /// Partitions this instance writes, fixed [default: divided among the running instances,
    /// moving when instances come and go].
    #[serde(default)]
    owned_partitions: Option<Vec<i32>>,
    /// With fixed partitions: the gRPC address of each other partition's writer (partition
    /// number as a string key).
    #[serde(default)]
    owners: std::collections::BTreeMap<String, String>,
    /// How long an instance that stopped answering keeps its partitions, in milliseconds.
    #[serde(default = "default_session_timeout_ms")]
    session_timeout_ms: u64,
    /// Prefix of the per-partition `transactional.id`s [default: `alliance-commands.{topic}`].
    #[serde(default)]
    transactional_prefix: Option<String>,
    /// Client settings passed to librdkafka as they are (security.protocol, sasl.*, ssl.*).
    #[serde(default)]
    client: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("bootstrap", &self.bootstrap)
            .field("topic", &self.topic)
            .field("client", &alliance_eventlog_kafka::redacted(&self.client))
            .finish_non_exhaustive()
    }
}

fn default_topic() -> String {
    "alliance.events".into()
}

fn default_partitions() -> u32 {
    8
}

fn default_session_timeout_ms() -> u64 {
    10_000
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            advertise: None,
            data_dir: PathBuf::from("data"),
            token_file: PathBuf::from("deploy/dev-tokens.toml"),
            signing_key: None,
            reference_plan: PathBuf::from("deploy/reference-plan.json"),
            simulation_model: PathBuf::new(),
            kafka: None,
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
    /// Address other instances reach this one at [default: the bound listen address].
    #[arg(long, env = "ALLIANCED_ADVERTISE")]
    advertise: Option<String>,
    /// Data directory [default: data].
    #[arg(long, env = "ALLIANCED_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Development token file [default: deploy/dev-tokens.toml]; not used with --auth-config.
    #[arg(long, env = "ALLIANCED_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    security: alliance_server::serve::SecurityArgs,
    /// The Ed25519 private key (PKCS#8 PEM) this instance signs each record with [default:
    /// {data_dir}/signing-key.pem, made on first start, readable by its owner only].
    #[arg(long, env = "ALLIANCED_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// Reference plan file [default: deploy/reference-plan.json].
    #[arg(long, env = "ALLIANCED_REFERENCE_PLAN")]
    reference_plan: Option<PathBuf>,
    /// Simulation model data [default: the shipped deploy/simulation-model.toml].
    #[arg(long, env = "ALLIANCED_SIMULATION_MODEL")]
    simulation_model: Option<PathBuf>,
    /// Start without loading the reference plan.
    #[arg(long, env = "ALLIANCED_SKIP_REFERENCE_PLAN")]
    skip_reference_plan: bool,
    /// Use Apache Kafka at these bootstrap servers as the log (instead of the embedded file).
    #[arg(long, env = "ALLIANCED_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: Option<String>,
    /// Kafka topic [default: alliance.events].
    #[arg(long, env = "ALLIANCED_KAFKA_TOPIC")]
    kafka_topic: Option<String>,
    /// Partitions of the topic when this instance creates it [default: 8].
    #[arg(long, env = "ALLIANCED_KAFKA_PARTITIONS")]
    kafka_partitions: Option<u32>,
    /// Partitions this instance writes, fixed, e.g. 0,1,2 [default: divided among the running
    /// instances].
    #[arg(long, env = "ALLIANCED_KAFKA_OWNED_PARTITIONS", value_delimiter = ',')]
    kafka_owned_partitions: Option<Vec<i32>>,
    /// With fixed partitions: where another partition's writer listens, as
    /// PARTITION=HOST:PORT (repeatable, or comma-separated in the environment).
    #[arg(long, env = "ALLIANCED_KAFKA_OWNERS", value_delimiter = ',')]
    kafka_owner: Vec<String>,
    /// How long an instance that stopped answering keeps its partitions, in ms [default: 10000].
    #[arg(long, env = "ALLIANCED_KAFKA_SESSION_TIMEOUT_MS")]
    kafka_session_timeout_ms: Option<u64>,
    /// Client settings passed to librdkafka as they are, KEY=VALUE (security.protocol, sasl.*,
    /// ssl.*), over those of `[kafka.client]`; repeatable, or comma-separated in the environment.
    #[arg(long, env = "ALLIANCED_KAFKA_CLIENT", value_delimiter = ',')]
    kafka_client: Vec<String>,
    /// An operation on the data directory instead of serving.
    #[command(subcommand)]
    operation: Option<Operation>,
}

/// What an operator runs on the machine holding the data directory (the same configuration
/// names it), while `allianced` serves it or not.
#[derive(Debug, clap::Subcommand)]
enum Operation {
    /// Backs up the data directory (the embedded log and the other databases, through SQLite's
    /// online backup API, and the read models' snapshot) into a new directory, while commands
    /// keep landing; the copy's chains are verified and its heads checked against the log.
    Backup {
        /// The backup directory: new, or empty.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restores a backup into the data directory, which must be empty or absent, and verifies
    /// every plan's chain and head, and the events counted, against the backup's manifest.
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
    },
    /// Copies the history between the data directory's embedded log and the configured Kafka
    /// topic, record for record; run again after an interruption, it resumes. Refuses a target
    /// holding other data; ends with every plan's chain verified on the target and its head the
    /// source's. Neither the embedded log nor the target topic may be served meanwhile (a topic
    /// read from may be).
    Migrate {
        #[arg(value_enum)]
        direction: Direction,
        /// Only this plan (repeatable) [default: every plan].
        #[arg(long = "plan")]
        plans: Vec<uuid::Uuid>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Direction {
    /// The embedded log into the topic.
    ToKafka,
    /// The topic into the embedded log (an offline copy of the topic).
    FromKafka,
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
    if let Some(v) = args.advertise {
        config.advertise = Some(v);
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.token_file {
        config.token_file = v;
    }
    if let Some(v) = args.signing_key {
        config.signing_key = Some(v);
    }
    if let Some(v) = args.reference_plan {
        config.reference_plan = v;
    }
    if let Some(v) = args.simulation_model {
        config.simulation_model = v;
    }
    if args.skip_reference_plan {
        config.reference_plan = PathBuf::new();
    }
    if let Some(bootstrap) = args.kafka_bootstrap {
        let kafka = config.kafka.get_or_insert_with(|| KafkaSettings {
            bootstrap: String::new(),
            topic: default_topic(),
            partitions: default_partitions(),
            owned_partitions: None,
            owners: Default::default(),
            session_timeout_ms: default_session_timeout_ms(),
            transactional_prefix: None,
            client: Default::default(),
        });
        kafka.bootstrap = bootstrap;
    }
    if let Some(kafka) = config.kafka.as_mut() {
        if let Some(topic) = args.kafka_topic {
            kafka.topic = topic;
        }
        if let Some(partitions) = args.kafka_partitions {
            kafka.partitions = partitions;
        }
        if let Some(timeout) = args.kafka_session_timeout_ms {
            kafka.session_timeout_ms = timeout;
        }
        if let Some(owned) = args.kafka_owned_partitions {
            kafka.owned_partitions = Some(owned);
        }
        for setting in args.kafka_client {
            // Never the setting itself in the message: it may be (part of) a password.
            let (key, value) = setting.split_once('=').context(
                "a --kafka-client setting (ALLIANCED_KAFKA_CLIENT) is not KEY=VALUE; a value \
                 with a comma goes in [kafka.client]",
            )?;
            kafka.client.insert(key.to_owned(), value.to_owned());
        }
        for owner in args.kafka_owner {
            let (partition, address) = owner
                .split_once('=')
                .with_context(|| format!("--kafka-owner {owner:?} is not PARTITION=HOST:PORT"))?;
            kafka
                .owners
                .insert(partition.to_owned(), address.to_owned());
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = alliance_telemetry::init("allianced")?;
    let mut args = Args::parse();
    if let Some(operation) = args.operation.take() {
        return operate(&config(args)?, operation).await;
    }
    let security_args = args.security.clone();
    let config = config(args)?;
    let security =
        alliance_server::serve::secure(&security_args, &config.token_file, config.listen)
            .await
            .map_err(anyhow::Error::msg)?;
    // Bound first: the Kafka log publishes the address to the other instances.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = config
        .advertise
        .clone()
        .unwrap_or(listener.local_addr()?.to_string());
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    // Commands are forwarded only to instances that prove they are servers of this deployment.
    let proven_peers =
        alliance_server::calls::proven_peers(&security_args).map_err(anyhow::Error::msg)?;
    if let Some(tls) = &proven_peers
        && !tls
            .as_ref()
            .is_some_and(alliance_commands::PeerTls::presents_certificate)
        && config.kafka.is_some()
    {
        tracing::warn!(
            "no peer TLS with a certificate of this instance (--peer-ca, --peer-cert, --peer-key): \
             requests for plans another instance writes are answered UNAVAILABLE instead of forwarded"
        );
    }
    let server = Server {
        config: &config,
        security,
        listener,
        address: &address,
        proven_peers,
    };
    match config.kafka.as_ref() {
        Some(kafka) => {
            let log_config = kafka_config(kafka, &address)?;
            let log = open_kafka(&log_config).await?;
            report_ownership(&log);
            let what = format!(
                "Kafka log {} at {}, writing partitions {:?}",
                kafka.topic,
                kafka.bootstrap,
                log.owned_partitions()
            );
            // The read models read every partition, not only those this instance writes.
            server.serve(log, TopicReader::new(log_config), &what).await
        }
        None => {
            let db = config.data_dir.join("alliance.db");
            let log = SqliteLog::open(SqliteLogConfig::new(&db))
                .with_context(|| format!("cannot open event log {}", db.display()))?;
            let what = format!("embedded log {}", db.display());
            server.serve(log.clone(), log, &what).await
        }
    }
}

/// Runs an operator's operation on the data directory, printing what it did.
async fn operate(config: &Config, operation: Operation) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    if let Operation::Migrate { direction, plans } = operation {
        return migrate(config, direction, plans).await;
    }
    if config.kafka.is_some() {
        anyhow::bail!(
            "backup and restore are of the embedded log; on Kafka, copy the topic to an embedded log (allianced migrate from-kafka)"
        );
    }
    match operation {
        Operation::Backup { to } => {
            let report = alliance_logcopy::backup(data_dir, &to)
                .await
                .with_context(|| format!("backup of {} to {}", data_dir.display(), to.display()))?;
            println!(
                "backed up {} events of {} plans from {} to {} ({}), every chain verified",
                report.inventory.events,
                report.inventory.plans.len(),
                data_dir.display(),
                to.display(),
                report.files.join(", ")
            );
        }
        Operation::Restore { from } => {
            let restored = alliance_logcopy::restore(&from, data_dir)
                .await
                .with_context(|| {
                    format!("restore of {} into {}", from.display(), data_dir.display())
                })?;
            println!(
                "restored {} events of {} plans from {} into {}, every chain and head as in the backup's manifest",
                restored.events,
                restored.plans.len(),
                from.display(),
                data_dir.display()
            );
        }
        Operation::Migrate { .. } => {}
    }
    Ok(())
}

/// `allianced migrate`: the embedded log of the data directory to the configured topic, or back.
async fn migrate(
    config: &Config,
    direction: Direction,
    plans: Vec<uuid::Uuid>,
) -> anyhow::Result<()> {
    let kafka = config
        .kafka
        .as_ref()
        .context("migrate needs the Kafka topic: --kafka-bootstrap or a [kafka] section")?;
    let mut topic = kafka_config(kafka, "migration")?;
    // The migration writes every partition itself, outside the writers' group.
    topic.owned = Some((0..i32::try_from(kafka.partitions)?).collect());
    let db = config.data_dir.join("alliance.db");
    let migration = alliance_logcopy::Migration {
        plans: (!plans.is_empty()).then(|| plans.into_iter().collect()),
        stop_after: None,
    };
    let reader = TopicReader::new(topic.clone());
    let (report, from, to) = match direction {
        Direction::ToKafka => {
            if !db.is_file() {
                anyhow::bail!("{} holds no embedded log", config.data_dir.display());
            }
            let source = SqliteLog::open(SqliteLogConfig::new(&db))?;
            let target = KafkaLog::open(topic).await?;
            let report = alliance_logcopy::migrate(&source, &target, &reader, &migration).await?;
            (report, db.display().to_string(), kafka.topic.clone())
        }
        Direction::FromKafka => {
            let target = SqliteLog::open(SqliteLogConfig::new(&db))?;
            let report = alliance_logcopy::migrate(&reader, &target, &target, &migration).await?;
            (report, kafka.topic.clone(), db.display().to_string())
        }
    };
    println!(
        "copied {} events from {from} to {to} ({} already there); {} plans, {} events, every chain verified and every head the source's",
        report.copied,
        report.already_present,
        report.source.plans.len(),
        report.source.events
    );
    Ok(())
}

/// The Kafka log's settings for this instance.
fn kafka_config(settings: &KafkaSettings, address: &str) -> anyhow::Result<KafkaLogConfig> {
    let mut config = KafkaLogConfig::new(&settings.bootstrap, &settings.topic);
    config.partitions = settings.partitions;
    config.owned = settings.owned_partitions.clone();
    config.advertised = Some(address.to_owned());
    config.session_timeout = std::time::Duration::from_millis(settings.session_timeout_ms);
    config.transactional_prefix = settings
        .transactional_prefix
        .clone()
        .unwrap_or_else(|| format!("alliance-commands.{}", settings.topic));
    config.client.clone_from(&settings.client);
    for (partition, address) in &settings.owners {
        let partition: i32 = partition
            .parse()
            .with_context(|| format!("owner partition {partition:?} is not a number"))?;
        config.owners.insert(partition, address.clone());
    }
    Ok(config)
}

/// Opens the Kafka log, retrying with backoff while the broker cannot be reached.
async fn open_kafka(config: &KafkaLogConfig) -> anyhow::Result<KafkaLog> {
    let what = format!("cannot open the Kafka log at {}", config.bootstrap);
    alliance_server::serve::retry_until_stopped(&what, || KafkaLog::open(config.clone()))
        .await
        .map_err(anyhow::Error::msg)
}

/// Prints each change of the partitions this instance writes.
fn report_ownership(log: &KafkaLog) {
    let mut ownership = log.ownership();
    tokio::spawn(async move {
        let mut last = ownership.borrow_and_update().owned.clone();
        while ownership.changed().await.is_ok() {
            let owned = ownership.borrow_and_update().owned.clone();
            if owned != last {
                println!("allianced: writing partitions {owned:?}");
                last = owned;
            }
        }
    });
}

/// What every log's server shares.
struct Server<'a> {
    config: &'a Config,
    security: alliance_server::serve::Security,
    listener: tokio::net::TcpListener,
    address: &'a str,
    /// With an identity configuration: the TLS by which the other instances prove they are
    /// `[[peer]]`s (none without peer TLS); `None` without one.
    proven_peers: Option<Option<alliance_commands::PeerTls>>,
}

impl Server<'_> {
    async fn serve<L: EventLog, R: LogReader>(
        self,
        log: L,
        reader: R,
        what: &str,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            security: secured,
            listener,
            address,
            proven_peers,
        } = self;
        let auth = secured.auth.clone();
        // The key this instance signs with, and the keys verification trusts.
        let signer =
            alliance_server::signing::writer_key(config.signing_key.as_deref(), &config.data_dir)?;
        let trusted = Arc::new(alliance_server::signing::trusted_for_writer(
            secured.signing_keys.clone(),
            &signer,
        ));
        println!("allianced: signing records with key {}", signer.id());
        let witnesses = secured.witness_keys.clone().map(Arc::new);
        let keys = alliance_projection::AuditKeys {
            trusted: Some(trusted),
            signer: Some(signer.clone()),
            witnesses: witnesses.clone(),
        };
        // The parts of each decided event go from the command service to the read models of
        // this process, which hold them rather than equal copies of their own.
        let handoff = Arc::new(alliance_domain::parts_handoff());
        let service = Arc::new(
            CommandService::open(log)
                .await?
                .with_default_grants(auth.default_grants())
                .with_signer(signer)
                .with_witness_keys(witnesses)
                .with_handoff(handoff.clone()),
        );
        load_reference(&service, &auth, &config.reference_plan).await?;

        // The read models: restored from the snapshot plus the log's tail, or built from the whole
        // log; then kept up to date as the log grows.
        let snapshot = config.data_dir.join("read-model.snapshot");
        let projection = alliance_projection::open(
            &reader,
            &snapshot,
            alliance_projection::read_model_trust(secured.signing_keys.clone()),
            Some(handoff),
        )
        .await?;
        tokio::spawn(projection.clone().follow(reader.clone()));

        let addr = listener.local_addr()?;
        println!(
            "allianced: alliance.v1.PlanCommands, alliance.v1.PostureQueries, alliance.v1.AuditLog, alliance.v1.Simulation, grpc.health.v1 and reflection listening on {addr} ({what})"
        );
        let model = alliance_simulation::load_model(&config.simulation_model)?;
        // Plans are listed from the read models, which read every partition of the log.
        let peers = |api: PlanCommandsApi<_>| match &proven_peers {
            Some(proven) => api.with_proven_peers(proven.clone()),
            None => api.with_peer_tls(secured.peer.clone()),
        };
        let api = peers(PlanCommandsApi::new(service.clone(), auth.clone(), address))
            .with_directory(projection.clone());
        let (routes, health) = alliance_commands::server::routes(api).await?;
        // Completed simulation runs are recorded through this process's command service.
        let recorder = Recorder::Local(Arc::new(peers(PlanCommandsApi::new(
            service,
            auth.clone(),
            address,
        ))));
        let (routes, _) = alliance_simulation::add_routes(
            routes,
            &health,
            projection.clone(),
            auth.clone(),
            model,
            &config.data_dir,
            recorder,
        )
        .await?;
        let snapshot_projection = projection.clone();
        // Refused requests go to a security log of their own, never to a plan's stream.
        let security_path = config.data_dir.join("security.db");
        let security = SecurityLog::open(&security_path)
            .with_context(|| format!("cannot open the security log {}", security_path.display()))?;
        let denials = DenialLayer::new(security.clone(), auth.clone());
        let routes = alliance_projection::add_routes(
            routes,
            &health,
            projection,
            reader,
            auth,
            Some(security),
            keys,
        )
        .await;
        alliance_projection::serve_until_stopped(
            "allianced",
            listener,
            routes,
            &snapshot_projection,
            &snapshot,
            secured.guard(Some(denials)),
        )
        .await?;
        Ok(())
    }
}

async fn load_reference<L: EventLog>(
    service: &CommandService<L>,
    auth: &Authenticator,
    path: &Path,
) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let plan = ReferencePlan::read(path)?;
    let report = reference::load(service, auth, &plan).await?;
    if report.served_elsewhere {
        println!(
            "allianced: reference plan {} is written by another instance",
            plan.plan_id
        );
        return Ok(());
    }
    println!(
        "allianced: reference plan {} \"{}\" ({} entries loaded now, {} already present)",
        plan.plan_id, plan.name, report.applied, report.already_present
    );
    Ok(())
}
