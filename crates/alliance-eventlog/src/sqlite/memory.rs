//! What the writer keeps in memory so that the busiest reads skip the database: the command ids
//! the log holds (as fingerprints) and the events of the latest commits.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use alliance_stdx::lock;
use rusqlite::Connection;

use crate::{Position, StoredEvent};

/// A 64-bit fingerprint of every command id in the log, so that looking up an id the log has
/// never held (every new command) reads nothing from the database.
///
/// It may answer "maybe" for an id the log does not hold (two ids sharing a fingerprint); the
/// database then answers. It never answers "no" for an id this log wrote: the writer adds an id
/// before the transaction that stores it commits. An id written by another process after this
/// log opened is missed; the `UNIQUE` index on command ids still refuses it a second time.
pub(super) struct CommandIds {
    /// Keyed per process, so no caller can choose ids that share a fingerprint.
    hasher: RandomState,
    held: Mutex<HashSet<u64>>,
}

impl CommandIds {
    /// The command ids already in the database of `conn`.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let ids = Self {
            hasher: RandomState::new(),
            held: Mutex::new(HashSet::new()),
        };
        let mut stmt = conn.prepare("SELECT command_id FROM events WHERE command_seq = 0")?;
        let mut rows = stmt.query([])?;
        let mut held = HashSet::new();
        while let Some(row) = rows.next()? {
            held.insert(ids.fingerprint(row.get_ref(0)?.as_str()?));
        }
        *lock(&ids.held) = held;
        Ok(ids)
    }

    fn fingerprint(&self, command_id: &str) -> u64 {
        self.hasher.hash_one(command_id)
    }

    /// Notes that the log holds (or is about to hold) `command_id`.
    pub(super) fn insert(&self, command_id: &str) {
        let fingerprint = self.fingerprint(command_id);
        lock(&self.held).insert(fingerprint);
    }

    /// `false`: the log does not hold `command_id`. `true`: it may; ask the database.
    pub(super) fn may_hold(&self, command_id: &str) -> bool {
        let fingerprint = self.fingerprint(command_id);
        lock(&self.held).contains(&fingerprint)
    }
}

/// The events of the latest commits, in position order, so that a subscription following the
/// writer (the read models of the same process) takes them from memory instead of reading them
/// back from the database.
pub(super) struct RecentEvents {
    events: Mutex<VecDeque<StoredEvent>>,
    capacity: usize,
}

impl RecentEvents {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// Adds the events of a commit (called after it committed, before it is announced).
    pub(super) fn push(&self, committed: impl IntoIterator<Item = StoredEvent>) {
        let mut events = lock(&self.events);
        for event in committed {
            if events.len() == self.capacity {
                events.pop_front();
            }
            events.push_back(event);
        }
    }

    /// The events at positions `from`, `from + 1`, … (at most `limit`), if the first of them is
    /// still held; `None` to read them from the database. Stops at a gap in positions, which
    /// only another process writing the file could leave: the database has what it wrote.
    pub(super) fn read_from(&self, from: Position, limit: usize) -> Option<Vec<StoredEvent>> {
        let events = lock(&self.events);
        let start = events.partition_point(|e| e.position < from);
        if events.get(start)?.position != from {
            return None;
        }
        Some(
            events
                .range(start..)
                .take(limit)
                .zip(from..)
                .take_while(|(event, expected)| event.position == *expected)
                .map(|(event, _)| event.clone())
                .collect(),
        )
    }
}
