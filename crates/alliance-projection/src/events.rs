//! A plan's events for auditors: filtered by element, decision, team, user, event type, record
//! time and valid time, in version order, a page at a time.

use std::collections::BTreeSet;

use alliance_domain::{Date, DecisionId, ElementId, Event, Key, PlanId, Version};

use crate::history::Recorded;
use crate::{Projection, ProjectionError};

/// The most events one page may hold.
pub const MAX_PAGE: usize = 1000;

/// Which events to list; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The story of one element: every event that names it, and every event of the decisions
    /// with a step on it (their proposal, endorsements, adoption, ...).
    pub element: Option<ElementId>,
    /// Every event of one decision.
    pub decision: Option<DecisionId>,
    pub team: Option<String>,
    pub user: Option<String>,
    /// Event types (e.g. `DecisionAdopted`); empty: all.
    pub event_types: BTreeSet<String>,
    /// Record time in `[from, to)`, microseconds since the Unix epoch.
    pub recorded_from: Option<i64>,
    pub recorded_to: Option<i64>,
    /// Valid date in `[from, to]`; an event without a valid date does not match either bound.
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
}

/// One page of events.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Recorded>,
    /// The version to continue after, when more events match.
    pub next_after: Option<Version>,
}

/// The decisions with a step on `element`.
fn decisions_touching<'a>(
    events: impl Iterator<Item = &'a Recorded>,
    element: &ElementId,
) -> BTreeSet<DecisionId> {
    events
        .filter_map(|r| match &r.event {
            Event::StepPlanned { decision_id, step } if step.element_id() == Some(element) => {
                Some(decision_id.clone())
            }
            _ => None,
        })
        .collect()
}

impl EventFilter {
    fn matches(&self, recorded: &Recorded, element_decisions: &BTreeSet<DecisionId>) -> bool {
        let actor = &recorded.command.actor;
        let keys = || recorded.event.keys();
        let valid = recorded.event.valid_date();
        let of_decision = |keys: &BTreeSet<Key>, wanted: &dyn Fn(&DecisionId) -> bool| {
            keys.iter().any(|key| match key {
                Key::Decision(d) | Key::Endorsement(d, _) => wanted(d),
                _ => false,
            })
        };
        self.team.as_deref().is_none_or(|t| t == actor.team)
            && self.user.as_deref().is_none_or(|u| u == actor.user)
            && (self.event_types.is_empty()
                || self.event_types.contains(recorded.event.event_type()))
            && self
                .recorded_from
                .is_none_or(|from| recorded.record_time_micros >= from)
            && self
                .recorded_to
                .is_none_or(|to| recorded.record_time_micros < to)
            && self
                .valid_from
                .is_none_or(|from| valid.is_some_and(|v| v >= from))
            && self
                .valid_to
                .is_none_or(|to| valid.is_some_and(|v| v <= to))
            && self
                .decision
                .as_ref()
                .is_none_or(|wanted| of_decision(&keys(), &|d| d == wanted))
            && self.element.as_ref().is_none_or(|element| {
                let keys = keys();
                keys.contains(&Key::Element(element.clone()))
                    || of_decision(&keys, &|d| element_decisions.contains(d))
            })
    }
}

impl Projection {
    /// The events of `plan_id` that match `filter`, with versions after `after`, in version
    /// order, at most `limit` (at most [`MAX_PAGE`]).
    pub fn events(
        &self,
        plan_id: PlanId,
        filter: &EventFilter,
        after: Version,
        limit: usize,
    ) -> Result<EventPage, ProjectionError> {
        let limit = limit.clamp(1, MAX_PAGE);
        self.with_plan(plan_id, |history| {
            let element_decisions = filter
                .element
                .as_ref()
                .map(|e| decisions_touching(history.events.iter(), e))
                .unwrap_or_default();
            let skip = usize::try_from(after).unwrap_or(usize::MAX);
            let mut matching = history
                .events
                .range(skip, usize::MAX)
                .filter(|r| filter.matches(r, &element_decisions));
            let events: Vec<Recorded> = matching.by_ref().take(limit).cloned().collect();
            let more = matching.next().is_some();
            let next_after = events.last().map(|r| r.version).filter(|_| more);
            EventPage { events, next_after }
        })
    }
}
