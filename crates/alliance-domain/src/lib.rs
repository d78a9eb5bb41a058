//! The pure core of alliance planning.
//!
//! A plan is folded from its events with [`evolve`]; every change is checked by [`decide`], which
//! either returns the events the change produces or a [`DomainError`]. Both are plain,
//! deterministic functions: no clock, no I/O, no async. Time and identity come in with the
//! command and its [`CommandContext`].

mod access;
mod command;
mod conditions;
mod decide;
mod error;
mod event;
mod findings;
mod ids;
mod keys;
mod model;
mod posture;
mod share;
mod state;
mod timeline;
mod witness;

#[cfg(feature = "testing")]
pub mod testing;

pub use access::{Grant, PlanRole, Requirement, Section, step_section};
pub use command::{Command, CommandContext};
pub use conditions::{Constraint, ConstraintRule, Prerequisite, Waiver};
pub use decide::{
    MAX_COST_KUSD, MAX_EQUIPMENT, MAX_LAG_MONTHS, MAX_PERSONNEL, MAX_PERSONNEL_BOUND,
    MAX_SIMULATION_MONTHS, MAX_SIMULATION_TRIALS, decide,
};
pub use error::{DomainError, ErrorKind, FieldViolation, describe_violations};
pub use event::{Event, SCHEMA_VERSION};
pub use findings::{Finding, FindingKind, all_findings, findings, new_findings};
pub use ids::{
    ClauseId, ConditionId, ConstraintId, DecisionId, ElementId, IdError, InvestmentId, MAX_VERSION,
    PlanId, TeamId, Version,
};
pub use keys::Key;
pub use model::{
    Actor, AgreementKind, CapabilityArea, ClauseStatus, Component, ConditionStatus, Date,
    DecisionStatus, ElementKind, EquipmentCounts, ForceElementSpec, Mission, Side, Sides,
    SidesIter, SimulationRun, Step, Text,
};
pub use posture::{
    ClauseState, CommandArrangement, ConditionState, ElementName, Equipment, MissionState, Posture,
    PostureSource, PresentElement, Shaping, first_date, posture, present_element,
};
pub use share::{PARTS_WAITING, Part, PartsHandoff, parts_handoff};
pub use state::{
    AgreementClause, CapabilityLevels, Condition, ConditionAssessment, Decision, Plan,
    RegisteredElement, Shared, evolve, fold,
};
pub use timeline::{ElementState, ElementTimeline, element_timeline, element_timelines};
pub use witness::{HeadWitness, MAX_WITNESSES, vouched_head};
