//! `command-arrangement`: change who holds OPCON or commands the CFC.

use alliance_domain::Side;
use alliance_proto::convert::{side_from_proto, side_to_proto};
use alliance_proto::v1;
use clap::{Args, Subcommand};

use super::flags::Step;
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::enum_of;
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum ArrangementCmd {
    /// Change peacetime or wartime OPCON or the CFC commander.
    Change {
        #[command(flatten)]
        holders: Holders,
        #[command(flatten)]
        step: Step,
    },
}

/// Who holds what after the change: at least one.
#[derive(Args)]
#[group(required = true, multiple = true)]
pub(crate) struct Holders {
    #[arg(long, value_parser = enum_of(side_from_proto))]
    pub(crate) peacetime: Option<Side>,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    pub(crate) wartime: Option<Side>,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    pub(crate) cfc_commander: Option<Side>,
}

pub(super) async fn run(s: &mut Session, cmd: &ArrangementCmd) -> Result<Reply, CliError> {
    match cmd {
        ArrangementCmd::Change { holders, step } => {
            let side = |s: Option<Side>| s.map_or(v1::Side::Unspecified as i32, side_to_proto);
            command!(
                s,
                change_command_arrangement,
                v1::ChangeCommandArrangementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    on: step.on(),
                    peacetime_opcon: side(holders.peacetime),
                    wartime_opcon: side(holders.wartime),
                    cfc_commander: side(holders.cfc_commander),
                }
            )
        }
    }
}
