//! A force element over valid time: where it starts, every dated step that changes it, and the
//! rules those steps must keep (never negative, never withdrawn twice, nothing after it left).

use crate::EquipmentCounts;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::DomainError;
use crate::ids::{DecisionId, ElementId};
use crate::model::{Date, DecisionStatus, ForceElementSpec, Step};
use crate::posture::{PresentElement, present_element};
use crate::state::{Decision, Plan};

/// An element as it stands on one date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementState {
    pub present: bool,
    pub personnel: u32,
    pub equipment: EquipmentCounts,
    pub base: crate::model::Text,
    /// The date it left, once withdrawn.
    pub withdrawn_on: Option<Date>,
}

/// The valid-time history of one element under a set of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementTimeline {
    pub spec: ForceElementSpec,
    pub present_from: Date,
    /// Steps after the origin, in the order they take effect.
    pub steps: Vec<(Date, DecisionId, Step)>,
}

/// Order of steps that share a date: arrive, change, then leave.
fn rank(step: &Step) -> u8 {
    match step {
        Step::AddElement { .. } => 0,
        Step::WithdrawElement { .. } => 2,
        _ => 1,
    }
}

impl ElementTimeline {
    /// Builds the timeline of `element_id` from the steps of adopted decisions (except those in
    /// `excluded`) plus `extra` steps, checking every rule. `Ok(None)` if nothing introduces the
    /// element.
    pub fn build<'a>(
        plan: &'a Plan,
        element_id: &ElementId,
        extra: impl IntoIterator<Item = (&'a DecisionId, &'a Step)>,
        excluded: &BTreeSet<DecisionId>,
    ) -> Result<Option<Self>, DomainError> {
        let steps: Vec<(&DecisionId, &Step)> = plan
            .adopted()
            .filter(|d| !excluded.contains(&d.id))
            .flat_map(|d| d.steps.iter().map(move |s| (&d.id, s)))
            .chain(extra)
            .filter(|(_, s)| s.element_id() == Some(element_id))
            .collect();
        Self::from_steps(plan, element_id, steps)
    }

    /// Builds the timeline of `element_id` from `steps`, which must be exactly the steps that
    /// concern it (in any order), checking every rule. For callers that group the steps of many
    /// elements in one pass.
    pub fn from_steps(
        plan: &Plan,
        element_id: &ElementId,
        mut steps: Vec<(&DecisionId, &Step)>,
    ) -> Result<Option<Self>, DomainError> {
        steps.sort_by_key(|(_, s)| (s.date(), rank(s)));
        let added_on = steps.iter().find_map(|(_, s)| match s {
            Step::AddElement { on, .. } => Some(*on),
            _ => None,
        });

        let mut origin = plan
            .elements
            .get(element_id)
            .map(|e| (e.spec.clone(), e.present_from));
        let mut timeline_steps = Vec::new();
        let mut state: Option<ElementState> = origin.as_ref().map(|(spec, _)| initial(spec));
        for (decision_id, step) in steps {
            let date = step.date();
            if let Step::AddElement { element, on } = step {
                if origin.is_some() {
                    return Err(DomainError::already_exists("force element", element_id));
                }
                origin = Some((element.clone(), *on));
                state = Some(initial(element));
                continue;
            }
            let (Some((_, present_from)), Some(current)) = (&origin, state.as_mut()) else {
                let arrival = added_on.filter(|on| date < *on);
                return Err(match arrival {
                    Some(on) => DomainError::rule(
                        "before_present",
                        format!(
                            "force element {element_id} is not present before {on}; the step is dated {date}"
                        ),
                    ),
                    None => DomainError::rule(
                        "element_not_present",
                        format!(
                            "force element {element_id} is not present: no adopted decision adds it"
                        ),
                    ),
                });
            };
            if date < *present_from {
                return Err(DomainError::rule(
                    "before_present",
                    format!(
                        "force element {element_id} is not present before {present_from}; the step is dated {date}"
                    ),
                ));
            }
            if let Some(left) = current.withdrawn_on {
                return Err(if matches!(step, Step::WithdrawElement { .. }) {
                    DomainError::rule(
                        "withdrawn_twice",
                        format!("force element {element_id} is already withdrawn on {left}"),
                    )
                } else {
                    DomainError::rule(
                        "after_withdrawal",
                        format!(
                            "force element {element_id} left on {left}; it cannot change on {date}"
                        ),
                    )
                });
            }
            apply(element_id, current, step, date)?;
            timeline_steps.push((date, decision_id.clone(), step.clone()));
        }
        Ok(origin.map(|(spec, present_from)| ElementTimeline {
            spec,
            present_from,
            steps: timeline_steps,
        }))
    }

    /// The element as it stands on `date`.
    pub fn at(&self, date: Date) -> ElementState {
        let mut state = initial(&self.spec);
        state.present = date >= self.present_from;
        for (on, _, step) in &self.steps {
            if *on > date {
                break;
            }
            // Every step was checked when the timeline was built.
            let _ = apply(&self.spec.id, &mut state, step, *on);
        }
        state
    }
}

