//! Prerequisites, constraints and findings, given / when / then; and a property: the findings of
//! a random plan equal a naive day-by-day evaluation of its posture.

use std::collections::BTreeSet;

use alliance_domain::{
    CapabilityArea, Command, ConditionStatus, ConstraintId, ConstraintRule, Date, DomainError,
    Event, Finding, FindingKind, Plan, Prerequisite, Side, Step, TeamId, Waiver, all_findings,
    findings, fold, posture,
};
use proptest::prelude::*;

use alliance_domain::testing::{
    ABCT, US_TEAM, WING, adopt, adopted, adopted_decision, alliance, baseline, baseline_with, cond,
    created, date, dec, endorsed_decision, given, horizon_end, horizon_start, planned, proposed,
    proposed_by, reduce, registered, rok, us, us_personnel, withdraw,
};

const TRANSFER: &str = "opcon-transfer";
const DRAWDOWN: &str = "drawdown";
const FLOOR: &str = "us-floor";

fn cid(s: &str) -> ConstraintId {
    ConstraintId::parse(s).expect("a valid constraint id")
}

fn transfer_on(on: Date) -> Step {
    Step::TransferOpcon {
        on,
        conditions: BTreeSet::from([cond("rok-c2")]),
    }
}

fn condition_defined(id: &str) -> Event {
    Event::ConditionDefined {
        condition_id: cond(id),
        title: format!("condition {id}"),
        description: String::new(),
        area: None,
        threshold: None,
    }
}

fn assessed(id: &str, on: Date, status: ConditionStatus) -> Event {
    Event::ConditionAssessed {
        condition_id: cond(id),
        assessed_on: on,
        status,
        value: None,
        note: String::new(),
    }
}

fn after(decision: &str, lag_months: u32) -> Prerequisite {
    Prerequisite::AfterDecision {
        decision_id: dec(decision),
        lag_months,
    }
}

fn required(decision: &str, prerequisite: Prerequisite) -> Event {
    Event::PrerequisiteRequired {
        decision_id: dec(decision),
        prerequisite,
    }
}

fn require(decision: &str, prerequisite: Prerequisite) -> Command {
    Command::RequirePrerequisite {
        decision_id: dec(decision),
        prerequisite,
    }
}

