//! The writer thread: group commit of queued appends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot, watch};

use super::checkpoint::Checkpoints;
use super::memory::{CommandIds, RecentEvents};
use super::{SqliteLogStats, read, storage, to_sql_int};
use crate::{Appended, LogError, NewEvent, PlanId, Position, StoredEvent, Version};

/// One call of `append`, queued for the writer.
pub(super) struct AppendRequest {
    pub(super) plan_id: PlanId,
    pub(super) expected: Version,
    /// Not empty, all with the same command id (checked by `append`).
    pub(super) events: Vec<NewEvent>,
    /// The append's span, when traced: stored with each event.
    pub(super) traceparent: Option<String>,
    pub(super) respond: oneshot::Sender<Result<Appended, LogError>>,
}

impl AppendRequest {
    /// Roughly the bytes this request writes, to bound a batch.
    fn weight(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.payload.len() + e.command_id.len() + e.event_type.len() + 64)
            .sum()
    }

    fn command_id(&self) -> &str {
        self.events.first().map_or("", |e| e.command_id.as_str())
    }
}

/// The writer's counters, read by `SqliteLog::stats`.
#[derive(Default)]
pub(super) struct Counters {
    commits: AtomicU64,
    appends: AtomicU64,
    events: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> SqliteLogStats {
        SqliteLogStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            // Counted by the writer's checkpoints, which `SqliteLog::stats` reads.
            checkpoints: 0,
        }
    }
}

pub(super) struct WriterLimits {
    pub(super) max_batch_appends: usize,
    pub(super) max_batch_bytes: usize,
    pub(super) max_cached_plans: usize,
}

/// Owns the read-write connection; runs on its own OS thread until every request sender is gone.
pub(super) struct Writer {
    conn: Connection,
    queue: mpsc::Receiver<AppendRequest>,
    /// The last committed position, for subscriptions.
    publish: watch::Sender<Position>,
    counters: Arc<Counters>,
    limits: WriterLimits,
    metrics: crate::CommitMetrics,
    /// Head version of recently written plans, as committed. Filled lazily from the database;
    /// updated only after a successful COMMIT and emptied whenever the outcome of a
    /// transaction is unknown, so it never runs ahead of (or behind) the database.
    heads: HashMap<PlanId, Version>,
    /// The command ids the log holds, shared with the readers.
    commands: Arc<CommandIds>,
    /// The events of the latest commits, shared with the subscriptions.
    recent: Arc<RecentEvents>,
    /// When to checkpoint the WAL (none: when the log closes).
    checkpoints: Option<Checkpoints>,
}

/// Why one request of a batch was not applied.
enum Rejection {
    /// The request alone is refused (conflict, duplicate); the batch goes on.
    Refused(LogError),
    /// SQLite failed in a way that may have aborted the transaction: the whole batch fails.
    Fatal(rusqlite::Error),
}

impl From<rusqlite::Error> for Rejection {
    fn from(error: rusqlite::Error) -> Self {
        Self::Fatal(error)
    }
}

