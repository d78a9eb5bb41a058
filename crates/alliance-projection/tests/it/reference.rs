//! Both time axes on the reference plan, loaded through the command service into SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use alliance_domain::{
    ClauseId, ClauseStatus, Command, CommandArrangement, DecisionId, DecisionStatus, Event,
    Posture, Side, Step,
};
use alliance_projection::{ElementChangeKind, RecordPoint};

use crate::harness::{
    APPROVER, Env, ROK, US, command_end, date, decode, id, naive_state, version_of,
};

fn did(s: &str) -> DecisionId {
    DecisionId::parse(s).unwrap()
}

fn arrangement(
    peacetime_opcon: Option<Side>,
    wartime_opcon: Option<Side>,
    cfc_commander: Option<Side>,
) -> CommandArrangement {
    CommandArrangement {
        peacetime_opcon,
        wartime_opcon,
        cfc_commander,
    }
}

fn clause(posture: &Posture, clause_id: &str) -> Option<ClauseStatus> {
    let clause_id = ClauseId::parse(clause_id).unwrap();
    posture
        .clauses
        .iter()
        .find(|c| c.id == clause_id)
        .map(|c| c.status)
}

fn has(posture: &Posture, element_id: &str) -> bool {
    posture.elements.iter().any(|e| e.id == id(element_id))
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_plan_answers_both_time_axes() {
    let env = Env::open().await;
    let (plan, entries) = env.load_reference().await;
    let projection = env.caught_up().await;
    let stored = env.plan_events(plan).await;
    // Every entry is one event, except adoptions that supersede (one more event each).
    assert!(stored.len() > entries);
    assert_eq!(projection.plan_version(plan), stored.len() as u64);
    assert_eq!(projection.plan_ids(), vec![plan]);
    let at = |valid, record| projection.posture(plan, valid, record, false).unwrap();
    let latest = |valid| at(valid, RecordPoint::Latest);

    // Valid time, as the plan stands now: the command arrangement through the alliance's history.
    assert_eq!(
        latest(date(1954, 11, 16)).command,
        arrangement(None, None, None)
    );
    assert_eq!(
        latest(date(1954, 11, 17)).command,
        arrangement(Some(Side::Us), Some(Side::Us), None)
    );
    assert_eq!(
        latest(date(1978, 11, 7)).command,
        arrangement(Some(Side::Us), Some(Side::Us), Some(Side::Us))
    );
    // Peacetime OPCON returned on 1 December 1994; wartime OPCON stays with the U.S.-led CFC.
    assert_eq!(
        latest(date(1994, 11, 30)).command,
        arrangement(Some(Side::Us), Some(Side::Us), Some(Side::Us))
    );
    assert_eq!(
        latest(date(1994, 12, 1)).command,
        arrangement(Some(Side::Rok), Some(Side::Us), Some(Side::Us))
    );
    // The 2012 and 2015 transfer dates were superseded: no transfer in 2013, 2016 or 2030.
    for year in [2013, 2016, 2030] {
        assert_eq!(
            latest(date(year, 1, 1)).command,
            arrangement(Some(Side::Rok), Some(Side::Us), Some(Side::Us)),
            "{year}"
        );
    }
    // The proposed transfer (1 December 2028) shows only in a what-if view.
    let what_if = |valid| {
        projection
            .posture(plan, valid, RecordPoint::Latest, true)
            .unwrap()
    };
    assert_eq!(
        what_if(date(2028, 11, 30)).command.wartime_opcon,
        Some(Side::Us)
    );
    assert_eq!(
        what_if(date(2028, 12, 1)).command,
        arrangement(Some(Side::Rok), Some(Side::Rok), Some(Side::Rok))
    );

    // U.S. personnel: the 2024 baseline of about 28,500, unchanged by proposals until adopted.
    assert_eq!(latest(date(2023, 12, 31)).personnel_of(Side::Us), 0);
    assert_eq!(latest(date(2024, 1, 1)).personnel_of(Side::Us), 28_500);
    assert_eq!(latest(date(2024, 1, 1)).elements.len(), 20);
    assert_eq!(latest(date(2034, 1, 1)).personnel_of(Side::Us), 28_500);
    // What-if: after the transfer and the revised plans, the rotational brigade (4,500) leaves
    // 30 Sep 2029, 2CAB is cut by 1,000 on 31 Dec 2029.
    assert_eq!(what_if(date(2029, 9, 29)).personnel_of(Side::Us), 28_500);
    assert_eq!(what_if(date(2029, 9, 30)).personnel_of(Side::Us), 24_000);
    assert_eq!(what_if(date(2030, 1, 1)).personnel_of(Side::Us), 23_000);
    // Both retrenchment phases: 28,500 - 12,800 (phase 1) - 10,050 (phase 2).
    assert_eq!(what_if(date(2034, 1, 1)).personnel_of(Side::Us), 5_650);

    // Agreements: the missile guidelines end on 21 May 2021, the NCG from 26 April 2023.
    let guidelines = "missile-guidelines-range-payload";
    assert_eq!(clause(&latest(date(1978, 12, 31)), guidelines), None);
    assert_eq!(
        clause(&latest(date(2021, 5, 20)), guidelines),
        Some(ClauseStatus::Restricted)
    );
    assert_eq!(
        clause(&latest(date(2021, 5, 21)), guidelines),
        Some(ClauseStatus::Terminated)
    );
    assert_eq!(
        clause(&latest(date(2023, 4, 25)), "ed-nuclear-consultation"),
        Some(ClauseStatus::Restricted)
    );
    assert_eq!(
        clause(&latest(date(2023, 4, 26)), "ed-nuclear-consultation"),
        Some(ClauseStatus::Permitted)
    );

    // Record time: the 2007 agreement put the transfer on 17 April 2012; the 2010 deferral
    // superseded it (2015), and the 2014 move to conditions superseded that.
    let adopted = |d: &str| {
        let d = did(d);
        version_of(
            &stored,
            |e| matches!(e, Event::DecisionAdopted { decision_id } if *decision_id == d),
        )
    };
    let superseded = |d: &str| {
        let d = did(d);
        version_of(
            &stored,
            |e| matches!(e, Event::DecisionSuperseded { decision_id, .. } if *decision_id == d),
        )
    };
    let v2007 = adopted("hist-2007-opcon-2012");
    let v2010 = superseded("hist-2007-opcon-2012");
    let v2014 = superseded("hist-2010-opcon-2015");
    assert_eq!(v2010, adopted("hist-2010-opcon-2015") + 1);
    assert_eq!(v2014, adopted("hist-2014-conditions-based-opcon") + 1);
    let wartime = |valid, version| {
        at(valid, RecordPoint::Version(version))
            .command
            .wartime_opcon
    };
    let (y2013, y2016) = (date(2013, 1, 1), date(2016, 1, 1));
    assert_eq!(wartime(y2013, v2007 - 1), Some(Side::Us));
    assert_eq!(wartime(y2013, v2007), Some(Side::Rok));
    assert_eq!(wartime(y2016, v2007), Some(Side::Rok));
    assert_eq!(
        at(y2013, RecordPoint::Version(v2007)).command.cfc_commander,
        Some(Side::Rok)
    );
    assert_eq!(wartime(y2013, v2010), Some(Side::Us));
    assert_eq!(wartime(y2016, v2010), Some(Side::Rok));
    assert_eq!(wartime(y2016, v2014 - 2), Some(Side::Rok));
    assert_eq!(wartime(y2016, v2014), Some(Side::Us));
    assert_eq!(
        at(y2013, RecordPoint::Version(v2007)).decisions,
        vec![
            did("hist-1954-mdt-in-force"),
            did("hist-1978-cfc-formed"),
            did("hist-1994-peacetime-opcon"),
            did("hist-2007-opcon-2012"),
        ]
    );

    // Record points by time pick the last version recorded at or before the instant: one
    // command's events share their record time, so a time never splits a command.
    let times: Vec<i64> = stored.iter().map(|s| s.record_time_micros).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "record times go back"
    );
    for (i, s) in stored.iter().enumerate() {
        let t = s.record_time_micros;
        let expected = times.iter().filter(|&&u| u <= t).count() as u64;
        assert!(expected > i as u64);
        assert_eq!(at(y2013, RecordPoint::Time(t)).version, expected, "at {t}");
    }
    let t2010 = stored[v2010 as usize - 1].record_time_micros;
    assert_eq!(stored[v2010 as usize - 2].record_time_micros, t2010);
    assert_eq!(wartime(y2013, v2010 - 2), Some(Side::Rok));
    let before = at(y2013, RecordPoint::Time(t2010 - 1));
    assert_eq!(before.version, v2010 - 2);
    assert_eq!(before.command.wartime_opcon, Some(Side::Rok));
    let after = at(y2013, RecordPoint::Time(t2010));
    assert_eq!(after.version, command_end(&stored, v2010));
    assert_eq!(after.command.wartime_opcon, Some(Side::Us));
    // Before the first event: the plan says nothing yet.
    let empty = at(y2016, RecordPoint::Time(times[0] - 1));
    assert_eq!(empty.version, 0);
    assert_eq!(empty.command, CommandArrangement::default());
    assert!(empty.clauses.is_empty());
    // After the last: the latest.
    assert_eq!(
        at(y2016, RecordPoint::Time(i64::MAX)),
        at(y2016, RecordPoint::Latest)
    );
    assert_eq!(
        at(y2016, RecordPoint::Version(u64::MAX)),
        at(y2016, RecordPoint::Latest)
    );

    // Every historic answer equals the posture of the log folded from scratch to that version.
    let events = decode(&stored);
    for version in [
        0,
        1,
        17,
        63,
        64,
        65,
        v2007,
        v2010,
        127,
        128,
        129,
        stored.len() as u64,
    ] {
        let plan_state = naive_state(&events, command_end(&stored, version));
        for valid in [date(1960, 1, 1), y2013, date(2025, 6, 1), date(2032, 1, 1)] {
            for what_if in [false, true] {
                assert_eq!(
                    projection
                        .posture(plan, valid, RecordPoint::Version(version), what_if)
                        .unwrap(),
                    alliance_domain::posture(&plan_state, valid, what_if),
                    "version {version}, {valid}, what-if {what_if}"
                );
            }
        }
    }
}