fn adopt_acknowledging(decision: &str, findings: &[&str]) -> Command {
    Command::AdoptDecision {
        decision_id: dec(decision),
        acknowledged_findings: findings.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// The transfer, adopted on `on`, with its condition assessed met a month before.
fn transfer_adopted(on: Date) -> Vec<Event> {
    let mut events = vec![
        condition_defined("rok-c2"),
        assessed("rok-c2", date(2028, 11, 1), ConditionStatus::Met),
    ];
    events.extend(adopted_decision(TRANSFER, vec![transfer_on(on)]));
    events
}

/// A drawdown withdrawing the ABCT on `on`, which depends on the transfer; endorsed, not adopted.
fn drawdown_after_transfer(on: Date, lag_months: u32) -> Vec<Event> {
    let mut events = vec![
        proposed(DRAWDOWN),
        planned(DRAWDOWN, withdraw(ABCT, on)),
        required(DRAWDOWN, after(TRANSFER, lag_months)),
    ];
    events.extend([
        Event::DecisionEndorsed {
            decision_id: dec(DRAWDOWN),
            side: Side::Us,
        },
        Event::DecisionEndorsed {
            decision_id: dec(DRAWDOWN),
            side: Side::Rok,
        },
    ]);
    events
}

fn findings_of(events: &[Event], what_if: bool) -> Vec<Finding> {
    all_findings(&fold(Plan::default(), events), what_if)
}

/// The prerequisite that the conditions `ids` are met.
fn conditions_met<const N: usize>(ids: [&str; N]) -> Prerequisite {
    Prerequisite::ConditionsMet {
        conditions: ids.map(cond).into(),
    }
}

fn ids(findings: &[Finding]) -> Vec<(&str, Date, Option<Date>)> {
    findings
        .iter()
        .map(|f| (f.id.as_str(), f.from, f.until))
        .collect()
}

fn new_finding_ids(e: &DomainError) -> Vec<String> {
    match e {
        DomainError::NewFindings { findings, .. } => {
            findings.iter().map(|(id, _)| id.clone()).collect()
        }
        other => panic!("expected new findings, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Requiring a prerequisite
// ---------------------------------------------------------------------------------------------

#[test]
fn require_prerequisite_emits_prerequisite_required() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.push(proposed(DRAWDOWN));
    given(events)
        .when(us(), require(DRAWDOWN, after(TRANSFER, 6)))
        .then(vec![required(DRAWDOWN, after(TRANSFER, 6))]);
}

#[test]
fn a_prerequisite_on_an_unknown_decision_or_condition_is_not_found() {
    let events = baseline_with([proposed(DRAWDOWN)]);
    given(events.clone())
        .when(us(), require(DRAWDOWN, after("no-such", 0)))
        .then_not_found("decision", "no-such");
    given(events)
        .when(us(), require(DRAWDOWN, conditions_met(["rok-c9"])))
        .then_not_found("condition", "rok-c9");
}

#[test]
fn a_decision_cannot_depend_on_itself_or_on_what_depends_on_it() {
    given(baseline_with([proposed(DRAWDOWN)]))
        .when(us(), require(DRAWDOWN, after(DRAWDOWN, 0)))
        .then_invalid("prerequisite.decision_id");
    let events = baseline_with([
        proposed(DRAWDOWN),
        proposed(TRANSFER),
        required(TRANSFER, after(DRAWDOWN, 0)),
    ]);
    given(events)
        .when(us(), require(DRAWDOWN, after(TRANSFER, 0)))
        .then_rule("prerequisite_cycle");
}

#[test]
fn only_the_owner_adds_prerequisites_and_only_before_any_endorsement() {
    let events = baseline_with([
        proposed(TRANSFER),
        proposed_by(DRAWDOWN, US_TEAM, BTreeSet::from([Side::Us])),
    ]);
    given(events.clone())
        .when(rok(), require(DRAWDOWN, after(TRANSFER, 0)))
        .then_rule("not_owner");
    let mut endorsed = events;
    endorsed.push(Event::DecisionEndorsed {
        decision_id: dec(DRAWDOWN),
        side: Side::Us,
    });
    given(endorsed)
        .when(us(), require(DRAWDOWN, after(TRANSFER, 0)))
        .then_rule("already_endorsed");
}

#[test]
fn a_lag_beyond_fifty_years_and_an_empty_condition_list_are_invalid() {
    let events = baseline_with([proposed(DRAWDOWN), proposed(TRANSFER)]);
    given(events.clone())
        .when(us(), require(DRAWDOWN, after(TRANSFER, 601)))
        .then_invalid("prerequisite.lag_months");
    given(events)
        .when(us(), require(DRAWDOWN, conditions_met([])))
        .then_invalid("prerequisite.conditions");
}

// ---------------------------------------------------------------------------------------------
// Prerequisite findings and adoption
// ---------------------------------------------------------------------------------------------

#[test]
fn a_withdrawal_before_the_transfer_it_depends_on_is_refused_with_the_finding() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2028, 3, 31), 0));
    let e = given(events).when(alliance(), adopt(DRAWDOWN)).error();
    assert_eq!(new_finding_ids(&e), ["prerequisite:drawdown:1"]);
    assert!(
        e.to_string().contains("not before 2028-12-01"),
        "the refusal says when the step may come: {e}"
    );
}

#[test]
fn an_acknowledged_finding_is_adopted_and_recorded() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2028, 3, 31), 0));
    given(events.clone())
        .when(
            alliance(),
            adopt_acknowledging(DRAWDOWN, &["prerequisite:drawdown:1"]),
        )
        .then(vec![
            adopted(DRAWDOWN),
            Event::FindingsAcknowledged {
                decision_id: dec(DRAWDOWN),
                findings: BTreeSet::from(["prerequisite:drawdown:1".to_owned()]),
            },
        ]);
    events.extend([
        adopted(DRAWDOWN),
        Event::FindingsAcknowledged {
            decision_id: dec(DRAWDOWN),
            findings: BTreeSet::from(["prerequisite:drawdown:1".to_owned()]),
        },
    ]);
    let found = findings_of(&events, false);
    let (from, until) = (date(2028, 3, 31), Some(date(2028, 12, 1)));
    assert_eq!(ids(&found), [("prerequisite:drawdown:1", from, until)]);
    assert!(found[0].acknowledged);
    assert_eq!(found[0].decisions, [dec(DRAWDOWN), dec(TRANSFER)]);
}

