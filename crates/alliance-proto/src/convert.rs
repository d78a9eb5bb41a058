//! Conversion between the contract and the domain, in one place.
//!
//! Requests become domain commands (collecting every field violation at once); domain events
//! become envelope payloads and back. Anything a client or the log sends is checked here.

use std::collections::{BTreeMap, BTreeSet};

use alliance_domain::{
    Actor, AgreementKind, CapabilityArea, ClauseStatus, Command, Component, ConditionStatus, Date,
    DecisionStatus, ElementKind, ElementTimeline, Event, FieldViolation, ForceElementSpec, Grant,
    IdError, Plan, PlanId, PlanRole, Side, SimulationRun, Step, TeamId,
};
use chrono::Datelike;

use crate::v1;
use crate::v1::event_envelope::Payload;

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

fn opt_side_to_proto(side: Option<Side>) -> i32 {
    side.map_or(v1::Side::Unspecified as i32, side_to_proto)
}

fn sides_to_proto(sides: &BTreeSet<Side>) -> Vec<i32> {
    sides.iter().copied().map(side_to_proto).collect()
}

pub fn equipment_to_proto(equipment: &BTreeMap<String, u32>) -> Vec<v1::EquipmentCount> {
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
        name: element.name.clone(),
        side: side_to_proto(element.side),
        component: component_to_proto(element.component),
        kind: kind_to_proto(element.kind),
        personnel: element.personnel,
        equipment: equipment_to_proto(&element.equipment),
        base: element.base.clone(),
    }
}

pub fn actor_to_proto(actor: &Actor) -> v1::Actor {
    v1::Actor {
        team: actor.team.to_string(),
        user: actor.user.clone(),
        side: opt_side_to_proto(actor.side),
    }
}

/// Reads fields of a message, collecting a violation for each bad one so the caller sees them
/// all at once. A getter returns `None` (or a neutral value) after recording a violation.
#[derive(Default)]
pub struct Fields(Vec<FieldViolation>);

