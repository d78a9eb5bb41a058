//! The writer threads: each batches the appends queued for the partitions it writes into one
//! Kafka transaction, so commands arriving together share a round trip.
//!
//! With the writers' group (the default) an instance has one writer for every partition the
//! group gives it, so one transaction carries the queued commands of all of them. Its
//! `transactional.id`s are the instance's own; a writer the group has dropped is fenced by the
//! group's generation (each transaction commits the offsets of the partitions it wrote through
//! the group's metadata, KIP-447), and a transaction it left open is ended by the next owner
//! (`partitions::end_abandoned_transactions`). With fixed partitions each partition has its own
//! writer, fenced through a `transactional.id` that names the partition.
//!
//! A writer is two threads: one produces each transaction (its records, then the group's
//! offsets) and hands it to the other, which commits it, indexes it and answers its appends.
//! The next transaction is produced, with the other of the writer's two producers, while the
//! last one commits; it is committed only after it, and aborted if it failed.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use alliance_eventlog::{Appended, LogError, NewEvent, PlanId, StoredEvent, Version};
use alliance_stdx::lock;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Header;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};

use crate::index::Index;
use crate::{partition_of, record};

pub(crate) struct AppendRequest {
    pub partition: i32,
    pub plan_id: PlanId,
    pub expected: Version,
    pub events: Vec<NewEvent>,
    /// The append's producer span, when traced.
    pub traceparent: Option<String>,
    pub respond: oneshot::Sender<Result<Appended, LogError>>,
}

/// What a writer is told, in order.
pub(crate) enum Message {
    Append(AppendRequest),
    /// Write `partition` from now on; its plans stand at `heads`.
    Own {
        partition: i32,
        heads: HashMap<PlanId, Version>,
    },
    /// Stop writing `partition` once every append queued before this is committed or refused;
    /// `done` is told then.
    Release {
        partition: i32,
        done: std::sync::mpsc::SyncSender<()>,
    },
}

/// The writers' group's metadata (member id and generation) as of the last rebalance this
/// instance took part in, or `None` while it is not a member. Kept from the rebalance
/// callbacks, where the generation is known valid: the consumer's own metadata has no
/// generation while it rejoins, and the broker accepts a transaction's offsets without one.
pub(crate) type GroupSlot = Arc<Mutex<Option<Arc<ConsumerGroupMetadata>>>>;

/// State shared by the writers and the readers of one log.
pub(crate) struct Shared {
    pub index: Mutex<Index>,
    /// The last indexed position, for subscriptions.
    pub indexed: watch::Sender<u64>,
    pub topic: String,
    /// The topic's partition count when this handle opened it: what plans are mapped by.
    pub partitions: u32,
    /// Why appends are refused, once the topic's partition count is found changed.
    pub refusal: Mutex<Option<String>>,
}

/// The header naming the `transactional.id` a record was written with, so that the next owner
/// of its partition can end a transaction its writer left open.
pub(crate) const WRITER: &str = "alliance_writer";

pub(crate) struct Writer {
    /// What it writes, for logs and errors: `partition 3`, or `the instance's partitions`.
    pub name: String,
    /// Two transactional producers, used in turn: while one commits, the other produces the
    /// next transaction. The broker also refuses a `transactional.id`'s next transaction until
    /// it has written the last one's markers, a moment after answering its commit.
    pub producers: [FutureProducer; 2],
    /// The producers' `transactional.id`s.
    pub ids: [String; 2],
    /// The partitions it writes from the start (more are given by [`Message::Own`]).
    pub partitions: HashSet<i32>,
    /// Each plan's head as the transactions produced so far leave it (committed or not).
    pub heads: HashMap<PlanId, Version>,
    pub shared: Arc<Shared>,
    pub timeout: Duration,
    pub max_batch: usize,
    /// With the writers' group: each transaction commits through it, so the broker refuses the
    /// commit of a writer the group has dropped since.
    pub group: Option<GroupSlot>,
    /// Told at once for each partition it wrote when it may no longer write, so the partition
    /// stops being routed here (no more appends, no more reads of what this instance last
    /// knew) before the group revokes it.
    pub on_lost: Arc<dyn Fn(i32) + Send + Sync>,
    pub metrics: alliance_eventlog::CommitMetrics,
}

