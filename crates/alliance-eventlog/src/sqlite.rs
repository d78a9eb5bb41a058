//! The embedded SQLite backend of the [`EventLog`]; see [`SqliteLog`].

mod checkpoint;
mod file;
mod memory;
mod read;
mod schema;
mod subscribe;
mod writer;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::{
    Appended, ChainRecord, Checkpoint, CommandRecord, EventLog, LogError, LogReader, NewEvent,
    PlanId, Position, StoredEvent, Version,
};

pub use file::DatabaseFile;
use memory::{CommandIds, RecentEvents};
use read::{LogRow, ReadPool};
use writer::{AppendRequest, Counters, Writer, WriterLimits};

/// Settings of a [`SqliteLog`]. Build one with [`SqliteLogConfig::new`], which fills in the
/// defaults, then adjust the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteLogConfig {
    /// The database file. It and its parent directory are created if missing; the WAL (`-wal`)
    /// and shared-memory (`-shm`) files live beside it.
    pub path: PathBuf,
    /// At most this many append requests go into one group commit (default 512).
    pub max_batch_appends: usize,
    /// A group commit stops taking further requests once their payloads reach this many bytes
    /// (default 8 MiB). A single larger request is still committed, alone.
    pub max_batch_bytes: usize,
    /// At most this many appends wait for the writer; beyond it an append is refused at once
    /// with `LogError::Unavailable` (back-pressure that never reorders appends; default 4096).
    pub queue_capacity: usize,
    /// Idle read-only connections kept for reuse (default 4). More may be open at once while
    /// more reads run concurrently; those are closed after use.
    pub read_connections: usize,
    /// How long a connection waits for a lock held by another connection before failing with
    /// `SQLITE_BUSY` (default 5 s). Only matters when something else writes to the file.
    pub busy_timeout: Duration,
    /// Events a subscription reads from the database at a time (default 256).
    pub subscribe_batch: usize,
    /// The writer caches the head version of at most this many plans; the cache is emptied
    /// when it grows beyond (default 100 000). Heads are reloaded from the database on demand.
    pub max_cached_plans: usize,
}

impl SqliteLogConfig {
    /// A configuration for the database file at `path`, with default settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_batch_appends: 512,
            max_batch_bytes: 8 << 20,
            queue_capacity: 4096,
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            subscribe_batch: 256,
            max_cached_plans: 100_000,
        }
    }
}

/// Counters of the writer since the log was opened, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteLogStats {
    /// Transactions committed. A group commit counts once however many appends it holds; a
    /// batch in which every request was rejected is rolled back and not counted.
    pub commits: u64,
    /// Appends acknowledged as durable.
    pub appends: u64,
    /// Events written by those appends.
    pub events: u64,
    /// Append requests the writer answered with an error (conflicts, duplicates, storage
    /// failures).
    pub rejected: u64,
    /// WAL checkpoints run (after every 4096 events written, between two group commits).
    pub checkpoints: u64,
}

