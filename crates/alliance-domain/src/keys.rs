//! The grain of concurrent editing: what a command reads and what an event writes.
//!
//! A command based on version `v` conflicts only with events after `v` that wrote a key the
//! command touches, so edits to different parts of one plan never block each other.

use std::collections::BTreeSet;

use crate::command::{Command, CommandContext};
use crate::event::Event;
use crate::ids::{
    ClauseId, ConditionId, ConstraintId, DecisionId, ElementId, InvestmentId, TeamId,
};
use crate::model::{CapabilityArea, Side, Step};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// The plan's own name, horizon and lineage.
    Plan,
    /// A decision's content and lifecycle.
    Decision(DecisionId),
    /// One side's endorsement of a decision (so the two sides can endorse at once).
    Endorsement(DecisionId, Side),
    Element(ElementId),
    Condition(ConditionId),
    Clause(ClauseId),
    Investment(InvestmentId),
    CommandArrangement,
    Capability(Side, CapabilityArea),
    /// A recorded simulation run.
    SimulationRun(uuid::Uuid),
    /// The roles one team holds on the plan.
    Access(TeamId),
    /// A plan-level constraint and its waivers.
    Constraint(ConstraintId),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Plan => write!(f, "plan"),
            Key::Decision(id) => write!(f, "decision/{id}"),
            Key::Endorsement(id, side) => write!(f, "decision/{id}/endorsement/{side:?}"),
            Key::Element(id) => write!(f, "element/{id}"),
            Key::Condition(id) => write!(f, "condition/{id}"),
            Key::Clause(id) => write!(f, "clause/{id}"),
            Key::Investment(id) => write!(f, "investment/{id}"),
            Key::CommandArrangement => write!(f, "command-arrangement"),
            Key::Capability(side, area) => write!(f, "capability/{side:?}/{area:?}"),
            Key::SimulationRun(id) => write!(f, "simulation-run/{id}"),
            Key::Access(team) => write!(f, "access/{team}"),
            Key::Constraint(id) => write!(f, "constraint/{id}"),
        }
    }
}

/// Keys of a step; a command scheduling the OPCON transfer also reads its conditions, the event
/// writes only the arrangement.
fn step_keys(decision_id: &DecisionId, step: &Step, reads: bool, keys: &mut BTreeSet<Key>) {
    keys.insert(Key::Decision(decision_id.clone()));
    if let Some(element_id) = step.element_id() {
        keys.insert(Key::Element(element_id.clone()));
    }
    match step {
        Step::TransferOpcon { conditions, .. } => {
            keys.insert(Key::CommandArrangement);
            if reads {
                keys.extend(conditions.iter().cloned().map(Key::Condition));
            }
        }
        Step::ChangeCommandArrangement { .. } | Step::AssignMission { .. } => {
            keys.insert(Key::CommandArrangement);
        }
        Step::AmendClause { clause_id, .. } => {
            keys.insert(Key::Clause(clause_id.clone()));
        }
        Step::InvestCapability { investment_id, .. } => {
            keys.insert(Key::Investment(investment_id.clone()));
        }
        Step::AddElement { .. }
        | Step::WithdrawElement { .. }
        | Step::ReduceElement { .. }
        | Step::RelocateElement { .. } => {}
    }
}

