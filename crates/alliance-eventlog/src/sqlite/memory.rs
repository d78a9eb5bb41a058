//! What the writer keeps in memory so that the busiest reads skip the database: the command ids
//! the log holds (as fingerprints) and the events of the latest commits.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

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
    held: Mutex<Fingerprints>,
}

/// A set of fingerprints in about 9 bytes each (a hash set takes 16 to 20): most of them in one
/// sorted slice allocated to its size, the latest in a small hash set, merged into a new slice
/// once it holds a sixteenth as many. The merge is made outside the lock: readers go on
/// answering from the slice and the set meanwhile.
#[derive(Debug)]
struct Fingerprints {
    sorted: Arc<[u64]>,
    latest: HashSet<u64>,
}

/// The latest fingerprints are merged into the sorted ones once there are at least this many…
const MERGE_AT_LEAST: usize = 4_096;
/// …and at least the sorted ones divided by this.
const MERGE_FRACTION: usize = 16;

/// A merge to make: the sorted fingerprints as they were, and the latest then, sorted.
struct Merge {
    sorted: Arc<[u64]>,
    latest: Vec<u64>,
}

impl Fingerprints {
    fn from_unsorted(mut all: Vec<u64>) -> Self {
        all.sort_unstable();
        all.dedup();
        Self {
            sorted: all.into(),
            latest: HashSet::new(),
        }
    }

    fn contains(&self, fingerprint: u64) -> bool {
        self.latest.contains(&fingerprint) || self.sorted.binary_search(&fingerprint).is_ok()
    }

    /// Adds `fingerprint`; the merge to make, when one is due.
    fn add(&mut self, fingerprint: u64) -> Option<Merge> {
        if self.contains(fingerprint) {
            return None;
        }
        self.latest.insert(fingerprint);
        (self.latest.len() >= MERGE_AT_LEAST.max(self.sorted.len() / MERGE_FRACTION)).then(|| {
            let mut latest: Vec<u64> = self.latest.iter().copied().collect();
            latest.sort_unstable();
            Merge {
                sorted: Arc::clone(&self.sorted),
                latest,
            }
        })
    }

    /// Takes in a merge made: its fingerprints leave the latest (those added meanwhile stay).
    /// A merge made from sorted fingerprints since replaced is dropped; what it holds is still
    /// held.
    fn settle(&mut self, merge: &Merge, merged: Arc<[u64]>) {
        if Arc::ptr_eq(&self.sorted, &merge.sorted) {
            for fingerprint in &merge.latest {
                self.latest.remove(fingerprint);
            }
            self.sorted = merged;
        }
    }
}

impl Merge {
    /// The sorted fingerprints and the latest, in one slice of their joint size.
    fn make(&self) -> Arc<[u64]> {
        let mut merged = Vec::with_capacity(self.sorted.len() + self.latest.len());
        let (mut old, mut new) = (self.sorted.iter().peekable(), self.latest.iter().peekable());
        while let (Some(a), Some(b)) = (old.peek(), new.peek()) {
            if a < b {
                merged.push(**a);
                old.next();
            } else {
                merged.push(**b);
                new.next();
            }
        }
        merged.extend(old.chain(new));
        merged.into()
    }
}

impl CommandIds {
    /// The command ids already in the database of `conn`.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let hasher = RandomState::new();
        let mut stmt = conn.prepare("SELECT command_id FROM events WHERE command_seq = 0")?;
        let mut rows = stmt.query([])?;
        let mut held = Vec::new();
        while let Some(row) = rows.next()? {
            held.push(hasher.hash_one(row.get_ref(0)?.as_str()?));
        }
        Ok(Self {
            hasher,
            held: Mutex::new(Fingerprints::from_unsorted(held)),
        })
    }

    fn fingerprint(&self, command_id: &str) -> u64 {
        self.hasher.hash_one(command_id)
    }

    /// Notes that the log holds (or is about to hold) `command_id`.
    pub(super) fn insert(&self, command_id: &str) {
        let fingerprint = self.fingerprint(command_id);
        let merge = lock(&self.held).add(fingerprint);
        if let Some(merge) = merge {
            let merged = merge.make();
            lock(&self.held).settle(&merge, merged);
        }
    }

    /// `false`: the log does not hold `command_id`. `true`: it may; ask the database.
    pub(super) fn may_hold(&self, command_id: &str) -> bool {
        let fingerprint = self.fingerprint(command_id);
        lock(&self.held).contains(fingerprint)
    }
}

/// The events of the latest commits, in position order, so that a subscription following the
/// writer (the read models of the same process) takes them from memory instead of reading them
/// back from the database.
pub(super) struct RecentEvents {
    held: Mutex<Held>,
    /// At most this many events are held…
    capacity: usize,
    /// …and at most this many bytes of their payloads.
    max_bytes: usize,
}

