//! Events: what happened to a plan, in the past tense. Applying one never fails.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::access::Grant;
use crate::conditions::{ConstraintRule, Prerequisite, Waiver};
use crate::ids::{ClauseId, ConditionId, ConstraintId, DecisionId, PlanId, TeamId, Version};
use crate::model::{
    AgreementKind, CapabilityArea, ClauseStatus, ConditionStatus, Date, ForceElementSpec, Side,
    SimulationRun, Step,
};
use crate::witness::HeadWitness;

/// Schema version of the events this build writes.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlanCreated {
        plan_id: PlanId,
        name: String,
        description: String,
        horizon_start: Date,
        horizon_end: Date,
        /// The roles teams hold from the start, the creating team's admin role among them.
        #[serde(default)]
        grants: Vec<Grant>,
    },
    /// Opens a branch's stream: its history is the parent's up to `parent_version`, then its own.
    PlanBranched {
        plan_id: PlanId,
        parent_plan_id: PlanId,
        parent_version: Version,
        name: String,
        description: String,
    },
    ForceElementRegistered {
        element: ForceElementSpec,
        present_from: Date,
    },
    CapabilityLevelRecorded {
        side: Side,
        area: CapabilityArea,
        level: u32,
        as_of: Date,
    },
    AgreementClauseDefined {
        clause_id: ClauseId,
        agreement: AgreementKind,
        title: String,
        status: ClauseStatus,
        since: Date,
    },
    ConditionDefined {
        condition_id: ConditionId,
        title: String,
        description: String,
        area: Option<CapabilityArea>,
        threshold: Option<u32>,
    },
    ConditionAssessed {
        condition_id: ConditionId,
        assessed_on: Date,
        status: ConditionStatus,
        value: Option<u32>,
        note: String,
    },
    DecisionProposed {
        decision_id: DecisionId,
        title: String,
        rationale: String,
        owner_team: TeamId,
        effective_date: Date,
        required_sides: BTreeSet<Side>,
        supersedes: BTreeSet<DecisionId>,
    },
    /// A dated step was added to a proposed decision. On the wire each kind of step is its own
    /// event type (see [`Event::event_type`]).
    StepPlanned {
        decision_id: DecisionId,
        step: Step,
    },
    DecisionEndorsed {
        decision_id: DecisionId,
        side: Side,
    },
    DecisionAdopted {
        decision_id: DecisionId,
    },
    DecisionRejected {
        decision_id: DecisionId,
        reason: String,
    },
    DecisionWithdrawn {
        decision_id: DecisionId,
        reason: String,
    },
    DecisionSuperseded {
        decision_id: DecisionId,
        superseded_by: DecisionId,
    },
    SimulationRunRecorded {
        run: SimulationRun,
    },
    RoleGranted {
        grant: Grant,
    },
    RoleRevoked {
        grant: Grant,
    },
    PrerequisiteRequired {
        decision_id: DecisionId,
        prerequisite: Prerequisite,
    },
    /// The adopters accepted these findings when adopting the decision (recorded last by the
    /// adoption, after its `DecisionAdopted` and any `DecisionSuperseded`).
    FindingsAcknowledged {
        decision_id: DecisionId,
        findings: BTreeSet<String>,
    },
    ConstraintDefined {
        constraint_id: ConstraintId,
        title: String,
        rule: ConstraintRule,
        side: Option<Side>,
        authority: String,
        #[serde(default)]
        since: Option<Date>,
    },
    ConstraintWaived {
        constraint_id: ConstraintId,
        waiver: Waiver,
    },
    /// Auditors counter-signed the plan's head at `version`.
    HeadWitnessed {
        version: Version,
        head_hash: String,
        witnesses: Vec<HeadWitness>,
    },
    /// The writer signed the plan's head at `version` (its signature on this event).
    HeadSigned {
        version: Version,
        head_hash: String,
    },
}

