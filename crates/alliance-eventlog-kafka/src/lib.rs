//! The event log on Apache Kafka.
//!
//! One topic holds every plan; a record's key is its plan id, so a plan lives in one partition.
//! The partitions this instance writes share one writer thread, whose transactions carry the
//! appends queued for any of them and are fenced through the writers' group (fixed partitions
//! have a writer each, fenced through a `transactional.id` that names the partition). Before
//! serving a partition the instance reads it from the start with `read_committed` and
//! indexes its events in memory; afterwards the writer indexes what it commits.
//!
//! Positions are those of this instance's index (the order it indexed events in), not a
//! cluster-wide order.

mod diagnose;
mod index;
mod membership;
mod partitions;
mod reader;
mod record;
mod writer;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alliance_eventlog::{
    Appended, CommandRecord, EventLog, LogError, NewEvent, PlanId, Position, Route, StoredEvent,
    Version,
};
use alliance_stdx::lock;
use futures::stream::BoxStream;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

pub use partitions::Ownership;
pub use reader::TopicReader;
pub use record::{headers as record_headers, partition_of};

/// The project's local broker, for tests: `ALLIANCE_KAFKA_BOOTSTRAP` when set (as `make test`
/// does), otherwise the broker `deploy/kafka/kafka.sh up` starts (or finds running).
pub fn local_broker() -> Result<String, String> {
    static BOOTSTRAP: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    BOOTSTRAP
        .get_or_init(|| {
            if let Ok(bootstrap) = std::env::var("ALLIANCE_KAFKA_BOOTSTRAP") {
                return Ok(bootstrap);
            }
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/kafka/kafka.sh");
            let out = std::process::Command::new("bash")
                .arg(script)
                .arg("up")
                .output()
                .map_err(|e| format!("cannot run deploy/kafka/kafka.sh: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .rsplit(' ')
                .next()
                .map(str::to_owned)
                .ok_or_else(|| "deploy/kafka/kafka.sh printed no address".to_owned())
        })
        .clone()
}

/// The client settings of the local broker's SASL_SSL listener (`bootstrap.servers` among
/// them), for tests: the file `ALLIANCE_KAFKA_SECURE_CLIENT` names, otherwise the one
/// `deploy/kafka/kafka.sh up` writes into its state directory.
pub fn local_secure_client() -> Result<BTreeMap<String, String>, String> {
    local_broker()?;
    let path = match std::env::var_os("ALLIANCE_KAFKA_SECURE_CLIENT") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::env::var_os("ALLIANCE_KAFKA_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| std::path::Path::new(&home).join(".cache/alliance/kafka-run"))
            })
            .ok_or("neither ALLIANCE_KAFKA_SECURE_CLIENT nor HOME is set")?
            .join("secure-client.properties"),
    };
    client_settings_file(&path)
}

/// Client settings from a file of `KEY=VALUE` lines (blank lines and lines starting with `#`
/// are skipped), such as the SASL password that should not be on a command line.
pub fn client_settings_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read Kafka client settings {}: {e}", path.display()))?;
    let mut settings = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            format!(
                "{} line {}: a Kafka client setting is KEY=VALUE",
                path.display(),
                number + 1
            )
        })?;
        settings.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(settings)
}

use index::Index;
use membership::Membership;
use partitions::Partitions;
use writer::{AppendRequest, Message, Shared};

/// How to reach the broker and the topic, and which partitions this instance writes. Its `Debug`
/// hides the values of secret client settings.
#[derive(Clone)]
pub struct KafkaLogConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    pub topic: String,
    /// Partitions of the topic when this instance creates it.
    pub partitions: u32,
    pub replication_factor: i32,
    pub min_insync_replicas: u32,
    /// Create the topic if it does not exist (explicitly, never by auto-creation).
    pub create_topic: bool,
    /// Prefix of the writers' `transactional.id`s (`{prefix}-i{token}-{n}-0` and `-1` for an
    /// instance's writer, `{prefix}-p{partition}-0` and `-1` for a fixed partition's) and the
    /// name of the writers' group.
    pub transactional_prefix: String,
    /// Partitions this instance writes, fixed; `None` to divide the partitions among the
    /// instances of the writers' group (named by `transactional_prefix`), which moves them when
    /// instances come and go.
    pub owned: Option<Vec<i32>>,
    /// With fixed partitions: the gRPC address of each other partition's writer.
    pub owners: BTreeMap<i32, String>,
    /// The gRPC address this instance serves, published to the writers' group so that the
    /// other instances can forward commands for the partitions it writes.
    pub advertised: Option<String>,
    /// How long a silent instance keeps its partitions in the writers' group.
    pub session_timeout: Duration,
    /// Passed to every client as is (security settings such as `security.protocol`, SASL, SSL).
    pub client: BTreeMap<String, String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for KafkaLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLogConfig")
            .field("bootstrap", &self.bootstrap)
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .field("transactional_prefix", &self.transactional_prefix)
            .field("owned", &self.owned)
            .field("owners", &self.owners)
            .field("advertised", &self.advertised)
            .field("session_timeout", &self.session_timeout)
            .field("client", &redacted(&self.client))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Client settings fit to be shown: the values of passwords, secrets and keys replaced.
