//! Flags shared by several subcommands: a command's ids and plan, a dated step, a query's
//! plan and record point.

use alliance_domain::Date;
use alliance_proto::convert::date_to_proto;
use alliance_proto::v1;
use clap::Args;
use uuid::Uuid;

use crate::parse;

#[derive(Args)]
#[command(next_help_heading = "Command options")]
pub(crate) struct Ids {
    /// Idempotency key (default: a fresh UUID v7); pass the same one to retry a command safely.
    #[arg(long)]
    pub(crate) command_id: Option<String>,
    /// The end-to-end unit of work (server default: the command id).
    #[arg(long)]
    pub(crate) correlation_id: Option<String>,
    /// The event or command that caused this one (server default: the command id).
    #[arg(long)]
    pub(crate) causation_id: Option<String>,
}

impl Ids {
    pub(crate) fn meta(&self, plan_id: String, based_on_version: Option<u64>) -> v1::CommandMeta {
        v1::CommandMeta {
            command_id: self
                .command_id
                .clone()
                .unwrap_or_else(|| Uuid::now_v7().to_string()),
            plan_id,
            based_on_version,
            correlation_id: self.correlation_id.clone().unwrap_or_default(),
            causation_id: self.causation_id.clone().unwrap_or_default(),
        }
    }
}

/// The plan a command edits and the version it was based on.
#[derive(Args)]
#[command(next_help_heading = "Command options")]
pub(crate) struct Meta {
    /// The plan to edit.
    #[arg(long, env = "ALLIANCE_PLAN")]
    pub(crate) plan: Uuid,
    /// The plan version this edit was based on: refused as a conflict (exit 3) if what it
    /// touches changed since. Default: the latest version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) based_on: Option<u64>,
    #[command(flatten)]
    pub(crate) ids: Ids,
}

impl Meta {
    pub(crate) fn proto(&self) -> Option<v1::CommandMeta> {
        Some(self.ids.meta(self.plan.to_string(), self.based_on))
    }
}

/// A dated step of a decision.
#[derive(Args)]
pub(crate) struct Step {
    /// The (proposed) decision the step belongs to.
    #[arg(long)]
    pub(crate) decision: String,
    /// The date the step takes effect (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    pub(crate) on: Date,
    #[command(flatten)]
    pub(crate) meta: Meta,
}

impl Step {
    pub(crate) fn on(&self) -> Option<v1::Date> {
        Some(date_to_proto(self.on))
    }
}

pub(crate) fn equipment(items: &[(String, u32)]) -> Vec<v1::EquipmentCount> {
    items
        .iter()
        .map(|(kind, count)| v1::EquipmentCount {
            kind: kind.clone(),
            count: *count,
        })
        .collect()
}

pub(crate) fn date(d: Date) -> Option<v1::Date> {
    Some(date_to_proto(d))
}

/// The plan a query reads, and the version it must reflect.
#[derive(Args)]
#[command(next_help_heading = "Query options")]
pub(crate) struct Target {
    /// The plan to read.
    #[arg(long, env = "ALLIANCE_PLAN")]
    pub(crate) plan: Uuid,
    /// Wait (within --timeout) until the read model holds at least this plan version, e.g.
    /// the one a command just returned; past the deadline: unavailable (exit 5).
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    pub(crate) min_version: u64,
}

/// The point of the plan's history to read: at most one (default: the latest version).
#[derive(Args)]
#[group(multiple = false)]
#[command(next_help_heading = "Query options")]
pub(crate) struct Record {
    /// Read the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) as_of_version: Option<u64>,
    /// Read the plan as it was recorded at this instant (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    pub(crate) as_recorded: Option<prost_types::Timestamp>,
}

impl Record {
    pub(crate) fn proto(&self) -> Option<v1::RecordPoint> {
        record_point(self.as_of_version, self.as_recorded.as_ref())
    }
}

/// A point on the record-time axis; `None` when neither is given.
pub(crate) fn record_point(
    version: Option<u64>,
    time: Option<&prost_types::Timestamp>,
) -> Option<v1::RecordPoint> {
    use v1::record_point::Point;
    let point = match (version, time) {
        (Some(v), _) => Point::Version(v),
        (None, Some(t)) => Point::Time(*t),
        (None, None) => return None,
    };
    Some(v1::RecordPoint { point: Some(point) })
}
