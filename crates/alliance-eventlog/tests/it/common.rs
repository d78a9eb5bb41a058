//! Helpers shared by the tests.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use alliance_eventlog::{
    Appended, EventLog, LogError, NewEvent, PlanId, SqliteLog, SqliteLogConfig, StoredEvent,
    Version,
};
use tempfile::TempDir;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A fresh log in a new temporary directory (kept alive by the returned guard).
pub fn temp_log() -> (TempDir, SqliteLog) {
    temp_log_with(|_| {})
}

/// [`temp_log`] with `settings` changed from the defaults; the file is `events.db` in it.
pub fn temp_log_with(settings: impl FnOnce(&mut SqliteLogConfig)) -> (TempDir, SqliteLog) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = SqliteLogConfig::new(dir.path().join("events.db"));
    settings(&mut config);
    let log = SqliteLog::open(config).expect("open the log");
    (dir, log)
}

pub fn open(path: &Path) -> SqliteLog {
    SqliteLog::open(SqliteLogConfig::new(path)).expect("open the log")
}

/// `count` events of one command, each with its own id and payload.
pub fn events(command_id: &str, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent {
            event_id: Uuid::now_v7(),
            command_id: command_id.to_owned(),
            event_type: format!("test.v1.Event{i}"),
            record_time_micros: 1_700_000_000_000_000 + i as i64,
            payload: format!("{command_id}/{i}").into_bytes(),
        })
        .collect()
}

/// Everything in the log, in position order.
pub async fn read_everything(log: &SqliteLog) -> Vec<StoredEvent> {
    log.read_all(0, usize::MAX).await.expect("read_all")
}

/// Asserts that a stored event is `sent`, stored at `plan_id`/`version`.
pub fn assert_stored(stored: &StoredEvent, sent: &NewEvent, plan_id: PlanId, version: Version) {
    assert_eq!(stored.plan_id, plan_id);
    assert_eq!(stored.version, version);
    assert_eq!(stored.event_id, sent.event_id);
    assert_eq!(stored.command_id, sent.command_id);
    assert_eq!(stored.event_type, sent.event_type);
    assert_eq!(stored.record_time_micros, sent.record_time_micros);
    assert_eq!(stored.payload, sent.payload);
}

/// Appends `events`, retrying with the fresh head on every version conflict, the way a command
/// handler would after reloading the plan. `expected` follows the head.
pub async fn append_retrying(
    log: &SqliteLog,
    plan_id: PlanId,
    expected: &mut Version,
    events: Vec<NewEvent>,
) -> Appended {
    loop {
        match log.append(plan_id, *expected, events.clone()).await {
            Ok(appended) => {
                assert_eq!(appended.first_version, *expected + 1);
                *expected = appended.last_version;
                return appended;
            }
            Err(LogError::VersionConflict { actual, .. }) => {
                // Heads only move forward.
                assert!(
                    actual > *expected,
                    "head went from {expected} back to {actual}"
                );
                *expected = actual;
            }
            Err(other) => panic!("append failed: {other}"),
        }
    }
}

/// One acknowledged event: where the log said it put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acked {
    pub plan_id: PlanId,
    pub version: Version,
    pub event_id: Uuid,
}

/// Runs `tasks` concurrent appenders, task `t` on `plans[t % plans.len()]`, each making
/// `appends_per_task` appends of one to three events with retries. Returns every acknowledged
/// event.
pub async fn run_appenders(
    log: &SqliteLog,
    plans: &[PlanId],
    tasks: usize,
    appends_per_task: usize,
) -> Vec<Acked> {
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let log = log.clone();
        let plan_id = plans[task % plans.len()];
        set.spawn(async move {
            let mut acked = Vec::new();
            let mut expected = 0;
            for i in 0..appends_per_task {
                let sent = events(&format!("task{task}-append{i}"), 1 + (task + i) % 3);
                let appended = append_retrying(&log, plan_id, &mut expected, sent.clone()).await;
                assert_eq!(
                    appended.last_version - appended.first_version + 1,
                    sent.len() as u64
                );
                for (event, version) in sent.iter().zip(appended.first_version..) {
                    acked.push(Acked {
                        plan_id,
                        version,
                        event_id: event.event_id,
                    });
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(result) = set.join_next().await {
        acked.extend(result.expect("appender task"));
    }
    acked
}

/// Asserts the log holds exactly the acknowledged events: each plan's versions are `1..=n`
/// without gap or duplicate, every acknowledged event sits at the version it was acknowledged
/// with, and positions strictly increase.
pub async fn assert_log_holds_exactly(log: &SqliteLog, acked: &[Acked]) {
    let stored = read_everything(log).await;
    assert_log_contains(&stored, acked);
    assert_eq!(
        stored.len(),
        acked.len(),
        "the log holds unacknowledged events"
    );
    for plan_id in acked.iter().map(|a| a.plan_id).collect::<HashSet<_>>() {
        let head = acked
            .iter()
            .filter(|a| a.plan_id == plan_id)
            .map(|a| a.version)
            .max()
            .unwrap_or(0);
        assert_eq!(log.plan_version(plan_id).await.expect("plan_version"), head);
    }
}

/// Asserts every acknowledged event is in `stored` (all events of the log, in position order)
/// where it was acknowledged, and that `stored` is well formed: strictly increasing positions,
/// unique event ids, gapless versions per plan.
pub fn assert_log_contains(stored: &[StoredEvent], acked: &[Acked]) {
    for pair in stored.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions not increasing"
        );
    }
    let ids: HashSet<Uuid> = stored.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), stored.len(), "an event id is stored twice");

    // In position order each plan's versions must be exactly 1, 2, 3, …
    let mut heads: HashMap<PlanId, Version> = HashMap::new();
    let mut by_version: HashMap<(PlanId, Version), Uuid> = HashMap::new();
    for event in stored {
        let head = heads.entry(event.plan_id).or_insert(0);
        assert_eq!(
            event.version,
            *head + 1,
            "gap or duplicate in plan {}",
            event.plan_id
        );
        *head = event.version;
        by_version.insert((event.plan_id, event.version), event.event_id);
    }

    let mut seen = HashSet::new();
    for a in acked {
        assert!(
            seen.insert((a.plan_id, a.version)),
            "version {a:?} acknowledged twice"
        );
        assert_eq!(
            by_version.get(&(a.plan_id, a.version)),
            Some(&a.event_id),
            "acknowledged event {a:?} is missing"
        );
    }
}
