//! Property: for random command histories, the read model's posture at any (valid date,
//! version) pair equals the posture of the log's events folded from scratch to that version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use alliance_domain::{
    AgreementKind, CapabilityArea, ClauseId, ClauseStatus, Command, ConditionId, ConditionStatus,
    Date, DecisionId, DecisionStatus, ElementId, InvestmentId, Mission, Plan, PlanRole, Section,
    Side, Step,
};
use alliance_projection::{DecisionFilter, RecordPoint};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::{APPROVER, Env, ROK, US, command_end, date, decode, element, naive_state};

/// Capability areas the histories record levels and investments in.
const AREAS: [CapabilityArea; 4] = [
    CapabilityArea::GroundCombat,
    CapabilityArea::MissileDefense,
    CapabilityArea::Munitions,
    CapabilityArea::Isr,
];

/// Days after 2020-01-01, the start of the test plan's horizon (2020–2035).
fn day(offset: i64) -> Date {
    date(2020, 1, 1) + chrono::Duration::days(offset)
}

fn in_horizon() -> impl Strategy<Value = i64> {
    0i64..5_800
}

fn side(rok: bool) -> Side {
    if rok { Side::Rok } else { Side::Us }
}

/// A step, its targets chosen among what the plan holds when it runs.
#[derive(Debug, Clone)]
enum StepOp {
    Withdraw {
        e: usize,
        on: i64,
    },
    Reduce {
        e: usize,
        personnel: u32,
        on: i64,
    },
    Relocate {
        e: usize,
        on: i64,
    },
    Add {
        personnel: u32,
        on: i64,
    },
    Arrangement {
        peacetime: Option<bool>,
        wartime: Option<bool>,
        on: i64,
    },
    Invest {
        area: usize,
        gain: u32,
        on: i64,
    },
    Amend {
        c: usize,
        status: usize,
        on: i64,
    },
    Mission {
        mission: usize,
        rok_leads: bool,
        supported: bool,
        on: i64,
    },
}

const CLAUSE_STATUSES: [ClauseStatus; 3] = [
    ClauseStatus::Restricted,
    ClauseStatus::Permitted,
    ClauseStatus::Terminated,
];
const CONDITION_STATUSES: [ConditionStatus; 3] = [
    ConditionStatus::NotMet,
    ConditionStatus::PartiallyMet,
    ConditionStatus::Met,
];
const MISSIONS: [Mission; 3] = [
    Mission::MajorCombat,
    Mission::Logistics,
    Mission::Reinforcement,
];

/// One command of a random history. `d` and `e` pick a decision or element among those the
/// plan holds when the command runs (small values: the most recent), so most commands are
/// accepted; the rest are refused as a planner's mistakes would be.
#[derive(Debug, Clone)]
enum Op {
    Register {
        rok: bool,
        personnel: u32,
        from: i64,
    },
    Capability {
        rok: bool,
        area: usize,
        level: u32,
        on: i64,
    },
    Propose {
        rok: bool,
        on: i64,
        sides: u8,
        supersedes: Option<usize>,
    },
    Step {
        d: usize,
        step: StepOp,
    },
    Endorse {
        d: usize,
        side: Option<bool>,
    },
    Adopt {
        d: usize,
    },
    Reject {
        d: usize,
    },
    Withdraw {
        d: usize,
    },
    Clause {
        status: usize,
        since: i64,
    },
    Condition,
    Assess {
        c: usize,
        status: usize,
        value: Option<u32>,
        on: i64,
    },
    /// A role granted to (or revoked from) a team that otherwise takes no part: grants change
    /// who may act, never a posture.
    Grant {
        revoke: bool,
        role: usize,
    },
}

/// The roles the histories grant and revoke.
const ROLES: [PlanRole; 3] = [
    PlanRole::Auditor,
    PlanRole::Endorser(Side::Rok),
    PlanRole::Editor(Section::Forces),
];

/// The team the histories grant roles to.
const OBSERVER: &str = "alliance-observers";

fn pick() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..2usize, 1 => 0..8usize]
}

