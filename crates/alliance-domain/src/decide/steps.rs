//! The dated steps of a proposed decision: force elements added, withdrawn, reduced or
//! relocated, the OPCON transfer and other command arrangements, agreement clauses amended,
//! capability investments and mission assignments. Each step's fields are checked beside the
//! rules it meets against the plan and its decision's other steps.

use super::decisions::changeable;
use super::fields::{MAX_LEVEL, MAX_NAME, MAX_PERSONNEL, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::command::{Command, CommandContext};
use crate::error::DomainError;
use crate::event::Event;
use crate::model::Step;
use crate::state::{Decision, Plan};
use crate::timeline::ElementTimeline;

/// Cost of one capability investment, in thousands of U.S. dollars ($10 trillion).
pub const MAX_COST_KUSD: u64 = 10_000_000_000;

pub(super) fn decide(plan: &Plan, command: &Command, ctx: &CommandContext) -> Decided {
    let Command::PlanStep { decision_id, step } = command else {
        return Err(elsewhere(command));
    };
    let mut v = Violations::default();
    step_violations(&mut v, plan, step);
    v.edits(plan)?;
    let decision = changeable(plan, decision_id, ctx, "adds steps")?;
    check_step(plan, decision, step)?;
    Ok(vec![Event::StepPlanned {
        decision_id: decision_id.clone(),
        step: step.clone(),
    }])
}

/// The field checks of one step: its date inside the horizon, and its own fields.
fn step_violations(v: &mut Violations, plan: &Plan, step: &Step) {
    let date_field = match step {
        Step::InvestCapability { .. } => "delivery",
        _ => "on",
    };
    v.date(plan, date_field, step.date());
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
            cost_kusd,
            ..
        } => {
            v.at_most("cost_kusd", *cost_kusd, MAX_COST_KUSD);
            v.text("description", description, true, MAX_TEXT);
            v.check(
                (1..=MAX_LEVEL).contains(level_gain),
                "level_gain",
                "must be between 1 and 100",
            );
        }
        Step::AssignMission {
            lead, supporting, ..
        } => v.check(
            *supporting != Some(*lead),
            "supporting",
            "the supporting side must be the other side, or none",
        ),
        Step::WithdrawElement { .. } | Step::AmendClause { .. } => {}
    }
}

/// Checks one new step against the adopted plan and the other steps of its decision.
fn check_step(plan: &Plan, decision: &Decision, step: &Step) -> Result<(), DomainError> {
    match step {
        Step::AddElement { element, .. } => {
            if plan.has_element(&element.id) {
                return Err(DomainError::already_exists("force element", &element.id));
            }
        }
        Step::WithdrawElement { element_id, .. }
        | Step::ReduceElement { element_id, .. }
        | Step::RelocateElement { element_id, .. } => {
            if !plan.has_element(element_id) {
                return Err(DomainError::not_found("force element", element_id));
            }
            let own = decision
                .steps
                .iter()
                .chain(std::iter::once(step))
                .map(|s| (&decision.id, s));
            ElementTimeline::build(plan, element_id, own, decision.supersedes())?;
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
