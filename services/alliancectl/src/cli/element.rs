//! `element`: register force elements and plan their addition, withdrawal, reduction or
//! relocation.

use alliance_domain::{Component, Date, ElementKind, Side};
use alliance_proto::convert::{
    component_from_proto, component_to_proto, kind_from_proto, kind_to_proto, side_from_proto,
    side_to_proto,
};
use alliance_proto::v1;
use clap::{Args, Subcommand};

use super::flags::{Meta, Step, date, equipment};
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum ElementCmd {
    /// Register a baseline force element, present from a date.
    Register {
        #[command(flatten)]
        element: Element,
        #[arg(long, value_parser = parse::date)]
        present_from: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Add a force element by a decision.
    Add {
        #[command(flatten)]
        element: Element,
        #[command(flatten)]
        step: Step,
    },
    /// Withdraw a force element by a decision.
    Withdraw {
        /// The force element's id.
        #[arg(long)]
        element: String,
        #[command(flatten)]
        step: Step,
    },
    /// Reduce a force element by a decision: remove personnel and/or equipment.
    Reduce {
        /// The force element's id.
        #[arg(long)]
        element: String,
        #[command(flatten)]
        cut: Cut,
        #[command(flatten)]
        step: Step,
    },
    /// Relocate a force element to another base by a decision.
    Relocate {
        /// The force element's id.
        #[arg(long)]
        element: String,
        /// The new base.
        #[arg(long)]
        to_base: String,
        #[command(flatten)]
        step: Step,
    },
}

/// What a reduction removes: at least one of the two.
#[derive(Args)]
#[group(required = true, multiple = true)]
pub(crate) struct Cut {
    /// Personnel to remove.
    #[arg(long)]
    pub(crate) personnel: Option<u32>,
    /// Equipment to remove (repeatable), e.g. --equipment M1A2=30.
    #[arg(long, value_name = "KIND=COUNT", value_parser = parse::equipment)]
    pub(crate) equipment: Vec<(String, u32)>,
}

#[derive(Args)]
pub(crate) struct Element {
    /// Element id, a short slug (e.g. 2id-abct).
    #[arg(long)]
    pub(crate) id: String,
    /// Display name, e.g. "2ID rotational ABCT".
    #[arg(long)]
    pub(crate) name: String,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    pub(crate) side: Side,
    #[arg(long, value_parser = enum_of(component_from_proto))]
    pub(crate) component: Component,
    #[arg(long, value_parser = enum_of(kind_from_proto))]
    pub(crate) kind: ElementKind,
    /// Personnel strength.
    #[arg(long)]
    pub(crate) personnel: u32,
    /// Major equipment (repeatable), e.g. --equipment M1A2=90.
    #[arg(long, value_name = "KIND=COUNT", value_parser = parse::equipment)]
    pub(crate) equipment: Vec<(String, u32)>,
    /// Base, e.g. "Camp Humphreys".
    #[arg(long)]
    pub(crate) base: String,
}

impl Element {
    pub(crate) fn proto(&self) -> Option<v1::ForceElement> {
        Some(v1::ForceElement {
            element_id: self.id.clone(),
            name: self.name.clone(),
            side: side_to_proto(self.side),
            component: component_to_proto(self.component),
            kind: kind_to_proto(self.kind),
            personnel: self.personnel,
            equipment: equipment(&self.equipment),
            base: self.base.clone(),
        })
    }
}

pub(super) async fn run(s: &mut Session, cmd: &ElementCmd) -> Result<Reply, CliError> {
    match cmd {
        ElementCmd::Register {
            element,
            present_from,
            meta,
        } => command!(
            s,
            register_force_element,
            v1::RegisterForceElementRequest {
                meta: meta.proto(),
                element: element.proto(),
                present_from: date(*present_from),
            }
        ),
        ElementCmd::Add { element, step } => command!(
            s,
            add_force_element,
            v1::AddForceElementRequest {
                meta: step.meta.proto(),
                decision_id: step.decision.clone(),
                element: element.proto(),
                on: step.on(),
            }
        ),
        ElementCmd::Withdraw { element, step } => {
            command!(
                s,
                withdraw_force_element,
                v1::WithdrawForceElementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    element_id: element.clone(),
                    on: step.on(),
                }
            )
        }
        ElementCmd::Reduce { element, cut, step } => {
            command!(
                s,
                reduce_force_element,
                v1::ReduceForceElementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    element_id: element.clone(),
                    personnel: cut.personnel.unwrap_or(0),
                    equipment: equipment(&cut.equipment),
                    on: step.on(),
                }
            )
        }
        ElementCmd::Relocate {
            element,
            to_base,
            step,
        } => command!(
            s,
            relocate_force_element,
            v1::RelocateForceElementRequest {
                meta: step.meta.proto(),
                decision_id: step.decision.clone(),
                element_id: element.clone(),
                to_base: to_base.clone(),
                on: step.on(),
            }
        ),
    }
}