#[test]
fn acknowledging_a_finding_the_adoption_does_not_add_is_invalid() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2029, 3, 31), 0));
    given(events)
        .when(
            alliance(),
            adopt_acknowledging(DRAWDOWN, &["constraint:other"]),
        )
        .then_invalid("acknowledged_findings");
}

#[test]
fn a_withdrawal_after_the_transfer_and_its_lag_is_adopted() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2029, 6, 1), 6));
    given(events)
        .when(alliance(), adopt(DRAWDOWN))
        .then(vec![adopted(DRAWDOWN)]);
}

#[test]
fn a_lag_moves_the_date_the_finding_ends() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2029, 3, 1), 6));
    assert_eq!(
        ids(&findings_of(&events, true)),
        [(
            "prerequisite:drawdown:1",
            date(2029, 3, 1),
            Some(date(2029, 6, 1))
        )],
        "what-if: the proposed drawdown comes 3 months early"
    );
    assert!(
        findings_of(&events, false).is_empty(),
        "the adopted plan holds no drawdown yet"
    );
}

#[test]
fn a_dependency_that_is_not_adopted_is_a_finding_until_it_is() {
    let mut events = baseline_with([condition_defined("rok-c2")]);
    events.extend(endorsed_decision(
        TRANSFER,
        vec![transfer_on(date(2028, 12, 1))],
    ));
    events.extend(drawdown_after_transfer(date(2029, 3, 31), 0));
    let e = given(events.clone())
        .when(alliance(), adopt(DRAWDOWN))
        .error();
    assert_eq!(new_finding_ids(&e), ["prerequisite:drawdown:1"]);
    assert!(e.to_string().contains("which is proposed"), "{e}");
}

#[test]
fn findings_appear_and_disappear_as_decisions_are_adopted_and_superseded() {
    let mut events = baseline_with(transfer_adopted(date(2028, 12, 1)));
    events.extend(drawdown_after_transfer(date(2028, 3, 31), 0));
    let before = events.len();
    events.extend([
        Event::FindingsAcknowledged {
            decision_id: dec(DRAWDOWN),
            findings: BTreeSet::from(["prerequisite:drawdown:1".to_owned()]),
        },
        adopted(DRAWDOWN),
    ]);
    let adopted_at = events.len();
    // A later decision supersedes the early drawdown with one after the transfer.
    events.push(alliance_domain::testing::proposed_superseding(
        "drawdown-later",
        US_TEAM,
        alliance_domain::testing::both_sides(),
        &[DRAWDOWN],
    ));
    events.push(planned("drawdown-later", withdraw(ABCT, date(2029, 3, 31))));
    events.push(required("drawdown-later", after(TRANSFER, 0)));
    events.push(Event::DecisionEndorsed {
        decision_id: dec("drawdown-later"),
        side: Side::Us,
    });
    events.push(Event::DecisionEndorsed {
        decision_id: dec("drawdown-later"),
        side: Side::Rok,
    });
    let plan = fold(Plan::default(), &events);
    let adoption = alliance_domain::decide(
        &plan,
        &adopt("drawdown-later"),
        &alliance_domain::CommandContext { actor: alliance() },
    )
    .expect("the later drawdown adds no finding");
    events.extend(adoption);
    let at = |n: usize| findings_of(&events[..n], false);
    assert!(at(before).is_empty(), "before the adoption");
    assert_eq!(
        at(adopted_at).len(),
        1,
        "after the early drawdown is adopted"
    );
    assert!(at(events.len()).is_empty(), "after it is superseded");
}

#[test]
fn a_transfer_before_its_conditions_are_met_is_a_finding_until_they_are() {
    let mut events = baseline_with([
        condition_defined("rok-c2"),
        assessed("rok-c2", date(2027, 1, 1), ConditionStatus::PartiallyMet),
        assessed("rok-c2", date(2029, 5, 1), ConditionStatus::Met),
    ]);
    events.extend(endorsed_decision(
        TRANSFER,
        vec![transfer_on(date(2028, 12, 1))],
    ));
    let e = given(events.clone())
        .when(alliance(), adopt(TRANSFER))
        .error();
    assert_eq!(new_finding_ids(&e), ["conditions:opcon-transfer"]);
    assert!(e.to_string().contains("rok-c2 (partially met)"), "{e}");
    let found = findings_of(&events, true);
    let (from, until) = (date(2028, 12, 1), Some(date(2029, 5, 1)));
    assert_eq!(ids(&found), [("conditions:opcon-transfer", from, until)]);
    assert_eq!(found[0].kind, FindingKind::TransferConditions);
}

