//! Which partitions this instance writes: taking one over (fence, catch up, start writing it)
//! and letting one go (drain what was queued for it), and where the others are written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alliance_eventlog::{LogError, PlanId, Version};
use alliance_stdx::lock;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message as _};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::writer::{GroupSlot, Message, Shared, WRITER, Writer};
use crate::{KafkaLogConfig, partition_of, record, unavailable};

/// How long a transaction found open on a partition being taken over may take to end on its
/// own before its writer is fenced. A writer that let the partition go committed what it had
/// for it first, so only that commit's markers can still be on their way; a transaction still
/// open after this was left by a writer that stopped (killed, or stalled and dropped by the
/// group).
const ABANDONED_AFTER: Duration = Duration::from_secs(2);

/// How long the broker lets a writer's transaction stay open before aborting it itself: what
/// bounds the wait of every `read_committed` reader of a partition on a transaction that no
/// take-over ended (a writer that stopped again between producing and aborting). Above the
/// writer's own timeouts (a commit resumed after one of them must not find its transaction
/// aborted by the broker), and above the client's `message.timeout.ms` and
/// `socket.timeout.ms`, which the client requires.
const TRANSACTION_TIMEOUT_MS: &str = "60000";

/// How many appends one transaction carries at most.
const MAX_BATCH: usize = 512;

/// The partitions of one log handle and their writers.
pub(crate) struct Partitions {
    pub config: Arc<KafkaLogConfig>,
    pub shared: Arc<Shared>,
    pub count: u32,
    owned: Mutex<HashMap<i32, Owned>>,
    /// With the writers' group: the writer of every partition the group gives this instance.
    instance: Mutex<Option<InstanceWriter>>,
    /// With the writers' group: its metadata as of the last rebalance this instance took part
    /// in, which every transaction commits through.
    pub group: GroupSlot,
    /// This handle's mark in its writers' `transactional.id`s and its group member's
    /// `client.id`: a transaction left open by a writer of a current member is not ended by
    /// another (it is that member's to end).
    pub token: String,
    /// Instance writers started so far.
    writers: AtomicU64,
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
    /// Set by the writer once it lost the right to write (fenced by another writer, or refused
    /// by the group): held (the group has not revoked it) but no longer written or routed here.
    fenced: Arc<AtomicBool>,
    requests: mpsc::Sender<Message>,
    /// The partition's own writer thread (fixed partitions); `None`: the instance's writer.
    writer: Option<JoinHandle<()>>,
}

/// The one writer of the partitions the writers' group gives this instance.
struct InstanceWriter {
    requests: mpsc::Sender<Message>,
    lost: Arc<AtomicBool>,
    thread: JoinHandle<()>,
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
            instance: Mutex::new(None),
            group: GroupSlot::default(),
            token: uuid::Uuid::now_v7().simple().to_string(),
            writers: AtomicU64::new(0),
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

    pub fn partition_of(&self, plan_id: PlanId) -> i32 {
        partition_of(plan_id, self.count)
    }

    /// What a writer calls once it may no longer write: the partition stops being routed here.
    fn on_lost(&self, lost: &Arc<AtomicBool>) -> Arc<dyn Fn(i32) + Send + Sync> {
        let (lost, changes) = (lost.clone(), self.changes.clone());
        Arc::new(move |partition| {
            lost.store(true, Ordering::SeqCst);
            changes.send_modify(|ownership| ownership.owned.retain(|&p| p != partition));
        })
    }

