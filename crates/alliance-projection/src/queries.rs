//! The questions planners and auditors ask of the read models.

use std::collections::BTreeMap;

use alliance_domain::{
    Date, DecisionId, DecisionStatus, ElementId, Event, Plan, PlanId, Posture, Side, Step, TeamId,
    Version,
};
use chrono::{Datelike, Months};

use crate::history::{PlanHistory, RecordPoint, Recorded};
use crate::index::decision_of;
use crate::{Projection, ProjectionError};

/// The most points one series may hold.
pub const MAX_SERIES_POINTS: usize = 1200;

/// The spacing of a posture series on the valid-time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStep {
    Month,
    Quarter,
    Year,
}

impl SeriesStep {
    fn months(self) -> u32 {
        match self {
            SeriesStep::Month => 1,
            SeriesStep::Quarter => 3,
            SeriesStep::Year => 12,
        }
    }
}

/// How one decision changed between two record times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionChange {
    pub decision_id: DecisionId,
    pub title: String,
    /// `None`: it did not exist.
    pub before: Option<DecisionStatus>,
    pub after: Option<DecisionStatus>,
    /// The events responsible, by version.
    pub events: Vec<(Version, &'static str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementChangeKind {
    Added,
    Removed,
    Changed,
}

/// How one force element's place in the plan changed between two record times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementChange {
    pub element_id: ElementId,
    pub kind: ElementChangeKind,
    pub events: Vec<(Version, &'static str)>,
}

/// What changed in a plan between two record times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDiff {
    pub plan_id: PlanId,
    pub from_version: Version,
    pub to_version: Version,
    pub decisions: Vec<DecisionChange>,
    pub elements: Vec<ElementChange>,
    /// Every event in between: version, type, actor, record time (µs).
    pub events: Vec<(Version, &'static str, String, i64)>,
}

/// Which decisions to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub status: Option<DecisionStatus>,
    /// Decisions that need this side's endorsement (named by the proposer or derived).
    pub side: Option<Side>,
    pub team: Option<TeamId>,
    pub effective_from: Option<Date>,
    pub effective_to: Option<Date>,
}

/// One step of a decision's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEntry {
    pub version: Version,
    pub event_type: &'static str,
    pub actor: String,
    pub record_time_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionView {
    pub decision: alliance_domain::Decision,
    /// The sides its steps need, besides those its proposer named.
    pub derived_sides: alliance_domain::Sides,
    pub history: Vec<LifecycleEntry>,
}

/// The findings of a plan at one version, over a window of valid dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingsAt {
    pub version: u64,
    pub from: Date,
    pub to: Date,
    pub findings: Vec<alliance_domain::Finding>,
}

