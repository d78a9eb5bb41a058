//! Reading the whole topic, every partition, `read_committed`: the source of read models on
//! Kafka. Any number of readers may run (each projection replica has its own); they write
//! nothing and join no group, so they never disturb the writers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alliance_eventlog::{Checkpoint, Lag, LogError, LogReader, PartitionLag, PlanId, StoredEvent};
use futures::StreamExt;
use futures::stream::BoxStream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::{KafkaLogConfig, partition_count, record, unavailable};

/// Events handed over at once from the consumer thread.
const BATCH: usize = 1024;

/// How long the client waits before fetching a partition whose fetch queue was full (ms), for
/// the reads of a whole history (this reader's, and a writer's when it takes partitions over).
pub(crate) const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// A partition with at most this many offsets left to read has them counted by reading them
/// (the offsets left count transaction markers too: a reader that has read every record of a
/// transactional partition stays one marker short of its high watermark).
const EXACT_LAG: i64 = 10_000;

/// A reader of every partition of the topic. Positions are this reader's own order (each
/// partition in offset order, partitions interleaved as the records arrive); the checkpoint's
/// per-partition offsets say exactly which prefix of each partition it has read.
#[derive(Clone)]
pub struct TopicReader {
    config: Arc<KafkaLogConfig>,
    quarantine: alliance_eventlog::Quarantine,
}

impl TopicReader {
    pub fn new(config: KafkaLogConfig) -> Self {
        Self {
            config: Arc::new(config),
            quarantine: alliance_eventlog::Quarantine::default(),
        }
    }

    /// A consumer of the topic; `eof`: reports reaching the end of a partition (for reads that
    /// stop there; a live read never stops, and needs no such report).
    fn consumer(&self, eof: bool) -> Result<BaseConsumer<Quiet>, LogError> {
        self.config
            .client()
            .set(
                "group.id",
                format!("{}-readers", self.config.transactional_prefix),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", if eof { "true" } else { "false" })
            .set("auto.offset.reset", "earliest")
            // A read model applies records more slowly than the client fetches them, so a
            // partition's fetch queue fills to its threshold; by default the client then waits a
            // whole second before fetching that partition again, and the reader sits idle for
            // most of it once the queue is drained. Fetching again soon keeps it fed.
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .create_with_context(Quiet)
            .map_err(unavailable)
    }
}

/// The client context of reads that stop at the end of a partition (these readers, a writer's
/// take-over): reaching it, which they ask to be told of, is not reported as an error.
pub(crate) struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::debug!(reason, "reached the end of a partition");
        } else {
            tracing::error!(%error, reason, "librdkafka");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

type Batch = Result<Vec<StoredEvent>, LogError>;

impl LogReader for TopicReader {
    fn source(&self) -> String {
        self.config.topic.clone()
    }

    fn quarantined(&self) -> (u64, Vec<alliance_eventlog::Quarantined>) {
        self.quarantine.snapshot()
    }

    fn read_after(
        &self,
        from: &Checkpoint,
        live: bool,
    ) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        self.stream(from, live, None)
    }

    fn plan_records(&self, plan_id: PlanId) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        use futures::TryStreamExt;
        self.stream(&Checkpoint::default(), false, Some(plan_id))
            .try_filter(move |event| std::future::ready(event.plan_id == plan_id))
            .boxed()
    }

    async fn remaining(&self, from: &Checkpoint) -> Result<u64, LogError> {
        let reader = self.clone();
        let from = from.clone();
        tokio::task::spawn_blocking(move || {
            let consumer = reader.consumer(false)?;
            let count = i32::try_from(partition_count(&reader.config)?).unwrap_or(i32::MAX);
            let mut remaining = 0;
            for partition in 0..count {
                let (_, high) = consumer
                    .fetch_watermarks(&reader.config.topic, partition, reader.config.timeout)
                    .map_err(unavailable)?;
                remaining += u64::try_from(high - from.next_offset(partition)).unwrap_or(0);
            }
            Ok(remaining)
        })
        .await
        .map_err(unavailable)?
    }

    async fn lag(&self, from: &Checkpoint) -> Result<Lag, LogError> {
        let reader = self.clone();
        let from = from.clone();
        tokio::task::spawn_blocking(move || reader.lag_blocking(&from))
            .await
            .map_err(unavailable)?
    }

    async fn holds(&self, checkpoint: &Checkpoint) -> Result<bool, LogError> {
        if checkpoint.partitions.is_empty() {
            return Ok(checkpoint.position == 0);
        }
        let reader = self.clone();
        let checkpoint = checkpoint.clone();
        tokio::task::spawn_blocking(move || reader.holds_blocking(&checkpoint))
            .await
            .map_err(unavailable)?
    }
}