fn step_op() -> impl Strategy<Value = StepOp> {
    prop_oneof![
        3 => (pick(), in_horizon()).prop_map(|(e, on)| StepOp::Withdraw { e, on }),
        3 => (pick(), 0u32..3_000, in_horizon())
            .prop_map(|(e, personnel, on)| StepOp::Reduce { e, personnel, on }),
        1 => (pick(), in_horizon()).prop_map(|(e, on)| StepOp::Relocate { e, on }),
        2 => (1u32..5_000, in_horizon())
            .prop_map(|(personnel, on)| StepOp::Add { personnel, on }),
        1 => (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            in_horizon()
        )
            .prop_map(|(peacetime, wartime, on)| StepOp::Arrangement { peacetime, wartime, on }),
        1 => (0..AREAS.len(), 1u32..30, in_horizon())
            .prop_map(|(area, gain, on)| StepOp::Invest { area, gain, on }),
        1 => (pick(), 0..CLAUSE_STATUSES.len(), in_horizon())
            .prop_map(|(c, status, on)| StepOp::Amend { c, status, on }),
        1 => (0..MISSIONS.len(), any::<bool>(), any::<bool>(), in_horizon()).prop_map(
            |(mission, rok_leads, supported, on)| StepOp::Mission { mission, rok_leads, supported, on }
        ),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (any::<bool>(), 100u32..5_000, in_horizon())
            .prop_map(|(rok, personnel, from)| Op::Register { rok, personnel, from }),
        2 => (any::<bool>(), 0..AREAS.len(), 0u32..=100, in_horizon())
            .prop_map(|(rok, area, level, on)| Op::Capability { rok, area, level, on }),
        3 => (
            any::<bool>(),
            in_horizon(),
            1u8..=3,
            prop_oneof![4 => Just(None), 1 => pick().prop_map(Some)]
        )
            .prop_map(|(rok, on, sides, supersedes)| Op::Propose { rok, on, sides, supersedes }),
        6 => (pick(), step_op()).prop_map(|(d, step)| Op::Step { d, step }),
        4 => (pick(), prop_oneof![3 => Just(None), 1 => any::<bool>().prop_map(Some)])
            .prop_map(|(d, side)| Op::Endorse { d, side }),
        3 => pick().prop_map(|d| Op::Adopt { d }),
        1 => pick().prop_map(|d| Op::Reject { d }),
        1 => pick().prop_map(|d| Op::Withdraw { d }),
        1 => (0..CLAUSE_STATUSES.len(), in_horizon())
            .prop_map(|(status, since)| Op::Clause { status, since }),
        1 => Just(Op::Condition),
        1 => (
            pick(),
            0..CONDITION_STATUSES.len(),
            proptest::option::of(0u32..=100),
            in_horizon()
        )
            .prop_map(|(c, status, value, on)| Op::Assess { c, status, value, on }),
        1 => (any::<bool>(), 0..ROLES.len()).prop_map(|(revoke, role)| Op::Grant { revoke, role }),
    ]
}

/// The `pick`-th most recent of `items` (which are in creation order).
fn recent<T: Clone>(items: &[T], pick: usize) -> Option<T> {
    let len = items.len();
    (len > 0).then(|| items[len - 1 - pick % len].clone())
}

/// Names minted so far, in creation order.
#[derive(Default)]
struct Names {
    next: usize,
}

impl Names {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:04}", self.next)
    }
}

