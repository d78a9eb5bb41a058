//! Snapshots: a restart from a snapshot plus the log's tail equals a full rebuild, byte for byte
//! of the canonical digest; a damaged or foreign snapshot is refused, never served; a rebuild
//! while the model follows the log misses nothing.

use std::sync::Arc;

use alliance_domain::{Command, Side};
use alliance_projection::{Projection, RecordPoint};

use crate::harness::{APPROVER, Env, US, date, element, registration};

/// The reference plan, a branch of it and a few more edits after the snapshot.
async fn register(env: &Env, plan: alliance_domain::PlanId, n: u32) {
    env.exec(US, plan, registration(&format!("tail-{n}"), 100 + n))
        .await;
}

#[tokio::test]
async fn snapshot_plus_tail_equals_a_full_rebuild_and_a_damaged_snapshot_is_refused() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let branch = env
        .exec(
            APPROVER,
            plan,
            Command::BranchPlan {
                new_plan_id: uuid::Uuid::now_v7(),
                parent_version: 100,
                name: "branch".into(),
                description: String::new(),
            },
        )
        .await
        .plan_id;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-model.snapshot");
    let at_snapshot = env.caught_up().await;
    let covered = at_snapshot.write_snapshot(&path).unwrap();
    assert_eq!(covered, at_snapshot.position());

    // The log grows after the snapshot.
    for n in 0..5 {
        register(&env, plan, n).await;
        register(&env, branch, n).await;
    }

    let restored = Projection::restore(&path, &env.log).await.unwrap();
    assert_eq!(restored.position(), covered);
    assert_eq!(restored.digest(), at_snapshot.digest());
    let tail = restored.catch_up(&env.log).await.unwrap();
    assert_eq!(tail, 10);
    let full = env.caught_up().await;
    assert_eq!(restored.digest(), full.digest());
    assert_ne!(full.digest(), at_snapshot.digest());
    // And the answers agree.
    for p in [plan, branch] {
        assert_eq!(
            restored
                .posture(p, date(2029, 6, 1), RecordPoint::Latest, true)
                .unwrap(),
            full.posture(p, date(2029, 6, 1), RecordPoint::Latest, true)
                .unwrap()
        );
    }

    // One byte changed anywhere: refused.
    let bytes = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.snapshot");
    let mut changed = bytes.clone();
    let middle = changed.len() / 2;
    changed[middle] = if changed[middle] == b'1' { b'2' } else { b'1' };
    std::fs::write(&damaged, &changed).unwrap();
    let refused = Projection::restore(&damaged, &env.log).await.err().unwrap();
    assert!(refused.to_string().contains("checksum"), "{refused}");
    // Truncated: refused.
    std::fs::write(&damaged, &bytes[..bytes.len() - 10]).unwrap();
    assert!(Projection::restore(&damaged, &env.log).await.is_err());

    // A snapshot of another log (same positions, other events): refused.
    let other = Env::open().await;
    let (other_plan, _) = other.load_reference().await;
    register(&other, other_plan, 99).await;
    let refused = Projection::restore(&path, &other.log).await.err().unwrap();
    assert!(refused.to_string().contains("does not match"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_following_misses_nothing() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let projection = Projection::new();
    projection.catch_up(&env.log).await.unwrap();
    tokio::spawn(projection.clone().follow(env.log.clone()));

    // Edits keep landing while the model is rebuilt twice.
    let writer = {
        let service = env.service.clone();
        let caller = env.caller(US);
        tokio::spawn(async move {
            let mut last = 0;
            for n in 0..40 {
                let outcome = service
                    .execute(
                        &caller,
                        alliance_commands::CommandMeta {
                            command_id: format!("rebuild-{n}"),
                            plan_id: Some(plan),
                            ..Default::default()
                        },
                        Command::RegisterForceElement {
                            element: element(&format!("r{n}"), Side::Us, 10),
                            present_from: date(2024, 1, 1),
                        },
                    )
                    .await
                    .unwrap();
                last = outcome.plan_version;
            }
            last
        })
    };
    let first = projection.rebuild(&env.log, &mut |_| {}).await.unwrap();
    let second = projection.rebuild(&env.log, &mut |_| {}).await.unwrap();
    assert!(second.events >= first.events);
    let last = writer.await.unwrap();
    projection
        .wait_for(plan, last, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let full: Arc<Projection> = env.caught_up().await;
    assert_eq!(projection.digest(), full.digest());
}
