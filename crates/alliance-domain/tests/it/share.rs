//! One copy of equal parts: a state handed the part another state of the same plan holds
//! (`Plan::part_made`) holds it where it equals its own (`Plan::hold_equal`), and only then.

use std::sync::Arc;

use alliance_domain::testing::*;
use alliance_domain::{Event, Plan, evolve};

fn history() -> Vec<Event> {
    let mut events = baseline_with([clause_defined("c1")]);
    events.extend(adopted_decision("d1", Vec::new()));
    events
}

/// Two states folded apart from the same events, the second handed the first's part after
/// each event, as the read models of a process are handed the command service's.
#[test]
fn a_state_handed_the_parts_another_holds_after_each_event_holds_them_once() {
    let (mut giver, mut taker) = (Plan::default(), Plan::default());
    let mut taken = 0;
    for event in history() {
        giver = evolve(giver, &event);
        taker = evolve(taker, &event);
        if let Some(part) = giver.part_made(&event) {
            taken += usize::from(taker.hold_equal(part));
        }
    }
    assert_eq!(taker, giver, "the same values");
    // The two elements and the clause, each made whole by one event.
    assert_eq!(taken, 3);
    assert!(
        giver
            .elements
            .iter()
            .all(|(id, e)| Arc::ptr_eq(e, &taker.elements[id]))
    );
    assert!(
        giver
            .clauses
            .iter()
            .all(|(id, c)| Arc::ptr_eq(c, &taker.clauses[id]))
    );
    // A decision changes with its events: each state keeps its own, changed in place.
    let (ours, theirs) = (giver.decisions.values(), taker.decisions.values());
    assert!(ours.zip(theirs).all(|(a, b)| !Arc::ptr_eq(a, b)));
    assert!(giver.part_made(&adopted("d1")).is_none());
}

#[test]
fn a_part_that_differs_or_that_the_state_lacks_is_not_taken() {
    let fold = |events: &[Event]| events.iter().fold(Plan::default(), evolve);
    let ours = registered(ABCT, 4500, &[("M1A2", 90)]);
    let theirs = registered(ABCT, 4400, &[("M1A2", 90)]);
    let giver = fold(&[created(), theirs.clone()]);
    let mut taker = fold(&[created(), ours.clone()]);
    assert!(!taker.hold_equal(giver.part_made(&theirs).unwrap()));
    assert_eq!(taker, fold(&[created(), ours]), "its own fold");
    assert_eq!(taker.elements.values().next().unwrap().spec.personnel, 4500);
    let other = registered(WING, 2000, &[]);
    let giver = fold(&[created(), other.clone()]);
    assert!(!taker.hold_equal(giver.part_made(&other).unwrap()));
    assert_eq!(taker.elements.len(), 1, "nothing added");
}