/// The elements an event changes the place of: the element it registers or plans a step for,
/// or the elements of the decision whose status it changes.
fn elements_of<'a>(event: &'a Event, plan: &'a Plan) -> Vec<&'a ElementId> {
    match event {
        Event::ForceElementRegistered { element, .. } => vec![&element.id],
        Event::StepPlanned { step, .. } => step.element_id().into_iter().collect(),
        Event::DecisionAdopted { decision_id }
        | Event::DecisionRejected { decision_id, .. }
        | Event::DecisionWithdrawn { decision_id, .. }
        | Event::DecisionSuperseded { decision_id, .. } => plan
            .decisions
            .get(decision_id)
            .map(|d| d.steps.iter().filter_map(Step::element_id).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Whether an element is part of the plan at all (registered, or added by a planned step).
fn known_element(plan: &Plan, element_id: &ElementId) -> bool {
    plan.elements.contains_key(element_id) || plan.planned_elements.contains_key(element_id)
}

impl Projection {
    /// The posture of `plan_id` on `valid_on`, as recorded at `record`.
    pub fn posture(
        &self,
        plan_id: PlanId,
        valid_on: Date,
        record: RecordPoint,
        what_if: bool,
    ) -> Result<Posture, ProjectionError> {
        self.with_plan(plan_id, |history| {
            history
                .posture_at(history.version_at(record), what_if)
                .on(valid_on)
        })
    }

    /// The findings of `plan_id` as recorded at `record` that hold on some date of `from..=to`
    /// (the plan's horizon where unset), and the version and window judged.
    pub fn findings(
        &self,
        plan_id: PlanId,
        from: Option<Date>,
        to: Option<Date>,
        record: RecordPoint,
        what_if: bool,
    ) -> Result<FindingsAt, ProjectionError> {
        self.with_plan(plan_id, |history| {
            let version = history.version_at(record);
            let state = history.state_at(version)?;
            let from = from.unwrap_or(state.horizon_start);
            let to = to.unwrap_or(state.horizon_end);
            if to < from {
                return Err(ProjectionError::Invalid {
                    field: "to",
                    message: format!("{to} is before {from}"),
                });
            }
            Ok(FindingsAt {
                version,
                from,
                to,
                findings: alliance_domain::findings(&state, from, to, what_if),
            })
        })?
    }

    /// Postures from `from` to `to` (inclusive) every `step`, as recorded at `record`.
    pub fn series(
        &self,
        plan_id: PlanId,
        from: Date,
        to: Date,
        step: SeriesStep,
        record: RecordPoint,
        what_if: bool,
    ) -> Result<Vec<Posture>, ProjectionError> {
        if to < from {
            return Err(ProjectionError::Invalid {
                field: "to",
                message: format!("{to} is before {from}"),
            });
        }
        let months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
        let points = usize::try_from(months).unwrap_or(0) / step.months() as usize + 1;
        if points > MAX_SERIES_POINTS {
            return Err(ProjectionError::Invalid {
                field: "to",
                message: format!(
                    "{points} points asked for; at most {MAX_SERIES_POINTS} per series"
                ),
            });
        }
        self.with_plan(plan_id, |history| {
            let at = history.posture_at(history.version_at(record), what_if);
            let mut dates = Vec::with_capacity(points);
            let mut n = 0;
            while let Some(date) = from.checked_add_months(Months::new(n * step.months())) {
                if date > to {
                    break;
                }
                dates.push(date);
                n += 1;
            }
            dates.into_iter().map(|date| at.on(date)).collect()
        })
    }

    /// What changed in `plan_id` between two record times (`from` before `to`).
    pub fn diff(
        &self,
        plan_id: PlanId,
        from: RecordPoint,
        to: RecordPoint,
    ) -> Result<PlanDiff, ProjectionError> {
        self.with_plan(plan_id, |history| diff(history, from, to))?
    }

    /// The decisions of `plan_id` as recorded at `record` that match `filter`, in id order,
    /// each with its lifecycle.
    pub fn decisions(
        &self,
        plan_id: PlanId,
        record: RecordPoint,
        filter: &DecisionFilter,
    ) -> Result<Vec<DecisionView>, ProjectionError> {
        self.with_plan(plan_id, |history| {
            let version = history.version_at(record);
            let state = history.state_at(version)?;
            let mut lifecycles: BTreeMap<DecisionId, Vec<LifecycleEntry>> = BTreeMap::new();
            for recorded in history.events.range(0, version as usize) {
                if let Some(id) = decision_of(&recorded.event()?) {
                    lifecycles
                        .entry(id.clone())
                        .or_default()
                        .push(entry(recorded));
                }
            }
            Ok(state
                .decisions
                .values()
                .filter(|d| filter.status.is_none_or(|s| d.status == s))
                .filter(|d| {
                    filter
                        .side
                        .is_none_or(|s| d.needed_sides(&state).contains(&s))
                })
                .filter(|d| filter.team.as_ref().is_none_or(|t| d.owner_team == *t))
                .filter(|d| filter.effective_from.is_none_or(|f| d.effective_date >= f))
                .filter(|d| filter.effective_to.is_none_or(|t| d.effective_date <= t))
                .map(|d| DecisionView {
                    decision: (**d).clone(),
                    derived_sides: d.derived_sides(&state),
                    history: lifecycles.get(&d.id).cloned().unwrap_or_default(),
                })
                .collect())
        })?
    }

    /// The events of `plan_id` with `version >= from`, as recorded.
    pub fn events_from(
        &self,
        plan_id: PlanId,
        from: Version,
    ) -> Result<Vec<Recorded>, ProjectionError> {
        self.with_plan(plan_id, |history| {
            let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
            history.events.range_whole(skip, usize::MAX).collect()
        })
    }
}

fn entry(recorded: &Recorded) -> LifecycleEntry {
    LifecycleEntry {
        version: recorded.version,
        event_type: recorded.event.event_type(),
        actor: recorded.command.actor.to_string(),
        record_time_micros: recorded.record_time_micros,
    }
}

fn diff(
    history: &PlanHistory,
    from: RecordPoint,
    to: RecordPoint,
) -> Result<PlanDiff, ProjectionError> {
    let (from_version, to_version) = (history.version_at(from), history.version_at(to));
    if from_version > to_version {
        return Err(ProjectionError::Invalid {
            field: "from",
            message: format!(
                "version {from_version} is after version {to_version}; give the earlier record time first"
            ),
        });
    }
    let (before, after) = (
        history.state_at(from_version)?,
        history.state_at(to_version)?,
    );
    let changed = || {
        history
            .events
            .range(from_version as usize, to_version as usize)
    };
    let mut decisions: BTreeMap<DecisionId, Vec<(Version, &'static str)>> = BTreeMap::new();
    let mut elements: BTreeMap<ElementId, Vec<(Version, &'static str)>> = BTreeMap::new();
    for recorded in changed() {
        let tag = (recorded.version, recorded.event.event_type());
        let event = recorded.event()?;
        if let Some(id) = decision_of(&event) {
            decisions.entry(id.clone()).or_default().push(tag);
        }
        for id in elements_of(&event, &after) {
            let touched = elements.entry(id.clone()).or_default();
            if !touched.contains(&tag) {
                touched.push(tag);
            }
        }
    }
    let decisions = decisions
        .into_iter()
        .map(|(id, events)| DecisionChange {
            title: after
                .decisions
                .get(&id)
                .map(|d| d.title.clone())
                .unwrap_or_default(),
            before: before.decisions.get(&id).map(|d| d.status),
            after: after.decisions.get(&id).map(|d| d.status),
            decision_id: id,
            events,
        })
        .collect();
    let elements = elements
        .into_iter()
        .map(|(id, events)| {
            let kind = match (known_element(&before, &id), known_element(&after, &id)) {
                (false, true) => ElementChangeKind::Added,
                (true, false) => ElementChangeKind::Removed,
                _ => ElementChangeKind::Changed,
            };
            ElementChange {
                element_id: id,
                kind,
                events,
            }
        })
        .collect();
    Ok(PlanDiff {
        plan_id: history.plan_id,
        from_version,
        to_version,
        decisions,
        elements,
        events: changed()
            .map(|r| {
                (
                    r.version,
                    r.event.event_type(),
                    r.command.actor.to_string(),
                    r.record_time_micros,
                )
            })
            .collect(),
    })
}