/// What a transaction decided for each request of a batch, before it is committed.
struct Applied {
    outcomes: Vec<Result<Appended, LogError>>,
    /// Heads as they are inside the transaction, for every plan it looked at.
    heads: HashMap<PlanId, Version>,
    /// The position of the last event written, if any request succeeded.
    last_position: Option<Position>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        queue: mpsc::Receiver<AppendRequest>,
        publish: watch::Sender<Position>,
        counters: Arc<Counters>,
        limits: WriterLimits,
        (commands, recent): (Arc<CommandIds>, Arc<RecentEvents>),
    ) -> Self {
        Self {
            conn,
            queue,
            publish,
            counters,
            limits,
            commands,
            recent,
            checkpoints: None,
            heads: HashMap::new(),
            metrics: crate::CommitMetrics::new("sqlite"),
        }
    }

    /// Checkpoints the WAL as `checkpoints` says, between batches.
    pub(super) fn checkpoint_with(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// The writer loop: wait for one request, take whatever else is queued, commit them
    /// together. Returns when every sender is dropped and the queue is empty; dropping `self`
    /// then closes the connection and the watch channel (which ends the subscriptions).
    pub(super) fn run(mut self) {
        while let Some(first) = self.queue.blocking_recv() {
            let batch = self.drain(first);
            self.commit_batch(batch);
            // After the batch was answered, before the next is taken.
            if let Some(checkpoints) = &mut self.checkpoints {
                checkpoints.run_if_due(&self.conn);
            }
        }
        tracing::debug!("event log writer stopped");
    }

    /// `first` plus the requests already queued, within the batch limits.
    fn drain(&mut self, first: AppendRequest) -> Vec<AppendRequest> {
        let mut bytes = first.weight();
        let mut batch = vec![first];
        while batch.len() < self.limits.max_batch_appends && bytes < self.limits.max_batch_bytes {
            match self.queue.try_recv() {
                Ok(request) => {
                    bytes += request.weight();
                    batch.push(request);
                }
                // Empty (or closed): commit what we have rather than wait.
                Err(_) => break,
            }
        }
        batch
    }

    /// Applies `batch` in one transaction, commits it and only then answers every request.
    fn commit_batch(&mut self, batch: Vec<AppendRequest>) {
        let started = std::time::Instant::now();
        let outcomes = match self.apply(&batch) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // BEGIN, a savepoint, an insert or COMMIT failed: no request of the batch is
                // known to be committed, so every one fails. The cache only ever holds committed
                // heads, but a COMMIT that reported failure may still have reached the disk:
                // forget the cache and reload heads from the database as needed. (A retry of
                // such a request is then answered with `DuplicateCommand`.)
                tracing::error!(%error, requests = batch.len(), "event log group commit failed");
                self.heads.clear();
                let message = error.to_string();
                batch
                    .iter()
                    .map(|_| Err(LogError::Storage(message.clone())))
                    .collect()
            }
        };

        let mut appends = 0;
        let mut events = 0;
        let mut rejected = 0;
        for outcome in &outcomes {
            match outcome {
                Ok(appended) => {
                    appends += 1;
                    events += appended.last_version - appended.first_version + 1;
                }
                Err(_) => rejected += 1,
            }
        }
        if appends > 0 {
            self.metrics.record(appends, events, started.elapsed());
            if let Some(checkpoints) = &mut self.checkpoints {
                checkpoints.committed(events);
            }
        }
        self.counters.appends.fetch_add(appends, Ordering::Relaxed);
        self.counters.events.fetch_add(events, Ordering::Relaxed);
        self.counters
            .rejected
            .fetch_add(rejected, Ordering::Relaxed);

        for (request, outcome) in batch.into_iter().zip(outcomes) {
            // The caller may have given up waiting; the outcome stands anyway.
            let _ = request.respond.send(outcome);
        }
    }

    /// Runs the transaction of one batch. On success the transaction is committed (or rolled
    /// back when it wrote nothing), the cache and the published position are updated, and the
    /// per-request outcomes are returned. On error the transaction is rolled back if it is
    /// still open, and the cache and the published position are left alone.
    fn apply(
        &mut self,
        batch: &[AppendRequest],
    ) -> rusqlite::Result<Vec<Result<Appended, LogError>>> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = apply_requests(&mut tx, &self.heads, &self.commands, batch)?;

        match applied.last_position {
            Some(position) => {
                tx.commit()?;
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.remember(applied.heads);
                self.recent.push(committed_events(batch, &applied.outcomes));
                // After COMMIT: a subscription woken by this finds the new events.
                self.publish.send_replace(position);
            }
            None => {
                // Every request was refused: nothing to make durable, skip the fsync.
                tx.rollback()?;
                self.remember(applied.heads);
            }
        }
        Ok(applied.outcomes)
    }

    /// Merges the heads of a finished transaction into the cache.
    fn remember(&mut self, heads: HashMap<PlanId, Version>) {
        if self.heads.len() + heads.len() > self.limits.max_cached_plans {
            self.heads.clear();
        }
        self.heads.extend(heads);
    }
}

/// Applies each request of the batch in its own savepoint of `tx`.
///
/// `cached` is the committed head cache; the heads seen or produced inside this transaction are
/// kept apart in [`Applied::heads`] so the cache is untouched until the outcome is known.
fn apply_requests(
    tx: &mut rusqlite::Transaction<'_>,
    cached: &HashMap<PlanId, Version>,
    commands: &CommandIds,
    batch: &[AppendRequest],
) -> rusqlite::Result<Applied> {
    let mut applied = Applied {
        outcomes: Vec::with_capacity(batch.len()),
        heads: HashMap::new(),
        last_position: None,
    };
    for request in batch {
        match apply_one(tx, cached, &mut applied.heads, commands, request) {
            Ok(appended) => {
                applied.last_position = Some(appended.last_position);
                applied.outcomes.push(Ok(appended));
            }
            Err(Rejection::Refused(error)) => applied.outcomes.push(Err(error)),
            Err(Rejection::Fatal(error)) => return Err(error),
        }
    }
    Ok(applied)
}

