//! Appends and reads on one handle; refusals; reopening.

use std::time::Duration;

use alliance_eventlog::{Appended, CommandRecord, EventLog, LogError, SqliteLog, SqliteLogConfig};
use uuid::Uuid;

use crate::common::{assert_stored, events, open, read_everything, temp_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_reads_back_what_was_appended() {
    let (_dir, log) = temp_log();
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    assert_eq!(log.plan_version(a).await.unwrap(), 0);
    assert!(log.read_plan(a, 0, 10).await.unwrap().is_empty());
    assert!(read_everything(&log).await.is_empty());

    let a1_sent = events("a-1", 2);
    let b1_sent = events("b-1", 1);
    let a2_sent = events("a-2", 3);
    let a1 = log.append(a, 0, a1_sent.clone()).await.unwrap();
    let b1 = log.append(b, 0, b1_sent.clone()).await.unwrap();
    let a2 = log.append(a, 2, a2_sent.clone()).await.unwrap();
    assert_eq!((a1.first_version, a1.last_version), (1, 2));
    assert_eq!((b1.first_version, b1.last_version), (1, 1));
    assert_eq!((a2.first_version, a2.last_version), (3, 5));
    assert!(a1.last_position < b1.last_position && b1.last_position < a2.last_position);

    // The whole plan, in version order, exactly as sent.
    let plan_a = log.read_plan(a, 0, 100).await.unwrap();
    let sent_a: Vec<_> = a1_sent.iter().chain(&a2_sent).collect();
    assert_eq!(plan_a.len(), 5);
    for ((stored, sent), version) in plan_a.iter().zip(&sent_a).zip(1..) {
        assert_stored(stored, sent, a, version);
    }
    assert_eq!(plan_a[1].position, a1.last_position);
    assert_eq!(plan_a[4].position, a2.last_position);

    // From a middle version, with and without a limit.
    let versions = |events: Vec<alliance_eventlog::StoredEvent>| {
        events.iter().map(|e| e.version).collect::<Vec<_>>()
    };
    assert_eq!(versions(log.read_plan(a, 3, 100).await.unwrap()), [3, 4, 5]);
    assert_eq!(versions(log.read_plan(a, 2, 2).await.unwrap()), [2, 3]);
    assert!(log.read_plan(a, 6, 100).await.unwrap().is_empty());
    assert!(log.read_plan(a, 1, 0).await.unwrap().is_empty());

    // The global order interleaves the plans in append order.
    let all = read_everything(&log).await;
    let order: Vec<_> = all.iter().map(|e| (e.plan_id, e.version)).collect();
    assert_eq!(order, [(a, 1), (a, 2), (b, 1), (a, 3), (a, 4), (a, 5)]);
    assert_stored(&all[2], &b1_sent[0], b, 1);
    assert_eq!(all[2].position, b1.last_position);
    for pair in all.windows(2) {
        assert!(pair[0].position < pair[1].position);
    }
    let middle = log.read_all(all[2].position, 2).await.unwrap();
    assert_eq!(middle, all[2..4]);
    assert!(
        log.read_all(a2.last_position + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(log.plan_version(a).await.unwrap(), 5);
    assert_eq!(log.plan_version(b).await.unwrap(), 1);
    assert_eq!(log.plan_version(Uuid::now_v7()).await.unwrap(), 0);

    assert_eq!(
        log.find_command("a-2").await.unwrap(),
        Some(CommandRecord {
            command_id: "a-2".to_owned(),
            plan_id: a,
            first_version: 3,
            last_version: 5,
        })
    );
    assert_eq!(
        log.find_command("b-1").await.unwrap(),
        Some(CommandRecord {
            command_id: "b-1".to_owned(),
            plan_id: b,
            first_version: 1,
            last_version: 1,
        })
    );
    assert_eq!(log.find_command("never-sent").await.unwrap(), None);

    let stats = log.stats();
    assert_eq!((stats.appends, stats.events, stats.rejected), (3, 6, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_expected_version_conflicts_and_writes_nothing() {
    let (_dir, log) = temp_log();
    let plan = Uuid::now_v7();
    log.append(plan, 0, events("first", 2)).await.unwrap();
    let before = read_everything(&log).await;

    for stale in [0, 1, 3, 7] {
        match log.append(plan, stale, events("late", 2)).await {
            Err(LogError::VersionConflict {
                plan_id,
                expected,
                actual,
            }) => assert_eq!((plan_id, expected, actual), (plan, stale, 2)),
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
    assert_eq!(read_everything(&log).await, before);
    assert_eq!(log.plan_version(plan).await.unwrap(), 2);
    assert_eq!(log.find_command("late").await.unwrap(), None);

    // The refused command can then be appended at the right version.
    let appended = log.append(plan, 2, events("late", 2)).await.unwrap();
    assert_eq!((appended.first_version, appended.last_version), (3, 4));
    assert_eq!(log.stats().rejected, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_append_is_refused() {
    let (_dir, log) = temp_log();
    let plan = Uuid::now_v7();
    assert!(matches!(
        log.append(plan, 0, Vec::new()).await,
        Err(LogError::EmptyAppend)
    ));
    assert_eq!(log.plan_version(plan).await.unwrap(), 0);
    assert!(read_everything(&log).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_mixing_command_ids_is_refused() {
    let (_dir, log) = temp_log();
    let plan = Uuid::now_v7();
    let mut mixed = events("one", 1);
    mixed.extend(events("other", 1));
    assert!(matches!(
        log.append(plan, 0, mixed).await,
        Err(LogError::Storage(_))
    ));
    assert!(read_everything(&log).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_command_returns_first_record_and_writes_nothing() {
    let (_dir, log) = temp_log();
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    log.append(a, 0, events("setup", 1)).await.unwrap();
    let first = log.append(a, 1, events("cmd", 2)).await.unwrap();
    assert_eq!((first.first_version, first.last_version), (2, 3));
    let before = read_everything(&log).await;
    let record = CommandRecord {
        command_id: "cmd".to_owned(),
        plan_id: a,
        first_version: 2,
        last_version: 3,
    };

    // Same plan at the right head, same plan at a stale head, another plan: all refused with
    // the first record (a duplicate wins over a version conflict).
    for (plan, expected) in [(a, 3), (a, 1), (b, 0)] {
        match log.append(plan, expected, events("cmd", 1)).await {
            Err(LogError::DuplicateCommand {
                command_id,
                record: found,
            }) => {
                assert_eq!(command_id, "cmd");
                assert_eq!(found, record);
            }
            other => panic!("expected a duplicate command, got {other:?}"),
        }
    }
    assert_eq!(read_everything(&log).await, before);
    assert_eq!(log.plan_version(a).await.unwrap(), 3);
    assert_eq!(log.plan_version(b).await.unwrap(), 0);
    assert_eq!(log.find_command("cmd").await.unwrap(), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_events_and_continues_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("events.db");
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();

    let (before, last): (_, Appended) = {
        let log = open(&path);
        log.append(a, 0, events("a-1", 3)).await.unwrap();
        log.append(b, 0, events("b-1", 1)).await.unwrap();
        let last = log.append(a, 3, events("a-2", 1)).await.unwrap();
        (read_everything(&log).await, last)
        // Dropped here: the writer thread exits and closes the database.
    };

    // The last handle's drop stopped the writer and closed every connection: the last one to
    // close checkpointed the WAL into the database and removed it.
    let wal = path.with_extension("db-wal");
    assert!(!wal.exists(), "{} was left behind", wal.display());

    let log = open(&path);
    assert_eq!(read_everything(&log).await, before);
    assert_eq!(log.plan_version(a).await.unwrap(), 4);
    assert_eq!(log.plan_version(b).await.unwrap(), 1);
    assert_eq!(
        log.find_command("a-2")
            .await
            .unwrap()
            .map(|r| r.first_version),
        Some(4)
    );

    // The new writer starts with an empty cache and must still see the heads and commands.
    assert!(matches!(
        log.append(a, 3, events("a-3", 1)).await,
        Err(LogError::VersionConflict { actual: 4, .. })
    ));
    assert!(matches!(
        log.append(b, 1, events("a-1", 1)).await,
        Err(LogError::DuplicateCommand { .. })
    ));
    let next = log.append(a, 4, events("a-3", 2)).await.unwrap();
    assert_eq!((next.first_version, next.last_version), (5, 6));
    assert!(next.last_position > last.last_position);
    let b2 = log.append(b, 1, events("b-2", 1)).await.unwrap();
    assert_eq!(b2.first_version, 2);
    assert_eq!(read_everything(&log).await.len(), before.len() + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_is_created_in_wal_mode_with_a_schema_version() {
    let (dir, log) = temp_log();
    log.append(Uuid::now_v7(), 0, events("one", 1))
        .await
        .unwrap();

    let path = dir.path().join("events.db");
    assert_eq!(single::<String>(&path, "PRAGMA journal_mode"), "wal");
    assert_eq!(single::<i64>(&path, "PRAGMA user_version"), 2);
    assert_eq!(single::<i64>(&path, "SELECT count(*) FROM events"), 1);
}

/// The one value `query` answers on the SQLite file at `path`.
fn single<T: rusqlite::types::FromSql>(path: &std::path::Path, query: &str) -> T {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(query, [], |row| row.get(0))
        .unwrap()
}

/// A file written by a build of schema version 1 (before events kept their trace context) is
/// upgraded in place: its events read back as they were, untraced, and appends go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_upgraded_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let plan = Uuid::now_v7();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
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
             PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO events (plan_id, version, event_id, command_id, command_seq, event_type, \
             record_time, payload) VALUES (?1, 1, ?2, 'old', 0, 'test.v1.Event', 5, x'01')",
            rusqlite::params![plan.as_bytes(), Uuid::now_v7().as_bytes()],
        )
        .unwrap();
    }
    let log = open(&path);
    let old = log.read_plan(plan, 1, 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].command_id, "old");
    assert_eq!(old[0].payload, [1]);
    assert_eq!(old[0].trace_context, None);
    let next = log.append(plan, 1, events("new", 1)).await.unwrap();
    assert_eq!(next.first_version, 2);
    assert_eq!(log.read_plan(plan, 1, 10).await.unwrap().len(), 2);
    assert_eq!(single::<i64>(&path, "PRAGMA user_version"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    drop(open(&path));
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();

    match SqliteLog::open(SqliteLogConfig::new(&path)) {
        Err(LogError::Storage(message)) => assert!(message.contains("version 99"), "{message}"),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

/// No commit checkpoints the WAL: the writer does between two group commits, as events are
/// written, so the WAL stops growing once its frames are in the database (the next commit
/// starts it over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_between_commits_and_stops_growing() {
    let (dir, log) = temp_log();
    let wal = dir.path().join("events.db-wal");
    let plan = Uuid::now_v7();
    let mut checkpoints = log.checkpoints();
    let mut version = 0;
    let mut write = async |commands: usize| {
        for _ in 0..commands {
            let appended = log
                .append(plan, version, events(&Uuid::now_v7().to_string(), 100))
                .await
                .unwrap();
            version = appended.last_version;
        }
    };
    // More events than one checkpoint's worth.
    write(50).await;
    tokio::time::timeout(Duration::from_secs(60), checkpoints.wait_for(|n| *n >= 1))
        .await
        .expect("a checkpoint within a minute")
        .unwrap();
    let after_first = std::fs::metadata(&wal).unwrap().len();
    write(50).await;
    let after_second = std::fs::metadata(&wal).unwrap().len();
    // Without the checkpoint the second half would have doubled the WAL.
    assert!(
        after_second < after_first + after_first / 2,
        "the WAL grew from {after_first} to {after_second} bytes"
    );
    assert!(log.stats().checkpoints >= 1);
    assert_eq!(read_everything(&log).await.len(), 10_000);
}
