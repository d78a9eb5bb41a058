//! Every planning rule lives here: a command becomes events, or a typed refusal.

use std::collections::{BTreeMap, BTreeSet};

use crate::access::{Grant, PlanRole};
use crate::command::{Command, CommandContext};
use crate::error::{DomainError, FieldViolation};
use crate::event::Event;
use crate::ids::{DecisionId, ElementId};
use crate::model::{Date, DecisionStatus, ForceElementSpec, Step};
use crate::state::{Decision, Plan};
use crate::timeline::ElementTimeline;

const MAX_NAME: usize = 200;
/// Roles granted when a plan is created, at most.
const MAX_GRANTS: usize = 200;
const MAX_TEXT: usize = 4000;
/// Items of one list field (equipment kinds, superseded decisions, named conditions), at most.
const MAX_ITEMS: usize = 100;
/// Capability levels and thresholds are on a 0–100 scale.
const MAX_LEVEL: u32 = 100;
/// Personnel of one force element, and of one reduction: the largest formation a plan names
/// (a field army, a whole service component) is well under a million.
pub const MAX_PERSONNEL: u32 = 1_000_000;
/// Count of one equipment kind of one element, and of one reduction.
pub const MAX_EQUIPMENT: u32 = 100_000;
/// Cost of one capability investment, in millions of U.S. dollars ($10 trillion).
pub const MAX_COST_MUSD: u64 = 10_000_000;
/// Trials of one recorded simulation run (the simulation service's own cap).
pub const MAX_SIMULATION_TRIALS: u32 = 200_000;
/// Months of one recorded simulation run (50 years; the simulation service's own cap).
pub const MAX_SIMULATION_MONTHS: u32 = 600;

/// Collects field violations so a caller sees every problem of a command at once.
#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
        if required && value.trim().is_empty() {
            self.0.push(FieldViolation::new(field, "must not be empty"));
        }
        let len = value.chars().count();
        if len > max {
            self.0.push(FieldViolation::new(
                field,
                format!("must be at most {max} characters, got {len}"),
            ));
        }
    }

    fn date(&mut self, plan: &Plan, field: &str, date: Date) {
        if plan.exists() && !plan.in_horizon(date) {
            self.0.push(FieldViolation::new(
                field,
                format!(
                    "{date} is outside the plan horizon {} to {}",
                    plan.horizon_start, plan.horizon_end
                ),
            ));
        }
    }

    fn level(&mut self, field: &str, level: u32) {
        if level > MAX_LEVEL {
            self.0.push(FieldViolation::new(
                field,
                format!("must be between 0 and {MAX_LEVEL}, got {level}"),
            ));
        }
    }

    fn at_most<N: PartialOrd + std::fmt::Display>(&mut self, field: &str, value: N, max: N) {
        if value > max {
            self.0.push(FieldViolation::new(
                field,
                format!("must be at most {max}, got {value}"),
            ));
        }
    }

    fn equipment(&mut self, field: &str, equipment: &BTreeMap<String, u32>) {
        self.items(field, equipment.len());
        for (kind, count) in equipment {
            self.text(field, kind, true, MAX_NAME);
            self.at_most(field, *count, MAX_EQUIPMENT);
        }
    }

    fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.0.push(FieldViolation::new(field, description));
        }
    }

    fn items(&mut self, field: &str, count: usize) {
        if count > MAX_ITEMS {
            self.0.push(FieldViolation::new(
                field,
                format!("at most {MAX_ITEMS} items, not {count}"),
            ));
        }
    }

    fn element(&mut self, prefix: &str, element: &ForceElementSpec) {
        self.text(&format!("{prefix}.name"), &element.name, true, MAX_NAME);
        self.text(&format!("{prefix}.base"), &element.base, true, MAX_NAME);
        self.at_most(
            &format!("{prefix}.personnel"),
            element.personnel,
            MAX_PERSONNEL,
        );
        self.equipment(&format!("{prefix}.equipment"), &element.equipment);
    }

    fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.0))
        }
    }
}

