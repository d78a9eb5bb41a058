//! Overlays of unsaved proposed decisions (simulation what-ifs), both ways.

use std::collections::BTreeSet;

use alliance_domain::{Command, DecisionId, Event, FieldViolation, Step};

use super::commands::StepMessage;
use super::events::*;
use super::fields::Fields;
use super::scalars::*;
use crate::v1;
use crate::v1::event_envelope::Payload;
use crate::v1::overlay_step::Step as S;

/// The commands an overlay of unsaved proposed decisions stands for: each decision's
/// `ProposeDecision`, then a `PlanStep` per step. Every violation is named by its place
/// (`overlay[0].steps[1].withdraw_force_element.element_id`).
pub fn overlay_commands(
    overlay: &[v1::OverlayDecision],
) -> Result<Vec<Command>, Vec<FieldViolation>> {
    let mut commands = Vec::new();
    let mut violations = Vec::new();
    for (i, decision) in overlay.iter().enumerate() {
        let at = |field: &str| format!("overlay[{i}].{field}");
        let mut f = Fields::default();
        let decision_id: Option<alliance_domain::DecisionId> =
            f.id(&at("decision_id"), &decision.decision_id);
        let effective_date = f.date(&at("effective_date"), decision.effective_date.as_ref());
        let required_sides = f.sides(&at("required_sides"), &decision.required_sides);
        violations.extend(f.0);
        let (Some(decision_id), Some(effective_date)) = (decision_id, effective_date) else {
            continue;
        };
        commands.push(Command::ProposeDecision {
            decision_id: decision_id.clone(),
            title: decision.title.clone(),
            rationale: decision.rationale.clone(),
            effective_date,
            required_sides,
            supersedes: BTreeSet::new(),
        });
        for (j, step) in decision.steps.iter().enumerate() {
            let place = format!("overlay[{i}].steps[{j}]");
            match overlay_step(&decision_id, step.step.as_ref()) {
                Ok(step) => commands.push(Command::PlanStep {
                    decision_id: decision_id.clone(),
                    step,
                }),
                Err(errors) => violations.extend(errors.into_iter().map(|v| {
                    let field = [place.as_str(), v.field.as_str()].join(".");
                    FieldViolation::new(field.trim_end_matches('.'), v.description)
                })),
            }
        }
    }
    if violations.is_empty() {
        Ok(commands)
    } else {
        Err(violations)
    }
}

/// One step of an overlay as the domain's step, or its violations (fields relative to the step).
///
/// A step message reads as its `PlanCommands` request does, its fields under the oneof field's
/// name (`withdraw_force_element.element_id`). A deprecated event-shaped step reads as its
/// event does (its `decision_id` replaced by the decision it is listed under), its fields
/// directly under the step, as before.
fn overlay_step(decision_id: &DecisionId, step: Option<&S>) -> Result<Step, Vec<FieldViolation>> {
    let (message, name): (&dyn StepMessage, &str) = match step {
        None => return Err(vec![FieldViolation::new("", "a step is required")]),
        Some(S::AddForceElement(m)) => (m, "add_force_element"),
        Some(S::WithdrawForceElement(m)) => (m, "withdraw_force_element"),
        Some(S::ReduceForceElement(m)) => (m, "reduce_force_element"),
        Some(S::RelocateForceElement(m)) => (m, "relocate_force_element"),
        Some(S::ScheduleOpconTransfer(m)) => (m, "schedule_opcon_transfer"),
        Some(S::ChangeArrangement(m)) => (m, "change_arrangement"),
        Some(S::AmendAgreementClause(m)) => (m, "amend_agreement_clause"),
        Some(S::PlanCapabilityInvestment(m)) => (m, "plan_capability_investment"),
        Some(S::AssignMission(m)) => (m, "assign_mission"),
        Some(deprecated) => return deprecated_step(decision_id, deprecated.clone()),
    };
    let mut f = Fields::default();
    let step = message.step(&mut f);
    f.finish(step).map_err(|errors| {
        errors
            .into_iter()
            .map(|v| FieldViolation::new(format!("{name}.{}", v.field), v.description))
            .collect()
    })
}

