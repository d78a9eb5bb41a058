//! The rules of a decision's lifecycle beyond its fields: which decision may still change, each
//! new step against the plan and the decision's other steps, and adoption re-checked against
//! what was adopted meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::DomainError;
use crate::ids::{DecisionId, ElementId};
use crate::model::{DecisionStatus, Step};
use crate::state::{Decision, Plan};
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
        Step::ChangeCommandArrangement { .. } => {}
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
