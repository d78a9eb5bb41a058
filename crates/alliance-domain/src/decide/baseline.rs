//! What a plan starts from: its registered force elements, recorded capability levels and
//! agreement clauses (facts of the baseline, not decisions).

use super::fields::{MAX_NAME, Violations};
use super::{Decided, elsewhere};
use crate::command::Command;
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

pub(super) fn decide(plan: &Plan, command: &Command) -> Decided {
    let mut v = Violations::default();
    match command {
        Command::RegisterForceElement {
            element,
            present_from,
        } => {
            v.element("element", element);
            v.date(plan, "present_from", *present_from);
            v.edits(plan)?;
            if plan.has_element(&element.id) {
                return Err(DomainError::already_exists("force element", &element.id));
            }
            Ok(vec![Event::ForceElementRegistered {
                element: element.clone(),
                present_from: *present_from,
            }])
        }
        Command::RecordCapabilityLevel {
            side,
            area,
            level,
            as_of,
        } => {
            v.level("level", *level);
            v.date(plan, "as_of", *as_of);
            v.edits(plan)?;
            Ok(vec![Event::CapabilityLevelRecorded {
                side: *side,
                area: *area,
                level: *level,
                as_of: *as_of,
            }])
        }
        Command::DefineAgreementClause {
            clause_id,
            agreement,
            title,
            status,
            since,
        } => {
            v.text("title", title, true, MAX_NAME);
            v.date(plan, "since", *since);
            v.edits(plan)?;
            if plan.clauses.contains_key(clause_id) {
                return Err(DomainError::already_exists("agreement clause", clause_id));
            }
            Ok(vec![Event::AgreementClauseDefined {
                clause_id: clause_id.clone(),
                agreement: *agreement,
                title: title.clone(),
                status: *status,
                since: *since,
            }])
        }
        _ => Err(elsewhere(command)),
    }
}
