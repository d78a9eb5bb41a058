//! Who may do what on a plan: roles granted to teams, per plan, as events in the plan's history.
//!
//! A command needs one role ([`Command::required_role`]); reading a plan needs any role on it;
//! its audit history needs [`PlanRole::Auditor`] or [`PlanRole::Admin`]. A branch starts with its
//! parent's grants at the version branched from.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Command, Side, Step, TeamId};

/// A part of a plan that editors are scoped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Force elements and their steps (add, withdraw, reduce, relocate).
    Forces,
    /// Capability levels and investments.
    Capabilities,
    /// Agreement clauses and their amendments.
    Agreements,
    /// OPCON transfer and command arrangements.
    CommandArrangements,
    /// Transfer conditions and their assessments, and the plan's constraints.
    Conditions,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Forces,
        Section::Capabilities,
        Section::Agreements,
        Section::CommandArrangements,
        Section::Conditions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Forces => "forces",
            Section::Capabilities => "capabilities",
            Section::Agreements => "agreements",
            Section::CommandArrangements => "command_arrangements",
            Section::Conditions => "conditions",
        }
    }
}

/// A role a team holds on one plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlanRole {
    /// Edits one section: registers and records there, proposes decisions and plans their steps
    /// in it.
    Editor(Section),
    /// Endorses decisions for one side.
    Endorser(Side),
    /// Adopts or rejects endorsed decisions (alliance-level approval).
    Adopter,
    /// Reads the plan and its audit history; changes nothing.
    Auditor,
    /// Grants and revokes roles on the plan, and branches it.
    Admin,
}

impl PlanRole {
    /// Every role there is.
    pub fn all() -> Vec<PlanRole> {
        let mut all: Vec<PlanRole> = Section::ALL.into_iter().map(PlanRole::Editor).collect();
        all.extend([
            PlanRole::Endorser(Side::Us),
            PlanRole::Endorser(Side::Rok),
            PlanRole::Adopter,
            PlanRole::Auditor,
            PlanRole::Admin,
        ]);
        all
    }
}

impl fmt::Display for PlanRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanRole::Editor(section) => write!(f, "editor:{}", section.name()),
            PlanRole::Endorser(Side::Us) => f.write_str("endorser:us"),
            PlanRole::Endorser(Side::Rok) => f.write_str("endorser:rok"),
            PlanRole::Adopter => f.write_str("adopter"),
            PlanRole::Auditor => f.write_str("auditor"),
            PlanRole::Admin => f.write_str("admin"),
        }
    }
}

impl FromStr for PlanRole {
    type Err = String;

    /// `editor:forces`, `editor:capabilities`, `editor:agreements`,
    /// `editor:command_arrangements`, `editor:conditions`, `endorser:us`, `endorser:rok`,
    /// `adopter`, `auditor`, `admin`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlanRole::all()
            .into_iter()
            .find(|role| role.to_string() == s)
            .ok_or_else(|| {
                let known: Vec<String> = PlanRole::all().iter().map(ToString::to_string).collect();
                format!("unknown role {s:?}; roles are {}", known.join(", "))
            })
    }
}

impl Serialize for PlanRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PlanRole {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One role held by one team on a plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub team: TeamId,
    pub role: PlanRole,
}

/// What a command needs of the team that issues it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// This role on the plan.
    Role(PlanRole),
    /// An editor role of any section on the plan.
    AnyEditor,
    /// Either role on the plan.
    Either(PlanRole, PlanRole),
    /// An editor role of any section, or admin (branching the plan).
    EditorOrAdmin,
    /// Any role on the plan (reading it, recording an analysis of it).
    AnyRole,
    /// Creating a plan: decided by who the caller is, not by a plan's grants.
    CreatePlans,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Role(role) => write!(f, "{role}"),
            Requirement::Either(a, b) => write!(f, "{a} or {b}"),
            Requirement::AnyEditor => f.write_str("editor (of any section)"),
            Requirement::EditorOrAdmin => f.write_str("editor (of any section) or admin"),
            Requirement::AnyRole => f.write_str("any role on the plan"),
            Requirement::CreatePlans => f.write_str("plan creation"),
        }
    }
}

