//! `plot`: chart a plan's posture month by month.

use alliance_domain::Date;
use clap::Args;
use uuid::Uuid;

use crate::parse;

#[derive(Args)]
pub(crate) struct PlotArgs {
    /// The plan to chart.
    #[arg(long, alias = "plan", env = "ALLIANCE_PLAN")]
    pub(crate) plan_id: Uuid,
    /// The first date (YYYY-MM-DD), then one point a month (default: the start of the plan's
    /// horizon).
    #[arg(long, value_parser = parse::date)]
    pub(crate) from: Option<Date>,
    /// The last date (YYYY-MM-DD; default: the end of the plan's horizon).
    #[arg(long, value_parser = parse::date)]
    pub(crate) to: Option<Date>,
    /// Chart the plan as it stood at this version.
    #[arg(
        long,
        value_name = "VERSION",
        alias = "as-of-version",
        conflicts_with = "record_time"
    )]
    pub(crate) record_version: Option<u64>,
    /// Chart the plan as recorded at this instant (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", alias = "as-recorded", value_parser = parse::instant)]
    pub(crate) record_time: Option<prost_types::Timestamp>,
    /// Also apply the proposed (not yet adopted) decisions, and mark them.
    #[arg(long)]
    pub(crate) what_if: bool,
    /// Where to write the chart: STEM.svg and STEM.png.
    #[arg(long, value_name = "PATH_STEM", default_value = "posture")]
    pub(crate) out: std::path::PathBuf,
}
