//! The pure core of alliance planning.
//!
//! A plan is folded from its events with [`evolve`]; every change is checked by [`decide`], which
//! either returns the events the change produces or a [`DomainError`]. Both are plain,
//! deterministic functions: no clock, no I/O, no async. Time and identity come in with the
//! command and its [`CommandContext`].

mod access;
mod command;
mod decide;
mod error;
mod event;
mod ids;
mod keys;
mod model;
mod posture;
mod state;
mod timeline;
mod witness;

pub use access::{Grant, PlanRole, Requirement, Section, step_section};
pub use command::{Command, CommandContext};
pub use decide::{
    MAX_COST_MUSD, MAX_EQUIPMENT, MAX_PERSONNEL, MAX_SIMULATION_MONTHS, MAX_SIMULATION_TRIALS,
    decide,
};
pub use error::{DomainError, ErrorKind, FieldViolation, describe_violations};
pub use event::{Event, SCHEMA_VERSION};
pub use ids::{
    ClauseId, ConditionId, DecisionId, ElementId, IdError, InvestmentId, PlanId, TeamId, Version,
};
pub use keys::Key;
pub use model::{
    Actor, AgreementKind, CapabilityArea, ClauseStatus, Component, ConditionStatus, Date,
    DecisionStatus, ElementKind, ForceElementSpec, Side, SimulationRun, Step,
};
pub use posture::{
    ClauseState, CommandArrangement, ConditionState, Posture, PresentElement, posture,
};
pub use state::{AgreementClause, Condition, ConditionAssessment, Decision, Plan, evolve, fold};
pub use timeline::{ElementState, ElementTimeline, element_timelines};
pub use witness::{HeadWitness, MAX_WITNESSES, vouched_head};
