//! The given / when / then harness of the planning rules (in the style of the cqrs-es
//! `TestFramework`) and the fixtures its tests share: fold the given events into a plan, decide
//! one command, compare the outcome. Built only with the `testing` feature, for tests.

use std::collections::BTreeSet;

use crate::{
    Actor, AgreementKind, ClauseId, ClauseStatus, Command, CommandContext, Component, ConditionId,
    ConstraintRule, Date, DecisionId, DomainError, ElementId, ElementKind, Event, ForceElementSpec,
    InvestmentId, Plan, PlanId, Side, Step, TeamId, decide, fold,
};

// ---------------------------------------------------------------------------------------------
// The given / when / then harness
// ---------------------------------------------------------------------------------------------

/// The state a command is decided against: the given events folded onto an empty plan.
pub struct Given {
    pub plan: Plan,
}

/// The outcome of deciding one command.
pub struct When {
    pub command: Command,
    pub result: Result<Vec<Event>, DomainError>,
}

pub fn given(events: Vec<Event>) -> Given {
    Given {
        plan: fold(Plan::default(), &events),
    }
}

/// No event at all: the plan does not exist yet.
pub fn given_no_plan() -> Given {
    given(Vec::new())
}

impl Given {
    pub fn when(self, actor: Actor, command: Command) -> When {
        let ctx = CommandContext { actor };
        let result = decide(&self.plan, &command, &ctx);
        When { command, result }
    }

    /// The U.S. force-planning cell (which owns the fixtures' decisions) plans `step` on
    /// `decision`.
    pub fn when_planned(self, decision: &str, step: Step) -> When {
        self.when(us(), plan_step(decision, step))
    }
}

impl When {
    /// The command is accepted and produces exactly `expected`.
    #[track_caller]
    pub fn then(self, expected: Vec<Event>) {
        match self.result {
            Ok(events) => assert_eq!(events, expected, "events of {:?}", self.command),
            Err(e) => panic!("{:?} was refused: {e:?}", self.command),
        }
    }

    /// The step the command plans is accepted as asked: its one event is that step, planned on
    /// its decision.
    #[track_caller]
    pub fn then_planned(self) {
        let Command::PlanStep { decision_id, step } = &self.command else {
            panic!("{:?} plans no step", self.command);
        };
        let expected = vec![Event::StepPlanned {
            decision_id: decision_id.clone(),
            step: step.clone(),
        }];
        self.then(expected);
    }

    /// The command is refused with an error that `check` accepts.
    #[track_caller]
    pub fn then_error(self, check: impl FnOnce(&DomainError) -> bool) {
        match self.result {
            Ok(events) => panic!("{:?} was accepted: {events:?}", self.command),
            Err(e) => assert!(check(&e), "unexpected refusal of {:?}: {e:?}", self.command),
        }
    }

    /// The command is refused by the planning rule named `rule`.
    #[track_caller]
    pub fn then_rule(self, rule: &str) {
        self.then_error(|e| matches!(e, DomainError::Rule { rule: r, .. } if *r == rule));
    }

    /// The command is refused as invalid, and `field` is among the violations.
    #[track_caller]
    pub fn then_invalid(self, field: &str) {
        self.then_error(
            |e| matches!(e, DomainError::Invalid(vs) if vs.iter().any(|v| v.field == field)),
        );
    }

