//! `opcon`: schedule the conditions-based wartime OPCON transfer.

use alliance_proto::v1;
use clap::Subcommand;

use super::flags::Step;
use crate::errors::CliError;
use crate::output::Reply;
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum OpconCmd {
    /// Schedule the wartime OPCON transfer, gated by conditions.
    Schedule {
        /// A condition that gates the transfer (repeatable, at least one).
        #[arg(long = "condition", value_name = "CONDITION", required = true)]
        conditions: Vec<String>,
        #[command(flatten)]
        step: Step,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &OpconCmd) -> Result<Reply, CliError> {
    match cmd {
        OpconCmd::Schedule { conditions, step } => {
            command!(
                s,
                schedule_opcon_transfer,
                v1::ScheduleOpconTransferRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    on: step.on(),
                    conditions: conditions.clone(),
                }
            )
        }
    }
}
