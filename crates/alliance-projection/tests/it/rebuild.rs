//! Rebuilding read models: repeats and gaps, and branches that start from their parent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alliance_domain::{Command, DecisionId, Event, Plan, Side};
use alliance_eventlog::EventLog;
use alliance_projection::{Projection, ProjectionError, RecordPoint};

use crate::harness::{APPROVER, Env, ROK, date, decode, version_of};

#[tokio::test(flavor = "multi_thread")]
async fn apply_ignores_repeats_and_reports_gaps() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let all = env.log.read_all(1, 100_000).await.unwrap();
    let whole = env.caught_up().await;
    // Caught up: a second catch-up finds nothing new.
    assert_eq!(whole.catch_up(&env.log).await.unwrap(), 0);
    assert_eq!(whole.position(), all.last().unwrap().position);

    let projection = Projection::new();
    projection.apply(&all[0]).unwrap();
    // Version 3 after version 1: a gap, reported and not applied.
    match projection.apply(&all[2]) {
        Err(ProjectionError::Corrupt(message)) => {
            assert!(message.contains("from version 1 to 3"), "{message}")
        }
        other => panic!("expected a gap to be reported, got {other:?}"),
    }
    assert_eq!(projection.plan_version(plan), 1);
    projection.apply(&all[1]).unwrap();
    // A repeat is ignored.
    projection.apply(&all[0]).unwrap();
    projection.apply(&all[1]).unwrap();
    assert_eq!(projection.plan_version(plan), 2);
    for stored in &all[2..] {
        projection.apply(stored).unwrap();
    }
    // A model fed one event at a time equals the one caught up in batches.
    let valid = date(2030, 1, 1);
    for version in [1, 2, 64, 100, all.len() as u64] {
        for what_if in [false, true] {
            assert_eq!(
                projection
                    .posture(plan, valid, RecordPoint::Version(version), what_if)
                    .unwrap(),
                whole
                    .posture(plan, valid, RecordPoint::Version(version), what_if)
                    .unwrap()
            );
        }
    }
    // A record nobody can read is refused, not guessed at.
    let mut garbled = all[0].clone();
    garbled.payload = vec![0xff; 16];
    assert!(matches!(
        Projection::new().apply(&garbled),
        Err(ProjectionError::Corrupt(_))
    ));
}

/// A branch of the reference plan taken before the 2007 agreement was adopted, in which it is
/// rejected instead: the branch reads the parent's history up to the branch point, then its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_branch_starts_from_its_parent_at_the_branch_point() {
    let env = Env::open().await;
    let (parent, _) = env.load_reference().await;
    let parent_stored = env.plan_events(parent).await;
    let d2007 = DecisionId::parse("hist-2007-opcon-2012").unwrap();
    let adopted = version_of(
        &parent_stored,
        |e| matches!(e, Event::DecisionAdopted { decision_id } if *decision_id == d2007),
    );
    let at = adopted - 1;
    let branch = uuid::Uuid::now_v7();
    let outcome = env
        .exec(
            APPROVER,
            parent,
            Command::BranchPlan {
                new_plan_id: branch,
                parent_version: at,
                name: "no 2007 agreement".into(),
                description: String::new(),
            },
        )
        .await;
    assert_eq!((outcome.plan_id, outcome.plan_version), (branch, 1));
    env.exec(
        ROK,
        branch,
        Command::RejectDecision {
            decision_id: d2007.clone(),
            reason: "branch".into(),
        },
    )
    .await;

    let projection = env.caught_up().await;
    assert_eq!(projection.plan_version(branch), 2);
    assert_eq!(projection.plan_ids().len(), 2);
    let y2013 = date(2013, 1, 1);
    let wartime = |plan, version| {
        projection
            .posture(plan, y2013, RecordPoint::Version(version), false)
            .unwrap()
            .command
            .wartime_opcon
    };
    // The parent adopts the 2012 transfer; the branch, forked just before, rejects it.
    assert_eq!(wartime(parent, adopted), Some(Side::Rok));
    assert_eq!(wartime(branch, 1), Some(Side::Us));
    assert_eq!(wartime(branch, 2), Some(Side::Us));
    // The branch at its first version is the parent at the branch point.
    let branch_state = |version| {
        projection
            .with_plan(branch, |h| (*h.state_at(version).unwrap()).clone())
            .unwrap()
    };
    let parent_events = decode(&parent_stored);
    let base: Plan = alliance_domain::fold(Plan::default(), &parent_events[..at as usize]);
    let branch_events = decode(&env.plan_events(branch).await);
    for version in 0..=2u64 {
        let naive = alliance_domain::fold(base.clone(), &branch_events[..version as usize]);
        assert_eq!(branch_state(version), naive, "branch version {version}");
        for valid in [y2013, date(2025, 1, 1)] {
            assert_eq!(
                projection
                    .posture(branch, valid, RecordPoint::Version(version), true)
                    .unwrap(),
                alliance_domain::posture(&naive, valid, true)
            );
        }
    }
    assert_eq!(
        branch_state(2).decisions[&d2007].status,
        alliance_domain::DecisionStatus::Rejected
    );
    assert_eq!(branch_state(2).lineage, vec![(parent, at)]);
    // The write side folds the branch the same way.
    assert_eq!(env.service.plan(branch).await.unwrap(), branch_state(2));
}

