//! A database file read by a tool beside the process that writes it: an online backup and
//! point reads, with no writer thread of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{read, storage};
use crate::{LogError, PlanId, StoredEvent, Version};

/// An existing SQLite database file (the event log, or any other database of a data
/// directory), opened without creating it and without taking part in its writes.
pub struct DatabaseFile {
    path: PathBuf,
    conn: Connection,
}

impl DatabaseFile {
    /// Opens the database at `path`, which must exist. Another process may be writing it.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        // Read-write (never written through): a read-only connection cannot open a WAL
        // database whose shared-memory file is missing, as when nothing else has it open.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| LogError::Storage(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
        Ok(Self {
            path: path.to_owned(),
            conn,
        })
    }

    /// Copies the database into the new file `to` with SQLite's online backup API, all pages
    /// in one step: the copy is the database as one committed transaction left it, while
    /// writers keep committing (in WAL mode a reader never blocks the writer). The copy is
    /// fsynced before this returns. Refused when `to` exists.
    pub fn backup_to(&self, to: &Path) -> Result<(), LogError> {
        if to.exists() {
            return Err(LogError::Storage(format!(
                "{} exists: a backup is written to a new file",
                to.display()
            )));
        }
        let failed = |e: rusqlite::Error| {
            LogError::Storage(format!(
                "backup of {} to {} failed: {e}",
                self.path.display(),
                to.display()
            ))
        };
        let mut copy = Connection::open(to).map_err(failed)?;
        {
            let backup = Backup::new(&self.conn, &mut copy).map_err(failed)?;
            loop {
                match backup.step(-1).map_err(failed)? {
                    StepResult::Done => break,
                    // Another connection holds a lock the step needs: try again after it.
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        copy.close().map_err(|(_, e)| failed(e))?;
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::Storage(format!("cannot sync {}: {e}", to.display())))
    }

    /// The record of `plan_id` at `version`, if the log holds it (the event log's file only).
    pub fn record_at(
        &self,
        plan_id: PlanId,
        version: Version,
    ) -> Result<Option<StoredEvent>, LogError> {
        Ok(
            read::read_plan::<StoredEvent>(&self.conn, plan_id, version, 1)?
                .into_iter()
                .find(|r| r.version == version),
        )
    }
}
