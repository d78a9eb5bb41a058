//! Seed inputs for the fuzz targets: the reference plan's commands as the requests a client
//! sends, a few requests the reference plan accepts at its latest version, and the reference
//! plan's events as the records the command service appends.

use alliance_domain::{Command, Grant, SimulationRun, Step};
use alliance_proto::convert::{
    agreement_to_proto, area_to_proto, clause_status_to_proto, condition_status_to_proto,
    constraint_rule_to_proto, date_to_proto, element_to_proto, equipment_to_proto, grant_to_proto,
    mission_to_proto, prerequisite_to_proto, side_to_proto, simulation_run_to_proto,
};
use alliance_proto::v1;
use alliance_record::chain::GENESIS;
use alliance_record::encode_event;
use prost::Message;

use crate::{REQUESTS, TEAMS, reference, selector};

/// One seed input and the file name it is written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub name: String,
    pub data: Vec<u8>,
}

/// The protobuf encoding of the request a client sends for `command`, with `meta`.
pub fn request_body(command: &Command, meta: v1::CommandMeta) -> Vec<u8> {
    let meta = Some(meta);
    let date = |d| Some(date_to_proto(d));
    let opt_side = |s: Option<_>| s.map_or(v1::Side::Unspecified as i32, side_to_proto);
    match command {
        Command::CreatePlan {
            name,
            description,
            horizon_start,
            horizon_end,
            ..
        } => v1::CreatePlanRequest {
            meta,
            name: name.clone(),
            description: description.clone(),
            horizon_start: date(*horizon_start),
            horizon_end: date(*horizon_end),
        }
        .encode_to_vec(),
        Command::BranchPlan {
            new_plan_id,
            parent_version,
            name,
            description,
        } => v1::BranchPlanRequest {
            meta,
            new_plan_id: if new_plan_id.is_nil() {
                String::new()
            } else {
                new_plan_id.to_string()
            },
            parent_version: (*parent_version > 0).then_some(*parent_version),
            name: name.clone(),
            description: description.clone(),
        }
        .encode_to_vec(),
        Command::RegisterForceElement {
            element,
            present_from,
        } => v1::RegisterForceElementRequest {
            meta,
            element: Some(element_to_proto(element)),
            present_from: date(*present_from),
        }
        .encode_to_vec(),
        Command::RecordCapabilityLevel {
            side,
            area,
            level,
            as_of,
        } => v1::RecordCapabilityLevelRequest {
            meta,
            side: side_to_proto(*side),
            area: area_to_proto(*area),
            level: *level,
            as_of: date(*as_of),
        }
        .encode_to_vec(),
        Command::DefineAgreementClause {
            clause_id,
            agreement,
            title,
            status,
            since,
        } => v1::DefineAgreementClauseRequest {
            meta,
            clause_id: clause_id.to_string(),
            agreement: agreement_to_proto(*agreement),
            title: title.clone(),
            status: clause_status_to_proto(*status),
            since: date(*since),
        }
        .encode_to_vec(),
        Command::DefineCondition {
            condition_id,
            title,
            description,
            area,
            threshold,
        } => v1::DefineConditionRequest {
            meta,
            condition_id: condition_id.to_string(),
            title: title.clone(),
            description: description.clone(),
            area: area.map_or(v1::CapabilityArea::Unspecified as i32, area_to_proto),
            threshold: *threshold,
        }
        .encode_to_vec(),
        Command::AssessCondition {
            condition_id,
            assessed_on,
            status,
            value,
            note,
        } => v1::AssessConditionRequest {
            meta,
            condition_id: condition_id.to_string(),
            assessed_on: date(*assessed_on),
            status: condition_status_to_proto(*status),
            value: *value,
            note: note.clone(),
        }
        .encode_to_vec(),
        Command::ProposeDecision {
            decision_id,
            title,
            rationale,
            effective_date,
            required_sides,
            supersedes,
        } => v1::ProposeDecisionRequest {
            meta,
            decision_id: decision_id.to_string(),
            title: title.clone(),
            rationale: rationale.clone(),
            effective_date: date(*effective_date),
            required_sides: required_sides.iter().copied().map(side_to_proto).collect(),
            supersedes: supersedes.iter().map(ToString::to_string).collect(),
        }
        .encode_to_vec(),
        Command::PlanStep { decision_id, step } => {
            let decision_id = decision_id.to_string();
            match step {
                Step::AddElement { element, on } => v1::AddForceElementRequest {
                    meta,
                    decision_id,
                    element: Some(element_to_proto(element)),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::WithdrawElement { element_id, on } => v1::WithdrawForceElementRequest {
                    meta,
                    decision_id,
                    element_id: element_id.to_string(),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::ReduceElement {
                    element_id,
                    personnel,
                    equipment,
                    on,
                } => v1::ReduceForceElementRequest {
                    meta,
                    decision_id,
                    element_id: element_id.to_string(),
                    personnel: *personnel,
                    equipment: equipment_to_proto(equipment),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::RelocateElement {
                    element_id,
                    to_base,
                    on,
                } => v1::RelocateForceElementRequest {
                    meta,
                    decision_id,
                    element_id: element_id.to_string(),
                    to_base: to_base.clone(),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::TransferOpcon { on, conditions } => v1::ScheduleOpconTransferRequest {
                    meta,
                    decision_id,
                    on: date(*on),
                    conditions: conditions.iter().map(ToString::to_string).collect(),
                }
                .encode_to_vec(),
                Step::ChangeCommandArrangement {
                    on,
                    peacetime_opcon,
                    wartime_opcon,
                    cfc_commander,
                } => v1::ChangeCommandArrangementRequest {
                    meta,
                    decision_id,
                    on: date(*on),
                    peacetime_opcon: opt_side(*peacetime_opcon),
                    wartime_opcon: opt_side(*wartime_opcon),
                    cfc_commander: opt_side(*cfc_commander),
                }
                .encode_to_vec(),
                Step::AssignMission {
                    mission,
                    lead,
                    supporting,
                    on,
                } => v1::AssignMissionRequest {
                    meta,
                    decision_id,
                    mission: mission_to_proto(*mission),
                    lead: side_to_proto(*lead),
                    supporting: opt_side(*supporting),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::AmendClause {
                    clause_id,
                    status,
                    on,
                } => v1::AmendAgreementClauseRequest {
                    meta,
                    decision_id,
                    clause_id: clause_id.to_string(),
                    status: clause_status_to_proto(*status),
                    on: date(*on),
                }
                .encode_to_vec(),
                Step::InvestCapability {
                    investment_id,
                    area,
                    description,
                    level_gain,
                    delivery,
                    cost_kusd,
                } => v1::PlanCapabilityInvestmentRequest {
                    meta,
                    decision_id,
                    investment_id: investment_id.to_string(),
                    area: area_to_proto(*area),
                    description: description.clone(),
                    level_gain: *level_gain,
                    delivery: date(*delivery),
                    cost_musd: 0,
                    cost_kusd: *cost_kusd,
                }
                .encode_to_vec(),
            }
        }
        Command::EndorseDecision { decision_id } => v1::EndorseDecisionRequest {
            meta,
            decision_id: decision_id.to_string(),
        }
        .encode_to_vec(),
        Command::AdoptDecision {
            decision_id,
            acknowledged_findings,
        } => v1::AdoptDecisionRequest {
            meta,
            decision_id: decision_id.to_string(),
            acknowledged_findings: acknowledged_findings.iter().cloned().collect(),
        }
        .encode_to_vec(),
        Command::RequirePrerequisite {
            decision_id,
            prerequisite,
        } => v1::RequirePrerequisiteRequest {
            meta,
            decision_id: decision_id.to_string(),
            prerequisite: Some(prerequisite_to_proto(prerequisite)),
        }
        .encode_to_vec(),
        Command::DefineConstraint {
            constraint_id,
            title,
            rule,
            side,
            authority,
            since,
        } => v1::DefineConstraintRequest {
            meta,
            constraint_id: constraint_id.to_string(),
            title: title.clone(),
            rule: Some(constraint_rule_to_proto(rule)),
            side: opt_side(*side),
            authority: authority.clone(),
            since: since.map(date_to_proto),
        }
        .encode_to_vec(),
        Command::WaiveConstraint {
            constraint_id,
            from,
            authority,
            note,
        } => v1::WaiveConstraintRequest {
            meta,
            constraint_id: constraint_id.to_string(),
            from: date(*from),
            authority: authority.clone(),
            note: note.clone(),
        }
        .encode_to_vec(),
        Command::RejectDecision {
            decision_id,
            reason,
        } => v1::RejectDecisionRequest {
            meta,
            decision_id: decision_id.to_string(),
            reason: reason.clone(),
        }
        .encode_to_vec(),
        Command::WithdrawDecision {
            decision_id,
            reason,
        } => v1::WithdrawDecisionRequest {
            meta,
            decision_id: decision_id.to_string(),
            reason: reason.clone(),
        }
        .encode_to_vec(),
        Command::RecordSimulationRun { run } => v1::RecordSimulationRunRequest {
            meta,
            run: Some(simulation_run_to_proto(run)),
        }
        .encode_to_vec(),
        Command::GrantRole { team, role } => v1::GrantRoleRequest {
            meta,
            grant: Some(grant_to_proto(&Grant {
                team: team.clone(),
                role: *role,
            })),
        }
        .encode_to_vec(),
        Command::RevokeRole { team, role } => v1::RevokeRoleRequest {
            meta,
            grant: Some(grant_to_proto(&Grant {
                team: team.clone(),
                role: *role,
            })),
        }
        .encode_to_vec(),
        Command::WitnessHead {
            version,
            head_hash,
            witnesses,
        } => v1::WitnessHeadRequest {
            meta,
            version: *version,
            head_hash: head_hash.clone(),
            witnesses: witnesses
                .iter()
                .map(alliance_proto::convert::witness_to_proto)
                .collect(),
        }
        .encode_to_vec(),
        Command::SignHead { version, head_hash } => v1::SignHeadRequest {
            meta,
            version: *version,
            head_hash: head_hash.clone(),
        }
        .encode_to_vec(),
    }
}

/// A command input: the selector of `command`'s request and `team`, then the request.
///
/// # Panics
///
/// When `team` is not one of [`TEAMS`].
pub fn command_input(command: &Command, meta: v1::CommandMeta, team: &str) -> Vec<u8> {
    let request = REQUESTS
        .iter()
        .position(|name| *name == command.name())
        .unwrap_or_else(|| panic!("{} is not a request of PlanCommands", command.name()));
    let team = TEAMS
        .iter()
        .position(|t| *t == team)
        .unwrap_or_else(|| panic!("{team} is not a team commands are issued as"));
    let mut data = vec![selector(request, team)];
    data.extend(request_body(command, meta));
    data
}

/// Metadata of a command with id `command_id` on plan `plan_id` (empty: none named).
pub fn meta(command_id: &str, plan_id: &str) -> v1::CommandMeta {
    v1::CommandMeta {
        command_id: command_id.to_owned(),
        plan_id: plan_id.to_owned(),
        based_on_version: None,
        correlation_id: String::new(),
        causation_id: String::new(),
    }
}

/// A command written as the reference plan writes its commands.
///
/// # Panics
///
/// When `json` is not a command.
fn json_command(json: &str) -> Command {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("seed command {json}: {e}"))
}

/// Command seeds: every command of the reference plan as the team that issued it (the plan
/// creation names no plan id, so a new plan is minted), then the requests of
/// [`accepted_commands`].
pub fn command_seeds() -> Vec<Seed> {
    let reference = reference();
    let plan_id = reference.plan_id().to_string();
    let mut seeds = Vec::new();
    for (index, entry) in reference.plan.entries.iter().enumerate() {
        let command_id = format!("reference:{plan_id}:{index}");
        let target = match entry.command {
            Command::CreatePlan { .. } => "",
            _ => plan_id.as_str(),
        };
        seeds.push(Seed {
            name: format!("reference-{index:03}-{}", entry.command.name()),
            data: command_input(
                &entry.command,
                meta(&command_id, target),
                entry.team.as_str(),
            ),
        });
    }
    for (name, team, command) in accepted_commands() {
        let mut meta = meta(&format!("seed:{name}"), &plan_id);
        if name.ends_with("-based-on") {
            meta.based_on_version = Some(reference.latest().version);
        }
        seeds.push(Seed {
            name: format!("accepted-{name}"),
            data: command_input(&command, meta, team),
        });
    }
    seeds
}

/// Requests the reference plan accepts at its latest version: at least one of every request,
/// each as a team allowed to issue it.
pub fn accepted_commands() -> Vec<(&'static str, &'static str, Command)> {
    const US: &str = "us-force-planning";
    const ROK: &str = "rok-jcs";
    const NUCLEAR: &str = "nuclear-policy";
    const APPROVERS: &str = "alliance-approvers";
    const AUDITORS: &str = "auditors";
    // Owned by the U.S. force-planning cell, not endorsed yet: it takes steps.
    const OPEN: &str = r#""decision_id":"opplan-revision-post-transfer""#;
    let step = |step: &str| json_command(&format!(r#"{{"command":"plan_step",{OPEN},{step}}}"#));
    let element = r#"{"id":"3mef-rotational-mlr","name":"3rd Marine Littoral Regiment (rotational)","side":"us","component":"marines","kind":"ground_combat_brigade","personnel":1800,"equipment":{"nmesis":18,"jltv":120},"base":"Camp Mujuk"}"#;
    let version = reference().latest().version;
    vec![
        (
            "branch-latest",
            US,
            json_command(
                r#"{"command":"branch_plan","new_plan_id":"00000000-0000-0000-0000-000000000000","parent_version":0,"name":"Retrenchment what-if","description":"Phase 2 without the air enablers"}"#,
            ),
        ),
        (
            "branch-at-40",
            ROK,
            json_command(
                r#"{"command":"branch_plan","new_plan_id":"019a0000-0000-7000-8000-00000000b040","parent_version":40,"name":"Before the 2014 decision"}"#,
            ),
        ),
        (
            "register-element",
            US,
            json_command(&format!(
                r#"{{"command":"register_force_element","element":{element},"present_from":"2026-03-01"}}"#
            )),
        ),
        (
            "define-clause",
            NUCLEAR,
            json_command(
                r#"{"command":"define_agreement_clause","clause_id":"ed-ncg-planning","agreement":"extended_deterrence","title":"Nuclear Consultative Group joint planning","status":"permitted","since":"2023-07-18"}"#,
            ),
        ),
        (
            "define-condition",
            ROK,
            json_command(
                r#"{"command":"define_condition","condition_id":"rok-isr-65","title":"ROK ISR at 65","description":"Independent ISR coverage of the peninsula","area":"isr","threshold":65}"#,
            ),
        ),
        (
            "propose-decision",
            US,
            json_command(
                r#"{"command":"propose_decision","decision_id":"rotational-armor-2028","title":"Rotational armor through 2028","rationale":"Keep one rotational ABCT while the ROK fields its replacement","effective_date":"2027-01-01","required_sides":["us","rok"]}"#,
            ),
        ),
        (
            "propose-superseding-decision",
            US,
            json_command(
                r#"{"command":"propose_decision","decision_id":"alliance-guiding-principles-2027","title":"Revised alliance guiding principles","rationale":"Principles after the wartime OPCON transfer","effective_date":"2027-06-01","required_sides":["us","rok"],"supersedes":["hist-2018-alliance-guiding-principles"]}"#,
            ),
        ),
        (
            "add-element",
            US,
            step(&format!(
                r#""step":"add_element","element":{element},"on":"2030-01-01""#
            )),
        ),
        (
            "withdraw-element",
            US,
            step(r#""step":"withdraw_element","element_id":"5rs-u2","on":"2031-01-01""#),
        ),
        (
            "reduce-element-based-on",
            US,
            step(
                r#""step":"reduce_element","element_id":"8fw-kunsan","personnel":150,"equipment":{},"on":"2030-06-01""#,
            ),
        ),
        (
            "relocate-element",
            US,
            step(
                r#""step":"relocate_element","element_id":"51fw-osan","to_base":"Camp Humphreys","on":"2032-01-01""#,
            ),
        ),
        (
            "transfer-opcon",
            US,
            step(
                r#""step":"transfer_opcon","on":"2030-10-01","conditions":["rok-c2-certified","rok-munitions-60"]"#,
            ),
        ),
        (
            "change-command-arrangement",
            US,
            step(
                r#""step":"change_command_arrangement","on":"2030-10-01","peacetime_opcon":null,"wartime_opcon":"rok","cfc_commander":"rok""#,
            ),
        ),
        (
            "assign-mission",
            US,
            step(
                r#""step":"assign_mission","mission":"intelligence","lead":"rok","supporting":"us","on":"2029-06-30""#,
            ),
        ),
        (
            "amend-clause",
            US,
            step(
                r#""step":"amend_clause","clause_id":"mdt-art4-stationing","status":"restricted","on":"2033-01-01""#,
            ),
        ),
        (
            "invest-capability",
            US,
            step(
                r#""step":"invest_capability","investment_id":"rok-ew-aircraft","area":"isr","description":"Electronic warfare aircraft","level_gain":5,"delivery":"2031-01-01","cost_kusd":1200000"#,
            ),
        ),
        (
            "endorse-decision",
            US,
            json_command(
                r#"{"command":"endorse_decision","decision_id":"retrenchment-phase-2-air-enablers"}"#,
            ),
        ),
        (
            "adopt-decision",
            APPROVERS,
            json_command(r#"{"command":"adopt_decision","decision_id":"opcon-wartime-transfer"}"#),
        ),
        (
            "reject-decision",
            ROK,
            json_command(
                r#"{"command":"reject_decision","decision_id":"security-guarantee-scope-talks","reason":"Overtaken by the Nuclear Consultative Group"}"#,
            ),
        ),
        (
            "withdraw-decision",
            US,
            json_command(&format!(
                r#"{{"command":"withdraw_decision",{OPEN},"reason":"Folded into phase 2"}}"#
            )),
        ),
        (
            "grant-role",
            APPROVERS,
            json_command(
                r#"{"command":"grant_role","team":"auditors","role":"editor:conditions"}"#,
            ),
        ),
        (
            "revoke-role",
            APPROVERS,
            json_command(
                r#"{"command":"revoke_role","team":"nuclear-policy","role":"editor:forces"}"#,
            ),
        ),
        (
            "require-prerequisite",
            US,
            json_command(&format!(
                r#"{{"command":"require_prerequisite",{OPEN},"prerequisite":{{"prerequisite":"conditions_met","conditions":["rok-c2-certified"]}}}}"#
            )),
        ),
        (
            "define-constraint",
            ROK,
            json_command(
                r#"{"command":"define_constraint","constraint_id":"combined-missile-defense","title":"Combined missile defense at least 90","rule":{"rule":"combined_capability","area":"missile_defense","min":90},"side":null,"authority":"planning assumption"}"#,
            ),
        ),
        (
            "waive-constraint",
            US,
            json_command(
                r#"{"command":"waive_constraint","constraint_id":"us-personnel-floor","from":"2030-01-01","authority":"certification of the Secretary of Defense","note":"a second certification"}"#,
            ),
        ),
        (
            "record-simulation-run",
            ROK,
            Command::RecordSimulationRun {
                run: simulation_run(version),
            },
        ),
        (
            "witness-head",
            AUDITORS,
            Command::WitnessHead {
                version,
                head_hash: "5a".repeat(32),
                witnesses: vec![alliance_domain::HeadWitness {
                    key_id: "0123456789abcdef".into(),
                    signature: "c3".repeat(64),
                }],
            },
        ),
        (
            "sign-head",
            AUDITORS,
            Command::SignHead {
                version,
                head_hash: "5a".repeat(32),
            },
        ),
    ]
}

/// Envelope seeds: every event of the reference plan as the record the command service appends
/// for it, chained as the plan's records are.
pub fn envelope_seeds() -> Vec<Seed> {
    let reference = reference();
    let plan_id = reference.plan_id();
    let mut prev = GENESIS;
    let mut seeds = Vec::new();
    for ((team, event), version) in reference.events.iter().zip(1..) {
        let actor = reference
            .caller(team.as_str())
            .map(|caller| caller.actor)
            .unwrap_or_else(|| panic!("{team} is not a team of the token file"));
        let (record, hash) = encode_event(
            plan_id,
            version,
            event,
            &actor,
            &format!("reference:{plan_id}:{version}"),
            crate::RECORD_TIME_MICROS + i64::try_from(version).unwrap_or_default(),
            &prev,
        );
        prev = hash;
        seeds.push(Seed {
            name: format!("reference-v{version:03}-{}", event.event_type()),
            data: record.payload,
        });
    }
    seeds
}

/// A simulation run of the reference plan at `plan_version`, as the simulation service
/// records one.
pub fn simulation_run(plan_version: u64) -> SimulationRun {
    SimulationRun {
        run_id: uuid::Uuid::from_u128(0x019a_0000_0000_7000_8000_5eed_0000_0001),
        plan_version,
        what_if: false,
        inputs_digest: "0".repeat(64),
        results_digest: "f".repeat(64),
        seed: 42,
        trials: 1000,
        start: reference().latest().horizon_start,
        months: 24,
        model_version: "reference-model-1".into(),
        shortfall_permille: 125,
        conditions_at_transfer_permille: Some(600),
        conditions_likely_by: None,
        sequencing_risks: 2,
        headline: "Shortfalls stay within the alliance's tolerance".into(),
    }
}
