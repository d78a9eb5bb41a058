//! `plan`: create, branch, list and show plans; grant and revoke roles on them.

use alliance_domain::Date;
use alliance_proto::v1;
use clap::{Args, Subcommand};
use uuid::Uuid;

use super::flags::{Ids, Meta, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse;
use crate::session::{Session, ask, command};

#[derive(Subcommand)]
pub(crate) enum PlanCmd {
    /// Create a plan.
    Create {
        /// The plan's name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// First day of the planning horizon (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        horizon_start: Date,
        /// Last day of the planning horizon (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        horizon_end: Date,
        /// The new plan's id (default: the server mints one).
        #[arg(long)]
        id: Option<Uuid>,
        #[command(flatten)]
        ids: Ids,
    },
    /// Branch --plan into a new scenario plan.
    Branch {
        /// The plan's name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The version to branch at (default: the latest).
        #[arg(long, value_name = "VERSION")]
        at_version: Option<u64>,
        /// The branch's id (default: the server mints one).
        #[arg(long)]
        id: Option<Uuid>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Grant a team a role on --plan (admins of the plan only): editor:forces,
    /// editor:capabilities, editor:agreements, editor:command_arrangements, editor:conditions,
    /// endorser:us, endorser:rok, adopter, auditor or admin.
    Grant(RoleArgs),
    /// Revoke a team's role on --plan (admins of the plan only; the last admin stays).
    Revoke(RoleArgs),
    /// List the plans and their current versions.
    List,
    /// Show a plan at its current version: decisions, elements, conditions, clauses.
    Show {
        /// The plan to show.
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &PlanCmd) -> Result<Reply, CliError> {
    match cmd {
        PlanCmd::Create {
            name,
            description,
            horizon_start,
            horizon_end,
            id,
            ids,
        } => command!(
            s,
            create_plan,
            v1::CreatePlanRequest {
                meta: Some(ids.meta(id.map(|i| i.to_string()).unwrap_or_default(), None)),
                name: name.clone(),
                description: description.clone(),
                horizon_start: date(*horizon_start),
                horizon_end: date(*horizon_end),
            }
        ),
        PlanCmd::Branch {
            name,
            description,
            at_version,
            id,
            meta,
        } => command!(
            s,
            branch_plan,
            v1::BranchPlanRequest {
                meta: meta.proto(),
                new_plan_id: id.map(|i| i.to_string()).unwrap_or_default(),
                parent_version: *at_version,
                name: name.clone(),
                description: description.clone(),
            }
        ),
        PlanCmd::Grant(role) => command!(
            s,
            grant_role,
            v1::GrantRoleRequest {
                meta: role.meta.proto(),
                grant: role.grant(),
            }
        ),
        PlanCmd::Revoke(role) => command!(
            s,
            revoke_role,
            v1::RevokeRoleRequest {
                meta: role.meta.proto(),
                grant: role.grant(),
            }
        ),
        PlanCmd::List => ask!(s, client.list_plans, v1::ListPlansRequest {}).map(Reply::Plans),
        PlanCmd::Show { plan } => {
            let request = v1::GetPlanRequest {
                plan_id: plan.to_string(),
            };
            ask!(s, client.get_plan, request).map(Reply::Plan)
        }
    }
}

// A team's role on the plan of `meta`, as `plan grant` and `plan revoke` name it (no doc
// comment: each subcommand's own is its help).
#[derive(Args)]
pub(crate) struct RoleArgs {
    /// The team.
    #[arg(long)]
    team: String,
    /// The role.
    #[arg(long)]
    role: String,
    #[command(flatten)]
    meta: Meta,
}

impl RoleArgs {
    fn grant(&self) -> Option<v1::RoleGrant> {
        Some(v1::RoleGrant {
            team: self.team.clone(),
            role: self.role.clone(),
        })
    }
}