    /// Takes `partition` over and only then starts accepting appends for it: fences its
    /// previous writer, and indexes what the partition holds that is not indexed yet.
    ///
    /// With fixed partitions the partition has its own writer, whose `transactional.id` names
    /// it: `init_transactions` aborts whatever the previous writer left open and refuses its
    /// later commits. With the writers' group the instance's writer takes it on: a previous
    /// writer's later commits are refused by the group (its generation is past), and a
    /// transaction it left open is ended here ([`end_abandoned_transactions`]).
    pub fn acquire(&self, partition: i32) -> Result<(), LogError> {
        let grouped = self.config.owned.is_none();
        {
            let mut owned = self.owned();
            match owned.get(&partition) {
                Some(held) if !(grouped && held.fenced.load(Ordering::SeqCst)) => return Ok(()),
                // Held by a writer that lost the right to write, while the group still gives
                // it here: taken over again by a writer of its own.
                Some(_) => {
                    if let Some(stale) = owned.remove(&partition) {
                        drop(owned);
                        // Once what it had produced has ended, committed (and indexed) or not.
                        drain(&stale.requests, partition);
                    }
                }
                None => {}
            }
        }
        let taken = if grouped {
            fence_partition_writers(&self.config, partition)
                .and_then(|()| end_abandoned_transactions(&self.config, partition))
                .and_then(|()| catch_up(&self.config, &self.shared, &[partition]))
                .and_then(|()| self.instance_writer())
                .map(|(requests, fenced)| (requests, fenced, None))
        } else {
            self.partition_writer(partition)
        };
        let (requests, fenced, writer) = match taken {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(partition, %error, "cannot take the partition over yet");
                return Err(error);
            }
        };
        let heads = self.heads(partition);
        if grouped {
            requests
                .send(Message::Own { partition, heads })
                .map_err(|_| LogError::Unavailable("the instance's writer has stopped".into()))?;
        }
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

    /// The heads of the plans of `partition`, as indexed.
    fn heads(&self, partition: i32) -> HashMap<PlanId, Version> {
        let index = lock(&self.shared.index);
        index.heads(|plan_id| self.partition_of(plan_id) == partition)
    }

