//! The audit history of a plan: filters and paging return exactly the events a plain filter
//! over the whole history returns (a property over random filters on the reference plan), the
//! story of one element includes its decisions' lifecycles, and rationale, actor and record
//! time come through for every kind of event.

use std::collections::BTreeSet;

use alliance_domain::{DecisionId, ElementId, Event, Key};
use alliance_projection::{EventFilter, Projection, Recorded};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::{Env, date};

/// Every page of `filter`, `size` events at a time, concatenated.
fn paged(
    model: &Projection,
    plan: alliance_domain::PlanId,
    filter: &EventFilter,
    size: usize,
) -> Vec<u64> {
    let mut versions = Vec::new();
    let mut after = 0;
    loop {
        let page = model.events(plan, filter, after, size).unwrap();
        assert!(page.events.len() <= size);
        versions.extend(page.events.iter().map(|r| r.version));
        match page.next_after {
            Some(next) => {
                assert_eq!(page.events.len(), size, "a short page before the last");
                after = next;
            }
            None => return versions,
        }
    }
}

/// The plain filter: one pass, each condition written out.
fn naive(all: &[Recorded], filter: &EventFilter) -> Vec<u64> {
    let element_decisions: BTreeSet<DecisionId> = match &filter.element {
        None => BTreeSet::new(),
        Some(element) => all
            .iter()
            .filter_map(|r| match r.event().unwrap() {
                Event::StepPlanned { decision_id, step } if step.element_id() == Some(element) => {
                    Some(decision_id)
                }
                _ => None,
            })
            .collect(),
    };
    let mut out = Vec::new();
    for r in all {
        let event = r.event().unwrap();
        let keys = event.keys();
        let decisions: BTreeSet<&DecisionId> = keys
            .iter()
            .filter_map(|k| match k {
                Key::Decision(d) | Key::Endorsement(d, _) => Some(d),
                _ => None,
            })
            .collect();
        let (team, user) = (r.command.actor.team.as_str(), r.command.actor.user.as_str());
        if let Some(e) = &filter.element
            && !keys.contains(&Key::Element(e.clone()))
            && !decisions.iter().any(|d| element_decisions.contains(*d))
        {
            continue;
        }
        if let Some(d) = &filter.decision
            && !decisions.contains(d)
        {
            continue;
        }
        if filter.team.as_deref().is_some_and(|t| t != team)
            || filter.user.as_deref().is_some_and(|u| u != user)
        {
            continue;
        }
        if !filter.event_types.is_empty() && !filter.event_types.contains(r.event.event_type()) {
            continue;
        }
        let t = r.record_time_micros;
        if filter.recorded_from.is_some_and(|from| t < from)
            || filter.recorded_to.is_some_and(|to| t >= to)
        {
            continue;
        }
        let valid = event.valid_date();
        if filter.valid_from.is_some() && valid.is_none_or(|v| v < filter.valid_from.unwrap()) {
            continue;
        }
        if filter.valid_to.is_some() && valid.is_none_or(|v| v > filter.valid_to.unwrap()) {
            continue;
        }
        out.push(r.version);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_and_pages_return_exactly_what_a_plain_filter_returns() {
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let model = env.caught_up().await;
    let all = model.events_from(plan, 1).unwrap();
    let state = model.with_plan(plan, |h| h.latest()).unwrap();
    let elements: Vec<ElementId> = state
        .elements
        .keys()
        .chain(state.planned_elements.keys())
        .cloned()
        .collect();
    let decisions: Vec<DecisionId> = state.decisions.keys().cloned().collect();
    let actors: Vec<String> = all
        .iter()
        .map(|r| r.command.actor.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let types: Vec<&'static str> = all
        .iter()
        .map(|r| r.event.event_type())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (first, last) = (
        all[0].record_time_micros,
        all.last().unwrap().record_time_micros,
    );

    let filters = (
        proptest::option::of(0..elements.len()),
        proptest::option::of(0..decisions.len()),
        proptest::option::of(0..actors.len()),
        any::<(bool, bool)>(),
        proptest::collection::btree_set(0..types.len(), 0..3),
        proptest::option::of((0i64..=100, 0i64..=100)),
        proptest::option::of((0i64..6000, 0i64..6000)),
        1usize..40,
    );
    let mut runner = TestRunner::new(Config::with_cases(200));
    runner
        .run(
            &filters,
            |(element, decision, actor, (by_team, by_user), kinds, recorded, valid, size)| {
                let actor = actor.map(|a| {
                    actors[a]
                        .split_once('/')
                        .map(|(t, u)| (t.to_owned(), u.to_owned()))
                        .unwrap()
                });
                let span = last - first + 1;
                let filter = EventFilter {
                    element: element.map(|e| elements[e].clone()),
                    decision: decision.map(|d| decisions[d].clone()),
                    team: actor.as_ref().filter(|_| by_team).map(|(t, _)| t.clone()),
                    user: actor.as_ref().filter(|_| by_user).map(|(_, u)| u.clone()),
                    event_types: kinds.iter().map(|k| types[*k].to_owned()).collect(),
                    recorded_from: recorded.map(|(a, _)| first + span * a.min(100) / 100),
                    recorded_to: recorded.map(|(a, b)| first + span * a.max(b) / 100),
                    valid_from: valid
                        .map(|(a, _)| date(1950, 1, 1) + chrono::Duration::days(a.min(6000) * 5)),
                    valid_to: valid
                        .map(|(a, b)| date(1950, 1, 1) + chrono::Duration::days(a.max(b) * 5)),
                };
                let expected = naive(&all, &filter);
                prop_assert_eq!(paged(&model, plan, &filter, size), expected);
                Ok(())
            },
        )
        .unwrap();

    // The filters are not vacuous on this plan: an element's story has several events, and a
    // filter by team returns some events but not all.
    let story = EventFilter {
        element: Some(elements[0].clone()),
        ..EventFilter::default()
    };
    assert!(paged(&model, plan, &story, 1000).len() > 1);
}