/// The events of the requests `outcomes` says were appended, as stored. A request's events were
/// inserted one after another inside the transaction holding the write lock, so their
/// positions (rowids) are consecutive, ending at its `last_position`.
fn committed_events<'a>(
    batch: &'a [AppendRequest],
    outcomes: &'a [Result<Appended, LogError>],
) -> impl Iterator<Item = StoredEvent> + 'a {
    batch
        .iter()
        .zip(outcomes)
        .filter_map(|(request, outcome)| Some((request, outcome.as_ref().ok()?)))
        .flat_map(|(request, appended)| {
            let first = appended.last_position + 1 - request.events.len() as u64;
            request
                .events
                .iter()
                .zip(appended.first_version..)
                .zip(first..)
                .map(|((event, version), position)| StoredEvent {
                    trace_context: request.traceparent.clone(),
                    ..event.clone().stored(request.plan_id, version, position)
                })
        })
}

/// Applies one request inside its own savepoint; on refusal the savepoint is rolled back so the
/// request leaves no trace.
fn apply_one(
    tx: &mut rusqlite::Transaction<'_>,
    cached: &HashMap<PlanId, Version>,
    heads: &mut HashMap<PlanId, Version>,
    commands: &CommandIds,
    request: &AppendRequest,
) -> Result<Appended, Rejection> {
    let plan_id = request.plan_id;
    let command_id = request.command_id();
    let duplicate = |tx: &rusqlite::Transaction<'_>| -> Result<(), Rejection> {
        match read::command_record(tx, command_id)? {
            Some(record) => Err(Rejection::Refused(LogError::DuplicateCommand {
                command_id: command_id.to_owned(),
                record,
            })),
            None => Ok(()),
        }
    };

    // A command already stored wins over a version conflict: a client retrying a command that
    // was applied learns where its events are, whatever version it expected. An id the log
    // has never held (every new command) is not looked up; should one be stored after all
    // (by another process), the unique index refuses it below.
    if commands.may_hold(command_id) {
        duplicate(tx)?;
    }

    let head = match heads.get(&plan_id).or_else(|| cached.get(&plan_id)) {
        Some(&head) => head,
        None => read::head_version(tx, plan_id)?,
    };
    heads.insert(plan_id, head);
    if head != request.expected {
        duplicate(tx)?;
        return Err(Rejection::Refused(LogError::VersionConflict {
            plan_id,
            expected: request.expected,
            actual: head,
        }));
    }

    // One INSERT is atomic by itself; several need a savepoint so a failure undoes them all.
    let inserted = if request.events.len() == 1 {
        insert_events(tx, plan_id, head, request)
    } else {
        let savepoint = tx.savepoint()?;
        insert_events(&savepoint, plan_id, head, request).and_then(|appended| {
            savepoint.commit()?;
            Ok(appended)
        })
    };
    match inserted {
        Ok(appended) => {
            heads.insert(plan_id, appended.last_version);
            // Before COMMIT: no reader finds the command stored while its id is unknown here.
            commands.insert(command_id);
            Ok(appended)
        }
        Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            // A constraint stopped the insert, so the head (or the command check) was stale:
            // something other than this writer wrote to the database. This request's inserts
            // are undone (statement or savepoint rollback); tell the caller what the database
            // really says.
            if let Some(record) = read::command_record(tx, command_id)? {
                return Err(Rejection::Refused(LogError::DuplicateCommand {
                    command_id: command_id.to_owned(),
                    record,
                }));
            }
            let actual = read::head_version(tx, plan_id)?;
            heads.insert(plan_id, actual);
            if actual != request.expected {
                return Err(Rejection::Refused(LogError::VersionConflict {
                    plan_id,
                    expected: request.expected,
                    actual,
                }));
            }
            // Neither: e.g. an event id that is already stored.
            Err(Rejection::Refused(storage(error)))
        }
        // Anything else (I/O error, disk full, …) may have rolled back the whole transaction.
        Err(error) => Err(Rejection::Fatal(error)),
    }
}

