//! `constraint`: plan-level rules the posture must keep, and the certifications that lift them.

use alliance_domain::{CapabilityArea, Component, Date, ElementKind, Side};
use alliance_proto::convert::{
    area_from_proto, area_to_proto, component_from_proto, component_to_proto, date_to_proto,
    kind_from_proto, kind_to_proto, side_from_proto, side_to_proto,
};
use alliance_proto::v1;
use alliance_proto::v1::constraint_rule::{CombinedCapability, Kind, PersonnelBounds};
use clap::{Args, Subcommand};

use super::flags::Meta;
use crate::errors::CliError;
use crate::output::Reply;
use crate::parse::{self, enum_of};
use crate::session::{Session, command};

#[derive(Subcommand)]
pub(crate) enum ConstraintCmd {
    /// Define a constraint: a personnel floor or ceiling (of a side, one component or kind), or
    /// a minimum combined U.S. + ROK capability in an area.
    Define {
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        #[command(flatten)]
        rule: Rule,
        /// The government whose rule it is (only it certifies a waiver); none: an alliance rule.
        #[arg(long, value_parser = enum_of(side_from_proto))]
        owner: Option<Side>,
        /// Where the rule comes from: a statute, an agreement, a planning assumption.
        #[arg(long)]
        authority: String,
        /// The first date it applies (YYYY-MM-DD); default: the plan's horizon start.
        #[arg(long, value_parser = parse::date)]
        since: Option<Date>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Record a certification or waiver that lifts a constraint from a date.
    Waive {
        #[arg(long)]
        id: String,
        /// The date it lifts the constraint from (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        from: Date,
        #[arg(long)]
        authority: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        meta: Meta,
    },
}

/// The rule: personnel bounds of a side, or a combined capability floor.
#[derive(Args)]
pub(crate) struct Rule {
    /// Personnel of this side stay within --min / --max.
    #[arg(long, value_parser = enum_of(side_from_proto), conflicts_with = "area")]
    side: Option<Side>,
    #[arg(long, value_parser = enum_of(component_from_proto), requires = "side")]
    component: Option<Component>,
    #[arg(long, value_parser = enum_of(kind_from_proto), requires = "side")]
    kind: Option<ElementKind>,
    /// The combined U.S. + ROK level in this area stays at or above --min.
    #[arg(long, value_parser = enum_of(area_from_proto), required_unless_present = "side")]
    area: Option<CapabilityArea>,
    #[arg(long)]
    min: Option<u64>,
    #[arg(long, requires = "side")]
    max: Option<u64>,
}

impl Rule {
    fn proto(&self) -> v1::ConstraintRule {
        let kind = match (self.side, self.area) {
            (Some(side), _) => Kind::Personnel(PersonnelBounds {
                side: side_to_proto(side),
                component: self.component.map_or(0, component_to_proto),
                kind: self.kind.map_or(0, kind_to_proto),
                min: self.min,
                max: self.max,
            }),
            (None, area) => Kind::CombinedCapability(CombinedCapability {
                area: area.map_or(0, area_to_proto),
                // Out of range is the server's to name (rule.min).
                min: self
                    .min
                    .map_or(0, |min| u32::try_from(min).unwrap_or(u32::MAX)),
            }),
        };
        v1::ConstraintRule { kind: Some(kind) }
    }
}

pub(super) async fn run(s: &mut Session, cmd: &ConstraintCmd) -> Result<Reply, CliError> {
    match cmd {
        ConstraintCmd::Define {
            id,
            title,
            rule,
            owner,
            authority,
            since,
            meta,
        } => command!(
            s,
            define_constraint,
            v1::DefineConstraintRequest {
                meta: meta.proto(),
                constraint_id: id.clone(),
                title: title.clone(),
                rule: Some(rule.proto()),
                side: owner.map_or(v1::Side::Unspecified as i32, side_to_proto),
                authority: authority.clone(),
                since: since.map(date_to_proto),
            }
        ),
        ConstraintCmd::Waive {
            id,
            from,
            authority,
            note,
            meta,
        } => command!(
            s,
            waive_constraint,
            v1::WaiveConstraintRequest {
                meta: meta.proto(),
                constraint_id: id.clone(),
                from: Some(date_to_proto(*from)),
                authority: authority.clone(),
                note: note.clone(),
            }
        ),
    }
}
