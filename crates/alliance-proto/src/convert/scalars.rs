//! Scalars both ways: enums, dates, sides, equipment, elements, actors and grants.

use alliance_domain::{
    Actor, AgreementKind, CapabilityArea, ClauseStatus, Component, ConditionStatus, Date,
    DecisionStatus, ElementKind, ForceElementSpec, Grant, Mission, Side,
};
use chrono::Datelike;

use crate::v1;

macro_rules! enum_conv {
    ($domain:ident, $proto:ident, $to:ident, $from:ident, [$($v:ident),* $(,)?]) => {
        pub fn $to(value: $domain) -> i32 {
            match value {
                $($domain::$v => v1::$proto::$v as i32,)*
            }
        }

        pub fn $from(value: i32) -> Option<$domain> {
            match v1::$proto::try_from(value).ok()? {
                $(v1::$proto::$v => Some($domain::$v),)*
                v1::$proto::Unspecified => None,
            }
        }
    };
}

enum_conv!(Side, Side, side_to_proto, side_from_proto, [Us, Rok]);
enum_conv!(
    Component,
    Component,
    component_to_proto,
    component_from_proto,
    [Army, AirForce, Navy, Marines, Joint]
);
enum_conv!(
    ElementKind,
    ElementKind,
    kind_to_proto,
    kind_from_proto,
    [
        GroundCombatBrigade,
        CombatAviation,
        FieldArtillery,
        AirDefense,
        Thaad,
        FighterSquadron,
        Isr,
        Logistics,
        Medical,
        SignalC2,
        Headquarters,
        StrategicEnabler
    ]
);
enum_conv!(
    CapabilityArea,
    CapabilityArea,
    area_to_proto,
    area_from_proto,
    [
        GroundCombat,
        CombatSupport,
        AirSuperiority,
        MissileDefense,
        Isr,
        Logistics,
        CommandAndControl,
        Munitions,
        ExtendedDeterrence
    ]
);
enum_conv!(
    AgreementKind,
    AgreementKind,
    agreement_to_proto,
    agreement_from_proto,
    [
        NuclearCooperation123,
        MissileGuidelines,
        MutualDefenseTreaty,
        ExtendedDeterrence
    ]
);
enum_conv!(
    ClauseStatus,
    ClauseStatus,
    clause_status_to_proto,
    clause_status_from_proto,
    [Restricted, Permitted, Terminated]
);
enum_conv!(
    ConditionStatus,
    ConditionStatus,
    condition_status_to_proto,
    condition_status_from_proto,
    [NotMet, PartiallyMet, Met]
);
enum_conv!(
    Mission,
    Mission,
    mission_to_proto,
    mission_from_proto,
    [
        PeacetimeSecurity,
        MajorCombat,
        CombatSupport,
        Logistics,
        Intelligence,
        ExtendedDeterrence,
        Reinforcement
    ]
);
enum_conv!(
    DecisionStatus,
    DecisionStatus,
    decision_status_to_proto,
    decision_status_from_proto,
    [Proposed, Adopted, Rejected, Withdrawn, Superseded]
);

pub fn date_to_proto(date: Date) -> v1::Date {
    v1::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

pub fn date_from_proto(date: &v1::Date) -> Option<Date> {
    let month = u32::try_from(date.month).ok()?;
    let day = u32::try_from(date.day).ok()?;
    Date::from_ymd_opt(date.year, month, day)
}

pub(crate) fn opt_side_to_proto(side: Option<Side>) -> i32 {
    side.map_or(v1::Side::Unspecified as i32, side_to_proto)
}

/// Sides as the protobuf lists them, in the order given.
pub fn sides_to_proto<S: std::borrow::Borrow<Side>>(
    sides: impl IntoIterator<Item = S>,
) -> Vec<i32> {
    sides
        .into_iter()
        .map(|side| side_to_proto(*side.borrow()))
        .collect()
}

pub fn equipment_to_proto(equipment: &alliance_domain::EquipmentCounts) -> Vec<v1::EquipmentCount> {
    equipment
        .iter()
        .map(|(kind, count)| v1::EquipmentCount {
            kind: kind.clone(),
            count: *count,
        })
        .collect()
}

pub fn element_to_proto(element: &ForceElementSpec) -> v1::ForceElement {
    v1::ForceElement {
        element_id: element.id.to_string(),
        name: element.name.to_string(),
        side: side_to_proto(element.side),
        component: component_to_proto(element.component),
        kind: kind_to_proto(element.kind),
        personnel: element.personnel,
        equipment: equipment_to_proto(&element.equipment),
        base: element.base.to_string(),
    }
}

pub fn actor_to_proto(actor: &Actor) -> v1::Actor {
    v1::Actor {
        team: actor.team.to_string(),
        user: actor.user.clone(),
        side: opt_side_to_proto(actor.side),
    }
}

/// A role grant on the wire.
pub fn grant_to_proto(grant: &Grant) -> v1::RoleGrant {
    v1::RoleGrant {
        team: grant.team.to_string(),
        role: grant.role.to_string(),
    }
}
