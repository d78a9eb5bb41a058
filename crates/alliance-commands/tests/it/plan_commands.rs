//! `alliance.v1.PlanCommands` end to end over gRPC.

use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::harness::{
    APPROVER, Backend, ROK, Server, Store, TestLog, US, authed, create_plan, date, element, meta,
    propose, register, violated,
};
use alliance_tests::requests;

async fn unknown_or_missing_token_is_unauthenticated_and_appends_nothing(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let request = v1::CreatePlanRequest {
        meta: meta("", None),
        name: "p".into(),
        description: String::new(),
        horizon_start: date(2020, 1, 1),
        horizon_end: date(2030, 1, 1),
    };
    let status = client
        .create_plan(authed("not-a-token", request.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = client
        .create_plan(tonic::Request::new(request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(server.events().await.is_empty());
    server.stop().await;
}

async fn invalid_input_gets_field_violations_and_appends_nothing(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    let before = server.events().await.len();

    // Several bad fields at once: every one is named.
    let status = client
        .create_plan(authed(
            APPROVER,
            v1::CreatePlanRequest {
                meta: meta("", None),
                name: "  ".into(),
                description: String::new(),
                horizon_start: date(2030, 1, 1),
                horizon_end: date(2020, 2, 30),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated(&status),
        vec!["horizon_end".to_owned()],
        "{status:?}"
    );

    let status = client
        .create_plan(authed(
            APPROVER,
            v1::CreatePlanRequest {
                meta: meta("", None),
                name: "".into(),
                description: String::new(),
                horizon_start: date(2030, 1, 1),
                horizon_end: date(2020, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated(&status),
        vec!["name".to_owned(), "horizon_end".to_owned()]
    );

    // An unknown enum value, a bad id and a date outside the horizon.
    let status = client
        .propose_decision(authed(
            US,
            v1::ProposeDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "bad id with spaces".into(),
                title: "t".into(),
                rationale: "r".into(),
                effective_date: date(2027, 1, 1),
                required_sides: vec![99],
                supersedes: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), vec!["decision_id", "required_sides"]);

    let status = client
        .propose_decision(authed(
            US,
            v1::ProposeDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "late".into(),
                title: "t".into(),
                rationale: "r".into(),
                effective_date: date(2050, 1, 1),
                required_sides: vec![v1::Side::Us as i32],
                supersedes: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("outside the plan horizon"),
        "{status:?}"
    );

    // A missing command id.
    let mut no_id = meta(&plan_id, None);
    if let Some(m) = no_id.as_mut() {
        m.command_id.clear();
    }
    let status = client
        .register_force_element(authed(
            US,
            v1::RegisterForceElementRequest {
                meta: no_id,
                element: crate::harness::element("abct", 4500),
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    assert_eq!(server.events().await.len(), before, "nothing appended");
    server.stop().await;
}

async fn a_retried_command_returns_its_first_result_and_appends_nothing_even_after_restart(
    backend: Backend,
) {
    let store = Store::new(backend);
    let server = crate::harness::start_on(store.clone()).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;

    let request = v1::RegisterForceElementRequest {
        meta: meta(&plan_id, None),
        element: crate::harness::element("abct", 4500),
        present_from: date(2024, 1, 1),
    };
    let first = client
        .register_force_element(authed(US, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.replayed);
    let retry = client
        .register_force_element(authed(US, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(
        (retry.first_version, retry.plan_version, &retry.event_ids),
        (first.first_version, first.plan_version, &first.event_ids)
    );
    let count = server.events().await.len();
    assert_eq!(count, 2);
    server.stop().await;

    // Forever, not for a window: a new process over the same log still knows the command.
    let server = crate::harness::start_on(store).await;
    let mut client = server.client().await;
    let again = client
        .register_force_element(authed(US, request))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.event_ids, first.event_ids);
    assert_eq!(server.events().await.len(), count);

    // A plan creation retried with the same command id creates one plan, not two.
    let create = v1::CreatePlanRequest {
        meta: meta("", None),
        name: "scenario".into(),
        description: String::new(),
        horizon_start: date(2020, 1, 1),
        horizon_end: date(2030, 1, 1),
    };
    let a = client
        .create_plan(authed(APPROVER, create.clone()))
        .await
        .unwrap()
        .into_inner();
    let b = client
        .create_plan(authed(APPROVER, create))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.plan_id, b.plan_id);
    assert!(b.replayed);
    assert_eq!(server.events().await.len(), count + 1);
    server.stop().await;
}

async fn an_edit_based_on_a_stale_version_of_the_same_element_conflicts_with_details(
    backend: Backend,
) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    register(&mut client, &plan_id, "abct", None).await.unwrap();
    let base = propose(&mut client, US, &plan_id, "retrench-ground")
        .await
        .plan_version;

    // Two planners of the same cell edit the same element, both from version `base`.
    let withdraw = client
        .withdraw_force_element(authed(
            US,
            v1::WithdrawForceElementRequest {
                meta: meta(&plan_id, Some(base)),
                decision_id: "retrench-ground".into(),
                element_id: "abct".into(),
                on: date(2027, 9, 1),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let events_before = server.events().await.len();
    let status = client
        .reduce_force_element(authed(
            US,
            v1::ReduceForceElementRequest {
                meta: meta(&plan_id, Some(base)),
                decision_id: "retrench-ground".into(),
                element_id: "abct".into(),
                personnel: 1000,
                equipment: vec![],
                on: date(2027, 3, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("error info");
    assert_eq!(info.reason, "PLAN_VERSION_CONFLICT");
    assert_eq!(info.metadata["based_on_version"], base.to_string());
    assert_eq!(
        info.metadata["conflicting_versions"],
        withdraw.plan_version.to_string()
    );
    let violations = &details
        .precondition_failure()
        .expect("conflicts")
        .violations;
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0]
            .subject
            .contains("ForceElementWithdrawalPlanned")
            && violations[0].subject.contains(&withdraw.event_ids[0]),
        "{violations:?}"
    );
    assert!(violations[0].description.contains("element/abct"));
    // Named with the team that recorded it.
    assert!(
        violations[0].description.contains("us-force-planning"),
        "{violations:?}"
    );
    assert_eq!(
        server.events().await.len(),
        events_before,
        "nothing appended"
    );

    // A version from the future is invalid.
    let status = register(&mut client, &plan_id, "other", Some(999))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

async fn disjoint_concurrent_edits_of_one_plan_both_succeed(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    let base = propose(&mut client, US, &plan_id, "opcon")
        .await
        .plan_version;

    // Different elements, from the same version, at the same time.
    let (mut a, mut b) = (client.clone(), client.clone());
    let (ra, rb) = tokio::join!(
        register(&mut a, &plan_id, "cab", Some(base)),
        register(&mut b, &plan_id, "fires", Some(base)),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut versions = vec![ra.plan_version, rb.plan_version];
    versions.sort_unstable();
    assert_eq!(versions, vec![base + 1, base + 2]);

    // The two sides endorse one decision at once, from the same version: both land.
    let endorse = |token: &'static str, mut c: v1::plan_commands_client::PlanCommandsClient<_>| {
        let plan_id = plan_id.clone();
        async move {
            c.endorse_decision(authed(
                token,
                v1::EndorseDecisionRequest {
                    meta: meta(&plan_id, Some(base + 2)),
                    decision_id: "opcon".into(),
                },
            ))
            .await
        }
    };
    let (eu, er) = tokio::join!(endorse(US, client.clone()), endorse(ROK, client.clone()));
    eu.unwrap();
    er.unwrap();

    let adopted = client
        .adopt_decision(authed(
            APPROVER,
            v1::AdoptDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "opcon".into(),
                acknowledged_findings: Vec::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(adopted.plan_version, base + 5);

    let summary = client
        .get_plan(authed(
            US,
            v1::GetPlanRequest {
                plan_id: plan_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.head.unwrap().version, base + 5);
    let decision = &summary.decisions[0];
    assert_eq!(decision.status, v1::DecisionStatus::Adopted as i32);
    assert_eq!(decision.endorsements.len(), 2);
    server.stop().await;
}

async fn planning_rules_refuse_with_failed_precondition_and_append_nothing(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    propose(&mut client, US, &plan_id, "retrench").await;
    client
        .endorse_decision(authed(
            US,
            v1::EndorseDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "retrench".into(),
            },
        ))
        .await
        .unwrap();
    let before = server.events().await.len();
    let status = client
        .adopt_decision(authed(
            APPROVER,
            v1::AdoptDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "retrench".into(),
                acknowledged_findings: Vec::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("ROK"), "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "ENDORSEMENT_MISSING"
    );

    let status = client
        .schedule_opcon_transfer(authed(
            US,
            v1::ScheduleOpconTransferRequest {
                meta: meta(&plan_id, None),
                decision_id: "retrench".into(),
                on: date(2028, 12, 1),
                conditions: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = client
        .get_plan(authed(
            US,
            v1::GetPlanRequest {
                plan_id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(server.events().await.len(), before);
    server.stop().await;
}

async fn a_branch_starts_from_its_parent_and_diverges(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    let at = register(&mut client, &plan_id, "abct", None)
        .await
        .unwrap()
        .plan_version;
    register(&mut client, &plan_id, "later", None)
        .await
        .unwrap();

    let branch = client
        .branch_plan(authed(
            US,
            v1::BranchPlanRequest {
                meta: meta(&plan_id, None),
                new_plan_id: String::new(),
                parent_version: Some(at),
                name: "faster drawdown".into(),
                description: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(branch.plan_id, plan_id);
    assert_eq!(branch.plan_version, 1);
    register(&mut client, &branch.plan_id, "branch-only", None)
        .await
        .unwrap();

    let summary = |id: String| {
        let mut c = client.clone();
        async move {
            c.get_plan(authed(US, v1::GetPlanRequest { plan_id: id }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let elements = |s: &v1::PlanSummary| {
        let mut ids: Vec<String> = s
            .elements
            .iter()
            .map(|e| e.element.as_ref().unwrap().element_id.clone())
            .collect();
        ids.sort();
        ids
    };
    let b = summary(branch.plan_id.clone()).await;
    assert_eq!(elements(&b), vec!["abct", "branch-only"]);
    let head = b.head.unwrap();
    assert_eq!(
        (head.parent_plan_id.as_str(), head.parent_version),
        (plan_id.as_str(), at)
    );
    let p = summary(plan_id.clone()).await;
    assert_eq!(elements(&p), vec!["abct", "later"]);

    let plans = client
        .list_plans(authed(US, v1::ListPlansRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plans.plans.len(), 2);
    server.stop().await;
}

async fn read_only_teams_and_teams_without_the_adopt_role_are_denied(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    propose(&mut client, US, &plan_id, "retrench").await;
    for token in [US, ROK] {
        client
            .endorse_decision(authed(
                token,
                v1::EndorseDecisionRequest {
                    meta: meta(&plan_id, None),
                    decision_id: "retrench".into(),
                },
            ))
            .await
            .unwrap();
    }
    let before = server.events().await.len();

    let status = register(&mut client, "", "x", None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "plan id is required");
    let status = client
        .register_force_element(authed(
            crate::harness::AUDITOR,
            v1::RegisterForceElementRequest {
                meta: meta(&plan_id, None),
                element: crate::harness::element("abct", 4500),
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("auditors"), "{status:?}");

    let reader = client.clone();
    let adopt = |token: &'static str| {
        let mut c = reader.clone();
        let plan_id = plan_id.clone();
        async move {
            c.adopt_decision(authed(
                token,
                v1::AdoptDecisionRequest {
                    meta: meta(&plan_id, None),
                    decision_id: "retrench".into(),
                    acknowledged_findings: Vec::new(),
                },
            ))
            .await
        }
    };
    let status = adopt(US).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let details = status.get_error_details();
    let info = details.error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.metadata["role"].as_str()),
        ("MISSING_ROLE", "adopter")
    );
    assert_eq!(server.events().await.len(), before, "nothing appended");

    // Reads stay open to auditors; the approvers adopt.
    client
        .get_plan(authed(
            crate::harness::AUDITOR,
            v1::GetPlanRequest {
                plan_id: plan_id.clone(),
            },
        ))
        .await
        .unwrap();
    adopt(APPROVER).await.unwrap();
    server.stop().await;
}

async fn a_command_id_reused_for_another_command_is_refused_on_any_plan(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_a = create_plan(&mut client).await;
    let plan_b = create_plan(&mut client).await;
    let first = meta(&plan_a, None);
    client
        .register_force_element(authed(
            US,
            v1::RegisterForceElementRequest {
                meta: first.clone(),
                element: crate::harness::element("e1", 100),
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap();
    let before = server.events().await.len();

    // Same id, same plan, another element.
    let status = client
        .register_force_element(authed(
            US,
            v1::RegisterForceElementRequest {
                meta: first.clone(),
                element: crate::harness::element("e2", 100),
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("already used"), "{status:?}");

    // Same id on another plan.
    let mut other = first.clone().unwrap();
    other.plan_id = plan_b.clone();
    let status = client
        .register_force_element(authed(
            US,
            v1::RegisterForceElementRequest {
                meta: Some(other),
                element: crate::harness::element("e1", 100),
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // Same id for a new plan.
    let mut create = first.unwrap();
    create.plan_id.clear();
    let status = client
        .create_plan(authed(
            APPROVER,
            v1::CreatePlanRequest {
                meta: Some(create),
                name: "x".into(),
                description: String::new(),
                horizon_start: date(2020, 1, 1),
                horizon_end: date(2030, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(server.events().await.len(), before);

    // A plan that does not exist is not found, and leaves nothing behind.
    let missing = uuid::Uuid::now_v7().to_string();
    let status = register(&mut client, &missing, "e3", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(server.events().await.len(), before);
    server.stop().await;
}

async fn a_retry_racing_its_first_attempt_gets_the_same_result_once_durable(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    let request = v1::RegisterForceElementRequest {
        meta: meta(&plan_id, None),
        element: crate::harness::element("abct", 4500),
        present_from: date(2024, 1, 1),
    };
    let (mut a, mut b) = (client.clone(), client.clone());
    let (ra, rb) = tokio::join!(
        a.register_force_element(authed(US, request.clone())),
        b.register_force_element(authed(US, request)),
    );
    let (ra, rb) = (ra.unwrap().into_inner(), rb.unwrap().into_inner());
    assert_eq!(ra.event_ids, rb.event_ids);
    assert_eq!(ra.plan_version, rb.plan_version);
    assert!(
        ra.replayed != rb.replayed,
        "exactly one is the first attempt"
    );
    // The answer came after the commit: the event is in the log for any reader.
    let events = server.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_id.to_string(), ra.event_ids[0]);
    server.stop().await;
}

/// The U.S. cell names only its own side and withdraws a ROK element: the ROK side must endorse
/// before the decision can be adopted, and the plan shows the side it derived.
async fn a_side_cannot_adopt_a_change_to_the_other_sides_forces(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    let mut rok_corps = element("rok-1corps", 3000);
    if let Some(e) = rok_corps.as_mut() {
        e.side = v1::Side::Rok as i32;
    }
    client
        .register_force_element(authed(
            ROK,
            v1::RegisterForceElementRequest {
                meta: meta(&plan_id, None),
                element: rok_corps,
                present_from: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap();
    client
        .propose_decision(authed(
            US,
            v1::ProposeDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "us-only".into(),
                title: "U.S. alone".into(),
                rationale: "names only the U.S. side".into(),
                effective_date: date(2027, 6, 1),
                required_sides: vec![v1::Side::Us as i32],
                supersedes: vec![],
            },
        ))
        .await
        .unwrap();
    client
        .withdraw_force_element(authed(
            US,
            v1::WithdrawForceElementRequest {
                meta: meta(&plan_id, None),
                decision_id: "us-only".into(),
                element_id: "rok-1corps".into(),
                on: date(2028, 1, 1),
            },
        ))
        .await
        .unwrap();
    let endorse = |token: &'static str| {
        authed(
            token,
            v1::EndorseDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "us-only".into(),
            },
        )
    };
    client.endorse_decision(endorse(US)).await.unwrap();
    let adopt = || {
        authed(
            APPROVER,
            v1::AdoptDecisionRequest {
                meta: meta(&plan_id, None),
                decision_id: "us-only".into(),
                acknowledged_findings: Vec::new(),
            },
        )
    };
    let before = server.events().await.len();
    let status = client.adopt_decision(adopt()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("ROK side"), "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "ENDORSEMENT_MISSING"
    );
    assert_eq!(server.events().await.len(), before);

    let plan = client
        .get_plan(authed(
            US,
            v1::GetPlanRequest {
                plan_id: plan_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let decision = plan
        .decisions
        .iter()
        .find(|d| d.decision_id == "us-only")
        .unwrap();
    assert_eq!(decision.required_sides, vec![v1::Side::Us as i32]);
    assert_eq!(decision.derived_sides, vec![v1::Side::Rok as i32]);

    // The ROK endorses what touches its forces, and only then is it adopted.
    client.endorse_decision(endorse(ROK)).await.unwrap();
    client.adopt_decision(adopt()).await.unwrap();
    server.stop().await;
}

/// The refusal of a command id that another caller used: INVALID_ARGUMENT on
/// `meta.command_id`, telling nothing of the first command.
#[track_caller]
fn assert_foreign_id(status: &tonic::Status, hidden: &[&str]) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("belongs to another caller"),
        "{status:?}"
    );
    let violations = status
        .get_error_details()
        .bad_request()
        .expect("bad request details")
        .field_violations
        .clone();
    assert_eq!(violations.len(), 1, "{status:?}");
    assert_eq!(violations[0].field, "meta.command_id");
    for secret in hidden {
        assert!(
            !status.message().contains(secret) && !violations[0].description.contains(secret),
            "the refusal reveals {secret}: {status:?}"
        );
    }
}

async fn a_command_id_belongs_to_its_caller(backend: Backend) {
    let store = Store::new(backend);
    let server = crate::harness::start_on(store.clone()).await;
    let mut client = server.client().await;
    let plan = create_plan(&mut client).await;
    let other_plan = create_plan(&mut client).await;
    propose(&mut client, US, &plan, "d1").await;
    let shared = client.clone();
    let endorse = |token: &'static str, meta: Option<v1::CommandMeta>| {
        let mut client = shared.clone();
        async move {
            client
                .endorse_decision(authed(
                    token,
                    v1::EndorseDecisionRequest {
                        meta,
                        decision_id: "d1".into(),
                    },
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let us_meta = meta(&plan, None);
    let first = endorse(US, us_meta.clone()).await.unwrap();
    let before = server.events().await.len();
    let hidden = [
        plan.as_str(),
        "EndorseDecision",
        "Endorse",
        "endorse",
        &first.event_ids[0],
    ];

    // The ROK team endorses with the U.S. team's command id: refused, not answered with the
    // U.S. result; nothing is appended.
    let status = endorse(ROK, us_meta.clone()).await.unwrap_err();
    assert_foreign_id(&status, &hidden);
    assert_eq!(server.events().await.len(), before);

    // The same id on another plan, for a command that plan's rules would refuse (no such
    // decision), by a caller without any role there, or on a plan that does not exist: the
    // reuse is refused first, the same way.
    let mut elsewhere = us_meta.clone().unwrap();
    elsewhere.plan_id = other_plan.clone();
    let status = endorse(ROK, Some(elsewhere.clone())).await.unwrap_err();
    assert_foreign_id(&status, &hidden);
    let status = client
        .grant_role(authed(
            crate::harness::AUDITOR,
            v1::GrantRoleRequest {
                meta: Some(elsewhere.clone()),
                grant: Some(v1::RoleGrant {
                    team: "auditors".into(),
                    role: "admin".into(),
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_foreign_id(&status, &hidden);
    let mut missing = elsewhere.clone();
    missing.plan_id = uuid::Uuid::now_v7().to_string();
    let status = endorse(ROK, Some(missing)).await.unwrap_err();
    assert_foreign_id(&status, &hidden);
    // Nor may another caller create a plan under it.
    let mut create = us_meta.clone().unwrap();
    create.plan_id.clear();
    let status = client
        .create_plan(authed(
            APPROVER,
            v1::CreatePlanRequest {
                meta: Some(create),
                name: "x".into(),
                description: String::new(),
                horizon_start: date(2020, 1, 1),
                horizon_end: date(2030, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_foreign_id(&status, &hidden);
    assert_eq!(server.events().await.len(), before);

    // The ROK team's own endorsement, under its own id, is recorded.
    let rok = endorse(ROK, meta(&plan, None)).await.unwrap();
    assert!(!rok.replayed);
    assert_eq!(rok.first_version, first.plan_version + 1);

    // The U.S. team's retry is still answered with its first result, also after a restart.
    let retried = endorse(US, us_meta.clone()).await.unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.event_ids, first.event_ids);
    assert_eq!(retried.plan_version, first.plan_version);
    server.stop().await;
    let server = crate::harness::start_on(store).await;
    let retried = endorse_on(&server, US, us_meta.clone()).await.unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.event_ids, first.event_ids);
    let status = endorse_on(&server, ROK, us_meta).await.unwrap_err();
    assert_foreign_id(&status, &hidden);
    server.stop().await;
}

async fn endorse_on(
    server: &Server,
    token: &str,
    meta: Option<v1::CommandMeta>,
) -> Result<v1::CommandResult, tonic::Status> {
    server
        .client()
        .await
        .endorse_decision(authed(
            token,
            v1::EndorseDecisionRequest {
                meta,
                decision_id: "d1".into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// On Kafka, a plan is written by one instance and the others forward to it: a command id used
/// through one instance is refused to another caller through the other, whichever writes the
/// plan, and the first caller's retry through either is answered with the first result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_id_is_its_caller_s_across_instances() {
    let (a, b) = Server::kafka_pair().await;
    let (mut client_a, client_b) = (a.client().await, b.client().await);
    let TestLog::Kafka(log_a) = &a.log else {
        unreachable!("a Kafka pair")
    };
    // A plan written by each instance (plan ids follow the command ids, so try a few).
    let mut plans = std::collections::BTreeMap::new();
    while plans.len() < 2 {
        let plan = create_plan(&mut client_a).await;
        let id = uuid::Uuid::parse_str(&plan).unwrap();
        let local = matches!(
            alliance_eventlog::EventLog::route(log_a, id),
            alliance_eventlog::Route::Local
        );
        plans.entry(local).or_insert(plan);
    }
    for plan in plans.values() {
        propose(&mut client_a, US, plan, "d1").await;
        let endorse = |client: &PlanCommandsClient<Channel>, token: &'static str, meta| {
            let mut client = client.clone();
            async move {
                client
                    .endorse_decision(authed(
                        token,
                        v1::EndorseDecisionRequest {
                            meta,
                            decision_id: "d1".into(),
                        },
                    ))
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let us_meta = meta(plan, None);
        let first = endorse(&client_a, US, us_meta.clone()).await.unwrap();
        let status = endorse(&client_b, ROK, us_meta.clone()).await.unwrap_err();
        assert_foreign_id(&status, &[plan.as_str(), "Endorse", &first.event_ids[0]]);
        let retried = endorse(&client_b, US, us_meta).await.unwrap();
        assert!(retried.replayed);
        assert_eq!(retried.event_ids, first.event_ids);
        let rok = endorse(&client_b, ROK, meta(plan, None)).await.unwrap();
        assert!(!rok.replayed);
        assert_eq!(rok.first_version, first.plan_version + 1);
    }
    a.stop().await;
    b.stop().await;
}

/// On Kafka a command id is judged against what the plan's writer has read (docs/api.md,
/// "Idempotency and retries"): reused for another command on another plan of the same writer's
/// partitions it is refused; on a plan of a writer that never read the first command's partition
/// it is applied, and the first command's retry still gets its first result. The day reuse is
/// refused across partitions, this test and that page change together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_a_command_id_is_judged_against_what_the_plan_s_writer_has_read() {
    let (a, b) = Server::kafka_pair().await;
    let mut client = a.client().await;
    let TestLog::Kafka(log_a) = &a.log else {
        unreachable!("a Kafka pair")
    };
    let (mut here, mut there) = (Vec::new(), Vec::new());
    while here.len() < 2 || there.is_empty() {
        let plan = create_plan(&mut client).await;
        let id = uuid::Uuid::parse_str(&plan).unwrap();
        match alliance_eventlog::EventLog::route(log_a, id) {
            alliance_eventlog::Route::Local => here.push(plan),
            alliance_eventlog::Route::Remote { .. } => there.push(plan),
        }
    }
    let with_id = |plan: &str, element_id: &str| {
        let mut request = requests::register(plan, element(element_id, 4500), None);
        request.meta.as_mut().unwrap().command_id = "one-command-id".into();
        authed(US, request)
    };
    let first = client
        .register_force_element(with_id(&here[0], "first"))
        .await
        .unwrap()
        .into_inner();

    // Another command under the id, on another plan the same instance writes: refused.
    let status = client
        .register_force_element(with_id(&here[1], "second"))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["meta.command_id"], "{status:?}");

    // On a plan of the other writer, which never read the first command's partition: applied.
    let elsewhere = client
        .register_force_element(with_id(&there[0], "second"))
        .await
        .unwrap()
        .into_inner();
    assert!(!elsewhere.replayed);
    assert_eq!(elsewhere.plan_id, there[0]);

    // The first command is untouched: its retry gets its first result.
    let retried = client
        .register_force_element(with_id(&here[0], "first"))
        .await
        .unwrap()
        .into_inner();
    assert!(retried.replayed);
    assert_eq!(retried.event_ids, first.event_ids);
    a.stop().await;
    b.stop().await;
}

/// Events recorded before command ids were bound to their caller hold the command's digest
/// alone: the same caller's retry of such a command is still answered with its first result,
/// and another caller's reuse is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_recorded_before_ids_were_bound_to_callers_is_still_its_caller_s() {
    use alliance_eventlog::{EventLog, NewEvent, SqliteLog, SqliteLogConfig};
    use alliance_proto::convert::CommandRequest;
    use prost::Message;

    // The events as this version writes them.
    let server = crate::harness::start(Backend::Sqlite).await;
    let mut client = server.client().await;
    let plan = create_plan(&mut client).await;
    let request = v1::RegisterForceElementRequest {
        meta: meta(&plan, None),
        element: crate::harness::element("abct", 4500),
        present_from: date(2024, 1, 1),
    };
    let first = client
        .register_force_element(authed(US, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let events = server.events().await;
    server.stop().await;

    // The same history as an older version wrote it: the command's digest alone.
    let plan_id = uuid::Uuid::parse_str(&plan).unwrap();
    let legacy = alliance_commands::command_digest(Some(plan_id), &request.to_command().unwrap());
    let mut envelope = v1::EventEnvelope::decode(events[1].payload.as_slice()).unwrap();
    assert_ne!(
        envelope.command_digest, legacy,
        "the digest now binds the caller"
    );
    envelope.command_digest = legacy;
    let prev = alliance_record::chain::carried_hash(&events[0].payload).unwrap();
    let (payload, _) = alliance_record::chain::seal(envelope, &prev);
    let store = Store::new(Backend::Sqlite);
    let log = SqliteLog::open(SqliteLogConfig::new(store.db())).unwrap();
    for (stored, payload) in events.iter().zip([events[0].payload.clone(), payload]) {
        let record = NewEvent {
            event_id: stored.event_id,
            command_id: stored.command_id.clone(),
            event_type: stored.event_type.clone(),
            record_time_micros: stored.record_time_micros,
            payload,
        };
        log.append(plan_id, stored.version - 1, vec![record])
            .await
            .unwrap();
    }
    drop(log);

    let server = crate::harness::start_on(store).await;
    let mut client = server.client().await;
    let retried = client
        .register_force_element(authed(US, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(retried.replayed);
    assert_eq!(retried.event_ids, first.event_ids);
    let status = client
        .register_force_element(authed(ROK, request))
        .await
        .unwrap_err();
    assert_foreign_id(&status, &[plan.as_str(), &first.event_ids[0]]);
    assert_eq!(server.events().await.len(), 2);
    server.stop().await;
}

/// A simulation run is recorded by the simulation service, never by a client calling
/// `RecordSimulationRun` directly: whatever its role (here an auditor, with a headline of no
/// shortfall that nothing computed), the call is refused and appends nothing.
async fn a_client_cannot_record_a_simulation_run_directly(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan = create_plan(&mut client).await;
    let before = server.events().await.len();
    for token in [crate::harness::AUDITOR, US, APPROVER] {
        let status = client
            .record_simulation_run(authed(
                token,
                v1::RecordSimulationRunRequest {
                    meta: meta(&plan, None),
                    run: Some(v1::SimulationRunRecord {
                        headline: "no shortfall, all OPCON conditions met on schedule".into(),
                        ..requests::run_record("forged")
                    }),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{token}: {status:?}");
        assert!(
            status.message().contains("simulation service"),
            "{token}: {status:?}"
        );
    }
    assert_eq!(server.events().await.len(), before);
    server.stop().await;
}

/// Runs a contract test on the embedded log and on Kafka.
/// Adopting a decision that adds a finding is FAILED_PRECONDITION NEW_FINDINGS, one
/// PreconditionFailure violation per finding; an acknowledgement of it adopts and records it, one
/// of a finding the adoption does not add is INVALID_ARGUMENT. Refusals append nothing.
async fn an_adoption_adding_a_finding_is_refused_unless_acknowledged(backend: Backend) {
    let server = crate::harness::start(backend).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;
    register(&mut client, &plan_id, "abct", None).await.unwrap();
    client
        .define_constraint(authed(
            US,
            v1::DefineConstraintRequest {
                meta: meta(&plan_id, None),
                constraint_id: "us-floor".into(),
                title: "U.S. personnel floor".into(),
                rule: Some(v1::ConstraintRule {
                    kind: Some(v1::constraint_rule::Kind::Personnel(
                        v1::constraint_rule::PersonnelBounds {
                            side: v1::Side::Us as i32,
                            min: Some(1),
                            ..Default::default()
                        },
                    )),
                }),
                side: v1::Side::Us as i32,
                authority: "statute".into(),
                since: date(2024, 1, 1),
            },
        ))
        .await
        .unwrap();
    propose(&mut client, US, &plan_id, "retrench").await;
    client
        .withdraw_force_element(authed(
            US,
            v1::WithdrawForceElementRequest {
                meta: meta(&plan_id, None),
                decision_id: "retrench".into(),
                element_id: "abct".into(),
                on: date(2028, 3, 31),
            },
        ))
        .await
        .unwrap();
    for token in [US, ROK] {
        client
            .endorse_decision(authed(
                token,
                v1::EndorseDecisionRequest {
                    meta: meta(&plan_id, None),
                    decision_id: "retrench".into(),
                },
            ))
            .await
            .unwrap();
    }
    let before = server.events().await.len();
    let adopt = |acknowledged: &[&str]| v1::AdoptDecisionRequest {
        meta: meta(&plan_id, None),
        decision_id: "retrench".into(),
        acknowledged_findings: acknowledged.iter().map(|s| (*s).to_owned()).collect(),
    };
    let status = client
        .adopt_decision(authed(APPROVER, adopt(&[])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "NEW_FINDINGS");
    let violations = &details.precondition_failure().unwrap().violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].r#type, "FINDING");
    assert_eq!(violations[0].subject, "constraint:us-floor");
    assert!(
        violations[0].description.contains("below the floor of 1"),
        "{violations:?}"
    );
    let status = client
        .adopt_decision(authed(APPROVER, adopt(&["constraint:other"])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(server.events().await.len(), before, "nothing appended");

    let adopted = client
        .adopt_decision(authed(APPROVER, adopt(&["constraint:us-floor"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        adopted.event_ids.len(),
        2,
        "adopted, then the acknowledgement"
    );
    server.stop().await;
}

macro_rules! on_both_logs {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::harness::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn kafka() {
                    super::$name(Backend::Kafka).await;
                }
            }
        )*
    };
}

on_both_logs!(
    unknown_or_missing_token_is_unauthenticated_and_appends_nothing,
    invalid_input_gets_field_violations_and_appends_nothing,
    a_retried_command_returns_its_first_result_and_appends_nothing_even_after_restart,
    an_edit_based_on_a_stale_version_of_the_same_element_conflicts_with_details,
    disjoint_concurrent_edits_of_one_plan_both_succeed,
    planning_rules_refuse_with_failed_precondition_and_append_nothing,
    a_branch_starts_from_its_parent_and_diverges,
    read_only_teams_and_teams_without_the_adopt_role_are_denied,
    a_command_id_reused_for_another_command_is_refused_on_any_plan,
    a_retry_racing_its_first_attempt_gets_the_same_result_once_durable,
    a_side_cannot_adopt_a_change_to_the_other_sides_forces,
    a_command_id_belongs_to_its_caller,
    an_adoption_adding_a_finding_is_refused_unless_acknowledged,
    a_client_cannot_record_a_simulation_run_directly
);
