//! One copy of equal parts: two states of one plan folded apart (the command service's and the
//! read models' of the same process) each hold every part an event makes as a value of its
//! own. Handed the part another state holds after an event ([`Plan::part_made`]), a state
//! holds it in place of its own where the two are equal ([`Plan::hold_equal`]): the same value,
//! held once. A part that differs in any field is not taken, so a state stays exactly the fold
//! of its own events whatever it is handed.
//!
//! Only the parts an event makes whole and no later event changes are handed: force elements,
//! agreement clauses and simulation runs (each replaced whole, never changed in place).
//! Decisions, conditions and constraints grow with their events (steps and endorsements,
//! assessments, waivers): held by both states, each of those events would copy the whole part
//! on the command service's path, a cost that grows with the part, where it changes them in
//! place now.
//!
//! Within a process the parts go through a [`PartsHandoff`]: the command service offers the
//! part each event it decides made, at the event's version; the read models take it when they
//! apply the event at that version from the log.

use std::sync::Arc;

use crate::event::Event;
use crate::ids::{ClauseId, ElementId, PlanId};
use crate::model::SimulationRun;
use crate::state::{AgreementClause, Plan, RegisteredElement, Shared};

/// The part each event of a plan made, by version, from the state that decided it to the read
/// models of the same process.
pub type PartsHandoff = alliance_stdx::handoff::Handoff<PlanId, Part>;

/// How many events' parts a [`PartsHandoff`] holds while they wait for the read models: far
/// more than a server has in flight between deciding an event and applying it (a few hundred
/// at most). Parts are made whole by one event each, so what waits is the size of one part an
/// event (an element of the benchmark's takes 128 bytes): about a megabyte, however far behind
/// the read models are.
pub const PARTS_WAITING: usize = 4096;

/// A handoff of [`PARTS_WAITING`] events' parts.
pub fn parts_handoff() -> PartsHandoff {
    PartsHandoff::new(PARTS_WAITING)
}

/// A part of a plan, as a state holds it.
#[derive(Clone, Debug)]
pub enum Part {
    Element(ElementId, Arc<RegisteredElement>),
    Clause(ClauseId, Arc<AgreementClause>),
    SimulationRun(uuid::Uuid, Arc<SimulationRun>),
}

impl Plan {
    /// The part `event` made, as this state holds it (the state after the event): the force
    /// element it registered, the clause it defined, the run it recorded.
    pub fn part_made(&self, event: &Event) -> Option<Part> {
        match event {
            Event::ForceElementRegistered { element, .. } => {
                held(&self.elements, element.id.clone(), Part::Element)
            }
            Event::AgreementClauseDefined { clause_id, .. } => {
                held(&self.clauses, clause_id.clone(), Part::Clause)
            }
            Event::SimulationRunRecorded { run } => {
                held(&self.simulation_runs, run.run_id, Part::SimulationRun)
            }
            _ => None,
        }
    }

    /// Holds `part` in place of this state's part of the same id if the two are equal; keeps
    /// its own if they differ or it has none. Returns whether it took it.
    pub fn hold_equal(&mut self, part: Part) -> bool {
        match part {
            Part::Element(id, part) => take_equal(&mut self.elements, id, part),
            Part::Clause(id, part) => take_equal(&mut self.clauses, id, part),
            Part::SimulationRun(id, part) => take_equal(&mut self.simulation_runs, id, part),
        }
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
