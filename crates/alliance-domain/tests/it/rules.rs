//! Every planning rule, one command at a time, in the given / when / then style of the cqrs-es
//! `TestFramework`: fold the given events into a plan, decide one command, compare the outcome.
//!
//! The harness and its fixtures (`plan_id`, actors, event builders) are
//! `alliance_domain::testing`, built with the `testing` feature.

use std::collections::BTreeSet;

#[allow(clippy::wildcard_imports)]
use alliance_domain::testing::*;
use alliance_domain::{
    Actor, CapabilityArea, ClauseStatus, Command, CommandContext, ConditionStatus, Date,
    DecisionStatus, DomainError, ElementTimeline, ErrorKind, Event, ForceElementSpec, Key, Plan,
    PlanId, Side, Sides, Step, Text, decide, evolve, fold,
};

fn condition_defined(id: &str) -> Event {
    Event::ConditionDefined {
        condition_id: cond(id),
        title: format!("condition {id}"),
        description: String::new(),
        area: Some(CapabilityArea::MissileDefense),
        threshold: Some(70),
    }
}

/// `adopted` adopted with `steps`, then `next` proposed: the plan a step of `next` meets.
fn adopted_then_proposed(adopted: &str, steps: Vec<Step>, next: &str) -> Vec<Event> {
    let mut events = baseline_with(adopted_decision(adopted, steps));
    events.push(proposed(next));
    events
}

/// Two decisions endorsed by both sides and not adopted, each with its steps: every step was
/// accepted while neither was adopted.
fn both_endorsed(first: (&str, Vec<Step>), second: (&str, Vec<Step>)) -> Vec<Event> {
    let mut events = baseline_with(endorsed_decision(first.0, first.1));
    events.extend(endorsed_decision(second.0, second.1));
    events
}