/// Where the transactions handed to the committing thread stand.
#[derive(Default)]
struct Pipeline {
    state: Mutex<PipelineState>,
    changed: Condvar,
}

#[derive(Default)]
struct PipelineState {
    /// The number of the last transaction whose commit has ended, committed or not.
    ended: u64,
    /// Set when a commit failed: the transactions produced after it are aborted, and the
    /// heads are read again from what was committed.
    failed: bool,
    /// Why nothing is written any more: the producers were fenced, or a transaction's outcome
    /// is unknown.
    lost: Option<String>,
    /// Commands in transactions produced and not yet ended.
    pending: HashSet<String>,
    /// The partitions the writer writes now.
    partitions: HashSet<i32>,
}

impl PipelineState {
    /// Nothing may be written any more, for `reason`: the partitions stop being routed here
    /// before any append is answered.
    fn lose(&mut self, reason: String, on_lost: &(dyn Fn(i32) + Send + Sync)) {
        for &partition in &self.partitions {
            on_lost(partition);
        }
        self.lost = Some(reason);
    }
}

impl Pipeline {
    fn wait_until(
        &self,
        done: impl Fn(&PipelineState) -> bool,
    ) -> std::sync::MutexGuard<'_, PipelineState> {
        let mut state = lock(&self.state);
        while !done(&state) {
            state = alliance_stdx::wait(&self.changed, state);
        }
        state
    }
}

/// A transaction produced, waiting for its commit.
struct Produced {
    number: u64,
    turn: usize,
    accepted: Vec<(Version, AppendRequest)>,
    next_offsets: HashMap<i32, i64>,
    started: Instant,
}

/// What ended a transaction that did not commit, and what it means for the writer.
struct Failure {
    error: KafkaError,
    /// Why nothing is written any more: the producers were fenced, or the transaction's
    /// outcome is unknown.
    lost: Option<String>,
}

impl Failure {
    /// What the appends of the transaction are answered: why the writer may no longer write,
    /// or the error.
    fn reason(&self, name: &str) -> String {
        self.lost
            .clone()
            .unwrap_or_else(|| format!("kafka transaction of {name} failed: {}", self.error))
    }
}

/// The producing half of a writer.
struct Producing {
    writer: Writer,
    pipeline: Arc<Pipeline>,
    /// The number of the last transaction handed over, and of the last one of each producer.
    handed: u64,
    last_of: [u64; 2],
    turn: usize,
}

impl Writer {
    pub fn run(mut self, messages: Receiver<Message>) {
        let pipeline = Arc::new(Pipeline::default());
        lock(&pipeline.state).partitions = std::mem::take(&mut self.partitions);
        let (jobs, queue) = std::sync::mpsc::channel::<Produced>();
        let committer = Committer {
            name: self.name.clone(),
            producers: self.producers.clone(),
            shared: self.shared.clone(),
            timeout: self.timeout,
            pipeline: pipeline.clone(),
            metrics: self.metrics.clone(),
            on_lost: self.on_lost.clone(),
        };
        let committing = std::thread::Builder::new()
            .name(format!(
                "{}-commit",
                std::thread::current().name().unwrap_or("kafka-writer")
            ))
            .spawn(move || committer.run(queue));
        let Ok(committing) = committing else {
            tracing::error!("cannot start a committing thread");
            return;
        };
        let mut producing = Producing {
            writer: self,
            pipeline,
            handed: 0,
            last_of: [0; 2],
            turn: 0,
        };
        producing.run(&messages, &jobs);
        drop(jobs);
        let _ = committing.join();
        // Every handle is gone: leave no transaction open.
        for producer in &producing.writer.producers {
            let _ = producer.flush(producing.writer.timeout);
        }
    }
}