/// The command an op stands for against the plan as it stands, and the team that issues it;
/// `None` when the plan holds nothing the op could name.
fn command(op: &Op, plan: &Plan, names: &mut Names) -> Option<(&'static str, Command)> {
    // Ids are minted with increasing numbers, so id order is creation order.
    let decisions: Vec<&alliance_domain::Decision> =
        plan.decisions.values().map(|d| &**d).collect();
    let open: Vec<&alliance_domain::Decision> = decisions
        .iter()
        .copied()
        .filter(|d| d.status == DecisionStatus::Proposed)
        .collect();
    let adopted: Vec<DecisionId> = plan.adopted().map(|d| d.id.clone()).collect();
    let mut elements: Vec<ElementId> = plan
        .elements
        .keys()
        .chain(plan.planned_elements.keys())
        .cloned()
        .collect();
    elements.sort();
    let clauses: Vec<ClauseId> = plan.clauses.keys().cloned().collect();
    let conditions: Vec<ConditionId> = plan.conditions.keys().cloned().collect();
    let team_of = |d: &alliance_domain::Decision| {
        if d.owner_team.as_str() == US { US } else { ROK }
    };
    Some(match op {
        Op::Register {
            rok,
            personnel,
            from,
        } => (
            US,
            Command::RegisterForceElement {
                element: element(&names.fresh("e"), side(*rok), *personnel),
                present_from: day(*from),
            },
        ),
        Op::Capability {
            rok,
            area,
            level,
            on,
        } => (
            if *rok { ROK } else { US },
            Command::RecordCapabilityLevel {
                side: side(*rok),
                area: AREAS[*area],
                level: *level,
                as_of: day(*on),
            },
        ),
        Op::Propose {
            rok,
            on,
            sides,
            supersedes,
        } => {
            let mut required = BTreeSet::new();
            if sides & 1 != 0 {
                required.insert(Side::Us);
            }
            if sides & 2 != 0 {
                required.insert(Side::Rok);
            }
            let decision_id = DecisionId::parse(&names.fresh("d")).unwrap();
            (
                if *rok { ROK } else { US },
                Command::ProposeDecision {
                    title: format!("decision {decision_id}"),
                    decision_id,
                    rationale: "random".into(),
                    effective_date: day(*on),
                    required_sides: required,
                    supersedes: supersedes
                        .and_then(|p| recent(&adopted, p))
                        .into_iter()
                        .collect(),
                },
            )
        }
        Op::Step { d, step } => {
            // Steps go to decisions no side has endorsed yet (mostly: else to any open one).
            let unendorsed: Vec<_> = open
                .iter()
                .copied()
                .filter(|d| d.endorsements.is_empty())
                .collect();
            let decision = recent(&unendorsed, *d).or_else(|| recent(&open, *d))?;
            let step = match step {
                StepOp::Withdraw { e, on } => Step::WithdrawElement {
                    element_id: recent(&elements, *e)?,
                    on: day(*on),
                },
                StepOp::Reduce { e, personnel, on } => Step::ReduceElement {
                    element_id: recent(&elements, *e)?,
                    personnel: *personnel,
                    equipment: [("M1A2".to_owned(), personnel % 4)].into_iter().collect(),
                    on: day(*on),
                },
                StepOp::Relocate { e, on } => Step::RelocateElement {
                    element_id: recent(&elements, *e)?,
                    to_base: format!("base {on}"),
                    on: day(*on),
                },
                StepOp::Add { personnel, on } => Step::AddElement {
                    element: element(&names.fresh("e"), Side::Us, *personnel),
                    on: day(*on),
                },
                StepOp::Arrangement {
                    peacetime,
                    wartime,
                    on,
                } => {
                    Step::ChangeCommandArrangement {
                        on: day(*on),
                        // Never an empty change: that is refused as invalid.
                        peacetime_opcon: Some(side(peacetime.unwrap_or(true))),
                        wartime_opcon: wartime.map(side),
                        cfc_commander: wartime.map(|w| side(!w)),
                    }
                }
                StepOp::Invest { area, gain, on } => Step::InvestCapability {
                    investment_id: InvestmentId::parse(&names.fresh("i")).unwrap(),
                    area: AREAS[*area],
                    description: "random".into(),
                    level_gain: *gain,
                    delivery: day(*on),
                    cost_kusd: 100,
                },
                StepOp::Amend { c, status, on } => Step::AmendClause {
                    clause_id: recent(&clauses, *c)?,
                    status: CLAUSE_STATUSES[*status],
                    on: day(*on),
                },
                StepOp::Mission {
                    mission,
                    rok_leads,
                    supported,
                    on,
                } => Step::AssignMission {
                    mission: MISSIONS[*mission],
                    lead: side(*rok_leads),
                    supporting: supported.then(|| side(!rok_leads)),
                    on: day(*on),
                },
            };
            (
                team_of(decision),
                Command::PlanStep {
                    decision_id: decision.id.clone(),
                    step,
                },
            )
        }
        Op::Endorse { d, side: chosen } => {
            let decision = recent(&open, *d)?;
            // By default a side whose endorsement is still missing.
            let missing = decision
                .required_sides
                .iter()
                .find(|side| !decision.endorsements.contains(side))
                .unwrap_or(Side::Us);
            let side = chosen.map_or(missing, side);
            (
                if side == Side::Rok { ROK } else { US },
                Command::EndorseDecision {
                    decision_id: decision.id.clone(),
                },
            )
        }
        Op::Adopt { d } => {
            let ready: Vec<_> = open
                .iter()
                .copied()
                .filter(|d| d.required_sides.is_subset(&d.endorsements))
                .collect();
            let decision = recent(&ready, *d).or_else(|| recent(&open, *d))?;
            (
                APPROVER,
                Command::AdoptDecision {
                    decision_id: decision.id.clone(),
                    acknowledged_findings: Default::default(),
                },
            )
        }
        Op::Reject { d } => (
            APPROVER,
            Command::RejectDecision {
                decision_id: recent(&decisions, *d)?.id.clone(),
                reason: "random".into(),
            },
        ),
        Op::Withdraw { d } => {
            let decision = recent(&open, *d)?;
            (
                team_of(decision),
                Command::WithdrawDecision {
                    decision_id: decision.id.clone(),
                    reason: "random".into(),
                },
            )
        }
        Op::Clause { status, since } => (
            US,
            Command::DefineAgreementClause {
                clause_id: ClauseId::parse(&names.fresh("k")).unwrap(),
                agreement: AgreementKind::NuclearCooperation123,
                title: "random".into(),
                status: CLAUSE_STATUSES[*status],
                since: day(*since),
            },
        ),
        Op::Grant { revoke, role } => {
            let team = alliance_domain::TeamId::parse(OBSERVER).unwrap();
            let role = ROLES[*role];
            (
                APPROVER,
                if *revoke {
                    Command::RevokeRole { team, role }
                } else {
                    Command::GrantRole { team, role }
                },
            )
        }
        Op::Condition => (
            ROK,
            Command::DefineCondition {
                condition_id: ConditionId::parse(&names.fresh("c")).unwrap(),
                title: "random".into(),
                description: String::new(),
                area: Some(AREAS[0]),
                threshold: Some(70),
            },
        ),
        Op::Assess {
            c,
            status,
            value,
            on,
        } => (
            ROK,
            Command::AssessCondition {
                condition_id: recent(&conditions, *c)?,
                assessed_on: day(*on),
                status: CONDITION_STATUSES[*status],
                value: *value,
                note: String::new(),
            },
        ),
    })
}

