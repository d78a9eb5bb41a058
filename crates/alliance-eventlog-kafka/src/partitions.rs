//! Which partitions this instance writes: taking one over (fence, catch up, start its writer)
//! and letting one go (drain its writer), and where the others are written.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use alliance_eventlog::LogError;
use alliance_stdx::lock;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::writer::{AppendRequest, PartitionWriter, Shared};
use crate::{KafkaLogConfig, partition_of, record, unavailable};

/// The partitions of one log handle and their writers.
pub(crate) struct Partitions {
    pub config: Arc<KafkaLogConfig>,
    pub shared: Arc<Shared>,
    pub count: u32,
    owned: Mutex<HashMap<i32, Owned>>,
    /// Where each partition not written here is served, as last learned.
    owners: Mutex<BTreeMap<i32, String>>,
    /// Published on every change of either.
    changes: tokio::sync::watch::Sender<Ownership>,
}

/// Which partitions this instance writes, and where the others are written as last learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub owned: Vec<i32>,
    pub owners: BTreeMap<i32, String>,
}

struct Owned {
    term: u64,
    /// Set by the writer once another writer fenced it: held (the group has not revoked it, so
    /// it is not taken over again) but no longer written or routed here.
    fenced: Arc<AtomicBool>,
    requests: mpsc::Sender<AppendRequest>,
    writer: JoinHandle<()>,
}

/// Every take-over gets a new term, so state cached under an earlier one can be told apart.
static TERMS: AtomicU64 = AtomicU64::new(1);

impl Partitions {
    pub fn new(config: Arc<KafkaLogConfig>, shared: Arc<Shared>, count: u32) -> Self {
        let owners = Mutex::new(config.owners.clone());
        let changes = tokio::sync::watch::channel(Ownership {
            owned: Vec::new(),
            owners: config.owners.clone(),
        })
        .0;
        Self {
            config,
            shared,
            count,
            owned: Mutex::new(HashMap::new()),
            owners,
            changes,
        }
    }

    pub fn watch(&self) -> tokio::sync::watch::Receiver<Ownership> {
        self.changes.subscribe()
    }

