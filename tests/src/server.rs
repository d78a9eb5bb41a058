//! The services in this process, composed as `allianced` composes them, on a real log (a SQLite
//! file in a temp dir, or a Kafka topic of its own on the shared broker) and an ephemeral
//! loopback port, with the development token file (`deploy/dev-tokens.toml`) unless a test names
//! another.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_eventlog::{EventLog, LogReader, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader};
use alliance_projection::Projection;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_record::witness::WitnessKeys;
use alliance_server::security::{DenialLayer, SecurityLog};
use alliance_server::{Authenticator, TokenFile};
use alliance_simulation::Recorder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The root of the workspace.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of `deploy/`: the development token file, the reference plan, ...
pub fn deploy(file: &str) -> PathBuf {
    repo().join("deploy").join(file)
}

/// A listener on a free loopback port, and its URL.
pub async fn loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Serves `routes` on `listener` behind `guard` for as long as the test runs.
pub fn spawn_serving(
    listener: TcpListener,
    routes: tonic::service::Routes,
    guard: impl Into<alliance_server::serve::Guard>,
) {
    let shutdown = std::future::pending();
    let serving = alliance_server::serve::serve_routes(listener, routes, guard.into(), shutdown);
    tokio::spawn(serving);
}

/// One connection to the server at `url` (`http://` and its address): the clients made from it
/// share it.
pub async fn channel(url: &str) -> Channel {
    alliance_auth::endpoint(url, None)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The callers of the development token file (`deploy/dev-tokens.toml`), by their tokens.
pub mod tokens {
    /// The U.S. force planners.
    pub const US: &str = "dev-us-force-planning";
    /// The ROK Joint Chiefs of Staff.
    pub const ROK: &str = "dev-rok-jcs";
    /// The nuclear policy cell.
    pub const NUCLEAR: &str = "dev-nuclear-policy";
    /// The alliance approvers, who create plans.
    pub const APPROVER: &str = "dev-alliance-approvers";
    /// The auditors, who read.
    pub const AUDITOR: &str = "dev-auditors";
}

/// Which log a server runs on: every contract test runs on both.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Kafka,
}

/// Where a server's log and data live, so a test can restart a server on the same data: a
/// temp dir (the SQLite file, the writer's key, the security log, the simulation runs) and, on
/// Kafka, a topic of its own.
#[derive(Clone)]
pub struct Store {
    dir: Arc<tempfile::TempDir>,
    /// The topic, on Kafka.
    pub topic: Option<String>,
}

impl Store {
    pub fn new(backend: Backend) -> Self {
        Store {
            dir: Arc::new(tempfile::tempdir().unwrap()),
            topic: match backend {
                Backend::Sqlite => None,
                Backend::Kafka => Some(format!("alliance-test-{}", uuid::Uuid::now_v7())),
            },
        }
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file of the log (on SQLite).
    pub fn db(&self) -> PathBuf {
        self.dir().join("alliance.db")
    }
}

/// The configuration of a Kafka log on `topic`: four partitions, the topic as transactional
/// prefix.
pub fn kafka_config(topic: &str) -> KafkaLogConfig {
    let mut config = KafkaLogConfig::new(alliance_eventlog_kafka::local_broker().unwrap(), topic);
    config.partitions = 4;
    config.transactional_prefix = topic.to_owned();
    config
}

/// A log of either kind.
#[derive(Clone)]
pub enum TestLog {
    Sqlite(SqliteLog),
    Kafka(KafkaLog),
}

impl TestLog {
    /// Every event in the log, in order.
    pub async fn events(&self) -> Vec<StoredEvent> {
        match self {
            TestLog::Sqlite(log) => log.read_all(1, 100_000).await.unwrap(),
            TestLog::Kafka(log) => log.read_all(1, 100_000).await.unwrap(),
        }
    }

    /// The SQLite log (panics on Kafka).
    #[track_caller]
    pub fn sqlite(&self) -> &SqliteLog {
        match self {
            TestLog::Sqlite(log) => log,
            TestLog::Kafka(_) => panic!("a Kafka log"),
        }
    }
}

/// What a [`Server`] serves beside the command service.
#[derive(Default)]
pub struct Services {
    /// The read models (`PostureQueries`, `AuditLog`, `ReadModelAdmin`) following the log,
    /// verifying the writer's signatures.
    pub read_models: bool,
    /// A plan loaded before serving, through the same path as the reference plan.
    pub plan: Option<ReferencePlan>,
    /// `alliance.v1.Simulation` with the shipped model data, its run store in the data dir,
    /// recording completed runs through the command service (needs the read models).
    pub simulation: bool,
    /// A security log in the data dir with refused requests recorded in it.
    pub security: bool,
    /// The token file (default: the development one, `deploy/dev-tokens.toml`).
    pub tokens: Option<PathBuf>,
    /// The witnesses' keys the command service and the read models check witnessed heads
    /// against (the identity configuration's `[[witness_key]]`).
    pub witnesses: Option<WitnessKeys>,
}

impl Services {
    /// The command service alone.
    pub fn commands() -> Self {
        Services::default()
    }

    /// The command service and the read models following its log.
    pub fn with_read_models() -> Self {
        Services {
            read_models: true,
            ..Services::default()
        }
    }
}

/// The command service on a real log and a loopback port, and what [`Services`] adds.
pub struct Server {
    pub addr: std::net::SocketAddr,
    /// `http://` and the address.
    pub url: String,
    pub log: TestLog,
    store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// `services` on a fresh SQLite log.
    pub async fn start(services: Services) -> Self {
        Self::start_on(Store::new(Backend::Sqlite), services).await
    }

