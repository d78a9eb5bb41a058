//! The database constraints behind the writer's checks, and failures of a whole group commit.
//!
//! These tests write to the database file behind the log's back with a plain SQLite connection,
//! as a second (unsupported) writer would.

use std::path::Path;
use std::time::Duration;

use alliance_eventlog::{EventLog, LogError, PlanId, SqliteLog, Version};
use futures::StreamExt;
use rusqlite::Connection;
use tempfile::TempDir;
use uuid::Uuid;

use crate::common::{events, read_everything, temp_log, temp_log_with};

/// Inserts one event directly, as another writer would.
fn insert_behind_the_back(
    conn: &Connection,
    plan_id: PlanId,
    version: Version,
    command_id: &str,
    command_seq: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO events \
           (plan_id, version, event_id, command_id, command_seq, event_type, record_time, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'test.v1.External', 0, x'')",
        rusqlite::params![
            plan_id.as_bytes(),
            version as i64,
            Uuid::now_v7().as_bytes(),
            command_id,
            command_seq
        ],
    )
}

/// A log whose one plan holds `count` events of the command `command_id`, and a second
/// connection to its file.
async fn log_with_external(
    command_id: &str,
    count: usize,
) -> (TempDir, SqliteLog, PlanId, Connection) {
    let (dir, log) = temp_log();
    let plan = Uuid::now_v7();
    log.append(plan, 0, events(command_id, count))
        .await
        .unwrap();
    let conn = external(&dir.path().join("events.db"));
    (dir, log, plan, conn)
}

fn external(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open a second connection");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("set the busy timeout");
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_head_cache_is_caught_by_the_unique_index() {
    // The writer now caches head 1 for the plan.
    let (_dir, log, plan, conn) = log_with_external("one", 1).await;
    insert_behind_the_back(&conn, plan, 2, "external", 0).unwrap();

    // The cache still says 1, so the writer tries version 2; the index refuses it and the
    // writer answers with the real head, having written nothing.
    match log.append(plan, 1, events("two", 2)).await {
        Err(LogError::VersionConflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(log.find_command("two").await.unwrap(), None);
    assert_eq!(read_everything(&log).await.len(), 2);

    // The writer's head is right again.
    let appended = log.append(plan, 2, events("two", 2)).await.unwrap();
    assert_eq!((appended.first_version, appended.last_version), (3, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_allows_each_command_once() {
    let (_dir, _log, plan, conn) = log_with_external("cmd", 2).await;
    let other = Uuid::now_v7();
    // A second first event of the same command is refused by the unique index...
    let error = insert_behind_the_back(&conn, other, 1, "cmd", 0).unwrap_err();
    assert_eq!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    // ...and so is a version already taken.
    let error = insert_behind_the_back(&conn, plan, 2, "fresh", 0).unwrap_err();
    assert_eq!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    // ...as is any event of the command repeated at the same index within it...
    let error = insert_behind_the_back(&conn, other, 1, "cmd", 1).unwrap_err();
    assert_eq!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    // ...while a new event index of the command is accepted.
    insert_behind_the_back(&conn, other, 1, "cmd", 2).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_group_commit_answers_storage_and_the_log_recovers() {
    let (dir, log) = temp_log_with(|config| config.busy_timeout = Duration::from_millis(200));
    let path = dir.path().join("events.db");
    let plan = Uuid::now_v7();
    log.append(plan, 0, events("one", 1)).await.unwrap();

    // Another connection holds the write lock: the writer's BEGIN IMMEDIATE gives up after the
    // busy timeout and the whole batch fails.
    let conn = external(&path);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    match log.append(plan, 1, events("two", 1)).await {
        Err(LogError::Storage(_)) => {}
        other => panic!("expected a storage error, got {other:?}"),
    }
    // Meanwhile the other writer moves the plan on.
    insert_behind_the_back(&conn, plan, 2, "external", 0).unwrap();
    conn.execute_batch("COMMIT").unwrap();

    assert_eq!(log.find_command("two").await.unwrap(), None);
    assert!(matches!(
        log.append(plan, 1, events("two", 1)).await,
        Err(LogError::VersionConflict { actual: 2, .. })
    ));
    let appended = log.append(plan, 2, events("two", 1)).await.unwrap();
    assert_eq!(appended.first_version, 3);
    let stats = log.stats();
    assert_eq!((stats.appends, stats.rejected), (2, 2));
}

/// The log knows the command ids it holds without reading the database; a command stored by
/// another writer after the log opened is still refused as a duplicate, whether or not the
/// version it expects is current, and found once looked up after that refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_stored_behind_the_logs_back_is_still_refused_as_a_duplicate() {
    let (_dir, log, plan, conn) = log_with_external("one", 1).await;
    let elsewhere = Uuid::now_v7();
    insert_behind_the_back(&conn, elsewhere, 1, "external", 0).unwrap();

    // The expected version is current: the insert itself meets the unique index.
    match log.append(Uuid::now_v7(), 0, events("external", 1)).await {
        Err(LogError::DuplicateCommand { record, .. }) => {
            assert_eq!((record.plan_id, record.first_version), (elsewhere, 1));
        }
        other => panic!("expected a duplicate command, got {other:?}"),
    }
    // The expected version is stale: the stored command still wins over the conflict.
    match log.append(plan, 0, events("external", 1)).await {
        Err(LogError::DuplicateCommand { record, .. }) => assert_eq!(record.plan_id, elsewhere),
        other => panic!("expected a duplicate command, got {other:?}"),
    }
    assert_eq!(read_everything(&log).await.len(), 2);
}

/// Events another writer stored between two of the log's commits reach a subscription, in
/// position order, although the log keeps only its own commits in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_gets_what_another_writer_stored_between_two_commits() {
    let (_dir, log, plan, conn) = log_with_external("one", 1).await;
    let mut subscription = log.subscribe(1);
    insert_behind_the_back(&conn, Uuid::now_v7(), 1, "external", 0).unwrap();
    log.append(plan, 1, events("two", 2)).await.unwrap();

    let mut received = Vec::new();
    while received.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(60), subscription.next())
            .await
            .expect("an event within a minute")
            .expect("the subscription goes on")
            .expect("no error");
        received.push(next);
    }
    assert_eq!(received, read_everything(&log).await);
    assert_eq!(
        received.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}
