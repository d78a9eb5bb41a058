//! `decision`: propose decisions and move them through endorsement to adoption.

use alliance_domain::{Date, Side};
use alliance_proto::convert::{side_from_proto, side_to_proto};
use alliance_proto::v1;
use clap::Subcommand;

use super::flags::{Meta, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum DecisionCmd {
    /// Propose a decision; its steps are added by the other subcommands.
    Propose {
        /// Decision id, a short slug (e.g. opcon-transfer).
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// Why: the argument for the decision.
        #[arg(long)]
        rationale: String,
        /// The date the decision takes effect (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        effective: Date,
        /// The sides that must endorse it, e.g. us,rok.
        #[arg(long, required = true, value_delimiter = ',', value_parser = enum_of(side_from_proto))]
        sides: Vec<Side>,
        /// A decision this one supersedes once adopted (repeatable).
        #[arg(long)]
        supersedes: Vec<String>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Endorse a decision for the caller's side.
    Endorse {
        /// The decision's id.
        decision: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Adopt a decision endorsed by every required side.
    Adopt {
        /// The decision's id.
        decision: String,
        /// Accept a finding adoption would add to the adopted plan (its id, as `findings` and
        /// the refusal name it); repeatable. Recorded with the adoption.
        #[arg(long = "acknowledge", value_name = "FINDING_ID")]
        acknowledge: Vec<String>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Reject a decision.
    Reject {
        /// The decision's id.
        decision: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Withdraw a proposed decision.
    Withdraw {
        /// The decision's id.
        decision: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        meta: Meta,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &DecisionCmd) -> Result<Reply, CliError> {
    match cmd {
        DecisionCmd::Propose {
            id,
            title,
            rationale,
            effective,
            sides,
            supersedes,
            meta,
        } => command!(
            s,
            propose_decision,
            v1::ProposeDecisionRequest {
                meta: meta.proto(),
                decision_id: id.clone(),
                title: title.clone(),
                rationale: rationale.clone(),
                effective_date: date(*effective),
                required_sides: sides.iter().copied().map(side_to_proto).collect(),
                supersedes: supersedes.clone(),
            }
        ),
        DecisionCmd::Endorse { decision, meta } => {
            command!(
                s,
                endorse_decision,
                v1::EndorseDecisionRequest {
                    meta: meta.proto(),
                    decision_id: decision.clone(),
                }
            )
        }
        DecisionCmd::Adopt {
            decision,
            acknowledge,
            meta,
        } => command!(
            s,
            adopt_decision,
            v1::AdoptDecisionRequest {
                meta: meta.proto(),
                decision_id: decision.clone(),
                acknowledged_findings: acknowledge.clone(),
            }
        ),
        DecisionCmd::Reject {
            decision,
            reason,
            meta,
        } => command!(
            s,
            reject_decision,
            v1::RejectDecisionRequest {
                meta: meta.proto(),
                decision_id: decision.clone(),
                reason: reason.clone(),
            }
        ),
        DecisionCmd::Withdraw {
            decision,
            reason,
            meta,
        } => command!(
            s,
            withdraw_decision,
            v1::WithdrawDecisionRequest {
                meta: meta.proto(),
                decision_id: decision.clone(),
                reason: reason.clone(),
            }
        ),
    }
}
