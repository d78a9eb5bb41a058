//! Requests of `PlanCommands` become domain commands.

use alliance_domain::{Command, FieldViolation, Grant, PlanId, Step};

use super::fields::Fields;
use super::scalars::*;
use super::witness::witness_from_proto;
use crate::v1;

/// A request of `PlanCommands` that becomes one domain command.
pub trait CommandRequest {
    fn meta(&self) -> Option<&v1::CommandMeta>;
    /// The domain command, or every field violation.
    fn to_command(&self) -> Result<Command, Vec<FieldViolation>>;
    /// The id the client names for the plan the command makes, if the request has such a field
    /// (`BranchPlanRequest.new_plan_id`; a new plan's id is `meta.plan_id`). Empty: none named.
    fn new_plan_id(&self) -> &str {
        ""
    }
}

/// A message that holds one dated step of a decision: a `PlanCommands` step request, or the
/// same step in a simulation overlay (`alliance.v1.*Step`, which has the request's fields but
/// `meta` and `decision_id`). Both are read by one body, so a step means the same either way.
pub trait StepMessage {
    /// The step, every violation recorded in `f` under the message's own field names.
    fn step(&self, f: &mut Fields) -> Option<Step>;
}

macro_rules! step_message {
    ($($message:ty),+ => |$r:ident, $f:ident| $step:expr) => {
        $(impl StepMessage for $message {
            fn step(&self, $f: &mut Fields) -> Option<Step> {
                let $r = self;
                $step
            }
        })+
    };
}

macro_rules! step_request {
    ($($request:ty),+) => {
        $(impl CommandRequest for $request {
            fn meta(&self) -> Option<&v1::CommandMeta> {
                self.meta.as_ref()
            }
            fn to_command(&self) -> Result<Command, Vec<FieldViolation>> {
                let mut f = Fields::default();
                let decision_id = f.id("decision_id", &self.decision_id);
                let step = self.step(&mut f);
                let command = (|| {
                    Some(Command::PlanStep {
                        decision_id: decision_id?,
                        step: step?,
                    })
                })();
                f.finish(command)
            }
        })+
    };
}

macro_rules! simple_request {
    ($request:ty, |$r:ident, $f:ident| $command:expr) => {
        simple_request!($request, new_plan_id: |_r| "", |$r, $f| $command);
    };
    ($request:ty, new_plan_id: |$n:ident| $new_plan_id:expr, |$r:ident, $f:ident| $command:expr) => {
        impl CommandRequest for $request {
            fn meta(&self) -> Option<&v1::CommandMeta> {
                self.meta.as_ref()
            }
            fn new_plan_id(&self) -> &str {
                let $n = self;
                $new_plan_id
            }
            fn to_command(&self) -> Result<Command, Vec<FieldViolation>> {
                let $r = self;
                let mut $f = Fields::default();
                let command: Option<Command> = $command;
                $f.finish(command)
            }
        }
    };
}

step_message!(v1::AddForceElementRequest, v1::AddForceElementStep => |r, f| {
    let element = f.element("element", r.element.as_ref());
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::AddElement {
            element: element?,
            on: on?,
        })
    })()
});
step_message!(v1::WithdrawForceElementRequest, v1::WithdrawForceElementStep => |r, f| {
    let element_id = f.id("element_id", &r.element_id);
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::WithdrawElement {
            element_id: element_id?,
            on: on?,
        })
    })()
});
step_message!(v1::ReduceForceElementRequest, v1::ReduceForceElementStep => |r, f| {
    let element_id = f.id("element_id", &r.element_id);
    let equipment = f.equipment("equipment", &r.equipment);
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::ReduceElement {
            element_id: element_id?,
            personnel: r.personnel,
            equipment,
            on: on?,
        })
    })()
});
step_message!(v1::RelocateForceElementRequest, v1::RelocateForceElementStep => |r, f| {
    let element_id = f.id("element_id", &r.element_id);
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::RelocateElement {
            element_id: element_id?,
            to_base: r.to_base.clone(),
            on: on?,
        })
    })()
});
step_message!(v1::ScheduleOpconTransferRequest, v1::ScheduleOpconTransferStep => |r, f| {
    let on = f.date("on", r.on.as_ref());
    let conditions = f.ids("conditions", &r.conditions);
    (|| {
        Some(Step::TransferOpcon {
            on: on?,
            conditions,
        })
    })()
});
step_message!(v1::ChangeCommandArrangementRequest, v1::ChangeCommandArrangementStep => |r, f| {
    let on = f.date("on", r.on.as_ref());
    let peacetime_opcon = f.opt_enum("peacetime_opcon", r.peacetime_opcon, side_from_proto);
    let wartime_opcon = f.opt_enum("wartime_opcon", r.wartime_opcon, side_from_proto);
    let cfc_commander = f.opt_enum("cfc_commander", r.cfc_commander, side_from_proto);
    (|| {
        Some(Step::ChangeCommandArrangement {
            on: on?,
            peacetime_opcon,
            wartime_opcon,
            cfc_commander,
        })
    })()
});
step_message!(v1::AssignMissionRequest, v1::AssignMissionStep => |r, f| {
    f.mission_step(r.mission, r.lead, r.supporting, r.on.as_ref())
});
step_message!(v1::AmendAgreementClauseRequest, v1::AmendAgreementClauseStep => |r, f| {
    let clause_id = f.id("clause_id", &r.clause_id);
    let status = f.enum_value("status", r.status, clause_status_from_proto);
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::AmendClause {
            clause_id: clause_id?,
            status: status?,
            on: on?,
        })
    })()
});
step_message!(v1::PlanCapabilityInvestmentRequest => |r, f| {
    let cost = (r.cost_kusd, r.cost_musd);
    investment(f, &r.investment_id, r.area, &r.description, r.level_gain, r.delivery.as_ref(), cost)
});
step_message!(v1::PlanCapabilityInvestmentStep => |r, f| {
    let cost = (r.cost_kusd, 0);
    investment(f, &r.investment_id, r.area, &r.description, r.level_gain, r.delivery.as_ref(), cost)
});
step_request!(
    v1::AddForceElementRequest,
    v1::WithdrawForceElementRequest,
    v1::ReduceForceElementRequest,
    v1::RelocateForceElementRequest,
    v1::ScheduleOpconTransferRequest,
    v1::ChangeCommandArrangementRequest,
    v1::AssignMissionRequest,
    v1::AmendAgreementClauseRequest,
    v1::PlanCapabilityInvestmentRequest
);

