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
) -> Result<BTreeSet<DecisionId>, ProjectionError> {
    let mut decisions = BTreeSet::new();
    for recorded in events {
        if let Event::StepPlanned { decision_id, step } = recorded.event()?
            && step.element_id() == Some(element)
        {
            decisions.insert(decision_id);
        }
    }
    Ok(decisions)
}

impl EventFilter {
    fn matches(
        &self,
        recorded: &Recorded,
        element_decisions: &BTreeSet<DecisionId>,
    ) -> Result<bool, ProjectionError> {
        let actor = &recorded.command.actor;
        let of_record = self.team.as_deref().is_none_or(|t| t == actor.team)
            && self.user.as_deref().is_none_or(|u| u == actor.user)
            && (self.event_types.is_empty()
                || self.event_types.contains(recorded.event.event_type()))
            && self
                .recorded_from
                .is_none_or(|from| recorded.record_time_micros >= from)
            && self
                .recorded_to
                .is_none_or(|to| recorded.record_time_micros < to);
        let of_event = self.valid_from.is_some()
            || self.valid_to.is_some()
            || self.decision.is_some()
            || self.element.is_some();
        if !of_record || !of_event {
            return Ok(of_record);
        }
        // Only these conditions read the event itself.
        let event = recorded.event()?;
        let keys = event.keys();
        let valid = event.valid_date();
        let of_decision = |wanted: &dyn Fn(&DecisionId) -> bool| {
            keys.iter().any(|key| match key {
                Key::Decision(d) | Key::Endorsement(d, _) => wanted(d),
                _ => false,
            })
        };
        Ok(self
            .valid_from
            .is_none_or(|from| valid.is_some_and(|v| v >= from))
            && self
                .valid_to
                .is_none_or(|to| valid.is_some_and(|v| v <= to))
            && self
                .decision
                .as_ref()
                .is_none_or(|wanted| of_decision(&|d| d == wanted))
            && self.element.as_ref().is_none_or(|element| {
                keys.contains(&Key::Element(element.clone()))
                    || of_decision(&|d| element_decisions.contains(d))
            }))
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
            let element_decisions = match &filter.element {
                Some(element) => decisions_touching(history.events.iter(), element)?,
                None => BTreeSet::new(),
            };
            let skip = usize::try_from(after).unwrap_or(usize::MAX);
            let mut events = Vec::new();
            let mut more = false;
            for (i, recorded) in (skip..).zip(history.events.range(skip, usize::MAX)) {
                if filter.matches(recorded, &element_decisions)? {
                    if events.len() == limit {
                        more = true;
                        break;
                    }
                    events.extend(history.events.whole(i));
                }
            }
            let next_after = events.last().map(|r| r.version).filter(|_| more);
            Ok(EventPage { events, next_after })
        })?
    }
}