    /// `services` over the log in `store` (so a test can restart on the same data).
    pub async fn start_on(store: Store, services: Services) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        match &store.topic {
            None => {
                let log = SqliteLog::open(SqliteLogConfig::new(store.db())).unwrap();
                let reader = log.clone();
                Self::serve(
                    listener,
                    TestLog::Sqlite(log.clone()),
                    log,
                    reader,
                    store,
                    services,
                )
                .await
            }
            Some(topic) => {
                let log = KafkaLog::open(kafka_config(topic)).await.unwrap();
                let reader = TopicReader::new(kafka_config(topic));
                Self::serve(
                    listener,
                    TestLog::Kafka(log.clone()),
                    log,
                    reader,
                    store,
                    services,
                )
                .await
            }
        }
    }

    /// Two command services on one new Kafka topic: the first writes partitions 0 and 1, the
    /// second 2 and 3, and each forwards to the other what the other writes.
    pub async fn kafka_pair() -> (Self, Self) {
        let store = Store::new(Backend::Kafka);
        let topic = store.topic.clone().unwrap();
        let listeners = [
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ];
        let addrs = listeners
            .each_ref()
            .map(|l| l.local_addr().unwrap().to_string());
        let [first, second] = listeners;
        let config = |owned: [i32; 2], other: &str, theirs: [i32; 2]| {
            let mut config = kafka_config(&topic);
            config.owned = Some(owned.to_vec());
            config.owners = theirs.map(|p| (p, other.to_owned())).into();
            config
        };
        let log_a = KafkaLog::open(config([0, 1], &addrs[1], [2, 3]))
            .await
            .unwrap();
        let log_b = KafkaLog::open(config([2, 3], &addrs[0], [0, 1]))
            .await
            .unwrap();
        let reader = TopicReader::new(kafka_config(&topic));
        let a = Self::serve(
            first,
            TestLog::Kafka(log_a.clone()),
            log_a,
            reader.clone(),
            store.clone(),
            Services::commands(),
        )
        .await;
        let b = Self::serve(
            second,
            TestLog::Kafka(log_b.clone()),
            log_b,
            reader,
            store,
            Services::commands(),
        )
        .await;
        (a, b)
    }

    async fn serve<L: EventLog, R: LogReader>(
        listener: TcpListener,
        test_log: TestLog,
        log: L,
        reader: R,
        store: Store,
        services: Services,
    ) -> Self {
        let dir = store.dir();
        let witnesses = services.witnesses.map(Arc::new);
        let tokens = services
            .tokens
            .clone()
            .unwrap_or_else(|| deploy("dev-tokens.toml"));
        let auth = Authenticator::from_token_file(&TokenFile::load(&tokens).unwrap()).unwrap();
        // A writer key in the data dir, trusted alone, as allianced does without an identity
        // configuration.
        let signer = alliance_server::signing::writer_key(None, dir).unwrap();
        let keys = alliance_projection::AuditKeys {
            trusted: Some(Arc::new(alliance_server::signing::trusted_for_writer(
                None, &signer,
            ))),
            signer: Some(signer.clone()),
            witnesses: witnesses.clone(),
        };
        let handoff = Arc::new(alliance_domain::parts_handoff());
        let service = Arc::new(
            CommandService::open(log)
                .await
                .unwrap()
                .with_default_grants(auth.default_grants())
                .with_signer(signer)
                .with_witness_keys(witnesses)
                .with_handoff(handoff.clone()),
        );
        if let Some(plan) = &services.plan {
            let report = reference::load(&service, &auth, plan).await.unwrap();
            assert_eq!(report.applied, plan.entries.len());
        }
        let addr = listener.local_addr().unwrap();
        let address = addr.to_string();
        let auth = Arc::new(auth);
        let api = PlanCommandsApi::new(service.clone(), auth.clone(), &address);
        let (mut routes, health) = alliance_commands::server::routes(api).await.unwrap();
        let security = services
            .security
            .then(|| SecurityLog::open(&dir.join("security.db")).unwrap());
        let denials = security
            .as_ref()
            .map(|security| DenialLayer::new(security.clone(), auth.clone()));
        if services.read_models || services.simulation {
            // The read model, as allianced builds it: what the log holds before serving, then
            // each event as it is committed.
            let projection = Projection::new();
            projection.share_with(handoff);
            projection.catch_up(&reader).await.unwrap();
            tokio::spawn(projection.clone().follow(reader.clone()));
            if services.simulation {
                let recorder = Recorder::Local(Arc::new(PlanCommandsApi::new(
                    service,
                    auth.clone(),
                    &address,
                )));
                let model = alliance_simulation::load_model(Path::new("")).unwrap();
                (routes, _) = alliance_simulation::add_routes(
                    routes,
                    &health,
                    projection.clone(),
                    auth.clone(),
                    model,
                    dir,
                    recorder,
                )
                .await
                .unwrap();
            }
            routes = alliance_projection::add_routes(
                routes, &health, projection, reader, auth, security, keys,
            )
            .await;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            alliance_server::serve::serve_routes(listener, routes, denials, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            url: format!("http://{address}"),
            log: test_log,
            store,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts the server down and checks it stopped cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Where the server's log and data live.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A file in the server's data dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.store.dir().join(name)
    }

    /// Every event in the log, in order.
    pub async fn events(&self) -> Vec<StoredEvent> {
        self.log.events().await
    }

    /// A client of the command service.
    pub async fn client(&self) -> PlanCommandsClient<Channel> {
        PlanCommandsClient::connect(self.url.clone()).await.unwrap()
    }
}