impl Requirement {
    /// Whether a team holding `roles` meets it.
    pub fn met_by(self, roles: &BTreeSet<PlanRole>) -> bool {
        match self {
            Requirement::Role(role) => roles.contains(&role),
            Requirement::Either(a, b) => roles.contains(&a) || roles.contains(&b),
            Requirement::AnyEditor => roles.iter().any(|r| matches!(r, PlanRole::Editor(_))),
            Requirement::EditorOrAdmin => roles
                .iter()
                .any(|r| matches!(r, PlanRole::Editor(_) | PlanRole::Admin)),
            Requirement::AnyRole => !roles.is_empty(),
            Requirement::CreatePlans => false,
        }
    }
}

/// The section a step edits.
pub fn step_section(step: &Step) -> Section {
    match step {
        Step::AddElement { .. }
        | Step::WithdrawElement { .. }
        | Step::ReduceElement { .. }
        | Step::RelocateElement { .. } => Section::Forces,
        Step::TransferOpcon { .. }
        | Step::ChangeCommandArrangement { .. }
        | Step::AssignMission { .. } => Section::CommandArrangements,
        Step::AmendClause { .. } => Section::Agreements,
        Step::InvestCapability { .. } => Section::Capabilities,
    }
}

impl Command {
    /// The role the issuing team needs on the plan (for endorsement: for `side`, the side the
    /// team endorses for).
    pub fn required_role(&self, side: Option<Side>) -> Requirement {
        use PlanRole::*;
        match self {
            Command::CreatePlan { .. } => Requirement::CreatePlans,
            Command::BranchPlan { .. } => Requirement::EditorOrAdmin,
            Command::RegisterForceElement { .. } => Requirement::Role(Editor(Section::Forces)),
            Command::RecordCapabilityLevel { .. } => {
                Requirement::Role(Editor(Section::Capabilities))
            }
            Command::DefineAgreementClause { .. } => Requirement::Role(Editor(Section::Agreements)),
            Command::DefineCondition { .. }
            | Command::AssessCondition { .. }
            | Command::DefineConstraint { .. } => Requirement::Role(Editor(Section::Conditions)),
            // The decision's owner adds them (checked by `decide`), as it adds steps.
            Command::RequirePrerequisite { .. } => Requirement::AnyEditor,
            // A government certifies for its own rules (`decide` checks the constraint's side);
            // the approvers for the alliance's.
            Command::WaiveConstraint { .. } => match side {
                Some(side) => Requirement::Either(Adopter, Endorser(side)),
                None => Requirement::Role(Adopter),
            },
            Command::ProposeDecision { .. } | Command::WithdrawDecision { .. } => {
                Requirement::AnyEditor
            }
            Command::PlanStep { step, .. } => Requirement::Role(Editor(step_section(step))),
            Command::EndorseDecision { .. } => match side {
                Some(side) => Requirement::Role(Endorser(side)),
                // A team without a side endorses for no one (`decide` says so to an endorser).
                None => Requirement::Either(Endorser(Side::Us), Endorser(Side::Rok)),
            },
            Command::AdoptDecision { .. } => Requirement::Role(Adopter),
            // The approvers, or a side that would have to endorse it.
            Command::RejectDecision { .. } => match side {
                Some(side) => Requirement::Either(Adopter, Endorser(side)),
                None => Requirement::Role(Adopter),
            },
            Command::GrantRole { .. } | Command::RevokeRole { .. } => Requirement::Role(Admin),
            Command::RecordSimulationRun { .. } => Requirement::AnyRole,
            Command::WitnessHead { .. } => Requirement::Role(Auditor),
            Command::SignHead { .. } => Requirement::Either(Auditor, Admin),
        }
    }
}