/// The embedded SQLite event log. Cheap to clone: every clone is a handle to the same log.
///
/// # Design
///
/// * **One writer.** A dedicated OS thread (not a task of the async runtime) owns the only
///   read-write connection. [`EventLog::append`] sends its request over a bounded channel and
///   awaits a oneshot answer. The writer blocks for one request, drains whatever else is queued
///   (up to [`SqliteLogConfig::max_batch_appends`] requests or
///   [`SqliteLogConfig::max_batch_bytes`] bytes) and applies the whole batch in one
///   `BEGIN IMMEDIATE … COMMIT` transaction: a *group commit*, so concurrent appends share one
///   fsync. Each request runs inside its own `SAVEPOINT`, so a rejected request (version
///   conflict, duplicate command) is undone alone while the rest of the batch commits. Answers
///   are sent only after `COMMIT` returned.
/// * **Durable.** The database runs in WAL journal mode with `synchronous=FULL`: a committed
///   transaction has been fsynced to the WAL before `COMMIT` returns.
/// * **Readers never wait for the writer.** Reads run on read-only connections taken from a small
///   pool, on the blocking thread pool of the runtime (`tokio::task::spawn_blocking`). In WAL
///   mode they see the last committed state without taking the write lock.
/// * **Subscriptions are push-driven.** After every commit the writer publishes the last committed
///   position through a `tokio::sync::watch` channel; a subscription takes the new events when
///   that value moves, from the latest commits the writer keeps in memory (the last
///   8192 events, at most 16 MiB), else from the database. There is no polling.
/// * **New command ids are not looked up.** The writer keeps a fingerprint of every command id
///   in the log; [`EventLog::find_command`] and the writer's duplicate check read the database
///   only for an id that may be held.
/// * **Lifecycle.** [`SqliteLog`] is a cheap handle around an `Arc`. When the last handle is
///   dropped the request channel closes, the writer finishes what is queued and exits, and the
///   drop joins it. Open subscriptions then end.
///
/// Only one [`SqliteLog`] (one process) should write to a database file at a time. A second
/// writer would not corrupt the log — the `UNIQUE` constraints refuse a version or a command
/// stored twice, and the head cache going stale is detected and answered with
/// [`LogError::VersionConflict`] — but its commits would reach this log's subscriptions only
/// with this log's next commit.
#[derive(Clone)]
pub struct SqliteLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Sends appends to the writer. `None` only while dropping, so the writer sees the channel
    /// close before we join it.
    requests: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
    /// The checkpoints run so far.
    checkpointed: watch::Receiver<u64>,
    reads: Arc<ReadPool>,
    /// The last committed position, published by the writer after each commit.
    committed: watch::Receiver<Position>,
    counters: Arc<Counters>,
    subscribe_batch: usize,
    /// The command ids the log holds: a new command's lookup reads nothing.
    commands: Arc<CommandIds>,
    /// The latest commits' events, for the subscriptions that follow the writer.
    recent: Arc<RecentEvents>,
}

/// Positions a read of everything committed takes at a time.
const BULK_READ: usize = 4096;

/// Events of the latest commits kept in memory for the subscriptions following the writer
/// (several group commits' worth at any rate the writer reaches).
const RECENT_EVENTS: usize = 8192;
/// …and at most this many bytes of their payloads.
const RECENT_BYTES: usize = 16 << 20;

impl SqliteLog {
    /// Opens (creating it if needed) the log at `config.path` and starts its writer thread.
    ///
    /// This is a blocking call: it opens the file, switches it to WAL mode and creates or checks
    /// the schema. Call it at start-up, or from `tokio::task::spawn_blocking` inside a runtime.
    /// It needs no runtime itself; the returned handle's async methods do.
    pub fn open(config: SqliteLogConfig) -> Result<Self, LogError> {
        if let Some(parent) = config.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                LogError::Storage(format!(
                    "could not create directory {}: {e}",
                    parent.display()
                ))
            })?;
        }

        let conn = schema::open_writer(&config.path, config.busy_timeout)?;
        let last_position = read::last_position(&conn).map_err(storage)?;
        let commands = Arc::new(CommandIds::load(&conn).map_err(storage)?);
        let recent = Arc::new(RecentEvents::new(RECENT_EVENTS, RECENT_BYTES));

        let reads = Arc::new(ReadPool::new(
            config.path.clone(),
            config.read_connections,
            config.busy_timeout,
        ));
        // Open one read connection now, so that a problem shows here rather than on first read.
        reads.check()?;

        let (requests, queue) = mpsc::channel(config.queue_capacity.max(1));
        let (publish, committed) = watch::channel(last_position);
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(
            conn,
            queue,
            publish,
            Arc::clone(&counters),
            WriterLimits {
                max_batch_appends: config.max_batch_appends.max(1),
                max_batch_bytes: config.max_batch_bytes.max(1),
                max_cached_plans: config.max_cached_plans.max(1),
            },
            (Arc::clone(&commands), Arc::clone(&recent)),
        );
        let (checkpoints, checkpointed) = checkpoint::Checkpoints::new();
        let writer = writer.checkpoint_with(checkpoints);
        let writer = std::thread::Builder::new()
            .name("eventlog-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| {
                LogError::Unavailable(format!("could not start the writer thread: {e}"))
            })?;

        tracing::debug!(path = %config.path.display(), last_position, "opened sqlite event log");
        Ok(Self {
            inner: Arc::new(Inner {
                path: config.path,
                requests: Some(requests),
                writer: Some(writer),
                checkpointed,
                reads,
                committed,
                counters,
                subscribe_batch: config.subscribe_batch.max(1),
                commands,
                recent,
            }),
        })
    }

    /// The database file of this log.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The writer's counters since the log was opened.
    pub fn stats(&self) -> SqliteLogStats {
        SqliteLogStats {
            checkpoints: *self.inner.checkpointed.borrow(),
            ..self.inner.counters.snapshot()
        }
    }

    /// The number of WAL checkpoints run since the log was opened, as it changes.
    pub fn checkpoints(&self) -> watch::Receiver<u64> {
        self.inner.checkpointed.clone()
    }
}

