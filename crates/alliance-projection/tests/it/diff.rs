//! What changed between two record times, and the decisions view with its filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use alliance_domain::{
    Command, DecisionId, DecisionStatus, Event, Plan, Side, Step, TeamId, Version,
};
use alliance_projection::{
    DecisionChange, DecisionFilter, ElementChange, ElementChangeKind, ProjectionError, RecordPoint,
};

use crate::harness::{
    APPROVER, Env, ROK, US, command_end, date, decode, element, id, naive_state, registration,
};

fn did(s: &str) -> DecisionId {
    DecisionId::parse(s).unwrap()
}

fn propose(decision_id: &str, sides: &[Side], supersedes: &[&str]) -> Command {
    Command::ProposeDecision {
        decision_id: did(decision_id),
        title: format!("decision {decision_id}"),
        rationale: "test".into(),
        effective_date: date(2026, 1, 1),
        required_sides: sides.iter().copied().collect(),
        supersedes: supersedes.iter().map(|s| did(s)).collect(),
    }
}

fn step(decision_id: &str, step: Step) -> Command {
    Command::PlanStep {
        decision_id: did(decision_id),
        step,
    }
}

fn endorse(decision_id: &str) -> Command {
    Command::EndorseDecision {
        decision_id: did(decision_id),
    }
}

fn adopt(decision_id: &str) -> Command {
    Command::AdoptDecision {
        decision_id: did(decision_id),
        acknowledged_findings: Default::default(),
    }
}

