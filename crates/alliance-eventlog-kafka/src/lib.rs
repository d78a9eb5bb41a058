//! The event log on Apache Kafka.
//!
//! One topic holds every plan; a record's key is its plan id, so a plan lives in one partition.
//! Each partition this instance owns has one writer thread with a transactional producer whose
//! `transactional.id` names the partition: taking a partition over fences the previous writer.
//! Before serving a partition the instance reads it from the start with `read_committed` and
//! indexes its events in memory; afterwards the writer indexes what it commits.
//!
//! Positions are those of this instance's index (the order it indexed events in), not a
//! cluster-wide order.

mod index;
mod record;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alliance_eventlog::{
    Appended, CommandRecord, EventLog, LogError, NewEvent, PlanId, Position, Route, StoredEvent,
    Version,
};
use futures::stream::BoxStream;
use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::{oneshot, watch};

pub use record::partition_of;

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

use index::Index;
use writer::{AppendRequest, PartitionWriter, Shared};

/// How to reach the broker and the topic, and which partitions this instance writes.
#[derive(Debug, Clone)]
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
    /// Prefix of the per-partition `transactional.id`s (`{prefix}-p{partition}`).
    pub transactional_prefix: String,
    /// Partitions this instance owns; `None` for all of them.
    pub owned: Option<Vec<i32>>,
    /// The gRPC address of each partition's owner, to send callers to the right instance.
    pub owners: BTreeMap<i32, String>,
    /// Passed to every client as is (security settings such as `security.protocol`, SASL, SSL).
    pub client: BTreeMap<String, String>,
    pub timeout: Duration,
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
            client: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }

    fn client(&self) -> ClientConfig {
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
    shared: Arc<Shared>,
    partitions: u32,
    owners: BTreeMap<i32, String>,
    writers: HashMap<i32, mpsc::Sender<AppendRequest>>,
}

fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}

