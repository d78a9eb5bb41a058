//! `capability`: record capability levels and plan ROK capability investments.

use alliance_domain::{CapabilityArea, Date, Side};
use alliance_proto::convert::{area_from_proto, area_to_proto, side_from_proto, side_to_proto};
use alliance_proto::v1;
use clap::Subcommand;

use super::flags::{Meta, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum CapabilityCmd {
    /// Record a side's capability level (0-100) in an area as of a date.
    Record {
        #[arg(long, value_parser = enum_of(side_from_proto))]
        side: Side,
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: CapabilityArea,
        /// Capability level on a 0-100 scale.
        #[arg(long)]
        level: u32,
        #[arg(long, value_parser = parse::date)]
        as_of: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Plan a ROK capability investment by a decision.
    Invest {
        /// The (proposed) decision the investment belongs to.
        #[arg(long)]
        decision: String,
        /// Investment id, a short slug.
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: CapabilityArea,
        /// What is bought, e.g. "L-SAM batteries".
        #[arg(long)]
        description: String,
        /// Capability points (0-100 scale) gained once fielded.
        #[arg(long)]
        level_gain: u32,
        /// The delivery date (YYYY-MM-DD), when the gain takes effect.
        #[arg(long, value_parser = parse::date)]
        delivery: Date,
        /// Programme cost in thousands of U.S. dollars.
        #[arg(long, default_value_t = 0)]
        cost_kusd: u64,
        /// Programme cost in whole millions of U.S. dollars (instead of --cost-kusd).
        #[arg(long, default_value_t = 0, conflicts_with = "cost_kusd")]
        cost_musd: u64,
        #[command(flatten)]
        meta: Meta,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &CapabilityCmd) -> Result<Reply, CliError> {
    match cmd {
        CapabilityCmd::Record {
            side,
            area,
            level,
            as_of,
            meta,
        } => command!(
            s,
            record_capability_level,
            v1::RecordCapabilityLevelRequest {
                meta: meta.proto(),
                side: side_to_proto(*side),
                area: area_to_proto(*area),
                level: *level,
                as_of: date(*as_of),
            }
        ),
        CapabilityCmd::Invest {
            decision,
            id,
            area,
            description,
            level_gain,
            delivery,
            cost_kusd,
            cost_musd,
            meta,
        } => command!(
            s,
            plan_capability_investment,
            v1::PlanCapabilityInvestmentRequest {
                meta: meta.proto(),
                decision_id: decision.clone(),
                investment_id: id.clone(),
                area: area_to_proto(*area),
                description: description.clone(),
                level_gain: *level_gain,
                delivery: date(*delivery),
                cost_musd: *cost_musd,
                cost_kusd: *cost_kusd,
            }
        ),
    }
}