impl Event {
    /// The stable event type name (the protobuf message name without its package).
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::PlanCreated { .. } => "PlanCreated",
            Event::PlanBranched { .. } => "PlanBranched",
            Event::ForceElementRegistered { .. } => "ForceElementRegistered",
            Event::CapabilityLevelRecorded { .. } => "CapabilityLevelRecorded",
            Event::AgreementClauseDefined { .. } => "AgreementClauseDefined",
            Event::ConditionDefined { .. } => "ConditionDefined",
            Event::ConditionAssessed { .. } => "ConditionAssessed",
            Event::DecisionProposed { .. } => "DecisionProposed",
            Event::StepPlanned { step, .. } => match step {
                Step::AddElement { .. } => "ForceElementAdditionPlanned",
                Step::WithdrawElement { .. } => "ForceElementWithdrawalPlanned",
                Step::ReduceElement { .. } => "ForceElementReductionPlanned",
                Step::RelocateElement { .. } => "ForceElementRelocationPlanned",
                Step::TransferOpcon { .. } => "OpconTransferScheduled",
                Step::ChangeCommandArrangement { .. } => "CommandArrangementChangePlanned",
                Step::AmendClause { .. } => "AgreementClauseAmendmentPlanned",
                Step::InvestCapability { .. } => "CapabilityInvestmentPlanned",
                Step::AssignMission { .. } => "MissionAssignmentPlanned",
            },
            Event::DecisionEndorsed { .. } => "DecisionEndorsed",
            Event::DecisionAdopted { .. } => "DecisionAdopted",
            Event::DecisionRejected { .. } => "DecisionRejected",
            Event::DecisionWithdrawn { .. } => "DecisionWithdrawn",
            Event::DecisionSuperseded { .. } => "DecisionSuperseded",
            Event::SimulationRunRecorded { .. } => "SimulationRunRecorded",
            Event::RoleGranted { .. } => "RoleGranted",
            Event::RoleRevoked { .. } => "RoleRevoked",
            Event::PrerequisiteRequired { .. } => "PrerequisiteRequired",
            Event::FindingsAcknowledged { .. } => "FindingsAcknowledged",
            Event::ConstraintDefined { .. } => "ConstraintDefined",
            Event::ConstraintWaived { .. } => "ConstraintWaived",
            Event::HeadWitnessed { .. } => "HeadWitnessed",
            Event::HeadSigned { .. } => "HeadSigned",
        }
    }

    /// The valid (effective) date the event speaks of on the plan's timeline, where one applies.
    pub fn valid_date(&self) -> Option<Date> {
        match self {
            Event::PlanCreated { horizon_start, .. } => Some(*horizon_start),
            Event::ForceElementRegistered { present_from, .. } => Some(*present_from),
            Event::CapabilityLevelRecorded { as_of, .. } => Some(*as_of),
            Event::AgreementClauseDefined { since, .. } => Some(*since),
            Event::ConditionAssessed { assessed_on, .. } => Some(*assessed_on),
            Event::DecisionProposed { effective_date, .. } => Some(*effective_date),
            Event::StepPlanned { step, .. } => Some(step.date()),
            Event::SimulationRunRecorded { run } => Some(run.start),
            Event::ConstraintWaived { waiver, .. } => Some(waiver.from),
            Event::PlanBranched { .. }
            | Event::ConditionDefined { .. }
            | Event::DecisionEndorsed { .. }
            | Event::DecisionAdopted { .. }
            | Event::DecisionRejected { .. }
            | Event::DecisionWithdrawn { .. }
            | Event::DecisionSuperseded { .. }
            | Event::RoleGranted { .. }
            | Event::RoleRevoked { .. }
            | Event::PrerequisiteRequired { .. }
            | Event::FindingsAcknowledged { .. }
            | Event::ConstraintDefined { .. } => None,
            Event::HeadWitnessed { .. } | Event::HeadSigned { .. } => None,
        }
    }
}
