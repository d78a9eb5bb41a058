//! `mission`: change who leads a mission of the operational plans.

use alliance_domain::{Mission, Side};
use alliance_proto::convert::{
    mission_from_proto, mission_to_proto, side_from_proto, side_to_proto,
};
use alliance_proto::v1;
use clap::Subcommand;

use super::flags::Step;
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::enum_of;
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum MissionCmd {
    /// Give a mission to a lead side from a date (a step; both sides endorse the decision).
    Assign {
        /// peacetime_security, major_combat, combat_support, logistics, intelligence,
        /// extended_deterrence or reinforcement.
        #[arg(long, value_parser = enum_of(mission_from_proto))]
        mission: Mission,
        #[arg(long, value_parser = enum_of(side_from_proto))]
        lead: Side,
        /// The other side, when it supports; none when omitted.
        #[arg(long, value_parser = enum_of(side_from_proto))]
        supporting: Option<Side>,
        #[command(flatten)]
        step: Step,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &MissionCmd) -> Result<Reply, CliError> {
    match cmd {
        MissionCmd::Assign {
            mission,
            lead,
            supporting,
            step,
        } => command!(
            s,
            assign_mission,
            v1::AssignMissionRequest {
                meta: step.meta.proto(),
                decision_id: step.decision.clone(),
                mission: mission_to_proto(*mission),
                lead: side_to_proto(*lead),
                supporting: supporting.map_or(v1::Side::Unspecified as i32, side_to_proto),
                on: step.on(),
            }
        ),
    }
}