/// A deprecated event-shaped step, read as its event under the decision it is listed under.
#[allow(deprecated)]
fn deprecated_step(decision_id: &DecisionId, step: S) -> Result<Step, Vec<FieldViolation>> {
    // The event's own decision_id is ignored: the step belongs to the decision it is listed under.
    macro_rules! under_decision {
        ($event:ident($payload:ident)) => {{
            let mut payload = $payload;
            payload.decision_id = decision_id.to_string();
            Payload::$event(payload)
        }};
    }
    let payload = match step {
        S::AddElement(p) => under_decision!(ForceElementAdditionPlanned(p)),
        S::WithdrawElement(p) => under_decision!(ForceElementWithdrawalPlanned(p)),
        S::ReduceElement(p) => under_decision!(ForceElementReductionPlanned(p)),
        S::RelocateElement(p) => under_decision!(ForceElementRelocationPlanned(p)),
        S::TransferOpcon(p) => under_decision!(OpconTransferScheduled(p)),
        S::ChangeCommandArrangement(p) => under_decision!(CommandArrangementChangePlanned(p)),
        S::AmendClause(p) => under_decision!(AgreementClauseAmendmentPlanned(p)),
        S::InvestCapability(p) => under_decision!(CapabilityInvestmentPlanned(p)),
        _ => return Err(vec![FieldViolation::new("", "is not a step")]),
    };
    match event_from_payload(&payload)? {
        Event::StepPlanned { step, .. } => Ok(step),
        _ => Err(vec![FieldViolation::new("", "is not a step")]),
    }
}

/// A domain step as the overlay's step message (`OverlayStep.step`).
pub fn step_to_overlay(step: &Step) -> S {
    match step {
        Step::AddElement { element, on } => S::AddForceElement(v1::AddForceElementStep {
            element: Some(element_to_proto(element)),
            on: Some(date_to_proto(*on)),
        }),
        Step::WithdrawElement { element_id, on } => {
            S::WithdrawForceElement(v1::WithdrawForceElementStep {
                element_id: element_id.to_string(),
                on: Some(date_to_proto(*on)),
            })
        }
        Step::ReduceElement {
            element_id,
            personnel,
            equipment,
            on,
        } => S::ReduceForceElement(v1::ReduceForceElementStep {
            element_id: element_id.to_string(),
            personnel: *personnel,
            equipment: equipment_to_proto(equipment),
            on: Some(date_to_proto(*on)),
        }),
        Step::RelocateElement {
            element_id,
            to_base,
            on,
        } => S::RelocateForceElement(v1::RelocateForceElementStep {
            element_id: element_id.to_string(),
            to_base: to_base.clone(),
            on: Some(date_to_proto(*on)),
        }),
        Step::TransferOpcon { on, conditions } => {
            S::ScheduleOpconTransfer(v1::ScheduleOpconTransferStep {
                on: Some(date_to_proto(*on)),
                conditions: conditions.iter().map(ToString::to_string).collect(),
            })
        }
        Step::ChangeCommandArrangement {
            on,
            peacetime_opcon,
            wartime_opcon,
            cfc_commander,
        } => S::ChangeArrangement(v1::ChangeCommandArrangementStep {
            on: Some(date_to_proto(*on)),
            peacetime_opcon: opt_side_to_proto(*peacetime_opcon),
            wartime_opcon: opt_side_to_proto(*wartime_opcon),
            cfc_commander: opt_side_to_proto(*cfc_commander),
        }),
        Step::AmendClause {
            clause_id,
            status,
            on,
        } => S::AmendAgreementClause(v1::AmendAgreementClauseStep {
            clause_id: clause_id.to_string(),
            status: clause_status_to_proto(*status),
            on: Some(date_to_proto(*on)),
        }),
        Step::InvestCapability {
            investment_id,
            area,
            description,
            level_gain,
            delivery,
            cost_kusd,
        } => S::PlanCapabilityInvestment(v1::PlanCapabilityInvestmentStep {
            investment_id: investment_id.to_string(),
            area: area_to_proto(*area),
            description: description.clone(),
            level_gain: *level_gain,
            delivery: Some(date_to_proto(*delivery)),
            cost_kusd: *cost_kusd,
        }),
        Step::AssignMission {
            mission,
            lead,
            supporting,
            on,
        } => S::AssignMission(v1::AssignMissionStep {
            mission: mission_to_proto(*mission),
            lead: side_to_proto(*lead),
            supporting: opt_side_to_proto(*supporting),
            on: Some(date_to_proto(*on)),
        }),
    }
}