#[derive(Default)]
struct Held {
    events: VecDeque<StoredEvent>,
    bytes: usize,
}

impl RecentEvents {
    pub(super) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            capacity,
            max_bytes,
        }
    }

    /// Adds the events of a commit (called after it committed, before it is announced),
    /// letting the oldest go beyond the limits.
    pub(super) fn push(&self, committed: impl IntoIterator<Item = StoredEvent>) {
        let mut held = lock(&self.held);
        for event in committed {
            held.bytes += event.payload.len();
            held.events.push_back(event);
            while held.events.len() > self.capacity || held.bytes > self.max_bytes {
                let Some(oldest) = held.events.pop_front() else {
                    break;
                };
                held.bytes -= oldest.payload.len();
            }
        }
    }

    /// The events at positions `from`, `from + 1`, … (at most `limit`), if the first of them is
    /// still held; `None` to read them from the database. Stops at a gap in positions, which
    /// only another process writing the file could leave: the database has what it wrote.
    pub(super) fn read_from(&self, from: Position, limit: usize) -> Option<Vec<StoredEvent>> {
        let held = lock(&self.held);
        let events = &held.events;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id inserted is held, across the merges, whatever the order; a repeat changes
    /// nothing; the set takes at most 10 bytes a fingerprint; and a merge made while another
    /// replaced the sorted ones loses nothing.
    #[test]
    fn command_ids_are_all_held_in_about_nine_bytes_each() {
        let hasher = RandomState::new();
        let ids: Vec<String> = (0..200_000).map(|n| format!("command-{n}")).collect();
        let (loaded, inserted) = ids.split_at(50_000);
        let set = CommandIds {
            held: Mutex::new(Fingerprints::from_unsorted(
                loaded.iter().map(|id| hasher.hash_one(id)).collect(),
            )),
            hasher,
        };
        for (n, id) in inserted.iter().enumerate() {
            set.insert(id);
            set.insert(&inserted[n / 2]);
        }
        assert!(ids.iter().all(|id| set.may_hold(id)));
        assert!((200_000..210_000).all(|n| !set.may_hold(&format!("command-{n}"))));
        let held = lock(&set.held);
        assert_eq!(held.sorted.len() + held.latest.len(), ids.len());
        assert!(held.sorted.windows(2).all(|w| w[0] < w[1]));
        let bytes = held.sorted.len() * 8 + held.latest.capacity() * 9;
        assert!(
            bytes <= ids.len() * 10,
            "{bytes} bytes for {} fingerprints",
            ids.len()
        );
        drop(held);

        // Two merges from the same sorted fingerprints: the second is dropped, and what it
        // would have merged is still held.
        let mut fingerprints = Fingerprints::from_unsorted(vec![1, 5]);
        let mut due = None;
        for f in 10..10 + MERGE_AT_LEAST as u64 {
            due = fingerprints.add(f);
        }
        let first = due.expect("a merge is due");
        let late = Merge {
            sorted: Arc::clone(&first.sorted),
            latest: first.latest.clone(),
        };
        assert!(fingerprints.add(3).is_some());
        fingerprints.settle(&first, first.make());
        fingerprints.settle(&late, Arc::from([]));
        assert_eq!(fingerprints.sorted.len(), 2 + MERGE_AT_LEAST);
        assert_eq!(fingerprints.latest.iter().copied().collect::<Vec<_>>(), [3]);
        assert!([1, 3, 5, 10].iter().all(|f| fingerprints.contains(*f)));
    }

    fn event(position: Position, bytes: usize) -> StoredEvent {
        StoredEvent {
            position,
            plan_id: uuid::Uuid::nil(),
            version: position,
            event_id: uuid::Uuid::nil(),
            command_id: String::new(),
            event_type: String::new(),
            record_time_micros: 0,
            payload: vec![0; bytes],
            origin: None,
            trace_context: None,
        }
    }

    /// Large events are let go by their bytes, not only by their count: memory stays bounded
    /// whatever the size of what is written.
    #[test]
    fn the_latest_events_are_held_within_a_count_and_a_size() {
        let recent = RecentEvents::new(100, 10 << 20);
        recent.push((1..=3).map(|p| event(p, 4 << 20)));
        assert!(
            recent.read_from(1, 10).is_none(),
            "12 MiB held under a limit of 10"
        );
        let held: Vec<Position> = recent
            .read_from(2, 10)
            .expect("the last two are held")
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(held, [2, 3]);

        recent.push((4..=200).map(|p| event(p, 1)));
        assert!(
            recent.read_from(100, 10).is_none(),
            "more than 100 events held"
        );
        assert_eq!(recent.read_from(101, 1000).map(|e| e.len()), Some(100));
    }
}
