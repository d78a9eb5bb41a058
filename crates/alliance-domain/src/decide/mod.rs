//! Every planning rule lives here: a command becomes events, or a typed refusal.
//!
//! [`decide`] hands a command to the module of its family, which checks its fields (every
//! violation at once, with the shared collector of `fields`), then that the plan exists (or, for
//! a new plan, that it does not), then applies the rule of its kind:
//! - `plans`: creating and branching a plan;
//! - `roles`: the roles teams hold on it;
//! - `baseline`: registered force elements, capability levels, agreement clauses;
//! - `conditions` and `constraints`: what gates decisions and what the posture must keep;
//! - `decisions`: a decision's lifecycle, from proposal to adoption;
//! - `steps` and `prerequisites`: what a proposed decision does, and what must come first;
//! - `runs`: recorded simulation runs;
//! - heads witnessed or signed, in `crate::witness`.

use crate::command::{Command, CommandContext};
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

mod baseline;
mod conditions;
mod constraints;
mod decisions;
mod fields;
mod plans;
mod prerequisites;
mod roles;
mod runs;
mod steps;

pub use constraints::MAX_PERSONNEL_BOUND;
pub use fields::{MAX_EQUIPMENT, MAX_PERSONNEL};
pub use prerequisites::MAX_LAG_MONTHS;
pub use runs::{MAX_SIMULATION_MONTHS, MAX_SIMULATION_TRIALS};
pub use steps::MAX_COST_KUSD;

/// The events a command produces, or its refusal.
type Decided = Result<Vec<Event>, DomainError>;

/// Decides a command against the current state of its plan.
///
/// For `BranchPlan`, `plan` is the parent folded to the version branched at; the event opens the
/// new plan's stream.
pub fn decide(
    plan: &Plan,
    command: &Command,
    ctx: &CommandContext,
) -> Result<Vec<Event>, DomainError> {
    let events = decide_family(plan, command, ctx)?;
    let after = u64::try_from(events.len())
        .ok()
        .and_then(|added| plan.version.checked_add(added));
    if after.is_none_or(|after| after > crate::MAX_VERSION) {
        return Err(DomainError::rule(
            "plan_full",
            format!(
                "a plan holds at most {} events and this one has {}; branch it to plan on",
                crate::MAX_VERSION,
                plan.version
            ),
        ));
    }
    Ok(events)
}

/// The events of `command`, as the family of rules it belongs to decides them.
fn decide_family(
    plan: &Plan,
    command: &Command,
    ctx: &CommandContext,
) -> Result<Vec<Event>, DomainError> {
    match command {
        Command::CreatePlan { .. } | Command::BranchPlan { .. } => {
            plans::decide(plan, command, ctx)
        }
        Command::GrantRole { .. } | Command::RevokeRole { .. } => roles::decide(plan, command),
        Command::RegisterForceElement { .. }
        | Command::RecordCapabilityLevel { .. }
        | Command::DefineAgreementClause { .. } => baseline::decide(plan, command),
        Command::DefineCondition { .. } | Command::AssessCondition { .. } => {
            conditions::decide(plan, command)
        }
        Command::DefineConstraint { .. } | Command::WaiveConstraint { .. } => {
            constraints::decide(plan, command, ctx)
        }
        Command::ProposeDecision { .. }
        | Command::EndorseDecision { .. }
        | Command::AdoptDecision { .. }
        | Command::RejectDecision { .. }
        | Command::WithdrawDecision { .. } => decisions::decide(plan, command, ctx),
        Command::PlanStep { .. } => steps::decide(plan, command, ctx),
        Command::RequirePrerequisite { .. } => prerequisites::decide(plan, command, ctx),
        Command::RecordSimulationRun { .. } => runs::decide(plan, command),
        Command::WitnessHead { .. } | Command::SignHead { .. } => {
            let mut v = fields::Violations::default();
            v.0.extend(crate::witness::violations(plan, command));
            v.edits(plan)?;
            crate::witness::decide(command)
        }
    }
}

/// A family's answer to a command of another family, which [`decide`] never hands it.
fn elsewhere(command: &Command) -> DomainError {
    DomainError::rule(
        "misrouted",
        format!("{} is decided by another family of rules", command.name()),
    )
}
