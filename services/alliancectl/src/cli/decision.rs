//! `decision`: propose decisions and move them through endorsement to adoption.

use alliance_domain::{CapabilityArea, Date, Side};
use alliance_proto::convert::{area_from_proto, area_to_proto, side_from_proto, side_to_proto};
use alliance_proto::v1;
use clap::{Args, Subcommand};

use super::flags::{Meta, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

/// One prerequisite: exactly one of its kinds.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PrerequisiteKind {
    /// The decision that must have taken effect first.
    #[arg(long, value_name = "DECISION")]
    after: Option<String>,
    /// Conditions assessed met on the date (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    conditions: Option<Vec<String>>,
    /// A side's capability reached on the date (with --area and --level).
    #[arg(long, value_parser = enum_of(side_from_proto), requires_all = ["area", "level"])]
    side: Option<Side>,
}

#[derive(Args)]
pub(crate) struct PrerequisiteArgs {
    #[command(flatten)]
    kind: PrerequisiteKind,
    /// With --after: months after its last step, at least.
    #[arg(long, default_value_t = 0, requires = "after")]
    lag_months: u32,
    #[arg(long, value_parser = enum_of(area_from_proto), requires = "side")]
    area: Option<CapabilityArea>,
    #[arg(long, requires = "side")]
    level: Option<u32>,
}

impl PrerequisiteArgs {
    fn proto(&self) -> v1::Prerequisite {
        use v1::prerequisite::{AfterDecision, CapabilityReached, ConditionsMet, Kind};
        let kind = match (&self.kind.after, &self.kind.conditions, self.kind.side) {
            (Some(decision), _, _) => Kind::AfterDecision(AfterDecision {
                decision_id: decision.clone(),
                lag_months: self.lag_months,
            }),
            (None, Some(conditions), _) => Kind::ConditionsMet(ConditionsMet {
                condition_ids: conditions.clone(),
            }),
            (None, None, side) => Kind::CapabilityReached(CapabilityReached {
                side: side.map_or(0, side_to_proto),
                area: self.area.map_or(0, area_to_proto),
                level: self.level.unwrap_or_default(),
            }),
        };
        v1::Prerequisite { kind: Some(kind) }
    }
}

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
    /// Add a prerequisite to a proposed decision no side has endorsed yet (its owner only):
    /// another decision done first (--after, with --lag-months), conditions assessed met
    /// (--conditions), or a capability reached (--side, --area, --level). Judged on the date its
    /// first step takes effect.
    Require {
        /// The decision's id.
        decision: String,
        #[command(flatten)]
        prerequisite: PrerequisiteArgs,
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
        DecisionCmd::Require {
            decision,
            prerequisite,
            meta,
        } => command!(
            s,
            require_prerequisite,
            v1::RequirePrerequisiteRequest {
                meta: meta.proto(),
                decision_id: decision.clone(),
                prerequisite: Some(prerequisite.proto()),
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