    /// A writer of `partition` alone, its producers' `transactional.id`s naming the partition
    /// (fixed partitions), started once the partition is caught up.
    #[allow(clippy::type_complexity)]
    fn partition_writer(
        &self,
        partition: i32,
    ) -> Result<
        (
            mpsc::Sender<Message>,
            Arc<AtomicBool>,
            Option<JoinHandle<()>>,
        ),
        LogError,
    > {
        let prefix = partition_writer_prefix(&self.config, partition);
        let (producers, ids) = producer_pair(&self.config, &prefix)?;
        catch_up(&self.config, &self.shared, &[partition])?;
        let lost = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            name: format!("partition {partition}"),
            producers,
            ids,
            partitions: HashSet::from([partition]),
            heads: self.heads(partition),
            shared: self.shared.clone(),
            timeout: self.config.timeout,
            max_batch: MAX_BATCH,
            group: None,
            on_lost: self.on_lost(&lost),
            metrics: alliance_eventlog::CommitMetrics::new("kafka"),
        };
        let (requests, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("kafka-writer-p{partition}"))
            .spawn(move || writer.run(queue))
            .map_err(unavailable)?;
        Ok((requests, lost, Some(thread)))
    }

    /// The instance's writer, started if there is none or the last one lost the right to write.
    /// Its producers' `transactional.id`s are its own (a new pair for each writer).
    fn instance_writer(&self) -> Result<(mpsc::Sender<Message>, Arc<AtomicBool>), LogError> {
        let mut instance = lock(&self.instance);
        if let Some(current) = instance.as_ref()
            && !current.lost.load(Ordering::SeqCst)
        {
            return Ok((current.requests.clone(), current.lost.clone()));
        }
        let prefix = format!(
            "{}-{}",
            instance_writer_prefix(&self.config, &self.token),
            self.writers.fetch_add(1, Ordering::Relaxed)
        );
        let (producers, ids) = producer_pair(&self.config, &prefix)?;
        let lost = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            name: "this instance's partitions".to_owned(),
            producers,
            ids,
            partitions: HashSet::new(),
            heads: HashMap::new(),
            shared: self.shared.clone(),
            timeout: self.config.timeout,
            max_batch: MAX_BATCH,
            group: Some(self.group.clone()),
            on_lost: self.on_lost(&lost),
            metrics: alliance_eventlog::CommitMetrics::new("kafka"),
        };
        let (requests, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kafka-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(unavailable)?;
        tracing::info!(writer = %prefix, "started the instance's writer");
        // A writer replaced ends once the partitions it held are let go.
        *instance = Some(InstanceWriter {
            requests: requests.clone(),
            lost: lost.clone(),
            thread,
        });
        Ok((requests, lost))
    }

    /// Lets `partition` go: no new append is accepted for it, and the ones already queued are
    /// committed (or refused) before this returns, so the next owner starts after them.
    pub fn release(&self, partition: i32) {
        let Some(owned) = self.owned().remove(&partition) else {
            return;
        };
        // Not written here any more, and not known to be written elsewhere yet.
        lock(&self.owners).remove(&partition);
        match owned.writer {
            Some(thread) => {
                drop(owned.requests);
                if thread.join().is_err() {
                    tracing::error!(partition, "the partition writer panicked");
                }
            }
            None => drain(&owned.requests, partition),
        }
        tracing::info!(partition, "released partition");
        self.publish();
    }

    /// Releases every partition, and stops the instance's writer.
    pub fn release_all(&self) {
        for partition in self.held_partitions() {
            self.release(partition);
        }
        if let Some(instance) = lock(&self.instance).take() {
            drop(instance.requests);
            if instance.thread.join().is_err() {
                tracing::error!("the instance's writer panicked");
            }
        }
    }

    /// The partitions written here (not those held by a writer that lost the right to write).
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

    /// The partitions taken over and not let go, fenced since or not.
    pub fn held_partitions(&self) -> Vec<i32> {
        self.owned().keys().copied().collect()
    }

    /// The writer queue and term of `partition`, when it is written here.
    pub fn writer(&self, partition: i32) -> Option<(mpsc::Sender<Message>, u64)> {
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

/// Has the writer of `requests` stop writing `partition`, and waits until what was queued for
/// it before has been committed or refused (at once if the writer has stopped).
fn drain(requests: &mpsc::Sender<Message>, partition: i32) {
    let (done, drained) = mpsc::sync_channel(1);
    if requests.send(Message::Release { partition, done }).is_ok() {
        let _ = drained.recv();
    }
}

/// Two transactional producers, `{prefix}-0` and `-1`, initialised: from here on no earlier
/// producer of either id can commit, and what one left open is aborted.
fn producer_pair(
    config: &KafkaLogConfig,
    prefix: &str,
) -> Result<([FutureProducer; 2], [String; 2]), LogError> {
    let ids = pair_ids(prefix);
    let first = transactional_producer(config, &ids[0])?;
    let second = transactional_producer(config, &ids[1])?;
    Ok(([first, second], ids))
}

/// A transactional producer of `id`, initialised.
fn transactional_producer(config: &KafkaLogConfig, id: &str) -> Result<FutureProducer, LogError> {
    let producer: FutureProducer = config
        .client()
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)
        .create()
        .map_err(unavailable)?;
    producer
        .init_transactions(config.timeout)
        .map_err(unavailable)?;
    Ok(producer)
}

/// Fences the writers of `partition` alone (fixed partitions, and every writer before the
/// instance writers): their ids are initialised, so none of them can commit to it any more,
/// whether or not it has a transaction open.
fn fence_partition_writers(config: &KafkaLogConfig, partition: i32) -> Result<(), LogError> {
    for id in pair_ids(&partition_writer_prefix(config, partition)) {
        drop(transactional_producer(config, &id)?);
    }
    Ok(())
}

/// The `transactional.id` prefix of `partition`'s own writer (fixed partitions).
fn partition_writer_prefix(config: &KafkaLogConfig, partition: i32) -> String {
    format!("{}-p{partition}", config.transactional_prefix)
}

/// The `transactional.id` prefix of the instance writers of the handle with `token`; an empty
/// `token` gives the part every instance writer's id starts with.
fn instance_writer_prefix(config: &KafkaLogConfig, token: &str) -> String {
    format!("{}-i{token}", config.transactional_prefix)
}

/// The ids of a writer's two producers.
fn pair_ids(prefix: &str) -> [String; 2] {
    [format!("{prefix}-0"), format!("{prefix}-1")]
}