#[test]
fn a_capability_prerequisite_holds_from_the_level_recorded() {
    let mut events = baseline_with([
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: CapabilityArea::MissileDefense,
            level: 60,
            as_of: horizon_start(),
        },
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: CapabilityArea::MissileDefense,
            level: 75,
            as_of: date(2029, 1, 1),
        },
        proposed(DRAWDOWN),
        planned(DRAWDOWN, withdraw(WING, date(2028, 6, 30))),
        required(
            DRAWDOWN,
            Prerequisite::CapabilityReached {
                side: Side::Rok,
                area: CapabilityArea::MissileDefense,
                level: 70,
            },
        ),
    ]);
    let (from, until) = (date(2028, 6, 30), Some(date(2029, 1, 1)));
    assert_eq!(
        ids(&findings_of(&events, true)),
        [("prerequisite:drawdown:1", from, until)]
    );
    events.push(Event::CapabilityLevelRecorded {
        side: Side::Rok,
        area: CapabilityArea::MissileDefense,
        level: 70,
        as_of: date(2028, 1, 1),
    });
    assert!(findings_of(&events, true).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Constraints and waivers
// ---------------------------------------------------------------------------------------------

fn floor(min: u64) -> Event {
    Event::ConstraintDefined {
        constraint_id: cid(FLOOR),
        title: "U.S. personnel floor".to_owned(),
        rule: us_personnel(Some(min), None),
        side: Some(Side::Us),
        authority: "statute (planning assumption)".to_owned(),
        since: None,
    }
}

fn waive(from: Date) -> Command {
    Command::WaiveConstraint {
        constraint_id: cid(FLOOR),
        from,
        authority: "certification of the Secretary of Defense".to_owned(),
        note: String::new(),
    }
}

#[test]
fn define_constraint_emits_constraint_defined_once() {
    let command = Command::DefineConstraint {
        constraint_id: cid(FLOOR),
        title: "U.S. personnel floor".to_owned(),
        rule: us_personnel(Some(5000), None),
        side: Some(Side::Us),
        authority: "statute (planning assumption)".to_owned(),
        since: None,
    };
    given(baseline())
        .when(us(), command.clone())
        .then(vec![floor(5000)]);
    given(baseline_with([floor(5000)]))
        .when(us(), command)
        .then_already_exists("constraint", FLOOR);
}

#[test]
fn a_personnel_constraint_without_bounds_or_with_crossed_bounds_is_invalid() {
    let define = |min, max| Command::DefineConstraint {
        constraint_id: cid(FLOOR),
        title: "floor".to_owned(),
        rule: us_personnel(min, max),
        side: None,
        authority: "assumption".to_owned(),
        since: None,
    };
    given(baseline())
        .when(us(), define(None, None))
        .then_invalid("rule.min");
    given(baseline())
        .when(us(), define(Some(10), Some(5)))
        .then_invalid("rule.max");
    given(baseline())
        .when(us(), define(Some(u64::MAX), None))
        .then_invalid("rule.min");
}

#[test]
fn a_drawdown_through_the_floor_is_refused_then_found_until_certified() {
    // Baseline: 4,500 (ABCT) + 2,000 (wing) U.S. personnel; the floor is 5,000.
    let mut events = baseline_with([floor(5000)]);
    events.extend(endorsed_decision(
        DRAWDOWN,
        vec![withdraw(ABCT, date(2028, 3, 31))],
    ));
    let e = given(events.clone())
        .when(alliance(), adopt(DRAWDOWN))
        .error();
    assert_eq!(new_finding_ids(&e), ["constraint:us-floor"]);
    assert!(
        e.to_string()
            .contains("U.S. personnel 2000 below the floor of 5000"),
        "{e}"
    );
    events.extend([
        Event::FindingsAcknowledged {
            decision_id: dec(DRAWDOWN),
            findings: BTreeSet::from(["constraint:us-floor".to_owned()]),
        },
        adopted(DRAWDOWN),
    ]);
    let found = findings_of(&events, false);
    assert_eq!(
        ids(&found),
        [("constraint:us-floor", date(2028, 3, 31), None)]
    );
    assert_eq!(found[0].decisions, [dec(DRAWDOWN)]);

    // The U.S. certifies from 2028-09-01: the finding ends there.
    let certification = alliance_domain::decide(
        &fold(Plan::default(), &events),
        &waive(date(2028, 9, 1)),
        &alliance_domain::CommandContext { actor: us() },
    )
    .expect("the U.S. certifies its own floor");
    assert_eq!(
        certification,
        [Event::ConstraintWaived {
            constraint_id: cid(FLOOR),
            waiver: Waiver {
                from: date(2028, 9, 1),
                authority: "certification of the Secretary of Defense".to_owned(),
                note: String::new(),
                certified_by: TeamId::parse(US_TEAM).unwrap(),
            },
        }]
    );
    events.extend(certification);
    let (from, until) = (date(2028, 3, 31), Some(date(2028, 9, 1)));
    assert_eq!(
        ids(&findings_of(&events, false)),
        [("constraint:us-floor", from, until)]
    );
    // A window after the certification sees nothing.
    let plan = fold(Plan::default(), &events);
    assert!(findings(&plan, date(2028, 9, 1), horizon_end(), false).is_empty());
    assert_eq!(
        findings(&plan, date(2028, 1, 1), date(2028, 4, 1), false).len(),
        1
    );
}

#[test]
fn only_the_side_whose_rule_it_is_certifies_a_waiver() {
    given(baseline_with([floor(5000)]))
        .when(rok(), waive(date(2028, 9, 1)))
        .then_rule("waiver_by_other_side");
    given(baseline_with([floor(5000)]))
        .when(alliance(), waive(date(2028, 9, 1)))
        .then_rule("waiver_by_other_side");
    given(baseline())
        .when(us(), waive(date(2028, 9, 1)))
        .then_not_found("constraint", FLOOR);
}

#[test]
fn a_combined_capability_constraint_is_found_where_the_levels_fall_short() {
    let events = baseline_with([
        Event::ConstraintDefined {
            constraint_id: cid("md-combined"),
            title: "combined missile defense".to_owned(),
            rule: ConstraintRule::CombinedCapability {
                area: CapabilityArea::MissileDefense,
                min: 90,
            },
            side: None,
            authority: "planning assumption".to_owned(),
            since: None,
        },
        Event::CapabilityLevelRecorded {
            side: Side::Us,
            area: CapabilityArea::MissileDefense,
            level: 30,
            as_of: horizon_start(),
        },
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: CapabilityArea::MissileDefense,
            level: 70,
            as_of: horizon_start(),
        },
        Event::CapabilityLevelRecorded {
            side: Side::Us,
            area: CapabilityArea::MissileDefense,
            level: 10,
            as_of: date(2030, 1, 1),
        },
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: CapabilityArea::MissileDefense,
            level: 85,
            as_of: date(2031, 1, 1),
        },
    ]);
    let (from, until) = (date(2030, 1, 1), Some(date(2031, 1, 1)));
    assert_eq!(
        ids(&findings_of(&events, false)),
        [("constraint:md-combined", from, until)]
    );
}

