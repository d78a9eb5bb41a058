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

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Two transactional producers, used in turn: the broker finishes a committed transaction
    /// (writes its markers) after answering the commit, and refuses the next transaction of the
    /// same `transactional.id` until then (the client retries after 20 ms). The other id's next
    /// transaction need not wait. Its records still follow the previous ones: it begins only
    /// once they were acknowledged and committed.
    pub producers: [FutureProducer; 2],
    /// The producers' `transactional.id`s.
    pub ids: [String; 2],
    /// Index of the producer for the next transaction.
    pub turn: usize,
    /// The partitions it writes now.
    pub partitions: HashSet<i32>,
    pub heads: HashMap<PlanId, Version>,
    pub shared: Arc<Shared>,
    pub timeout: Duration,
    pub max_batch: usize,
    /// With the writers' group: each transaction commits through it, so the broker refuses the
    /// commit of a writer the group has dropped since.
    pub group: Option<GroupSlot>,
    /// Set once the producers are fenced or fail fatally: nothing is written here any more.
    pub lost: Option<String>,
    /// Told at once for each partition it wrote when `lost` is set, so the partition stops
    /// being routed here (no more appends, no more reads of what this instance last knew)
    /// before the group revokes it.
    pub on_lost: Box<dyn Fn(i32) + Send>,
    pub metrics: alliance_eventlog::CommitMetrics,
}

