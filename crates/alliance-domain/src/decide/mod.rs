//! Every planning rule lives here: a command becomes events, or a typed refusal.
//!
//! [`decide`] checks the command's fields (`validate`), then applies the rule of its kind; the
//! rules of a decision's lifecycle are in `decisions`.

use std::collections::BTreeSet;

use crate::access::{Grant, PlanRole};
use crate::command::{Command, CommandContext};
use crate::conditions::Waiver;
use crate::error::DomainError;
use crate::event::Event;
use crate::model::DecisionStatus;
use crate::state::Plan;

mod decisions;
mod validate;

use decisions::{
    check_adoption, check_findings, check_prerequisite, check_step, check_unendorsed_owner,
    open_decision,
};
use validate::validate;
pub use validate::{
    MAX_COST_KUSD, MAX_EQUIPMENT, MAX_LAG_MONTHS, MAX_PERSONNEL, MAX_PERSONNEL_BOUND,
    MAX_SIMULATION_MONTHS, MAX_SIMULATION_TRIALS,
};

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
            check_unendorsed_owner(decision, ctx, "adds steps")?;
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
        Command::AdoptDecision {
            decision_id,
            acknowledged_findings,
        } => {
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
            let acknowledged = check_findings(plan, decision_id, &events, acknowledged_findings)?;
            if !acknowledged.is_empty() {
                events.push(Event::FindingsAcknowledged {
                    decision_id: decision_id.clone(),
                    findings: acknowledged,
                });
            }
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
        Command::RequirePrerequisite {
            decision_id,
            prerequisite,
        } => {
            let decision = open_decision(plan, decision_id)?;
            check_unendorsed_owner(decision, ctx, "adds prerequisites")?;
            check_prerequisite(plan, decision, prerequisite)?;
            Ok(vec![Event::PrerequisiteRequired {
                decision_id: decision_id.clone(),
                prerequisite: prerequisite.clone(),
            }])
        }
        Command::DefineConstraint {
            constraint_id,
            title,
            rule,
            side,
            authority,
            since,
        } => {
            if plan.constraints.contains_key(constraint_id) {
                return Err(DomainError::already_exists("constraint", constraint_id));
            }
            Ok(vec![Event::ConstraintDefined {
                constraint_id: constraint_id.clone(),
                title: title.clone(),
                rule: rule.clone(),
                side: *side,
                authority: authority.clone(),
                since: *since,
            }])
        }
        Command::WaiveConstraint {
            constraint_id,
            from,
            authority,
            note,
        } => {
            let constraint = plan
                .constraints
                .get(constraint_id)
                .ok_or_else(|| DomainError::not_found("constraint", constraint_id))?;
            if let Some(owner) = constraint
                .side
                .filter(|owner| ctx.actor.side != Some(*owner))
            {
                return Err(DomainError::rule(
                    "waiver_by_other_side",
                    format!(
                        "constraint {constraint_id} is a {} rule; only the {} side certifies a waiver of it",
                        owner.name(),
                        owner.name()
                    ),
                ));
            }
            if let (None, Some(side)) = (constraint.side, ctx.actor.side) {
                return Err(DomainError::rule(
                    "waiver_by_one_side",
                    format!(
                        "constraint {constraint_id} is an alliance rule; the {} side alone does not lift it (the alliance's adopters do)",
                        side.name()
                    ),
                ));
            }
            Ok(vec![Event::ConstraintWaived {
                constraint_id: constraint_id.clone(),
                waiver: Waiver {
                    from: *from,
                    authority: authority.clone(),
                    note: note.clone(),
                    certified_by: ctx.actor.team.clone(),
                },
            }])
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
        Command::WitnessHead { .. } | Command::SignHead { .. } => crate::witness::decide(command),
    }
}