impl Producing {
    fn run(&mut self, messages: &Receiver<Message>, jobs: &std::sync::mpsc::Sender<Produced>) {
        let mut next = None;
        loop {
            let message = match next.take() {
                Some(message) => message,
                None => match messages.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                },
            };
            match message {
                Message::Own { partition, heads } => {
                    lock(&self.pipeline.state).partitions.insert(partition);
                    self.writer.heads.extend(heads);
                }
                Message::Release { partition, done } => {
                    // What was produced for it commits (or not) before the next owner reads it.
                    let handed = self.handed;
                    let mut state = self.pipeline.wait_until(|state| state.ended >= handed);
                    state.partitions.remove(&partition);
                    drop(state);
                    let count = self.writer.shared.partitions;
                    self.writer
                        .heads
                        .retain(|&plan_id, _| partition_of(plan_id, count) != partition);
                    let _ = done.send(());
                }
                Message::Append(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.writer.max_batch {
                        match messages.try_recv() {
                            Ok(Message::Append(request)) => batch.push(request),
                            // Ownership changes after the appends queued before it.
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                    self.produce(batch, jobs);
                }
            }
        }
    }

    /// Refuses the batch if nothing may be written, checks each append against the heads,
    /// and produces those accepted as one transaction, handed to the committing thread.
    fn produce(&mut self, batch: Vec<AppendRequest>, jobs: &std::sync::mpsc::Sender<Produced>) {
        let lost = self.settle();
        // Taken once a transaction: the group's generation as of now.
        let metadata = self.writer.group.as_ref().map(|group| lock(group).clone());
        let refusal = lost.or_else(|| {
            matches!(metadata, Some(None))
                .then(|| "this instance is not a member of the writers' group; retry".to_owned())
        });
        if let Some(reason) = refusal {
            for request in batch {
                let _ = request
                    .respond
                    .send(Err(LogError::Unavailable(reason.clone())));
            }
            return;
        }
        let accepted = self.accept(batch);
        if accepted.is_empty() {
            return;
        }
        // This producer's last transaction has ended (its commit can take longer than the
        // other's production).
        let last = self.last_of[self.turn];
        drop(self.pipeline.wait_until(|state| state.ended >= last));
        let mut metadata = metadata.flatten();
        let started = Instant::now();
        let producer = &self.writer.producers[self.turn];
        let deadline = started + self.writer.timeout;
        let produced = loop {
            let error = match self.transaction(&accepted, metadata.as_deref()) {
                Ok(next_offsets) => break Ok(next_offsets),
                Err(error) => error,
            };
            let refused = refused(&error);
            let failure = failure(&self.writer.name, self.writer.timeout, producer, error);
            // A rebalance moves the group's generation before it gives this member the new
            // one: the same appends go again with it, once it has.
            if refused
                && failure.lost.is_none()
                && let Some(newer) = self.newer_metadata(metadata.as_ref(), deadline)
            {
                metadata = Some(newer);
                continue;
            }
            break Err(failure);
        };
        match produced {
            Ok(next_offsets) => {
                {
                    let mut state = lock(&self.pipeline.state);
                    for (_, request) in &accepted {
                        state.pending.insert(request.events[0].command_id.clone());
                    }
                }
                for (head, request) in &accepted {
                    self.writer
                        .heads
                        .insert(request.plan_id, head + request.events.len() as Version);
                }
                self.handed += 1;
                self.last_of[self.turn] = self.handed;
                let job = Produced {
                    number: self.handed,
                    turn: self.turn,
                    accepted,
                    next_offsets,
                    started,
                };
                if let Err(unsent) = jobs.send(job) {
                    answer_unavailable(unsent.0.accepted, "the Kafka writer has stopped");
                }
            }
            Err(failure) => {
                let reason = failure.reason(&self.writer.name);
                if let Some(lost) = failure.lost {
                    lock(&self.pipeline.state).lose(lost, &*self.writer.on_lost);
                    self.pipeline.changed.notify_all();
                }
                answer_unavailable(accepted, &reason);
            }
        }
        self.turn = (self.turn + 1) % self.writer.producers.len();
    }

    /// The group's metadata once a rebalance has replaced `used` (refused by the group), or
    /// `None` if this instance is no longer a member, the writer may no longer write, or none
    /// came by `deadline`.
    fn newer_metadata(
        &self,
        used: Option<&Arc<ConsumerGroupMetadata>>,
        deadline: Instant,
    ) -> Option<Arc<ConsumerGroupMetadata>> {
        let slot = self.writer.group.as_ref()?;
        loop {
            if lock(&self.pipeline.state).lost.is_some() {
                return None;
            }
            match (lock(slot).clone(), used) {
                (Some(now), Some(used)) if !Arc::ptr_eq(&now, used) => return Some(now),
                (None, _) => return None,
                _ => {}
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Rebalances take milliseconds to seconds; the appends queued meanwhile wait.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// After a failed commit, waits for the transactions produced after it to be aborted and
    /// reads the heads again from what was committed. Returns why nothing may be written, if so.
    fn settle(&mut self) -> Option<String> {
        let mut state = lock(&self.pipeline.state);
        if state.failed {
            drop(state);
            let handed = self.handed;
            state = self.pipeline.wait_until(|state| state.ended >= handed);
            state.failed = false;
            let count = self.writer.shared.partitions;
            let partitions = &state.partitions;
            self.writer.heads = lock(&self.writer.shared.index)
                .heads(|plan_id| partitions.contains(&partition_of(plan_id, count)));
        }
        state.lost.clone()
    }

    /// The appends of `batch` that can be written, each with its plan's head before it; the
    /// others are answered.
    fn accept(&self, batch: Vec<AppendRequest>) -> Vec<(Version, AppendRequest)> {
        let mut heads: HashMap<PlanId, Version> = HashMap::new();
        let mut accepted = Vec::new();
        let mut seen_commands = HashSet::new();
        let state = lock(&self.pipeline.state);
        for request in batch {
            let head = heads
                .get(&request.plan_id)
                .or_else(|| self.writer.heads.get(&request.plan_id))
                .copied()
                .unwrap_or(0);
            let command_id = request.events[0].command_id.clone();
            let answer = if !state.partitions.contains(&request.partition) {
                Err(LogError::Unavailable(format!(
                    "partition {} is not written here any more; retry",
                    request.partition
                )))
            } else if let Some(record) = self.command_record(&command_id) {
                Err(LogError::DuplicateCommand { command_id, record })
            } else if state.pending.contains(&command_id)
                || !seen_commands.insert(command_id.clone())
            {
                Err(LogError::Unavailable(format!(
                    "command {command_id} is being appended already; retry"
                )))
            } else if head != request.expected {
                Err(LogError::VersionConflict {
                    plan_id: request.plan_id,
                    expected: request.expected,
                    actual: head,
                })
            } else {
                heads.insert(request.plan_id, head + request.events.len() as Version);
                accepted.push((head, request));
                continue;
            };
            let _ = request.respond.send(answer);
        }
        accepted
    }

    fn command_record(&self, command_id: &str) -> Option<alliance_eventlog::CommandRecord> {
        let index = lock(&self.writer.shared.index);
        index.command(command_id)
    }

    /// Begins a transaction and produces every event of the accepted requests in it, then
    /// (with the group) the written partitions' offsets. Returns, for each partition written,
    /// the offset after the last record written there.
    fn transaction(
        &self,
        accepted: &[(Version, AppendRequest)],
        group: Option<&ConsumerGroupMetadata>,
    ) -> Result<HashMap<i32, i64>, KafkaError> {
        let writer = &self.writer;
        let producer = &writer.producers[self.turn];
        let id = writer.ids[self.turn].as_bytes();
        // Every record is made before the first is sent: the first send has the client add its
        // partition to the transaction at once, and the partitions sent to within that moment
        // join the same request; a partition sent to later costs another round trip first.
        let keys: Vec<String> = accepted
            .iter()
            .map(|(_, request)| request.plan_id.to_string())
            .collect();
        let mut records = Vec::new();
        for ((head, request), key) in accepted.iter().zip(&keys) {
            for (event, version) in request.events.iter().zip(head + 1..) {
                let headers = record::headers(
                    request.plan_id,
                    version,
                    event,
                    request.traceparent.as_deref(),
                    writer.shared.partitions,
                )
                .insert(Header {
                    key: WRITER,
                    value: Some(id),
                });
                records.push(
                    FutureRecord::to(&writer.shared.topic)
                        .partition(request.partition)
                        .key(key)
                        .payload(&event.payload)
                        .headers(headers),
                );
            }
        }
        producer.begin_transaction()?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        let mut next_offsets = HashMap::new();
        for future in deliveries {
            let delivery = futures::executor::block_on(future)
                .map_err(|_| KafkaError::Canceled)?
                .map_err(|(error, _)| error)?;
            let next = next_offsets.entry(delivery.partition).or_insert(0);
            *next = (*next).max(delivery.offset + 1);
        }
        if let Some(metadata) = group {
            // The group's coordinator refuses these offsets from a member of an earlier
            // generation, and the transaction cannot commit without them. Sent once the records
            // are acknowledged: offsets it accepted mean records already in their partitions,
            // where the next owner finds the transaction open.
            let mut offsets = TopicPartitionList::new();
            for (&partition, &next) in &next_offsets {
                offsets.add_partition_offset(
                    &writer.shared.topic,
                    partition,
                    Offset::Offset(next),
                )?;
            }
            producer.send_offsets_to_transaction(&offsets, metadata, writer.timeout)?;
        }
        Ok(next_offsets)
    }
}

/// The committing half of a writer.
struct Committer {
    name: String,
    producers: [FutureProducer; 2],
    shared: Arc<Shared>,
    timeout: Duration,
    pipeline: Arc<Pipeline>,
    metrics: alliance_eventlog::CommitMetrics,
    on_lost: Arc<dyn Fn(i32) + Send + Sync>,
}

impl Committer {
    fn run(self, queue: Receiver<Produced>) {
        for job in queue {
            let producer = &self.producers[job.turn];
            let earlier_failed = {
                let state = lock(&self.pipeline.state);
                state.failed || state.lost.is_some()
            };
            let commands: Vec<String> = job
                .accepted
                .iter()
                .map(|(_, request)| request.events[0].command_id.clone())
                .collect();
            if earlier_failed {
                // Its records follow a transaction that did not commit.
                let _ = producer.abort_transaction(self.timeout);
                let reason = lock(&self.pipeline.state).lost.clone().unwrap_or_else(|| {
                    format!("an earlier transaction of {} failed; retry", self.name)
                });
                answer_unavailable(job.accepted, &reason);
            } else {
                match commit(producer, self.timeout) {
                    Ok(()) => {
                        let events = job
                            .accepted
                            .iter()
                            .map(|(_, r)| r.events.len() as u64)
                            .sum();
                        self.metrics.record(
                            job.accepted.len() as u64,
                            events,
                            job.started.elapsed(),
                        );
                        index(&self.shared, job.accepted, &job.next_offsets);
                    }
                    Err(error) => {
                        let failure = failure(&self.name, self.timeout, producer, error);
                        let reason = failure.reason(&self.name);
                        {
                            let mut state = lock(&self.pipeline.state);
                            state.failed = true;
                            if let Some(lost) = failure.lost {
                                state.lose(lost, &*self.on_lost);
                            }
                        }
                        answer_unavailable(job.accepted, &reason);
                    }
                }
            }
            let mut state = lock(&self.pipeline.state);
            for command in &commands {
                state.pending.remove(command);
            }
            state.ended = job.number;
            drop(state);
            self.pipeline.changed.notify_all();
        }
    }
}

/// Commits the producer's transaction. A commit that timed out may still be under way: it is
/// resumed (the client's answer to a retriable error), a few times.
fn commit(producer: &FutureProducer, timeout: Duration) -> Result<(), KafkaError> {
    // commit_transaction flushes first, and while any message still counts as in flight it
    // sleeps a whole 100 ms poll. A message stops counting only once the producer's own
    // thread has handled its delivery report, a moment after its delivery resolved.
    let settle = Instant::now() + Duration::from_secs(1);
    while producer.in_flight_count() > 0 && Instant::now() < settle {
        std::thread::yield_now();
    }
    let mut resumed = 0;
    loop {
        match producer.commit_transaction(timeout) {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && resumed < 3 => resumed += 1,
            done => return done,
        }
    }
}

/// Whether the group refused the transaction's offsets: its generation has moved on without
/// this member's knowing (a rebalance it has not taken part in yet, or it was dropped).
fn refused(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if matches!(
        e.code(),
        RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::FencedInstanceId
    ))
}

/// Ends a transaction that failed, and says whether the writer may still write.
///
/// - Fenced (a fatal error): the writer may not write any more.
/// - Otherwise aborted (a transaction the group refused among them: the writer sends the same
///   appends again once a rebalance gives it the group's new metadata). An abort that fails
///   leaves the transaction's outcome unknown (a commit that timed out may still complete):
///   the writer may not write any more either, so that its partitions are read again from
///   Kafka before anything else is written or answered.
fn failure(name: &str, timeout: Duration, producer: &FutureProducer, error: KafkaError) -> Failure {
    // A fenced producer is in a fatal state; the error that surfaces first may be only a
    // purged delivery, so ask the client itself, and again once the abort has answered.
    let fatal = |aborted: Option<&KafkaError>| {
        matches!(&error, KafkaError::Transaction(e) if e.is_fatal())
            || matches!(aborted, Some(KafkaError::Transaction(e)) if e.is_fatal())
            || producer.client().fatal_error().is_some()
    };
    let aborted = if fatal(None) {
        None
    } else {
        producer.abort_transaction(timeout).err()
    };
    let lost = if fatal(aborted.as_ref()) {
        tracing::error!(writer = %name, %error, "fenced: another writer took over");
        let cause = producer
            .client()
            .fatal_error()
            .map_or_else(|| error.to_string(), |(_, reason)| reason);
        Some(format!("{name} was taken over by another writer: {cause}"))
    } else if let Some(abort) = aborted {
        tracing::error!(writer = %name, %error, %abort, "a transaction's outcome is unknown");
        Some(format!(
            "the outcome of a transaction of {name} is unknown ({error}; its abort: {abort}); \
             retry with the same command id"
        ))
    } else {
        None
    };
    if lost.is_none() {
        if refused(&error) {
            tracing::warn!(writer = %name, %error, "the writers' group refused the commit");
        } else {
            tracing::warn!(writer = %name, %error, "transaction failed");
        }
    }
    Failure { error, lost }
}

fn answer_unavailable(accepted: Vec<(Version, AppendRequest)>, reason: &str) {
    for (_, request) in accepted {
        let _ = request
            .respond
            .send(Err(LogError::Unavailable(reason.to_owned())));
    }
}

/// After the commit: index the events and answer each request.
fn index(
    shared: &Shared,
    accepted: Vec<(Version, AppendRequest)>,
    next_offsets: &HashMap<i32, i64>,
) {
    let mut index = lock(&shared.index);
    for (&partition, &next) in next_offsets {
        index.indexed_up_to(partition, next);
    }
    for (head, request) in accepted {
        for (event, version) in request.events.iter().zip(head + 1..) {
            let position = index.next_position();
            // The writer's own index is read by position (no offset); readers of the whole
            // topic (`TopicReader`) carry offsets.
            index.push(StoredEvent {
                trace_context: request.traceparent.clone(),
                ..event.clone().stored(request.plan_id, version, position)
            });
        }
        let appended = Appended {
            first_version: head + 1,
            last_version: head + request.events.len() as Version,
            last_position: index.next_position() - 1,
        };
        let _ = request.respond.send(Ok(appended));
    }
    let last = index.next_position() - 1;
    drop(index);
    shared.indexed.send_replace(last);
}