/// Plans each step on `decision` against `events`, as the U.S. cell: refused by the rule
/// named, or, with none, planned as asked.
#[track_caller]
fn plan_each(
    events: &[Event],
    decision: &str,
    cases: impl IntoIterator<Item = (Step, Option<&'static str>)>,
) {
    for (step, rule) in cases {
        let when = given(events.to_vec()).when_planned(decision, step);
        match rule {
            Some(rule) => when.then_rule(rule),
            None => when.then_planned(),
        }
    }
}

fn is_rule(e: &DomainError, rule: &str) -> bool {
    matches!(e, DomainError::Rule { rule: r, .. } if *r == rule)
}

fn invalid_fields(e: &DomainError) -> Vec<String> {
    match e {
        DomainError::Invalid(vs) => vs.iter().map(|v| v.field.clone()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// CreatePlan
// ---------------------------------------------------------------------------------------------

/// Creates the test plan over the reference horizon, named `name`.
fn create(name: &str, description: &str) -> Command {
    Command::CreatePlan {
        plan_id: plan_id(),
        name: name.to_owned(),
        description: description.to_owned(),
        horizon_start: horizon_start(),
        horizon_end: horizon_end(),
        grants: Vec::new(),
    }
}

#[test]
fn create_plan_emits_plan_created() {
    given_no_plan()
        .when(
            us(),
            create("Alliance modernization 2027-2031", "reference plan"),
        )
        .then(vec![created()]);
}

#[test]
fn create_plan_on_an_existing_plan_already_exists() {
    let id = plan_id().to_string();
    let when = given(vec![created()]).when(us(), create("again", ""));
    assert_eq!(
        when.error(),
        DomainError::AlreadyExists { what: "plan", id }
    );
}

#[test]
fn create_plan_collects_every_field_violation_at_once() {
    let e = given_no_plan()
        .when(
            us(),
            Command::CreatePlan {
                plan_id: PlanId::nil(),
                name: "  ".to_owned(),
                description: "x".repeat(4001),
                horizon_start: horizon_end(),
                horizon_end: horizon_start(),
                grants: Vec::new(),
            },
        )
        .error();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        invalid_fields(&e),
        ["plan_id", "name", "description", "horizon_end"]
    );
}

#[test]
fn create_plan_with_an_empty_horizon_is_invalid() {
    given_no_plan()
        .when(
            us(),
            Command::CreatePlan {
                plan_id: plan_id(),
                name: "p".to_owned(),
                description: String::new(),
                horizon_start: horizon_start(),
                horizon_end: horizon_start(),
                grants: Vec::new(),
            },
        )
        .then_invalid("horizon_end");
}

// ---------------------------------------------------------------------------------------------
// BranchPlan
// ---------------------------------------------------------------------------------------------

fn branch_id() -> PlanId {
    PlanId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002)
}

fn branch(new_plan_id: PlanId, parent_version: u64) -> Command {
    Command::BranchPlan {
        new_plan_id,
        parent_version,
        name: "what if: ABCT leaves in 2028".to_owned(),
        description: "scenario".to_owned(),
    }
}

#[test]
fn branch_plan_starts_from_the_parent_at_a_version() {
    let mut parent_events = baseline_with(adopted_decision(
        "retrench-1",
        vec![withdraw(ABCT, date(2029, 6, 1))],
    ));
    parent_events.push(proposed("retrench-2"));
    let parent = fold(Plan::default(), &parent_events);
    let v = parent.version;
    assert_eq!(v, parent_events.len() as u64);

    let events = given(parent_events.clone())
        .when(us(), branch(branch_id(), v))
        .result
        .expect("branching is accepted");
    assert_eq!(
        events,
        vec![Event::PlanBranched {
            plan_id: branch_id(),
            parent_plan_id: plan_id(),
            parent_version: v,
            name: "what if: ABCT leaves in 2028".to_owned(),
            description: "scenario".to_owned(),
        }]
    );

    // The branch's own stream opens with the PlanBranched event, on top of the parent's history.
    let branched = fold(parent.clone(), &events);
    assert_eq!(branched.id, Some(branch_id()));
    assert_eq!(branched.name, "what if: ABCT leaves in 2028");
    assert_eq!(branched.version, 1);
    assert_eq!(branched.lineage, vec![(plan_id(), v)]);
    assert_eq!(branched.decisions, parent.decisions);
    assert_eq!(branched.elements, parent.elements);
    assert_eq!(
        (branched.horizon_start, branched.horizon_end),
        (parent.horizon_start, parent.horizon_end)
    );

    // Further events on the parent do not reach the branch...
    let (parent_later, _) = apply(
        parent,
        us(),
        &Command::RegisterForceElement {
            element: spec("35ada", 2500, &[]),
            present_from: horizon_start(),
        },
    );
    let (parent_later, _) = apply(
        parent_later,
        us(),
        &propose("retrench-3", both_sides(), &[]),
    );
    assert!(parent_later.elements.contains_key(&el("35ada")));
    assert!(!branched.elements.contains_key(&el("35ada")));
    assert!(!branched.decisions.contains_key(&dec("retrench-3")));

    // ...and the branch changes without touching the parent: it can withdraw the wing, which
    // the parent does not.
    let (branched, _) = apply(
        branched,
        us(),
        &plan_step("retrench-2", withdraw(WING, date(2028, 1, 1))),
    );
    assert_eq!(branched.version, 2);
    assert_eq!(branched.decisions[&dec("retrench-2")].steps.len(), 1);
    assert!(parent_later.decisions[&dec("retrench-2")].steps.is_empty());
}

#[test]
fn branch_of_a_branch_extends_the_lineage() {
    let parent = fold(Plan::default(), &baseline());
    let (branched, _) = apply(parent.clone(), us(), &branch(branch_id(), parent.version));
    let (branched, _) = apply(branched, us(), &propose("scenario-1", both_sides(), &[]));
    let grandchild_id = PlanId::from_u128(3);
    let (grandchild, _) = apply(
        branched.clone(),
        us(),
        &branch(grandchild_id, branched.version),
    );
    assert_eq!(grandchild.id, Some(grandchild_id));
    assert_eq!(grandchild.version, 1);
    assert_eq!(
        grandchild.lineage,
        vec![(plan_id(), parent.version), (branch_id(), 2)]
    );
}

#[test]
fn branch_plan_at_another_version_than_the_folded_one_is_invalid() {
    given(baseline())
        .when(us(), branch(branch_id(), 2))
        .then_invalid("parent_version");
}

#[test]
fn branch_plan_needs_an_id_of_its_own() {
    given(baseline())
        .when(us(), branch(plan_id(), 3))
        .then_invalid("new_plan_id");
    given(baseline())
        .when(us(), branch(PlanId::nil(), 3))
        .then_invalid("new_plan_id");
}

// ---------------------------------------------------------------------------------------------
// RegisterForceElement
// ---------------------------------------------------------------------------------------------

#[test]
fn register_force_element_emits_force_element_registered() {
    given(vec![created()])
        .when(
            us(),
            Command::RegisterForceElement {
                element: spec(ABCT, 4500, &[("M1A2", 90)]),
                present_from: horizon_start(),
            },
        )
        .then(vec![registered(ABCT, 4500, &[("M1A2", 90)])]);
}

#[test]
fn register_force_element_twice_already_exists() {
    given(baseline())
        .when(
            us(),
            Command::RegisterForceElement {
                element: spec(ABCT, 1, &[]),
                present_from: horizon_start(),
            },
        )
        .then_already_exists("force element", ABCT);
}

#[test]
fn register_force_element_with_the_id_of_a_planned_addition_already_exists() {
    given(baseline_with([
        proposed("reinforce"),
        planned("reinforce", add("thaad-2", 100, date(2028, 1, 1))),
    ]))
    .when(
        us(),
        Command::RegisterForceElement {
            element: spec("thaad-2", 100, &[]),
            present_from: horizon_start(),
        },
    )
    .then_already_exists("force element", "thaad-2");
}

#[test]
fn register_force_element_outside_the_horizon_and_without_name_or_base_is_invalid() {
    let mut element = spec(ABCT, 4500, &[]);
    element.name = Text::default();
    element.base = " ".into();
    given(vec![created()])
        .when(
            us(),
            Command::RegisterForceElement {
                element,
                present_from: date(2024, 12, 31),
            },
        )
        .then_invalid_fields(&["element.name", "element.base", "present_from"]);
}

// ---------------------------------------------------------------------------------------------
// RecordCapabilityLevel
// ---------------------------------------------------------------------------------------------

fn record_level(area: CapabilityArea, level: u32, as_of: Date) -> Command {
    Command::RecordCapabilityLevel {
        side: Side::Rok,
        area,
        level,
        as_of,
    }
}

#[test]
fn record_capability_level_emits_capability_level_recorded() {
    // Inside the horizon, and the top of the scale on the horizon's last day.
    for (area, level, as_of) in [
        (CapabilityArea::MissileDefense, 55, date(2026, 1, 1)),
        (CapabilityArea::Munitions, 100, horizon_end()),
    ] {
        given(vec![created()])
            .when(rok(), record_level(area, level, as_of))
            .then(vec![Event::CapabilityLevelRecorded {
                side: Side::Rok,
                area,
                level,
                as_of,
            }]);
    }
}

#[test]
fn record_capability_level_above_100_and_outside_the_horizon_is_invalid() {
    given(vec![created()])
        .when(
            rok(),
            record_level(CapabilityArea::MissileDefense, 101, date(2036, 1, 1)),
        )
        .then_invalid_fields(&["level", "as_of"]);
}

// ---------------------------------------------------------------------------------------------
// DefineAgreementClause
// ---------------------------------------------------------------------------------------------

#[test]
fn define_agreement_clause_emits_agreement_clause_defined() {
    given(vec![created()])
        .when(
            us_policy(),
            define_clause("123-enrichment", horizon_start()),
        )
        .then(vec![clause_defined("123-enrichment")]);
}

#[test]
fn define_agreement_clause_twice_already_exists() {
    given(vec![created(), clause_defined("123-enrichment")])
        .when(
            us_policy(),
            define_clause("123-enrichment", horizon_start()),
        )
        .then_already_exists("agreement clause", "123-enrichment");
}

#[test]
fn define_agreement_clause_outside_the_horizon_is_invalid() {
    given(vec![created()])
        .when(
            us_policy(),
            define_clause("123-enrichment", date(1974, 1, 1)),
        )
        .then_invalid("since");
}

// ---------------------------------------------------------------------------------------------
// DefineCondition
// ---------------------------------------------------------------------------------------------

fn define_condition(id: &str, threshold: Option<u32>) -> Command {
    Command::DefineCondition {
        condition_id: cond(id),
        title: format!("condition {id}"),
        description: String::new(),
        area: Some(CapabilityArea::MissileDefense),
        threshold,
    }
}

#[test]
fn define_condition_emits_condition_defined() {
    given(vec![created()])
        .when(alliance(), define_condition("rok-amd-70", Some(70)))
        .then(vec![condition_defined("rok-amd-70")]);
}

#[test]
fn define_condition_twice_already_exists() {
    given(vec![created(), condition_defined("rok-amd-70")])
        .when(alliance(), define_condition("rok-amd-70", Some(70)))
        .then_already_exists("condition", "rok-amd-70");
}

#[test]
fn define_condition_with_a_threshold_above_100_and_no_title_is_invalid() {
    given(vec![created()])
        .when(
            alliance(),
            Command::DefineCondition {
                condition_id: cond("rok-amd"),
                title: String::new(),
                description: String::new(),
                area: None,
                threshold: Some(101),
            },
        )
        .then_invalid_fields(&["title", "threshold"]);
}

// ---------------------------------------------------------------------------------------------
// AssessCondition
// ---------------------------------------------------------------------------------------------

fn assess(id: &str, on: Date, value: Option<u32>) -> Command {
    Command::AssessCondition {
        condition_id: cond(id),
        assessed_on: on,
        status: ConditionStatus::PartiallyMet,
        value,
        note: "annual certification".to_owned(),
    }
}

#[test]
fn assess_condition_emits_condition_assessed() {
    given(vec![created(), condition_defined("rok-amd-70")])
        .when(rok(), assess("rok-amd-70", date(2027, 3, 1), Some(60)))
        .then(vec![Event::ConditionAssessed {
            condition_id: cond("rok-amd-70"),
            assessed_on: date(2027, 3, 1),
            status: ConditionStatus::PartiallyMet,
            value: Some(60),
            note: "annual certification".to_owned(),
        }]);
}

#[test]
fn assess_an_unknown_condition_is_not_found() {
    given(vec![created()])
        .when(rok(), assess("rok-amd-70", date(2027, 3, 1), None))
        .then_not_found("condition", "rok-amd-70");
}

#[test]
fn assess_condition_with_a_value_above_100_outside_the_horizon_is_invalid() {
    given(vec![created(), condition_defined("rok-amd-70")])
        .when(rok(), assess("rok-amd-70", date(2040, 1, 1), Some(150)))
        .then_invalid_fields(&["assessed_on", "value"]);
}

// ---------------------------------------------------------------------------------------------
// ProposeDecision
// ---------------------------------------------------------------------------------------------

#[test]
fn propose_decision_records_the_callers_team_as_owner() {
    given(vec![created()])
        .when(rok(), propose("rok-led-cfc", both_sides(), &[]))
        .then(vec![proposed_by("rok-led-cfc", ROK_TEAM, both_sides())]);
}

#[test]
fn propose_decision_twice_already_exists() {
    given(vec![created(), proposed("retrench-1")])
        .when(us(), propose("retrench-1", both_sides(), &[]))
        .then_already_exists("decision", "retrench-1");
}

#[test]
fn propose_decision_collects_every_field_violation_at_once() {
    given(vec![created()])
        .when(
            us(),
            Command::ProposeDecision {
                decision_id: dec("retrench-1"),
                title: String::new(),
                rationale: "\t".to_owned(),
                effective_date: date(2050, 1, 1),
                required_sides: BTreeSet::new(),
                supersedes: BTreeSet::new(),
            },
        )
        .then_invalid_fields(&["title", "rationale", "effective_date", "required_sides"]);
}

#[test]
fn propose_decision_superseding_an_unknown_decision_is_not_found() {
    given(vec![created()])
        .when(us(), propose("retrench-2", both_sides(), &["retrench-1"]))
        .then_not_found("decision", "retrench-1");
}

#[test]
fn propose_decision_superseding_a_decision_not_adopted_is_refused() {
    given(vec![created(), proposed("retrench-1")])
        .when(us(), propose("retrench-2", both_sides(), &["retrench-1"]))
        .then_rule("supersede_not_adopted");
}

#[test]
fn propose_decision_superseding_an_adopted_decision_is_accepted() {
    given(baseline_with(adopted_decision("retrench-1", vec![])))
        .when(us(), propose("retrench-2", both_sides(), &["retrench-1"]))
        .then(vec![proposed_superseding(
            "retrench-2",
            US_TEAM,
            both_sides(),
            &["retrench-1"],
        )]);
}

// ---------------------------------------------------------------------------------------------
// PlanStep: rules common to every step
// ---------------------------------------------------------------------------------------------

#[test]
fn plan_step_on_an_unknown_decision_is_not_found() {
    given(baseline())
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .then_not_found("decision", "retrench-1");
}

#[test]
fn only_the_owner_team_adds_steps() {
    let events = baseline_with([proposed("retrench-1")]);
    // Another team of the same side is not the owner either.
    given(events.clone())
        .when(
            us_policy(),
            plan_step("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
        )
        .then_rule("not_owner");
    given(events.clone())
        .when(
            rok(),
            plan_step("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
        )
        .then_rule("not_owner");
    given(events)
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .then_planned();
}

#[test]
fn steps_cannot_be_added_after_any_endorsement() {
    for side in [Side::Us, Side::Rok] {
        let e = given(baseline_with([
            proposed("retrench-1"),
            endorsed("retrench-1", side),
        ]))
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .error();
        assert!(is_rule(&e, "already_endorsed"), "{e:?}");
        assert!(e.to_string().contains(side.name()), "{e}");
    }
}

#[test]
fn steps_cannot_be_added_to_a_closed_decision() {
    let mut rejected = baseline_with([proposed("retrench-1")]);
    rejected.push(Event::DecisionRejected {
        decision_id: dec("retrench-1"),
        reason: "no".to_owned(),
    });
    given(rejected)
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .then_rule("decision_closed");
    given(baseline_with(adopted_decision("retrench-1", vec![])))
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .then_rule("decision_closed");
}

#[test]
fn step_dates_must_lie_inside_the_plan_horizon() {
    let events = baseline_with([proposed("retrench-1")]);
    given(events.clone())
        .when_planned("retrench-1", withdraw(ABCT, date(2036, 1, 1)))
        .then_invalid("on");
    given(events.clone())
        .when_planned("retrench-1", withdraw(ABCT, date(2024, 12, 31)))
        .then_invalid("on");
    // Both ends of the horizon are inside it.
    plan_each(
        &events,
        "retrench-1",
        [
            (withdraw(ABCT, horizon_end()), None),
            (reduce(ABCT, 10, horizon_start()), None),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// PlanStep: WithdrawElement
// ---------------------------------------------------------------------------------------------

#[test]
fn withdraw_element_emits_the_planned_step() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)))
        .then_planned();
}

#[test]
fn withdraw_an_unknown_element_is_not_found() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned("retrench-1", withdraw("1cav", date(2028, 1, 1)))
        .then_not_found("force element", "1cav");
}

#[test]
fn an_element_cannot_be_withdrawn_twice_in_one_decision() {
    plan_each(
        &baseline_with([
            proposed("retrench-1"),
            planned("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
        ]),
        "retrench-1",
        [
            (withdraw(ABCT, date(2029, 1, 1)), Some("withdrawn_twice")),
            // Even on the same date.
            (withdraw(ABCT, date(2028, 1, 1)), Some("withdrawn_twice")),
        ],
    );
}

#[test]
fn an_element_withdrawn_by_an_adopted_decision_cannot_be_withdrawn_again() {
    let events = adopted_then_proposed(
        "retrench-1",
        vec![withdraw(ABCT, date(2028, 1, 1))],
        "retrench-2",
    );
    // Later or earlier than the adopted withdrawal.
    plan_each(
        &events,
        "retrench-2",
        [
            (withdraw(ABCT, date(2030, 1, 1)), Some("withdrawn_twice")),
            (withdraw(ABCT, date(2027, 1, 1)), Some("withdrawn_twice")),
            // Another element is still free to go.
            (withdraw(WING, date(2030, 1, 1)), None),
        ],
    );
}

#[test]
fn an_unadopted_withdrawal_does_not_block_another_decision() {
    let pending = baseline_with([
        proposed("retrench-1"),
        planned("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
        endorsed("retrench-1", Side::Us),
        endorsed("retrench-1", Side::Rok),
        proposed("retrench-2"),
    ]);
    given(pending.clone())
        .when_planned("retrench-2", withdraw(ABCT, date(2030, 1, 1)))
        .then_planned();

    // Once retrench-1 is adopted, the same step is refused: only adoption makes it count.
    let mut adopted_now = pending;
    adopted_now.push(adopted("retrench-1"));
    given(adopted_now)
        .when_planned("retrench-2", withdraw(ABCT, date(2030, 1, 1)))
        .then_rule("withdrawn_twice");
}

#[test]
fn rejected_and_withdrawn_decisions_do_not_count() {
    for closing in [
        Event::DecisionRejected {
            decision_id: dec("retrench-1"),
            reason: "no".to_owned(),
        },
        Event::DecisionWithdrawn {
            decision_id: dec("retrench-1"),
            reason: "replanned".to_owned(),
        },
    ] {
        given(baseline_with([
            proposed("retrench-1"),
            planned("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
            closing,
            proposed("retrench-2"),
        ]))
        .when_planned("retrench-2", withdraw(ABCT, date(2030, 1, 1)))
        .then_planned();
    }
}

#[test]
fn a_withdrawal_dated_before_an_adopted_reduction_is_refused() {
    let events = adopted_then_proposed(
        "retrench-1",
        vec![reduce(ABCT, 1000, date(2029, 1, 1))],
        "retrench-2",
    );
    plan_each(
        &events,
        "retrench-2",
        [
            (withdraw(ABCT, date(2028, 1, 1)), Some("after_withdrawal")),
            // On or after the reduction it is fine.
            (withdraw(ABCT, date(2029, 1, 1)), None),
        ],
    );
}

#[test]
fn a_step_before_the_element_is_present_is_refused() {
    let events = vec![
        created(),
        registered_from("35ada", 2500, &[], date(2027, 1, 1)),
        proposed("retrench-1"),
    ];
    plan_each(
        &events,
        "retrench-1",
        [
            (
                withdraw("35ada", date(2026, 12, 31)),
                Some("before_present"),
            ),
            (
                reduce("35ada", 100, date(2026, 1, 1)),
                Some("before_present"),
            ),
            (withdraw("35ada", date(2027, 1, 1)), None),
        ],
    );
}

#[test]
fn a_step_on_an_element_only_added_by_a_pending_decision_is_refused() {
    given(baseline_with([
        proposed("reinforce"),
        planned("reinforce", add("thaad-2", 100, date(2027, 1, 1))),
        proposed("retrench-1"),
    ]))
    .when_planned("retrench-1", withdraw("thaad-2", date(2030, 1, 1)))
    .then_rule("element_not_present");
}

#[test]
fn a_step_on_an_element_added_by_an_adopted_decision_counts_from_its_arrival() {
    let events = adopted_then_proposed(
        "reinforce",
        vec![add("thaad-2", 100, date(2027, 1, 1))],
        "retrench-1",
    );
    given(events.clone())
        .when_planned("retrench-1", withdraw("thaad-2", date(2030, 1, 1)))
        .then_planned();
    // Before its arrival the element is not there. (The timeline reports this as
    // "element_not_present", not "before_present" as for a registered element; see the report.)
    given(events)
        .when_planned("retrench-1", withdraw("thaad-2", date(2026, 1, 1)))
        .then_error(|e| is_rule(e, "before_present") || is_rule(e, "element_not_present"));
}

// ---------------------------------------------------------------------------------------------
// PlanStep: ReduceElement
// ---------------------------------------------------------------------------------------------

#[test]
fn reduce_element_emits_the_planned_step() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned(
            "retrench-1",
            reduce_with(ABCT, 4500, &[("M1A2", 90)], date(2028, 1, 1)),
        )
        .then_planned();
}

#[test]
fn personnel_never_negative_in_one_step() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned("retrench-1", reduce(ABCT, 4501, date(2028, 1, 1)))
        .then_rule("negative_personnel");
}

#[test]
fn personnel_never_negative_over_the_steps_of_one_decision() {
    given(baseline_with([
        proposed("retrench-1"),
        planned("retrench-1", reduce(ABCT, 3000, date(2028, 1, 1))),
    ]))
    .when_planned("retrench-1", reduce(ABCT, 1501, date(2029, 1, 1)))
    .then_rule("negative_personnel");
}

#[test]
fn personnel_never_negative_over_adopted_decisions() {
    let events = adopted_then_proposed(
        "retrench-1",
        vec![reduce(ABCT, 3000, date(2028, 1, 1))],
        "retrench-2",
    );
    plan_each(
        &events,
        "retrench-2",
        [
            (
                reduce(ABCT, 1501, date(2029, 1, 1)),
                Some("negative_personnel"),
            ),
            // Exactly to zero is allowed.
            (reduce(ABCT, 1500, date(2029, 1, 1)), None),
        ],
    );
}

#[test]
fn equipment_never_negative() {
    let events = baseline_with([proposed("retrench-1")]);
    plan_each(
        &events,
        "retrench-1",
        [
            (
                reduce_with(WING, 0, &[("F-16", 41)], date(2028, 1, 1)),
                Some("negative_equipment"),
            ),
            // Equipment the element does not have cannot be reduced either.
            (
                reduce_with(WING, 0, &[("F-35A", 1)], date(2028, 1, 1)),
                Some("negative_equipment"),
            ),
            (
                reduce_with(WING, 0, &[("F-16", 40)], date(2028, 1, 1)),
                None,
            ),
        ],
    );
}

#[test]
fn a_reduction_must_remove_something() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned(
            "retrench-1",
            reduce_with(WING, 0, &[("F-16", 0)], date(2028, 1, 1)),
        )
        .then_invalid("personnel");
}

#[test]
fn no_reduction_after_an_adopted_withdrawal() {
    let events = adopted_then_proposed(
        "retrench-1",
        vec![withdraw(ABCT, date(2028, 1, 1))],
        "retrench-2",
    );
    plan_each(
        &events,
        "retrench-2",
        [
            (
                reduce(ABCT, 100, date(2028, 6, 1)),
                Some("after_withdrawal"),
            ),
            // A reduction on the withdrawal date comes before the departure.
            (reduce(ABCT, 100, date(2028, 1, 1)), None),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// PlanStep: RelocateElement
// ---------------------------------------------------------------------------------------------

#[test]
fn relocate_element_emits_the_planned_step() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned("retrench-1", relocate(WING, "Osan AB", date(2028, 1, 1)))
        .then_planned();
}

#[test]
fn no_relocation_after_an_adopted_withdrawal() {
    let events = adopted_then_proposed(
        "retrench-1",
        vec![withdraw(WING, date(2028, 1, 1))],
        "retrench-2",
    );
    given(events)
        .when_planned("retrench-2", relocate(WING, "Osan AB", date(2029, 1, 1)))
        .then_rule("after_withdrawal");
}

#[test]
fn no_relocation_after_a_withdrawal_in_the_same_decision() {
    given(baseline_with([
        proposed("retrench-1"),
        planned("retrench-1", withdraw(WING, date(2028, 1, 1))),
    ]))
    .when_planned("retrench-1", relocate(WING, "Osan AB", date(2029, 1, 1)))
    .then_rule("after_withdrawal");
}

#[test]
fn relocation_needs_a_base() {
    given(baseline_with([proposed("retrench-1")]))
        .when_planned("retrench-1", relocate(WING, "", date(2028, 1, 1)))
        .then_invalid("to_base");
}

// ---------------------------------------------------------------------------------------------
// PlanStep: AddElement
// ---------------------------------------------------------------------------------------------

#[test]
fn add_element_emits_the_planned_step() {
    given(baseline_with([proposed("reinforce")]))
        .when_planned("reinforce", add("thaad-2", 100, date(2027, 1, 1)))
        .then_planned();
}

#[test]
fn add_an_element_that_exists_already_exists() {
    given(baseline_with([proposed("reinforce")]))
        .when_planned("reinforce", add(ABCT, 100, date(2027, 1, 1)))
        .then_already_exists("force element", ABCT);
    given(baseline_with([
        proposed("reinforce"),
        planned("reinforce", add("thaad-2", 100, date(2027, 1, 1))),
        proposed("reinforce-2"),
    ]))
    .when_planned("reinforce-2", add("thaad-2", 100, date(2028, 1, 1)))
    .then_already_exists("force element", "thaad-2");
}

#[test]
fn add_element_validates_the_element_and_the_date() {
    let mut element = spec("thaad-2", 100, &[]);
    element.name = Text::default();
    given(baseline_with([proposed("reinforce")]))
        .when_planned(
            "reinforce",
            Step::AddElement {
                element,
                on: date(2040, 1, 1),
            },
        )
        .then_invalid_fields(&["on", "element.name"]);
}

#[test]
fn an_added_element_can_be_changed_later_in_the_same_decision() {
    plan_each(
        &baseline_with([
            proposed("reinforce"),
            planned("reinforce", add("thaad-2", 100, date(2027, 1, 1))),
        ]),
        "reinforce",
        [
            (reduce("thaad-2", 100, date(2028, 1, 1)), None),
            (
                reduce("thaad-2", 101, date(2028, 1, 1)),
                Some("negative_personnel"),
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// PlanStep: TransferOpcon
// ---------------------------------------------------------------------------------------------

fn transfer_opcon(on: Date, conditions: &[&str]) -> Step {
    Step::TransferOpcon {
        on,
        conditions: conditions.iter().map(|c| cond(c)).collect(),
    }
}

fn opcon_plan() -> Vec<Event> {
    vec![
        created(),
        condition_defined("rok-amd-70"),
        condition_defined("rok-c2-certified"),
        proposed_by("opcon-transfer", ROK_TEAM, both_sides()),
    ]
}

#[test]
fn transfer_opcon_with_its_conditions_emits_the_scheduled_transfer() {
    let step = transfer_opcon(date(2028, 10, 1), &["rok-amd-70", "rok-c2-certified"]);
    given(opcon_plan())
        .when(rok(), plan_step("opcon-transfer", step.clone()))
        .then_planned();
}

#[test]
fn transfer_opcon_without_conditions_is_invalid() {
    given(opcon_plan())
        .when(
            rok(),
            plan_step("opcon-transfer", transfer_opcon(date(2028, 10, 1), &[])),
        )
        .then_invalid_fields(&["conditions"]);
}

#[test]
fn transfer_opcon_on_an_unknown_condition_is_not_found() {
    given(opcon_plan())
        .when(
            rok(),
            plan_step(
                "opcon-transfer",
                transfer_opcon(date(2028, 10, 1), &["rok-amd-70", "rok-munitions"]),
            ),
        )
        .then_not_found("condition", "rok-munitions");
}

#[test]
fn transfer_opcon_twice_in_one_decision_is_refused() {
    let mut events = opcon_plan();
    events.push(planned(
        "opcon-transfer",
        transfer_opcon(date(2028, 10, 1), &["rok-amd-70"]),
    ));
    given(events)
        .when(
            rok(),
            plan_step(
                "opcon-transfer",
                transfer_opcon(date(2029, 10, 1), &["rok-amd-70"]),
            ),
        )
        .then_rule("opcon_transfer_twice");
}

#[test]
fn transfer_opcon_outside_the_horizon_is_invalid() {
    given(opcon_plan())
        .when(
            rok(),
            plan_step(
                "opcon-transfer",
                transfer_opcon(date(2015, 12, 1), &["rok-amd-70"]),
            ),
        )
        .then_invalid("on");
}

// ---------------------------------------------------------------------------------------------
// PlanStep: ChangeCommandArrangement
// ---------------------------------------------------------------------------------------------

#[test]
fn change_command_arrangement_emits_the_planned_step() {
    let step = Step::ChangeCommandArrangement {
        on: date(2028, 1, 1),
        peacetime_opcon: None,
        wartime_opcon: None,
        cfc_commander: Some(Side::Rok),
    };
    given(opcon_plan())
        .when(rok(), plan_step("opcon-transfer", step.clone()))
        .then_planned();
}

#[test]
fn change_command_arrangement_must_change_something() {
    given(opcon_plan())
        .when(
            rok(),
            plan_step(
                "opcon-transfer",
                Step::ChangeCommandArrangement {
                    on: date(2028, 1, 1),
                    peacetime_opcon: None,
                    wartime_opcon: None,
                    cfc_commander: None,
                },
            ),
        )
        .then_invalid("peacetime_opcon");
}

// ---------------------------------------------------------------------------------------------
// PlanStep: AmendClause
// ---------------------------------------------------------------------------------------------

fn amend(id: &str, on: Date) -> Step {
    Step::AmendClause {
        clause_id: clause(id),
        status: ClauseStatus::Permitted,
        on,
    }
}

#[test]
fn amend_clause_emits_the_planned_step() {
    given(vec![
        created(),
        clause_defined("123-enrichment"),
        proposed_by("nuclear-latency", US_POLICY_TEAM, both_sides()),
    ])
    .when(
        us_policy(),
        plan_step("nuclear-latency", amend("123-enrichment", date(2029, 1, 1))),
    )
    .then_planned();
}

#[test]
fn amend_an_unknown_clause_is_not_found() {
    given(vec![
        created(),
        proposed_by("nuclear-latency", US_POLICY_TEAM, both_sides()),
    ])
    .when(
        us_policy(),
        plan_step("nuclear-latency", amend("123-enrichment", date(2029, 1, 1))),
    )
    .then_not_found("agreement clause", "123-enrichment");
}

// ---------------------------------------------------------------------------------------------
// PlanStep: InvestCapability
// ---------------------------------------------------------------------------------------------

fn invest(id: &str, level_gain: u32, delivery: Date) -> Step {
    Step::InvestCapability {
        investment_id: inv(id),
        area: CapabilityArea::MissileDefense,
        description: "L-SAM batteries".to_owned(),
        level_gain,
        delivery,
        cost_kusd: 2400,
    }
}

fn rok_investment_plan() -> Vec<Event> {
    vec![
        created(),
        proposed_by("rok-amd", ROK_TEAM, BTreeSet::from([Side::Rok])),
    ]
}

#[test]
fn invest_capability_emits_the_planned_step() {
    given(rok_investment_plan())
        .when(
            rok(),
            plan_step("rok-amd", invest("l-sam", 15, date(2028, 1, 1))),
        )
        .then_planned();
}

#[test]
fn invest_capability_twice_already_exists() {
    let mut events = rok_investment_plan();
    events.push(planned("rok-amd", invest("l-sam", 15, date(2028, 1, 1))));
    given(events)
        .when(
            rok(),
            plan_step("rok-amd", invest("l-sam", 10, date(2029, 1, 1))),
        )
        .then_already_exists("investment", "l-sam");
}

#[test]
fn invest_capability_validates_gain_and_delivery() {
    given(rok_investment_plan())
        .when(
            rok(),
            plan_step("rok-amd", invest("l-sam", 0, date(2040, 1, 1))),
        )
        .then_invalid_fields(&["delivery", "level_gain"]);
    given(rok_investment_plan())
        .when(
            rok(),
            plan_step("rok-amd", invest("l-sam", 101, date(2028, 1, 1))),
        )
        .then_invalid("level_gain");
}

// ---------------------------------------------------------------------------------------------
// EndorseDecision
// ---------------------------------------------------------------------------------------------

#[test]
fn endorse_decision_records_the_callers_side() {
    given(baseline_with([proposed("retrench-1")]))
        .when(rok(), endorse("retrench-1"))
        .then(vec![endorsed("retrench-1", Side::Rok)]);
    given(baseline_with([proposed("retrench-1")]))
        .when(us_policy(), endorse("retrench-1"))
        .then(vec![endorsed("retrench-1", Side::Us)]);
}

#[test]
fn a_team_without_a_side_cannot_endorse() {
    given(baseline_with([proposed("retrench-1")]))
        .when(alliance(), endorse("retrench-1"))
        .then_rule("no_side");
}

#[test]
fn endorsing_for_a_side_that_is_not_required_is_refused() {
    given(baseline_with([proposed_by(
        "retrench-1",
        US_TEAM,
        BTreeSet::from([Side::Us]),
    )]))
    .when(rok(), endorse("retrench-1"))
    .then_rule("endorsement_not_required");
}

#[test]
fn a_side_endorses_only_once() {
    given(baseline_with([
        proposed("retrench-1"),
        endorsed("retrench-1", Side::Us),
    ]))
    .when(us_policy(), endorse("retrench-1"))
    .then_rule("already_endorsed");
}

// ---------------------------------------------------------------------------------------------
// AdoptDecision
// ---------------------------------------------------------------------------------------------

#[test]
fn adoption_with_every_required_endorsement_emits_decision_adopted() {
    given(baseline_with(endorsed_decision(
        "retrench-1",
        vec![withdraw(ABCT, date(2028, 1, 1))],
    )))
    .when(alliance(), adopt("retrench-1"))
    .then(vec![adopted("retrench-1")]);
}

#[test]
fn adoption_needs_the_rok_endorsement() {
    let e = given(baseline_with([
        proposed("retrench-1"),
        endorsed("retrench-1", Side::Us),
    ]))
    .when(alliance(), adopt("retrench-1"))
    .error();
    assert!(is_rule(&e, "endorsement_missing"), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("ROK"), "{message}");
    assert!(!message.contains("U.S."), "{message}");
}

#[test]
fn adoption_without_any_endorsement_names_both_sides() {
    let e = given(baseline_with([proposed("retrench-1")]))
        .when(alliance(), adopt("retrench-1"))
        .error();
    assert!(is_rule(&e, "endorsement_missing"), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("ROK") && message.contains("U.S."),
        "{message}"
    );
}

#[test]
fn adoption_needs_only_the_required_sides() {
    given(vec![
        created(),
        proposed_by("rok-amd", ROK_TEAM, BTreeSet::from([Side::Rok])),
        endorsed("rok-amd", Side::Rok),
    ])
    .when(rok(), adopt("rok-amd"))
    .then(vec![adopted("rok-amd")]);
}

/// A ROK element in the plan: the ROK side owns it.
fn rok_registered(id: &str) -> Event {
    Event::ForceElementRegistered {
        element: ForceElementSpec {
            side: Side::Rok,
            ..spec(id, 3000, &[])
        },
        present_from: horizon_start(),
    }
}

/// The missing side an adoption is refused for.
#[track_caller]
fn refused_for_missing(when: When, side: &str) {
    match when.error() {
        DomainError::Rule { rule, message } => {
            assert_eq!(rule, "endorsement_missing");
            assert!(message.contains(&format!("{side} side")), "{message}");
        }
        other => panic!("refused for another reason: {other:?}"),
    }
}

#[test]
fn a_side_cannot_decide_alone_on_the_other_sides_element() {
    // The U.S. cell names only its own side, then withdraws a ROK element.
    let events = vec![
        created(),
        rok_registered("rok-1corps"),
        proposed_by("us-only", US_TEAM, BTreeSet::from([Side::Us])),
        planned("us-only", withdraw("rok-1corps", date(2028, 1, 1))),
        endorsed("us-only", Side::Us),
    ];
    refused_for_missing(
        given(events.clone()).when(alliance(), adopt("us-only")),
        "ROK",
    );
    // The ROK may endorse what touches its element although the proposer did not name it…
    given(events.clone())
        .when(rok(), endorse("us-only"))
        .then(vec![endorsed("us-only", Side::Rok)]);
    // …and with its endorsement the decision is adopted.
    let mut events = events;
    events.push(endorsed("us-only", Side::Rok));
    given(events)
        .when(alliance(), adopt("us-only"))
        .then(vec![adopted("us-only")]);
}

#[test]
fn what_the_alliance_holds_jointly_needs_both_sides() {
    for (step, mut given_events) in [
        (
            transfer_opcon(date(2028, 12, 1), &["rok-amd-70"]),
            opcon_plan()[..2].to_vec(),
        ),
        (
            Step::ChangeCommandArrangement {
                on: date(2028, 12, 1),
                peacetime_opcon: None,
                wartime_opcon: Some(Side::Rok),
                cfc_commander: None,
            },
            vec![created()],
        ),
        (
            amend("123-enrichment", date(2029, 1, 1)),
            vec![created(), clause_defined("123-enrichment")],
        ),
    ] {
        given_events.extend([
            proposed_by("rok-alone", ROK_TEAM, BTreeSet::from([Side::Rok])),
            planned("rok-alone", step.clone()),
            endorsed("rok-alone", Side::Rok),
        ]);
        refused_for_missing(
            given(given_events).when(alliance(), adopt("rok-alone")),
            "U.S.",
        );
    }
}

#[test]
fn a_cell_proposes_for_its_own_side() {
    // The U.S. cell plans a ROK investment naming only the ROK: the U.S. endorses too.
    given(vec![created()])
        .when(
            us(),
            propose("us-plans-rok", BTreeSet::from([Side::Rok]), &[]),
        )
        .then(vec![proposed_by("us-plans-rok", US_TEAM, both_sides())]);
    // A ROK investment proposed by an alliance team naming the U.S. needs the ROK.
    let events = vec![
        created(),
        proposed_by("rok-amd", ALLIANCE_TEAM, BTreeSet::from([Side::Us])),
        planned("rok-amd", invest("l-sam", 15, date(2028, 1, 1))),
        endorsed("rok-amd", Side::Us),
    ];
    refused_for_missing(given(events).when(alliance(), adopt("rok-amd")), "ROK");
}

#[test]
fn a_decision_adopted_before_derived_sides_replays_unchanged() {
    // Recorded before the sides were derived: adopted by the U.S. alone. The state replays as
    // recorded; only decisions adopted from now on are checked.
    let events = vec![
        created(),
        rok_registered("rok-1corps"),
        proposed_by("legacy", US_TEAM, BTreeSet::from([Side::Us])),
        planned("legacy", withdraw("rok-1corps", date(2028, 1, 1))),
        endorsed("legacy", Side::Us),
        adopted("legacy"),
    ];
    let plan = fold(Plan::default(), &events);
    let decision = &plan.decisions[&dec("legacy")];
    assert_eq!(decision.status, DecisionStatus::Adopted);
    assert_eq!(decision.derived_sides(&plan), Sides::from([Side::Rok]));
    assert_eq!(decision.needed_sides(&plan), Sides::from(&both_sides()));
}

#[test]
fn adoption_rechecks_what_was_adopted_meanwhile() {
    // Both decisions were planned while neither was adopted, so each step was accepted; the
    // first adopted, the second no longer holds.
    for (first, (second, step), rule) in [
        (
            withdraw(ABCT, date(2028, 1, 1)),
            ("retrench-2", withdraw(ABCT, date(2030, 1, 1))),
            "withdrawn_twice",
        ),
        (
            reduce(ABCT, 3000, date(2028, 1, 1)),
            ("retrench-2", reduce(ABCT, 2000, date(2029, 1, 1))),
            "negative_personnel",
        ),
        (
            withdraw(WING, date(2028, 1, 1)),
            ("relocate", relocate(WING, "Osan AB", date(2029, 1, 1))),
            "after_withdrawal",
        ),
    ] {
        let mut events = both_endorsed(("retrench-1", vec![first]), (second, vec![step]));
        given(events.clone())
            .when(alliance(), adopt("retrench-1"))
            .then(vec![adopted("retrench-1")]);
        events.push(adopted("retrench-1"));
        given(events)
            .when(alliance(), adopt(second))
            .then_rule(rule);
    }
}

#[test]
fn adopting_a_superseding_decision_supersedes_the_old_one() {
    let mut events = baseline_with(adopted_decision(
        "retrench-1",
        vec![withdraw(ABCT, date(2028, 1, 1))],
    ));
    events.push(proposed_superseding(
        "retrench-1b",
        US_TEAM,
        both_sides(),
        &["retrench-1"],
    ));
    events.push(endorsed("retrench-1b", Side::Us));
    events.push(endorsed("retrench-1b", Side::Rok));
    given(events)
        .when(alliance(), adopt("retrench-1b"))
        .then(vec![
            adopted("retrench-1b"),
            Event::DecisionSuperseded {
                decision_id: dec("retrench-1"),
                superseded_by: dec("retrench-1b"),
            },
        ]);
}

#[test]
fn a_superseded_withdrawal_no_longer_counts() {
    // retrench-1 withdraws the brigade in 2028; retrench-1b, superseding it, moves that to 2030.
    let plan = fold(
        Plan::default(),
        &baseline_with(adopted_decision(
            "retrench-1",
            vec![withdraw(ABCT, date(2028, 1, 1))],
        )),
    );
    let (plan, _) = apply(
        plan,
        us(),
        &propose("retrench-1b", both_sides(), &["retrench-1"]),
    );
    // Planning against the superseded decision is fine: its withdrawal is set aside.
    let (plan, _) = apply(
        plan,
        us(),
        &plan_step("retrench-1b", withdraw(ABCT, date(2030, 1, 1))),
    );
    let (plan, _) = apply(plan, us(), &endorse("retrench-1b"));
    let (plan, _) = apply(plan, rok(), &endorse("retrench-1b"));
    let (plan, events) = apply(plan, alliance(), &adopt("retrench-1b"));
    assert_eq!(events.len(), 2, "{events:?}");
    let old = &plan.decisions[&dec("retrench-1")];
    assert_eq!(old.status, DecisionStatus::Superseded);
    assert_eq!(old.superseded_by(), Some(&dec("retrench-1b")));

    // The brigade now leaves in 2030, not 2028.
    let timeline = ElementTimeline::build(&plan, &el(ABCT), [], &BTreeSet::new())
        .expect("the adopted plan keeps the rules")
        .expect("the brigade is registered");
    assert!(timeline.at(date(2029, 1, 1)).present);
    assert!(!timeline.at(date(2030, 1, 1)).present);
    assert_eq!(
        timeline.at(date(2030, 1, 1)).withdrawn_on,
        Some(date(2030, 1, 1))
    );

    // A relocation in 2029 would have been after the old withdrawal; now it is fine...
    let (plan, _) = apply(plan, us(), &propose("relocate", both_sides(), &[]));
    given_plan(&plan)
        .when_planned("relocate", relocate(ABCT, "Camp Casey", date(2029, 1, 1)))
        .then_planned();
    // ...while the new withdrawal counts.
    given_plan(&plan)
        .when_planned("relocate", withdraw(ABCT, date(2031, 1, 1)))
        .then_rule("withdrawn_twice");
}

#[test]
fn without_superseding_the_same_withdrawal_is_refused() {
    // The control for the test above: the same steps, but retrench-1b does not supersede.
    given(baseline_with(
        adopted_decision("retrench-1", vec![withdraw(ABCT, date(2028, 1, 1))])
            .into_iter()
            .chain([proposed("retrench-1b")]),
    ))
    .when_planned("retrench-1b", withdraw(ABCT, date(2030, 1, 1)))
    .then_rule("withdrawn_twice");
}

/// The state as it is, for a given/when/then on a plan built with [`apply`].
fn given_plan(plan: &Plan) -> Given {
    Given { plan: plan.clone() }
}

/// Superseding the decision that added an element drops the element's origin. Another adopted
/// decision still reduces it, so the adopted plan would break its own rules (a step on an
/// element that no adopted decision adds). The adoption must be refused.
///
/// BUG in src/decide.rs `check_adoption`: it re-checks only the elements the adopted decision's
/// own steps touch, not the elements touched by the decisions it supersedes.
#[test]
fn superseding_the_addition_of_an_element_still_in_use_is_refused() {
    let mut events = baseline_with(adopted_decision(
        "reinforce",
        vec![add("thaad-2", 100, date(2027, 1, 1))],
    ));
    events.extend(adopted_decision(
        "trim",
        vec![reduce("thaad-2", 40, date(2029, 1, 1))],
    ));
    events.push(proposed_superseding(
        "cancel-reinforce",
        US_TEAM,
        both_sides(),
        &["reinforce"],
    ));
    events.push(endorsed("cancel-reinforce", Side::Us));
    events.push(endorsed("cancel-reinforce", Side::Rok));
    let plan = fold(Plan::default(), &events);
    ElementTimeline::build(&plan, &el("thaad-2"), [], &BTreeSet::new())
        .expect("the adopted plan keeps the rules before the adoption");

    let ctx = CommandContext { actor: alliance() };
    if let Ok(adoption) = decide(&plan, &adopt("cancel-reinforce"), &ctx) {
        let after = fold(plan, &adoption);
        let broken = ElementTimeline::build(&after, &el("thaad-2"), [], &BTreeSet::new());
        panic!(
            "adoption accepted ({adoption:?}) and left the adopted plan breaking its rules: {broken:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RejectDecision and WithdrawDecision: a proposed decision closes
// ---------------------------------------------------------------------------------------------

fn reject(decision: &str, reason: &str) -> Command {
    Command::RejectDecision {
        decision_id: dec(decision),
        reason: reason.to_owned(),
    }
}

fn withdraw_decision(decision: &str, reason: &str) -> Command {
    Command::WithdrawDecision {
        decision_id: dec(decision),
        reason: reason.to_owned(),
    }
}

/// Both ways retrench-1 closes, each by a team that may close it so: any team rejects, its
/// owner withdraws.
fn closings(reason: &str) -> [(Actor, Command); 2] {
    [
        (rok(), reject("retrench-1", reason)),
        (us(), withdraw_decision("retrench-1", reason)),
    ]
}

#[test]
fn reject_decision_emits_decision_rejected() {
    // Any team may reject, the owner or not.
    given(baseline_with([proposed("retrench-1")]))
        .when(rok(), reject("retrench-1", "too early"))
        .then(vec![Event::DecisionRejected {
            decision_id: dec("retrench-1"),
            reason: "too early".to_owned(),
        }]);
}

#[test]
fn the_owner_withdraws_a_decision() {
    given(baseline_with([proposed("retrench-1")]))
        .when(us(), withdraw_decision("retrench-1", "replanned"))
        .then(vec![Event::DecisionWithdrawn {
            decision_id: dec("retrench-1"),
            reason: "replanned".to_owned(),
        }]);
}

#[test]
fn only_the_owner_withdraws_a_decision() {
    for other in [us_policy(), alliance()] {
        given(baseline_with([proposed("retrench-1")]))
            .when(other, withdraw_decision("retrench-1", "replanned"))
            .then_rule("not_owner");
    }
}

#[test]
fn closing_a_decision_needs_a_reason() {
    for (actor, command) in closings(" ").into_iter().chain(closings("")) {
        given(baseline_with([proposed("retrench-1")]))
            .when(actor, command)
            .then_invalid("reason");
    }
}

// ---------------------------------------------------------------------------------------------
// Every command on a decision that must still be open
// ---------------------------------------------------------------------------------------------

#[test]
fn commands_on_an_unknown_or_closed_decision_are_refused() {
    for (actor, command) in [
        (us(), endorse("retrench-1")),
        (alliance(), adopt("retrench-1")),
        (rok(), reject("retrench-1", "no")),
        (us(), withdraw_decision("retrench-1", "no")),
    ] {
        given(baseline())
            .when(actor.clone(), command.clone())
            .then_not_found("decision", "retrench-1");
        given(baseline_with(adopted_decision("retrench-1", vec![])))
            .when(actor, command)
            .then_rule("decision_closed");
    }
}

// ---------------------------------------------------------------------------------------------
// A missing plan
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_on_a_missing_plan_is_refused() {
    let commands = vec![
        branch(branch_id(), 0),
        Command::RegisterForceElement {
            element: spec(ABCT, 4500, &[]),
            present_from: date(1900, 1, 1),
        },
        Command::RecordCapabilityLevel {
            side: Side::Rok,
            area: CapabilityArea::Isr,
            level: 40,
            as_of: horizon_start(),
        },
        define_clause("123-enrichment", horizon_start()),
        define_condition("rok-amd-70", Some(70)),
        assess("rok-amd-70", horizon_start(), None),
        propose("retrench-1", both_sides(), &[]),
        plan_step("retrench-1", withdraw(ABCT, date(2028, 1, 1))),
        plan_step("retrench-1", reduce(ABCT, 1, date(2028, 1, 1))),
        plan_step("retrench-1", relocate(ABCT, "Osan AB", date(2028, 1, 1))),
        plan_step("retrench-1", add("thaad-2", 1, date(2028, 1, 1))),
        plan_step(
            "retrench-1",
            transfer_opcon(date(2028, 1, 1), &["rok-amd-70"]),
        ),
        plan_step("retrench-1", amend("123-enrichment", date(2028, 1, 1))),
        plan_step("retrench-1", invest("l-sam", 10, date(2028, 1, 1))),
        plan_step(
            "retrench-1",
            Step::ChangeCommandArrangement {
                on: date(2028, 1, 1),
                peacetime_opcon: Some(Side::Rok),
                wartime_opcon: None,
                cfc_commander: None,
            },
        ),
        endorse("retrench-1"),
        adopt("retrench-1"),
        reject("retrench-1", "no"),
        withdraw_decision("retrench-1", "no"),
    ];
    for command in commands {
        let e = given_no_plan().when(us(), command.clone()).error();
        assert!(is_rule(&e, "plan_missing"), "{command:?}: {e:?}");
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    }
}

// ---------------------------------------------------------------------------------------------
// Error kinds
// ---------------------------------------------------------------------------------------------

#[test]
fn error_kinds_map_each_refusal() {
    assert_eq!(
        DomainError::invalid("f", "bad").kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(DomainError::not_found("x", "y").kind(), ErrorKind::NotFound);
    assert_eq!(
        DomainError::already_exists("x", "y").kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        DomainError::rule("r", "m").kind(),
        ErrorKind::FailedPrecondition
    );
}

// ---------------------------------------------------------------------------------------------
// keys(): the grain of concurrent editing
// ---------------------------------------------------------------------------------------------

fn conflicts(actor: Actor, command: &Command, event: &Event) -> bool {
    let ctx = CommandContext { actor };
    !command.keys(&ctx).is_disjoint(&event.keys())
}

#[test]
fn endorsements_by_the_two_sides_do_not_conflict() {
    let rok_endorsement = endorsed("retrench-1", Side::Rok);
    assert_eq!(
        rok_endorsement.keys(),
        BTreeSet::from([Key::Endorsement(dec("retrench-1"), Side::Rok)])
    );
    assert!(!conflicts(us(), &endorse("retrench-1"), &rok_endorsement));
    // The same side endorsing concurrently does conflict.
    assert!(conflicts(
        us_policy(),
        &endorse("retrench-1"),
        &endorsed("retrench-1", Side::Us)
    ));
}

#[test]
fn an_endorsement_conflicts_with_a_step_added_meanwhile() {
    // The endorser must have seen every step of what it endorses.
    let step = planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)));
    assert!(conflicts(rok(), &endorse("retrench-1"), &step));
}

#[test]
fn steps_on_different_elements_in_different_decisions_do_not_conflict() {
    let event = planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)));
    let command = plan_step("retrench-2", reduce(WING, 500, date(2029, 1, 1)));
    assert!(!conflicts(us(), &command, &event));
}

#[test]
fn steps_on_the_same_element_conflict_across_decisions() {
    let event = planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)));
    let command = plan_step("retrench-2", reduce(ABCT, 500, date(2029, 1, 1)));
    assert!(conflicts(us(), &command, &event));
    let keys = command.keys(&CommandContext { actor: us() });
    let shared: Vec<Key> = keys.intersection(&event.keys()).cloned().collect();
    assert_eq!(shared, vec![Key::Element(el(ABCT))]);
}

#[test]
fn steps_in_the_same_decision_conflict() {
    let event = planned("retrench-1", withdraw(ABCT, date(2028, 1, 1)));
    let command = plan_step("retrench-1", reduce(WING, 500, date(2029, 1, 1)));
    assert!(conflicts(us(), &command, &event));
}

#[test]
fn scheduling_the_opcon_transfer_reads_its_conditions() {
    let command = plan_step(
        "opcon-transfer",
        transfer_opcon(date(2028, 10, 1), &["rok-amd-70"]),
    );
    let assessment = Event::ConditionAssessed {
        condition_id: cond("rok-amd-70"),
        assessed_on: date(2027, 1, 1),
        status: ConditionStatus::Met,
        value: Some(75),
        note: String::new(),
    };
    assert!(conflicts(rok(), &command, &assessment));
    let other = Event::ConditionAssessed {
        condition_id: cond("rok-c2-certified"),
        assessed_on: date(2027, 1, 1),
        status: ConditionStatus::Met,
        value: None,
        note: String::new(),
    };
    assert!(!conflicts(rok(), &command, &other));
    // The scheduled transfer writes the arrangement, not the conditions.
    let event = planned(
        "opcon-transfer",
        transfer_opcon(date(2028, 10, 1), &["rok-amd-70"]),
    );
    assert!(!event.keys().contains(&Key::Condition(cond("rok-amd-70"))));
    assert!(event.keys().contains(&Key::CommandArrangement));
}

#[test]
fn unrelated_parts_of_a_plan_do_not_conflict() {
    let register = Command::RegisterForceElement {
        element: spec("35ada", 2500, &[]),
        present_from: horizon_start(),
    };
    assert!(!conflicts(us(), &register, &registered(ABCT, 4500, &[])));
    assert!(conflicts(us(), &register, &registered("35ada", 1, &[])));
    let level = Command::RecordCapabilityLevel {
        side: Side::Rok,
        area: CapabilityArea::MissileDefense,
        level: 50,
        as_of: horizon_start(),
    };
    let other_area = Event::CapabilityLevelRecorded {
        side: Side::Rok,
        area: CapabilityArea::Isr,
        level: 50,
        as_of: horizon_start(),
    };
    assert!(!conflicts(rok(), &level, &other_area));
    assert!(!conflicts(
        rok(),
        &propose("retrench-2", both_sides(), &[]),
        &adopted("retrench-1")
    ));
    assert!(conflicts(
        rok(),
        &propose("retrench-2", both_sides(), &["retrench-1"]),
        &adopted("retrench-1")
    ));
}

// ---------------------------------------------------------------------------------------------
// The harness helpers themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn apply_folds_the_decided_events() {
    let plan = fold(Plan::default(), &baseline());
    let (next, events) = apply(
        plan.clone(),
        us(),
        &propose("retrench-1", both_sides(), &[]),
    );
    assert_eq!(next, evolve(plan, &events[0]));
}

#[test]
fn a_second_adopted_opcon_transfer_is_refused_unless_it_supersedes_the_first() {
    let mut events = opcon_plan();
    events.extend(adopted_decision(
        "opcon-transfer-2028",
        vec![transfer_opcon(date(2028, 10, 1), &["rok-amd-70"])],
    ));
    let later = endorsed_decision(
        "opcon-transfer-2030",
        vec![transfer_opcon(date(2030, 1, 1), &["rok-c2-certified"])],
    );
    let mut twice = events.clone();
    twice.extend(later);
    given(twice)
        .when(alliance(), adopt("opcon-transfer-2030"))
        .then_rule("opcon_transfer_twice");
}

#[test]
fn a_run_record_past_its_bounds_is_invalid_naming_each_field() {
    let run = alliance_domain::SimulationRun {
        run_id: uuid::Uuid::from_u128(7),
        plan_version: 1_000,
        what_if: false,
        inputs_digest: "a".repeat(64),
        results_digest: "b".repeat(64),
        seed: 1,
        trials: u32::MAX,
        start: date(2027, 1, 1),
        months: u32::MAX,
        model_version: "test".to_owned(),
        shortfall_permille: 0,
        conditions_at_transfer_permille: None,
        conditions_likely_by: None,
        sequencing_risks: 0,
        headline: String::new(),
    };
    given(vec![created()])
        .when(alliance(), Command::RecordSimulationRun { run })
        .then_invalid_fields(&["run.trials", "run.months", "run.plan_version"]);
}