/// A withdrawal adopted for 2029, then rescheduled to 2030 by a superseding decision: mid-2029
/// as recorded before the rescheduling shows the element gone, as recorded after, present.
#[tokio::test(flavor = "multi_thread")]
async fn rescheduled_withdrawal_depends_on_record_time() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let thaad = "thaad-seongju";
    let both: BTreeSet<Side> = [Side::Us, Side::Rok].into();
    let first = did("thaad-withdrawal-2030");
    let second = did("thaad-withdrawal-2031");

    let propose = |decision_id: &DecisionId, supersedes: BTreeSet<DecisionId>, year| {
        Command::ProposeDecision {
            decision_id: decision_id.clone(),
            title: format!("withdraw the THAAD battery in {year}"),
            rationale: "test".into(),
            effective_date: date(year, 6, 30),
            required_sides: both.clone(),
            supersedes,
        }
    };
    let step = |decision_id: &DecisionId, year| Command::PlanStep {
        decision_id: decision_id.clone(),
        step: Step::WithdrawElement {
            element_id: id(thaad),
            on: date(year, 6, 30),
        },
    };
    let endorse = |decision_id: &DecisionId| Command::EndorseDecision {
        decision_id: decision_id.clone(),
    };
    let adopt = |decision_id: &DecisionId| Command::AdoptDecision {
        decision_id: decision_id.clone(),
        acknowledged_findings: Default::default(),
    };

    // Proposed, planned, endorsed by both sides and adopted: the adoption's result.
    let adopted = async |decision_id: &DecisionId, supersedes: BTreeSet<DecisionId>, year| {
        env.exec(US, plan, propose(decision_id, supersedes, year))
            .await;
        env.exec(US, plan, step(decision_id, year)).await;
        env.exec(US, plan, endorse(decision_id)).await;
        env.exec(ROK, plan, endorse(decision_id)).await;
        env.exec(APPROVER, plan, adopt(decision_id)).await
    };
    let adopted_a = adopted(&first, BTreeSet::new(), 2030).await;
    let a = adopted_a.plan_version;
    assert_eq!(adopted_a.first_version, a);

    let adopted_b = adopted(&second, [first.clone()].into(), 2031).await;
    let b = adopted_b.plan_version;
    // The adoption supersedes the first decision in the same command.
    assert_eq!(adopted_b.first_version + 1, b);

    let projection = env.caught_up().await;
    let stored = env.plan_events(plan).await;
    assert_eq!(stored.len() as u64, b);
    let at = |valid, record| projection.posture(plan, valid, record, false).unwrap();
    let mid_2030 = date(2030, 12, 31);

    // As recorded before the first adoption, the battery stays.
    assert!(has(&at(mid_2030, RecordPoint::Version(a - 1)), thaad));
    // As recorded at A: gone from 30 June 2030.
    let recorded_a = at(mid_2030, RecordPoint::Version(a));
    assert!(!has(&recorded_a, thaad));
    assert_eq!(recorded_a.personnel_of(Side::Us), 28_500 - 150);
    assert_eq!(
        recorded_a
            .equipment
            .get(&(Side::Us, "THAAD launcher".into())),
        None
    );
    assert_eq!(
        recorded_a.decisions,
        vec![
            did("hist-1954-mdt-in-force"),
            did("hist-1978-cfc-formed"),
            did("hist-1994-peacetime-opcon"),
            did("hist-2021-missile-guidelines-ended"),
            did("hist-2023-washington-declaration"),
            did("hist-2025-a10-divestment"),
            first.clone(),
        ]
    );
    assert!(has(&at(date(2030, 6, 29), RecordPoint::Version(a)), thaad));
    // Still gone as recorded just before the rescheduling was adopted.
    assert!(!has(&at(mid_2030, RecordPoint::Version(b - 2)), thaad));
    // As recorded at B: present through mid-2030, gone from 30 June 2031.
    let recorded_b = at(mid_2030, RecordPoint::Version(b));
    assert!(has(&recorded_b, thaad));
    assert_eq!(recorded_b.personnel_of(Side::Us), 28_500);
    assert_eq!(
        recorded_b
            .equipment
            .get(&(Side::Us, "THAAD launcher".into())),
        Some(&6)
    );
    assert!(!recorded_b.decisions.contains(&first));
    assert!(has(&at(date(2031, 6, 29), RecordPoint::Version(b)), thaad));
    assert!(!has(&at(date(2031, 6, 30), RecordPoint::Version(b)), thaad));
    assert!(has(&at(mid_2030, RecordPoint::Latest), thaad));

    // The same by record time.
    let time_of = |version: u64| stored[version as usize - 1].record_time_micros;
    let (t_a, t_b) = (time_of(a), time_of(b));
    assert!(time_of(a - 1) < t_a && t_a < time_of(a + 1));
    assert_eq!(time_of(b - 1), t_b);
    assert!(time_of(b - 2) < t_b);
    assert_eq!(at(mid_2030, RecordPoint::Time(t_a - 1)).version, a - 1);
    assert!(has(&at(mid_2030, RecordPoint::Time(t_a - 1)), thaad));
    assert_eq!(at(mid_2030, RecordPoint::Time(t_a)), recorded_a);
    assert_eq!(at(mid_2030, RecordPoint::Time(t_b - 1)).version, b - 2);
    assert!(!has(&at(mid_2030, RecordPoint::Time(t_b - 1)), thaad));
    assert_eq!(at(mid_2030, RecordPoint::Time(t_b)), recorded_b);

    // What changed between the two record times.
    let diff = projection
        .diff(plan, RecordPoint::Time(t_a), RecordPoint::Time(t_b))
        .unwrap();
    assert_eq!((diff.from_version, diff.to_version), (a, b));
    assert_eq!(diff.events.len() as u64, b - a);
    let change =
        |d: &alliance_projection::DecisionChange| (d.decision_id.clone(), d.before, d.after);
    let changes: Vec<_> = diff.decisions.iter().map(change).collect();
    let superseded = Some(DecisionStatus::Superseded);
    let adopted = Some(DecisionStatus::Adopted);
    assert_eq!(
        changes,
        [
            (first.clone(), adopted, superseded),
            (second.clone(), None, adopted)
        ]
    );
    assert_eq!(diff.elements.len(), 1);
    assert_eq!(diff.elements[0].element_id, id(thaad));
    assert_eq!(diff.elements[0].kind, ElementChangeKind::Changed);
    let types: Vec<&str> = diff.elements[0].events.iter().map(|(_, t)| *t).collect();
    assert_eq!(
        types,
        vec![
            "ForceElementWithdrawalPlanned",
            "DecisionAdopted",
            "DecisionSuperseded"
        ]
    );
    // The first decision's lifecycle, as the auditors see it.
    let views = projection
        .decisions(
            plan,
            RecordPoint::Latest,
            &alliance_projection::DecisionFilter {
                status: Some(DecisionStatus::Superseded),
                ..Default::default()
            },
        )
        .unwrap();
    let view = views.iter().find(|v| v.decision.id == first).unwrap();
    assert_eq!(view.decision.superseded_by(), Some(&second));
    let lifecycle: Vec<(u64, &str, &str)> = view
        .history
        .iter()
        .map(|e| (e.version, e.event_type, e.actor.as_str()))
        .collect();
    assert_eq!(
        lifecycle,
        vec![
            (a - 4, "DecisionProposed", "us-force-planning/tester"),
            (
                a - 3,
                "ForceElementWithdrawalPlanned",
                "us-force-planning/tester"
            ),
            (a - 2, "DecisionEndorsed", "us-force-planning/tester"),
            (a - 1, "DecisionEndorsed", "rok-jcs/tester"),
            (a, "DecisionAdopted", "alliance-approvers/tester"),
            (b, "DecisionSuperseded", "alliance-approvers/tester"),
        ]
    );
}

