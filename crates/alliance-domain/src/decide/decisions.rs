//! The rules of a decision's lifecycle beyond its fields: which decision may still change, each
//! new step against the plan and the decision's other steps, and adoption re-checked against
//! what was adopted meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::CommandContext;
use crate::conditions::Prerequisite;
use crate::error::DomainError;
use crate::event::Event;
use crate::findings::{Finding, all_findings, new_findings};
use crate::ids::{DecisionId, ElementId};
use crate::model::{DecisionStatus, Step};
use crate::state::{Decision, Plan, fold};
use crate::timeline::ElementTimeline;

/// A decision that is still open (proposed).
pub(super) fn open_decision<'a>(
    plan: &'a Plan,
    id: &DecisionId,
) -> Result<&'a Decision, DomainError> {
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

/// Checks one new step against the adopted plan and the other steps of its decision.
pub(super) fn check_step(plan: &Plan, decision: &Decision, step: &Step) -> Result<(), DomainError> {
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
        Step::ChangeCommandArrangement { .. } | Step::AssignMission { .. } => {}
    }
    Ok(())
}

/// Re-checks every element a decision touches against the plan as adopted now: another decision
/// may have been adopted since its steps were planned.
pub(super) fn check_adoption(plan: &Plan, decision: &Decision) -> Result<(), DomainError> {
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

/// Only the decision's owner changes it, and only before any side endorsed it: an endorsement
/// covers the decision as it stood.
pub(super) fn check_unendorsed_owner(
    decision: &Decision,
    ctx: &CommandContext,
    what: &str,
) -> Result<(), DomainError> {
    let id = &decision.id;
    if decision.owner_team != ctx.actor.team {
        return Err(DomainError::rule(
            "not_owner",
            format!(
                "decision {id} is owned by {}; only its owner {what}",
                decision.owner_team
            ),
        ));
    }
    if let Some(side) = decision.endorsements.first() {
        return Err(DomainError::rule(
            "already_endorsed",
            format!(
                "decision {id} is already endorsed by the {} side; propose a new decision instead of changing an endorsed one",
                side.name()
            ),
        ));
    }
    Ok(())
}

/// A prerequisite names what the plan knows, and never the decision itself.
pub(super) fn check_prerequisite(
    plan: &Plan,
    decision: &Decision,
    prerequisite: &Prerequisite,
) -> Result<(), DomainError> {
    match prerequisite {
        Prerequisite::AfterDecision { decision_id, .. } => {
            if decision_id == &decision.id {
                return Err(DomainError::invalid(
                    "prerequisite.decision_id",
                    "a decision cannot depend on itself",
                ));
            }
            if !plan.decisions.contains_key(decision_id) {
                return Err(DomainError::not_found("decision", decision_id));
            }
            if depends_on(plan, decision_id, &decision.id) {
                return Err(DomainError::rule(
                    "prerequisite_cycle",
                    format!(
                        "decision {decision_id} already depends on decision {}; the two cannot each come first",
                        decision.id
                    ),
                ));
            }
        }
        Prerequisite::ConditionsMet { conditions } => {
            if let Some(missing) = conditions
                .iter()
                .find(|c| !plan.conditions.contains_key(*c))
            {
                return Err(DomainError::not_found("condition", missing));
            }
        }
        Prerequisite::CapabilityReached { .. } => {}
    }
    if decision.prerequisites.contains(prerequisite) {
        return Err(DomainError::already_exists(
            "prerequisite",
            format!("of decision {}", decision.id),
        ));
    }
    Ok(())
}

/// Whether `from` depends on `on`, directly or through other decisions.
fn depends_on(plan: &Plan, from: &DecisionId, on: &DecisionId) -> bool {
    let mut stack = vec![from];
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if id == on {
            return true;
        }
        if !seen.insert(id) {
            continue;
        }
        if let Some(decision) = plan.decisions.get(id) {
            stack.extend(decision.prerequisites.iter().filter_map(|p| match p {
                Prerequisite::AfterDecision { decision_id, .. } => Some(decision_id),
                _ => None,
            }));
        }
    }
    false
}

/// Refuses an adoption that would add findings to the adopted plan unless each is acknowledged;
/// returns the acknowledged ones to record. An acknowledgement of a finding the adoption does not
/// add is refused first (a malformed request), so the record never claims what did not happen.
pub(super) fn check_findings(
    plan: &Plan,
    decision_id: &DecisionId,
    adoption: &[Event],
    acknowledged: &BTreeSet<String>,
) -> Result<BTreeSet<String>, DomainError> {
    let before = all_findings(plan, false);
    let after_plan = fold(plan.clone(), adoption);
    let after = all_findings(&after_plan, false);
    let new = new_findings(&before, &after);
    let new_ids: BTreeSet<&String> = new.iter().map(|f| &f.id).collect();
    if let Some(stray) = acknowledged.iter().find(|id| !new_ids.contains(id)) {
        return Err(DomainError::invalid(
            "acknowledged_findings",
            format!("adopting decision {decision_id} adds no finding {stray}"),
        ));
    }
    let unacknowledged: Vec<&Finding> = new
        .iter()
        .copied()
        .filter(|f| !acknowledged.contains(&f.id))
        .collect();
    if !unacknowledged.is_empty() {
        return Err(DomainError::NewFindings {
            decision_id: decision_id.to_string(),
            findings: unacknowledged
                .into_iter()
                .map(|f| (f.id.clone(), f.message.clone()))
                .collect(),
        });
    }
    Ok(acknowledged.clone())
}
