//! One writer thread per owned partition: it batches the queued appends of its partition into
//! one Kafka transaction, so commands arriving together share a round trip, and it is fenced
//! when another instance takes the partition over (`transactional.id` is tied to the partition).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alliance_eventlog::{Appended, LogError, NewEvent, PlanId, StoredEvent, Version};
use alliance_stdx::lock;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::{oneshot, watch};

use crate::index::Index;
use crate::record;

pub(crate) struct AppendRequest {
    pub plan_id: PlanId,
    pub expected: Version,
    pub events: Vec<NewEvent>,
    /// The append's producer span, when traced.
    pub traceparent: Option<String>,
    pub respond: oneshot::Sender<Result<Appended, LogError>>,
}

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

pub(crate) struct PartitionWriter {
    pub partition: i32,
    /// Two transactional producers of the partition, used in turn: the broker finishes a
    /// committed transaction (writes its markers) after answering the commit, and refuses the
    /// next transaction of the same `transactional.id` until then (the client retries after
    /// 20 ms). The other id's next transaction need not wait. Its records still follow the
    /// previous ones: it begins only once they were acknowledged and committed.
    pub producers: [FutureProducer; 2],
    /// Index of the producer for the next transaction.
    pub turn: usize,
    pub heads: HashMap<PlanId, Version>,
    pub shared: Arc<Shared>,
    pub timeout: Duration,
    pub max_batch: usize,
    /// Set once the producer is fenced or fails fatally: the partition is no longer ours.
    pub lost: Option<String>,
    /// Told at once when `lost` is set, so the partition stops being routed here (no more
    /// appends, no more reads of what this instance last knew) before the group revokes it.
    pub on_lost: Box<dyn Fn() + Send>,
    pub metrics: alliance_eventlog::CommitMetrics,
}

impl PartitionWriter {
    pub fn run(mut self, requests: Receiver<AppendRequest>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit(batch);
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
        if let Some(reason) = &self.lost {
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
        let mut seen_commands = std::collections::HashSet::new();
        for request in batch {
            let head = heads
                .get(&request.plan_id)
                .or_else(|| self.heads.get(&request.plan_id))
                .copied()
                .unwrap_or(0);
            let command_id = request.events[0].command_id.clone();
            let duplicate = self.command_record(&command_id);
            if let Some(record) = duplicate {
                let _ = request
                    .respond
                    .send(Err(LogError::DuplicateCommand { command_id, record }));
            } else if !seen_commands.insert(command_id.clone()) {
                let _ = request.respond.send(Err(LogError::Unavailable(format!(
                    "command {command_id} is being appended already; retry"
                ))));
            } else if head != request.expected {
                let _ = request.respond.send(Err(LogError::VersionConflict {
                    plan_id: request.plan_id,
                    expected: request.expected,
                    actual: head,
                }));
            } else {
                heads.insert(request.plan_id, head + request.events.len() as Version);
                accepted.push((head, request));
            }
        }
        if accepted.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let result = self.transaction(&accepted);
        if result.is_ok() {
            let events = accepted.iter().map(|(_, r)| r.events.len() as u64).sum();
            self.metrics
                .record(accepted.len() as u64, events, started.elapsed());
        }
        let producer = self.producer().clone();
        self.turn = (self.turn + 1) % self.producers.len();
        match result {
            Ok(next_offset) => self.index(accepted, heads, next_offset),
            Err(error) => {
                // A fenced producer is in a fatal state; the error that surfaces first may be
                // only a purged delivery, so ask the client itself.
                let fatal = matches!(&error, KafkaError::Transaction(e) if e.is_fatal())
                    || producer.client().fatal_error().is_some();
                if fatal {
                    tracing::error!(partition = self.partition, %error, "fenced: this instance no longer owns the partition");
                    let cause = producer
                        .client()
                        .fatal_error()
                        .map_or_else(|| error.to_string(), |(_, reason)| reason);
                    self.lost = Some(format!(
                        "partition {} was taken over by another writer: {cause}",
                        self.partition
                    ));
                    (self.on_lost)();
                } else {
                    tracing::warn!(partition = self.partition, %error, "transaction failed");
                    let _ = producer.abort_transaction(self.timeout);
                }
                let reason = self.lost.clone().unwrap_or_else(|| {
                    format!(
                        "kafka transaction on partition {} failed: {error}",
                        self.partition
                    )
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
    /// Returns the offset after the last record written.
    fn transaction(&self, accepted: &[(Version, AppendRequest)]) -> Result<i64, KafkaError> {
        let producer = self.producer();
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
                );
                let record = FutureRecord::to(&self.shared.topic)
                    .partition(self.partition)
                    .key(&key)
                    .payload(&event.payload)
                    .headers(headers);
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
            }
        }
        let mut next_offset = 0;
        for future in deliveries {
            let delivery = futures::executor::block_on(future)
                .map_err(|_| KafkaError::Canceled)?
                .map_err(|(error, _)| error)?;
            next_offset = next_offset.max(delivery.offset + 1);
        }
        // commit_transaction flushes first, and while any message still counts as in flight it
        // sleeps a whole 100 ms poll. A message stops counting only once the producer's own
        // thread has handled its delivery report, a moment after the future above resolved.
        let settle = std::time::Instant::now() + Duration::from_secs(1);
        while producer.in_flight_count() > 0 && std::time::Instant::now() < settle {
            std::thread::yield_now();
        }
        producer.commit_transaction(self.timeout)?;
        Ok(next_offset)
    }

    /// After the commit: index the events and answer each request.
    fn index(
        &mut self,
        accepted: Vec<(Version, AppendRequest)>,
        heads: HashMap<PlanId, Version>,
        next_offset: i64,
    ) {
        let mut index = lock(&self.shared.index);
        index.indexed_up_to(self.partition, next_offset);
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
