//! Plan-level constraints (personnel floors and ceilings, combined capability) and the waivers
//! that lift them.

use super::fields::{MAX_LEVEL, MAX_NAME, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::command::{Command, CommandContext};
use crate::conditions::{ConstraintRule, Waiver};
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

/// A personnel floor or ceiling, at most: every element of a plan at its largest.
pub const MAX_PERSONNEL_BOUND: u64 = 100_000_000;

pub(super) fn decide(plan: &Plan, command: &Command, ctx: &CommandContext) -> Decided {
    let mut v = Violations::default();
    match command {
        Command::DefineConstraint {
            constraint_id,
            title,
            rule,
            side,
            authority,
            since,
        } => {
            if let Some(since) = since {
                v.date(plan, "since", *since);
            }
            v.text("title", title, true, MAX_NAME);
            v.text("authority", authority, true, MAX_TEXT);
            rule_violations(&mut v, rule);
            v.edits(plan)?;
            if plan.constraints.contains_key(constraint_id) {
                return Err(DomainError::already_exists("constraint", constraint_id));
            }
            Ok(vec![Event::ConstraintDefined {
                constraint_id: constraint_id.clone(),
                title: title.clone(),
                rule: rule.clone(),
                side: *side,
                authority: authority.clone(),
                since: *since,
            }])
        }
        Command::WaiveConstraint {
            constraint_id,
            from,
            authority,
            note,
        } => {
            v.date(plan, "from", *from);
            v.text("authority", authority, true, MAX_TEXT);
            v.text("note", note, false, MAX_TEXT);
            v.edits(plan)?;
            let constraint = plan
                .constraints
                .get(constraint_id)
                .ok_or_else(|| DomainError::not_found("constraint", constraint_id))?;
            if let Some(owner) = constraint
                .side
                .filter(|owner| ctx.actor.side != Some(*owner))
            {
                return Err(DomainError::rule(
                    "waiver_by_other_side",
                    format!(
                        "constraint {constraint_id} is a {} rule; only the {} side certifies a waiver of it",
                        owner.name(),
                        owner.name()
                    ),
                ));
            }
            if let (None, Some(side)) = (constraint.side, ctx.actor.side) {
                return Err(DomainError::rule(
                    "waiver_by_one_side",
                    format!(
                        "constraint {constraint_id} is an alliance rule; the {} side alone does not lift it (the alliance's adopters do)",
                        side.name()
                    ),
                ));
            }
            Ok(vec![Event::ConstraintWaived {
                constraint_id: constraint_id.clone(),
                waiver: Waiver {
                    from: *from,
                    authority: authority.clone(),
                    note: note.clone(),
                    certified_by: ctx.actor.team.clone(),
                },
            }])
        }
        _ => Err(elsewhere(command)),
    }
}

fn rule_violations(v: &mut Violations, rule: &ConstraintRule) {
    match rule {
        ConstraintRule::Personnel { min, max, .. } => {
            v.check(
                min.is_some() || max.is_some(),
                "rule.min",
                "a personnel constraint needs a floor, a ceiling or both",
            );
            for (field, bound) in [("rule.min", min), ("rule.max", max)] {
                if let Some(bound) = bound {
                    v.at_most(field, *bound, MAX_PERSONNEL_BOUND);
                }
            }
            if let (Some(min), Some(max)) = (min, max) {
                v.check(min <= max, "rule.max", "must not be below the floor");
            }
        }
        ConstraintRule::CombinedCapability { min, .. } => {
            // U.S. and ROK levels are each 0–100.
            v.at_most("rule.min", *min, 2 * MAX_LEVEL);
        }
    }
}
