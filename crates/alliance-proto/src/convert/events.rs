//! Domain events become envelope payloads, and payloads read from the log become events.

use alliance_domain::{Event, FieldViolation, SimulationRun, Step, TeamId};

use super::conditions::*;
use super::fields::Fields;
use super::scalars::*;
use crate::v1;
use crate::v1::event_envelope::Payload;

/// The envelope payload of a domain event.
pub fn event_to_payload(event: &Event) -> Payload {
    match event {
        Event::PlanCreated {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => Payload::PlanCreated(v1::PlanCreated {
            plan_id: plan_id.to_string(),
            name: name.clone(),
            description: description.clone(),
            horizon_start: Some(date_to_proto(*horizon_start)),
            horizon_end: Some(date_to_proto(*horizon_end)),
            grants: grants.iter().map(grant_to_proto).collect(),
        }),
        Event::RoleGranted { grant } => Payload::RoleGranted(v1::RoleGranted {
            grant: Some(grant_to_proto(grant)),
        }),
        Event::RoleRevoked { grant } => Payload::RoleRevoked(v1::RoleRevoked {
            grant: Some(grant_to_proto(grant)),
        }),
        Event::PrerequisiteRequired {
            decision_id,
            prerequisite,
        } => Payload::PrerequisiteRequired(v1::PrerequisiteRequired {
            decision_id: decision_id.to_string(),
            prerequisite: Some(prerequisite_to_proto(prerequisite)),
        }),
        Event::FindingsAcknowledged {
            decision_id,
            findings,
        } => Payload::FindingsAcknowledged(v1::FindingsAcknowledged {
            decision_id: decision_id.to_string(),
            finding_ids: findings.iter().cloned().collect(),
        }),
        Event::ConstraintDefined {
            constraint_id,
            title,
            rule,
            side,
            authority,
            since,
        } => Payload::ConstraintDefined(v1::ConstraintDefined {
            constraint_id: constraint_id.to_string(),
            title: title.clone(),
            rule: Some(constraint_rule_to_proto(rule)),
            side: opt_side_to_proto(*side),
            authority: authority.clone(),
            since: since.map(date_to_proto),
        }),
        Event::ConstraintWaived {
            constraint_id,
            waiver,
        } => Payload::ConstraintWaived(v1::ConstraintWaived {
            constraint_id: constraint_id.to_string(),
            waiver: Some(waiver_to_proto(waiver)),
        }),
        Event::HeadWitnessed {
            version,
            head_hash,
            witnesses,
        } => super::witness::witnessed_payload(*version, head_hash, witnesses),
        Event::HeadSigned { version, head_hash } => Payload::HeadSigned(v1::HeadSigned {
            version: *version,
            head_hash: head_hash.clone(),
        }),
        Event::PlanBranched {
            plan_id,
            parent_plan_id,
            parent_version,
            name,
            description,
        } => Payload::PlanBranched(v1::PlanBranched {
            plan_id: plan_id.to_string(),
            parent_plan_id: parent_plan_id.to_string(),
            parent_version: *parent_version,
            name: name.clone(),
            description: description.clone(),
        }),
        Event::ForceElementRegistered {
            element,
            present_from,
        } => Payload::ForceElementRegistered(v1::ForceElementRegistered {
            element: Some(element_to_proto(element)),
            present_from: Some(date_to_proto(*present_from)),
        }),
        Event::CapabilityLevelRecorded {
            side,
            area,
            level,
            as_of,
        } => Payload::CapabilityLevelRecorded(v1::CapabilityLevelRecorded {
            side: side_to_proto(*side),
            area: area_to_proto(*area),
            level: *level,
            as_of: Some(date_to_proto(*as_of)),
        }),
        Event::AgreementClauseDefined {
            clause_id,
            agreement,
            title,
            status,
            since,
        } => Payload::AgreementClauseDefined(v1::AgreementClauseDefined {
            clause_id: clause_id.to_string(),
            agreement: agreement_to_proto(*agreement),
            title: title.clone(),
            status: clause_status_to_proto(*status),
            since: Some(date_to_proto(*since)),
        }),
        Event::ConditionDefined {
            condition_id,
            title,
            description,
            area,
            threshold,
        } => Payload::ConditionDefined(v1::ConditionDefined {
            condition_id: condition_id.to_string(),
            title: title.clone(),
            description: description.clone(),
            area: area.map_or(0, area_to_proto),
            threshold: *threshold,
        }),
        Event::ConditionAssessed {
            condition_id,
            assessed_on,
            status,
            value,
            note,
        } => Payload::ConditionAssessed(v1::ConditionAssessed {
            condition_id: condition_id.to_string(),
            assessed_on: Some(date_to_proto(*assessed_on)),
            status: condition_status_to_proto(*status),
            value: *value,
            note: note.clone(),
        }),
        Event::DecisionProposed {
            decision_id,
            title,
            rationale,
            owner_team,
            effective_date,
            required_sides,
            supersedes,
        } => Payload::DecisionProposed(v1::DecisionProposed {
            decision_id: decision_id.to_string(),
            title: title.clone(),
            rationale: rationale.clone(),
            owner_team: owner_team.to_string(),
            effective_date: Some(date_to_proto(*effective_date)),
            required_sides: sides_to_proto(required_sides),
            supersedes: supersedes.iter().map(ToString::to_string).collect(),
        }),
        Event::StepPlanned { decision_id, step } => step_to_payload(decision_id.to_string(), step),
        Event::DecisionEndorsed { decision_id, side } => {
            Payload::DecisionEndorsed(v1::DecisionEndorsed {
                decision_id: decision_id.to_string(),
                side: side_to_proto(*side),
            })
        }
        Event::DecisionAdopted { decision_id } => Payload::DecisionAdopted(v1::DecisionAdopted {
            decision_id: decision_id.to_string(),
        }),
        Event::DecisionRejected {
            decision_id,
            reason,
        } => Payload::DecisionRejected(v1::DecisionRejected {
            decision_id: decision_id.to_string(),
            reason: reason.clone(),
        }),
        Event::DecisionWithdrawn {
            decision_id,
            reason,
        } => Payload::DecisionWithdrawn(v1::DecisionWithdrawn {
            decision_id: decision_id.to_string(),
            reason: reason.clone(),
        }),
        Event::DecisionSuperseded {
            decision_id,
            superseded_by,
        } => Payload::DecisionSuperseded(v1::DecisionSuperseded {
            decision_id: decision_id.to_string(),
            superseded_by: superseded_by.to_string(),
        }),
        Event::SimulationRunRecorded { run } => {
            Payload::SimulationRunRecorded(v1::SimulationRunRecorded {
                run: Some(simulation_run_to_proto(run)),
            })
        }
    }
}

pub fn simulation_run_to_proto(run: &SimulationRun) -> v1::SimulationRunRecord {
    v1::SimulationRunRecord {
        run_id: run.run_id.to_string(),
        plan_version: run.plan_version,
        what_if: run.what_if,
        inputs_digest: run.inputs_digest.clone(),
        results_digest: run.results_digest.clone(),
        seed: run.seed,
        trials: run.trials,
        start: Some(date_to_proto(run.start)),
        months: run.months,
        model_version: run.model_version.clone(),
        shortfall_permille: run.shortfall_permille,
        conditions_at_transfer_permille: run.conditions_at_transfer_permille,
        conditions_likely_by: run.conditions_likely_by.map(date_to_proto),
        sequencing_risks: run.sequencing_risks,
        headline: run.headline.clone(),
    }
}

pub(crate) fn step_to_payload(decision_id: String, step: &Step) -> Payload {
    match step {
        Step::AddElement { element, on } => {
            Payload::ForceElementAdditionPlanned(v1::ForceElementAdditionPlanned {
                decision_id,
                element: Some(element_to_proto(element)),
                on: Some(date_to_proto(*on)),
            })
        }
        Step::WithdrawElement { element_id, on } => {
            Payload::ForceElementWithdrawalPlanned(v1::ForceElementWithdrawalPlanned {
                decision_id,
                element_id: element_id.to_string(),
                on: Some(date_to_proto(*on)),
            })
        }
        Step::ReduceElement {
            element_id,
            personnel,
            equipment,
            on,
        } => Payload::ForceElementReductionPlanned(v1::ForceElementReductionPlanned {
            decision_id,
            element_id: element_id.to_string(),
            personnel: *personnel,
            equipment: equipment_to_proto(equipment),
            on: Some(date_to_proto(*on)),
        }),
        Step::RelocateElement {
            element_id,
            to_base,
            on,
        } => Payload::ForceElementRelocationPlanned(v1::ForceElementRelocationPlanned {
            decision_id,
            element_id: element_id.to_string(),
            to_base: to_base.clone(),
            on: Some(date_to_proto(*on)),
        }),
        Step::TransferOpcon { on, conditions } => {
            Payload::OpconTransferScheduled(v1::OpconTransferScheduled {
                decision_id,
                on: Some(date_to_proto(*on)),
                conditions: conditions.iter().map(ToString::to_string).collect(),
            })
        }
        Step::ChangeCommandArrangement {
            on,
            peacetime_opcon,
            wartime_opcon,
            cfc_commander,
        } => Payload::CommandArrangementChangePlanned(v1::CommandArrangementChangePlanned {
            decision_id,
            on: Some(date_to_proto(*on)),
            peacetime_opcon: opt_side_to_proto(*peacetime_opcon),
            wartime_opcon: opt_side_to_proto(*wartime_opcon),
            cfc_commander: opt_side_to_proto(*cfc_commander),
        }),
        Step::AssignMission {
            mission,
            lead,
            supporting,
            on,
        } => Payload::MissionAssignmentPlanned(v1::MissionAssignmentPlanned {
            decision_id,
            mission: mission_to_proto(*mission),
            lead: side_to_proto(*lead),
            supporting: opt_side_to_proto(*supporting),
            on: Some(date_to_proto(*on)),
        }),
        Step::AmendClause {
            clause_id,
            status,
            on,
        } => Payload::AgreementClauseAmendmentPlanned(v1::AgreementClauseAmendmentPlanned {
            decision_id,
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
        } => Payload::CapabilityInvestmentPlanned(v1::CapabilityInvestmentPlanned {
            decision_id,
            investment_id: investment_id.to_string(),
            area: area_to_proto(*area),
            description: description.clone(),
            level_gain: *level_gain,
            delivery: Some(date_to_proto(*delivery)),
            cost_musd: 0,
            cost_kusd: *cost_kusd,
        }),
    }
}

/// The domain event of an envelope payload read from the log, or every problem with it.
pub fn event_from_payload(payload: &Payload) -> Result<Event, Vec<FieldViolation>> {
    let mut f = Fields::default();
    let event = match payload {
        Payload::PlanCreated(p) => {
            let plan_id = f.uuid("plan_id", &p.plan_id);
            let start = f.date("horizon_start", p.horizon_start.as_ref());
            let end = f.date("horizon_end", p.horizon_end.as_ref());
            let grants = f.grants("grants", &p.grants);
            (|| {
                Some(Event::PlanCreated {
                    plan_id: plan_id?,
                    name: p.name.clone(),
                    description: p.description.clone(),
                    horizon_start: start?,
                    horizon_end: end?,
                    grants,
                })
            })()
        }
        Payload::RoleGranted(p) => f
            .grant("grant", p.grant.as_ref())
            .map(|grant| Event::RoleGranted { grant }),
        Payload::RoleRevoked(p) => f
            .grant("grant", p.grant.as_ref())
            .map(|grant| Event::RoleRevoked { grant }),
        Payload::HeadWitnessed(p) => Some(super::witness::witnessed_event(p)),
        Payload::HeadSigned(p) => Some(Event::HeadSigned {
            version: p.version,
            head_hash: p.head_hash.clone(),
        }),
        Payload::PlanBranched(p) => {
            let plan_id = f.uuid("plan_id", &p.plan_id);
            let parent = f.uuid("parent_plan_id", &p.parent_plan_id);
            (|| {
                Some(Event::PlanBranched {
                    plan_id: plan_id?,
                    parent_plan_id: parent?,
                    parent_version: p.parent_version,
                    name: p.name.clone(),
                    description: p.description.clone(),
                })
            })()
        }
        Payload::ForceElementRegistered(p) => {
            let element = f.element("element", p.element.as_ref());
            let present_from = f.date("present_from", p.present_from.as_ref());
            (|| {
                Some(Event::ForceElementRegistered {
                    element: element?,
                    present_from: present_from?,
                })
            })()
        }
        Payload::CapabilityLevelRecorded(p) => {
            let side = f.enum_value("side", p.side, side_from_proto);
            let area = f.enum_value("area", p.area, area_from_proto);
            let as_of = f.date("as_of", p.as_of.as_ref());
            (|| {
                Some(Event::CapabilityLevelRecorded {
                    side: side?,
                    area: area?,
                    level: p.level,
                    as_of: as_of?,
                })
            })()
        }
        Payload::AgreementClauseDefined(p) => {
            let clause_id = f.id("clause_id", &p.clause_id);
            let agreement = f.enum_value("agreement", p.agreement, agreement_from_proto);
            let status = f.enum_value("status", p.status, clause_status_from_proto);
            let since = f.date("since", p.since.as_ref());
            (|| {
                Some(Event::AgreementClauseDefined {
                    clause_id: clause_id?,
                    agreement: agreement?,
                    title: p.title.clone(),
                    status: status?,
                    since: since?,
                })
            })()
        }
        Payload::ConditionDefined(p) => {
            let condition_id = f.id("condition_id", &p.condition_id);
            let area = f.opt_enum("area", p.area, area_from_proto);
            (|| {
                Some(Event::ConditionDefined {
                    condition_id: condition_id?,
                    title: p.title.clone(),
                    description: p.description.clone(),
                    area,
                    threshold: p.threshold,
                })
            })()
        }
        Payload::ConditionAssessed(p) => {
            let condition_id = f.id("condition_id", &p.condition_id);
            let assessed_on = f.date("assessed_on", p.assessed_on.as_ref());
            let status = f.enum_value("status", p.status, condition_status_from_proto);
            (|| {
                Some(Event::ConditionAssessed {
                    condition_id: condition_id?,
                    assessed_on: assessed_on?,
                    status: status?,
                    value: p.value,
                    note: p.note.clone(),
                })
            })()
        }
        Payload::DecisionProposed(p) => {
            let decision_id = f.id("decision_id", &p.decision_id);
            let owner_team: Option<TeamId> = f.id("owner_team", &p.owner_team);
            let effective_date = f.date("effective_date", p.effective_date.as_ref());
            let required_sides = f.sides("required_sides", &p.required_sides);
            let supersedes = f.ids("supersedes", &p.supersedes);
            (|| {
                Some(Event::DecisionProposed {
                    decision_id: decision_id?,
                    title: p.title.clone(),
                    rationale: p.rationale.clone(),
                    owner_team: owner_team?,
                    effective_date: effective_date?,
                    required_sides,
                    supersedes,
                })
            })()
        }
        Payload::ForceElementAdditionPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let element = f.element("element", p.element.as_ref());
            let on = f.date("on", p.on.as_ref());
            (|| {
                Some(Step::AddElement {
                    element: element?,
                    on: on?,
                })
            })()
        }),
        Payload::ForceElementWithdrawalPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let element_id = f.id("element_id", &p.element_id);
            let on = f.date("on", p.on.as_ref());
            (|| {
                Some(Step::WithdrawElement {
                    element_id: element_id?,
                    on: on?,
                })
            })()
        }),
        Payload::ForceElementReductionPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let element_id = f.id("element_id", &p.element_id);
            let equipment = f.equipment("equipment", &p.equipment);
            let on = f.date("on", p.on.as_ref());
            (|| {
                Some(Step::ReduceElement {
                    element_id: element_id?,
                    personnel: p.personnel,
                    equipment,
                    on: on?,
                })
            })()
        }),
        Payload::ForceElementRelocationPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let element_id = f.id("element_id", &p.element_id);
            let on = f.date("on", p.on.as_ref());
            (|| {
                Some(Step::RelocateElement {
                    element_id: element_id?,
                    to_base: p.to_base.clone(),
                    on: on?,
                })
            })()
        }),
        Payload::OpconTransferScheduled(p) => step_event(&mut f, &p.decision_id, |f| {
            let on = f.date("on", p.on.as_ref());
            let conditions = f.ids("conditions", &p.conditions);
            (|| {
                Some(Step::TransferOpcon {
                    on: on?,
                    conditions,
                })
            })()
        }),
        Payload::CommandArrangementChangePlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let on = f.date("on", p.on.as_ref());
            let peacetime_opcon = f.opt_enum("peacetime_opcon", p.peacetime_opcon, side_from_proto);
            let wartime_opcon = f.opt_enum("wartime_opcon", p.wartime_opcon, side_from_proto);
            let cfc_commander = f.opt_enum("cfc_commander", p.cfc_commander, side_from_proto);
            (|| {
                Some(Step::ChangeCommandArrangement {
                    on: on?,
                    peacetime_opcon,
                    wartime_opcon,
                    cfc_commander,
                })
            })()
        }),
        Payload::MissionAssignmentPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            f.mission_step(p.mission, p.lead, p.supporting, p.on.as_ref())
        }),
        Payload::AgreementClauseAmendmentPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let clause_id = f.id("clause_id", &p.clause_id);
            let status = f.enum_value("status", p.status, clause_status_from_proto);
            let on = f.date("on", p.on.as_ref());
            (|| {
                Some(Step::AmendClause {
                    clause_id: clause_id?,
                    status: status?,
                    on: on?,
                })
            })()
        }),
        Payload::CapabilityInvestmentPlanned(p) => step_event(&mut f, &p.decision_id, |f| {
            let investment_id = f.id("investment_id", &p.investment_id);
            let area = f.enum_value("area", p.area, area_from_proto);
            let delivery = f.date("delivery", p.delivery.as_ref());
            (|| {
                Some(Step::InvestCapability {
                    investment_id: investment_id?,
                    area: area?,
                    description: p.description.clone(),
                    level_gain: p.level_gain,
                    delivery: delivery?,
                    cost_kusd: p.cost_kusd,
                })
            })()
        }),
        Payload::DecisionEndorsed(p) => {
            let decision_id = f.id("decision_id", &p.decision_id);
            let side = f.enum_value("side", p.side, side_from_proto);
            (|| {
                Some(Event::DecisionEndorsed {
                    decision_id: decision_id?,
                    side: side?,
                })
            })()
        }
        Payload::DecisionAdopted(p) => f
            .id("decision_id", &p.decision_id)
            .map(|decision_id| Event::DecisionAdopted { decision_id }),
        Payload::DecisionRejected(p) => {
            f.id("decision_id", &p.decision_id)
                .map(|decision_id| Event::DecisionRejected {
                    decision_id,
                    reason: p.reason.clone(),
                })
        }
        Payload::DecisionWithdrawn(p) => {
            f.id("decision_id", &p.decision_id)
                .map(|decision_id| Event::DecisionWithdrawn {
                    decision_id,
                    reason: p.reason.clone(),
                })
        }
        Payload::DecisionSuperseded(p) => {
            let decision_id = f.id("decision_id", &p.decision_id);
            let superseded_by = f.id("superseded_by", &p.superseded_by);
            (|| {
                Some(Event::DecisionSuperseded {
                    decision_id: decision_id?,
                    superseded_by: superseded_by?,
                })
            })()
        }
        Payload::SimulationRunRecorded(p) => f
            .simulation_run("run", p.run.as_ref())
            .map(|run| Event::SimulationRunRecorded { run }),
        Payload::PrerequisiteRequired(p) => {
            let decision_id = f.id("decision_id", &p.decision_id);
            let prerequisite = f.prerequisite("prerequisite", p.prerequisite.as_ref());
            (|| {
                Some(Event::PrerequisiteRequired {
                    decision_id: decision_id?,
                    prerequisite: prerequisite?,
                })
            })()
        }
        Payload::FindingsAcknowledged(p) => {
            f.id("decision_id", &p.decision_id)
                .map(|decision_id| Event::FindingsAcknowledged {
                    decision_id,
                    findings: p.finding_ids.iter().cloned().collect(),
                })
        }
        Payload::ConstraintDefined(p) => {
            let constraint_id = f.id("constraint_id", &p.constraint_id);
            let rule = f.constraint_rule("rule", p.rule.as_ref());
            let side = f.opt_enum("side", p.side, side_from_proto);
            let since = f.opt_date("since", p.since.as_ref());
            (|| {
                Some(Event::ConstraintDefined {
                    constraint_id: constraint_id?,
                    title: p.title.clone(),
                    rule: rule?,
                    side,
                    authority: p.authority.clone(),
                    since: since?,
                })
            })()
        }
        Payload::ConstraintWaived(p) => {
            let constraint_id = f.id("constraint_id", &p.constraint_id);
            let waiver = f.waiver("waiver", p.waiver.as_ref());
            (|| {
                Some(Event::ConstraintWaived {
                    constraint_id: constraint_id?,
                    waiver: waiver?,
                })
            })()
        }
    };
    f.finish(event)
}

pub(crate) fn step_event(
    f: &mut Fields,
    decision_id: &str,
    step: impl FnOnce(&mut Fields) -> Option<Step>,
) -> Option<Event> {
    let decision_id = f.id("decision_id", decision_id);
    let step = step(f);
    Some(Event::StepPlanned {
        decision_id: decision_id?,
        step: step?,
    })
}
