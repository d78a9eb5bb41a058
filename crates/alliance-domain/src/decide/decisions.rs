//! A decision's lifecycle: proposed, endorsed by each side it needs, adopted (re-checked against
//! what was adopted meanwhile and the findings it adds), or rejected or withdrawn; and which
//! decision may still change.

use std::collections::{BTreeMap, BTreeSet};

use super::fields::{MAX_NAME, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::command::{Command, CommandContext};
use crate::error::DomainError;
use crate::event::Event;
use crate::findings::{Finding, all_findings, new_findings};
use crate::ids::{DecisionId, ElementId};
use crate::model::{DecisionStatus, Step};
use crate::state::{Decision, Plan, fold};
use crate::timeline::ElementTimeline;

pub(super) fn decide(plan: &Plan, command: &Command, ctx: &CommandContext) -> Decided {
    let mut v = Violations::default();
    match command {
        Command::ProposeDecision {
            decision_id,
            title,
            rationale,
            effective_date,
            required_sides,
            supersedes,
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("rationale", rationale, true, MAX_TEXT);
            v.items("supersedes", supersedes.len());
            v.date(plan, "effective_date", *effective_date);
            v.check(
                !required_sides.is_empty(),
                "required_sides",
                "must name at least one side (U.S., ROK or both)",
            );
            v.edits(plan)?;
            if plan.decisions.contains_key(decision_id) {
                return Err(DomainError::already_exists("decision", decision_id));
            }
            for old in supersedes {
                let status = plan
                    .decisions
                    .get(old)
                    .ok_or_else(|| DomainError::not_found("decision", old))?
                    .status;
                if status != DecisionStatus::Adopted {
                    return Err(DomainError::rule(
                        "supersede_not_adopted",
                        format!(
                            "decision {old} is {}, only an adopted decision can be superseded",
                            status.name()
                        ),
                    ));
                }
            }
            // A side's cell proposes for its government: that side endorses too.
            let mut required_sides = required_sides.clone();
            required_sides.extend(ctx.actor.side);
            Ok(vec![Event::DecisionProposed {
                decision_id: decision_id.clone(),
                title: title.clone(),
                rationale: rationale.clone(),
                owner_team: ctx.actor.team.clone(),
                effective_date: *effective_date,
                required_sides,
                supersedes: supersedes.clone(),
            }])
        }
        Command::EndorseDecision { decision_id } => {
            v.edits(plan)?;
            let decision = open_decision(plan, decision_id)?;
            let Some(side) = ctx.actor.side else {
                return Err(DomainError::rule(
                    "no_side",
                    format!(
                        "team {} does not endorse for the U.S. or the ROK",
                        ctx.actor.team
                    ),
                ));
            };
            if !decision.needed_sides(plan).contains(&side) {
                return Err(DomainError::rule(
                    "endorsement_not_required",
                    format!(
                        "decision {decision_id} does not require endorsement by the {} side",
                        side.name()
                    ),
                ));
            }
            if decision.endorsements.contains(&side) {
                return Err(DomainError::rule(
                    "already_endorsed",
                    format!(
                        "decision {decision_id} is already endorsed by the {} side",
                        side.name()
                    ),
                ));
            }
            Ok(vec![Event::DecisionEndorsed {
                decision_id: decision_id.clone(),
                side,
            }])
        }
        Command::AdoptDecision {
            decision_id,
            acknowledged_findings,
        } => {
            v.items("acknowledged_findings", acknowledged_findings.len());
            for id in acknowledged_findings {
                v.text("acknowledged_findings", id, true, MAX_NAME);
            }
            v.edits(plan)?;
            adopt(plan, decision_id, acknowledged_findings)
        }
        // A decision closes: rejected by any team, withdrawn by its owner only.
        Command::RejectDecision {
            decision_id,
            reason,
        }
        | Command::WithdrawDecision {
            decision_id,
            reason,
        } => {
            v.text("reason", reason, true, MAX_TEXT);
            v.edits(plan)?;
            let decision = open_decision(plan, decision_id)?;
            let (decision_id, reason) = (decision_id.clone(), reason.clone());
            if let Command::RejectDecision { .. } = command {
                return Ok(vec![Event::DecisionRejected {
                    decision_id,
                    reason,
                }]);
            }
            check_owner(decision, ctx, "withdraws it")?;
            Ok(vec![Event::DecisionWithdrawn {
                decision_id,
                reason,
            }])
        }
        _ => Err(elsewhere(command)),
    }
}

/// Adopts a decision endorsed by every side it needs: it supersedes the decisions it names that
/// are still adopted, and records the findings it adds that the command acknowledged.
fn adopt(
    plan: &Plan,
    decision_id: &DecisionId,
    acknowledged_findings: &BTreeSet<String>,
) -> Decided {
    let decision = open_decision(plan, decision_id)?;
    let needed = decision.needed_sides(plan);
    let missing: Vec<&str> = needed
        .iter()
        .filter(|side| !decision.endorsements.contains(side))
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::rule(
            "endorsement_missing",
            format!(
                "decision {decision_id} cannot be adopted without the endorsement of the {} side",
                missing.join(" and ")
            ),
        ));
    }
    check_adoption(plan, decision)?;
    let mut events = vec![Event::DecisionAdopted {
        decision_id: decision_id.clone(),
    }];
    events.extend(decision.supersedes().iter().filter_map(|old| {
        let still_adopted = plan
            .decisions
            .get(old)
            .is_some_and(|d| d.status == DecisionStatus::Adopted);
        still_adopted.then(|| Event::DecisionSuperseded {
            decision_id: old.clone(),
            superseded_by: decision_id.clone(),
        })
    }));
    let acknowledged = check_findings(plan, decision_id, &events, acknowledged_findings)?;
    if !acknowledged.is_empty() {
        events.push(Event::FindingsAcknowledged {
            decision_id: decision_id.clone(),
            findings: acknowledged,
        });
    }
    Ok(events)
}