/// An overlay from proposed-decision commands (`ProposeDecision` followed by its `PlanStep`s);
/// other commands are refused, naming their index.
pub fn overlay_to_proto(commands: &[Command]) -> Result<Vec<v1::OverlayDecision>, String> {
    let mut overlay: Vec<v1::OverlayDecision> = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        match command {
            Command::ProposeDecision {
                decision_id,
                title,
                rationale,
                effective_date,
                required_sides,
                ..
            } => overlay.push(v1::OverlayDecision {
                decision_id: decision_id.to_string(),
                title: title.clone(),
                rationale: rationale.clone(),
                effective_date: Some(date_to_proto(*effective_date)),
                required_sides: sides_to_proto(required_sides),
                steps: Vec::new(),
            }),
            Command::PlanStep { decision_id, step } => {
                let decision = overlay
                    .iter_mut()
                    .find(|d| d.decision_id == decision_id.as_str())
                    .ok_or_else(|| {
                        format!("entry {index}: a step of {decision_id}, which is not proposed before it")
                    })?;
                let step = step_to_overlay(step);
                decision.steps.push(v1::OverlayStep { step: Some(step) });
            }
            other => {
                return Err(format!(
                    "entry {index}: {} is not allowed; an overlay holds proposed decisions and their steps",
                    other.name()
                ));
            }
        }
    }
    Ok(overlay)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use alliance_domain::{
        CapabilityArea, ClauseStatus, Component, Date, ElementKind, ForceElementSpec, Mission, Side,
    };

    use super::*;

    fn on(year: i32, month: u32) -> Date {
        Date::from_ymd_opt(year, month, 1).unwrap()
    }

    /// A proposed decision with one step of every kind.
    fn every_kind_of_step() -> Vec<Command> {
        let decision_id = DecisionId::parse("what-if").unwrap();
        let element = |id: &str| alliance_domain::ElementId::parse(id).unwrap();
        let steps = [
            Step::AddElement {
                element: ForceElementSpec {
                    id: element("patriot-b"),
                    name: "Patriot battalion".into(),
                    side: Side::Us,
                    component: Component::Army,
                    kind: ElementKind::AirDefense,
                    personnel: 600,
                    equipment: [("Patriot launcher".to_owned(), 12)].into_iter().collect(),
                    base: "Osan".into(),
                },
                on: on(2028, 1),
            },
            Step::WithdrawElement {
                element_id: element("thaad"),
                on: on(2028, 2),
            },
            Step::ReduceElement {
                element_id: element("patriot-b"),
                personnel: 100,
                equipment: [("Patriot launcher".to_owned(), 4)].into_iter().collect(),
                on: on(2028, 3),
            },
            Step::RelocateElement {
                element_id: element("patriot-b"),
                to_base: "Camp Humphreys".into(),
                on: on(2028, 4),
            },
            Step::TransferOpcon {
                on: on(2028, 5),
                conditions: BTreeSet::from([alliance_domain::ConditionId::parse("c2").unwrap()]),
            },
            Step::ChangeCommandArrangement {
                on: on(2028, 6),
                peacetime_opcon: Some(Side::Rok),
                wartime_opcon: None,
                cfc_commander: Some(Side::Rok),
            },
            Step::AmendClause {
                clause_id: alliance_domain::ClauseId::parse("123-enrichment").unwrap(),
                status: ClauseStatus::Permitted,
                on: on(2028, 7),
            },
            Step::InvestCapability {
                investment_id: alliance_domain::InvestmentId::parse("l-sam").unwrap(),
                area: CapabilityArea::MissileDefense,
                description: "L-SAM".into(),
                level_gain: 10,
                delivery: on(2028, 8),
                cost_kusd: 900_000,
            },
            Step::AssignMission {
                mission: Mission::Logistics,
                lead: Side::Rok,
                supporting: Some(Side::Us),
                on: on(2028, 9),
            },
        ];
        let propose = Command::ProposeDecision {
            decision_id: decision_id.clone(),
            title: "What if".into(),
            rationale: "Every kind of step".into(),
            effective_date: on(2028, 1),
            required_sides: BTreeSet::from([Side::Us, Side::Rok]),
            supersedes: BTreeSet::new(),
        };
        std::iter::once(propose)
            .chain(steps.into_iter().map(|step| Command::PlanStep {
                decision_id: decision_id.clone(),
                step,
            }))
            .collect()
    }

    #[test]
    fn every_kind_of_step_goes_through_an_overlay_s_step_messages_and_back() {
        let commands = every_kind_of_step();
        let overlay = overlay_to_proto(&commands).unwrap();
        let names: Vec<&str> = overlay[0]
            .steps
            .iter()
            .map(|s| match s.step.as_ref().unwrap() {
                S::AddForceElement(_) => "add_force_element",
                S::WithdrawForceElement(_) => "withdraw_force_element",
                S::ReduceForceElement(_) => "reduce_force_element",
                S::RelocateForceElement(_) => "relocate_force_element",
                S::ScheduleOpconTransfer(_) => "schedule_opcon_transfer",
                S::ChangeArrangement(_) => "change_arrangement",
                S::AmendAgreementClause(_) => "amend_agreement_clause",
                S::PlanCapabilityInvestment(_) => "plan_capability_investment",
                S::AssignMission(_) => "assign_mission",
                _ => "deprecated",
            })
            .collect();
        assert_eq!(
            names,
            [
                "add_force_element",
                "withdraw_force_element",
                "reduce_force_element",
                "relocate_force_element",
                "schedule_opcon_transfer",
                "change_arrangement",
                "amend_agreement_clause",
                "plan_capability_investment",
                "assign_mission",
            ]
        );
        assert_eq!(overlay_commands(&overlay).unwrap(), commands);
    }

    #[test]
    fn bad_values_in_step_messages_are_named_by_their_path() {
        let mut overlay = overlay_to_proto(&every_kind_of_step()).unwrap();
        let steps = &mut overlay[0].steps;
        if let Some(S::AssignMission(m)) = steps[8].step.as_mut() {
            m.mission = 0;
            m.supporting = 7;
        }
        if let Some(S::PlanCapabilityInvestment(m)) = steps[7].step.as_mut() {
            m.investment_id = "not an id".into();
            m.delivery = None;
        }
        if let Some(S::AddForceElement(m)) = steps[0].step.as_mut() {
            m.on = Some(v1::Date {
                year: 2029,
                month: 2,
                day: 30,
            });
        }
        steps[1].step = None;
        let fields: Vec<String> = overlay_commands(&overlay)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "overlay[0].steps[0].add_force_element.on",
                "overlay[0].steps[1]",
                "overlay[0].steps[7].plan_capability_investment.investment_id",
                "overlay[0].steps[7].plan_capability_investment.delivery",
                "overlay[0].steps[8].assign_mission.mission",
                "overlay[0].steps[8].assign_mission.supporting",
            ]
        );
    }
}
