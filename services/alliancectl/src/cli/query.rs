//! The reads: `posture`, `series`, `diff` and `decisions`, one `PostureQueries` RPC each.

use alliance_domain::{Date, DecisionStatus, Side};
use alliance_proto::convert::{
    date_to_proto, decision_status_from_proto, decision_status_to_proto, side_from_proto,
    side_to_proto,
};
use alliance_proto::v1;
use clap::Args;

use super::flags::{Record, Target, date, record_point};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, query};

#[derive(Args)]
pub(crate) struct PostureArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// The date on the plan's timeline (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) on: Date,
    #[command(flatten)]
    pub(crate) record: Record,
    /// Also apply the proposed (not yet adopted) decisions.
    #[arg(long)]
    pub(crate) what_if: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SeriesStep {
    Month,
    Quarter,
    Year,
}

#[derive(Args)]
pub(crate) struct SeriesArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// The first date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) from: Date,
    /// The last date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) to: Date,
    /// The interval between points.
    #[arg(long, value_enum, default_value_t = SeriesStep::Month)]
    pub(crate) step: SeriesStep,
    #[command(flatten)]
    pub(crate) record: Record,
    /// Also apply the proposed (not yet adopted) decisions.
    #[arg(long)]
    pub(crate) what_if: bool,
}

/// Where a diff starts: one of the two.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct DiffFrom {
    /// Compare from the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) from_version: Option<u64>,
    /// Compare from the plan as recorded at this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    pub(crate) from_recorded: Option<prost_types::Timestamp>,
}

/// Where a diff ends: at most one (default: the latest version).
#[derive(Args)]
#[group(multiple = false)]
pub(crate) struct DiffTo {
    /// Compare to the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) to_version: Option<u64>,
    /// Compare to the plan as recorded at this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    pub(crate) to_recorded: Option<prost_types::Timestamp>,
}

#[derive(Args)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    #[command(flatten)]
    pub(crate) from: DiffFrom,
    #[command(flatten)]
    pub(crate) to: DiffTo,
}

#[derive(Args)]
pub(crate) struct FindingsArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// The first date of the window (YYYY-MM-DD; default: the plan's horizon start).
    #[arg(long, value_parser = parse::date)]
    pub(crate) from: Option<Date>,
    /// The last date of the window (YYYY-MM-DD; default: the plan's horizon end).
    #[arg(long, value_parser = parse::date)]
    pub(crate) to: Option<Date>,
    #[command(flatten)]
    pub(crate) record: Record,
    /// Also apply the proposed (not yet adopted) decisions.
    #[arg(long)]
    pub(crate) what_if: bool,
}

#[derive(Args)]
pub(crate) struct DecisionsArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Only decisions in this status.
    #[arg(long, value_parser = enum_of(decision_status_from_proto))]
    pub(crate) status: Option<DecisionStatus>,
    /// Only decisions that need this side's endorsement.
    #[arg(long, value_parser = enum_of(side_from_proto))]
    pub(crate) side: Option<Side>,
    /// Only decisions owned by this team.
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// Only decisions effective on or after this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) effective_from: Option<Date>,
    /// Only decisions effective on or before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) effective_to: Option<Date>,
    #[command(flatten)]
    pub(crate) record: Record,
}

pub(super) async fn posture(s: &mut Session, a: &PostureArgs) -> Result<Reply, CliError> {
    query!(
        s,
        get_posture,
        Posture,
        v1::GetPostureRequest {
            plan_id: a.target.plan.to_string(),
            valid_on: date(a.on),
            record: a.record.proto(),
            include_proposed: a.what_if,
            min_version: a.target.min_version,
        }
    )
}

pub(super) async fn findings(s: &mut Session, a: &FindingsArgs) -> Result<Reply, CliError> {
    query!(
        s,
        get_findings,
        Findings,
        v1::GetFindingsRequest {
            plan_id: a.target.plan.to_string(),
            from: a.from.and_then(date),
            to: a.to.and_then(date),
            record: a.record.proto(),
            include_proposed: a.what_if,
            min_version: a.target.min_version,
        }
    )
}

pub(super) async fn series(s: &mut Session, a: &SeriesArgs) -> Result<Reply, CliError> {
    query!(
        s,
        get_posture_series,
        Series,
        v1::GetPostureSeriesRequest {
            plan_id: a.target.plan.to_string(),
            from: date(a.from),
            to: date(a.to),
            step: match a.step {
                SeriesStep::Month => v1::SeriesStep::Month,
                SeriesStep::Quarter => v1::SeriesStep::Quarter,
                SeriesStep::Year => v1::SeriesStep::Year,
            } as i32,
            record: a.record.proto(),
            include_proposed: a.what_if,
            min_version: a.target.min_version,
        }
    )
}

pub(super) async fn diff(s: &mut Session, a: &DiffArgs) -> Result<Reply, CliError> {
    query!(
        s,
        diff_plan,
        Diff,
        v1::DiffPlanRequest {
            plan_id: a.target.plan.to_string(),
            from: record_point(a.from.from_version, a.from.from_recorded.as_ref()),
            to: record_point(a.to.to_version, a.to.to_recorded.as_ref()),
            min_version: a.target.min_version,
        }
    )
}

pub(super) async fn decisions(s: &mut Session, a: &DecisionsArgs) -> Result<Reply, CliError> {
    query!(
        s,
        list_decisions,
        Decisions,
        v1::ListDecisionsRequest {
            plan_id: a.target.plan.to_string(),
            record: a.record.proto(),
            status: a.status.map_or(
                v1::DecisionStatus::Unspecified as i32,
                decision_status_to_proto
            ),
            side: a.side.map_or(v1::Side::Unspecified as i32, side_to_proto),
            team: a.team.clone().unwrap_or_default(),
            effective_from: a.effective_from.map(date_to_proto),
            effective_to: a.effective_to.map(date_to_proto),
            min_version: a.target.min_version,
        }
    )
}
