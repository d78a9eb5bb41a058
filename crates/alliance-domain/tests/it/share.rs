//! One copy of equal parts: a state handed the parts another state of the same plan holds
//! (`Plan::parts_changed`) holds those equal to its own (`Plan::hold_equal`), and only those.

use std::sync::Arc;

use alliance_domain::testing::*;
use alliance_domain::{DecisionStatus, Event, Plan, evolve};

fn history() -> Vec<Event> {
    let mut events = baseline_with([clause_defined("c1")]);
    events.extend(adopted_decision("d1", Vec::new()));
    events.extend(endorsed_decision("d2", Vec::new()));
    events
}

/// Two states folded apart from the same events, the second handed the first's parts after
/// each event, as the read models of a process are handed the command service's.
#[test]
fn a_state_handed_the_parts_another_holds_after_each_event_holds_them_once() {
    let (mut giver, mut taker) = (Plan::default(), Plan::default());
    let mut taken = 0;
    for event in history() {
        giver = evolve(giver, &event);
        taker = evolve(taker, &event);
        taken += taker.hold_equal(giver.parts_changed(&event));
    }
    assert_eq!(taker, giver, "the same values");
    // Two elements, a clause, d1 once for each of its four events and d2 for its three.
    assert_eq!(taken, 10);
    let same = |a: &Plan, b: &Plan| {
        a.elements
            .iter()
            .all(|(id, e)| Arc::ptr_eq(e, &b.elements[id]))
            && a.decisions
                .iter()
                .all(|(id, d)| Arc::ptr_eq(d, &b.decisions[id]))
            && a.clauses
                .iter()
                .all(|(id, c)| Arc::ptr_eq(c, &b.clauses[id]))
    };
    assert!(same(&giver, &taker), "held once");
    // A later change copies the part first, as for any shared part: the other state keeps
    // what it had.
    let before = giver.clone();
    let taker = evolve(taker, &adopted("d2"));
    assert_eq!(giver, before);
    let d2 = |plan: &Plan| plan.decisions.values().next_back().unwrap().clone();
    assert_eq!(d2(&taker).status, DecisionStatus::Adopted);
    assert_ne!(d2(&giver).status, DecisionStatus::Adopted);
}

#[test]
fn a_part_that_differs_or_that_the_state_lacks_is_not_taken() {
    let fold = |events: &[Event]| events.iter().fold(Plan::default(), evolve);
    let ours = registered(ABCT, 4500, &[("M1A2", 90)]);
    let theirs = registered(ABCT, 4400, &[("M1A2", 90)]);
    let giver = fold(&[created(), theirs.clone()]);
    let mut taker = fold(&[created(), ours.clone()]);
    assert_eq!(taker.hold_equal(giver.parts_changed(&theirs)), 0);
    assert_eq!(taker, fold(&[created(), ours]), "its own fold");
    assert_eq!(taker.elements.values().next().unwrap().spec.personnel, 4500);
    let other = registered(WING, 2000, &[]);
    let giver = fold(&[created(), other.clone()]);
    assert_eq!(taker.hold_equal(giver.parts_changed(&other)), 0);
    assert_eq!(taker.elements.len(), 1, "nothing added");
}
