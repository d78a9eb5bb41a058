//! The write side's views of a plan (`GetPlan`, `ListPlans`).

use std::collections::BTreeSet;

use alliance_domain::{ElementTimeline, Grant, Plan, Step};

use super::scalars::*;
use crate::v1;

/// The write-side summary of a plan, for `GetPlan`.
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
                required_sides: sides_to_proto(&d.required_sides),
                derived_sides: sides_to_proto(&d.derived_sides(plan)),
                endorsements: sides_to_proto(&d.endorsements),
                step_count: u32::try_from(d.steps.len()).unwrap_or(u32::MAX),
                superseded_by: d
                    .superseded_by
                    .as_ref()
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
            .map(|c| v1::ClauseSummary {
                clause_id: c.id.to_string(),
                agreement: agreement_to_proto(c.agreement),
                title: c.title.clone(),
                status: clause_status_to_proto(c.status),
                since: Some(date_to_proto(c.since)),
            })
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