/// The read model keeps an element's name once however many states the element goes through,
/// and one base for the elements at it: a posture's elements share them.
#[tokio::test(flavor = "multi_thread")]
async fn an_elements_states_share_its_name_and_elements_share_a_base() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let projection = env.caught_up().await;
    let postures: Vec<Posture> = (2020..=2035)
        .map(|year| {
            projection
                .posture(plan, date(year, 1, 1), RecordPoint::Latest, true)
                .unwrap()
        })
        .collect();
    let mut changed = 0;
    for (before, after) in postures.iter().zip(&postures[1..]) {
        for old in &before.elements {
            let Some(new) = after.elements.iter().find(|e| e.id == old.id) else {
                continue;
            };
            if !std::sync::Arc::ptr_eq(old, new) {
                changed += 1;
                assert!(
                    std::sync::Arc::ptr_eq(&old.named, &new.named),
                    "{} holds its name twice",
                    old.id
                );
            }
        }
    }
    assert!(
        changed > 0,
        "no element of the reference plan changed state"
    );
    let all: Vec<_> = postures.iter().flat_map(|p| &p.elements).collect();
    for a in &all {
        for b in &all {
            if a.base == b.base {
                assert!(
                    std::sync::Arc::ptr_eq(&a.base, &b.base),
                    "base {} held twice",
                    a.base
                );
            }
        }
    }
}