pub fn redacted(settings: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    settings
        .iter()
        .map(|(key, value)| {
            let secret = ["password", "secret", "key.pem", "jaas", "token"]
                .iter()
                .any(|word| key.contains(word));
            (
                key.as_str(),
                if secret { "[redacted]" } else { value.as_str() },
            )
        })
        .collect()
}

impl KafkaLogConfig {
    pub fn new(bootstrap: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            partitions: 8,
            replication_factor: 1,
            min_insync_replicas: 1,
            create_topic: true,
            transactional_prefix: "alliance-commands".into(),
            owned: None,
            owners: BTreeMap::new(),
            advertised: None,
            session_timeout: Duration::from_secs(10),
            client: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The settings of a service that only reads the topic: the writers' transactional
    /// prefix (so `holds` and progress name the same topic) and client settings (security.protocol,
    /// sasl.*, ssl.*) from a file of `KEY=VALUE` lines and then, overriding it, given as
    /// `KEY=VALUE`.
    pub fn reader(
        bootstrap: &str,
        topic: &str,
        client_settings: &[String],
        client_file: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let mut config = Self::new(bootstrap, topic);
        config.transactional_prefix = format!("alliance-commands.{topic}");
        if let Some(path) = client_file {
            config.client = client_settings_file(path)?;
        }
        for setting in client_settings {
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("Kafka client setting {setting:?} is not KEY=VALUE"))?;
            config.client.insert(key.to_owned(), value.to_owned());
        }
        Ok(config)
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.client {
            config.set(key, value);
        }
        config
    }
}

/// The Kafka event log: a cheap handle.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    partitions: Arc<Partitions>,
    /// Present when the partitions are divided by the writers' group. Declared after
    /// `partitions`' users and dropped first: leaving the group releases the partitions.
    membership: Option<Membership>,
    /// Compares the topic's partition count with the one this handle opened it with.
    _watcher: PartitionWatch,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Leave the group first (it releases what it gave), then let fixed partitions go.
        self.membership.take();
        self.partitions.release_all();
    }
}

pub(crate) fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}

impl KafkaLog {
    /// Connects, creates the topic if asked, and takes its partitions over: the fixed ones, or
    /// those the writers' group assigns (waiting for the first assignment). Taking a partition
    /// over fences its previous writer and indexes it before any append is accepted. Fails
    /// with `Unavailable` when the broker cannot be reached within the timeout.
    pub async fn open(config: KafkaLogConfig) -> Result<Self, LogError> {
        let config = Arc::new(config);
        if config.create_topic {
            // The admin client cannot say why the broker is out of reach: ask first through a
            // client that can (`open_blocking` says so itself).
            let reachable = config.clone();
            tokio::task::spawn_blocking(move || diagnose::reach(&reachable))
                .await
                .map_err(unavailable)??;
            create_topic(&config).await?;
        }
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(unavailable)?
    }