/// What the decisions view should list: a plain filter over a naively folded state.
fn naive_decisions(plan: &Plan, filter: &DecisionFilter) -> Vec<DecisionId> {
    plan.decisions
        .values()
        .filter(|d| filter.status.is_none_or(|s| d.status == s))
        .filter(|d| {
            filter.side.is_none_or(|s| {
                // Named by the proposer, or touched by a step.
                d.required_sides.contains(&s) || d.derived_sides(plan).contains(&s)
            })
        })
        .map(|d| d.id.clone())
        .collect()
}

/// Events seen over all cases, by type (and by kind of step planned).
static SEEN: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

fn tally(events: &[alliance_domain::Event]) {
    let mut seen = alliance_stdx::lock(&SEEN);
    for event in events {
        let kind = match event {
            alliance_domain::Event::StepPlanned { step, .. } => format!("{:?}", step)
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned(),
            other => other.event_type().to_owned(),
        };
        *seen.entry(kind).or_default() += 1;
    }
}

/// Longest history seen, and how many decisions were adopted, over all cases.
static MOST_EVENTS: AtomicU64 = AtomicU64::new(0);
static ADOPTIONS: AtomicU64 = AtomicU64::new(0);
static PAST_CHECKPOINT: AtomicU64 = AtomicU64::new(0);

#[test]
fn posture_at_any_version_equals_a_fold_from_scratch() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        // Mostly long histories (past the first checkpoint or two), some short ones.
        prop_oneof![1 => 10..60usize, 2 => 150..240usize]
            .prop_flat_map(|len| proptest::collection::vec(op(), len)),
        proptest::collection::vec((-400i64..6_200, any::<bool>()), 6),
    );
    runner
        .run(&strategy, |(ops, queries)| {
            runtime.block_on(check_history(&ops, &queries));
            Ok(())
        })
        .unwrap();
    // The cases cross the read model's checkpoints (every 64 versions) and shape postures.
    let most = MOST_EVENTS.load(Ordering::Relaxed);
    assert!(most > 100, "longest history only {most} events");
    let past = PAST_CHECKPOINT.load(Ordering::Relaxed);
    assert!(past >= 3, "only {past} histories longer than 64 events");
    let adoptions = ADOPTIONS.load(Ordering::Relaxed);
    assert!(adoptions >= 24, "only {adoptions} decisions adopted");
    eprintln!("longest history {most} events, {past} past 64, {adoptions} adoptions");
    // Every kind of fact a posture is made of occurs (and is adopted, superseded, branched).
    let seen = alliance_stdx::lock(&SEEN);
    eprintln!("{seen:?}");
    for kind in [
        "AgreementClauseDefined",
        "ConditionDefined",
        "ConditionAssessed",
        "CapabilityLevelRecorded",
        "DecisionSuperseded",
        "DecisionRejected",
        "DecisionWithdrawn",
        "AmendClause",
        "AssignMission",
        "ChangeCommandArrangement",
        "InvestCapability",
        "AddElement",
        "ReduceElement",
        "WithdrawElement",
        "RelocateElement",
        "PlanBranched",
        "RoleGranted",
        "RoleRevoked",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 3,
            "{kind} seen {:?} times",
            seen.get(kind)
        );
    }
}