impl fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteLog")
            .field("path", &self.inner.path)
            .field("last_position", &*self.inner.committed.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the idle readers first: the last connection to close checkpoints the WAL into
        // the database and removes it, and only the writer can do that.
        self.reads.close_idle();
        // Closing the channel lets the writer finish the queued requests and return; joining
        // makes sure the write connection is closed when the last handle is gone.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "event log writer thread panicked");
        }
    }
}

impl SqliteLog {
    /// Hands one append to the writer thread. A full queue is refused at once (back-pressure)
    /// rather than waited on, which would let later appends overtake this one.
    fn enqueue(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
        traceparent: Option<String>,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, LogError> {
        crate::check_append(&events)?;
        let requests = self
            .inner
            .requests
            .as_ref()
            .ok_or_else(|| LogError::Unavailable("the event log is closing".to_owned()))?;
        let (respond, answer) = oneshot::channel();
        requests
            .try_send(AppendRequest {
                plan_id,
                expected,
                events,
                traceparent,
                respond,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => LogError::Unavailable(format!(
                    "the event log write queue is full ({} appends pending); retry",
                    requests.max_capacity()
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    LogError::Unavailable("the event log writer has stopped".to_owned())
                }
            })?;
        Ok(answer)
    }
}

impl EventLog for SqliteLog {
    /// Appends through the writer thread. Resolves once the group commit holding the request
    /// has been committed (fsynced). Dropping the future after the request was queued does not
    /// withdraw it: it may still be committed; [`EventLog::find_command`] tells.
    ///
    /// All events must carry the same command id (the first event's id is the idempotency key);
    /// an append that mixes ids is refused with [`LogError::Storage`] and writes nothing.
    fn append(
        &self,
        plan_id: PlanId,
        expected: Version,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Appended, LogError>> + Send + 'static {
        // From the append until its group commit is durable; stored with the events, so a
        // reader's span continues the trace.
        let span = alliance_telemetry::trace_span!(
            "append",
            otel.name = "INSERT events",
            otel.kind = "client",
            db.system.name = "sqlite",
            db.operation.name = "INSERT",
            db.collection.name = "events",
            alliance.plan_id = %plan_id,
            alliance.events = events.len(),
        );
        let traceparent = alliance_telemetry::traceparent(&span);
        // Enqueue now, synchronously, so appends called in order are applied in order.
        let queued = span.in_scope(|| self.enqueue(plan_id, expected, events, traceparent));
        async move {
            queued?.await.map_err(|_| {
                LogError::Unavailable("the event log writer stopped before answering".to_owned())
            })?
        }
        .instrument(span)
    }

    async fn read_plan(
        &self,
        plan_id: PlanId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.inner
            .reads
            .run(move |conn| read::read_plan::<StoredEvent>(conn, plan_id, from, limit))
            .await
    }

    async fn read_all(&self, from: Position, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.inner
            .reads
            .run(move |conn| read::read_all(conn, from, limit))
            .await
    }

    async fn plan_version(&self, plan_id: PlanId) -> Result<Version, LogError> {
        self.inner
            .reads
            .run(move |conn| read::plan_version(conn, plan_id))
            .await
    }

    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, LogError> {
        if !self.inner.commands.may_hold(command_id) {
            return Ok(None);
        }
        let command_id = command_id.to_owned();
        self.inner
            .reads
            .run(move |conn| read::find_command(conn, &command_id))
            .await
    }

    fn subscribe(&self, from: Position) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        subscribe::stream(
            Arc::clone(&self.inner.reads),
            Arc::clone(&self.inner.recent),
            self.inner.committed.clone(),
            from,
            self.inner.subscribe_batch,
        )
    }
}

impl SqliteLog {
    /// The records after `from` that are committed now, in ranges of positions read ahead; the
    /// stream ends there, or after an error.
    fn committed_after<T: LogRow>(
        &self,
        from: &Checkpoint,
    ) -> BoxStream<'static, Result<T, LogError>> {
        let after = from.position;
        let end = *self.inner.committed.borrow();
        let batch = self.inner.subscribe_batch.max(BULK_READ) as Position;
        let ranges = (after + 1..=end)
            .step_by(batch as usize)
            .map(move |from| (from, end.min(from + batch - 1) + 1));
        read_ahead(&self.inner.reads, ranges)
    }
}