/// Decides a command against the current state of its plan.
///
/// For `BranchPlan`, `plan` is the parent folded to the version branched at; the event opens the
/// new plan's stream.
pub fn decide(
    plan: &Plan,
    command: &Command,
    ctx: &CommandContext,
) -> Result<Vec<Event>, DomainError> {
    validate(plan, command)?;
    if let Command::CreatePlan { plan_id, .. } = command {
        if plan.exists() {
            return Err(DomainError::already_exists("plan", plan_id));
        }
    } else if !plan.exists() {
        return Err(DomainError::rule(
            "plan_missing",
            "the plan does not exist; create it first",
        ));
    }
    match command {
        Command::CreatePlan {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => {
            // The creating team administers a plan that grants roles; the grants asked for come
            // with it, once. A plan granting none is governed by the teams' default roles.
            let creator = Grant {
                team: ctx.actor.team.clone(),
                role: PlanRole::Admin,
            };
            let grants: BTreeSet<Grant> = if grants.is_empty() {
                BTreeSet::new()
            } else {
                grants.iter().cloned().chain([creator]).collect()
            };
            Ok(vec![Event::PlanCreated {
                plan_id: *plan_id,
                name: name.clone(),
                description: description.clone(),
                horizon_start: *horizon_start,
                horizon_end: *horizon_end,
                grants: grants.into_iter().collect(),
            }])
        }
        Command::BranchPlan {
            new_plan_id,
            parent_version,
            name,
            description,
        } => {
            let parent_id = plan.id.unwrap_or_default();
            if *new_plan_id == parent_id {
                return Err(DomainError::invalid(
                    "new_plan_id",
                    "a branch needs an id of its own",
                ));
            }
            if *parent_version != plan.version {
                return Err(DomainError::invalid(
                    "parent_version",
                    format!(
                        "the parent is folded to version {}, not {parent_version}",
                        plan.version
                    ),
                ));
            }
            Ok(vec![Event::PlanBranched {
                plan_id: *new_plan_id,
                parent_plan_id: parent_id,
                parent_version: *parent_version,
                name: name.clone(),
                description: description.clone(),
            }])
        }
        Command::RegisterForceElement {
            element,
            present_from,
        } => {
            if plan.elements.contains_key(&element.id)
                || plan.planned_elements.contains_key(&element.id)
            {
                return Err(DomainError::already_exists("force element", &element.id));
            }
            Ok(vec![Event::ForceElementRegistered {
                element: element.clone(),
                present_from: *present_from,
            }])
        }
        Command::RecordCapabilityLevel {
            side,
            area,
            level,
            as_of,
        } => Ok(vec![Event::CapabilityLevelRecorded {
            side: *side,
            area: *area,
            level: *level,
            as_of: *as_of,
        }]),
        Command::DefineAgreementClause {
            clause_id,
            agreement,
            title,
            status,
            since,
        } => {
            if plan.clauses.contains_key(clause_id) {
                return Err(DomainError::already_exists("agreement clause", clause_id));
            }
            Ok(vec![Event::AgreementClauseDefined {
                clause_id: clause_id.clone(),
                agreement: *agreement,
                title: title.clone(),
                status: *status,
                since: *since,
            }])
        }
        Command::DefineCondition {
            condition_id,
            title,
            description,
            area,
            threshold,
        } => {
            if plan.conditions.contains_key(condition_id) {
                return Err(DomainError::already_exists("condition", condition_id));
            }
            Ok(vec![Event::ConditionDefined {
                condition_id: condition_id.clone(),
                title: title.clone(),
                description: description.clone(),
                area: *area,
                threshold: *threshold,
            }])
        }
        Command::AssessCondition {
            condition_id,
            assessed_on,
            status,
            value,
            note,
        } => {
            if !plan.conditions.contains_key(condition_id) {
                return Err(DomainError::not_found("condition", condition_id));
            }
            Ok(vec![Event::ConditionAssessed {
                condition_id: condition_id.clone(),
                assessed_on: *assessed_on,
                status: *status,
                value: *value,
                note: note.clone(),
            }])
        }
        Command::ProposeDecision {
            decision_id,
            title,
            rationale,
            effective_date,
            required_sides,
            supersedes,
        } => {
            if plan.decisions.contains_key(decision_id) {
                return Err(DomainError::already_exists("decision", decision_id));
            }
            for old in supersedes {
                let status = plan
                    .decisions
                    .get(old)
                    .ok_or_else(|| DomainError::not_found("decision", old))?
                    .status;
                if status != DecisionStatus::Adopted {
                    return Err(DomainError::rule(
                        "supersede_not_adopted",
                        format!(
                            "decision {old} is {}, only an adopted decision can be superseded",
                            format!("{status:?}").to_lowercase()
                        ),
                    ));
                }
            }
            // A side's cell proposes for its government: that side endorses too.
            let mut required_sides = required_sides.clone();
            required_sides.extend(ctx.actor.side);
            Ok(vec![Event::DecisionProposed {
                decision_id: decision_id.clone(),
                title: title.clone(),
                rationale: rationale.clone(),
                owner_team: ctx.actor.team.clone(),
                effective_date: *effective_date,
                required_sides,
                supersedes: supersedes.clone(),
            }])
        }
        Command::PlanStep { decision_id, step } => {
            let decision = open_decision(plan, decision_id)?;
            if decision.owner_team != ctx.actor.team {
                return Err(DomainError::rule(
                    "not_owner",
                    format!(
                        "decision {decision_id} is owned by {}; only its owner adds steps",
                        decision.owner_team
                    ),
                ));
            }
            if let Some(side) = decision.endorsements.first() {
                return Err(DomainError::rule(
                    "already_endorsed",
                    format!(
                        "decision {decision_id} is already endorsed by the {} side; propose a new decision instead of changing an endorsed one",
                        side.name()
                    ),
                ));
            }
            check_step(plan, decision, step)?;
            Ok(vec![Event::StepPlanned {
                decision_id: decision_id.clone(),
                step: step.clone(),
            }])
        }
        Command::EndorseDecision { decision_id } => {
            let decision = open_decision(plan, decision_id)?;
            let Some(side) = ctx.actor.side else {
                return Err(DomainError::rule(
                    "no_side",
                    format!(
                        "team {} does not endorse for the U.S. or the ROK",
                        ctx.actor.team
                    ),
                ));
            };
            if !decision.needed_sides(plan).contains(&side) {
                return Err(DomainError::rule(
                    "endorsement_not_required",
                    format!(
                        "decision {decision_id} does not require endorsement by the {} side",
                        side.name()
                    ),
                ));
            }
            if decision.endorsements.contains(&side) {
                return Err(DomainError::rule(
                    "already_endorsed",
                    format!(
                        "decision {decision_id} is already endorsed by the {} side",
                        side.name()
                    ),
                ));
            }
            Ok(vec![Event::DecisionEndorsed {
                decision_id: decision_id.clone(),
                side,
            }])
        }
        Command::AdoptDecision { decision_id } => {
            let decision = open_decision(plan, decision_id)?;
            let needed = decision.needed_sides(plan);
            let missing: Vec<&str> = needed
                .difference(&decision.endorsements)
                .map(|s| s.name())
                .collect();
            if !missing.is_empty() {
                return Err(DomainError::rule(
                    "endorsement_missing",
                    format!(
                        "decision {decision_id} cannot be adopted without the endorsement of the {} side",
                        missing.join(" and ")
                    ),
                ));
            }
            check_adoption(plan, decision)?;
            let mut events = vec![Event::DecisionAdopted {
                decision_id: decision_id.clone(),
            }];
            events.extend(decision.supersedes.iter().filter_map(|old| {
                let still_adopted = plan
                    .decisions
                    .get(old)
                    .is_some_and(|d| d.status == DecisionStatus::Adopted);
                still_adopted.then(|| Event::DecisionSuperseded {
                    decision_id: old.clone(),
                    superseded_by: decision_id.clone(),
                })
            }));
            Ok(events)
        }
        Command::RejectDecision {
            decision_id,
            reason,
        } => {
            open_decision(plan, decision_id)?;
            Ok(vec![Event::DecisionRejected {
                decision_id: decision_id.clone(),
                reason: reason.clone(),
            }])
        }
        Command::WithdrawDecision {
            decision_id,
            reason,
        } => {
            let decision = open_decision(plan, decision_id)?;
            if decision.owner_team != ctx.actor.team {
                return Err(DomainError::rule(
                    "not_owner",
                    format!(
                        "decision {decision_id} is owned by {}; only its owner withdraws it",
                        decision.owner_team
                    ),
                ));
            }
            Ok(vec![Event::DecisionWithdrawn {
                decision_id: decision_id.clone(),
                reason: reason.clone(),
            }])
        }
        Command::RecordSimulationRun { run } => {
            if plan.simulation_runs.contains_key(&run.run_id) {
                return Err(DomainError::already_exists("simulation run", run.run_id));
            }
            if run.plan_version > plan.version {
                return Err(DomainError::rule(
                    "version_not_reached",
                    format!(
                        "the run simulated version {} but the plan is at version {}",
                        run.plan_version, plan.version
                    ),
                ));
            }
            Ok(vec![Event::SimulationRunRecorded { run: run.clone() }])
        }
        Command::GrantRole { team, role } => {
            if plan.roles_of(team).contains(role) {
                return Err(DomainError::rule(
                    "role_already_held",
                    format!("team {team} already holds {role} on this plan"),
                ));
            }
            Ok(vec![Event::RoleGranted {
                grant: Grant {
                    team: team.clone(),
                    role: *role,
                },
            }])
        }
        Command::RevokeRole { team, role } => {
            if !plan.roles_of(team).contains(role) {
                return Err(DomainError::rule(
                    "role_not_held",
                    format!("team {team} does not hold {role} on this plan"),
                ));
            }
            if *role == PlanRole::Admin && plan.holders(PlanRole::Admin) == 1 {
                return Err(DomainError::rule(
                    "last_admin",
                    format!(
                        "team {team} is the plan's last admin; grant admin to another team first"
                    ),
                ));
            }
            Ok(vec![Event::RoleRevoked {
                grant: Grant {
                    team: team.clone(),
                    role: *role,
                },
            }])
        }
    }
}

/// A decision that is still open (proposed).
fn open_decision<'a>(plan: &'a Plan, id: &DecisionId) -> Result<&'a Decision, DomainError> {
    let decision = plan
        .decisions
        .get(id)
        .ok_or_else(|| DomainError::not_found("decision", id))?;
    if decision.status != DecisionStatus::Proposed {
        return Err(DomainError::rule(
            "decision_closed",
            format!(
                "decision {id} is {}; only a proposed decision can change",
                format!("{:?}", decision.status).to_lowercase()
            ),
        ));
    }
    Ok(decision)
}

