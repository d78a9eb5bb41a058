//! The append-only log of alliance planning events.
//!
//! Every backend implements [`EventLog`]: the embedded SQLite store ([`SqliteLog`]) by default,
//! Apache Kafka when the system spans machines. The log stores opaque payloads (the encoded
//! protobuf envelope) together with the few fields it must index: the plan, the per-plan version,
//! the event id and the command id that produced the event.

use std::collections::BTreeMap;
use std::future::Future;

use alliance_stdx::lock;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod metrics;
mod sqlite;

pub use metrics::CommitMetrics;
pub use sqlite::{DatabaseFile, SqliteLog, SqliteLogConfig, SqliteLogStats};

/// Identifier of one plan's stream.
pub type PlanId = Uuid;

/// Per-plan version: the number of events in the plan's stream. `0` means the stream is empty;
/// the first event of a plan has version `1`. Versions are gapless and strictly increasing.
pub type Version = u64;

/// Position in the global order of the whole log (all plans). Strictly increasing; the first
/// event has position `1`. Positions may have gaps on some backends, versions never do.
pub type Position = u64;

/// An event to append. The log assigns the version and the global position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    /// Id of the command that produced this event; all events of one append share it.
    pub command_id: String,
    /// Stable event type name, e.g. `alliance.v1.DecisionProposed`.
    pub event_type: String,
    /// Record time, microseconds since the Unix epoch (UTC), stamped by the writer.
    pub record_time_micros: i64,
    /// The encoded envelope.
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// The event as the log stores it at `version` of `plan_id` and `position`: no partition
    /// offset, no trace context.
    pub fn stored(self, plan_id: PlanId, version: Version, position: Position) -> StoredEvent {
        StoredEvent {
            position,
            plan_id,
            version,
            event_id: self.event_id,
            command_id: self.command_id,
            event_type: self.event_type,
            record_time_micros: self.record_time_micros,
            payload: self.payload,
            origin: None,
            trace_context: None,
        }
    }
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: Position,
    pub plan_id: PlanId,
    pub version: Version,
    pub event_id: Uuid,
    pub command_id: String,
    pub event_type: String,
    pub record_time_micros: i64,
    pub payload: Vec<u8>,
    /// Where the record sits on a partitioned log (Kafka); `None` on the embedded log.
    pub origin: Option<TopicOffset>,
    /// The W3C `traceparent` of the append that wrote it, when that append was traced: a
    /// consumer's span continues the trace from there.
    pub trace_context: Option<String>,
}

/// A record as its hash chain is checked: where the log holds it and its bytes, without the
/// columns that repeat what the bytes say (its event's id and type, its command), which the
/// check never reads ([`LogReader::plan_chain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRecord {
    pub position: Position,
    pub plan_id: PlanId,
    pub version: Version,
    pub payload: Vec<u8>,
    /// Where the record sits on a partitioned log (Kafka); `None` on the embedded log.
    pub origin: Option<TopicOffset>,
}

impl From<StoredEvent> for ChainRecord {
    fn from(event: StoredEvent) -> Self {
        Self {
            position: event.position,
            plan_id: event.plan_id,
            version: event.version,
            payload: event.payload,
            origin: event.origin,
        }
    }
}

/// What a chain check reads of a record, borrowed from a [`StoredEvent`] or a
/// [`ChainRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainView<'a> {
    pub position: Position,
    pub plan_id: PlanId,
    pub version: Version,
    pub payload: &'a [u8],
    pub origin: Option<TopicOffset>,
}

impl<'a> From<&'a StoredEvent> for ChainView<'a> {
    fn from(event: &'a StoredEvent) -> Self {
        Self {
            position: event.position,
            plan_id: event.plan_id,
            version: event.version,
            payload: &event.payload,
            origin: event.origin,
        }
    }
}

impl<'a> From<&'a ChainRecord> for ChainView<'a> {
    fn from(record: &'a ChainRecord) -> Self {
        Self {
            position: record.position,
            plan_id: record.plan_id,
            version: record.version,
            payload: &record.payload,
            origin: record.origin,
        }
    }
}

/// A record of the log set aside as unreadable: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Its partition and offset on Kafka; `None` on the embedded log.
    pub origin: Option<TopicOffset>,
    /// Its position on the embedded log (0 on Kafka, where it never got one).
    pub position: Position,
    pub reason: String,
    /// When it was set aside, microseconds since the Unix epoch.
    pub at_micros: i64,
}

/// Records set aside as unreadable: the latest ones and how many in all.
#[derive(Debug, Clone, Default)]
pub struct Quarantine {
    inner: std::sync::Arc<std::sync::Mutex<(u64, std::collections::VecDeque<Quarantined>)>>,
}

impl Quarantine {
    /// The latest records kept.
    pub const KEPT: usize = 100;

