//! Overlays of unsaved proposed decisions (simulation what-ifs), both ways.

use std::collections::BTreeSet;

use alliance_domain::{Command, Event, FieldViolation};

use super::events::*;
use super::fields::Fields;
use super::scalars::*;
use crate::v1;
use crate::v1::event_envelope::Payload;

/// The commands an overlay of unsaved proposed decisions stands for: each decision's
/// `ProposeDecision`, then a `PlanStep` per step. Every violation is named by its place.
pub fn overlay_commands(
    overlay: &[v1::OverlayDecision],
) -> Result<Vec<Command>, Vec<FieldViolation>> {
    use v1::overlay_step::Step as S;
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
            let id = decision_id.to_string();
            let payload = match step.step.clone() {
                None => None,
                Some(S::AddElement(p)) => Some(Payload::ForceElementAdditionPlanned(
                    v1::ForceElementAdditionPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::WithdrawElement(p)) => Some(Payload::ForceElementWithdrawalPlanned(
                    v1::ForceElementWithdrawalPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::ReduceElement(p)) => Some(Payload::ForceElementReductionPlanned(
                    v1::ForceElementReductionPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::RelocateElement(p)) => Some(Payload::ForceElementRelocationPlanned(
                    v1::ForceElementRelocationPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::TransferOpcon(p)) => Some(Payload::OpconTransferScheduled(
                    v1::OpconTransferScheduled {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::ChangeCommandArrangement(p)) => Some(
                    Payload::CommandArrangementChangePlanned(v1::CommandArrangementChangePlanned {
                        decision_id: id,
                        ..p
                    }),
                ),
                Some(S::AmendClause(p)) => Some(Payload::AgreementClauseAmendmentPlanned(
                    v1::AgreementClauseAmendmentPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
                Some(S::InvestCapability(p)) => Some(Payload::CapabilityInvestmentPlanned(
                    v1::CapabilityInvestmentPlanned {
                        decision_id: id,
                        ..p
                    },
                )),
            };
            let place = format!("overlay[{i}].steps[{j}]");
            match payload.map(|p| event_from_payload(&p)) {
                None => violations.push(FieldViolation::new(place, "a step is required")),
                Some(Ok(Event::StepPlanned { decision_id, step })) => {
                    commands.push(Command::PlanStep { decision_id, step });
                }
                Some(Ok(_)) => violations.push(FieldViolation::new(place, "is not a step")),
                Some(Err(errors)) => {
                    violations.extend(errors.into_iter().map(|v| {
                        FieldViolation::new(format!("{place}.{}", v.field), v.description)
                    }))
                }
            }
        }
    }
    if violations.is_empty() {
        Ok(commands)
    } else {
        Err(violations)
    }
}

/// An overlay from proposed-decision commands (`ProposeDecision` followed by its `PlanStep`s);
/// other commands are refused, naming their index.
pub fn overlay_to_proto(commands: &[Command]) -> Result<Vec<v1::OverlayDecision>, String> {
    use v1::overlay_step::Step as S;
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
                let step = match step_to_payload(decision_id.to_string(), step) {
                    Payload::ForceElementAdditionPlanned(p) => S::AddElement(p),
                    Payload::ForceElementWithdrawalPlanned(p) => S::WithdrawElement(p),
                    Payload::ForceElementReductionPlanned(p) => S::ReduceElement(p),
                    Payload::ForceElementRelocationPlanned(p) => S::RelocateElement(p),
                    Payload::OpconTransferScheduled(p) => S::TransferOpcon(p),
                    Payload::CommandArrangementChangePlanned(p) => S::ChangeCommandArrangement(p),
                    Payload::AgreementClauseAmendmentPlanned(p) => S::AmendClause(p),
                    Payload::CapabilityInvestmentPlanned(p) => S::InvestCapability(p),
                    _ => return Err(format!("entry {index}: not a step")),
                };
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
