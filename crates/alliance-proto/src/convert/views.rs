//! Views of a plan: the write side's (`GetPlan`, `ListPlans`) and the posture the read models
//! answer with.

use std::collections::BTreeSet;

use alliance_domain::{ElementTimeline, Grant, Plan, PlanId, Posture, Step};

use super::scalars::*;
use crate::v1;

/// The write-side summary of a plan, for `GetPlan`.
/// A clause as the message `$message` holds it (`ClauseSummary` of a plan, `ClauseState` of a
/// posture: the same fields), from the plan's `AgreementClause` or the posture's `ClauseState`
/// (the same fields too).
macro_rules! clause_message {
    ($message:path, $clause:expr) => {{
        let c = $clause;
        $message {
            clause_id: c.id.to_string(),
            agreement: agreement_to_proto(c.agreement),
            title: c.title.clone(),
            status: clause_status_to_proto(c.status),
            since: Some(date_to_proto(c.since)),
        }
    }};
}

pub fn plan_summary(plan: &Plan) -> v1::PlanSummary {
    let none = BTreeSet::new();
    let elements = plan
        .elements
        .keys()
        .chain(plan.planned_elements.keys())
        .filter_map(|id| ElementTimeline::build(plan, id, [], &none).ok().flatten())
        .map(|timeline| {
            let withdrawn_on = timeline.steps.iter().find_map(|(on, _, step)| {
                matches!(step, Step::WithdrawElement { .. }).then(|| date_to_proto(*on))
            });
            v1::ElementSummary {
                added_by: plan
                    .planned_elements
                    .get(&timeline.spec.id)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                element: Some(element_to_proto(&timeline.spec)),
                present_from: Some(date_to_proto(timeline.present_from)),
                withdrawn_on,
            }
        })
        .collect();
    v1::PlanSummary {
        head: Some(plan_head(plan)),
        description: plan.description.clone(),
        horizon_start: Some(date_to_proto(plan.horizon_start)),
        horizon_end: Some(date_to_proto(plan.horizon_end)),
        decisions: plan
            .decisions
            .values()
            .map(|d| v1::DecisionSummary {
                decision_id: d.id.to_string(),
                title: d.title.clone(),
                status: decision_status_to_proto(d.status),
                owner_team: d.owner_team.to_string(),
                effective_date: Some(date_to_proto(d.effective_date)),
                required_sides: sides_to_proto(d.required_sides),
                derived_sides: sides_to_proto(d.derived_sides(plan)),
                endorsements: sides_to_proto(d.endorsements),
                step_count: u32::try_from(d.steps.len()).unwrap_or(u32::MAX),
                superseded_by: d
                    .superseded_by()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            })
            .collect(),
        elements,
        conditions: plan
            .conditions
            .values()
            .map(|c| {
                let latest = c.assessments.iter().max_by_key(|a| a.assessed_on);
                v1::ConditionSummary {
                    condition_id: c.id.to_string(),
                    title: c.title.clone(),
                    latest_status: latest.map_or(0, |a| condition_status_to_proto(a.status)),
                    latest_assessed_on: latest.map(|a| date_to_proto(a.assessed_on)),
                }
            })
            .collect(),
        clauses: plan
            .clauses
            .values()
            .map(|c| clause_message!(v1::ClauseSummary, c))
            .collect(),
        grants: plan
            .grants
            .iter()
            .flat_map(|(team, roles)| {
                roles.iter().map(|role| {
                    grant_to_proto(&Grant {
                        team: team.clone(),
                        role: *role,
                    })
                })
            })
            .collect(),
    }
}

pub fn plan_head(plan: &Plan) -> v1::PlanHead {
    let (parent_plan_id, parent_version) = plan
        .lineage
        .last()
        .map_or((String::new(), 0), |(id, v)| (id.to_string(), *v));
    v1::PlanHead {
        plan_id: plan.id.map(|id| id.to_string()).unwrap_or_default(),
        name: plan.name.clone(),
        version: plan.version,
        parent_plan_id,
        parent_version,
    }
}

fn opt_side(side: Option<alliance_domain::Side>) -> i32 {
    side.map_or(v1::Side::Unspecified as i32, side_to_proto)
}

/// The posture the read models answer with (`GetPosture`, `WatchPosture`, a series's points).
pub fn posture_to_proto(plan_id: PlanId, posture: &Posture) -> v1::Posture {
    v1::Posture {
        plan_id: plan_id.to_string(),
        valid_on: Some(date_to_proto(posture.valid_on)),
        version: posture.version,
        what_if: posture.what_if,
        elements: posture
            .elements
            .iter()
            .map(|e| v1::ForceElement {
                element_id: e.id.to_string(),
                name: e.name.to_string(),
                side: side_to_proto(e.side),
                component: component_to_proto(e.component),
                kind: kind_to_proto(e.kind),
                personnel: e.personnel,
                equipment: equipment_to_proto(&e.equipment),
                base: e.base.to_string(),
            })
            .collect(),
        personnel: posture
            .personnel
            .iter()
            .map(|((side, component, kind), personnel)| v1::PersonnelCount {
                side: side_to_proto(*side),
                component: component_to_proto(*component),
                kind: kind_to_proto(*kind),
                personnel: saturate(*personnel),
            })
            .collect(),
        equipment: posture
            .equipment
            .iter()
            .map(|((side, kind), count)| v1::SideEquipment {
                side: side_to_proto(*side),
                kind: kind.clone(),
                count: saturate(*count),
            })
            .collect(),
        capability: posture
            .capability
            .iter()
            .map(|((side, area), level)| v1::CapabilityLevel {
                side: side_to_proto(*side),
                area: area_to_proto(*area),
                level: *level,
            })
            .collect(),
        missions: posture
            .missions
            .iter()
            .map(|m| v1::MissionAssignment {
                mission: mission_to_proto(m.mission),
                lead: side_to_proto(m.lead),
                supporting: opt_side(m.supporting),
                since: Some(date_to_proto(m.since)),
            })
            .collect(),
        command: Some(v1::CommandArrangementState {
            peacetime_opcon: opt_side(posture.command.peacetime_opcon),
            wartime_opcon: opt_side(posture.command.wartime_opcon),
            cfc_commander: opt_side(posture.command.cfc_commander),
        }),
        clauses: posture
            .clauses
            .iter()
            .map(|c| clause_message!(v1::ClauseState, c))
            .collect(),
        conditions: posture
            .conditions
            .iter()
            .map(|c| v1::ConditionState {
                condition_id: c.id.to_string(),
                title: c.title.clone(),
                assessed_on: c.assessed_on.map(date_to_proto),
                status: c.status.map_or(0, condition_status_to_proto),
                value: c.value,
            })
            .collect(),
        decision_ids: posture.decisions.iter().map(ToString::to_string).collect(),
        us_personnel: saturate(posture.personnel_of(alliance_domain::Side::Us)),
    }
}

/// A total for a `uint32` field of the contract: past `u32::MAX` it reads `u32::MAX` (the
/// domain's totals are exact `u64` sums).
fn saturate(total: u64) -> u32 {
    u32::try_from(total).unwrap_or(u32::MAX)
}
