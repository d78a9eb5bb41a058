//! What the writer keeps in memory so that the busiest reads skip the database: the command ids
//! the log holds (as fingerprints) and the events of the latest commits.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use alliance_stdx::lock;
use growable_bloom_filter::GrowableBloom;
use rusqlite::Connection;

use crate::{Position, StoredEvent};

/// Every command id in the log, as a Bloom filter of their 64-bit fingerprints, so that looking
/// up an id the log has never held (every new command) reads nothing from the database.
///
/// It may answer "maybe" for an id the log does not hold (one in a thousand at first, up to
/// about one in 150 as the filter grows, each filter added a little tighter; or two ids sharing
/// a fingerprint); the database then answers. It never answers "no" for an id this log
/// wrote: the writer adds an id before the transaction that stores it commits. An id written
/// by another process after this log opened is missed; the `UNIQUE` index on command ids still
/// refuses it a second time.
///
/// A filter (`growable_bloom_filter`: filters added as it fills, each twice the last) holds an
/// id in 2 to 6 bytes (sized for twice the events held at open, then growing); the set of
/// fingerprints it replaced held one in 16 to 18 (8 bytes, a control byte, and a table at most
/// seven-eighths full that doubles), the largest share of the embedded server's memory after
/// the read models.
pub(super) struct CommandIds {
    /// Keyed per process, so no caller can choose ids that the filter mistakes for others (that
    /// would only cost database reads: the filter's own hash is not keyed).
    hasher: RandomState,
    held: Mutex<GrowableBloom>,
}

/// The share of ids never written that the filter answers "maybe" for.
const MAYBE_FOR_NEW: f64 = 0.001;

impl CommandIds {
    /// The command ids already in the database of `conn`.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        // The events held, at least as many as the ids: read from the table's key, not counted
        // (that would read every id twice).
        let held: i64 =
            conn.query_row("SELECT coalesce(max(position), 0) FROM events", [], |row| {
                row.get(0)
            })?;
        // Sized for the ids held, and as many again to come before the first growth (at most
        // 2^32 to start with: the filter grows from there).
        let expected =
            usize::try_from(held.saturating_mul(2).clamp(1 << 16, 1 << 32)).unwrap_or(1 << 16);
        let ids = Self {
            hasher: RandomState::new(),
            held: Mutex::new(GrowableBloom::new(MAYBE_FOR_NEW, expected)),
        };
        let mut stmt = conn.prepare("SELECT command_id FROM events WHERE command_seq = 0")?;
        let mut rows = stmt.query([])?;
        {
            let mut filter = lock(&ids.held);
            while let Some(row) = rows.next()? {
                filter.insert(ids.fingerprint(row.get_ref(0)?.as_str()?));
            }
        }
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

    /// No id the log holds or was told of is ever answered "no" (a retry would be taken for a
    /// new command), and few never written are answered "maybe" (each costs a database read).
    #[test]
    fn command_ids_held_are_always_found_and_few_others_are_maybe() {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE events (position INTEGER PRIMARY KEY, command_id TEXT NOT NULL, \
             command_seq INTEGER NOT NULL);",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..1000 {
            conn.execute(
                "INSERT INTO events (command_id, command_seq) VALUES (?1, 0), (?1, 1)",
                [format!("stored-{n}")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let ids = CommandIds::load(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert!((0..1000).all(|n| ids.may_hold(&format!("stored-{n}"))));
        // Past the filter's first size (65,536 expected), so it grows several times.
        let written = 300_000;
        for n in 0..written {
            ids.insert(&format!("written-{n}"));
        }
        assert!((0..1000).all(|n| ids.may_hold(&format!("stored-{n}"))));
        assert!((0..written).all(|n| ids.may_hold(&format!("written-{n}"))));
        let maybe = (0..100_000)
            .filter(|n| ids.may_hold(&format!("never-{n}")))
            .count();
        assert!(maybe <= 500, "{maybe} of 100,000 new ids answered maybe");
    }
}