/// The tokens of the writers' group's current members (in their `client.id`s).
fn live_tokens(
    consumer: &BaseConsumer<crate::reader::Quiet>,
    config: &KafkaLogConfig,
) -> Result<HashSet<String>, LogError> {
    let groups = consumer
        .fetch_group_list(Some(&config.transactional_prefix), config.timeout)
        .map_err(unavailable)?;
    Ok(groups
        .groups()
        .iter()
        .flat_map(|group| group.members())
        .filter_map(|member| crate::membership::token_of(member.client_id()))
        .map(str::to_owned)
        .collect())
}

/// Ends the transactions left open on `partition` by writers that stopped, before the
/// partition is read to its end and written here.
///
/// The partition's last stable offset (below which every transaction has ended) is compared
/// with its high watermark. While it is behind, some transaction is open there; if it still is
/// after [`ABANDONED_AFTER`], the records past the stable offset are read uncommitted, and
/// every `transactional.id` they name (the `alliance_writer` header) is initialised here, which
/// aborts its open transaction and fences it: ids of this log's writers (under its
/// transactional prefix) whose member has left the group. The writers of one partition, whose
/// records name none, were fenced before ([`fence_partition_writers`]).
pub(crate) fn end_abandoned_transactions(
    config: &KafkaLogConfig,
    partition: i32,
) -> Result<(), LogError> {
    let consumer = |isolation: &str| {
        config
            .client()
            .set(
                "group.id",
                format!("{}-rebuild", config.transactional_prefix),
            )
            .set("isolation.level", isolation)
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .create_with_context::<_, BaseConsumer<crate::reader::Quiet>>(crate::reader::Quiet)
            .map_err(unavailable)
    };
    let committed = consumer("read_committed")?;
    let stable = || {
        committed
            .fetch_watermarks(&config.topic, partition, config.timeout)
            .map(|(_, stable)| stable)
            .map_err(unavailable)
    };
    let uncommitted = consumer("read_uncommitted")?;
    let (_, high) = uncommitted
        .fetch_watermarks(&config.topic, partition, config.timeout)
        .map_err(unavailable)?;
    let settled = |within: Duration| -> Result<Option<i64>, LogError> {
        let deadline = Instant::now() + within;
        loop {
            let now = stable()?;
            if now >= high {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Ok(Some(now));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let Some(open_from) = settled(ABANDONED_AFTER)? else {
        return Ok(());
    };
    let mut writers = HashSet::new();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.topic, partition, Offset::Offset(open_from))
        .map_err(unavailable)?;
    uncommitted.assign(&assignment).map_err(unavailable)?;
    let deadline = Instant::now() + config.timeout;
    loop {
        if Instant::now() > deadline {
            return Err(LogError::Unavailable(format!(
                "reading the open transactions of partition {partition} of {} timed out",
                config.topic
            )));
        }
        match uncommitted.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => return Err(unavailable(error)),
            Some(Ok(message)) => {
                let writer = message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|header| header.key == WRITER)
                        .and_then(|header| header.value)
                        .and_then(|value| std::str::from_utf8(value).ok())
                        .map(str::to_owned)
                });
                writers.extend(writer);
                if message.offset() + 1 >= high {
                    break;
                }
            }
        }
    }
    // A current member's transaction is its own to end (its markers may only be slow); this
    // one waits for it below. A header naming an id outside this log's writers (a record from
    // elsewhere) is not acted on.
    let live = live_tokens(&committed, config)?;
    let ours = instance_writer_prefix(config, "");
    writers.retain(|writer| {
        writer.starts_with(&ours)
            && !live.iter().any(|token| {
                writer.starts_with(&format!("{}-", instance_writer_prefix(config, token)))
            })
    });
    for writer in &writers {
        tracing::warn!(
            partition,
            writer,
            "ending a transaction its writer left open"
        );
        // Initialising the id aborts its open transaction; the producer is not used.
        drop(transactional_producer(config, writer)?);
    }
    match settled(config.timeout)? {
        None => Ok(()),
        Some(stable) => Err(LogError::Unavailable(format!(
            "partition {partition} of {} still has a transaction open at offset {stable}",
            config.topic
        ))),
    }
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