impl LogReader for SqliteLog {
    fn source(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn read_after(
        &self,
        from: &Checkpoint,
        live: bool,
    ) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        if live {
            return self.subscribe(from.position + 1);
        }
        self.committed_after(from)
    }

    fn chain_after(&self, from: &Checkpoint) -> BoxStream<'static, Result<ChainRecord, LogError>> {
        self.committed_after(from)
    }

    fn plan_records(&self, plan_id: PlanId) -> BoxStream<'static, Result<StoredEvent, LogError>> {
        plan_rows(&self.inner.reads, self.inner.subscribe_batch, plan_id)
    }

    fn plan_chain(&self, plan_id: PlanId) -> BoxStream<'static, Result<ChainRecord, LogError>> {
        plan_rows(&self.inner.reads, self.inner.subscribe_batch, plan_id)
    }

    async fn remaining(&self, from: &Checkpoint) -> Result<u64, LogError> {
        Ok(self.inner.committed.borrow().saturating_sub(from.position))
    }

    async fn holds(&self, checkpoint: &Checkpoint) -> Result<bool, LogError> {
        if checkpoint.position == 0 {
            return Ok(true);
        }
        let at = self.read_all(checkpoint.position, 1).await?;
        Ok(at.first().is_some_and(|e| {
            e.position == checkpoint.position && Some(e.event_id) == checkpoint.last_event
        }))
    }
}

