//! Each role can do exactly its operations: every gRPC method that touches a plan (commands,
//! queries, streams, the audit log, simulations), called by one team per role, against a real
//! server on a loopback port. A refusal is PERMISSION_DENIED naming the team and the role it
//! lacks, appends nothing, and is recorded in the security log. A team with no role on the plan
//! gets exactly what a plan that does not exist gets (NOT_FOUND), and a stream ends when its
//! caller's last role is revoked.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;
use alliance_proto::v1::simulation_client::SimulationClient;
use alliance_tests::requests::{self, brigade, date, meta};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Server, Services, assert_refused};

/// One team per role; `planadmin` creates the plan (admin), `auditor` audits (auditor),
/// `outsider` holds nothing, and `grantee` is what `GrantRole` and `RevokeRole` grant to.
const TOKENS: &str = r#"
[[team]]
team = "planadmin"
roles = ["admin"]
[[team]]
team = "auditor"
roles = ["audit"]
[[team]]
team = "ed-forces"
roles = []
[[team]]
team = "ed-capabilities"
roles = []
[[team]]
team = "ed-agreements"
roles = []
[[team]]
team = "ed-command"
roles = []
[[team]]
team = "ed-conditions"
roles = []
[[team]]
team = "end-us"
side = "us"
roles = []
[[team]]
team = "end-rok"
side = "rok"
roles = []
[[team]]
team = "adopter"
roles = []
[[team]]
team = "outsider"
side = "us"
roles = []
[[team]]
team = "grantee"
roles = []
"#;

/// The role each team is granted on the plan (besides the two granted by default).
const GRANTED: [(&str, &str); 9] = [
    ("ed-forces", "editor:forces"),
    ("ed-capabilities", "editor:capabilities"),
    ("ed-agreements", "editor:agreements"),
    ("ed-command", "editor:command_arrangements"),
    ("ed-conditions", "editor:conditions"),
    ("end-us", "endorser:us"),
    ("end-rok", "endorser:rok"),
    ("adopter", "adopter"),
    ("auditor", "auditor"),
];

const TEAMS: [&str; 11] = [
    "planadmin",
    "auditor",
    "ed-forces",
    "ed-capabilities",
    "ed-agreements",
    "ed-command",
    "ed-conditions",
    "end-us",
    "end-rok",
    "adopter",
    "outsider",
];

const EDITORS: &[&str] = &[
    "ed-forces",
    "ed-capabilities",
    "ed-agreements",
    "ed-command",
    "ed-conditions",
];
const EVERY_ROLE: &[&str] = &[
    "planadmin",
    "auditor",
    "ed-forces",
    "ed-capabilities",
    "ed-agreements",
    "ed-command",
    "ed-conditions",
    "end-us",
    "end-rok",
    "adopter",
];

fn tokens() -> String {
    let mut file = TOKENS.to_owned();
    for team in TEAMS {
        file.push_str(&format!(
            "[[token]]\ntoken = \"tok-{team}\"\nteam = \"{team}\"\nuser = \"{team}.user\"\n"
        ));
    }
    file
}

fn authed<T>(team: &str, message: T) -> tonic::Request<T> {
    requests::authed(&format!("tok-{team}"), message)
}

fn grant(team: &str, role: &str) -> Option<v1::RoleGrant> {
    Some(v1::RoleGrant {
        team: team.to_owned(),
        role: role.to_owned(),
    })
}

/// Creates a plan as `planadmin`; returns its id.
async fn create_plan(commands: &mut PlanCommandsClient<Channel>, name: &str) -> String {
    commands
        .create_plan(authed(
            "planadmin",
            requests::create_plan(name, date(2024, 1, 1)),
        ))
        .await
        .unwrap()
        .into_inner()
        .plan_id
}