impl Writer {
    pub fn run(mut self, messages: Receiver<Message>) {
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
                    self.partitions.insert(partition);
                    self.heads.extend(heads);
                }
                Message::Release { partition, done } => {
                    self.partitions.remove(&partition);
                    let count = self.shared.partitions;
                    self.heads
                        .retain(|&plan_id, _| partition_of(plan_id, count) != partition);
                    let _ = done.send(());
                }
                Message::Append(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.max_batch {
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
                    self.commit(batch);
                }
            }
        }
        // Every handle is gone: leave no transaction open.
        for producer in &self.producers {
            let _ = producer.flush(self.timeout);
        }
    }

    fn producer(&self) -> &FutureProducer {
        &self.producers[self.turn]
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
        // Taken once a transaction: the group's generation as of now.
        let metadata = self.group.as_ref().map(|group| lock(group).clone());
        let refusal = self.lost.clone().or_else(|| {
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
        // Check every request against the heads as the batch leaves them.
        let mut heads: HashMap<PlanId, Version> = HashMap::new();
        let mut accepted = Vec::new();
        let mut seen_commands = HashSet::new();
        for request in batch {
            let head = heads
                .get(&request.plan_id)
                .or_else(|| self.heads.get(&request.plan_id))
                .copied()
                .unwrap_or(0);
            let command_id = request.events[0].command_id.clone();
            let answer = if !self.partitions.contains(&request.partition) {
                Err(LogError::Unavailable(format!(
                    "partition {} is not written here any more; retry",
                    request.partition
                )))
            } else if let Some(record) = self.command_record(&command_id) {
                Err(LogError::DuplicateCommand { command_id, record })
            } else if !seen_commands.insert(command_id.clone()) {
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
        if accepted.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let metadata = metadata.flatten();
        let result = self.transaction(&accepted, metadata.as_deref());
        if result.is_ok() {
            let events = accepted.iter().map(|(_, r)| r.events.len() as u64).sum();
            self.metrics
                .record(accepted.len() as u64, events, started.elapsed());
        }
        let producer = self.producer().clone();
        self.turn = (self.turn + 1) % self.producers.len();
        match result {
            Ok(next_offsets) => self.index(accepted, heads, &next_offsets),
            Err(error) => {
                // A fenced producer is in a fatal state; the error that surfaces first may be
                // only a purged delivery, so ask the client itself.
                let fatal = matches!(&error, KafkaError::Transaction(e) if e.is_fatal())
                    || producer.client().fatal_error().is_some();
                // The group refused the offsets: it has moved on without this member (dropped
                // for a silence, or a rebalance this instance has not taken part in yet).
                let refused = matches!(&error, KafkaError::Transaction(e) if matches!(
                    e.code(),
                    RDKafkaErrorCode::IllegalGeneration
                        | RDKafkaErrorCode::UnknownMemberId
                        | RDKafkaErrorCode::FencedInstanceId
                ));
                if refused {
                    tracing::warn!(writer = %self.name, %error, "the writers' group refused the commit");
                    let _ = producer.abort_transaction(self.timeout);
                    if let (Some(slot), Some(used)) = (&self.group, &metadata) {
                        let mut slot = lock(slot);
                        // Unless a rebalance has given newer metadata meanwhile.
                        if slot.as_ref().is_some_and(|now| Arc::ptr_eq(now, used)) {
                            *slot = None;
                        }
                    }
                    self.lost = Some(format!(
                        "the writers' group no longer gives {} to this instance: {error}",
                        self.name
                    ));
                    for &partition in &self.partitions {
                        (self.on_lost)(partition);
                    }
                } else if fatal {
                    tracing::error!(writer = %self.name, %error, "fenced: another writer took over");
                    let cause = producer
                        .client()
                        .fatal_error()
                        .map_or_else(|| error.to_string(), |(_, reason)| reason);
                    self.lost = Some(format!(
                        "{} was taken over by another writer: {cause}",
                        self.name
                    ));
                    for &partition in &self.partitions {
                        (self.on_lost)(partition);
                    }
                } else {
                    tracing::warn!(writer = %self.name, %error, "transaction failed");
                    let _ = producer.abort_transaction(self.timeout);
                }
                let reason = self.lost.clone().unwrap_or_else(|| {
                    format!("kafka transaction of {} failed: {error}", self.name)
                });
                for (_, request) in accepted {
                    let _ = request
                        .respond
                        .send(Err(LogError::Unavailable(reason.clone())));
                }
            }
        }
    }

    fn command_record(&self, command_id: &str) -> Option<alliance_eventlog::CommandRecord> {
        let index = lock(&self.shared.index);
        index.command(command_id)
    }

    /// Produces every event of the accepted requests in one transaction and commits it.
    /// Returns, for each partition written, the offset after the last record written there.
    fn transaction(
        &self,
        accepted: &[(Version, AppendRequest)],
        group: Option<&ConsumerGroupMetadata>,
    ) -> Result<HashMap<i32, i64>, KafkaError> {
        let producer = self.producer();
        let writer = self.ids[self.turn].as_bytes();
        producer.begin_transaction()?;
        let mut deliveries = Vec::new();
        for (head, request) in accepted {
            let key = request.plan_id.to_string();
            for (event, version) in request.events.iter().zip(head + 1..) {
                let headers = record::headers(
                    request.plan_id,
                    version,
                    event,
                    request.traceparent.as_deref(),
                    self.shared.partitions,
                )
                .insert(Header {
                    key: WRITER,
                    value: Some(writer),
                });
                let record = FutureRecord::to(&self.shared.topic)
                    .partition(request.partition)
                    .key(&key)
                    .payload(&event.payload)
                    .headers(headers);
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
            }
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
            // generation, and the transaction cannot commit without them.
            let mut offsets = TopicPartitionList::new();
            for (&partition, &next) in &next_offsets {
                offsets.add_partition_offset(
                    &self.shared.topic,
                    partition,
                    Offset::Offset(next),
                )?;
            }
            producer.send_offsets_to_transaction(&offsets, metadata, self.timeout)?;
        }
        // commit_transaction flushes first, and while any message still counts as in flight it
        // sleeps a whole 100 ms poll. A message stops counting only once the producer's own
        // thread has handled its delivery report, a moment after the future above resolved.
        let settle = std::time::Instant::now() + Duration::from_secs(1);
        while producer.in_flight_count() > 0 && std::time::Instant::now() < settle {
            std::thread::yield_now();
        }
        producer.commit_transaction(self.timeout)?;
        Ok(next_offsets)
    }

    /// After the commit: index the events and answer each request.
    fn index(
        &mut self,
        accepted: Vec<(Version, AppendRequest)>,
        heads: HashMap<PlanId, Version>,
        next_offsets: &HashMap<i32, i64>,
    ) {
        let mut index = lock(&self.shared.index);
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
        self.heads.extend(heads);
        self.shared.indexed.send_replace(last);
    }
}
