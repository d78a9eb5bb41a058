//! What a plan's state holds.

use alliance_domain::testing::{
    ABCT, baseline_with, date, dec, planned, proposed, relocate, withdraw,
};
use alliance_domain::{Plan, fold};

/// A decision holds room for the steps it has while they are few: most decisions have one or
/// two, and a vector's first growth makes room for four (448 bytes for one step, kept for every
/// decision the read models and the command service hold).
#[test]
fn a_decision_holds_room_for_the_steps_it_has() {
    let on = date(2027, 1, 1);
    let mut events = baseline_with([proposed("d1")]);
    let steps = [relocate(ABCT, "Osan", on), withdraw(ABCT, date(2028, 1, 1))];
    for (n, step) in steps.into_iter().enumerate() {
        events.push(planned("d1", step));
        let plan = fold(Plan::default(), &events);
        let steps = &plan.decisions[&dec("d1")].steps;
        assert_eq!((steps.len(), steps.capacity()), (n + 1, n + 1));
    }
}