/// The server's security log, as the auditor reads it.
async fn denials(audit: &mut AuditLogClient<Channel>) -> Vec<v1::Denial> {
    audit
        .list_denials(authed(
            "auditor",
            v1::ListDenialsRequest {
                since: None,
                limit: 1000,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .denials
}

/// The version of `plan` as its admin reads it from the write side.
async fn head_version(commands: &mut PlanCommandsClient<Channel>, plan: &str) -> u64 {
    crate::support::head_version(commands, "tok-planadmin", plan).await
}

/// Grants (or with `revoke`, revokes) `role` on `plan` to `team`, as `by`.
async fn set_role(
    commands: &mut PlanCommandsClient<Channel>,
    by: &str,
    plan: &str,
    (team, role): (&str, &str),
    revoke: bool,
) -> Result<(), Status> {
    if revoke {
        let request = v1::RevokeRoleRequest {
            meta: meta(plan, None),
            grant: grant(team, role),
        };
        commands.revoke_role(authed(by, request)).await?;
    } else {
        let request = v1::GrantRoleRequest {
            meta: meta(plan, None),
            grant: grant(team, role),
        };
        commands.grant_role(authed(by, request)).await?;
    }
    Ok(())
}

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// The clients of one server.
#[derive(Clone)]
struct Clients {
    commands: PlanCommandsClient<Channel>,
    queries: PostureQueriesClient<Channel>,
    audit: AuditLogClient<Channel>,
    admin: ReadModelAdminClient<Channel>,
    simulation: SimulationClient<Channel>,
}

/// Calls `method` as `team` on `plan` with a well-formed request.
fn call(c: &Clients, method: &str, team: &str, plan: &str) -> Call {
    let (mut c, team, plan) = (c.clone(), team.to_owned(), plan.to_owned());
    let method = method.to_owned();
    Box::pin(async move {
        let p = plan.as_str();
        let t = team.as_str();
        let decision = "d1".to_owned();
        match method.as_str() {
            "CreatePlan" => drop(
                c.commands
                    .create_plan(authed(
                        t,
                        requests::create_plan("another", date(2024, 1, 1)),
                    ))
                    .await?,
            ),
            "BranchPlan" => drop(
                c.commands
                    .branch_plan(authed(
                        t,
                        v1::BranchPlanRequest {
                            meta: meta(p, None),
                            name: "branch".into(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "RegisterForceElement" => drop(
                c.commands
                    .register_force_element(authed(
                        t,
                        v1::RegisterForceElementRequest {
                            meta: meta(p, None),
                            element: brigade(
                                &format!("el-{}", uuid::Uuid::now_v7().simple()),
                                "unit",
                                100,
                            ),
                            present_from: date(2024, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "RecordCapabilityLevel" => drop(
                c.commands
                    .record_capability_level(authed(
                        t,
                        v1::RecordCapabilityLevelRequest {
                            meta: meta(p, None),
                            side: 2,
                            area: 1,
                            level: 50,
                            as_of: date(2025, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "DefineAgreementClause" => drop(
                c.commands
                    .define_agreement_clause(authed(
                        t,
                        v1::DefineAgreementClauseRequest {
                            meta: meta(p, None),
                            clause_id: format!("k-{}", uuid::Uuid::now_v7().simple()),
                            agreement: 1,
                            title: "clause".into(),
                            status: 1,
                            since: date(2024, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "DefineCondition" => drop(
                c.commands
                    .define_condition(authed(
                        t,
                        v1::DefineConditionRequest {
                            meta: meta(p, None),
                            condition_id: format!("c-{}", uuid::Uuid::now_v7().simple()),
                            title: "condition".into(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "AssessCondition" => drop(
                c.commands
                    .assess_condition(authed(
                        t,
                        v1::AssessConditionRequest {
                            meta: meta(p, None),
                            condition_id: "c1".into(),
                            assessed_on: date(2025, 1, 1),
                            status: 1,
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "ProposeDecision" => drop(
                c.commands
                    .propose_decision(authed(
                        t,
                        v1::ProposeDecisionRequest {
                            meta: meta(p, None),
                            decision_id: format!("d-{}", uuid::Uuid::now_v7().simple()),
                            title: "decision".into(),
                            rationale: "why".into(),
                            effective_date: date(2027, 1, 1),
                            required_sides: vec![1],
                            supersedes: Vec::new(),
                        },
                    ))
                    .await?,
            ),
            "AddForceElement" => drop(
                c.commands
                    .add_force_element(authed(
                        t,
                        v1::AddForceElementRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            element: brigade(
                                &format!("new-{}", uuid::Uuid::now_v7().simple()),
                                "unit",
                                100,
                            ),
                            on: date(2027, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "WithdrawForceElement" => drop(
                c.commands
                    .withdraw_force_element(authed(
                        t,
                        v1::WithdrawForceElementRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            element_id: "bde".into(),
                            on: date(2027, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "ReduceForceElement" => drop(
                c.commands
                    .reduce_force_element(authed(
                        t,
                        v1::ReduceForceElementRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            element_id: "bde".into(),
                            personnel: 50,
                            equipment: Vec::new(),
                            on: date(2027, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "RelocateForceElement" => drop(
                c.commands
                    .relocate_force_element(authed(
                        t,
                        v1::RelocateForceElementRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            element_id: "bde".into(),
                            to_base: "Osan".into(),
                            on: date(2027, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "ScheduleOpconTransfer" => drop(
                c.commands
                    .schedule_opcon_transfer(authed(
                        t,
                        v1::ScheduleOpconTransferRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            on: date(2028, 12, 1),
                            conditions: vec!["c1".into()],
                        },
                    ))
                    .await?,
            ),
            "ChangeCommandArrangement" => drop(
                c.commands
                    .change_command_arrangement(authed(
                        t,
                        v1::ChangeCommandArrangementRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            on: date(2028, 12, 1),
                            peacetime_opcon: 2,
                            wartime_opcon: 2,
                            cfc_commander: 2,
                        },
                    ))
                    .await?,
            ),
            "AmendAgreementClause" => drop(
                c.commands
                    .amend_agreement_clause(authed(
                        t,
                        v1::AmendAgreementClauseRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            clause_id: "k1".into(),
                            status: 2,
                            on: date(2027, 1, 1),
                        },
                    ))
                    .await?,
            ),
            "PlanCapabilityInvestment" => drop(
                c.commands
                    .plan_capability_investment(authed(
                        t,
                        v1::PlanCapabilityInvestmentRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            investment_id: format!("i-{}", uuid::Uuid::now_v7().simple()),
                            area: 1,
                            description: "programme".into(),
                            level_gain: 5,
                            delivery: date(2029, 1, 1),
                            cost_musd: 0,
                            cost_kusd: 100_000,
                        },
                    ))
                    .await?,
            ),
            "EndorseDecision" => drop(
                c.commands
                    .endorse_decision(authed(
                        t,
                        v1::EndorseDecisionRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                        },
                    ))
                    .await?,
            ),
            "AdoptDecision" => drop(
                c.commands
                    .adopt_decision(authed(
                        t,
                        v1::AdoptDecisionRequest {
                            meta: meta(p, None),
                            decision_id: "d-none".into(),
                            acknowledged_findings: Vec::new(),
                        },
                    ))
                    .await?,
            ),
            "RejectDecision" => drop(
                c.commands
                    .reject_decision(authed(
                        t,
                        v1::RejectDecisionRequest {
                            meta: meta(p, None),
                            decision_id: "d-none".into(),
                            reason: "no".into(),
                        },
                    ))
                    .await?,
            ),
            "WithdrawDecision" => drop(
                c.commands
                    .withdraw_decision(authed(
                        t,
                        v1::WithdrawDecisionRequest {
                            meta: meta(p, None),
                            decision_id: "d-none".into(),
                            reason: "no".into(),
                        },
                    ))
                    .await?,
            ),
            "RecordSimulationRun" => drop(
                c.commands
                    .record_simulation_run(authed(
                        t,
                        v1::RecordSimulationRunRequest {
                            meta: meta(p, None),
                            run: Some(requests::run_record("test")),
                        },
                    ))
                    .await?,
            ),
            "GrantRole" => set_role(&mut c.commands, t, p, ("grantee", "auditor"), false).await?,
            "RevokeRole" => set_role(&mut c.commands, t, p, ("grantee", "auditor"), true).await?,
            // A head that is not the plan's: refused after the role is judged, appending nothing.
            "WitnessHead" => drop(
                c.commands
                    .witness_head(authed(
                        t,
                        v1::WitnessHeadRequest {
                            meta: meta(p, None),
                            version: 1,
                            head_hash: "0".repeat(64),
                            witnesses: vec![v1::HeadWitness {
                                key_id: "0".repeat(16),
                                signature: vec![0; 64],
                            }],
                        },
                    ))
                    .await?,
            ),
            "SignHead" => drop(
                c.commands
                    .sign_head(authed(
                        t,
                        v1::SignHeadRequest {
                            meta: meta(p, None),
                            version: 1,
                            head_hash: "0".repeat(64),
                        },
                    ))
                    .await?,
            ),
            "GetPlan" => drop(
                c.commands
                    .get_plan(authed(
                        t,
                        v1::GetPlanRequest {
                            plan_id: plan.clone(),
                        },
                    ))
                    .await?,
            ),
            "GetPosture" => drop(
                c.queries
                    .get_posture(authed(
                        t,
                        v1::GetPostureRequest {
                            plan_id: plan.clone(),
                            valid_on: date(2027, 6, 1),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "GetPostureSeries" => drop(
                c.queries
                    .get_posture_series(authed(
                        t,
                        v1::GetPostureSeriesRequest {
                            plan_id: plan.clone(),
                            from: date(2026, 1, 1),
                            to: date(2028, 1, 1),
                            step: 1,
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "DiffPlan" => drop(
                c.queries
                    .diff_plan(authed(
                        t,
                        v1::DiffPlanRequest {
                            plan_id: plan.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "RequirePrerequisite" => drop(
                c.commands
                    .require_prerequisite(authed(
                        t,
                        v1::RequirePrerequisiteRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            prerequisite: Some(v1::Prerequisite {
                                kind: Some(v1::prerequisite::Kind::CapabilityReached(
                                    v1::prerequisite::CapabilityReached {
                                        side: 2,
                                        area: 1,
                                        level: 50,
                                    },
                                )),
                            }),
                        },
                    ))
                    .await?,
            ),
            "DefineConstraint" => drop(
                c.commands
                    .define_constraint(authed(
                        t,
                        v1::DefineConstraintRequest {
                            meta: meta(p, None),
                            constraint_id: format!("k-{}", uuid::Uuid::now_v7().simple()),
                            title: "floor".into(),
                            rule: Some(v1::ConstraintRule {
                                kind: Some(v1::constraint_rule::Kind::Personnel(
                                    v1::constraint_rule::PersonnelBounds {
                                        side: 1,
                                        min: Some(1),
                                        ..Default::default()
                                    },
                                )),
                            }),
                            authority: "assumption".into(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "WaiveConstraint" => drop(
                c.commands
                    .waive_constraint(authed(
                        t,
                        v1::WaiveConstraintRequest {
                            meta: meta(p, None),
                            constraint_id: "no-such-constraint".into(),
                            from: date(2028, 1, 1),
                            authority: "certification".into(),
                            note: String::new(),
                        },
                    ))
                    .await?,
            ),
            "AssignMission" => drop(
                c.commands
                    .assign_mission(authed(
                        t,
                        v1::AssignMissionRequest {
                            meta: meta(p, None),
                            decision_id: decision,
                            mission: 2,
                            lead: 2,
                            supporting: 1,
                            on: date(2029, 6, 30),
                        },
                    ))
                    .await?,
            ),
            "GetFindings" => drop(
                c.queries
                    .get_findings(authed(
                        t,
                        v1::GetFindingsRequest {
                            plan_id: plan.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "WatchFindings" => drop(
                c.queries
                    .watch_findings(authed(
                        t,
                        v1::WatchFindingsRequest {
                            plan_id: plan.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "ListDecisions" => drop(
                c.queries
                    .list_decisions(authed(
                        t,
                        v1::ListDecisionsRequest {
                            plan_id: plan.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "WatchPlan" => drop(
                c.queries
                    .watch_plan(authed(
                        t,
                        v1::WatchPlanRequest {
                            plan_id: plan.clone(),
                            from_version: 1,
                            min_version: 0,
                        },
                    ))
                    .await?,
            ),
            "WatchPosture" => drop(
                c.queries
                    .watch_posture(authed(
                        t,
                        v1::WatchPostureRequest {
                            plan_id: plan.clone(),
                            valid_on: date(2027, 6, 1),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "ListEvents" => drop(
                c.audit
                    .list_events(authed(
                        t,
                        v1::ListEventsRequest {
                            plan_id: plan.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?,
            ),
            "ExportPlan" => drop(
                c.audit
                    .export_plan(authed(
                        t,
                        v1::ExportPlanRequest {
                            plan_id: plan.clone(),
                        },
                    ))
                    .await?,
            ),
            "VerifyPlan" => drop(
                c.audit
                    .verify_plan(authed(
                        t,
                        v1::VerifyPlanRequest {
                            plan_id: plan.clone(),
                            kept_head: None,
                        },
                    ))
                    .await?,
            ),
            "GetHead" => drop(
                c.audit
                    .get_head(authed(
                        t,
                        v1::GetHeadRequest {
                            plan_id: plan.clone(),
                        },
                    ))
                    .await?,
            ),
            "ListDenials" => drop(
                c.audit
                    .list_denials(authed(t, v1::ListDenialsRequest::default()))
                    .await?,
            ),
            "Rebuild" => drop(c.admin.rebuild(authed(t, v1::RebuildRequest {})).await?),
            "RunSimulation" => {
                let mut updates = c
                    .simulation
                    .run(authed(
                        t,
                        v1::RunSimulationRequest {
                            spec: Some(v1::SimulationSpec {
                                plan_id: plan.clone(),
                                trials: 1,
                                months: 1,
                                seed: Some(1),
                                ..Default::default()
                            }),
                        },
                    ))
                    .await?
                    .into_inner();
                // To its end: the run is recorded in the plan's history before its result comes,
                // so the next call sees the plan's version settled.
                while updates.message().await?.is_some() {}
            }
            other => panic!("no such method in the table: {other}"),
        }
        Ok(())
    })
}

/// Methods that name no plan: a team without the role is refused whatever plans exist.
const NOT_OF_A_PLAN: [&str; 3] = ["CreatePlan", "ListDenials", "Rebuild"];

/// Every method and the teams allowed to call it; everyone else is refused.
fn table() -> Vec<(&'static str, Vec<&'static str>)> {
    let only = |teams: &[&'static str]| teams.to_vec();
    let editors_and = |extra: &[&'static str]| {
        let mut teams = EDITORS.to_vec();
        teams.extend_from_slice(extra);
        teams
    };
    vec![
        ("CreatePlan", only(&["planadmin"])),
        ("BranchPlan", editors_and(&["planadmin"])),
        ("RegisterForceElement", only(&["ed-forces"])),
        ("RecordCapabilityLevel", only(&["ed-capabilities"])),
        ("DefineAgreementClause", only(&["ed-agreements"])),
        ("DefineCondition", only(&["ed-conditions"])),
        ("AssessCondition", only(&["ed-conditions"])),
        ("ProposeDecision", only(EDITORS)),
        ("AddForceElement", only(&["ed-forces"])),
        ("WithdrawForceElement", only(&["ed-forces"])),
        ("ReduceForceElement", only(&["ed-forces"])),
        ("RelocateForceElement", only(&["ed-forces"])),
        ("ScheduleOpconTransfer", only(&["ed-command"])),
        ("ChangeCommandArrangement", only(&["ed-command"])),
        ("AmendAgreementClause", only(&["ed-agreements"])),
        ("PlanCapabilityInvestment", only(&["ed-capabilities"])),
        ("EndorseDecision", only(&["end-us", "end-rok"])),
        ("AdoptDecision", only(&["adopter"])),
        ("RejectDecision", only(&["adopter", "end-us", "end-rok"])),
        ("WithdrawDecision", only(EDITORS)),
        // Recorded by the simulation service alone: a direct call is refused to every role.
        ("RecordSimulationRun", only(&[])),
        ("GrantRole", only(&["planadmin"])),
        ("RevokeRole", only(&["planadmin"])),
        ("RequirePrerequisite", only(EDITORS)),
        ("DefineConstraint", only(&["ed-conditions"])),
        ("WaiveConstraint", only(&["adopter", "end-us", "end-rok"])),
        ("AssignMission", only(&["ed-command"])),
        ("GetFindings", only(EVERY_ROLE)),
        ("WatchFindings", only(EVERY_ROLE)),
        ("WitnessHead", only(&["auditor"])),
        ("SignHead", only(&["planadmin", "auditor"])),
        ("GetPlan", only(EVERY_ROLE)),
        ("GetPosture", only(EVERY_ROLE)),
        ("GetPostureSeries", only(EVERY_ROLE)),
        ("DiffPlan", only(EVERY_ROLE)),
        ("ListDecisions", only(EVERY_ROLE)),
        ("WatchPlan", only(EVERY_ROLE)),
        ("WatchPosture", only(EVERY_ROLE)),
        ("RunSimulation", only(EVERY_ROLE)),
        ("ListEvents", only(&["planadmin", "auditor"])),
        ("ExportPlan", only(&["planadmin", "auditor"])),
        ("VerifyPlan", only(&["planadmin", "auditor"])),
        ("GetHead", only(&["planadmin", "auditor"])),
        ("ListDenials", only(&["auditor"])),
        ("Rebuild", only(&["planadmin"])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_can_do_exactly_its_operations() {
    let (server, _dir) = role_server(true).await;
    let channel = alliance_tests::server::channel(&server.url).await;
    let c = Clients {
        commands: PlanCommandsClient::new(channel.clone()),
        queries: PostureQueriesClient::new(channel.clone()),
        audit: AuditLogClient::new(channel.clone()),
        admin: ReadModelAdminClient::new(channel.clone()),
        simulation: SimulationClient::new(channel),
    };

    // The plan: created by its admin, every other role granted through GrantRole.
    let mut commands = c.commands.clone();
    let plan = create_plan(&mut commands, "roles").await;
    for (team, role) in GRANTED {
        if team == "auditor" {
            continue; // granted by default: the team audits
        }
        set_role(&mut commands, "planadmin", &plan, (team, role), false)
            .await
            .unwrap();
    }
    let summary = commands
        .get_plan(authed(
            "planadmin",
            v1::GetPlanRequest {
                plan_id: plan.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let granted: BTreeMap<String, Vec<String>> =
        summary
            .grants
            .iter()
            .fold(BTreeMap::new(), |mut by_team, g| {
                by_team
                    .entry(g.team.clone())
                    .or_default()
                    .push(g.role.clone());
                by_team
            });
    assert_eq!(granted["planadmin"], ["admin"]);
    assert_eq!(granted["auditor"], ["auditor"]);
    for (team, role) in GRANTED {
        assert_eq!(granted[team], [role], "{team}");
    }
    assert!(!granted.contains_key("outsider"));
    // What the steps and endorsements name.
    commands
        .register_force_element(authed(
            "ed-forces",
            requests::register(&plan, brigade("bde", "unit", 100), None),
        ))
        .await
        .unwrap();
    commands
        .propose_decision(authed(
            "ed-forces",
            v1::ProposeDecisionRequest {
                meta: meta(&plan, None),
                decision_id: "d1".into(),
                title: "decision".into(),
                rationale: "why".into(),
                effective_date: date(2027, 1, 1),
                required_sides: vec![1, 2],
                supersedes: Vec::new(),
            },
        ))
        .await
        .unwrap();

    let version = |mut commands: PlanCommandsClient<Channel>, plan: String| async move {
        head_version(&mut commands, &plan).await
    };
    let mut denied = 0;
    let mut hidden = 0;
    let mut checked = 0;
    // A plan nobody has created: the column "no role, plan not yet known".
    let unknown = uuid::Uuid::now_v7().to_string();
    for (method, allowed) in table() {
        for team in TEAMS {
            let before = version(c.commands.clone(), plan.clone()).await;
            let result = call(&c, method, team, &plan).await;
            checked += 1;
            if team == "outsider" && !NOT_OF_A_PLAN.contains(&method) {
                // No role: the plan looks exactly as one that does not exist.
                let status = result.expect_err(&format!("{team} may not call {method}"));
                let absent = call(&c, method, team, &unknown)
                    .await
                    .expect_err(&format!("{method} on a plan nobody created"));
                assert_eq!(
                    status.code(),
                    absent.code(),
                    "{method}: {status:?} {absent:?}"
                );
                assert_eq!(
                    status.message().replace(&plan, "{plan}"),
                    absent.message().replace(&unknown, "{plan}"),
                    "{method}"
                );
                let resource = |s: &Status| {
                    s.get_error_details()
                        .resource_info()
                        .map(|r| (r.resource_type.clone(), r.description.len()))
                };
                assert_eq!(resource(&status), resource(&absent), "{method}");
                if method != "RecordSimulationRun" {
                    assert_eq!(status.code(), Code::NotFound, "{method}: {status:?}");
                }
                assert_eq!(
                    version(c.commands.clone(), plan.clone()).await,
                    before,
                    "{team} {method}: a refusal appends nothing"
                );
                hidden += u32::from(status.code() == Code::NotFound);
                denied += usize::from(status.code() == Code::PermissionDenied);
                denied += usize::from(absent.code() == Code::PermissionDenied);
                continue;
            }
            if allowed.contains(&team) {
                if let Err(status) = &result {
                    assert_ne!(
                        status.code(),
                        Code::PermissionDenied,
                        "{team} may call {method}: {status:?}"
                    );
                }
                continue;
            }
            let status = result.expect_err(&format!("{team} may not call {method}"));
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{team} {method}: {status:?}"
            );
            assert!(
                status.message().contains(team),
                "{team} {method}: the refusal names the team: {}",
                status.message()
            );
            if let Some(info) = status.get_error_details().error_info() {
                assert_eq!(info.reason, "MISSING_ROLE");
                assert!(!info.metadata["role"].is_empty());
            }
            assert_eq!(
                version(c.commands.clone(), plan.clone()).await,
                before,
                "{team} {method}: a refusal appends nothing"
            );
            denied += 1;
        }
    }
    assert_eq!(checked, table().len() * TEAMS.len());
    assert!(denied > 220, "{denied} refusals");

    // Every refusal is in the security log, with the team and the method.
    let mut audit = c.audit.clone();
    let denials = denials(&mut audit).await;
    let refused: Vec<_> = denials
        .iter()
        .filter(|d| d.code == "permission_denied")
        .collect();
    assert_eq!(
        refused.iter().map(|d| d.count).sum::<u64>(),
        denied as u64,
        "every refusal counted in the security log"
    );
    assert!(
        refused
            .iter()
            .any(|d| d.caller == "planadmin/planadmin.user"
                && d.method == "/alliance.v1.PlanCommands/RegisterForceElement")
    );
    // What the outsider was answered "not found" for is recorded as what it was.
    let no_standing: Vec<_> = denials.iter().filter(|d| d.code == "no_standing").collect();
    assert_eq!(
        no_standing.iter().map(|d| d.count).sum::<u64>(),
        u64::from(hidden),
        "one refusal counted per hidden plan"
    );
    assert!(hidden > 25, "{hidden} plans hidden");
    assert!(
        no_standing
            .iter()
            .all(|d| d.caller == "outsider/outsider.user")
    );
    assert!(
        no_standing
            .iter()
            .any(|d| d.method == "/alliance.v1.PlanCommands/RegisterForceElement")
    );
    server.stop().await;
}

/// A flood of unauthenticated calls is counted, not written call by call: 500 of them from one
/// client are a row or two (one a minute) whose counts add up to 500, naming where they came
/// from, and an auditor reading right after sees them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unauthenticated_calls_is_a_few_counted_rows() {
    let (server, _dir) = role_server(false).await;
    let mut audit = AuditLogClient::connect(server.url.clone()).await.unwrap();
    for _ in 0..500 {
        let refused = audit
            .list_denials(tonic::Request::new(v1::ListDenialsRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    let denials = denials(&mut audit).await;
    assert!(
        (1..=2).contains(&denials.len()),
        "{} rows for 500 refusals: {denials:?}",
        denials.len()
    );
    assert_eq!(denials.iter().map(|d| d.count).sum::<u64>(), 500);
    for d in &denials {
        assert_eq!(d.caller, "unauthenticated", "{d:?}");
        assert_eq!(d.peer, "127.0.0.1", "{d:?}");
        assert_eq!(d.code, "unauthenticated", "{d:?}");
        assert_eq!(d.method, "/alliance.v1.AuditLog/ListDenials", "{d:?}");
        let (first, last) = (d.time.unwrap(), d.last_time.unwrap());
        assert!(
            (first.seconds, first.nanos) <= (last.seconds, last.nanos),
            "{d:?}"
        );
    }
    server.stop().await;
}

/// Grants and revocations are events in the plan's history, a branch inherits its parent's
/// grants, and the last admin stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_history_a_branch_inherits_them_and_the_last_admin_stays() {
    let (server, _dir) = role_server(false).await;
    let mut commands = PlanCommandsClient::connect(server.url.clone())
        .await
        .unwrap();
    let mut audit = AuditLogClient::connect(server.url.clone()).await.unwrap();
    let plan = create_plan(&mut commands, "grants").await;
    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("ed-forces", "editor:forces"),
        false,
    )
    .await
    .unwrap();
    // The branch, made by the editor, carries the grants of its parent at that point.
    let branch = commands
        .branch_plan(authed(
            "ed-forces",
            v1::BranchPlanRequest {
                meta: meta(&plan, None),
                name: "alternative".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .plan_id;
    commands
        .register_force_element(authed(
            "ed-forces",
            requests::register(&branch, brigade("bde", "unit", 100), None),
        ))
        .await
        .unwrap();
    // Revoked on the parent: refused there, still granted on the branch.
    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("ed-forces", "editor:forces"),
        true,
    )
    .await
    .unwrap();
    // Its only role gone, the team no longer sees the plan at all.
    let refused = commands
        .register_force_element(authed(
            "ed-forces",
            requests::register(&plan, brigade("bde", "unit", 100), None),
        ))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::NotFound, &format!("plan {plan} not found"));
    commands
        .register_force_element(authed(
            "ed-forces",
            requests::register(&branch, brigade("bde-2", "unit", 100), None),
        ))
        .await
        .unwrap();
    // The last admin cannot be revoked.
    let last = set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("planadmin", "admin"),
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(last.code(), Code::FailedPrecondition, "{last:?}");
    // An unknown role is bad input, naming the roles there are.
    let unknown = set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("ed-forces", "overlord"),
        false,
    )
    .await
    .unwrap_err();
    assert_refused(&unknown, Code::InvalidArgument, "editor:forces");
    // The same through the command line: granted, shown with the plan, refused to others.
    let granted = server
        .ctl(
            "tok-planadmin",
            &[
                "plan", "grant", "--plan", &plan, "--team", "adopter", "--role", "adopter",
            ],
        )
        .await;
    assert_eq!(granted.code, Some(0), "{}", granted.stderr);
    let shown = server
        .ctl(
            "tok-planadmin",
            &["--output", "json", "plan", "show", "--plan", &plan],
        )
        .await;
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert!(
        shown["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["team"] == "adopter" && g["role"] == "adopter"),
        "{shown}"
    );
    let refused = server
        .ctl(
            "tok-adopter",
            &[
                "plan", "revoke", "--plan", &plan, "--team", "adopter", "--role", "adopter",
            ],
        )
        .await;
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(refused.stderr.contains("admin"), "{}", refused.stderr);
    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("adopter", "adopter"),
        true,
    )
    .await
    .unwrap();

    // The history says who granted and revoked what (read once the read model holds the last
    // revocation).
    let written = head_version(&mut commands, &plan).await;
    let events = audit
        .list_events(authed(
            "auditor",
            v1::ListEventsRequest {
                plan_id: plan.clone(),
                event_types: vec!["RoleGranted".into(), "RoleRevoked".into()],
                min_version: written,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let actor = e.actor.as_ref().unwrap().team.clone();
            match e.payload.as_ref().unwrap() {
                v1::event_envelope::Payload::RoleGranted(g) => {
                    (format!("granted {}", g.grant.as_ref().unwrap().role), actor)
                }
                v1::event_envelope::Payload::RoleRevoked(g) => {
                    (format!("revoked {}", g.grant.as_ref().unwrap().role), actor)
                }
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("granted editor:forces".to_owned(), "planadmin".to_owned()),
            ("revoked editor:forces".to_owned(), "planadmin".to_owned()),
            ("granted adopter".to_owned(), "planadmin".to_owned()),
            ("revoked adopter".to_owned(), "planadmin".to_owned()),
        ]
    );
    server.stop().await;
}

/// Starts the server of the role tests on its token file.
async fn role_server(simulation: bool) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens_path = dir.path().join("tokens.toml");
    std::fs::write(&tokens_path, tokens()).unwrap();
    let server = Server::start(Services {
        simulation,
        security: true,
        tokens: Some(tokens_path),
        ..Services::default()
    })
    .await;
    (server, dir)
}

/// A stream lasts only as long as its caller's standing: revoking a team's last role ends its
/// `WatchPlan` and `WatchPosture` with PERMISSION_DENIED before any later event is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_the_last_role_is_revoked() {
    let (server, _dir) = role_server(false).await;
    let mut commands = PlanCommandsClient::connect(server.url.clone())
        .await
        .unwrap();
    let mut queries = PostureQueriesClient::connect(server.url.clone())
        .await
        .unwrap();
    let plan = create_plan(&mut commands, "streams").await;
    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("end-us", "endorser:us"),
        false,
    )
    .await
    .unwrap();
    let head = head_version(&mut commands, &plan).await;
    // Only what is recorded from now on.
    let mut events = queries
        .watch_plan(authed(
            "end-us",
            v1::WatchPlanRequest {
                plan_id: plan.clone(),
                from_version: head + 1,
                min_version: head,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut postures = queries
        .watch_posture(authed(
            "end-us",
            v1::WatchPostureRequest {
                plan_id: plan.clone(),
                valid_on: date(2027, 6, 1),
                min_version: head,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = postures.message().await.unwrap().unwrap();
    assert_eq!(first.version, head);

    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("end-us", "endorser:us"),
        true,
    )
    .await
    .unwrap();
    // Something the team must not see any more.
    commands
        .register_force_element(authed(
            "planadmin",
            requests::register(&plan, brigade("after", "unit", 100), None),
        ))
        .await
        .unwrap_err(); // the admin is no editor: refused, nothing appended
    set_role(
        &mut commands,
        "planadmin",
        &plan,
        ("ed-forces", "editor:forces"),
        false,
    )
    .await
    .unwrap();
    commands
        .register_force_element(authed(
            "ed-forces",
            requests::register(&plan, brigade("after", "unit", 100), None),
        ))
        .await
        .unwrap();

    for (stream, ended) in [
        (
            "WatchPlan",
            events.message().await.map(|e| e.map(|e| e.plan_version)),
        ),
        (
            "WatchPosture",
            postures.message().await.map(|p| p.map(|p| p.version)),
        ),
    ] {
        let status = ended.expect_err(&format!("{stream} goes on after the revocation"));
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{stream}: {status:?}"
        );
        assert!(status.message().contains("end-us"), "{stream}: {status:?}");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "STANDING_REVOKED"
        );
    }
    server.stop().await;
}

/// A read that waits for a version is judged on the plan as held after the wait: a team with
/// no role asking for a plan not yet known gets NOT_FOUND, never the plan once it arrives, and
/// never a different answer than for a plan that exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_a_plan_not_yet_known_is_judged_after_the_wait() {
    let (server, _dir) = role_server(true).await;
    let channel = alliance_tests::server::channel(&server.url).await;
    let mut commands = PlanCommandsClient::new(channel.clone());
    let mut queries = PostureQueriesClient::new(channel.clone());
    let mut audit = AuditLogClient::new(channel.clone());
    let mut simulation = SimulationClient::new(channel);
    let known = create_plan(&mut commands, "known").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    // A version beyond both plans' heads: each call waits its (short) deadline, then answers.
    fn short<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
        request.set_timeout(std::time::Duration::from_secs(2));
        request
    }
    for plan in [&known, &unknown] {
        let asked = std::time::Instant::now();
        let posture = queries
            .get_posture(short(authed(
                "outsider",
                v1::GetPostureRequest {
                    plan_id: plan.clone(),
                    valid_on: date(2027, 6, 1),
                    min_version: 1000,
                    ..Default::default()
                },
            )))
            .await
            .unwrap_err();
        let listed = audit
            .list_events(short(authed(
                "outsider",
                v1::ListEventsRequest {
                    plan_id: plan.clone(),
                    min_version: 1000,
                    ..Default::default()
                },
            )))
            .await
            .unwrap_err();
        let simulated = simulation
            .run(short(authed(
                "outsider",
                v1::RunSimulationRequest {
                    spec: Some(v1::SimulationSpec {
                        plan_id: plan.clone(),
                        trials: 1,
                        months: 1,
                        min_version: 1000,
                        ..Default::default()
                    }),
                },
            )))
            .await
            .map(drop)
            .unwrap_err();
        // Known or not, the answer comes only once the wait is over (90% of the deadline): how
        // long it takes tells nothing either.
        assert!(
            asked.elapsed() >= std::time::Duration::from_millis(3 * 1800),
            "{plan}: answered after {:?}",
            asked.elapsed()
        );
        for (method, status) in [
            ("GetPosture", posture),
            ("ListEvents", listed),
            ("Simulation/Run", simulated),
        ] {
            assert_eq!(status.code(), Code::NotFound, "{method} {plan}: {status:?}");
            assert_eq!(
                status.message(),
                format!("plan {plan} not found"),
                "{method}"
            );
        }
    }
    // The team that stands on the plan is told the read model is behind, not that it is absent.
    let behind = queries
        .get_posture(short(authed(
            "planadmin",
            v1::GetPostureRequest {
                plan_id: known.clone(),
                valid_on: date(2027, 6, 1),
                min_version: 1000,
                ..Default::default()
            },
        )))
        .await
        .unwrap_err();
    assert_eq!(behind.code(), Code::Unavailable, "{behind:?}");
    server.stop().await;
}
