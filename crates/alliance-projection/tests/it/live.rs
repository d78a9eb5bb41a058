//! A read model following the log live: read-your-writes and the change feed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alliance_domain::{CapabilityArea, Command, PlanId, Side};
use alliance_eventlog::EventLog;
use alliance_projection::{Projection, ProjectionError, RecordPoint};

use crate::harness::{Env, ROK, US, date, id, registration};

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_reads_its_writes_and_says_how_far_behind_it_is() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let projection = Projection::new();
    let follower = tokio::spawn(projection.clone().follow(env.log.clone()));
    let valid = date(2025, 1, 1);

    // A wait that starts before the write is woken by it.
    let waiting = {
        let projection = projection.clone();
        tokio::spawn(async move {
            projection
                .wait_for(plan, 2, Duration::from_secs(5))
                .await
                .map(|()| projection.posture(plan, valid, RecordPoint::Latest, false))
        })
    };
    let outcome = env.exec(US, plan, registration("abct", 4500)).await;
    assert_eq!(outcome.plan_version, 2);
    let posture = waiting.await.unwrap().unwrap().unwrap();
    assert_eq!(posture.version, 2);
    assert_eq!(posture.elements.len(), 1);
    assert_eq!(posture.elements[0].id, id("abct"));
    assert_eq!(posture.personnel_of(Side::Us), 4500);

    // Each write is visible as soon as the wait for its version returns.
    for level in 1..=20u32 {
        let outcome = env
            .exec(
                ROK,
                plan,
                Command::RecordCapabilityLevel {
                    side: Side::Rok,
                    area: CapabilityArea::MissileDefense,
                    level,
                    as_of: date(2024, 1, 1),
                },
            )
            .await;
        projection
            .wait_for(plan, outcome.plan_version, Duration::from_secs(5))
            .await
            .unwrap();
        let posture = projection
            .posture(plan, valid, RecordPoint::Latest, false)
            .unwrap();
        assert_eq!(posture.version, outcome.plan_version);
        assert_eq!(
            posture
                .capability
                .get(&(Side::Rok, CapabilityArea::MissileDefense)),
            Some(&level)
        );
        // The version before still reads the previous level.
        let previous = projection
            .posture(
                plan,
                valid,
                RecordPoint::Version(outcome.plan_version - 1),
                false,
            )
            .unwrap();
        assert_eq!(
            previous
                .capability
                .get(&(Side::Rok, CapabilityArea::MissileDefense))
                .copied(),
            (level > 1).then(|| level - 1)
        );
    }
    let version = projection.plan_version(plan);
    assert_eq!(version, 22);
    assert_eq!(env.log.plan_version(plan).await.unwrap(), version);

    // Versions nobody wrote: behind, by exactly how much.
    match projection
        .wait_for(plan, version + 10, Duration::from_millis(200))
        .await
    {
        Err(ProjectionError::Behind {
            plan_id,
            wanted,
            have,
        }) => {
            assert_eq!((plan_id, wanted, have), (plan, version + 10, version));
            let message = ProjectionError::Behind {
                plan_id,
                wanted,
                have,
            }
            .to_string();
            assert!(message.contains("version 22, 10 behind"), "{message}");
        }
        other => panic!("expected Behind, got {other:?}"),
    }
    // A plan the log does not hold is behind at version 0; version 0 is always there.
    let unknown = PlanId::now_v7();
    assert!(matches!(
        projection.wait_for(unknown, 1, Duration::from_millis(50)).await,
        Err(ProjectionError::Behind { have: 0, wanted: 1, plan_id }) if plan_id == unknown
    ));
    projection
        .wait_for(unknown, 0, Duration::from_millis(1))
        .await
        .unwrap();
    assert!(matches!(
        projection.posture(unknown, valid, RecordPoint::Latest, false),
        Err(ProjectionError::PlanNotFound(p)) if p == unknown
    ));
    follower.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_of_a_concurrent_burst_reaches_subscribers_once_in_order() {
    let env = std::sync::Arc::new(Env::open().await);
    let projection = Projection::new();
    let follower = tokio::spawn(projection.clone().follow(env.log.clone()));
    let mut changes = projection.changes();

    let plans = [env.create_plan().await, env.create_plan().await];
    // 50 commands at once, alternating between the two plans and between two teams.
    let burst = (0..50).map(|i| {
        let env = env.clone();
        let plan = plans[i % 2];
        tokio::spawn(async move {
            let command = if i % 5 == 0 {
                Command::RecordCapabilityLevel {
                    side: Side::Rok,
                    area: CapabilityArea::Munitions,
                    level: i as u32,
                    as_of: date(2024, 1, 1) + chrono::Duration::days(i as i64),
                }
            } else {
                registration(&format!("e{i}"), 100 + i as u32)
            };
            let team = if i % 5 == 0 { ROK } else { US };
            (plan, env.exec(team, plan, command).await)
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // What was appended, per event id: plan and version.
    let mut expected: HashMap<uuid::Uuid, (PlanId, u64)> = HashMap::new();
    for event in env.log.read_all(1, 10_000).await.unwrap() {
        expected.insert(event.event_id, (event.plan_id, event.version));
    }
    assert_eq!(expected.len(), 52);
    for (plan, outcome) in &outcomes {
        assert_eq!(outcome.event_ids.len(), 1);
        assert_eq!(
            expected.get(&outcome.event_ids[0]),
            Some(&(*plan, outcome.plan_version))
        );
    }
    let log_order: Vec<(PlanId, u64)> = env
        .log
        .read_all(1, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.plan_id, e.version))
        .collect();

    let mut received: Vec<(PlanId, u64)> = Vec::new();
    let mut seen: HashMap<uuid::Uuid, usize> = HashMap::new();
    while received.len() < expected.len() {
        let applied = tokio::time::timeout(Duration::from_secs(10), changes.recv())
            .await
            .expect("the change feed stalled")
            .unwrap();
        assert_eq!(applied.recorded.version as usize, {
            let n = received
                .iter()
                .filter(|(p, _)| *p == applied.plan_id)
                .count();
            n + 1
        });
        assert_eq!(
            expected.get(&applied.recorded.event_id),
            Some(&(applied.plan_id, applied.recorded.version)),
            "an event the log does not hold"
        );
        *seen.entry(applied.recorded.event_id).or_default() += 1;
        received.push((applied.plan_id, applied.recorded.version));
    }
    assert!(seen.values().all(|&n| n == 1), "an event arrived twice");
    assert_eq!(seen.len(), expected.len());
    // The feed is in log order, and per plan, versions 1..=26.
    assert_eq!(received, log_order);
    let mut per_plan: BTreeMap<PlanId, Vec<u64>> = BTreeMap::new();
    for (plan, version) in &received {
        per_plan.entry(*plan).or_default().push(*version);
    }
    for plan in plans {
        assert_eq!(per_plan[&plan], (1..=26).collect::<Vec<u64>>());
        projection
            .wait_for(plan, 26, Duration::from_secs(5))
            .await
            .unwrap();
    }
    // Nothing more.
    assert!(matches!(
        changes.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Empty)
    ));
    // And the read models hold the burst.
    let posture = projection
        .posture(plans[0], date(2025, 1, 1), RecordPoint::Latest, false)
        .unwrap();
    assert_eq!(posture.elements.len(), 20);
    follower.abort();
}

/// The read models of the command service's process hold the parts it decided, once: the
/// element the service's state holds is the very one the read model's state holds, equal to
/// what a read model folds from the log alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_read_models_hold_the_parts_the_command_service_decided_once() {
    let env = Env::open().await;
    let projection = env.sharing();
    let follower = tokio::spawn(projection.clone().follow(env.log.clone()));
    let plan = env.create_plan().await;
    env.register(plan, "abct").await;
    let decision = alliance_domain::DecisionId::parse("d1").unwrap();
    let proposed = env
        .exec(
            US,
            plan,
            Command::ProposeDecision {
                decision_id: decision.clone(),
                title: "retrench".into(),
                rationale: "test".into(),
                effective_date: date(2026, 1, 1),
                required_sides: [Side::Us].into(),
                supersedes: Default::default(),
            },
        )
        .await;
    projection
        .wait_for(plan, proposed.plan_version, Duration::from_secs(5))
        .await
        .unwrap();
    let ours = env.service.plan(plan).await.unwrap();
    let theirs = projection.with_plan(plan, |h| h.latest()).unwrap();
    assert_eq!(*theirs, ours);
    let element = id("abct");
    assert!(std::sync::Arc::ptr_eq(
        &ours.elements[&element],
        &theirs.elements[&element]
    ));
    // A decision changes with its events: each holds its own, which the service changes in
    // place.
    assert!(!std::sync::Arc::ptr_eq(
        &ours.decisions[&decision],
        &theirs.decisions[&decision]
    ));
    assert_eq!(env.handoff.waiting(), 0, "every offer taken");
    // A read model of the log alone holds values of its own, equal to those.
    let alone = env.caught_up().await;
    let folded = alone.with_plan(plan, |h| h.latest()).unwrap();
    assert_eq!(*folded, ours);
    assert!(!std::sync::Arc::ptr_eq(
        &folded.elements[&element],
        &theirs.elements[&element]
    ));
    assert_eq!(alone.digest(), projection.digest());
    follower.abort();
}
