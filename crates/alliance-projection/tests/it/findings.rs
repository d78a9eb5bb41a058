//! Findings over gRPC: the reference plan keeps its own order, a transfer moved after the first
//! brigade withdrawal is exactly the prerequisite finding, and a personnel floor is found when
//! the drawdown passes it and lifted by a recorded certification.

use alliance_domain::{Command, ConstraintId, DecisionId, Prerequisite, Side, Step};
use alliance_proto::v1;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_tests::requests;
use alliance_tests::server::tokens::AUDITOR;

use alliance_commands::CommandOutcome;
use alliance_domain::testing::us_personnel;

use crate::harness::{APPROVER, Env, ROK, US, date, id, registration, serve};

fn authed<T>(message: T) -> tonic::Request<T> {
    requests::authed(AUDITOR, message)
}

fn did(s: &str) -> DecisionId {
    DecisionId::parse(s).unwrap()
}

async fn findings(
    address: &str,
    plan: uuid::Uuid,
    what_if: bool,
) -> Vec<(String, i32, Option<v1::Date>, Option<v1::Date>)> {
    let mut client = PostureQueriesClient::connect(address.to_owned())
        .await
        .unwrap();
    let report = client
        .get_findings(authed(v1::GetFindingsRequest {
            plan_id: plan.to_string(),
            include_proposed: what_if,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    report
        .findings
        .into_iter()
        .map(|f| (f.id, f.kind, f.from, f.until))
        .collect()
}

fn d(year: i32, month: i32, day: i32) -> Option<v1::Date> {
    Some(v1::Date { year, month, day })
}

/// The drawdown's step: the armored brigade withdrawn on 2028-03-31.
async fn withdraw_abct(env: &Env, plan: uuid::Uuid) -> CommandOutcome {
    let step = Step::WithdrawElement {
        element_id: id("abct"),
        on: date(2028, 3, 31),
    };
    let decision_id = did("drawdown");
    env.exec(US, plan, Command::PlanStep { decision_id, step })
        .await
}

/// The finding of the U.S. floor the withdrawal breaks from 2028-03-31, until `until`.
fn floor_finding(until: Option<v1::Date>) -> (String, i32, Option<v1::Date>, Option<v1::Date>) {
    let kind = v1::FindingKind::Constraint as i32;
    (
        "constraint:us-floor".to_owned(),
        kind,
        d(2028, 3, 31),
        until,
    )
}

/// The adopted plan's findings, from read models caught up with the log and served.
async fn floor_findings(
    env: &Env,
    plan: uuid::Uuid,
) -> Vec<(String, i32, Option<v1::Date>, Option<v1::Date>)> {
    let address = serve(env, env.caught_up().await).await;
    findings(&address, plan, false).await
}

/// A U.S. personnel floor of `min` from 2024, and a proposed drawdown (no steps yet).
async fn floor_and_drawdown(env: &Env, plan: uuid::Uuid, min: u64) {
    env.exec(
        US,
        plan,
        Command::DefineConstraint {
            constraint_id: ConstraintId::parse("us-floor").unwrap(),
            title: "U.S. personnel floor".into(),
            rule: us_personnel(Some(min), None),
            side: Some(Side::Us),
            authority: "statute".into(),
            since: Some(date(2024, 1, 1)),
        },
    )
    .await;
    env.exec(
        US,
        plan,
        Command::ProposeDecision {
            decision_id: did("drawdown"),
            title: "drawdown".into(),
            rationale: "through the floor".into(),
            effective_date: date(2028, 1, 1),
            required_sides: [Side::Us].into(),
            supersedes: Default::default(),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_plan_has_no_findings_and_an_early_withdrawal_is_exactly_the_prerequisite() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let address = serve(&env, env.caught_up().await).await;
    assert_eq!(findings(&address, plan, true).await, [], "what-if view");
    assert_eq!(findings(&address, plan, false).await, [], "adopted view");

    // A branch-like change: a new phase 1 that withdraws the rotational brigade before the
    // transfer, superseding nothing, depending on the revised plans like the real one.
    env.exec(
        US,
        plan,
        Command::ProposeDecision {
            decision_id: did("early-brigade-withdrawal"),
            title: "withdraw the rotational brigade before the transfer".into(),
            rationale: "a probe".into(),
            effective_date: date(2027, 1, 1),
            required_sides: [Side::Us, Side::Rok].into(),
            supersedes: Default::default(),
        },
    )
    .await;
    env.exec(
        US,
        plan,
        Command::RequirePrerequisite {
            decision_id: did("early-brigade-withdrawal"),
            prerequisite: Prerequisite::AfterDecision {
                decision_id: did("opcon-wartime-transfer"),
                lag_months: 0,
            },
        },
    )
    .await;
    env.exec(
        US,
        plan,
        Command::PlanStep {
            decision_id: did("early-brigade-withdrawal"),
            step: Step::WithdrawElement {
                element_id: id("2id-rotational-abct"),
                on: date(2027, 9, 30),
            },
        },
    )
    .await;
    let address = serve(&env, env.caught_up().await).await;
    assert_eq!(
        findings(&address, plan, true).await,
        [(
            "prerequisite:early-brigade-withdrawal:1".to_owned(),
            v1::FindingKind::Prerequisite as i32,
            d(2027, 9, 30),
            d(2028, 12, 1)
        )],
        "exactly the prerequisite finding, from the withdrawal to the transfer"
    );
    assert_eq!(findings(&address, plan, false).await, [], "nothing adopted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_floor_finding_appears_with_the_drawdown_and_ends_with_the_certification() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    for (element_id, personnel) in [("abct", 4500), ("wing", 2000)] {
        env.exec(US, plan, registration(element_id, personnel))
            .await;
    }
    floor_and_drawdown(&env, plan, 5000).await;
    withdraw_abct(&env, plan).await;
    env.exec(
        US,
        plan,
        Command::EndorseDecision {
            decision_id: did("drawdown"),
        },
    )
    .await;
    let refused = env
        .try_exec(
            APPROVER,
            plan,
            Command::AdoptDecision {
                decision_id: did("drawdown"),
                acknowledged_findings: Default::default(),
            },
        )
        .await
        .expect_err("a new finding refuses the adoption");
    assert!(
        refused.to_string().contains("constraint:us-floor"),
        "{refused}"
    );
    env.exec(
        APPROVER,
        plan,
        Command::AdoptDecision {
            decision_id: did("drawdown"),
            acknowledged_findings: ["constraint:us-floor".to_owned()].into(),
        },
    )
    .await;
    assert_eq!(floor_findings(&env, plan).await, [floor_finding(None)]);
    // The ROK cannot certify a U.S. rule; the U.S. can.
    let waiver = Command::WaiveConstraint {
        constraint_id: ConstraintId::parse("us-floor").unwrap(),
        from: date(2028, 6, 1),
        authority: "certification of the Secretary of Defense".into(),
        note: String::new(),
    };
    assert!(env.try_exec(ROK, plan, waiver.clone()).await.is_err());
    env.exec(US, plan, waiver).await;
    let until_the_waiver = floor_finding(d(2028, 6, 1));
    assert_eq!(floor_findings(&env, plan).await, [until_the_waiver]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_findings_sends_the_findings_then_each_change_of_them() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    env.exec(US, plan, registration("abct", 4500)).await;
    let projection = alliance_projection::Projection::new();
    tokio::spawn(projection.clone().follow(env.log.clone()));
    let address = serve(&env, projection).await;
    let mut client = PostureQueriesClient::connect(address).await.unwrap();
    let mut reports = client
        .watch_findings(authed(v1::WatchFindingsRequest {
            plan_id: plan.to_string(),
            include_proposed: true,
            min_version: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), reports.message())
            .await
            .expect("no report within 10 s")
            .unwrap()
            .expect("the stream ended")
    };
    let first = next().await;
    assert_eq!(first.findings, []);

    // A floor the plan already keeps changes no finding: nothing is sent for it. A proposed
    // withdrawal through it (what-if) is the next report.
    floor_and_drawdown(&env, plan, 4000).await;
    let withdrawn = withdraw_abct(&env, plan).await;
    let second = next().await;
    assert_eq!(second.version, withdrawn.plan_version);
    let ids: Vec<&str> = second.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["constraint:us-floor"]);
}
