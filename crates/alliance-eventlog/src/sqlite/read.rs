//! Read-only connections and the queries shared by readers and the writer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alliance_stdx::lock;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{schema, storage, to_sql_int};
use crate::{ChainRecord, CommandRecord, LogError, PlanId, Position, StoredEvent, Version};

/// A query started on the read pool ([`ReadPool::start`]).
pub(super) type Reading<T> = tokio::task::JoinHandle<Result<T, LogError>>;

/// The outcome of a started query.
pub(super) fn finished<T>(
    outcome: Result<Result<T, LogError>, tokio::task::JoinError>,
) -> Result<T, LogError> {
    outcome.map_err(|e| LogError::Unavailable(format!("event log read task failed: {e}")))?
}

/// A small pool of read-only connections, used from the blocking thread pool.
///
/// A read takes an idle connection or opens a new one, so reads never wait for each other nor
/// for the writer; at most `max_idle` connections are kept afterwards.
pub(super) struct ReadPool {
    path: PathBuf,
    busy_timeout: Duration,
    /// Idle connections kept; set to 0 when the log closes.
    max_idle: AtomicUsize,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf, max_idle: usize, busy_timeout: Duration) -> Self {
        Self {
            path,
            busy_timeout,
            max_idle: AtomicUsize::new(max_idle),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Opens one connection and keeps it, to fail early if the database cannot be read.
    pub(super) fn check(&self) -> Result<(), LogError> {
        let conn = self.take()?;
        last_position(&conn).map_err(storage)?;
        self.give_back(conn);
        Ok(())
    }

    /// Runs `query` on a pooled connection on the runtime's blocking thread pool.
    pub(super) async fn run<T, F>(self: &Arc<Self>, query: F) -> Result<T, LogError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, LogError> + Send + 'static,
    {
        finished(self.start(query).await)
    }

    /// Starts `query` on a pooled connection on the runtime's blocking thread pool now, so it
    /// proceeds while the caller does other work; [`finished`] reads its outcome.
    pub(super) fn start<T, F>(self: &Arc<Self>, query: F) -> Reading<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, LogError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = query(&conn);
            pool.give_back(conn);
            result
        })
    }

    /// Closes the idle connections (those in use are closed when given back).
    pub(super) fn close_idle(&self) {
        self.max_idle.store(0, Ordering::Relaxed);
        let idle = std::mem::take(&mut *lock(&self.idle));
        drop(idle);
    }

    fn take(&self) -> Result<Connection, LogError> {
        // The guarded Vec stays consistent even if a holder panicked, so poisoning is harmless.
        let idle = lock(&self.idle).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path, self.busy_timeout),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.max_idle.load(Ordering::Relaxed) {
            idle.push(conn);
        }
    }
}

const EVENT_COLUMNS: &str = "position, plan_id, version, event_id, command_id, event_type, record_time, payload, \
     trace_context";

/// A row of the log as one kind of reader reads it: every column ([`StoredEvent`]), or what a
/// chain check reads ([`ChainRecord`]).
pub(super) trait LogRow: Sized + Send + 'static {
    /// The columns read, in the order `from_row` reads them.
    const COLUMNS: &'static str;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;

    fn version(&self) -> Version;
}

impl LogRow for StoredEvent {
    const COLUMNS: &'static str = EVENT_COLUMNS;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        event_from_row(row)
    }

    fn version(&self) -> Version {
        self.version
    }
}

impl LogRow for ChainRecord {
    const COLUMNS: &'static str = "position, plan_id, version, payload";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ChainRecord {
            position: unsigned(row, 0)?,
            plan_id: uuid(row, 1)?,
            version: unsigned(row, 2)?,
            payload: row.get(3)?,
            origin: None,
        })
    }

    fn version(&self) -> Version {
        self.version
    }
}

/// Records of one plan with `version >= from`, in version order, at most `limit`.
pub(super) fn read_plan<T: LogRow>(
    conn: &Connection,
    plan_id: PlanId,
    from: Version,
    limit: usize,
) -> Result<Vec<T>, LogError> {
    select(
        conn,
        T::COLUMNS,
        "plan_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3",
        params![plan_id.as_bytes(), to_sql_int(from), limit_param(limit)],
        limit,
        T::from_row,
    )
}

/// Events of all plans with `position >= from`, in position order, at most `limit`.
pub(super) fn read_all(
    conn: &Connection,
    from: Position,
    limit: usize,
) -> Result<Vec<StoredEvent>, LogError> {
    select_events(
        conn,
        "position >= ?1 ORDER BY position LIMIT ?2",
        params![to_sql_int(from), limit_param(limit)],
        limit,
    )
}