fn initial(spec: &ForceElementSpec) -> ElementState {
    ElementState {
        present: true,
        personnel: spec.personnel,
        equipment: spec.equipment.clone(),
        base: spec.base.clone(),
        withdrawn_on: None,
    }
}

fn apply(
    element_id: &ElementId,
    state: &mut ElementState,
    step: &Step,
    date: Date,
) -> Result<(), DomainError> {
    match step {
        Step::WithdrawElement { .. } => {
            state.present = false;
            state.withdrawn_on = Some(date);
        }
        Step::ReduceElement {
            personnel,
            equipment,
            ..
        } => {
            state.personnel = state.personnel.checked_sub(*personnel).ok_or_else(|| {
                DomainError::rule(
                    "negative_personnel",
                    format!(
                        "reducing force element {element_id} by {personnel} on {date} would leave negative personnel (it has {})",
                        state.personnel
                    ),
                )
            })?;
            for (kind, count) in equipment {
                let have = state.equipment.get(kind).copied().unwrap_or(0);
                let left = have.checked_sub(*count).ok_or_else(|| {
                    DomainError::rule(
                        "negative_equipment",
                        format!(
                            "reducing {kind} of force element {element_id} by {count} on {date} would leave a negative count (it has {have})"
                        ),
                    )
                })?;
                state.equipment.insert(kind.clone(), left);
            }
        }
        Step::RelocateElement { to_base, .. } => state.base = to_base.as_str().into(),
        _ => {}
    }
    Ok(())
}

/// The timeline of every element of `plan` under the `shaping` decisions, in id order: the
/// adopted decisions' steps, plus the proposed ones (a what-if view), which are left out for an
/// element whose timeline they would break. Elements nothing introduces are absent.
pub fn element_timelines(plan: &Plan, shaping: &[&Decision]) -> Vec<ElementTimeline> {
    let ids: BTreeSet<&ElementId> = plan
        .elements
        .keys()
        .chain(plan.planned_elements.keys())
        .collect();
    // The steps of every element, grouped in one pass: adopted ones, and proposed ones apart.
    let mut adopted: BTreeMap<&ElementId, Vec<(&DecisionId, &Step)>> = BTreeMap::new();
    let mut proposed: BTreeMap<&ElementId, Vec<(&DecisionId, &Step)>> = BTreeMap::new();
    for decision in shaping {
        let group = if decision.status == DecisionStatus::Adopted {
            &mut adopted
        } else {
            &mut proposed
        };
        for step in &decision.steps {
            if let Some(element) = step.element_id() {
                group.entry(element).or_default().push((&decision.id, step));
            }
        }
    }
    ids.into_iter()
        .filter_map(|id| {
            element_timeline(
                plan,
                id,
                adopted.get(id).cloned().unwrap_or_default(),
                proposed.get(id).cloned(),
            )
        })
        .collect()
}

/// The timeline of one element from the adopted decisions' steps that concern it and, for a
/// what-if view, the proposed ones (`Some`, possibly empty), which are left out if they would
/// break it. `None` if nothing introduces the element. Each list is in decision id order; on a
/// shared date and kind, adopted steps take effect before proposed ones.
pub fn element_timeline<'a>(
    plan: &'a Plan,
    element_id: &ElementId,
    adopted: Vec<(&'a DecisionId, &'a Step)>,
    proposed: Option<Vec<(&'a DecisionId, &'a Step)>>,
) -> Option<ElementTimeline> {
    let with_proposed = proposed.filter(|extra| !extra.is_empty()).map(|extra| {
        let mut all = adopted.clone();
        all.extend(extra);
        all
    });
    with_proposed
        .and_then(|all| ElementTimeline::from_steps(plan, element_id, all).ok())
        .unwrap_or_else(|| {
            ElementTimeline::from_steps(plan, element_id, adopted)
                .ok()
                .flatten()
        })
}

impl ElementTimeline {
    /// The element as a posture lists it from each date on which it changes: from the date it
    /// is present, then after each step (`None` once it has left). Its state on a date is the
    /// last entry dated on or before it; before the first, it is not present.
    /// The states share what a step leaves as it was (the name, the equipment, the base).
    pub fn changes(&self) -> Vec<(Date, Option<PresentElement>)> {
        let mut state = initial(&self.spec);
        let mut changes = Vec::with_capacity(self.steps.len() + 1);
        let first = present_element(&self.spec, state.clone());
        let mut last = first.clone();
        changes.push((self.present_from, first));
        for (on, _, step) in &self.steps {
            // Every step was checked when the timeline was built.
            let _ = apply(&self.spec.id, &mut state, step, *on);
            let now = match &last {
                Some(last) if state.present => Some(PresentElement {
                    named: last.named.clone(),
                    personnel: state.personnel,
                    equipment: if *last.equipment == state.equipment {
                        last.equipment.clone()
                    } else {
                        Arc::new(state.equipment.clone())
                    },
                    base: if *last.base == *state.base {
                        last.base.clone()
                    } else {
                        state.base.as_str().into()
                    },
                    ..*last
                }),
                _ => present_element(&self.spec, state.clone()),
            };
            if now.is_some() {
                last = now.clone();
            }
            changes.push((*on, now));
        }
        changes
    }
}
