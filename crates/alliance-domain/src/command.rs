//! Commands: what a planner asks to change.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::access::{Grant, PlanRole};
use crate::conditions::{ConstraintRule, Prerequisite};
use crate::ids::{ClauseId, ConditionId, ConstraintId, DecisionId, PlanId, TeamId, Version};
use crate::model::{
    Actor, AgreementKind, CapabilityArea, ClauseStatus, ConditionStatus, Date, ForceElementSpec,
    Side, SimulationRun, Step,
};
use crate::witness::HeadWitness;

/// Who asks, authenticated at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandContext {
    pub actor: Actor,
}

/// A change a planner asks for. `decide` turns it into events or refuses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    CreatePlan {
        plan_id: PlanId,
        name: String,
        #[serde(default)]
        description: String,
        horizon_start: Date,
        horizon_end: Date,
        /// The roles teams hold on the new plan from the start (besides admin for the team that
        /// creates it).
        #[serde(default)]
        grants: Vec<Grant>,
    },
    /// Decided against the parent plan folded to `parent_version`; the resulting event opens
    /// the new plan's stream.
    BranchPlan {
        new_plan_id: PlanId,
        parent_version: Version,
        name: String,
        #[serde(default)]
        description: String,
    },
    /// Baseline inventory: a force element present from a date, not a change to the posture.
    RegisterForceElement {
        element: ForceElementSpec,
        present_from: Date,
    },
    RecordCapabilityLevel {
        side: Side,
        area: CapabilityArea,
        level: u32,
        as_of: Date,
    },
    DefineAgreementClause {
        clause_id: ClauseId,
        agreement: AgreementKind,
        title: String,
        status: ClauseStatus,
        since: Date,
    },
    DefineCondition {
        condition_id: ConditionId,
        title: String,
        #[serde(default)]
        description: String,
        area: Option<CapabilityArea>,
        /// Required level on the 0–100 capability scale, when the condition is measurable so.
        threshold: Option<u32>,
    },
    AssessCondition {
        condition_id: ConditionId,
        assessed_on: Date,
        status: ConditionStatus,
        value: Option<u32>,
        #[serde(default)]
        note: String,
    },
    ProposeDecision {
        decision_id: DecisionId,
        title: String,
        rationale: String,
        effective_date: Date,
        required_sides: BTreeSet<Side>,
        #[serde(default)]
        supersedes: BTreeSet<DecisionId>,
    },
    /// Adds a dated step to a proposed decision that no side has endorsed yet.
    PlanStep {
        decision_id: DecisionId,
        #[serde(flatten)]
        step: Step,
    },
    /// Endorses a decision for the caller's side.
    EndorseDecision {
        decision_id: DecisionId,
    },
    /// Adopts an endorsed decision. A decision that would add a finding to the adopted plan is
    /// refused unless each such finding's id is acknowledged here (recorded with the adoption).
    AdoptDecision {
        decision_id: DecisionId,
        #[serde(default)]
        acknowledged_findings: BTreeSet<String>,
    },
    RejectDecision {
        decision_id: DecisionId,
        reason: String,
    },
    WithdrawDecision {
        decision_id: DecisionId,
        reason: String,
    },
    /// Records a completed simulation run in the plan's history.
    /// Grants `role` on the plan to `team` (admins only).
    GrantRole {
        team: TeamId,
        role: PlanRole,
    },
    /// Revokes `role` on the plan from `team` (admins only; the last admin stays).
    RevokeRole {
        team: TeamId,
        role: PlanRole,
    },
    RecordSimulationRun {
        run: SimulationRun,
    },
    /// Adds a prerequisite to a proposed decision that no side has endorsed yet.
    RequirePrerequisite {
        decision_id: DecisionId,
        prerequisite: Prerequisite,
    },
    /// Defines a plan-level constraint the posture must keep.
    DefineConstraint {
        constraint_id: ConstraintId,
        title: String,
        rule: ConstraintRule,
        side: Option<Side>,
        authority: String,
        /// The first date the rule applies; unset: from the plan's horizon start.
        #[serde(default)]
        since: Option<Date>,
    },
    /// Records a certification or waiver that lifts a constraint from a date.
    WaiveConstraint {
        constraint_id: ConstraintId,
        from: Date,
        authority: String,
        #[serde(default)]
        note: String,
    },
    /// Counter-signs the plan's head at `version` (auditors of either government).
    WitnessHead {
        version: Version,
        head_hash: String,
        witnesses: Vec<HeadWitness>,
    },
    /// Has the writer sign the plan's head at `version`: its signature on the event covers every
    /// record up to it.
    SignHead {
        version: Version,
        head_hash: String,
    },
}

impl Command {
    /// A stable name, as used in RPC and log records.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreatePlan { .. } => "CreatePlan",
            Command::BranchPlan { .. } => "BranchPlan",
            Command::RegisterForceElement { .. } => "RegisterForceElement",
            Command::RecordCapabilityLevel { .. } => "RecordCapabilityLevel",
            Command::DefineAgreementClause { .. } => "DefineAgreementClause",
            Command::DefineCondition { .. } => "DefineCondition",
            Command::AssessCondition { .. } => "AssessCondition",
            Command::ProposeDecision { .. } => "ProposeDecision",
            Command::PlanStep { step, .. } => match step {
                Step::AddElement { .. } => "AddForceElement",
                Step::WithdrawElement { .. } => "WithdrawForceElement",
                Step::ReduceElement { .. } => "ReduceForceElement",
                Step::RelocateElement { .. } => "RelocateForceElement",
                Step::TransferOpcon { .. } => "ScheduleOpconTransfer",
                Step::ChangeCommandArrangement { .. } => "ChangeCommandArrangement",
                Step::AmendClause { .. } => "AmendAgreementClause",
                Step::InvestCapability { .. } => "PlanCapabilityInvestment",
                Step::AssignMission { .. } => "AssignMission",
            },
            Command::EndorseDecision { .. } => "EndorseDecision",
            Command::AdoptDecision { .. } => "AdoptDecision",
            Command::RejectDecision { .. } => "RejectDecision",
            Command::WithdrawDecision { .. } => "WithdrawDecision",
            Command::RecordSimulationRun { .. } => "RecordSimulationRun",
            Command::GrantRole { .. } => "GrantRole",
            Command::RevokeRole { .. } => "RevokeRole",
            Command::RequirePrerequisite { .. } => "RequirePrerequisite",
            Command::DefineConstraint { .. } => "DefineConstraint",
            Command::WaiveConstraint { .. } => "WaiveConstraint",
            Command::WitnessHead { .. } => "WitnessHead",
            Command::SignHead { .. } => "SignHead",
        }
    }

    /// The plan a create or branch command makes; `None` for a command that edits a plan.
    pub fn new_plan(&self) -> Option<PlanId> {
        match self {
            Command::CreatePlan { plan_id, .. } => Some(*plan_id),
            Command::BranchPlan { new_plan_id, .. } => Some(*new_plan_id),
            _ => None,
        }
    }
}
