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

/// A set of sides behaves as the tree set of them it stands for, for every set and side.
#[test]
fn a_set_of_sides_is_the_tree_set_it_stands_for() {
    use std::collections::BTreeSet;

    use alliance_domain::{Side, Sides};
    let sides = [Side::Us, Side::Rok];
    let subsets: Vec<BTreeSet<Side>> = (0..4)
        .map(|bits| {
            (0..2)
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| sides[i])
                .collect()
        })
        .collect();
    for tree in &subsets {
        let set = Sides::from(tree);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            tree.iter().copied().collect::<Vec<_>>()
        );
        assert_eq!((set.len(), set.is_empty()), (tree.len(), tree.is_empty()));
        assert_eq!(set.first(), tree.first().copied());
        assert_eq!(format!("{set:?}"), format!("{tree:?}"));
        assert_eq!(tree.iter().copied().collect::<Sides>(), set);
        for side in sides {
            assert_eq!(set.contains(&side), tree.contains(&side));
            let (mut set, mut tree) = (set, tree.clone());
            assert_eq!(set.insert(side), tree.insert(side));
            assert_eq!(set, Sides::from(&tree));
        }
        for other in &subsets {
            assert_eq!(set.is_subset(&Sides::from(other)), tree.is_subset(other));
        }
    }
}

/// A plan holds at most `MAX_VERSION` events: a command that would take it past is refused, one
/// that reaches it is not. (A branch starts a stream of its own.)
#[test]
fn a_plan_holds_at_most_its_bound_of_events() {
    use alliance_domain::testing::{created, spec, us};
    use alliance_domain::{Command, CommandContext, DomainError, MAX_VERSION, decide};
    let register = |id: &str| Command::RegisterForceElement {
        element: spec(id, 100, &[]),
        present_from: date(2027, 1, 1),
    };
    let ctx = CommandContext { actor: us() };
    let mut plan = fold(Plan::default(), &[created()]);
    plan.version = MAX_VERSION - 1;
    assert!(decide(&plan, &register("e1"), &ctx).is_ok());
    plan.version = MAX_VERSION;
    let refused = decide(&plan, &register("e1"), &ctx).unwrap_err();
    assert!(
        matches!(
            refused,
            DomainError::Rule {
                rule: "plan_full",
                ..
            }
        ),
        "{refused:?}"
    );
}
