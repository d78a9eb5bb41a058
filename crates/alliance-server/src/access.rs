//! Who may do what: the roles a caller's team holds on a plan (granted in the plan's history),
//! checked on every command and every read.
//!
//! Creating a plan and operating the services need the team's own `admin` role (identity
//! configuration); reading the security log its `audit` role. Everything about one plan needs a
//! role on that plan. A plan whose history grants no role at all (created before roles were
//! recorded) is governed by the teams' default roles, as a new plan would start with them.

use std::collections::BTreeSet;

use alliance_domain::{Command, Plan, PlanId, PlanRole, Requirement};

use crate::auth::{Caller, Role};
use crate::error::ServiceError;

/// Every plan a server can list, as its read model holds it (the read models read every
/// partition of the log, where a command instance writes only some).
pub trait PlanDirectory: Send + Sync {
    /// Each plan's current state.
    fn plans(&self) -> Vec<std::sync::Arc<Plan>>;
}

/// The roles `caller`'s team holds on `plan`.
pub fn plan_roles(caller: &Caller, plan: &Plan) -> BTreeSet<PlanRole> {
    if plan.grants.is_empty() {
        caller.default_plan_roles()
    } else {
        plan.roles_of(&caller.actor.team)
    }
}

/// Refuses unless `caller` meets `requirement` on `plan` (`plan_id`), naming what it lacks.
pub fn require(
    caller: &Caller,
    plan: &Plan,
    plan_id: PlanId,
    requirement: Requirement,
    action: &str,
) -> Result<(), ServiceError> {
    let allowed = match requirement {
        Requirement::CreatePlans => caller.may(Role::Admin),
        other => {
            let roles = standing(caller, plan, plan_id)?;
            other.met_by(&roles)
        }
    };
    if allowed {
        return Ok(());
    }
    let (role, action) = match requirement {
        Requirement::CreatePlans => ("admin".to_owned(), action.to_owned()),
        other => (other.to_string(), format!("{action} on plan {plan_id}")),
    };
    Err(ServiceError::PermissionDenied {
        team: caller.actor.team.to_string(),
        action,
        role,
    })
}

/// The roles `caller`'s team holds on `plan`, or, when it holds none, the answer a plan that does
/// not exist gets: a plan nobody granted the caller looks the same as no plan, so its id cannot
/// be probed.
pub fn standing(
    caller: &Caller,
    plan: &Plan,
    plan_id: PlanId,
) -> Result<BTreeSet<PlanRole>, ServiceError> {
    let roles = plan_roles(caller, plan);
    if roles.is_empty() {
        return Err(ServiceError::NoStanding(plan_id));
    }
    Ok(roles)
}

/// Refuses unless `caller` may issue `command` on `plan`.
pub fn authorize_command(
    caller: &Caller,
    plan: &Plan,
    plan_id: PlanId,
    command: &Command,
) -> Result<(), ServiceError> {
    let requirement = command.required_role(caller.actor.side);
    let action = match command {
        Command::CreatePlan { .. } => "create plans".to_owned(),
        other => format!("issue {}", other.name()),
    };
    require(caller, plan, plan_id, requirement, &action)
}

/// Refuses unless `caller` may read `plan`: any role on it.
pub fn authorize_read(caller: &Caller, plan: &Plan, plan_id: PlanId) -> Result<(), ServiceError> {
    require(caller, plan, plan_id, Requirement::AnyRole, "read")
}

/// Refuses unless `caller` may read `plan`'s audit history: auditor or admin on it.
pub fn authorize_audit(caller: &Caller, plan: &Plan, plan_id: PlanId) -> Result<(), ServiceError> {
    let roles = standing(caller, plan, plan_id)?;
    if roles.contains(&PlanRole::Auditor) || roles.contains(&PlanRole::Admin) {
        return Ok(());
    }
    Err(ServiceError::PermissionDenied {
        team: caller.actor.team.to_string(),
        action: format!("read the audit history of plan {plan_id}"),
        role: "auditor".to_owned(),
    })
}
