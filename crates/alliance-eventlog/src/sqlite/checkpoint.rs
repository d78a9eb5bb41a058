//! WAL checkpoints off the commit path: SQLite's automatic checkpoint would run inside a
//! commit, before its appends are answered. The writer's connection has it off; the writer
//! checkpoints after every [`CHECKPOINT_EVERY`] events instead, once the batch that reached
//! that count has been answered and before it takes the next. No commit runs during the
//! checkpoint, so it copies the whole WAL (unless a reader still needs part of it) and the
//! next commit starts the WAL over: the WAL stays the size of a few thousand events.

use rusqlite::Connection;
use tokio::sync::watch;

/// Events written between two checkpoints (a few MiB of WAL at the envelopes' sizes).
pub(super) const CHECKPOINT_EVERY: u64 = 4096;

pub(super) struct Checkpoints {
    /// Events committed since the last checkpoint.
    written: u64,
    done: watch::Sender<u64>,
}

impl Checkpoints {
    /// Also returns the number of checkpoints run, as it changes.
    pub(super) fn new() -> (Self, watch::Receiver<u64>) {
        let (done, count) = watch::channel(0);
        (Self { written: 0, done }, count)
    }

    /// Notes `events` committed.
    pub(super) fn committed(&mut self, events: u64) {
        self.written += events;
    }

    /// Checkpoints `conn`'s WAL if enough was written since the last time.
    pub(super) fn run_if_due(&mut self, conn: &Connection) {
        if self.written < CHECKPOINT_EVERY {
            return;
        }
        self.written = 0;
        // PASSIVE: copies what no reader still needs, waiting for no one.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => self.done.send_modify(|count| *count += 1),
            Err(error) => tracing::warn!(%error, "event log checkpoint failed"),
        }
    }
}