/// Field-level checks that need no state beyond the horizon.
fn validate(plan: &Plan, command: &Command) -> Result<(), DomainError> {
    let mut v = Violations::default();
    match command {
        Command::CreatePlan {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => {
            v.check(!plan_id.is_nil(), "plan_id", "must not be the nil uuid");
            v.check(grants.len() <= MAX_GRANTS, "grants", "at most 200 grants");
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            v.check(
                horizon_start < horizon_end,
                "horizon_end",
                "must be after horizon_start",
            );
        }
        Command::BranchPlan {
            new_plan_id,
            name,
            description,
            ..
        } => {
            v.check(
                !new_plan_id.is_nil(),
                "new_plan_id",
                "must not be the nil uuid",
            );
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
        }
        Command::RegisterForceElement {
            element,
            present_from,
        } => {
            v.element("element", element);
            v.date(plan, "present_from", *present_from);
        }
        Command::RecordCapabilityLevel { level, as_of, .. } => {
            v.level("level", *level);
            v.date(plan, "as_of", *as_of);
        }
        Command::DefineAgreementClause { title, since, .. } => {
            v.text("title", title, true, MAX_NAME);
            v.date(plan, "since", *since);
        }
        Command::DefineCondition {
            title,
            description,
            threshold,
            ..
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            if let Some(t) = threshold {
                v.level("threshold", *t);
            }
        }
        Command::AssessCondition {
            assessed_on,
            value,
            note,
            ..
        } => {
            v.date(plan, "assessed_on", *assessed_on);
            if let Some(value) = value {
                v.level("value", *value);
            }
            v.text("note", note, false, MAX_TEXT);
        }
        Command::ProposeDecision {
            title,
            rationale,
            effective_date,
            required_sides,
            supersedes,
            ..
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("rationale", rationale, true, MAX_TEXT);
            v.items("supersedes", supersedes.len());
            v.date(plan, "effective_date", *effective_date);
            v.check(
                !required_sides.is_empty(),
                "required_sides",
                "must name at least one side (U.S., ROK or both)",
            );
        }
        Command::PlanStep { step, .. } => {
            v.date(plan, step_date_field(step), step.date());
            match step {
                Step::AddElement { element, .. } => v.element("element", element),
                Step::ReduceElement {
                    personnel,
                    equipment,
                    ..
                } => {
                    v.check(
                        *personnel > 0 || equipment.values().any(|c| *c > 0),
                        "personnel",
                        "a reduction must remove personnel or equipment",
                    );
                    v.at_most("personnel", *personnel, MAX_PERSONNEL);
                    v.equipment("equipment", equipment);
                }
                Step::RelocateElement { to_base, .. } => {
                    v.text("to_base", to_base, true, MAX_NAME);
                }
                Step::TransferOpcon { conditions, .. } => {
                    v.items("conditions", conditions.len());
                    v.check(
                        !conditions.is_empty(),
                        "conditions",
                        "the OPCON transfer can be scheduled only with its conditions named",
                    );
                }
                Step::ChangeCommandArrangement {
                    peacetime_opcon,
                    wartime_opcon,
                    cfc_commander,
                    ..
                } => v.check(
                    peacetime_opcon.is_some() || wartime_opcon.is_some() || cfc_commander.is_some(),
                    "peacetime_opcon",
                    "a change of command arrangement must change at least one of peacetime OPCON, wartime OPCON or the CFC commander",
                ),
                Step::InvestCapability {
                    description,
                    level_gain,
                    cost_musd,
                    ..
                } => {
                    v.at_most("cost_musd", *cost_musd, MAX_COST_MUSD);
                    v.text("description", description, true, MAX_TEXT);
                    v.check(
                        (1..=MAX_LEVEL).contains(level_gain),
                        "level_gain",
                        "must be between 1 and 100",
                    );
                }
                Step::WithdrawElement { .. } | Step::AmendClause { .. } => {}
            }
        }
        Command::EndorseDecision { .. }
        | Command::AdoptDecision { .. }
        | Command::GrantRole { .. }
        | Command::RevokeRole { .. } => {}
        Command::RejectDecision { reason, .. } | Command::WithdrawDecision { reason, .. } => {
            v.text("reason", reason, true, MAX_TEXT);
        }
        Command::RecordSimulationRun { run } => {
            v.check(
                !run.run_id.is_nil(),
                "run.run_id",
                "must not be the nil uuid",
            );
            v.check(is_digest(&run.inputs_digest), "run.inputs_digest", DIGEST);
            v.check(is_digest(&run.results_digest), "run.results_digest", DIGEST);
            v.check(run.trials > 0, "run.trials", "must be at least 1");
            v.at_most("run.trials", run.trials, MAX_SIMULATION_TRIALS);
            v.check(run.months > 0, "run.months", "must be at least 1");
            v.at_most("run.months", run.months, MAX_SIMULATION_MONTHS);
            if plan.exists() && run.plan_version > plan.version {
                v.0.push(FieldViolation::new(
                    "run.plan_version",
                    format!(
                        "the plan is at version {}, not {}",
                        plan.version, run.plan_version
                    ),
                ));
            }
            v.date(plan, "run.start", run.start);
            v.text("run.model_version", &run.model_version, true, MAX_NAME);
            v.text("run.headline", &run.headline, false, MAX_TEXT);
            for (field, permille) in [
                ("run.shortfall_permille", Some(run.shortfall_permille)),
                (
                    "run.conditions_at_transfer_permille",
                    run.conditions_at_transfer_permille,
                ),
            ] {
                v.check(
                    permille.is_none_or(|p| p <= 1000),
                    field,
                    "must be at most 1000",
                );
            }
        }
    }
    v.finish()
}

const DIGEST: &str = "must be a SHA-256 digest in lowercase hex";

fn is_digest(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn step_date_field(step: &Step) -> &'static str {
    match step {
        Step::InvestCapability { .. } => "delivery",
        _ => "on",
    }
}

/// Checks one new step against the adopted plan and the other steps of its decision.
fn check_step(plan: &Plan, decision: &Decision, step: &Step) -> Result<(), DomainError> {
    match step {
        Step::AddElement { element, .. } => {
            if plan.elements.contains_key(&element.id)
                || plan.planned_elements.contains_key(&element.id)
            {
                return Err(DomainError::already_exists("force element", &element.id));
            }
        }
        Step::WithdrawElement { element_id, .. }
        | Step::ReduceElement { element_id, .. }
        | Step::RelocateElement { element_id, .. } => {
            if !plan.elements.contains_key(element_id)
                && !plan.planned_elements.contains_key(element_id)
            {
                return Err(DomainError::not_found("force element", element_id));
            }
            let own = decision
                .steps
                .iter()
                .chain(std::iter::once(step))
                .map(|s| (&decision.id, s));
            ElementTimeline::build(plan, element_id, own, &decision.supersedes)?;
        }
        Step::TransferOpcon { conditions, .. } => {
            if let Some(missing) = conditions
                .iter()
                .find(|c| !plan.conditions.contains_key(*c))
            {
                return Err(DomainError::not_found("condition", missing));
            }
            if decision
                .steps
                .iter()
                .any(|s| matches!(s, Step::TransferOpcon { .. }))
            {
                return Err(DomainError::rule(
                    "opcon_transfer_twice",
                    format!(
                        "decision {} already schedules the OPCON transfer",
                        decision.id
                    ),
                ));
            }
        }
        Step::AmendClause { clause_id, .. } => {
            if !plan.clauses.contains_key(clause_id) {
                return Err(DomainError::not_found("agreement clause", clause_id));
            }
        }
        Step::InvestCapability { investment_id, .. } => {
            if plan.investments.contains_key(investment_id) {
                return Err(DomainError::already_exists("investment", investment_id));
            }
        }
        Step::ChangeCommandArrangement { .. } => {}
    }
    Ok(())
}

/// Re-checks every element a decision touches against the plan as adopted now: another decision
/// may have been adopted since its steps were planned.
fn check_adoption(plan: &Plan, decision: &Decision) -> Result<(), DomainError> {
    let mut by_element: BTreeMap<&ElementId, Vec<(&DecisionId, &Step)>> = BTreeMap::new();
    for step in &decision.steps {
        if let Some(id) = step.element_id() {
            by_element.entry(id).or_default().push((&decision.id, step));
        }
    }
    // Superseding a decision drops its steps: every element they touched must stay valid
    // without them (an element it added may still be changed by other adopted decisions).
    for old in decision
        .supersedes
        .iter()
        .filter_map(|id| plan.decisions.get(id))
    {
        for step in &old.steps {
            if let Some(id) = step.element_id() {
                by_element.entry(id).or_default();
            }
        }
    }
    let excluded: BTreeSet<DecisionId> = decision.supersedes.clone();
    let transfers_opcon = |d: &Decision| {
        d.steps
            .iter()
            .any(|s| matches!(s, Step::TransferOpcon { .. }))
    };
    let other_transfer = plan
        .adopted()
        .find(|d| !excluded.contains(&d.id) && transfers_opcon(d));
    if let (true, Some(other)) = (transfers_opcon(decision), other_transfer) {
        return Err(DomainError::rule(
            "opcon_transfer_twice",
            format!(
                "decision {} already schedules the OPCON transfer; supersede it instead",
                other.id
            ),
        ));
    }
    for (element_id, steps) in by_element {
        ElementTimeline::build(plan, element_id, steps, &excluded)?;
    }
    Ok(())
}