    fn open_blocking(config: Arc<KafkaLogConfig>) -> Result<Self, LogError> {
        let count = partition_count(&config)?;
        let shared = Arc::new(Shared {
            index: Mutex::new(Index::default()),
            indexed: watch::channel(0).0,
            topic: config.topic.clone(),
            partitions: count,
            refusal: Mutex::new(None),
        });
        let watcher = PartitionWatch::start(config.clone(), shared.clone())?;
        let partitions = Arc::new(Partitions::new(config.clone(), shared, count));
        let membership = match &config.owned {
            Some(owned) => {
                for &partition in owned {
                    if let Err(error) = partitions.acquire(partition) {
                        partitions.release_all();
                        return Err(error);
                    }
                }
                None
            }
            None => Some(Membership::join(partitions.clone())?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                partitions,
                membership,
                _watcher: watcher,
            }),
        })
    }

    /// Compares the topic's partition count now with the one this handle opened it with (which
    /// the records it writes carry): when it changed, every later append is refused, saying
    /// so, because plans would map to other partitions. Done every few seconds on its own.
    pub fn check_partitions(&self) -> Result<(), LogError> {
        let shared = &self.inner.partitions.shared;
        check_partitions(&self.inner.partitions.config, shared)
    }

    /// The partitions this instance writes.
    pub fn owned_partitions(&self) -> Vec<i32> {
        self.inner.partitions.owned_partitions()
    }

    /// Which partitions this instance writes and where the others are written, as it changes.
    pub fn ownership(&self) -> watch::Receiver<Ownership> {
        self.inner.partitions.watch()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        lock(&self.inner.partitions.shared.index)
    }

    fn enqueue(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
        traceparent: Option<String>,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, LogError> {
        alliance_eventlog::check_append(&events)?;
        if let Some(refusal) = lock(&self.inner.partitions.shared.refusal).clone() {
            return Err(LogError::Unavailable(refusal));
        }
        let partition = self.inner.partitions.partition_of(plan_id);
        let (writer, _) = self.inner.partitions.writer(partition).ok_or_else(|| {
            LogError::Unavailable(format!(
                "plan {plan_id} lives in partition {partition}, which this instance does not own"
            ))
        })?;
        let (respond, answer) = oneshot::channel();
        writer
            .send(Message::Append(AppendRequest {
                partition,
                plan_id,
                expected,
                events,
                traceparent,
                respond,
            }))
            .map_err(|_| LogError::Unavailable("the partition writer has stopped".into()))?;
        Ok(answer)
    }
}

