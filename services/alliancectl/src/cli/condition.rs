//! `condition`: define conditions that gate decisions and assess them over time.

use alliance_domain::{CapabilityArea, ConditionStatus, Date};
use alliance_proto::convert::{
    area_from_proto, area_to_proto, condition_status_from_proto, condition_status_to_proto,
};
use alliance_proto::v1;
use clap::Subcommand;

use super::flags::{Meta, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum ConditionCmd {
    /// Define a condition (e.g. "ROK missile-defense coverage >= 70").
    Define {
        /// Condition id, a short slug.
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The capability area the condition measures.
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: Option<CapabilityArea>,
        /// The level (0-100) the area must reach.
        #[arg(long)]
        threshold: Option<u32>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Record an assessment of a condition.
    Assess {
        /// The condition's id.
        #[arg(long)]
        condition: String,
        #[arg(long, value_parser = parse::date)]
        on: Date,
        #[arg(long, value_parser = enum_of(condition_status_from_proto))]
        status: ConditionStatus,
        /// The measured value.
        #[arg(long)]
        value: Option<u32>,
        /// Free-text note on the assessment.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        meta: Meta,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &ConditionCmd) -> Result<Reply, CliError> {
    match cmd {
        ConditionCmd::Define {
            id,
            title,
            description,
            area,
            threshold,
            meta,
        } => command!(
            s,
            define_condition,
            v1::DefineConditionRequest {
                meta: meta.proto(),
                condition_id: id.clone(),
                title: title.clone(),
                description: description.clone(),
                area: area.map_or(v1::CapabilityArea::Unspecified as i32, area_to_proto),
                threshold: *threshold,
            }
        ),
        ConditionCmd::Assess {
            condition,
            on,
            status,
            value,
            note,
            meta,
        } => command!(
            s,
            assess_condition,
            v1::AssessConditionRequest {
                meta: meta.proto(),
                condition_id: condition.clone(),
                assessed_on: date(*on),
                status: condition_status_to_proto(*status),
                value: *value,
                note: note.clone(),
            }
        ),
    }
}
