//! A plan's creation and its branches.

use std::collections::BTreeSet;

use super::fields::{MAX_NAME, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::access::{Grant, PlanRole};
use crate::command::{Command, CommandContext};
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

/// Roles granted when a plan is created, at most.
const MAX_GRANTS: usize = 200;

pub(super) fn decide(plan: &Plan, command: &Command, ctx: &CommandContext) -> Decided {
    let mut v = Violations::default();
    match command {
        Command::CreatePlan {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => {
            v.check(!plan_id.is_nil(), "plan_id", "must not be the nil uuid");
            v.check(grants.len() <= MAX_GRANTS, "grants", "at most 200 grants");
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            v.check(
                horizon_start < horizon_end,
                "horizon_end",
                "must be after horizon_start",
            );
            v.creates(plan, plan_id)?;
            // The creating team administers a plan that grants roles; the grants asked for come
            // with it, once. A plan granting none is governed by the teams' default roles.
            let creator = Grant {
                team: ctx.actor.team.clone(),
                role: PlanRole::Admin,
            };
            let grants: BTreeSet<Grant> = if grants.is_empty() {
                BTreeSet::new()
            } else {
                grants.iter().cloned().chain([creator]).collect()
            };
            Ok(vec![Event::PlanCreated {
                plan_id: *plan_id,
                name: name.clone(),
                description: description.clone(),
                horizon_start: *horizon_start,
                horizon_end: *horizon_end,
                grants: grants.into_iter().collect(),
            }])
        }
        Command::BranchPlan {
            new_plan_id,
            parent_version,
            name,
            description,
        } => {
            v.check(
                !new_plan_id.is_nil(),
                "new_plan_id",
                "must not be the nil uuid",
            );
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            v.edits(plan)?;
            let parent_id = plan.id.unwrap_or_default();
            if *new_plan_id == parent_id {
                return Err(DomainError::invalid(
                    "new_plan_id",
                    "a branch needs an id of its own",
                ));
            }
            if *parent_version != plan.version {
                return Err(DomainError::invalid(
                    "parent_version",
                    format!(
                        "the parent is folded to version {}, not {parent_version}",
                        plan.version
                    ),
                ));
            }
            Ok(vec![Event::PlanBranched {
                plan_id: *new_plan_id,
                parent_plan_id: parent_id,
                parent_version: *parent_version,
                name: name.clone(),
                description: description.clone(),
            }])
        }
        _ => Err(elsewhere(command)),
    }
}