    fn publish(&self) {
        let ownership = Ownership {
            owned: self.owned_partitions(),
            owners: lock(&self.owners).clone(),
        };
        self.changes.send_if_modified(|current| {
            let changed = *current != ownership;
            *current = ownership;
            changed
        });
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Owned>> {
        lock(&self.owned)
    }

    pub fn partition_of(&self, plan_id: alliance_eventlog::PlanId) -> i32 {
        partition_of(plan_id, self.count)
    }

    /// Takes `partition` over: fences its previous writer (`init_transactions` with the
    /// partition's `transactional.id` aborts whatever that writer left open and refuses its
    /// later commits), indexes what the partition holds that is not indexed yet, and only then
    /// starts accepting appends for it.
    pub fn acquire(&self, partition: i32) -> Result<(), LogError> {
        if self.owned().contains_key(&partition) {
            return Ok(());
        }
        let taken = transactional_producer(&self.config, partition, 0)
            .and_then(|first| Ok([first, transactional_producer(&self.config, partition, 1)?]))
            .and_then(|producers| {
                catch_up(&self.config, &self.shared, &[partition]).map(|()| producers)
            });
        let producers = match taken {
            Ok(producers) => producers,
            Err(error) => {
                tracing::warn!(partition, %error, "cannot take the partition over yet");
                return Err(error);
            }
        };
        let heads = {
            let index = lock(&self.shared.index);
            index.heads(|plan_id| self.partition_of(plan_id) == partition)
        };
        let (requests, queue) = mpsc::channel();
        let fenced = Arc::new(AtomicBool::new(false));
        let on_lost = {
            let (fenced, changes) = (fenced.clone(), self.changes.clone());
            Box::new(move || {
                fenced.store(true, Ordering::SeqCst);
                changes.send_modify(|ownership| ownership.owned.retain(|&p| p != partition));
            })
        };
        let writer = PartitionWriter {
            partition,
            producers,
            turn: 0,
            heads,
            shared: self.shared.clone(),
            timeout: self.config.timeout,
            max_batch: 512,
            lost: None,
            on_lost,
            metrics: alliance_eventlog::CommitMetrics::new("kafka"),
        };
        let writer = std::thread::Builder::new()
            .name(format!("kafka-writer-p{partition}"))
            .spawn(move || writer.run(queue))
            .map_err(unavailable)?;
        let term = TERMS.fetch_add(1, Ordering::Relaxed);
        self.owned().insert(
            partition,
            Owned {
                term,
                fenced,
                requests,
                writer,
            },
        );
        tracing::info!(partition, term, "writing partition");
        self.publish();
        Ok(())
    }

    /// Lets `partition` go: no new append is accepted for it, and the ones already queued are
    /// committed (or refused) before this returns, so the next owner starts after them.
    pub fn release(&self, partition: i32) {
        let Some(owned) = self.owned().remove(&partition) else {
            return;
        };
        // Not written here any more, and not known to be written elsewhere yet.
        lock(&self.owners).remove(&partition);
        drop(owned.requests);
        if owned.writer.join().is_err() {
            tracing::error!(partition, "the partition writer panicked");
        }
        tracing::info!(partition, "released partition");
        self.publish();
    }

    /// Releases every partition.
    pub fn release_all(&self) {
        for partition in self.held_partitions() {
            self.release(partition);
        }
    }

    /// The partitions written here (not those held but fenced by another writer).
    pub fn owned_partitions(&self) -> Vec<i32> {
        let mut owned: Vec<i32> = self
            .owned()
            .iter()
            .filter(|(_, owned)| !owned.fenced.load(Ordering::SeqCst))
            .map(|(&partition, _)| partition)
            .collect();
        owned.sort_unstable();
        owned
    }

    /// The partitions taken over and not let go, fenced since or not: the group's assignments
    /// that need no take-over.
    pub fn held_partitions(&self) -> Vec<i32> {
        self.owned().keys().copied().collect()
    }

    /// The writer queue and term of `partition`, when it is written here.
    pub fn writer(&self, partition: i32) -> Option<(mpsc::Sender<AppendRequest>, u64)> {
        self.owned()
            .get(&partition)
            .filter(|owned| !owned.fenced.load(Ordering::SeqCst))
            .map(|owned| (owned.requests.clone(), owned.term))
    }

    pub fn term(&self, partition: i32) -> u64 {
        self.writer(partition).map_or(0, |(_, term)| term)
    }

    pub fn owner(&self, partition: i32) -> Option<String> {
        let owners = lock(&self.owners);
        owners.get(&partition).cloned()
    }

    /// Learns where the partitions are written. An entry naming this instance is dropped: what
    /// this instance writes it knows itself, and the group's description may lag behind it.
    pub fn set_owners(&self, mut owners: BTreeMap<i32, String>) {
        owners.retain(|_, address| Some(&*address) != self.config.advertised.as_ref());
        *lock(&self.owners) = owners;
        self.publish();
    }
}

/// Producer `n` (of two) of a partition, its `transactional.id` naming the partition,
/// initialised: from here on no earlier producer of that id can commit.
fn transactional_producer(
    config: &KafkaLogConfig,
    partition: i32,
    n: u8,
) -> Result<FutureProducer, LogError> {
    let producer: FutureProducer = config
        .client()
        .set(
            "transactional.id",
            format!("{}-p{partition}-{n}", config.transactional_prefix),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("transaction.timeout.ms", "60000")
        .create()
        .map_err(unavailable)?;
    producer
        .init_transactions(config.timeout)
        .map_err(unavailable)?;
    Ok(producer)
}

/// Indexes the committed records of `partitions` that are not indexed yet (all of them, the
/// first time), reading `read_committed` up to the end.
pub(crate) fn catch_up(
    config: &KafkaLogConfig,
    shared: &Shared,
    partitions: &[i32],
) -> Result<(), LogError> {
    // Its end of partition is the normal end of the read, not an error to log.
    let consumer: BaseConsumer<crate::reader::Quiet> = config
        .client()
        .set(
            "group.id",
            format!("{}-rebuild", config.transactional_prefix),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set(
            "fetch.queue.backoff.ms",
            crate::reader::FETCH_QUEUE_BACKOFF_MS,
        )
        .create_with_context(crate::reader::Quiet)
        .map_err(unavailable)?;
    let mut assignment = TopicPartitionList::new();
    let mut pending = std::collections::HashSet::new();
    for &partition in partitions {
        let (_, high) = consumer
            .fetch_watermarks(&config.topic, partition, config.timeout)
            .map_err(unavailable)?;
        let next = lock(&shared.index).next_offset(partition);
        if high > next {
            assignment
                .add_partition_offset(&config.topic, partition, Offset::Offset(next))
                .map_err(unavailable)?;
            pending.insert(partition);
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment).map_err(unavailable)?;
    let deadline = std::time::Instant::now() + config.timeout * 4;
    while !pending.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(LogError::Unavailable(format!(
                "reading partitions {pending:?} of {} timed out",
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
                if let Some(written) = record::written_with_partitions(&message)
                    .filter(|&written| written != shared.partitions)
                {
                    let error = crate::repartitioned(&shared.topic, written, shared.partitions);
                    tracing::error!(%error, "refusing to write");
                    if let LogError::Unavailable(message) = &error {
                        *lock(&shared.refusal) = Some(message.clone());
                    }
                    return Err(error);
                }
                let mut index = lock(&shared.index);
                let partition = rdkafka::Message::partition(&message);
                let offset = rdkafka::Message::offset(&message);
                match record::stored_event(&message, index.next_position()) {
                    Ok(event) => index.push(event),
                    // Quarantined: reported, never guessed at, never stopping the read.
                    Err(malformed) => {
                        tracing::error!(partition, offset, %malformed, "skipping a malformed record");
                    }
                }
                index.indexed_up_to(partition, offset + 1);
                let last = index.next_position() - 1;
                drop(index);
                shared.indexed.send_replace(last);
            }
        }
    }
    Ok(())
}
