//! The operational plans as an entity: missions with a lead and a supporting side, changed by
//! decisions both sides endorse, shown in the posture.

use alliance_domain::{Mission, MissionState, Side, Sides, Step, posture};

use alliance_domain::testing::{
    adopted_decision, baseline_with, date, given, plan_step, planned, proposed, us,
};

fn assign(mission: Mission, lead: Side, supporting: Option<Side>, year: i32) -> Step {
    Step::AssignMission {
        mission,
        lead,
        supporting,
        on: date(year, 6, 30),
    }
}

#[test]
fn a_mission_assignment_is_a_step_both_sides_endorse() {
    let step = assign(Mission::MajorCombat, Side::Rok, Some(Side::Us), 2029);
    let events = baseline_with([proposed("oplan")]);
    given(events.clone())
        .when(us(), plan_step("oplan", step.clone()))
        .then(vec![planned("oplan", step.clone())]);
    let plan = alliance_domain::fold(Default::default(), &{
        let mut all = events;
        all.push(planned("oplan", step));
        all
    });
    assert_eq!(
        plan.decisions[&alliance_domain::testing::dec("oplan")].derived_sides(&plan),
        Sides::from([Side::Us, Side::Rok])
    );
}

#[test]
fn a_side_cannot_support_itself() {
    given(baseline_with([proposed("oplan")]))
        .when(
            us(),
            plan_step(
                "oplan",
                assign(Mission::Logistics, Side::Us, Some(Side::Us), 2029),
            ),
        )
        .then_invalid("supporting");
}

#[test]
fn the_posture_shows_who_leads_each_mission_from_its_date() {
    let mut events = baseline_with(adopted_decision(
        "baseline-oplan",
        vec![assign(
            Mission::MajorCombat,
            Side::Us,
            Some(Side::Rok),
            2025,
        )],
    ));
    events.extend(adopted_decision(
        "revised-oplan",
        vec![
            assign(Mission::MajorCombat, Side::Rok, None, 2030),
            assign(Mission::Intelligence, Side::Rok, Some(Side::Us), 2030),
        ],
    ));
    let plan = alliance_domain::fold(Default::default(), &events);
    let missions = |year| posture(&plan, date(year, 12, 31), false).missions;
    assert_eq!(
        missions(2026),
        [MissionState {
            mission: Mission::MajorCombat,
            lead: Side::Us,
            supporting: Some(Side::Rok),
            since: date(2025, 6, 30),
        }]
    );
    assert_eq!(
        missions(2030),
        [
            MissionState {
                mission: Mission::MajorCombat,
                lead: Side::Rok,
                supporting: None,
                since: date(2030, 6, 30),
            },
            MissionState {
                mission: Mission::Intelligence,
                lead: Side::Rok,
                supporting: Some(Side::Us),
                since: date(2030, 6, 30),
            },
        ]
    );
    assert!(missions(2024).is_empty(), "nothing assigned before 2025");
}
