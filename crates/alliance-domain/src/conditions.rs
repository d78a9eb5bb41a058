//! What a plan's sequence must respect: the prerequisites a decision names (another decision
//! done first, conditions assessed met, a capability reached) and plan-level constraints
//! (personnel floors and ceilings, a minimum combined capability), with the certifications that
//! lift a constraint from a date.

use serde::{Deserialize, Serialize};

use crate::ids::{ConditionId, ConstraintId, DecisionId, TeamId};
use crate::model::{CapabilityArea, Component, Date, ElementKind, Side};

/// What must hold before a decision's steps take effect. Judged on the date its first step
/// takes effect (its effective date when it has no step).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "prerequisite", rename_all = "snake_case")]
pub enum Prerequisite {
    /// Another decision shapes the plan and its last step took effect at least `lag_months`
    /// earlier ("not before six months after the transfer").
    AfterDecision {
        decision_id: DecisionId,
        #[serde(default)]
        lag_months: u32,
    },
    /// Each named condition's latest assessment on the date is `met`.
    ConditionsMet {
        conditions: std::collections::BTreeSet<ConditionId>,
    },
    /// A side's capability in an area is at least `level` on the date.
    CapabilityReached {
        side: Side,
        area: CapabilityArea,
        level: u32,
    },
}

/// A plan-level rule the posture must keep on every date of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ConstraintRule {
    /// The personnel of `side` (of one component or kind, when named) stays within bounds.
    Personnel {
        side: Side,
        component: Option<Component>,
        kind: Option<ElementKind>,
        min: Option<u64>,
        max: Option<u64>,
    },
    /// The U.S. and ROK capability in an area together stays at or above `min`.
    CombinedCapability { area: CapabilityArea, min: u32 },
}

/// A constraint as its events leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub id: ConstraintId,
    pub title: String,
    pub rule: ConstraintRule,
    /// The government whose rule it is (a statute, a policy); `None` for an alliance rule.
    /// Only that side certifies a waiver of it.
    pub side: Option<Side>,
    /// Where the rule comes from (a statute, an agreement, a planning assumption).
    pub authority: String,
    /// The first date the rule applies; `None`: from the plan's horizon start.
    pub since: Option<Date>,
    pub waivers: Vec<Waiver>,
}

impl Constraint {
    /// The earliest date from which a recorded waiver lifts the constraint.
    pub fn waived_from(&self) -> Option<Date> {
        self.waivers.iter().map(|w| w.from).min()
    }
}

/// A certification or waiver that lifts a constraint from a date: who, under what authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    pub from: Date,
    pub authority: String,
    #[serde(default)]
    pub note: String,
    /// The team that recorded it.
    pub certified_by: TeamId,
}