/// A capability investment step; its cost in thousands and in millions (a request written
/// before `cost_kusd` gives millions; an overlay step never does).
fn investment(
    f: &mut Fields,
    investment_id: &str,
    area: i32,
    description: &str,
    level_gain: u32,
    delivery: Option<&v1::Date>,
    (kusd, musd): (u64, u64),
) -> Option<Step> {
    let investment_id = f.id("investment_id", investment_id);
    let area = f.enum_value("area", area, area_from_proto);
    let delivery = f.date("delivery", delivery);
    let cost_kusd = f.cost_kusd(kusd, musd);
    Some(Step::InvestCapability {
        investment_id: investment_id?,
        area: area?,
        description: description.to_owned(),
        level_gain,
        delivery: delivery?,
        cost_kusd: cost_kusd?,
    })
}

simple_request!(v1::CreatePlanRequest, |r, f| {
    // The plan id is resolved by the service (minted when empty) and set on the command there.
    let horizon_start = f.date("horizon_start", r.horizon_start.as_ref());
    let horizon_end = f.date("horizon_end", r.horizon_end.as_ref());
    (|| {
        Some(Command::CreatePlan {
            plan_id: PlanId::nil(),
            name: r.name.clone(),
            description: r.description.clone(),
            horizon_start: horizon_start?,
            horizon_end: horizon_end?,
            // Set by the service from the deployment's teams.
            grants: Vec::new(),
        })
    })()
});
simple_request!(v1::BranchPlanRequest, new_plan_id: |r| &r.new_plan_id, |r, f| {
    // The new id and the parent version are resolved by the service (unset: the head).
    if r.parent_version == Some(0) {
        f.bad(
            "parent_version",
            "must be at least 1 (version 0 is before the plan's first event); leave it unset to branch at the head",
        );
        None
    } else {
        Some(Command::BranchPlan {
            new_plan_id: PlanId::nil(),
            parent_version: r.parent_version.unwrap_or_default(),
            name: r.name.clone(),
            description: r.description.clone(),
        })
    }
});
simple_request!(v1::RegisterForceElementRequest, |r, f| {
    let element = f.element("element", r.element.as_ref());
    let present_from = f.date("present_from", r.present_from.as_ref());
    (|| {
        Some(Command::RegisterForceElement {
            element: element?,
            present_from: present_from?,
        })
    })()
});
simple_request!(v1::RecordCapabilityLevelRequest, |r, f| {
    let side = f.enum_value("side", r.side, side_from_proto);
    let area = f.enum_value("area", r.area, area_from_proto);
    let as_of = f.date("as_of", r.as_of.as_ref());
    (|| {
        Some(Command::RecordCapabilityLevel {
            side: side?,
            area: area?,
            level: r.level,
            as_of: as_of?,
        })
    })()
});
simple_request!(v1::DefineAgreementClauseRequest, |r, f| {
    let clause_id = f.id("clause_id", &r.clause_id);
    let agreement = f.enum_value("agreement", r.agreement, agreement_from_proto);
    let status = f.enum_value("status", r.status, clause_status_from_proto);
    let since = f.date("since", r.since.as_ref());
    (|| {
        Some(Command::DefineAgreementClause {
            clause_id: clause_id?,
            agreement: agreement?,
            title: r.title.clone(),
            status: status?,
            since: since?,
        })
    })()
});
simple_request!(v1::DefineConditionRequest, |r, f| {
    let condition_id = f.id("condition_id", &r.condition_id);
    let area = f.opt_enum("area", r.area, area_from_proto);
    (|| {
        Some(Command::DefineCondition {
            condition_id: condition_id?,
            title: r.title.clone(),
            description: r.description.clone(),
            area,
            threshold: r.threshold,
        })
    })()
});
simple_request!(v1::AssessConditionRequest, |r, f| {
    let condition_id = f.id("condition_id", &r.condition_id);
    let assessed_on = f.date("assessed_on", r.assessed_on.as_ref());
    let status = f.enum_value("status", r.status, condition_status_from_proto);
    (|| {
        Some(Command::AssessCondition {
            condition_id: condition_id?,
            assessed_on: assessed_on?,
            status: status?,
            value: r.value,
            note: r.note.clone(),
        })
    })()
});
simple_request!(v1::ProposeDecisionRequest, |r, f| {
    let decision_id = f.id("decision_id", &r.decision_id);
    let effective_date = f.date("effective_date", r.effective_date.as_ref());
    let required_sides = f.sides("required_sides", &r.required_sides);
    let supersedes = f.ids("supersedes", &r.supersedes);
    (|| {
        Some(Command::ProposeDecision {
            decision_id: decision_id?,
            title: r.title.clone(),
            rationale: r.rationale.clone(),
            effective_date: effective_date?,
            required_sides,
            supersedes,
        })
    })()
});
simple_request!(v1::RecordSimulationRunRequest, |r, f| {
    f.simulation_run("run", r.run.as_ref())
        .map(|run| Command::RecordSimulationRun { run })
});
simple_request!(v1::GrantRoleRequest, |r, f| {
    f.grant("grant", r.grant.as_ref())
        .map(|Grant { team, role }| Command::GrantRole { team, role })
});
simple_request!(v1::RevokeRoleRequest, |r, f| {
    f.grant("grant", r.grant.as_ref())
        .map(|Grant { team, role }| Command::RevokeRole { team, role })
});
simple_request!(v1::EndorseDecisionRequest, |r, f| {
    f.id("decision_id", &r.decision_id)
        .map(|decision_id| Command::EndorseDecision { decision_id })
});
simple_request!(v1::AdoptDecisionRequest, |r, f| {
    f.id("decision_id", &r.decision_id)
        .map(|decision_id| Command::AdoptDecision {
            decision_id,
            acknowledged_findings: r.acknowledged_findings.iter().cloned().collect(),
        })
});
simple_request!(v1::RequirePrerequisiteRequest, |r, f| {
    let decision_id = f.id("decision_id", &r.decision_id);
    let prerequisite = f.prerequisite("prerequisite", r.prerequisite.as_ref());
    (|| {
        Some(Command::RequirePrerequisite {
            decision_id: decision_id?,
            prerequisite: prerequisite?,
        })
    })()
});
simple_request!(v1::DefineConstraintRequest, |r, f| {
    let constraint_id = f.id("constraint_id", &r.constraint_id);
    let rule = f.constraint_rule("rule", r.rule.as_ref());
    let side = f.opt_enum("side", r.side, side_from_proto);
    let since = f.opt_date("since", r.since.as_ref());
    (|| {
        Some(Command::DefineConstraint {
            constraint_id: constraint_id?,
            title: r.title.clone(),
            rule: rule?,
            side,
            authority: r.authority.clone(),
            since: since?,
        })
    })()
});
simple_request!(v1::WaiveConstraintRequest, |r, f| {
    let constraint_id = f.id("constraint_id", &r.constraint_id);
    let from = f.date("from", r.from.as_ref());
    (|| {
        Some(Command::WaiveConstraint {
            constraint_id: constraint_id?,
            from: from?,
            authority: r.authority.clone(),
            note: r.note.clone(),
        })
    })()
});
simple_request!(v1::RejectDecisionRequest, |r, f| {
    f.id("decision_id", &r.decision_id)
        .map(|decision_id| Command::RejectDecision {
            decision_id,
            reason: r.reason.clone(),
        })
});
simple_request!(v1::WithdrawDecisionRequest, |r, f| {
    f.id("decision_id", &r.decision_id)
        .map(|decision_id| Command::WithdrawDecision {
            decision_id,
            reason: r.reason.clone(),
        })
});
simple_request!(v1::WitnessHeadRequest, |r, _f| {
    Some(Command::WitnessHead {
        version: r.version,
        head_hash: r.head_hash.clone(),
        witnesses: r.witnesses.iter().map(witness_from_proto).collect(),
    })
});
simple_request!(v1::SignHeadRequest, |r, _f| {
    Some(Command::SignHead {
        version: r.version,
        head_hash: r.head_hash.clone(),
    })
});
