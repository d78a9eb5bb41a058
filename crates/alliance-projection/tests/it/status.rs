//! `ReadModelAdmin/Status` over gRPC on a loopback port: what a read model holds, how far it
//! is behind the log, and its snapshot; and the log's own lag estimate on SQLite.

use std::time::Duration;

use alliance_eventlog::{EventLog, LogReader};
use alliance_proto::v1;
use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;
use tonic::Code;

use crate::harness::{Env, serve};

async fn status(address: &str, token: Option<&str>) -> Result<v1::ReadModelStatus, tonic::Status> {
    let mut client = ReadModelAdminClient::connect(address.to_owned())
        .await
        .unwrap();
    let mut request = tonic::Request::new(v1::StatusRequest {});
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request.set_timeout(Duration::from_secs(10));
    client
        .status(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The status once its lag figures were taken after `since` (they are at most
/// [`alliance_projection::LAG_REFRESH`] old): asked again a little later until they are.
async fn status_after(
    address: &str,
    token: &str,
    since: std::time::SystemTime,
) -> v1::ReadModelStatus {
    let since = since.duration_since(std::time::UNIX_EPOCH).unwrap();
    for _ in 0..200 {
        let reply = status(address, Some(token)).await.unwrap();
        let taken = reply.lag_time.expect("when the lag was taken");
        if Duration::new(taken.seconds as u64, taken.nanos as u32) > since {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the lag was never taken again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caught_up_model_is_0_behind_and_one_that_did_not_read_new_events_says_how_many() {
    let env = Env::open().await;
    let (reference, _) = env.load_reference().await;
    let other = env.create_plan().await;
    let stored = env.log.read_all(1, 1_000_000).await.unwrap();
    // Not following the log: it holds what the log held when it caught up, nothing after.
    let model = env.caught_up().await;
    let address = serve(&env, model.clone()).await;

    // Any authenticated caller, read-only teams included.
    let caught_up = status(&address, Some("dev-auditors")).await.unwrap();
    assert_eq!(caught_up.plans, 2);
    assert_eq!(caught_up.events, stored.len() as u64);
    assert_eq!(
        caught_up.events,
        model.plan_version(reference) + model.plan_version(other)
    );
    assert_eq!(caught_up.position, stored.last().unwrap().position);
    assert_eq!(caught_up.lag, 0);
    assert_eq!(caught_up.lag_error, "");
    assert!(caught_up.partitions.is_empty(), "no partitions on SQLite");
    assert_eq!(caught_up.snapshot_time, None, "no snapshot");
    assert_eq!(caught_up.snapshot_age, None);
    assert_eq!(caught_up.snapshot_position, 0);

    // The log grows; the model, which does not follow it, falls behind by exactly that much
    // (once the figures are taken again).
    let written = std::time::SystemTime::now();
    env.register(reference, "status-1").await;
    env.register(other, "status-2").await;
    env.register(other, "status-3").await;
    let behind = status_after(&address, "dev-us-force-planning", written).await;
    assert_eq!(behind.lag, 3);
    assert_eq!(behind.events, caught_up.events, "nothing new was applied");
    assert_eq!(behind.position, caught_up.position);
    assert_eq!(
        env.log.remaining(&model.checkpoint()).await.unwrap(),
        3,
        "the log's own estimate"
    );

    // Caught up again: 0 behind, the new events applied.
    let read = std::time::SystemTime::now();
    assert_eq!(model.catch_up(&env.log).await.unwrap(), 3);
    let again = status_after(&address, "dev-auditors", read).await;
    assert_eq!(again.lag, 0);
    assert_eq!(again.events, caught_up.events + 3);
    assert_eq!(again.position, caught_up.position + 3);

    // No token, or an unknown one: refused.
    let refused = status(&address, None).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let refused = status(&address, Some("no-such-token")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_restored_from_a_snapshot_reports_the_snapshot_s_age_and_position() {
    let env = Env::open().await;
    env.load_reference().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-model.snapshot");
    let first = env.caught_up().await;
    let covered = first.write_snapshot(&path).unwrap();
    let plan = env.create_plan().await;
    env.register(plan, "after-the-snapshot").await;

    // Restored from the snapshot, then caught up with the log's tail.
    let restored = alliance_projection::open(&env.log, &path, None, None)
        .await
        .unwrap();
    let address = serve(&env, restored.clone()).await;
    let reply = status(&address, Some("dev-auditors")).await.unwrap();
    assert_eq!(reply.lag, 0);
    assert_eq!(reply.plans, 2);
    let last = env.log.read_all(1, 1_000_000).await.unwrap();
    assert_eq!(reply.position, last.last().unwrap().position);
    assert!(covered < reply.position);
    assert_eq!(reply.snapshot_position, covered);
    let written = reply.snapshot_time.expect("the snapshot's time");
    let age = reply.snapshot_age.expect("the snapshot's age");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 60..=now).contains(&written.seconds), "{written:?}");
    assert!((0..60).contains(&age.seconds), "{age:?}");
}
