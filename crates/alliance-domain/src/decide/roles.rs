//! The roles teams hold on a plan.

use super::fields::Violations;
use super::{Decided, elsewhere};
use crate::access::{Grant, PlanRole};
use crate::command::Command;
use crate::error::DomainError;
use crate::event::Event;
use crate::state::Plan;

pub(super) fn decide(plan: &Plan, command: &Command) -> Decided {
    // A grant's fields are typed whole: nothing to check but the plan.
    Violations::default().edits(plan)?;
    match command {
        Command::GrantRole { team, role } => {
            if plan.roles_of(team).contains(role) {
                return Err(DomainError::rule(
                    "role_already_held",
                    format!("team {team} already holds {role} on this plan"),
                ));
            }
            Ok(vec![Event::RoleGranted {
                grant: Grant {
                    team: team.clone(),
                    role: *role,
                },
            }])
        }
        Command::RevokeRole { team, role } => {
            if !plan.roles_of(team).contains(role) {
                return Err(DomainError::rule(
                    "role_not_held",
                    format!("team {team} does not hold {role} on this plan"),
                ));
            }
            if *role == PlanRole::Admin && plan.holders(PlanRole::Admin) == 1 {
                return Err(DomainError::rule(
                    "last_admin",
                    format!(
                        "team {team} is the plan's last admin; grant admin to another team first"
                    ),
                ));
            }
            Ok(vec![Event::RoleRevoked {
                grant: Grant {
                    team: team.clone(),
                    role: *role,
                },
            }])
        }
        _ => Err(elsewhere(command)),
    }
}