// ---------------------------------------------------------------------------------------------
// Property: findings equal a naive evaluation
// ---------------------------------------------------------------------------------------------

/// Every day of the horizon on which the U.S. floor is broken, judged from the posture alone.
fn naive_floor_days(plan: &Plan, min: u64) -> BTreeSet<Date> {
    horizon_start()
        .iter_days()
        .take_while(|d| *d <= horizon_end())
        .filter(|d| posture(plan, *d, false).personnel_of(Side::Us) < min)
        .collect()
}

fn finding_days(found: &[Finding]) -> BTreeSet<Date> {
    found
        .iter()
        .flat_map(|f| {
            f.from
                .iter_days()
                .take_while(move |d| f.until.is_none_or(|u| *d < u) && *d <= horizon_end())
        })
        .collect()
}

fn arb_step_date() -> impl Strategy<Value = Date> {
    (2025i32..=2035, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| date(y, m, d))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random reductions and withdrawals of the two baseline elements, adopted one by one with
    /// every finding acknowledged, against a random floor: the constraint's findings cover
    /// exactly the days the posture is below the floor, and a prerequisite finding exists
    /// exactly when a decision's first step precedes its dependency's last.
    #[test]
    fn findings_equal_a_naive_evaluation(
        min in 0u64..7000,
        cuts in proptest::collection::vec(
            (0usize..2, 0u32..2500, arb_step_date(), any::<bool>()), 1..5),
    ) {
        let mut plan = fold(Plan::default(), &[created(), registered(ABCT, 4500, &[]),
            registered(WING, 2000, &[]), floor(min)]);
        let ctx = alliance_domain::CommandContext { actor: alliance() };
        let mut previous: Option<String> = None;
        for (n, (element, personnel, on, depends)) in cuts.into_iter().enumerate() {
            let id = format!("d{n}");
            let element_id = [ABCT, WING][element];
            let step = if personnel == 0 { withdraw(element_id, on) } else { reduce(element_id, personnel, on) };
            let mut events = vec![proposed(&id), planned(&id, step)];
            if let (true, Some(prev)) = (depends, previous.as_ref()) {
                events.push(required(&id, after(prev, 0)));
            }
            events.push(Event::DecisionEndorsed { decision_id: dec(&id), side: Side::Us });
            events.push(Event::DecisionEndorsed { decision_id: dec(&id), side: Side::Rok });
            plan = fold(plan, &events);
            // Learn what adoption would add, then acknowledge exactly that.
            let outcome = alliance_domain::decide(&plan, &adopt(&id), &ctx);
            let acknowledged: Vec<String> = match &outcome {
                Err(DomainError::NewFindings { findings, .. }) => findings.iter().map(|(f, _)| f.clone()).collect(),
                _ => Vec::new(),
            };
            let refs: Vec<&str> = acknowledged.iter().map(String::as_str).collect();
            if let Ok(adoption) = alliance_domain::decide(&plan, &adopt_acknowledging(&id, &refs), &ctx) {
                plan = fold(plan, &adoption);
                previous = Some(id);
            }
        }
        let found = all_findings(&plan, false);
        let floor_findings: Vec<Finding> = found.iter().filter(|f| f.kind == FindingKind::Constraint).cloned().collect();
        prop_assert_eq!(finding_days(&floor_findings), naive_floor_days(&plan, min));
        for decision in plan.adopted() {
            for (n, p) in decision.prerequisites().iter().enumerate() {
                let Prerequisite::AfterDecision { decision_id, .. } = p else { continue };
                let other = &plan.decisions[decision_id];
                let start = decision.steps.iter().map(Step::date).min().unwrap();
                let done = other.steps.iter().map(Step::date).max().unwrap();
                let id = format!("prerequisite:{}:{}", decision.id, n + 1);
                prop_assert_eq!(found.iter().any(|f| f.id == id), start < done, "{}", id);
            }
        }
    }
}

