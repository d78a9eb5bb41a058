//! Starts the command service on a real log (SQLite file or Kafka topic) and a loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig};
use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_server::{Authenticator, TokenFile};
use alliance_tests::requests;
pub use alliance_tests::requests::{date, meta};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// Which log a test server runs on: every contract test runs on both.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Kafka,
}

/// Where a server's log lives, so a test can restart a server on the same data.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<tempfile::TempDir>),
    Kafka { topic: String },
}

impl Store {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Store::Sqlite(Arc::new(tempfile::tempdir().unwrap())),
            Backend::Kafka => Store::Kafka {
                topic: format!("alliance-test-{}", uuid::Uuid::now_v7()),
            },
        }
    }
}

/// A log of either kind.
#[derive(Clone)]
pub enum TestLog {
    Sqlite(SqliteLog),
    Kafka(KafkaLog),
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub log: TestLog,
    _store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn token_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-tokens.toml")
}

pub fn kafka_config(topic: &str) -> KafkaLogConfig {
    let mut config = KafkaLogConfig::new(alliance_eventlog_kafka::local_broker().unwrap(), topic);
    config.partitions = 4;
    config.transactional_prefix = topic.to_owned();
    config
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_on(Store::new(backend)).await
    }

    /// A server over the log in `store` (so a test can restart on the same data).
    pub async fn start_on(store: Store) -> Self {
        match &store {
            Store::Sqlite(dir) => {
                let log =
                    SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
                Self::serve(TestLog::Sqlite(log.clone()), log, store).await
            }
            Store::Kafka { topic } => {
                let log = KafkaLog::open(kafka_config(topic)).await.unwrap();
                Self::serve(TestLog::Kafka(log.clone()), log, store).await
            }
        }
    }

    /// Two instances on one new Kafka topic: the first writes partitions 0 and 1, the second 2
    /// and 3, and each forwards to the other what the other writes.
    pub async fn kafka_pair() -> (Self, Self) {
        let topic = format!("alliance-test-{}", uuid::Uuid::now_v7());
        let listeners = [
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
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
        let store = Store::Kafka { topic };
        let a = Self::serve_on(first, TestLog::Kafka(log_a.clone()), log_a, store.clone()).await;
        let b = Self::serve_on(second, TestLog::Kafka(log_b.clone()), log_b, store).await;
        (a, b)
    }

    async fn serve<L: EventLog>(test_log: TestLog, log: L, store: Store) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, test_log, log, store).await
    }

    async fn serve_on<L: EventLog>(
        listener: tokio::net::TcpListener,
        test_log: TestLog,
        log: L,
        store: Store,
    ) -> Self {
        let auth =
            Authenticator::from_token_file(&TokenFile::load(&token_file()).unwrap()).unwrap();
        let service = Arc::new(
            CommandService::open(log)
                .await
                .unwrap()
                .with_default_grants(auth.default_grants()),
        );
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let api = PlanCommandsApi::new(service, Arc::new(auth), addr.to_string());
        let task = tokio::spawn(async move {
            alliance_commands::server::serve(listener, api, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            log: test_log,
            _store: store,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub async fn client(&self) -> PlanCommandsClient<Channel> {
        PlanCommandsClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub async fn all_events(&self) -> Vec<StoredEvent> {
        match &self.log {
            TestLog::Sqlite(log) => log.read_all(1, 100_000).await.unwrap(),
            TestLog::Kafka(log) => log.read_all(1, 100_000).await.unwrap(),
        }
    }
}

pub const US: &str = "dev-us-force-planning";
pub const ROK: &str = "dev-rok-jcs";
pub const APPROVER: &str = "dev-alliance-approvers";
pub const AUDITOR: &str = "dev-auditors";

/// A request carrying a bearer token.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Creates a plan (horizon 2020–2035) and returns its id.
pub async fn create_plan(client: &mut PlanCommandsClient<Channel>) -> String {
    let result = client
        .create_plan(authed(
            APPROVER,
            requests::create_plan("Alliance modernization 2027–2031", date(2020, 1, 1)),
        ))
        .await
        .unwrap()
        .into_inner();
    result.plan_id
}

/// A U.S. brigade `id` of `personnel`, named after its id.
pub fn element(id: &str, personnel: u32) -> Option<v1::ForceElement> {
    requests::brigade(id, &format!("element {id}"), personnel)
}

pub async fn register(
    client: &mut PlanCommandsClient<Channel>,
    plan_id: &str,
    id: &str,
    based_on: Option<u64>,
) -> Result<v1::CommandResult, tonic::Status> {
    client
        .register_force_element(authed(
            US,
            requests::register(plan_id, element(id, 4500), based_on),
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn propose(
    client: &mut PlanCommandsClient<Channel>,
    token: &str,
    plan_id: &str,
    decision_id: &str,
) -> v1::CommandResult {
    client
        .propose_decision(authed(
            token,
            v1::ProposeDecisionRequest {
                meta: meta(plan_id, None),
                decision_id: decision_id.into(),
                title: format!("decision {decision_id}"),
                rationale: "the paper's phased retrenchment".into(),
                effective_date: date(2027, 6, 1),
                required_sides: vec![v1::Side::Us as i32, v1::Side::Rok as i32],
                supersedes: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// The fields an INVALID_ARGUMENT names in its `BadRequest`, in order.
#[track_caller]
pub fn violated(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .expect("bad request details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}
