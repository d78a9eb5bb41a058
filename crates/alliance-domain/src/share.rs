//! One copy of equal parts: two states of one plan folded apart (the command service's and the
//! read models' of the same process) each hold every part an event makes, element, decision or
//! clause, as a value of its own. Handed the parts another state holds after an event
//! ([`Plan::parts_changed`]), a state holds those in place of its own that equal them
//! ([`Plan::hold_equal`]): the same values, held once. A part that differs in any field is not
//! taken, so a state stays exactly the fold of its own events whatever it is handed.
//!
//! Within a process the parts go through a [`PartsHandoff`]: the command service offers the
//! parts each event it decides changed, at the event's version; the read models take them when
//! they apply the event at that version from the log.

use std::sync::Arc;

use crate::conditions::Constraint;
use crate::event::Event;
use crate::ids::{ClauseId, ConditionId, ConstraintId, DecisionId, ElementId, PlanId};
use crate::keys::Key;
use crate::model::SimulationRun;
use crate::state::{AgreementClause, Condition, Decision, Plan, RegisteredElement, Shared};

/// The parts of each plan's events, by version, from the state that decided them to the read
/// models of the same process.
pub type PartsHandoff = alliance_stdx::handoff::Handoff<PlanId, Vec<Part>>;

/// How many events' parts a [`PartsHandoff`] holds while they wait for the read models: far
/// more than a server has in flight between deciding an event and applying it (a few hundred
/// at most), and about a megabyte held when the read models are absent or far behind.
pub const PARTS_WAITING: usize = 4096;

/// A handoff of [`PARTS_WAITING`] events' parts.
pub fn parts_handoff() -> PartsHandoff {
    PartsHandoff::new(PARTS_WAITING)
}

/// A part of a plan, as a state holds it.
#[derive(Clone, Debug)]
pub enum Part {
    Element(ElementId, Arc<RegisteredElement>),
    Decision(DecisionId, Arc<Decision>),
    Clause(ClauseId, Arc<AgreementClause>),
    Condition(ConditionId, Arc<Condition>),
    Constraint(ConstraintId, Arc<Constraint>),
    SimulationRun(uuid::Uuid, Arc<SimulationRun>),
}

impl Plan {
    /// The parts `event` changed, as this state holds them (the state after the event).
    pub fn parts_changed(&self, event: &Event) -> Vec<Part> {
        let mut parts = Vec::new();
        for key in event.keys() {
            let part = match key {
                Key::Element(id) => held(&self.elements, id, Part::Element),
                Key::Decision(id) | Key::Endorsement(id, _) => {
                    // A decision and its endorsements are one part.
                    if matches!(parts.last(), Some(Part::Decision(last, _)) if *last == id) {
                        continue;
                    }
                    held(&self.decisions, id, Part::Decision)
                }
                Key::Clause(id) => held(&self.clauses, id, Part::Clause),
                Key::Condition(id) => held(&self.conditions, id, Part::Condition),
                Key::Constraint(id) => held(&self.constraints, id, Part::Constraint),
                Key::SimulationRun(id) => held(&self.simulation_runs, id, Part::SimulationRun),
                Key::Plan
                | Key::Investment(_)
                | Key::CommandArrangement
                | Key::Capability(..)
                | Key::Access(_) => None,
            };
            parts.extend(part);
        }
        parts
    }

    /// Holds each of `parts` in place of this state's part of the same id where the two are
    /// equal; keeps its own where they differ or it has none. Returns how many it took.
    pub fn hold_equal(&mut self, parts: Vec<Part>) -> usize {
        let mut taken = 0;
        for part in parts {
            let took = match part {
                Part::Element(id, part) => take_equal(&mut self.elements, id, part),
                Part::Decision(id, part) => take_equal(&mut self.decisions, id, part),
                Part::Clause(id, part) => take_equal(&mut self.clauses, id, part),
                Part::Condition(id, part) => take_equal(&mut self.conditions, id, part),
                Part::Constraint(id, part) => take_equal(&mut self.constraints, id, part),
                Part::SimulationRun(id, part) => take_equal(&mut self.simulation_runs, id, part),
            };
            taken += usize::from(took);
        }
        taken
    }
}

fn held<K: Ord + Clone, V>(map: &Shared<K, V>, id: K, part: fn(K, Arc<V>) -> Part) -> Option<Part> {
    let value = map.get(&id)?.clone();
    Some(part(id, value))
}

fn take_equal<K: Ord + Clone, V: PartialEq>(map: &mut Shared<K, V>, id: K, part: Arc<V>) -> bool {
    match map.get(&id) {
        Some(own) if !Arc::ptr_eq(own, &part) && **own == *part => {
            map.insert(id, part);
            true
        }
        _ => false,
    }
}