/// The records of `plan_id` in version order, whole or as a chain check reads them
/// ([`LogReader::plan_records`], [`LogReader::plan_chain`]), in batches from `first` records.
fn plan_rows<T: LogRow>(
    reads: &Arc<ReadPool>,
    first: usize,
    plan_id: PlanId,
) -> BoxStream<'static, Result<T, LogError>> {
    let reads = Arc::clone(reads);
    let first = first.max(1);
    let read = move |from: Version, limit: usize| -> PlanRead<T> {
        reads.start(move |conn| read::read_plan::<T>(conn, plan_id, from, limit))
    };
    // Batches of `version >= from`, read while the one before is consumed; the reads ahead
    // start where the batch before would end were its versions dense (as a plan's are).
    // A batch that is not (a version missing, which verification names) drops the reads
    // ahead and the next starts after its last version; a short batch is the end. Each
    // batch is twice the one before, from `subscribe_batch` up to `PLAN_BATCH_AT_MOST`: the
    // first answers soon, and a long plan is read in few queries.
    futures::stream::unfold(
        (Some(1), first, Ahead::default()),
        move |(next, size, mut ahead)| {
            let read = read.clone();
            async move {
                let from = next?;
                if ahead.0.front().is_some_and(|(at, _, _)| *at != from) {
                    ahead.call_off();
                }
                while ahead.0.len() <= READS_AHEAD {
                    let (at, limit) = ahead.0.back().map_or((from, size), |(at, limit, _)| {
                        (at.saturating_add(*limit as Version), grown(*limit))
                    });
                    ahead.0.push_back((at, limit, read(at, limit)));
                }
                let (_, limit, reading) = ahead.0.pop_front()?;
                let events = match read::finished(reading.await) {
                    Ok(events) => events,
                    Err(error) => {
                        ahead.call_off();
                        return Some((
                            futures::stream::iter([Err(error)]).right_stream(),
                            (None, size, ahead),
                        ));
                    }
                };
                let next = (events.len() == limit)
                    .then(|| events.last().map(|e| e.version().saturating_add(1)))
                    .flatten();
                if next.is_none() {
                    ahead.call_off();
                }
                Some((
                    futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
                    (next, grown(limit), ahead),
                ))
            }
        },
    )
    .flatten()
    .boxed()
}

/// The most records one read of a plan's records takes ([`LogReader::plan_records`]): with the
/// reads ahead, a stream holds at most three times this many.
const PLAN_BATCH_AT_MOST: usize = 1_024;

/// A read of a plan's records.
type PlanRead<T> = read::Reading<Vec<T>>;

/// The reads of a plan's records started ahead of its stream (first version, limit, read):
/// those not yet running are called off when they are no longer wanted, and when the stream
/// is dropped.
struct Ahead<T>(std::collections::VecDeque<(Version, usize, PlanRead<T>)>);

impl<T> Default for Ahead<T> {
    fn default() -> Self {
        Self(std::collections::VecDeque::new())
    }
}

impl<T> Ahead<T> {
    fn call_off(&mut self) {
        self.0.drain(..).for_each(|(_, _, reading)| reading.abort());
    }
}

impl<T> Drop for Ahead<T> {
    fn drop(&mut self) {
        self.call_off();
    }
}

/// The size of a plan's next batch after one of `limit` records.
fn grown(limit: usize) -> usize {
    limit.saturating_mul(2).min(PLAN_BATCH_AT_MOST.max(limit))
}

/// Reads in flight at once while the stream's consumer takes the batch before them: with two,
/// both cores read while the consumer works.
const READS_AHEAD: usize = 2;

/// The records of each range of positions `[from, to)`, in order, as one stream: up to
/// [`READS_AHEAD`] ranges read on the read pool while the batch before them is consumed. The
/// stream ends after the last range, or after an error.
fn read_ahead<T: LogRow>(
    reads: &Arc<ReadPool>,
    ranges: impl Iterator<Item = (Position, Position)> + Send + 'static,
) -> BoxStream<'static, Result<T, LogError>> {
    let reads = Arc::clone(reads);
    futures::stream::iter(ranges)
        .map(move |(from, to)| {
            // Started now, so that the reads ahead proceed while the stream is not polled.
            let reading = reads.start(move |conn| read::read_range::<T>(conn, from, to));
            async move { read::finished(reading.await) }
        })
        .buffered(READS_AHEAD + 1)
        .scan(false, |failed, batch| {
            let item = (!*failed).then(|| {
                *failed = batch.is_err();
                match batch {
                    Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
                    Err(error) => futures::stream::iter([Err(error)]).right_stream(),
                }
            });
            std::future::ready(item)
        })
        .flatten()
        .boxed()
}

/// Maps a SQLite failure to the log's error.
fn storage(error: rusqlite::Error) -> LogError {
    LogError::Storage(error.to_string())
}

/// Versions and positions are `u64` in the API and `INTEGER` (i64) in SQLite. Values beyond
/// `i64::MAX` never occur in the database, so clamping a bound is exact for every query.
fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