fn change(
    decision_id: &str,
    before: Option<DecisionStatus>,
    after: Option<DecisionStatus>,
    events: &[(Version, &'static str)],
) -> DecisionChange {
    DecisionChange {
        decision_id: did(decision_id),
        title: format!("decision {decision_id}"),
        before,
        after,
        events: events.to_vec(),
    }
}

fn element_change(
    element_id: &str,
    kind: ElementChangeKind,
    events: &[(Version, &'static str)],
) -> ElementChange {
    ElementChange {
        element_id: id(element_id),
        kind,
        events: events.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_names_what_changed_between_two_record_times() {
    use DecisionStatus::{Adopted, Proposed, Superseded, Withdrawn};
    use ElementChangeKind::{Added, Changed};

    let env = Env::open().await;
    let plan = env.create_plan().await; // 1
    let script: Vec<(&str, Command)> = vec![
        (US, registration("e-a", 1000)),          // 2
        (US, registration("e-b", 1000)),          // 3
        (US, propose("d-one", &[Side::Us], &[])), // 4
        (
            US,
            step(
                "d-one",
                Step::ReduceElement {
                    element_id: id("e-a"),
                    personnel: 100,
                    equipment: Default::default(),
                    on: date(2026, 1, 1),
                },
            ),
        ), // 5
        (US, endorse("d-one")),                   // 6
        (APPROVER, adopt("d-one")),               // 7
        (US, registration("e-c", 1000)),          // 8
        (ROK, propose("d-two", &[Side::Rok], &[])), // 9
        (
            ROK,
            step(
                "d-two",
                Step::AddElement {
                    element: element("e-d", Side::Us, 500),
                    on: date(2027, 1, 1),
                },
            ),
        ), // 10
        (US, propose("d-three", &[Side::Us, Side::Rok], &["d-one"])), // 11
        (
            US,
            step(
                "d-three",
                Step::WithdrawElement {
                    element_id: id("e-b"),
                    on: date(2028, 1, 1),
                },
            ),
        ), // 12
        (
            ROK,
            Command::WithdrawDecision {
                decision_id: did("d-two"),
                reason: "not needed".into(),
            },
        ), // 13
        (US, endorse("d-three")),                 // 14
        (ROK, endorse("d-three")),                // 15
        (APPROVER, adopt("d-three")),             // 16, 17
    ];
    for (team, command) in script {
        env.exec(team, plan, command).await;
    }
    let projection = env.caught_up().await;
    assert_eq!(projection.plan_version(plan), 17);

    let diff = projection
        .diff(plan, RecordPoint::Version(6), RecordPoint::Version(13))
        .unwrap();
    assert_eq!(
        (diff.plan_id, diff.from_version, diff.to_version),
        (plan, 6, 13)
    );
    assert_eq!(
        diff.decisions,
        vec![
            change(
                "d-one",
                Some(Proposed),
                Some(Adopted),
                &[(7, "DecisionAdopted")]
            ),
            change(
                "d-three",
                None,
                Some(Proposed),
                &[
                    (11, "DecisionProposed"),
                    (12, "ForceElementWithdrawalPlanned")
                ]
            ),
            change(
                "d-two",
                None,
                Some(Withdrawn),
                &[
                    (9, "DecisionProposed"),
                    (10, "ForceElementAdditionPlanned"),
                    (13, "DecisionWithdrawn")
                ]
            ),
        ]
    );
    assert_eq!(
        diff.elements,
        vec![
            element_change("e-a", Changed, &[(7, "DecisionAdopted")]),
            element_change("e-b", Changed, &[(12, "ForceElementWithdrawalPlanned")]),
            element_change("e-c", Added, &[(8, "ForceElementRegistered")]),
            element_change(
                "e-d",
                Added,
                &[
                    (10, "ForceElementAdditionPlanned"),
                    (13, "DecisionWithdrawn")
                ]
            ),
        ]
    );
    let stored = env.plan_events(plan).await;
    let events: Vec<(Version, &str, String, i64)> = diff
        .events
        .iter()
        .map(|(v, t, a, micros)| (*v, *t, a.clone(), *micros))
        .collect();
    let actors = [
        "alliance-approvers",
        "us-force-planning",
        "rok-jcs",
        "rok-jcs",
        "us-force-planning",
        "us-force-planning",
        "rok-jcs",
    ];
    let expected: Vec<(Version, &str, String, i64)> = stored[6..13]
        .iter()
        .zip(actors)
        .map(|(s, team)| {
            (
                s.version,
                s.event_type.as_str(),
                format!("{team}/tester"),
                s.record_time_micros,
            )
        })
        .collect();
    assert_eq!(events, expected);

    // The superseding adoption: d-one is superseded, its reduction of e-a dropped.
    let diff = projection
        .diff(plan, RecordPoint::Version(13), RecordPoint::Latest)
        .unwrap();
    assert_eq!(
        diff.decisions,
        vec![
            change(
                "d-one",
                Some(Adopted),
                Some(Superseded),
                &[(17, "DecisionSuperseded")]
            ),
            change(
                "d-three",
                Some(Proposed),
                Some(Adopted),
                &[
                    (14, "DecisionEndorsed"),
                    (15, "DecisionEndorsed"),
                    (16, "DecisionAdopted")
                ]
            ),
        ]
    );
    assert_eq!(
        diff.elements,
        vec![
            element_change("e-a", Changed, &[(17, "DecisionSuperseded")]),
            element_change("e-b", Changed, &[(16, "DecisionAdopted")]),
        ]
    );
    let posture = |version| {
        projection
            .posture(plan, date(2029, 1, 1), RecordPoint::Version(version), false)
            .unwrap()
    };
    let personnel_of = |version, element_id: &str| {
        posture(version)
            .elements
            .iter()
            .find(|e| e.id == id(element_id))
            .map(|e| e.personnel)
    };
    assert_eq!(personnel_of(13, "e-a"), Some(900));
    assert_eq!(personnel_of(13, "e-b"), Some(1000));
    assert_eq!(personnel_of(17, "e-a"), Some(1000));
    assert_eq!(personnel_of(17, "e-b"), None);

    // From the start: registered elements are added; by record time as by version.
    let diff = projection
        .diff(plan, RecordPoint::Version(0), RecordPoint::Version(3))
        .unwrap();
    assert!(diff.decisions.is_empty());
    assert_eq!(
        diff.elements,
        vec![
            element_change("e-a", Added, &[(2, "ForceElementRegistered")]),
            element_change("e-b", Added, &[(3, "ForceElementRegistered")]),
        ]
    );
    assert_eq!(diff.events.len(), 3);
    let by_time = projection
        .diff(
            plan,
            RecordPoint::Time(stored[0].record_time_micros - 1),
            RecordPoint::Time(stored[2].record_time_micros),
        )
        .unwrap();
    assert_eq!(by_time, diff);
    // Nothing between a version and itself; the later record point must come second.
    let empty = projection
        .diff(plan, RecordPoint::Latest, RecordPoint::Version(17))
        .unwrap();
    assert!(empty.decisions.is_empty() && empty.elements.is_empty() && empty.events.is_empty());
    assert!(matches!(
        projection.diff(plan, RecordPoint::Version(10), RecordPoint::Version(5)),
        Err(ProjectionError::Invalid { field: "from", .. })
    ));
}

/// The decision an event is about, written out independently of the read model.
fn about(event: &Event) -> Option<&DecisionId> {
    match event {
        Event::DecisionProposed { decision_id, .. }
        | Event::StepPlanned { decision_id, .. }
        | Event::DecisionEndorsed { decision_id, .. }
        | Event::DecisionAdopted { decision_id }
        | Event::DecisionRejected { decision_id, .. }
        | Event::DecisionWithdrawn { decision_id, .. }
        | Event::DecisionSuperseded { decision_id, .. }
        | Event::PrerequisiteRequired { decision_id, .. }
        | Event::FindingsAcknowledged { decision_id, .. } => Some(decision_id),
        _ => None,
    }
}

fn matches(plan_decision: &alliance_domain::Decision, filter: &DecisionFilter) -> bool {
    filter.status.is_none_or(|s| plan_decision.status == s)
        && filter
            .side
            .is_none_or(|s| plan_decision.required_sides.contains(&s))
        && filter
            .team
            .as_ref()
            .is_none_or(|t| plan_decision.owner_team == *t)
        && filter
            .effective_from
            .is_none_or(|f| plan_decision.effective_date >= f)
        && filter
            .effective_to
            .is_none_or(|t| plan_decision.effective_date <= t)
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_view_filters_like_a_plain_filter() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    // Every status: reject one proposal, withdraw another.
    env.exec(
        APPROVER,
        plan,
        Command::RejectDecision {
            decision_id: did("security-guarantee-scope-talks"),
            reason: "test".into(),
        },
    )
    .await;
    env.exec(
        US,
        plan,
        Command::WithdrawDecision {
            decision_id: did("opplan-revision-post-transfer"),
            reason: "test".into(),
        },
    )
    .await;
    let projection = env.caught_up().await;
    let stored = env.plan_events(plan).await;
    let events = decode(&stored);
    let latest = events.len() as Version;

    let statuses = [
        None,
        Some(DecisionStatus::Proposed),
        Some(DecisionStatus::Adopted),
        Some(DecisionStatus::Rejected),
        Some(DecisionStatus::Withdrawn),
        Some(DecisionStatus::Superseded),
    ];
    let teams = [None, Some("rok-jcs"), Some("nuclear-policy")];
    let ranges = [
        (None, None),
        (Some(date(2000, 1, 1)), None),
        (None, Some(date(2027, 1, 1))),
        (Some(date(2027, 1, 1)), Some(date(2027, 1, 1))),
    ];
    let mut seen_statuses = BTreeSet::new();
    let mut nonempty = 0;
    for version in [0, 20, 40, 100, 150, latest - 1, latest] {
        let state: Plan = naive_state(&events, command_end(&stored, version));
        for status in statuses {
            for side in [None, Some(Side::Us), Some(Side::Rok)] {
                for team in teams {
                    for (effective_from, effective_to) in ranges {
                        let filter = DecisionFilter {
                            status,
                            side,
                            team: team.map(|t| TeamId::parse(t).unwrap()),
                            effective_from,
                            effective_to,
                        };
                        let views = projection
                            .decisions(plan, RecordPoint::Version(version), &filter)
                            .unwrap();
                        let listed: Vec<&DecisionId> =
                            views.iter().map(|v| &v.decision.id).collect();
                        let expected: Vec<&DecisionId> = state
                            .decisions
                            .values()
                            .filter(|d| matches(d, &filter))
                            .map(|d| &d.id)
                            .collect();
                        assert_eq!(listed, expected, "version {version}, {filter:?}");
                        if !listed.is_empty() {
                            nonempty += 1;
                        }
                        for view in &views {
                            seen_statuses.insert(format!("{:?}", view.decision.status));
                            assert_eq!(&view.decision, &*state.decisions[&view.decision.id]);
                            let lifecycle: Vec<(Version, &str)> = view
                                .history
                                .iter()
                                .map(|e| (e.version, e.event_type))
                                .collect();
                            let naive: Vec<(Version, &str)> = events
                                [..command_end(&stored, version) as usize]
                                .iter()
                                .zip(1..)
                                .filter(|(e, _)| about(e) == Some(&view.decision.id))
                                .map(|(e, v)| (v, e.event_type()))
                                .collect();
                            assert_eq!(lifecycle, naive, "{}", view.decision.id);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(seen_statuses.len(), 5, "{seen_statuses:?}");
    assert!(nonempty > 100);

    // Hand-checked cases at the latest version.
    let list = |filter: DecisionFilter| -> Vec<String> {
        projection
            .decisions(plan, RecordPoint::Latest, &filter)
            .unwrap()
            .into_iter()
            .map(|v| v.decision.id.to_string())
            .collect()
    };
    assert_eq!(
        list(DecisionFilter {
            status: Some(DecisionStatus::Superseded),
            ..Default::default()
        }),
        vec!["hist-2007-opcon-2012", "hist-2010-opcon-2015"]
    );
    assert_eq!(
        list(DecisionFilter {
            status: Some(DecisionStatus::Rejected),
            ..Default::default()
        }),
        vec!["security-guarantee-scope-talks"]
    );
    // The ROK investments need only the ROK's endorsement.
    let rok_only: Vec<String> = list(DecisionFilter {
        status: Some(DecisionStatus::Proposed),
        side: Some(Side::Rok),
        ..Default::default()
    });
    let us_too: Vec<String> = list(DecisionFilter {
        status: Some(DecisionStatus::Proposed),
        side: Some(Side::Us),
        ..Default::default()
    });
    assert!(rok_only.contains(&"rok-investments-named-gaps".to_owned()));
    assert!(!us_too.contains(&"rok-investments-named-gaps".to_owned()));
    assert!(us_too.contains(&"opcon-wartime-transfer".to_owned()));
    assert!(!us_too.contains(&"opplan-revision-post-transfer".to_owned()));
}