/// Records of all plans with `from <= position < to`, in position order.
pub(super) fn read_range<T: LogRow>(
    conn: &Connection,
    from: Position,
    to: Position,
) -> Result<Vec<T>, LogError> {
    // Positions are dense: the range holds about `to - from` events.
    select(
        conn,
        T::COLUMNS,
        "position >= ?1 AND position < ?2 ORDER BY position",
        params![to_sql_int(from), to_sql_int(to)],
        usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX),
        T::from_row,
    )
}

/// The most events a read reserves room for before it reads them.
const RESERVE_AT_MOST: usize = 4_096;

/// The events `WHERE condition` (with its ordering and limit; always this file's own text, never
/// a caller's) selects, room for about `expected` of them allocated once: up to a bound, so that
/// a read that may hold many but holds few reserves no more than that.
fn select_events(
    conn: &Connection,
    condition: &'static str,
    params: impl rusqlite::Params,
    expected: usize,
) -> Result<Vec<StoredEvent>, LogError> {
    select(
        conn,
        EVENT_COLUMNS,
        condition,
        params,
        expected,
        event_from_row,
    )
}

/// [`select_events`] of `columns` (this file's own text too), each row as `from_row` reads it.
fn select<T>(
    conn: &Connection,
    columns: &'static str,
    condition: &'static str,
    params: impl rusqlite::Params,
    expected: usize,
    from_row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, LogError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {columns} FROM events WHERE {condition}"))
        .map_err(storage)?;
    let rows = stmt.query_map(params, from_row).map_err(storage)?;
    let mut events = Vec::with_capacity(expected.min(RESERVE_AT_MOST));
    for event in rows {
        events.push(event.map_err(storage)?);
    }
    Ok(events)
}

/// The head version of a plan, `0` if it has no events.
pub(super) fn plan_version(conn: &Connection, plan_id: PlanId) -> Result<Version, LogError> {
    head_version(conn, plan_id).map_err(storage)
}

/// The head version of a plan, with SQLite's error (the writer distinguishes them).
pub(super) fn head_version(conn: &Connection, plan_id: PlanId) -> rusqlite::Result<Version> {
    // ORDER BY … DESC LIMIT 1 walks the (plan_id, version) unique index backwards: one probe.
    let mut stmt = conn.prepare_cached(
        "SELECT version FROM events WHERE plan_id = ?1 ORDER BY version DESC LIMIT 1",
    )?;
    let version = stmt
        .query_row(params![plan_id.as_bytes()], |row| unsigned(row, 0))
        .optional()?;
    Ok(version.unwrap_or(0))
}

/// Where command `command_id` was appended, if it was.
pub(super) fn find_command(
    conn: &Connection,
    command_id: &str,
) -> Result<Option<CommandRecord>, LogError> {
    command_record(conn, command_id).map_err(storage)
}

/// Where command `command_id` was appended, with SQLite's error.
///
/// The command's first event (`command_seq = 0`, unique per command) gives the plan and the
/// first version; the last version is the highest among the plan's events of that command.
pub(super) fn command_record(
    conn: &Connection,
    command_id: &str,
) -> rusqlite::Result<Option<CommandRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.plan_id, f.version, \
                (SELECT max(l.version) FROM events l \
                  WHERE l.command_id = f.command_id AND l.plan_id = f.plan_id) \
           FROM events f WHERE f.command_id = ?1 AND f.command_seq = 0",
    )?;
    stmt.query_row(params![command_id], |row| {
        Ok(CommandRecord {
            command_id: command_id.to_owned(),
            plan_id: uuid(row, 0)?,
            first_version: unsigned(row, 1)?,
            last_version: unsigned(row, 2)?,
        })
    })
    .optional()
}

/// The highest position in the log, `0` if it is empty.
pub(super) fn last_position(conn: &Connection) -> rusqlite::Result<Position> {
    // max(rowid) is answered from the end of the table's b-tree.
    conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |row| {
        unsigned(row, 0)
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        position: unsigned(row, 0)?,
        plan_id: uuid(row, 1)?,
        version: unsigned(row, 2)?,
        event_id: uuid(row, 3)?,
        command_id: row.get(4)?,
        event_type: row.get(5)?,
        record_time_micros: row.get(6)?,
        payload: row.get(7)?,
        origin: None,
        trace_context: row.get(8)?,
    })
}

/// A non-negative `INTEGER` column as `u64`.
fn unsigned(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

/// A 16-byte `BLOB` column as a UUID.
fn uuid(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let bytes = row.get_ref(idx)?.as_blob()?;
    Uuid::from_slice(bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Blob, Box::new(e)))
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