impl Command {
    /// Everything this command reads to decide: the grain of its conflict check.
    pub fn keys(&self, ctx: &CommandContext) -> BTreeSet<Key> {
        let mut keys = BTreeSet::new();
        match self {
            Command::CreatePlan { .. } | Command::BranchPlan { .. } => {
                keys.insert(Key::Plan);
            }
            Command::RegisterForceElement { element, .. } => {
                keys.insert(Key::Element(element.id.clone()));
            }
            Command::RecordCapabilityLevel { side, area, .. } => {
                keys.insert(Key::Capability(*side, *area));
            }
            Command::DefineAgreementClause { clause_id, .. } => {
                keys.insert(Key::Clause(clause_id.clone()));
            }
            Command::DefineCondition { condition_id, .. }
            | Command::AssessCondition { condition_id, .. } => {
                keys.insert(Key::Condition(condition_id.clone()));
            }
            Command::ProposeDecision {
                decision_id,
                supersedes,
                ..
            } => {
                keys.insert(Key::Decision(decision_id.clone()));
                keys.extend(supersedes.iter().cloned().map(Key::Decision));
            }
            Command::PlanStep { decision_id, step } => {
                step_keys(decision_id, step, true, &mut keys)
            }
            Command::EndorseDecision { decision_id } => {
                keys.insert(Key::Decision(decision_id.clone()));
                if let Some(side) = ctx.actor.side {
                    keys.insert(Key::Endorsement(decision_id.clone(), side));
                }
            }
            Command::AdoptDecision { decision_id, .. }
            | Command::RequirePrerequisite { decision_id, .. }
            | Command::RejectDecision { decision_id, .. }
            | Command::WithdrawDecision { decision_id, .. } => {
                keys.insert(Key::Decision(decision_id.clone()));
            }
            Command::RecordSimulationRun { run } => {
                keys.insert(Key::SimulationRun(run.run_id));
            }
            Command::GrantRole { team, .. } | Command::RevokeRole { team, .. } => {
                keys.insert(Key::Access(team.clone()));
                keys.insert(Key::Access(ctx.actor.team.clone()));
            }
            Command::DefineConstraint { constraint_id, .. }
            | Command::WaiveConstraint { constraint_id, .. } => {
                keys.insert(Key::Constraint(constraint_id.clone()));
            }
            // A head already written never changes: nothing later conflicts with vouching for it.
            Command::WitnessHead { .. } | Command::SignHead { .. } => {}
        }
        keys
    }
}

impl Event {
    /// Everything this event changed.
    pub fn keys(&self) -> BTreeSet<Key> {
        let mut keys = BTreeSet::new();
        match self {
            Event::PlanCreated { .. } | Event::PlanBranched { .. } => {
                keys.insert(Key::Plan);
            }
            Event::ForceElementRegistered { element, .. } => {
                keys.insert(Key::Element(element.id.clone()));
            }
            Event::CapabilityLevelRecorded { side, area, .. } => {
                keys.insert(Key::Capability(*side, *area));
            }
            Event::AgreementClauseDefined { clause_id, .. } => {
                keys.insert(Key::Clause(clause_id.clone()));
            }
            Event::ConditionDefined { condition_id, .. }
            | Event::ConditionAssessed { condition_id, .. } => {
                keys.insert(Key::Condition(condition_id.clone()));
            }
            Event::DecisionProposed { decision_id, .. }
            | Event::DecisionAdopted { decision_id }
            | Event::PrerequisiteRequired { decision_id, .. }
            | Event::FindingsAcknowledged { decision_id, .. }
            | Event::DecisionRejected { decision_id, .. }
            | Event::DecisionWithdrawn { decision_id, .. }
            | Event::DecisionSuperseded { decision_id, .. } => {
                keys.insert(Key::Decision(decision_id.clone()));
            }
            Event::StepPlanned { decision_id, step } => {
                step_keys(decision_id, step, false, &mut keys)
            }
            Event::DecisionEndorsed { decision_id, side } => {
                keys.insert(Key::Endorsement(decision_id.clone(), *side));
            }
            Event::SimulationRunRecorded { run } => {
                keys.insert(Key::SimulationRun(run.run_id));
            }
            Event::RoleGranted { grant } | Event::RoleRevoked { grant } => {
                keys.insert(Key::Access(grant.team.clone()));
            }
            Event::ConstraintDefined { constraint_id, .. }
            | Event::ConstraintWaived { constraint_id, .. } => {
                keys.insert(Key::Constraint(constraint_id.clone()));
            }
            Event::HeadWitnessed { .. } | Event::HeadSigned { .. } => {}
        }
        keys
    }
}