/// Creates the topic of `config` (partitions, replication, infinite retention,
/// `min.insync.replicas`) unless it exists.
pub async fn create_topic(config: &KafkaLogConfig) -> Result<(), LogError> {
    let admin: AdminClient<DefaultClientContext> = config.client().create().map_err(unavailable)?;
    let retention = "-1";
    let min_isr = config.min_insync_replicas.to_string();
    let topic = NewTopic::new(
        &config.topic,
        i32::try_from(config.partitions).unwrap_or(i32::MAX),
        TopicReplication::Fixed(config.replication_factor),
    )
    .set("retention.ms", retention)
    .set("retention.bytes", retention)
    .set("min.insync.replicas", &min_isr)
    .set("cleanup.policy", "delete");
    let options = AdminOptions::new()
        .operation_timeout(Some(config.timeout))
        .request_timeout(Some(config.timeout));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(unavailable)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(LogError::Unavailable(format!(
                    "cannot create topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}

/// The refusal to write to `topic`, which has `now` partitions where its plans were mapped to
/// partitions by `written_with`.
pub(crate) fn repartitioned(topic: &str, written_with: u32, now: u32) -> LogError {
    LogError::Unavailable(format!(
        "topic {topic} has {now} partitions but its records were written with {written_with} \
         partitions: plans map to partitions by murmur2 mod the count, so writing now could put \
         one plan in two partitions; writes are refused (see \"Re-partitioning\" in \
         docs/configuration.md)"
    ))
}

/// One comparison of the live partition count with the one `shared` was opened with; a change
/// is kept as the refusal of every later append.
fn check_partitions(config: &KafkaLogConfig, shared: &Shared) -> Result<(), LogError> {
    if let Some(refusal) = lock(&shared.refusal).clone() {
        return Err(LogError::Unavailable(refusal));
    }
    let now = partition_count(config)?;
    if now == shared.partitions {
        return Ok(());
    }
    let error = repartitioned(&shared.topic, shared.partitions, now);
    tracing::error!(%error, "refusing to write");
    if let LogError::Unavailable(message) = &error {
        *lock(&shared.refusal) = Some(message.clone());
    }
    Err(error)
}

/// A thread comparing the topic's partition count with the one the log was opened with, every
/// few seconds, until dropped.
struct PartitionWatch {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PartitionWatch {
    const EVERY: Duration = Duration::from_secs(5);

    fn start(config: Arc<KafkaLogConfig>, shared: Arc<Shared>) -> Result<Self, LogError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kafka-partition-watch".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Self::EVERY)
                {
                    match check_partitions(&config, &shared) {
                        // Refused for good: nothing more to watch.
                        Err(_) if lock(&shared.refusal).is_some() => break,
                        Err(error) => tracing::debug!(%error, "cannot read the partition count"),
                        Ok(()) => {}
                    }
                }
            })
            .map_err(unavailable)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PartitionWatch {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The topic's partition count. A topic just created may take a moment to appear in the
/// metadata the broker answers with: it is asked again for up to a few seconds. When the broker
/// cannot be reached the error says why.
fn partition_count(config: &KafkaLogConfig) -> Result<u32, LogError> {
    let client = diagnose::MetadataClient::new(config)?;
    let patience = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metadata = client.fetch(Some(&config.topic))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic)
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if partitions > 0 {
            return Ok(partitions as u32);
        }
        if std::time::Instant::now() > patience {
            return Err(LogError::Unavailable(format!(
                "topic {} does not exist",
                config.topic
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl EventLog for KafkaLog {
    fn append(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Appended, LogError>> + Send + 'static {
        // The producer span: from the append until its transaction is committed. Its context
        // goes out in every record's `traceparent` header.
        let span = alliance_telemetry::trace_span!(
            "send",
            otel.name = format_args!("send {}", self.inner.partitions.shared.topic),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.operation.name = "send",
            messaging.destination.name = %self.inner.partitions.shared.topic,
            messaging.destination.partition.id = self.inner.partitions.partition_of(plan_id),
            messaging.kafka.message.key = %plan_id,
            messaging.batch.message_count = events.len(),
        );
        let traceparent = alliance_telemetry::traceparent(&span);
        let queued = span.in_scope(|| self.enqueue(plan_id, expected, events, traceparent));
        async move {
            queued?
                .await
                .map_err(|_| LogError::Unavailable("the partition writer stopped".into()))?
        }
        .instrument(span)
    }

    fn route(&self, plan_id: PlanId) -> Route {
        let partitions = &self.inner.partitions;
        let partition = partitions.partition_of(plan_id);
        if partitions.writer(partition).is_some() {
            Route::Local
        } else {
            Route::Remote {
                partition,
                owner: partitions.owner(partition),
            }
        }
    }

    async fn settled_route(&self, plan_id: PlanId, patience: Duration) -> Route {
        let mut changes = self.ownership();
        let settled = async {
            loop {
                changes.borrow_and_update();
                match self.route(plan_id) {
                    Route::Remote { owner: None, .. } => {}
                    route => return route,
                }
                if changes.changed().await.is_err() {
                    return self.route(plan_id);
                }
            }
        };
        match tokio::time::timeout(patience, settled).await {
            Ok(route) => route,
            Err(_) => self.route(plan_id),
        }
    }

    async fn moved_from(&self, plan_id: PlanId, owner: &str) -> Route {
        let mut changes = self.ownership();
        loop {
            changes.borrow_and_update();
            match self.route(plan_id) {
                Route::Remote {
                    owner: Some(now), ..
                } if now == owner => {}
                // Moving: not known to be anywhere else yet.
                Route::Remote { owner: None, .. } => {}
                route => return route,
            }
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn writer_term(&self, plan_id: PlanId) -> u64 {
        let partitions = &self.inner.partitions;
        partitions.term(partitions.partition_of(plan_id))
    }

    fn same_shard(&self, a: PlanId, b: PlanId) -> bool {
        let partitions = &self.inner.partitions;
        partitions.partition_of(a) == partitions.partition_of(b)
    }

    async fn read_plan(
        &self,
        plan_id: PlanId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self.index().read_plan(plan_id, from, limit))
    }

    async fn read_all(&self, from: Position, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        Ok(self.index().read_all(from, limit))
    }

    async fn plan_version(&self, plan_id: PlanId) -> Result<Version, LogError> {
        Ok(self.index().plan_version(plan_id))
    }

    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, LogError> {
        Ok(self.index().command(command_id))
    }

    fn subscribe(&self, from: Position) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        let log = self.clone();
        let indexed = self.inner.partitions.shared.indexed.subscribe();
        let stream = futures::stream::unfold(
            (log, indexed, from.max(1), Vec::<StoredEvent>::new()),
            |(log, mut indexed, next, mut buffer)| async move {
                loop {
                    if let Some(event) = buffer.pop() {
                        return Some((Ok(event), (log, indexed, next, buffer)));
                    }
                    indexed.borrow_and_update();
                    let batch = log.index().read_all(next, 256);
                    if let Some(last) = batch.last() {
                        let next = last.position + 1;
                        buffer = batch.into_iter().rev().collect();
                        if let Some(event) = buffer.pop() {
                            return Some((Ok(event), (log, indexed, next, buffer)));
                        }
                    } else if indexed.changed().await.is_err() {
                        return None;
                    }
                }
            },
        );
        Box::pin(stream)
    }
}