/// Inserts the events of one request as versions `head + 1 ..`.
fn insert_events(
    conn: &Connection,
    plan_id: PlanId,
    head: Version,
    request: &AppendRequest,
) -> rusqlite::Result<Appended> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events \
           (plan_id, version, event_id, command_id, command_seq, event_type, record_time, \
            payload, trace_context) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let events = &request.events;
    let mut version = head;
    let mut last_position = 0;
    for (seq, event) in events.iter().enumerate() {
        version += 1;
        stmt.execute(params![
            plan_id.as_bytes(),
            to_sql_int(version),
            event.event_id.as_bytes(),
            event.command_id,
            to_sql_int(seq as u64),
            event.event_type,
            event.record_time_micros,
            event.payload,
            request.traceparent,
        ])?;
        last_position = conn.last_insert_rowid();
    }
    Ok(Appended {
        first_version: head + 1,
        last_version: version,
        // Rowids are positive.
        last_position: u64::try_from(last_position).unwrap_or(0),
    })
}

/// Group-commit semantics, driven batch by batch without the thread so that the composition of
/// each batch is exact.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tempfile::TempDir;
    use uuid::Uuid;

    use super::*;
    use crate::CommandRecord;
    use crate::sqlite::schema;

    type Answer = oneshot::Receiver<Result<Appended, LogError>>;

    struct Harness {
        _dir: TempDir,
        writer: Writer,
        published: watch::Receiver<Position>,
        counters: Arc<Counters>,
    }

    fn harness() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let conn =
            schema::open_writer(&dir.path().join("events.db"), Duration::from_secs(5)).unwrap();
        let (_requests, queue) = mpsc::channel(1);
        let (publish, published) = watch::channel(0);
        let counters = Arc::new(Counters::default());
        let memory = (
            Arc::new(CommandIds::load(&conn).unwrap()),
            Arc::new(RecentEvents::new(16, 1 << 20)),
        );
        let limits = WriterLimits {
            max_batch_appends: 512,
            max_batch_bytes: 1 << 20,
            max_cached_plans: 1000,
        };
        let writer = Writer::new(conn, queue, publish, Arc::clone(&counters), limits, memory);
        Harness {
            _dir: dir,
            writer,
            published,
            counters,
        }
    }

    fn request(
        plan_id: PlanId,
        expected: Version,
        command_id: &str,
        count: usize,
        payload_len: usize,
    ) -> (AppendRequest, Answer) {
        let (respond, answer) = oneshot::channel();
        let events = (0..count)
            .map(|_| NewEvent {
                event_id: Uuid::now_v7(),
                command_id: command_id.to_owned(),
                event_type: "test.v1.Event".to_owned(),
                record_time_micros: 0,
                payload: vec![7; payload_len],
            })
            .collect();
        let request = AppendRequest {
            plan_id,
            expected,
            events,
            traceparent: None,
            respond,
        };
        (request, answer)
    }

    /// Commits one batch made of `requests` and returns their answers, in order.
    fn commit(
        writer: &mut Writer,
        requests: Vec<(AppendRequest, Answer)>,
    ) -> Vec<Result<Appended, LogError>> {
        let (batch, answers): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
        writer.commit_batch(batch);
        answers
            .into_iter()
            .map(|mut answer| answer.try_recv().expect("every request is answered"))
            .collect()
    }

    fn versions(outcome: &Result<Appended, LogError>) -> (Version, Version) {
        match outcome {
            Ok(appended) => (appended.first_version, appended.last_version),
            Err(error) => panic!("expected success, got {error}"),
        }
    }

    fn count_rows(writer: &Writer) -> i64 {
        writer
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn one_batch_commits_the_successes_and_refuses_only_the_failing_requests() {
        let mut h = harness();
        let p = Uuid::now_v7();
        let q = Uuid::now_v7();

        let outcomes = commit(
            &mut h.writer,
            vec![
                request(p, 0, "c1", 2, 10),
                request(p, 0, "c2", 1, 10), // stale: c1 moved p to 2 in this batch
                request(p, 2, "c3", 1, 10), // sees the head c1 left inside the batch
                request(q, 0, "c1", 1, 10), // c1 is already applied, in this batch
                request(q, 0, "c5", 1, 10),
                request(q, 0, "c2", 1, 10), // c2 left no trace, but q is at 1 now
            ],
        );

        assert_eq!(versions(&outcomes[0]), (1, 2));
        assert!(matches!(
            outcomes[1],
            Err(LogError::VersionConflict {
                expected: 0,
                actual: 2,
                ..
            })
        ));
        assert_eq!(versions(&outcomes[2]), (3, 3));
        match &outcomes[3] {
            Err(LogError::DuplicateCommand { record, .. }) => assert_eq!(
                record,
                &CommandRecord {
                    command_id: "c1".to_owned(),
                    plan_id: p,
                    first_version: 1,
                    last_version: 2,
                }
            ),
            other => panic!("expected a duplicate command, got {other:?}"),
        }
        assert_eq!(versions(&outcomes[4]), (1, 1));
        assert!(matches!(
            outcomes[5],
            Err(LogError::VersionConflict {
                expected: 0,
                actual: 1,
                ..
            })
        ));

        // One transaction; the last success's position is published; the cache holds the
        // committed heads.
        let stats = h.counters.snapshot();
        assert_eq!(
            (stats.commits, stats.appends, stats.events, stats.rejected),
            (1, 3, 4, 3)
        );
        let last_position = outcomes[4].as_ref().map(|a| a.last_position).unwrap();
        assert_eq!(*h.published.borrow(), last_position);
        assert_eq!(h.writer.heads, HashMap::from([(p, 3), (q, 1)]));
        assert_eq!(count_rows(&h.writer), 4);
    }

    #[test]
    fn a_batch_with_nothing_to_write_is_not_committed() {
        let mut h = harness();
        let p = Uuid::now_v7();
        versions(&commit(&mut h.writer, vec![request(p, 0, "c1", 1, 10)])[0]);
        let published = *h.published.borrow();

        let outcomes = commit(
            &mut h.writer,
            vec![request(p, 0, "c2", 1, 10), request(p, 5, "c1", 1, 10)],
        );
        assert!(matches!(
            outcomes[0],
            Err(LogError::VersionConflict { actual: 1, .. })
        ));
        assert!(matches!(
            outcomes[1],
            Err(LogError::DuplicateCommand { .. })
        ));
        assert_eq!(h.counters.snapshot().commits, 1);
        assert_eq!(*h.published.borrow(), published);
        assert_eq!(h.writer.heads, HashMap::from([(p, 1)]));
    }

    #[test]
    fn a_storage_failure_fails_the_whole_batch_and_forgets_the_heads() {
        let mut h = harness();
        let p = Uuid::now_v7();
        let q = Uuid::now_v7();
        versions(&commit(&mut h.writer, vec![request(p, 0, "c1", 1, 10)])[0]);
        let published = *h.published.borrow();

        // Forbid the database to grow: a small event still fits in the existing pages, a
        // 256 KiB one needs overflow pages and fails with SQLITE_FULL, which is fatal.
        let pages: i64 = h
            .writer
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        h.writer
            .conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let outcomes = commit(
            &mut h.writer,
            vec![
                request(p, 1, "c2", 1, 10),
                request(q, 0, "c3", 1, 256 << 10),
            ],
        );
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Err(LogError::Storage(_))),
                "expected a storage error, got {outcome:?}"
            );
        }
        // Nothing written, nothing published, and no head of the aborted transaction cached.
        assert_eq!(count_rows(&h.writer), 1);
        assert_eq!(*h.published.borrow(), published);
        assert!(h.writer.heads.is_empty());
        assert_eq!(h.counters.snapshot().commits, 1);

        // Once the database may grow again, the same appends succeed at the right versions.
        h.writer
            .conn
            .pragma_update(None, "max_page_count", 1 << 30)
            .unwrap();
        let outcomes = commit(
            &mut h.writer,
            vec![
                request(p, 1, "c2", 1, 10),
                request(q, 0, "c3", 1, 256 << 10),
            ],
        );
        assert_eq!(versions(&outcomes[0]), (2, 2));
        assert_eq!(versions(&outcomes[1]), (1, 1));
        assert_eq!(h.writer.heads, HashMap::from([(p, 2), (q, 1)]));
    }
}