/// A decision that is still open (proposed).
pub(super) fn open_decision<'a>(
    plan: &'a Plan,
    id: &DecisionId,
) -> Result<&'a Decision, DomainError> {
    let decision = plan
        .decisions
        .get(id)
        .ok_or_else(|| DomainError::not_found("decision", id))?;
    if decision.status != DecisionStatus::Proposed {
        return Err(DomainError::rule(
            "decision_closed",
            format!(
                "decision {id} is {}; only a proposed decision can change",
                decision.status.name()
            ),
        ));
    }
    Ok(decision)
}

/// Re-checks every element a decision touches against the plan as adopted now: another decision
/// may have been adopted since its steps were planned.
fn check_adoption(plan: &Plan, decision: &Decision) -> Result<(), DomainError> {
    let mut by_element: BTreeMap<&ElementId, Vec<(&DecisionId, &Step)>> = BTreeMap::new();
    for step in &decision.steps {
        if let Some(id) = step.element_id() {
            by_element.entry(id).or_default().push((&decision.id, step));
        }
    }
    // Superseding a decision drops its steps: every element they touched must stay valid
    // without them (an element it added may still be changed by other adopted decisions).
    for old in decision
        .supersedes()
        .iter()
        .filter_map(|id| plan.decisions.get(id))
    {
        for step in &old.steps {
            if let Some(id) = step.element_id() {
                by_element.entry(id).or_default();
            }
        }
    }
    let excluded: BTreeSet<DecisionId> = decision.supersedes().clone();
    let transfers_opcon = |d: &Decision| {
        d.steps
            .iter()
            .any(|s| matches!(s, Step::TransferOpcon { .. }))
    };
    let other_transfer = plan
        .adopted()
        .find(|d| !excluded.contains(&d.id) && transfers_opcon(d));
    if let (true, Some(other)) = (transfers_opcon(decision), other_transfer) {
        return Err(DomainError::rule(
            "opcon_transfer_twice",
            format!(
                "decision {} already schedules the OPCON transfer; supersede it instead",
                other.id
            ),
        ));
    }
    for (element_id, steps) in by_element {
        ElementTimeline::build(plan, element_id, steps, &excluded)?;
    }
    Ok(())
}

/// A decision its owner may still change: open, and endorsed by no side yet (an endorsement
/// covers the decision as it stood). `what` says what the change does ("adds steps").
pub(super) fn changeable<'a>(
    plan: &'a Plan,
    id: &DecisionId,
    ctx: &CommandContext,
    what: &str,
) -> Result<&'a Decision, DomainError> {
    let decision = open_decision(plan, id)?;
    check_owner(decision, ctx, what)?;
    if let Some(side) = decision.endorsements.first() {
        return Err(DomainError::rule(
            "already_endorsed",
            format!(
                "decision {id} is already endorsed by the {} side; propose a new decision instead of changing an endorsed one",
                side.name()
            ),
        ));
    }
    Ok(decision)
}

/// Only the decision's owner does `what`.
fn check_owner(decision: &Decision, ctx: &CommandContext, what: &str) -> Result<(), DomainError> {
    if decision.owner_team != ctx.actor.team {
        return Err(DomainError::rule(
            "not_owner",
            format!(
                "decision {} is owned by {}; only its owner {what}",
                decision.id, decision.owner_team
            ),
        ));
    }
    Ok(())
}

/// Refuses an adoption that would add findings to the adopted plan unless each is acknowledged;
/// returns the acknowledged ones to record. An acknowledgement of a finding the adoption does not
/// add is refused first (a malformed request), so the record never claims what did not happen.
fn check_findings(
    plan: &Plan,
    decision_id: &DecisionId,
    adoption: &[Event],
    acknowledged: &BTreeSet<String>,
) -> Result<BTreeSet<String>, DomainError> {
    let before = all_findings(plan, false);
    let after_plan = fold(plan.clone(), adoption);
    let after = all_findings(&after_plan, false);
    let new = new_findings(&before, &after);
    let new_ids: BTreeSet<&String> = new.iter().map(|f| &f.id).collect();
    if let Some(stray) = acknowledged.iter().find(|id| !new_ids.contains(id)) {
        return Err(DomainError::invalid(
            "acknowledged_findings",
            format!("adopting decision {decision_id} adds no finding {stray}"),
        ));
    }
    let unacknowledged: Vec<&Finding> = new
        .iter()
        .copied()
        .filter(|f| !acknowledged.contains(&f.id))
        .collect();
    if !unacknowledged.is_empty() {
        return Err(DomainError::NewFindings {
            decision_id: decision_id.to_string(),
            findings: unacknowledged
                .into_iter()
                .map(|f| (f.id.clone(), f.message.clone()))
                .collect(),
        });
    }
    Ok(acknowledged.clone())
}
