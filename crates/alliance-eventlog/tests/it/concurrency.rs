//! Many tasks appending at once: gapless versions, nothing lost, group commit.

use alliance_eventlog::{EventLog, LogError};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::common::{assert_log_holds_exactly, events, read_everything, run_appenders, temp_log};

const TASKS: usize = 32;
const APPENDS_PER_TASK: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_on_one_plan_get_gapless_versions() {
    let (_dir, log) = temp_log();
    let plan = Uuid::now_v7();

    let acked = run_appenders(&log, &[plan], TASKS, APPENDS_PER_TASK).await;

    assert_log_holds_exactly(&log, &acked).await;
    let stats = log.stats();
    assert_eq!(stats.appends, (TASKS * APPENDS_PER_TASK) as u64);
    assert_eq!(stats.events, acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_on_many_plans_share_commits() {
    let (_dir, log) = temp_log();
    // Four tasks per plan: conflicts and successes mixed inside the same group commits.
    let plans: Vec<_> = (0..8).map(|_| Uuid::now_v7()).collect();

    let acked = run_appenders(&log, &plans, TASKS, APPENDS_PER_TASK).await;

    assert_log_holds_exactly(&log, &acked).await;
    let stats = log.stats();
    assert_eq!(stats.appends, (TASKS * APPENDS_PER_TASK) as u64);
    assert_eq!(stats.events, acked.len() as u64);
    // Group commit: appends waiting while the writer fsyncs share the next transaction.
    assert!(
        stats.commits < stats.appends,
        "no batching: {} commits for {} appends",
        stats.commits,
        stats.appends
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_command_raced_from_many_tasks_is_applied_once() {
    let (_dir, log) = temp_log();
    let mut set = JoinSet::new();
    for _ in 0..TASKS {
        let log = log.clone();
        // Each task on its own plan: only the command id collides.
        set.spawn(async move {
            let plan = Uuid::now_v7();
            (plan, log.append(plan, 0, events("raced", 2)).await)
        });
    }
    let mut winners = Vec::new();
    let mut records = Vec::new();
    while let Some(result) = set.join_next().await {
        match result.unwrap() {
            (plan, Ok(appended)) => winners.push((plan, appended)),
            (_, Err(LogError::DuplicateCommand { record, .. })) => records.push(record),
            (_, Err(other)) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(records.len(), TASKS - 1);
    let (plan, appended) = winners[0];
    for record in records {
        assert_eq!(record.plan_id, plan);
        assert_eq!(
            (record.first_version, record.last_version),
            (appended.first_version, appended.last_version)
        );
    }
    assert_eq!(read_everything(&log).await.len(), 2);
}