impl KafkaLog {
    /// Connects, creates the topic if asked, takes the owned partitions over (fencing their
    /// previous writers) and rebuilds their index. Fails with `Unavailable` when the broker
    /// cannot be reached within the timeout.
    pub async fn open(config: KafkaLogConfig) -> Result<Self, LogError> {
        if config.create_topic {
            create_topic(&config).await?;
        }
        let config = Arc::new(config);
        let open = config.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&open))
            .await
            .map_err(unavailable)?
    }

    fn open_blocking(config: &KafkaLogConfig) -> Result<Self, LogError> {
        let partitions = partition_count(config)?;
        let owned: Vec<i32> = config
            .owned
            .clone()
            .unwrap_or_else(|| (0..partitions as i32).collect());
        // Fence first: after init_transactions no earlier writer of these partitions can commit,
        // and their open transactions are aborted, so the rebuild below sees the final state.
        let mut producers = Vec::new();
        for &partition in &owned {
            let producer: FutureProducer = config
                .client()
                .set(
                    "transactional.id",
                    format!("{}-p{partition}", config.transactional_prefix),
                )
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "0")
                // A transaction begun right after a commit can be refused while the broker
                // writes the previous markers; retry it at once rather than after 100 ms.
                .set("retry.backoff.ms", "1")
                .set("retry.backoff.max.ms", "20")
                .set("transaction.timeout.ms", "60000")
                .create()
                .map_err(unavailable)?;
            producer
                .init_transactions(config.timeout)
                .map_err(unavailable)?;
            producers.push((partition, producer));
        }
        let (index, heads) = rebuild(config, &owned)?;
        let last = index.next_position() - 1;
        let shared = Arc::new(Shared {
            index: Mutex::new(index),
            indexed: watch::channel(last).0,
            topic: config.topic.clone(),
        });
        let mut writers = HashMap::new();
        for (partition, producer) in producers {
            let (requests, queue) = mpsc::channel();
            let writer = PartitionWriter {
                partition,
                producer,
                heads: heads.get(&partition).cloned().unwrap_or_default(),
                shared: shared.clone(),
                timeout: config.timeout,
                max_batch: 512,
                lost: None,
            };
            std::thread::Builder::new()
                .name(format!("kafka-writer-p{partition}"))
                .spawn(move || writer.run(queue))
                .map_err(unavailable)?;
            writers.insert(partition, requests);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                partitions,
                owners: config.owners.clone(),
                writers,
            }),
        })
    }

    /// The partitions this instance writes.
    pub fn owned_partitions(&self) -> Vec<i32> {
        let mut owned: Vec<i32> = self.inner.writers.keys().copied().collect();
        owned.sort_unstable();
        owned
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner
            .shared
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, LogError> {
        alliance_eventlog::check_append(&events)?;
        let partition = partition_of(plan_id, self.inner.partitions);
        let writer = self.inner.writers.get(&partition).ok_or_else(|| {
            LogError::Unavailable(format!(
                "plan {plan_id} lives in partition {partition}, which this instance does not own"
            ))
        })?;
        let (respond, answer) = oneshot::channel();
        writer
            .send(AppendRequest {
                plan_id,
                expected,
                events,
                respond,
            })
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

fn partition_count(config: &KafkaLogConfig) -> Result<u32, LogError> {
    let consumer: BaseConsumer = config.client().create().map_err(unavailable)?;
    let metadata = consumer
        .fetch_metadata(Some(&config.topic), config.timeout)
        .map_err(unavailable)?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == config.topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| LogError::Unavailable(format!("topic {} does not exist", config.topic)))?;
    Ok(topic.partitions().len() as u32)
}

type Heads = HashMap<i32, HashMap<PlanId, Version>>;

/// Reads the owned partitions from the start (committed records only) into a new index.
fn rebuild(config: &KafkaLogConfig, owned: &[i32]) -> Result<(Index, Heads), LogError> {
    let mut index = Index::default();
    let mut heads: Heads = HashMap::new();
    if owned.is_empty() {
        return Ok((index, heads));
    }
    let consumer: BaseConsumer = config
        .client()
        .set(
            "group.id",
            format!("{}-rebuild", config.transactional_prefix),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(unavailable)?;
    let mut assignment = TopicPartitionList::new();
    let mut pending = std::collections::HashSet::new();
    for &partition in owned {
        let (low, high) = consumer
            .fetch_watermarks(&config.topic, partition, config.timeout)
            .map_err(unavailable)?;
        if high > low {
            assignment
                .add_partition_offset(&config.topic, partition, Offset::Beginning)
                .map_err(unavailable)?;
            pending.insert(partition);
        }
    }
    if pending.is_empty() {
        return Ok((index, heads));
    }
    consumer.assign(&assignment).map_err(unavailable)?;
    let deadline = std::time::Instant::now() + config.timeout * 4;
    while !pending.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(LogError::Unavailable(format!(
                "rebuilding partitions {pending:?} of {} timed out",
                config.topic
            )));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(error)) => return Err(unavailable(error)),
            Some(Ok(message)) => {
                match record::stored_event(&message, index.next_position()) {
                    Ok(event) => {
                        heads
                            .entry(rdkafka::Message::partition(&message))
                            .or_default()
                            .insert(event.plan_id, event.version);
                        index.push(event);
                    }
                    // Quarantined: reported, never guessed at, never stopping the rebuild.
                    Err(malformed) => tracing::error!(%malformed, "skipping a malformed record"),
                }
            }
        }
    }
    Ok((index, heads))
}

impl EventLog for KafkaLog {
    fn append(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Appended, LogError>> + Send + 'static {
        let queued = self.enqueue(plan_id, expected, events);
        async move {
            queued?
                .await
                .map_err(|_| LogError::Unavailable("the partition writer stopped".into()))?
        }
    }

    fn route(&self, plan_id: PlanId) -> Route {
        let partition = partition_of(plan_id, self.inner.partitions);
        if self.inner.writers.contains_key(&partition) {
            Route::Local
        } else {
            Route::Remote {
                partition,
                owner: self.inner.owners.get(&partition).cloned(),
            }
        }
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
        let indexed = self.inner.shared.indexed.subscribe();
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
