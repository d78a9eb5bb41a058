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
    held: Mutex<Fingerprints>,
}

/// A set of fingerprints in about 9 bytes each (a hash set takes 16 to 20): most of them in one
/// sorted vector allocated to its size, the latest in a small hash set, merged into the vector
/// once it holds a sixteenth as many.
#[derive(Debug, Default)]
struct Fingerprints {
    sorted: Vec<u64>,
    latest: HashSet<u64>,
}

/// The latest fingerprints are merged into the sorted ones once there are at least this many…
const MERGE_AT_LEAST: usize = 4_096;
/// …and at least the sorted ones divided by this.
const MERGE_FRACTION: usize = 16;

impl Fingerprints {
    fn from_unsorted(mut all: Vec<u64>) -> Self {
        all.sort_unstable();
        all.dedup();
        all.shrink_to_fit();
        Self {
            sorted: all,
            latest: HashSet::new(),
        }
    }

    fn contains(&self, fingerprint: u64) -> bool {
        self.latest.contains(&fingerprint) || self.sorted.binary_search(&fingerprint).is_ok()
    }

    fn insert(&mut self, fingerprint: u64) {
        if self.contains(fingerprint) {
            return;
        }
        self.latest.insert(fingerprint);
        if self.latest.len() >= MERGE_AT_LEAST.max(self.sorted.len() / MERGE_FRACTION) {
            self.merge();
        }
    }

    /// The latest into the sorted ones, in a vector of their joint size.
    fn merge(&mut self) {
        let mut latest: Vec<u64> = self.latest.drain().collect();
        latest.sort_unstable();
        let mut merged = Vec::with_capacity(self.sorted.len() + latest.len());
        let (mut old, mut new) = (self.sorted.iter().peekable(), latest.iter().peekable());
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
        self.sorted = merged;
    }
}

impl CommandIds {
    /// The command ids already in the database of `conn`.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let ids = Self {
            hasher: RandomState::new(),
            held: Mutex::new(Fingerprints::default()),
        };
        let mut stmt = conn.prepare("SELECT command_id FROM events WHERE command_seq = 0")?;
        let mut rows = stmt.query([])?;
        let mut held = Vec::new();
        while let Some(row) = rows.next()? {
            held.push(ids.fingerprint(row.get_ref(0)?.as_str()?));
        }
        *lock(&ids.held) = Fingerprints::from_unsorted(held);
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

    /// Every fingerprint inserted is held, across the merges, whatever the order; none other
    /// is; and the set takes at most 10 bytes a fingerprint.
    #[test]
    fn fingerprints_are_all_held_in_about_nine_bytes_each() {
        let hasher = RandomState::new();
        let all: Vec<u64> = (0..200_000u64).map(|n| hasher.hash_one(n)).collect();
        let (loaded, inserted) = all.split_at(50_000);
        let mut set = Fingerprints::from_unsorted(loaded.to_vec());
        for (n, fingerprint) in inserted.iter().enumerate() {
            set.insert(*fingerprint);
            // A repeat changes nothing.
            set.insert(inserted[n / 2]);
        }
        assert!(all.iter().all(|f| set.contains(*f)));
        assert!((200_000..210_000u64).all(|n| !set.contains(hasher.hash_one(n))));
        assert_eq!(set.sorted.len() + set.latest.len(), all.len());
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(set.sorted.capacity(), set.sorted.len());
        let bytes = set.sorted.capacity() * 8 + set.latest.capacity() * 9;
        assert!(
            bytes <= all.len() * 10,
            "{bytes} bytes for {} fingerprints",
            all.len()
        );
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