impl Fields {
    fn bad(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub fn date(&mut self, field: &str, date: Option<&v1::Date>) -> Option<Date> {
        match date {
            None => {
                self.bad(field, "is required");
                None
            }
            Some(d) => {
                let parsed = date_from_proto(d);
                if parsed.is_none() {
                    self.bad(
                        field,
                        format!(
                            "{:04}-{:02}-{:02} is not a calendar date",
                            d.year, d.month, d.day
                        ),
                    );
                }
                parsed
            }
        }
    }

    fn enum_value<T>(&mut self, field: &str, value: i32, conv: fn(i32) -> Option<T>) -> Option<T> {
        let parsed = conv(value);
        if parsed.is_none() {
            self.bad(field, "must be set to a known value");
        }
        parsed
    }

    /// An optional enum: unspecified means absent; unknown values are violations.
    fn opt_enum<T>(&mut self, field: &str, value: i32, conv: fn(i32) -> Option<T>) -> Option<T> {
        if value == 0 {
            return None;
        }
        self.enum_value(field, value, conv)
    }

    pub fn id<T: TryFrom<String, Error = IdError>>(
        &mut self,
        field: &str,
        value: &str,
    ) -> Option<T> {
        match T::try_from(value.to_owned()) {
            Ok(id) => Some(id),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    fn ids<T: TryFrom<String, Error = IdError> + Ord>(
        &mut self,
        field: &str,
        values: &[String],
    ) -> BTreeSet<T> {
        values.iter().filter_map(|v| self.id(field, v)).collect()
    }

    pub fn uuid(&mut self, field: &str, value: &str) -> Option<uuid::Uuid> {
        match uuid::Uuid::parse_str(value) {
            Ok(id) => Some(id),
            Err(_) => {
                self.bad(field, format!("{value:?} is not a UUID"));
                None
            }
        }
    }

    /// A role grant: a known team id and role name.
    pub fn grant(&mut self, field: &str, grant: Option<&v1::RoleGrant>) -> Option<Grant> {
        let Some(grant) = grant else {
            self.bad(field, "is required");
            return None;
        };
        let team = self.id(&format!("{field}.team"), &grant.team);
        let role = match grant.role.parse::<PlanRole>() {
            Ok(role) => Some(role),
            Err(e) => {
                self.bad(&format!("{field}.role"), e);
                None
            }
        };
        Some(Grant {
            team: team?,
            role: role?,
        })
    }

    fn grants(&mut self, field: &str, grants: &[v1::RoleGrant]) -> Vec<Grant> {
        grants
            .iter()
            .enumerate()
            .filter_map(|(i, g)| self.grant(&format!("{field}[{i}]"), Some(g)))
            .collect()
    }

    fn sides(&mut self, field: &str, values: &[i32]) -> BTreeSet<Side> {
        values
            .iter()
            .filter_map(|v| self.enum_value(field, *v, side_from_proto))
            .collect()
    }

    fn equipment(&mut self, field: &str, values: &[v1::EquipmentCount]) -> BTreeMap<String, u32> {
        let mut map = BTreeMap::new();
        for item in values {
            if map.insert(item.kind.clone(), item.count).is_some() {
                self.bad(
                    field,
                    format!("equipment kind {:?} is listed twice", item.kind),
                );
            }
        }
        map
    }

    pub fn element(
        &mut self,
        field: &str,
        element: Option<&v1::ForceElement>,
    ) -> Option<ForceElementSpec> {
        let Some(e) = element else {
            self.bad(field, "is required");
            return None;
        };
        let id = self.id(&format!("{field}.element_id"), &e.element_id);
        let side = self.enum_value(&format!("{field}.side"), e.side, side_from_proto);
        let component = self.enum_value(
            &format!("{field}.component"),
            e.component,
            component_from_proto,
        );
        let kind = self.enum_value(&format!("{field}.kind"), e.kind, kind_from_proto);
        let equipment = self.equipment(&format!("{field}.equipment"), &e.equipment);
        Some(ForceElementSpec {
            id: id?,
            name: e.name.clone(),
            side: side?,
            component: component?,
            kind: kind?,
            personnel: e.personnel,
            equipment,
            base: e.base.clone(),
        })
    }

    /// The collected violations, or `value` if there were none.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldViolation>> {
        match (self.0.is_empty(), value) {
            (true, Some(v)) => Ok(v),
            (true, None) => Err(vec![FieldViolation::new("", "incomplete message")]),
            (false, _) => Err(self.0),
        }
    }
}

/// A request of `PlanCommands` that becomes one domain command.
pub trait CommandRequest {
    fn meta(&self) -> Option<&v1::CommandMeta>;
    /// The domain command, or every field violation.
    fn to_command(&self) -> Result<Command, Vec<FieldViolation>>;
}

macro_rules! step_request {
    ($request:ty, |$r:ident, $f:ident| $step:expr) => {
        impl CommandRequest for $request {
            fn meta(&self) -> Option<&v1::CommandMeta> {
                self.meta.as_ref()
            }
            fn to_command(&self) -> Result<Command, Vec<FieldViolation>> {
                let $r = self;
                let mut $f = Fields::default();
                let decision_id = $f.id("decision_id", &$r.decision_id);
                let step: Option<Step> = $step;
                let command = (|| {
                    Some(Command::PlanStep {
                        decision_id: decision_id?,
                        step: step?,
                    })
                })();
                $f.finish(command)
            }
        }
    };
}

macro_rules! simple_request {
    ($request:ty, |$r:ident, $f:ident| $command:expr) => {
        impl CommandRequest for $request {
            fn meta(&self) -> Option<&v1::CommandMeta> {
                self.meta.as_ref()
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

step_request!(v1::AddForceElementRequest, |r, f| {
    let element = f.element("element", r.element.as_ref());
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::AddElement {
            element: element?,
            on: on?,
        })
    })()
});
step_request!(v1::WithdrawForceElementRequest, |r, f| {
    let element_id = f.id("element_id", &r.element_id);
    let on = f.date("on", r.on.as_ref());
    (|| {
        Some(Step::WithdrawElement {
            element_id: element_id?,
            on: on?,
        })
    })()
});
step_request!(v1::ReduceForceElementRequest, |r, f| {
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
step_request!(v1::RelocateForceElementRequest, |r, f| {
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
step_request!(v1::ScheduleOpconTransferRequest, |r, f| {
    let on = f.date("on", r.on.as_ref());
    let conditions = f.ids("conditions", &r.conditions);
    (|| {
        Some(Step::TransferOpcon {
            on: on?,
            conditions,
        })
    })()
});
step_request!(v1::ChangeCommandArrangementRequest, |r, f| {
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
step_request!(v1::AmendAgreementClauseRequest, |r, f| {
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
step_request!(v1::PlanCapabilityInvestmentRequest, |r, f| {
    let investment_id = f.id("investment_id", &r.investment_id);
    let area = f.enum_value("area", r.area, area_from_proto);
    let delivery = f.date("delivery", r.delivery.as_ref());
    (|| {
        Some(Step::InvestCapability {
            investment_id: investment_id?,
            area: area?,
            description: r.description.clone(),
            level_gain: r.level_gain,
            delivery: delivery?,
            cost_musd: r.cost_musd,
        })
    })()
});

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
simple_request!(v1::BranchPlanRequest, |r, f| {
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
        .map(|decision_id| Command::AdoptDecision { decision_id })
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

/// A role grant on the wire.
pub fn grant_to_proto(grant: &Grant) -> v1::RoleGrant {
    v1::RoleGrant {
        team: grant.team.to_string(),
        role: grant.role.to_string(),
    }
}

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

impl Fields {
    /// A simulation run record; every field is checked.
    pub fn simulation_run(
        &mut self,
        field: &str,
        run: Option<&v1::SimulationRunRecord>,
    ) -> Option<SimulationRun> {
        let Some(run) = run else {
            self.bad(field, "is required");
            return None;
        };
        let run_id = self.uuid(&format!("{field}.run_id"), &run.run_id);
        let start = self.date(&format!("{field}.start"), run.start.as_ref());
        let likely_by = match &run.conditions_likely_by {
            None => Some(None),
            Some(d) => self
                .date(&format!("{field}.conditions_likely_by"), Some(d))
                .map(Some),
        };
        Some(SimulationRun {
            run_id: run_id?,
            plan_version: run.plan_version,
            what_if: run.what_if,
            inputs_digest: run.inputs_digest.clone(),
            results_digest: run.results_digest.clone(),
            seed: run.seed,
            trials: run.trials,
            start: start?,
            months: run.months,
            model_version: run.model_version.clone(),
            shortfall_permille: run.shortfall_permille,
            conditions_at_transfer_permille: run.conditions_at_transfer_permille,
            conditions_likely_by: likely_by?,
            sequencing_risks: run.sequencing_risks,
            headline: run.headline.clone(),
        })
    }
}

fn step_to_payload(decision_id: String, step: &Step) -> Payload {
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
            cost_musd,
        } => Payload::CapabilityInvestmentPlanned(v1::CapabilityInvestmentPlanned {
            decision_id,
            investment_id: investment_id.to_string(),
            area: area_to_proto(*area),
            description: description.clone(),
            level_gain: *level_gain,
            delivery: Some(date_to_proto(*delivery)),
            cost_musd: *cost_musd,
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
                    cost_musd: p.cost_musd,
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
    };
    f.finish(event)
}

fn step_event(
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