impl TopicReader {
    /// The events after `from` (of the partition of `plan` only, when given), read on a thread
    /// of its own.
    fn stream(
        &self,
        from: &Checkpoint,
        live: bool,
        plan: Option<PlanId>,
    ) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        let (batches, received) = mpsc::channel::<Batch>(16);
        let reader = self.clone();
        let from = from.clone();
        let spawned = std::thread::Builder::new()
            .name("kafka-topic-reader".into())
            .spawn(move || {
                if let Err(error) = reader.read(&from, live, plan, &batches) {
                    let _ = batches.blocking_send(Err(error));
                }
            });
        if let Err(error) = spawned {
            return futures::stream::iter([Err(unavailable(error))]).boxed();
        }
        tokio_stream::wrappers::ReceiverStream::new(received)
            .flat_map(|batch| match batch {
                Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
                Err(error) => futures::stream::iter([Err(error)]).right_stream(),
            })
            .boxed()
    }

    /// Reads from `from` (the partition of `plan` only, when given), sending batches until the
    /// end (without `live`) or until the receiver is gone.
    fn read(
        &self,
        from: &Checkpoint,
        live: bool,
        plan: Option<PlanId>,
        out: &mpsc::Sender<Batch>,
    ) -> Result<(), LogError> {
        let consumer = self.consumer(!live)?;
        let topic = &self.config.topic;
        let count = i32::try_from(partition_count(&self.config)?).unwrap_or(i32::MAX);
        let mut assignment = TopicPartitionList::new();
        // Without `live`: the partitions that hold records not read yet, until their end.
        let mut pending = HashSet::new();
        let only = plan.map(|plan| record::partition_of(plan, u32::try_from(count).unwrap_or(0)));
        for partition in (0..count).filter(|p| only.is_none_or(|only| only == *p)) {
            let next = from.next_offset(partition);
            if !live {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, self.config.timeout)
                    .map_err(unavailable)?;
                if high <= next {
                    continue;
                }
                pending.insert(partition);
            }
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(unavailable)?;
        }
        if !live && pending.is_empty() {
            return Ok(());
        }
        consumer.assign(&assignment).map_err(unavailable)?;
        let mut position = from.position;
        let mut progress = Instant::now();
        loop {
            let mut batch = Vec::new();
            let mut wait = Duration::from_millis(200);
            while batch.len() < BATCH {
                let Some(polled) = consumer.poll(wait) else {
                    break;
                };
                wait = Duration::ZERO;
                match polled {
                    Ok(message) => match record::stored_event(&message, position + 1) {
                        Ok(event) => {
                            position += 1;
                            batch.push(event);
                        }
                        // Quarantined: reported, never guessed at, never stopping the read.
                        Err(malformed) => {
                            tracing::error!(%malformed, "quarantined a malformed record of the topic");
                            self.quarantine.add(alliance_eventlog::Quarantined {
                                origin: Some(alliance_eventlog::TopicOffset {
                                    partition: malformed.partition,
                                    offset: malformed.offset,
                                }),
                                position: 0,
                                reason: malformed.reason,
                                at_micros: chrono::Utc::now().timestamp_micros(),
                            });
                        }
                    },
                    Err(KafkaError::PartitionEOF(partition)) => {
                        pending.remove(&partition);
                        if !live && pending.is_empty() {
                            break;
                        }
                    }
                    // The client retries by itself (a broker restart, a leader moving).
                    Err(error) => tracing::warn!(%error, "reading the topic"),
                }
            }
            if !batch.is_empty() {
                progress = Instant::now();
                if out.blocking_send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
            if !live && pending.is_empty() {
                return Ok(());
            }
            if out.is_closed() {
                return Ok(());
            }
            if !live && progress.elapsed() > self.config.timeout * 4 {
                return Err(LogError::Unavailable(format!(
                    "reading partitions {pending:?} of {topic} made no progress"
                )));
            }
        }
    }

    /// Each partition's high watermark against the next offset `from` reads; where few offsets
    /// are left, the records a `read_committed` reader would still get, counted.
    fn lag_blocking(&self, from: &Checkpoint) -> Result<Lag, LogError> {
        let consumer = self.consumer(true)?;
        let topic = &self.config.topic;
        let count = i32::try_from(partition_count(&self.config)?).unwrap_or(i32::MAX);
        let mut partitions = Vec::new();
        let mut assignment = TopicPartitionList::new();
        // The partitions being counted: their index in `partitions` and the records seen.
        let mut counting: HashMap<i32, (usize, u64)> = HashMap::new();
        for partition in 0..count {
            let next_offset = from.next_offset(partition);
            let (_, high_watermark) = consumer
                .fetch_watermarks(topic, partition, self.config.timeout)
                .map_err(unavailable)?;
            let left = (high_watermark - next_offset).max(0);
            if left > 0 && left <= EXACT_LAG {
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(next_offset))
                    .map_err(unavailable)?;
                counting.insert(partition, (partitions.len(), 0));
            }
            partitions.push(PartitionLag {
                partition,
                next_offset,
                high_watermark,
                remaining: u64::try_from(left).unwrap_or(0),
            });
        }
        if !counting.is_empty() {
            consumer.assign(&assignment).map_err(unavailable)?;
            let deadline = Instant::now() + self.config.timeout;
            // A partition not counted in time keeps its offsets left.
            while !counting.is_empty() && Instant::now() < deadline {
                let done = match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(message)) => {
                        let partition = rdkafka::Message::partition(&message);
                        let offset = rdkafka::Message::offset(&message);
                        match counting.get_mut(&partition) {
                            // Written after the watermark was read: the count is complete.
                            Some((at, _)) if offset >= partitions[*at].high_watermark => {
                                Some(partition)
                            }
                            Some((_, seen)) => {
                                *seen += 1;
                                None
                            }
                            None => None,
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(partition))) => Some(partition),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "reading the topic's tail");
                        None
                    }
                    None => None,
                };
                if let Some((at, seen)) = done.and_then(|p| counting.remove(&p)) {
                    partitions[at].remaining = seen;
                }
            }
        }
        Ok(Lag {
            remaining: partitions.iter().map(|p| p.remaining).sum(),
            partitions,
        })
    }

    /// Whether the record at each partition's checkpoint offset carries the event id noted.
    fn holds_blocking(&self, checkpoint: &Checkpoint) -> Result<bool, LogError> {
        let consumer = self.consumer(true)?;
        let topic = &self.config.topic;
        let mut assignment = TopicPartitionList::new();
        for (partition, (offset, _)) in &checkpoint.partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, *partition, self.config.timeout)
                .map_err(unavailable)?;
            if high <= *offset {
                return Ok(false);
            }
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(unavailable)?;
        }
        consumer.assign(&assignment).map_err(unavailable)?;
        let mut unchecked: HashSet<i32> = checkpoint.partitions.keys().copied().collect();
        let deadline = Instant::now() + self.config.timeout;
        while !unchecked.is_empty() {
            if Instant::now() > deadline {
                return Err(LogError::Unavailable(format!(
                    "reading partitions {unchecked:?} of {topic} timed out"
                )));
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let partition = rdkafka::Message::partition(&message);
                    let offset = rdkafka::Message::offset(&message);
                    let Some((expected_offset, expected_event)) =
                        checkpoint.partitions.get(&partition)
                    else {
                        continue;
                    };
                    if !unchecked.remove(&partition) {
                        continue;
                    }
                    let matches = offset == *expected_offset
                        && record::stored_event(&message, 0)
                            .is_ok_and(|event| event.event_id == *expected_event);
                    if !matches {
                        return Ok(false);
                    }
                }
                // The partition ends before the record noted (it was aborted or is missing).
                Some(Err(KafkaError::PartitionEOF(partition)))
                    if unchecked.contains(&partition) =>
                {
                    return Ok(false);
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(error)) => tracing::warn!(%error, "checking a snapshot against the topic"),
            }
        }
        Ok(true)
    }
}