    /// Sets `record` aside (once: a record met again on a re-read is not counted twice).
    pub fn add(&self, record: Quarantined) {
        let mut inner = lock(&self.inner);
        let (total, latest) = &mut *inner;
        let seen = latest
            .iter()
            .any(|r| r.origin == record.origin && r.position == record.position);
        if seen {
            return;
        }
        *total += 1;
        if latest.len() == Self::KEPT {
            latest.pop_front();
        }
        latest.push_back(record);
    }

    /// How many in all, and the latest, oldest first.
    pub fn snapshot(&self) -> (u64, Vec<Quarantined>) {
        let inner = lock(&self.inner);
        (inner.0, inner.1.iter().cloned().collect())
    }
}

/// A record's partition and offset on a Kafka topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicOffset {
    pub partition: i32,
    pub offset: i64,
}

/// How far a reader of the whole log has read, and the events it read last, so that a read
/// model restored from a snapshot can check that the log still holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last position read (in the reader's own order on Kafka).
    pub position: Position,
    /// The id of the event at `position` (embedded log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<Uuid>,
    /// On Kafka, per partition: the offset of the last record read and its event id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<i32, (i64, Uuid)>,
}

impl Checkpoint {
    /// Notes that `event` was read. Never goes back: a record read again changes nothing.
    pub fn advance(&mut self, event: &StoredEvent) {
        if event.position > self.position {
            self.position = event.position;
            self.last_event = Some(event.event_id);
        }
        if let Some(at) = event.origin {
            let newer = self
                .partitions
                .get(&at.partition)
                .is_none_or(|(offset, _)| at.offset > *offset);
            if newer {
                self.partitions
                    .insert(at.partition, (at.offset, event.event_id));
            }
        }
    }

    /// The next offset to read of `partition`.
    pub fn next_offset(&self, partition: i32) -> i64 {
        self.partitions
            .get(&partition)
            .map_or(0, |(offset, _)| offset + 1)
    }
}

/// How far a reader's checkpoint is behind the end of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lag {
    /// About how many events the log holds after the checkpoint (`0`: none).
    pub remaining: u64,
    /// On a partitioned log, each partition, in partition order.
    pub partitions: Vec<PartitionLag>,
}

/// How far a reader is behind the end of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// The next offset the reader reads (one past the last record it read; `0`: none read).
    pub next_offset: i64,
    /// The offset the partition's next record will get.
    pub high_watermark: i64,
    /// About how many records are left to read: exact when only a few are (transaction
    /// markers and aborted records are not counted then), otherwise the offsets left.
    pub remaining: u64,
}

/// Reads the whole log, every plan, in one order, from a checkpoint: what read models are
/// built from. The embedded log reads it in position order; on Kafka every partition is read,
/// `read_committed`, each in offset order.
pub trait LogReader: Clone + Send + Sync + 'static {
    /// What is read, for telemetry: the Kafka topic, or the SQLite file.
    fn source(&self) -> String;

    /// The records this reader set aside as malformed (it reports and skips them, never
    /// stopping the read).
    fn quarantined(&self) -> (u64, Vec<Quarantined>) {
        (0, Vec::new())
    }

    /// The events after `from`: those stored when called, then (with `live`) each new one as
    /// it is committed. Without `live` the stream ends at what the log held when called.
    fn read_after(
        &self,
        from: &Checkpoint,
        live: bool,
    ) -> BoxStream<'static, Result<StoredEvent, LogError>>;

    /// [`LogReader::read_after`] without `live`, as a chain check reads the records: the same
    /// records in the same order, each without the columns the check never reads.
    fn chain_after(&self, from: &Checkpoint) -> BoxStream<'static, Result<ChainRecord, LogError>> {
        use futures::TryStreamExt;
        self.read_after(from, false)
            .map_ok(ChainRecord::from)
            .boxed()
    }

    /// Whether the log holds, where `checkpoint` says, the events it names (a snapshot taken of
    /// another log, or of a log since rewritten, fails this).
    fn holds(&self, checkpoint: &Checkpoint)
    -> impl Future<Output = Result<bool, LogError>> + Send;

    /// About how many events the log holds after `from` (for progress reports; on Kafka it
    /// counts transaction markers too).
    fn remaining(&self, from: &Checkpoint) -> impl Future<Output = Result<u64, LogError>> + Send;

    /// How far `from` is behind the log's end: [`LogReader::remaining`] in all, and each
    /// partition's read offset against its high watermark on a partitioned log (none on the
    /// embedded log).
    fn lag(&self, from: &Checkpoint) -> impl Future<Output = Result<Lag, LogError>> + Send {
        async move {
            Ok(Lag {
                remaining: self.remaining(from).await?,
                partitions: Vec::new(),
            })
        }
    }

    /// Every record the log holds now for `plan_id`, in log order, as stored (for checking the
    /// plan's hash chain against the log itself).
    fn plan_records(&self, plan_id: PlanId) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        use futures::TryStreamExt;
        self.read_after(&Checkpoint::default(), false)
            .try_filter(move |event| std::future::ready(event.plan_id == plan_id))
            .boxed()
    }

    /// [`LogReader::plan_records`] as a chain check reads them: the same records in the same
    /// order, each without the columns the check never reads (a log that stores those apart
    /// reads less).
    fn plan_chain(&self, plan_id: PlanId) -> BoxStream<'static, Result<ChainRecord, LogError>> {
        use futures::TryStreamExt;
        self.plan_records(plan_id).map_ok(ChainRecord::from).boxed()
    }
}

