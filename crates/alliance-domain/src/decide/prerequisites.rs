//! The prerequisites of a proposed decision: another decision first (with a lag), conditions
//! assessed met, a capability reached.

use std::collections::BTreeSet;

use super::decisions::changeable;
use super::fields::Violations;
use super::{Decided, elsewhere};
use crate::command::{Command, CommandContext};
use crate::conditions::Prerequisite;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::DecisionId;
use crate::state::{Decision, Plan};

/// The lag a prerequisite asks for after another decision, at most (50 years).
pub const MAX_LAG_MONTHS: u32 = 600;

pub(super) fn decide(plan: &Plan, command: &Command, ctx: &CommandContext) -> Decided {
    let Command::RequirePrerequisite {
        decision_id,
        prerequisite,
    } = command
    else {
        return Err(elsewhere(command));
    };
    let mut v = Violations::default();
    match prerequisite {
        Prerequisite::AfterDecision { lag_months, .. } => {
            v.at_most("prerequisite.lag_months", *lag_months, MAX_LAG_MONTHS);
        }
        Prerequisite::ConditionsMet { conditions } => {
            v.check(
                !conditions.is_empty(),
                "prerequisite.conditions",
                "name at least one condition",
            );
            v.items("prerequisite.conditions", conditions.len());
        }
        Prerequisite::CapabilityReached { level, .. } => {
            v.level("prerequisite.level", *level);
        }
    }
    v.edits(plan)?;
    let decision = changeable(plan, decision_id, ctx, "adds prerequisites")?;
    check_prerequisite(plan, decision, prerequisite)?;
    Ok(vec![Event::PrerequisiteRequired {
        decision_id: decision_id.clone(),
        prerequisite: prerequisite.clone(),
    }])
}

/// A prerequisite names what the plan knows, and never the decision itself.
fn check_prerequisite(
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
    if decision.prerequisites().contains(prerequisite) {
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
            stack.extend(decision.prerequisites().iter().filter_map(|p| match p {
                Prerequisite::AfterDecision { decision_id, .. } => Some(decision_id),
                _ => None,
            }));
        }
    }
    false
}