async fn start_rebuild(
    address: &str,
) -> Result<tonic::Streaming<alliance_proto::v1::RebuildProgress>, tonic::Status> {
    let mut client = alliance_proto::v1::read_model_admin_client::ReadModelAdminClient::connect(
        address.to_owned(),
    )
    .await
    .unwrap();
    let mut request = tonic::Request::new(alliance_proto::v1::RebuildRequest {});
    request.metadata_mut().insert(
        "authorization",
        "Bearer dev-alliance-approvers".parse().unwrap(),
    );
    client
        .rebuild(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Reads a rebuild's stream to its result.
async fn rebuilt(
    mut stream: tonic::Streaming<alliance_proto::v1::RebuildProgress>,
) -> alliance_proto::v1::RebuildReply {
    while let Some(progress) = stream.message().await.unwrap() {
        if let Some(done) = progress.done {
            return done;
        }
    }
    panic!("the rebuild's stream ended without its result")
}

/// Each rebuild builds a whole model: a second one while one runs is refused, naming the one in
/// progress, and admitted once that one is over.
#[tokio::test(flavor = "multi_thread")]
async fn one_rebuild_at_a_time() {
    let env = Env::open().await;
    env.load_reference().await;
    let model = env.caught_up().await;
    let address = crate::harness::serve(&env, model.clone()).await;

    // Following paused: the first rebuild reads the log, then waits to swap its model in.
    let paused = model.pause().await;
    let first = start_rebuild(&address).await.unwrap();
    let refused = start_rebuild(&address).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");
    assert!(
        refused.message().contains("in progress")
            && refused.message().contains("alliance-approvers/"),
        "{refused:?}"
    );
    drop(paused);
    let done = rebuilt(first).await;
    assert_eq!(done.digest, model.digest());
    // The first is over once its result is sent: the next is admitted at once.
    let again = rebuilt(start_rebuild(&address).await.unwrap()).await;
    assert_eq!(again.digest, done.digest);
}

/// A catch-up tells whoever waits for a plan's version that it arrived: it wakes the waiters
/// once a batch of records rather than once a record, and must not forget to.
#[tokio::test(flavor = "current_thread")]
async fn a_catch_up_wakes_whoever_waits_for_a_version() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let head = env.caught_up().await.plan_version(plan);
    let projection = Projection::new();
    let waiter = tokio::spawn({
        let projection = projection.clone();
        async move {
            projection
                .wait_for(plan, head, std::time::Duration::from_secs(600))
                .await
        }
    });
    // One thread: the waiter runs until it waits for the model to move.
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    projection.catch_up(&env.log).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), waiter)
        .await
        .expect("the waiter was not woken by the catch-up")
        .unwrap()
        .unwrap();
}