/// What a successful append wrote: versions `first_version..=last_version` of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_version: Version,
    pub last_version: Version,
    pub last_position: Position,
}

/// Where the events of an already-applied command live in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub command_id: String,
    pub plan_id: PlanId,
    pub first_version: Version,
    pub last_version: Version,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The plan's stream is not at the version the writer expected: someone else appended.
    #[error("plan {plan_id} is at version {actual}, the append expected {expected}")]
    VersionConflict {
        plan_id: PlanId,
        expected: Version,
        actual: Version,
    },
    /// A command with this id has already been appended (idempotency backstop).
    #[error("command {command_id} was already applied to plan {}", record.plan_id)]
    DuplicateCommand {
        command_id: String,
        record: CommandRecord,
    },
    #[error("an append must contain at least one event")]
    EmptyAppend,
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("event log storage failed: {0}")]
    Storage(String),
}

/// What every backend checks before queueing an append: at least one event, and one command id
/// for all of them (the first event's id is the idempotency key).
pub fn check_append(events: &[NewEvent]) -> Result<(), LogError> {
    let Some(first) = events.first() else {
        return Err(LogError::EmptyAppend);
    };
    if events.iter().any(|e| e.command_id != first.command_id) {
        return Err(LogError::Storage(format!(
            "all events of one append must carry the same command id, the first carries {}",
            first.command_id
        )));
    }
    Ok(())
}

/// Where the writes of a plan are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This handle writes the plan.
    Local,
    /// Another instance owns the plan's partition; `owner` is its address when known.
    Remote {
        partition: i32,
        owner: Option<String>,
    },
}

/// The append-only log shared by every service.
///
/// Implementations are cheap to clone handles (`Clone + Send + Sync`).
pub trait EventLog: Clone + Send + Sync + 'static {
    /// Appends `events` to the plan's stream, atomically, if the stream is at `expected`.
    /// The returned future resolves once the events are durable. Every event of one call gets
    /// consecutive versions.
    ///
    /// The append is enqueued when `append` is *called*, not when the future is first polled:
    /// appends called in some order (e.g. under a per-plan lock) are applied in that order, so a
    /// writer may pipeline several appends of one plan and await their durability outside the
    /// lock. If an earlier append fails, a later one built on it fails with `VersionConflict`.
    /// The future borrows nothing, so the wait for durability can be handed to another task.
    fn append(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Appended, LogError>> + Send + 'static;

    /// Events of one plan with `version >= from`, in version order, at most `limit`.
    fn read_plan(
        &self,
        plan_id: PlanId,
        from: Version,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, LogError>> + Send;

    /// Events of all plans with `position >= from`, in position order, at most `limit`.
    fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, LogError>> + Send;

    /// The current version of a plan (`0` if the plan has no events).
    fn plan_version(
        &self,
        plan_id: PlanId,
    ) -> impl Future<Output = Result<Version, LogError>> + Send;

    /// Where the events of command `command_id` were appended, if it ever was.
    fn find_command(
        &self,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, LogError>> + Send;

    /// Whether this handle writes `plan_id` (always, for a log with a single writer).
    fn route(&self, _plan_id: PlanId) -> Route {
        Route::Local
    }

    /// Like [`EventLog::route`], but while the plan's partition is moving between writers (no
    /// writer known), waits up to `patience` for the move to end.
    fn settled_route(
        &self,
        plan_id: PlanId,
        _patience: std::time::Duration,
    ) -> impl Future<Output = Route> + Send {
        std::future::ready(self.route(plan_id))
    }

    /// Resolves once `plan_id` is no longer written by `owner` as far as this handle knows:
    /// written here, or by another instance it has learned of. Never on a log with one writer.
    /// A request forwarded to `owner` waits on it no longer than this.
    fn moved_from(&self, _plan_id: PlanId, _owner: &str) -> impl Future<Output = Route> + Send {
        std::future::pending()
    }

    /// Changes whenever this handle (again) becomes the writer of `plan_id`: state a writer
    /// cached under another term may miss events another writer appended meanwhile.
    fn writer_term(&self, _plan_id: PlanId) -> u64 {
        0
    }

    /// Whether two plans are always written by the same writer (a branch is kept with its
    /// parent, so the writer of the branch can read the parent).
    fn same_shard(&self, _a: PlanId, _b: PlanId) -> bool {
        true
    }

    /// Every event with `position >= from`, first those already stored (catch-up), then each new
    /// one as it is committed (live). The stream ends only when the log is closed or on error.
    fn subscribe(&self, from: Position) -> BoxStream<'static, Result<StoredEvent, LogError>>;
}
