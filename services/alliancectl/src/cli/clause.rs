//! `clause`: define agreement clauses (123 agreement, missile guidelines, ...) and amend them.

use alliance_domain::{AgreementKind, ClauseStatus, Date};
use alliance_proto::convert::{
    agreement_from_proto, agreement_to_proto, clause_status_from_proto, clause_status_to_proto,
};
use alliance_proto::v1;
use clap::Subcommand;

use super::flags::{Meta, Step, date};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum ClauseCmd {
    /// Define an agreement clause and its status since a date.
    Define {
        /// Clause id, a short slug (e.g. 123-enrichment).
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = enum_of(agreement_from_proto))]
        agreement: AgreementKind,
        #[arg(long)]
        title: String,
        #[arg(long, value_parser = enum_of(clause_status_from_proto))]
        status: ClauseStatus,
        #[arg(long, value_parser = parse::date)]
        since: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Amend a clause's status by a decision.
    Amend {
        /// The clause's id.
        #[arg(long)]
        clause: String,
        #[arg(long, value_parser = enum_of(clause_status_from_proto))]
        status: ClauseStatus,
        #[command(flatten)]
        step: Step,
    },
}

pub(super) async fn run(s: &mut Session, cmd: &ClauseCmd) -> Result<Reply, CliError> {
    match cmd {
        ClauseCmd::Define {
            id,
            agreement,
            title,
            status,
            since,
            meta,
        } => command!(
            s,
            define_agreement_clause,
            v1::DefineAgreementClauseRequest {
                meta: meta.proto(),
                clause_id: id.clone(),
                agreement: agreement_to_proto(*agreement),
                title: title.clone(),
                status: clause_status_to_proto(*status),
                since: date(*since),
            }
        ),
        ClauseCmd::Amend {
            clause,
            status,
            step,
        } => command!(
            s,
            amend_agreement_clause,
            v1::AmendAgreementClauseRequest {
                meta: step.meta.proto(),
                decision_id: step.decision.clone(),
                clause_id: clause.clone(),
                status: clause_status_to_proto(*status),
                on: step.on(),
            }
        ),
    }
}
