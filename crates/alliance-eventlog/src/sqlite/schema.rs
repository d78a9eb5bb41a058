//! The database schema, its version, and the settings of each kind of connection.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::storage;
use crate::LogError;

/// The schema version this build writes and understands, kept in `PRAGMA user_version`.
/// `0` means a new, empty database.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// Version 1 of the schema.
///
/// * `position` is the rowid: the global order. Rows are never deleted and only the single
///   writer inserts, so positions of committed rows strictly increase in commit order.
/// * `UNIQUE (plan_id, version)` keeps each plan's versions unique even if the writer's head
///   cache were wrong; the writer checks the head so they are also gapless.
/// * `command_seq` is the index of the event within its append; the unique index on
///   `(command_id, command_seq)` finds a command's events and allows each command to be
///   appended once, since a second append would repeat `(command_id, 0)` (the writer checks
///   first and answers `DuplicateCommand`; the index is the backstop).
const SCHEMA_V1: &str = "
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    plan_id     BLOB    NOT NULL CHECK (length(plan_id) = 16),
    version     INTEGER NOT NULL CHECK (version >= 1),
    event_id    BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    command_id  TEXT    NOT NULL,
    command_seq INTEGER NOT NULL CHECK (command_seq >= 0),
    event_type  TEXT    NOT NULL,
    record_time INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    UNIQUE (plan_id, version)
) STRICT;
CREATE UNIQUE INDEX events_command ON events (command_id, command_seq);
";

/// Version 2 adds `trace_context`: the W3C `traceparent` of the append that wrote the event,
/// when it was traced (Kafka carries it as a record header).
const SCHEMA_V2: &str = "ALTER TABLE events ADD COLUMN trace_context TEXT;";

/// Opens the read-write connection of the writer: WAL journal, `synchronous=FULL`, schema
/// created or checked.
pub(super) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, LogError> {
    let mut conn = Connection::open(path).map_err(|e| {
        LogError::Storage(format!("could not open database {}: {e}", path.display()))
    })?;
    conn.busy_timeout(busy_timeout).map_err(storage)?;

    // `PRAGMA journal_mode` answers with the mode in force; it stays `delete` (or `memory`) when
    // WAL is impossible, e.g. for an in-memory database.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(storage)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LogError::Storage(format!(
            "database {} cannot use the wal journal mode (it is in {mode} mode)",
            path.display()
        )));
    }
    // FULL: in WAL mode every commit is fsynced to the WAL before COMMIT returns. Per
    // connection, not persistent, so set on every open.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(storage)?;
    // No checkpoint on the commit path: a thread of its own checkpoints (`checkpoint.rs`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(storage)?;

    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read-only connection for the read pool.
pub(super) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, LogError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        LogError::Storage(format!(
            "could not open database {} for reading: {e}",
            path.display()
        ))
    })?;
    conn.busy_timeout(busy_timeout).map_err(storage)?;
    Ok(conn)
}

/// Creates the schema in a new database, or checks that an existing one has a version this
/// build understands.
fn migrate(conn: &mut Connection) -> Result<(), LogError> {
    // IMMEDIATE: two processes opening a new file at once must not both create the schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(storage)?;
    match version {
        0 | 1 => {
            if version == 0 {
                tx.execute_batch(SCHEMA_V1).map_err(storage)?;
            }
            tx.execute_batch(SCHEMA_V2).map_err(storage)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(storage)?;
            if version == 0 {
                tracing::info!(schema_version = SCHEMA_VERSION, "created event log schema");
            } else {
                tracing::info!(
                    from = version,
                    to = SCHEMA_VERSION,
                    "upgraded event log schema"
                );
            }
        }
        SCHEMA_VERSION => {}
        other => {
            return Err(LogError::Storage(format!(
                "database schema version {other} is not supported, this build knows version \
                 {SCHEMA_VERSION}"
            )));
        }
    }
    tx.commit().map_err(storage)
}