#[test]
fn a_constraint_applies_from_its_date_only() {
    let mut events = baseline_with([floor(7000)]);
    let Some(Event::ConstraintDefined { since, .. }) = events.last_mut() else {
        unreachable!()
    };
    *since = Some(date(2027, 1, 1));
    assert_eq!(
        ids(&findings_of(&events, false)),
        [("constraint:us-floor", date(2027, 1, 1), None)],
        "below the floor from the start, but the rule applies from 2027 only"
    );
}

#[test]
fn one_side_alone_does_not_lift_an_alliance_rule() {
    let alliance_rule = Event::ConstraintDefined {
        constraint_id: cid(FLOOR),
        title: "combined floor".to_owned(),
        rule: ConstraintRule::CombinedCapability {
            area: CapabilityArea::MissileDefense,
            min: 90,
        },
        side: None,
        authority: "alliance decision".to_owned(),
        since: None,
    };
    for side in [us(), rok()] {
        given(baseline_with([alliance_rule.clone()]))
            .when(side, waive(date(2028, 9, 1)))
            .then_rule("waiver_by_one_side");
    }
    let accepted = alliance_domain::decide(
        &fold(Plan::default(), &baseline_with([alliance_rule])),
        &waive(date(2028, 9, 1)),
        &alliance_domain::CommandContext { actor: alliance() },
    );
    assert!(accepted.is_ok(), "{accepted:?}");
}
