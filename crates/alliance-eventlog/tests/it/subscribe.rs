//! `subscribe`: catch-up from the database, then live events.
//!
//! The timeouts only turn a hang into a failure; nothing waits on time to synchronise.

use std::time::Duration;

use alliance_eventlog::{EventLog, LogError, StoredEvent};
use futures::StreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::common::{events, read_everything, run_appenders, temp_log, temp_log_with};

const PATIENCE: Duration = Duration::from_secs(60);

/// The next `count` items of the stream, failing instead of hanging.
async fn take(
    stream: &mut BoxStream<'static, Result<StoredEvent, LogError>>,
    count: usize,
) -> Vec<StoredEvent> {
    let mut taken = Vec::with_capacity(count);
    while taken.len() < count {
        let item = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no event after {} of {count}", taken.len()))
            .unwrap_or_else(|| panic!("stream ended after {} of {count}", taken.len()));
        taken.push(item.expect("stream error"));
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_from_middle_catches_up_then_follows_live_commits() {
    // Small batches, so the catch-up takes several reads.
    let (_dir, log) = temp_log_with(|config| config.subscribe_batch = 3);
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    for i in 0..3u64 {
        log.append(a, 2 * i, events(&format!("a{i}"), 2))
            .await
            .unwrap();
        log.append(b, 2 * i, events(&format!("b{i}"), 2))
            .await
            .unwrap();
    }
    let stored = read_everything(&log).await;
    assert_eq!(stored.len(), 12);

    let mut stream = log.subscribe(stored[4].position);
    let caught_up = take(&mut stream, 8).await;
    assert_eq!(caught_up, stored[4..]);

    // Live: events committed after the subscription caught up.
    log.append(b, 6, events("b3", 2)).await.unwrap();
    log.append(a, 6, events("a3", 1)).await.unwrap();
    let live = take(&mut stream, 3).await;
    let stored = read_everything(&log).await;
    assert_eq!(live, stored[12..]);
    assert_eq!(
        live.iter()
            .map(|e| (e.plan_id, e.version))
            .collect::<Vec<_>>(),
        [(b, 7), (b, 8), (a, 7)]
    );
    assert!(caught_up.last().unwrap().position < live[0].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriber_sees_every_concurrent_append_in_position_order() {
    let (_dir, log) = temp_log();
    let plans: Vec<_> = (0..4).map(|_| Uuid::now_v7()).collect();
    // Subscribed from the start of an empty log: everything arrives live.
    let mut stream = log.subscribe(0);

    let appenders = {
        let log = log.clone();
        tokio::spawn(async move { run_appenders(&log, &plans, 8, 25).await })
    };
    let acked = appenders.await.unwrap();
    let seen = take(&mut stream, acked.len()).await;
    assert_eq!(seen, read_everything(&log).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_ends_when_the_log_is_closed() {
    let (_dir, log) = temp_log();
    let plan = Uuid::now_v7();
    log.append(plan, 0, events("one", 2)).await.unwrap();
    let mut stream = log.subscribe(1);
    let other = log.clone();
    drop(log);
    // A clone keeps the log open.
    other.append(plan, 2, events("two", 1)).await.unwrap();
    assert_eq!(take(&mut stream, 3).await.len(), 3);

    // Dropping the last handle stops the writer, which closes the stream.
    drop(other);
    let end = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream did not end");
    assert!(end.is_none(), "unexpected item {end:?}");
}

/// A subscription of a log reopened (nothing of it in memory) catches up from the database in
/// several ranges, then follows live commits; a read of everything committed crosses ranges of
/// positions too, each event once and in order, and so does the same read as a chain check
/// reads it (fewer columns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_after_a_reopen_reads_each_event_once_in_order() {
    use alliance_eventlog::{ChainRecord, Checkpoint, LogReader, SqliteLog, SqliteLogConfig};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let plan = Uuid::now_v7();
    {
        let log = SqliteLog::open(SqliteLogConfig::new(&path)).unwrap();
        for i in 0..50u64 {
            log.append(plan, 100 * i, events(&format!("c{i}"), 100))
                .await
                .unwrap();
        }
    }
    let mut config = SqliteLogConfig::new(&path);
    config.subscribe_batch = 7;
    let log = SqliteLog::open(config).unwrap();
    let stored = read_everything(&log).await;
    assert_eq!(stored.len(), 5000);

    let mut stream = log.subscribe(stored[10].position);
    assert_eq!(take(&mut stream, 4990).await, stored[10..]);
    log.append(plan, 5000, events("live", 2)).await.unwrap();
    let live = take(&mut stream, 2).await;
    let stored = read_everything(&log).await;
    assert_eq!(live, stored[5000..]);

    let from = Checkpoint {
        position: stored[2].position,
        ..Checkpoint::default()
    };
    let everything: Vec<StoredEvent> = log
        .read_after(&from, false)
        .map(|e| e.expect("no error"))
        .collect()
        .await;
    assert_eq!(everything, stored[3..]);
    let chain: Vec<ChainRecord> = log
        .chain_after(&from)
        .map(|e| e.expect("no error"))
        .collect()
        .await;
    assert_eq!(
        chain,
        stored[3..]
            .iter()
            .cloned()
            .map(ChainRecord::from)
            .collect::<Vec<_>>()
    );
}

/// A plan's records come in batches read ahead of the consumer, each twice the one before and
/// each assuming the plan's versions dense; a version removed from the file (as an operator with the file could) must
/// not end the stream or hide what follows it, wherever it falls in a batch. The plan's chain
/// (the records as a chain check reads them, from fewer columns) is the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_records_past_a_removed_version_yield_every_record_after_it() {
    use alliance_eventlog::{ChainRecord, LogReader};
    let (dir, log) = temp_log_with(|config| config.subscribe_batch = 4);
    let (plan, other) = (Uuid::now_v7(), Uuid::now_v7());
    for i in 0..10u64 {
        log.append(plan, 3 * i, events(&format!("p{i}"), 3))
            .await
            .unwrap();
        log.append(other, i, events(&format!("o{i}"), 1))
            .await
            .unwrap();
    }
    let records = |log: &alliance_eventlog::SqliteLog| {
        log.plan_records(plan)
            .map(|e| e.expect("no error"))
            .collect::<Vec<_>>()
    };
    let chain = |log: &alliance_eventlog::SqliteLog| {
        log.plan_chain(plan)
            .map(|e| e.expect("no error"))
            .collect::<Vec<_>>()
    };
    let as_chain = |records: &[StoredEvent]| -> Vec<ChainRecord> {
        records.iter().cloned().map(ChainRecord::from).collect()
    };
    let everything = records(&log).await;
    assert_eq!(
        everything.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    assert_eq!(chain(&log).await, as_chain(&everything));
    // The last of the first batch (of 4), then one inside each batch read after the first gap.
    let db = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
    let removed = [4u64, 10, 20];
    for version in removed {
        db.execute(
            "DELETE FROM events WHERE plan_id = ?1 AND version = ?2",
            rusqlite::params![plan.as_bytes().as_slice(), version as i64],
        )
        .unwrap();
    }
    let left: Vec<StoredEvent> = everything
        .into_iter()
        .filter(|e| !removed.contains(&e.version))
        .collect();
    assert_eq!(records(&log).await, left);
    assert_eq!(chain(&log).await, as_chain(&left));
}
