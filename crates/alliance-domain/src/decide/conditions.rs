//! The conditions that gate decisions (such as the OPCON transfer) and their assessments.

use super::fields::{MAX_NAME, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::command::Command;
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

pub(super) fn decide(plan: &Plan, command: &Command) -> Decided {
    let mut v = Violations::default();
    match command {
        Command::DefineCondition {
            condition_id,
            title,
            description,
            area,
            threshold,
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            if let Some(t) = threshold {
                v.level("threshold", *t);
            }
            v.edits(plan)?;
            if plan.conditions.contains_key(condition_id) {
                return Err(DomainError::already_exists("condition", condition_id));
            }
            Ok(vec![Event::ConditionDefined {
                condition_id: condition_id.clone(),
                title: title.clone(),
                description: description.clone(),
                area: *area,
                threshold: *threshold,
            }])
        }
        Command::AssessCondition {
            condition_id,
            assessed_on,
            status,
            value,
            note,
        } => {
            v.date(plan, "assessed_on", *assessed_on);
            if let Some(value) = value {
                v.level("value", *value);
            }
            v.text("note", note, false, MAX_TEXT);
            v.edits(plan)?;
            if !plan.conditions.contains_key(condition_id) {
                return Err(DomainError::not_found("condition", condition_id));
            }
            Ok(vec![Event::ConditionAssessed {
                condition_id: condition_id.clone(),
                assessed_on: *assessed_on,
                status: *status,
                value: *value,
                note: note.clone(),
            }])
        }
        _ => Err(elsewhere(command)),
    }
}