async fn check_history(ops: &[Op], queries: &[(i64, bool)]) {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let mut names = Names::default();
    for op in ops {
        let state = env.service.plan(plan).await.unwrap();
        let Some((team, command)) = command(op, &state, &mut names) else {
            continue;
        };
        // Refusals (rules, unknown ids, closed decisions) are part of a random history.
        let _ = env.try_exec(team, plan, command).await;
    }
    let projection = env.caught_up().await;
    let stored = env.plan_events(plan).await;
    let events = decode(&stored);
    let latest = events.len() as u64;
    MOST_EVENTS.fetch_max(latest, Ordering::Relaxed);
    if latest > 64 {
        PAST_CHECKPOINT.fetch_add(1, Ordering::Relaxed);
    }
    ADOPTIONS.fetch_add(
        events
            .iter()
            .filter(|e| matches!(e, alliance_domain::Event::DecisionAdopted { .. }))
            .count() as u64,
        Ordering::Relaxed,
    );
    tally(&events);
    assert_eq!(projection.plan_version(plan), latest);
    // The write side's state is the same fold.
    assert_eq!(
        env.service.plan(plan).await.unwrap(),
        naive_state(&events, latest)
    );

    let filters = [
        DecisionFilter::default(),
        DecisionFilter {
            status: Some(alliance_domain::DecisionStatus::Adopted),
            ..Default::default()
        },
        DecisionFilter {
            status: Some(alliance_domain::DecisionStatus::Proposed),
            side: Some(Side::Rok),
            ..Default::default()
        },
        DecisionFilter {
            side: Some(Side::Us),
            ..Default::default()
        },
    ];
    for version in 0..=latest {
        let state = naive_state(&events, command_end(&stored, version));
        for (offset, what_if) in queries {
            let valid = day(*offset);
            let read = projection
                .posture(plan, valid, RecordPoint::Version(version), *what_if)
                .unwrap();
            let naive = alliance_domain::posture(&state, valid, *what_if);
            assert_eq!(
                read, naive,
                "version {version} of {latest}, {valid}, what-if {what_if}"
            );
        }
        for filter in &filters {
            let listed: Vec<DecisionId> = projection
                .decisions(plan, RecordPoint::Version(version), filter)
                .unwrap()
                .into_iter()
                .map(|v| v.decision.id)
                .collect();
            assert_eq!(listed, naive_decisions(&state, filter), "version {version}");
        }
    }
    check_branch(&env, plan, &events, &stored, ops, queries).await;
    // Beyond the latest version is the latest.
    let valid = day(queries[0].0);
    assert_eq!(
        projection
            .posture(plan, valid, RecordPoint::Version(latest + 5), false)
            .unwrap(),
        alliance_domain::posture(&naive_state(&events, latest), valid, false)
    );
}

/// A branch taken halfway through the history and given the first half of the same ops again:
/// its postures at every version equal the parent's events folded to the branch point, then
/// the branch's own.
async fn check_branch(
    env: &Env,
    parent: alliance_domain::PlanId,
    parent_events: &[alliance_domain::Event],
    parent_stored: &[alliance_eventlog::StoredEvent],
    ops: &[Op],
    queries: &[(i64, bool)],
) {
    // At least the plan's creation: a branch asked for at version 0 is taken at the latest.
    let at = command_end(parent_stored, (parent_stored.len() as u64 / 2).max(1));
    let branch = uuid::Uuid::now_v7();
    env.exec(
        APPROVER,
        parent,
        Command::BranchPlan {
            new_plan_id: branch,
            parent_version: at,
            name: "branch".into(),
            description: String::new(),
        },
    )
    .await;
    let mut names = Names { next: 100_000 };
    for op in &ops[..ops.len() / 2] {
        let state = env.service.plan(branch).await.unwrap();
        if let Some((team, command)) = command(op, &state, &mut names) {
            let _ = env.try_exec(team, branch, command).await;
        }
    }
    let projection = env.caught_up().await;
    let stored = env.plan_events(branch).await;
    let events = decode(&stored);
    tally(&events);
    let base = naive_state(parent_events, at);
    for version in 0..=events.len() as u64 {
        let end = command_end(&stored, version) as usize;
        let state = alliance_domain::fold(base.clone(), &events[..end]);
        for (offset, what_if) in queries {
            let valid = day(*offset);
            assert_eq!(
                projection
                    .posture(branch, valid, RecordPoint::Version(version), *what_if)
                    .unwrap(),
                alliance_domain::posture(&state, valid, *what_if),
                "branch at {at}, version {version}, {valid}, what-if {what_if}"
            );
        }
    }
}