    /// The command is refused as invalid with exactly these violations, in this order.
    #[track_caller]
    pub fn then_invalid_fields(self, fields: &[&str]) {
        match self.error() {
            DomainError::Invalid(violations) => {
                let found: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                assert_eq!(found, fields, "violations of a refused command");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// The command is refused because the `what` named `id` does not exist.
    #[track_caller]
    pub fn then_not_found(self, what: &str, id: &str) {
        self.then_error(
            |e| matches!(e, DomainError::NotFound { what: w, id: i } if *w == what && i == id),
        );
    }

    /// The command is refused because the `what` named `id` exists already.
    #[track_caller]
    pub fn then_already_exists(self, what: &str, id: &str) {
        self.then_error(
            |e| matches!(e, DomainError::AlreadyExists { what: w, id: i } if *w == what && i == id),
        );
    }

    /// The refusal itself, for assertions on its message.
    #[track_caller]
    pub fn error(self) -> DomainError {
        match self.result {
            Ok(events) => panic!("{:?} was accepted: {events:?}", self.command),
            Err(e) => e,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

pub const US_TEAM: &str = "us-force-planning";
pub const US_POLICY_TEAM: &str = "us-nuclear-policy";
pub const ROK_TEAM: &str = "rok-jcs";
pub const ALLIANCE_TEAM: &str = "alliance-approver";

pub fn plan_id() -> PlanId {
    PlanId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

pub fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

pub fn horizon_start() -> Date {
    date(2025, 1, 1)
}

pub fn horizon_end() -> Date {
    date(2035, 12, 31)
}

/// `pub fn $name(s: &str) -> $id`, the id `s` a test names (a panic if it is not valid).
macro_rules! ids {
    ($($name:ident -> $id:ident, $what:literal;)*) => {$(
        pub fn $name(s: &str) -> $id {
            $id::parse(s).expect(concat!("a valid ", $what))
        }
    )*};
}

ids! {
    team -> TeamId, "team id";
    el -> ElementId, "element id";
    dec -> DecisionId, "decision id";
    cond -> ConditionId, "condition id";
    clause -> ClauseId, "clause id";
    inv -> InvestmentId, "investment id";
}

/// A rule on the U.S. personnel of every component and kind: at least `min`, at most `max`.
pub fn us_personnel(min: Option<u64>, max: Option<u64>) -> ConstraintRule {
    ConstraintRule::Personnel {
        side: Side::Us,
        component: None,
        kind: None,
        min,
        max,
    }
}

pub fn actor(team_id: &str, side: Option<Side>) -> Actor {
    Actor {
        team: team(team_id),
        user: format!("planner@{team_id}"),
        side,
    }
}

/// The U.S. force-planning cell: endorses for the U.S.
pub fn us() -> Actor {
    actor(US_TEAM, Some(Side::Us))
}

/// Another U.S. cell: same side, different team.
pub fn us_policy() -> Actor {
    actor(US_POLICY_TEAM, Some(Side::Us))
}

/// The ROK JCS cell: endorses for the ROK.
pub fn rok() -> Actor {
    actor(ROK_TEAM, Some(Side::Rok))
}

/// An alliance-level team: endorses for no side.
pub fn alliance() -> Actor {
    actor(ALLIANCE_TEAM, None)
}

pub fn both_sides() -> BTreeSet<Side> {
    BTreeSet::from([Side::Us, Side::Rok])
}

pub fn spec(id: &str, personnel: u32, equipment: &[(&str, u32)]) -> ForceElementSpec {
    ForceElementSpec {
        id: el(id),
        name: format!("element {id}").into(),
        side: Side::Us,
        component: Component::Army,
        kind: ElementKind::GroundCombatBrigade,
        personnel,
        equipment: equipment
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
        base: "Camp Humphreys".into(),
    }
}

pub fn created() -> Event {
    Event::PlanCreated {
        plan_id: plan_id(),
        name: "Alliance modernization 2027-2031".to_owned(),
        description: "reference plan".to_owned(),
        horizon_start: horizon_start(),
        horizon_end: horizon_end(),
        grants: Vec::new(),
    }
}

/// The armored brigade: 4,500 personnel, 90 Abrams, present from the horizon start.
pub const ABCT: &str = "2id-abct";
/// The fighter wing at Kunsan: 2,000 personnel, 40 F-16.
pub const WING: &str = "8fw";

/// The 123 agreement's enrichment clause `id`, restricted from `since`.
pub fn define_clause(id: &str, since: Date) -> Command {
    Command::DefineAgreementClause {
        clause_id: clause(id),
        agreement: AgreementKind::NuclearCooperation123,
        title: "enrichment".to_owned(),
        status: ClauseStatus::Restricted,
        since,
    }
}

/// What `define_clause(id, horizon_start())` records.
pub fn clause_defined(id: &str) -> Event {
    Event::AgreementClauseDefined {
        clause_id: clause(id),
        agreement: AgreementKind::NuclearCooperation123,
        title: "enrichment".to_owned(),
        status: ClauseStatus::Restricted,
        since: horizon_start(),
    }
}

pub fn registered(id: &str, personnel: u32, equipment: &[(&str, u32)]) -> Event {
    registered_from(id, personnel, equipment, horizon_start())
}

pub fn registered_from(
    id: &str,
    personnel: u32,
    equipment: &[(&str, u32)],
    present_from: Date,
) -> Event {
    Event::ForceElementRegistered {
        element: spec(id, personnel, equipment),
        present_from,
    }
}

/// A plan with the brigade and the wing registered.
pub fn baseline() -> Vec<Event> {
    vec![
        created(),
        registered(ABCT, 4500, &[("M1A2", 90)]),
        registered(WING, 2000, &[("F-16", 40)]),
    ]
}

pub fn baseline_with(more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    let mut events = baseline();
    events.extend(more);
    events
}

pub fn proposed_by(id: &str, owner: &str, sides: BTreeSet<Side>) -> Event {
    proposed_superseding(id, owner, sides, &[])
}

/// Proposed by the U.S. force-planning cell, needing both sides.
pub fn proposed(id: &str) -> Event {
    proposed_by(id, US_TEAM, both_sides())
}

pub fn proposed_superseding(
    id: &str,
    owner: &str,
    sides: BTreeSet<Side>,
    supersedes: &[&str],
) -> Event {
    Event::DecisionProposed {
        decision_id: dec(id),
        title: format!("decision {id}"),
        rationale: "phased retrenchment".to_owned(),
        owner_team: team(owner),
        effective_date: date(2027, 1, 1),
        required_sides: sides,
        supersedes: supersedes.iter().map(|s| dec(s)).collect(),
    }
}

pub fn planned(id: &str, step: Step) -> Event {
    Event::StepPlanned {
        decision_id: dec(id),
        step,
    }
}

pub fn endorsed(id: &str, side: Side) -> Event {
    Event::DecisionEndorsed {
        decision_id: dec(id),
        side,
    }
}

pub fn adopted(id: &str) -> Event {
    Event::DecisionAdopted {
        decision_id: dec(id),
    }
}

/// A decision of the U.S. cell with `steps`, endorsed by both sides, not adopted yet.
pub fn endorsed_decision(id: &str, steps: Vec<Step>) -> Vec<Event> {
    let mut events = vec![proposed(id)];
    events.extend(steps.into_iter().map(|s| planned(id, s)));
    events.push(endorsed(id, Side::Us));
    events.push(endorsed(id, Side::Rok));
    events
}

/// A decision of the U.S. cell with `steps`, endorsed by both sides and adopted.
pub fn adopted_decision(id: &str, steps: Vec<Step>) -> Vec<Event> {
    let mut events = endorsed_decision(id, steps);
    events.push(adopted(id));
    events
}

pub fn withdraw(id: &str, on: Date) -> Step {
    Step::WithdrawElement {
        element_id: el(id),
        on,
    }
}

pub fn reduce(id: &str, personnel: u32, on: Date) -> Step {
    reduce_with(id, personnel, &[], on)
}

pub fn reduce_with(id: &str, personnel: u32, equipment: &[(&str, u32)], on: Date) -> Step {
    Step::ReduceElement {
        element_id: el(id),
        personnel,
        equipment: equipment
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
        on,
    }
}

pub fn relocate(id: &str, to_base: &str, on: Date) -> Step {
    Step::RelocateElement {
        element_id: el(id),
        to_base: to_base.to_owned(),
        on,
    }
}

pub fn add(id: &str, personnel: u32, on: Date) -> Step {
    Step::AddElement {
        element: spec(id, personnel, &[]),
        on,
    }
}

pub fn plan_step(decision: &str, step: Step) -> Command {
    Command::PlanStep {
        decision_id: dec(decision),
        step,
    }
}

pub fn endorse(decision: &str) -> Command {
    Command::EndorseDecision {
        decision_id: dec(decision),
    }
}

pub fn adopt(decision: &str) -> Command {
    Command::AdoptDecision {
        decision_id: dec(decision),
        acknowledged_findings: Default::default(),
    }
}

pub fn propose(id: &str, sides: BTreeSet<Side>, supersedes: &[&str]) -> Command {
    Command::ProposeDecision {
        decision_id: dec(id),
        title: format!("decision {id}"),
        rationale: "phased retrenchment".to_owned(),
        effective_date: date(2027, 1, 1),
        required_sides: sides,
        supersedes: supersedes.iter().map(|s| dec(s)).collect(),
    }
}

/// Decides and applies `command` on `plan`, panicking if it is refused.
#[track_caller]
pub fn apply(plan: Plan, actor: Actor, command: &Command) -> (Plan, Vec<Event>) {
    let events = decide(&plan, command, &CommandContext { actor })
        .unwrap_or_else(|e| panic!("{command:?} was refused: {e:?}"));
    let plan = fold(plan, &events);
    (plan, events)
}
