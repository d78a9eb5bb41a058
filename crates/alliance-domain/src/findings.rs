//! Findings: where a plan breaks its own prerequisites, the conditions of its OPCON transfer, or
//! its constraints, with the dates each holds and the decisions responsible.
//!
//! Findings are judged on the plan as it stands at one version, adopted or what-if, over its
//! whole timeline; a query narrows them to a window. A finding's `id` names what it is about
//! (`prerequisite:<decision>:<n>`, `conditions:<decision>`, `constraint:<id>`), so adopters
//! acknowledge it by id and a finding can be followed across versions.

use std::collections::BTreeSet;

use crate::conditions::{Constraint, ConstraintRule, Prerequisite};
use crate::ids::{ConditionId, ConstraintId, DecisionId};
use crate::model::{ConditionStatus, Date, Side, Step};
use crate::posture::{capability, shaping};
use crate::state::{Decision, Plan};
use crate::timeline::{ElementTimeline, element_timelines};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// A decision's prerequisite does not hold on the date its first step takes effect.
    Prerequisite,
    /// The OPCON transfer takes effect before its conditions are assessed met.
    TransferConditions,
    /// The posture breaks a plan-level constraint.
    Constraint,
}

/// One way the plan breaks its own rules, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub kind: FindingKind,
    /// The first date it holds.
    pub from: Date,
    /// The first date it no longer holds, if the plan says when.
    pub until: Option<Date>,
    pub message: String,
    /// The decisions responsible: the one whose step breaks the rule, and the one it depends on.
    pub decisions: Vec<DecisionId>,
    pub constraint_id: Option<ConstraintId>,
    /// Whether an adopted decision's adopters acknowledged it.
    pub acknowledged: bool,
}

impl Finding {
    /// Whether it holds on some date of `from..=to`.
    pub fn overlaps(&self, from: Date, to: Date) -> bool {
        self.from <= to && self.until.is_none_or(|until| until > from)
    }
}

/// Every finding of `plan` (adopted decisions, plus proposed ones when `what_if`) that holds on
/// some date of `from..=to`, ordered by date and id.
pub fn findings(plan: &Plan, from: Date, to: Date, what_if: bool) -> Vec<Finding> {
    let mut all = all_findings(plan, what_if);
    all.retain(|f| f.overlaps(from, to));
    all
}

/// Every finding of the plan over its whole timeline.
pub fn all_findings(plan: &Plan, what_if: bool) -> Vec<Finding> {
    let view = View::new(plan, what_if);
    let mut found = Vec::new();
    for decision in &view.shaping {
        view.prerequisite_findings(decision, &mut found);
        view.transfer_findings(decision, &mut found);
    }
    for constraint in plan.constraints.values() {
        view.constraint_findings(constraint, &mut found);
    }
    let acknowledged: BTreeSet<&String> = plan
        .adopted()
        .flat_map(|d| d.acknowledged_findings().iter())
        .collect();
    for finding in &mut found {
        finding.acknowledged = acknowledged.contains(&finding.id);
    }
    found.sort_by(|a, b| (a.from, &a.id).cmp(&(b.from, &b.id)));
    found
}

/// The findings adopting `decision` would add to the adopted plan: those of `after` (the plan
/// with it adopted) that `before` does not have, compared by id and first date.
pub fn new_findings<'a>(before: &[Finding], after: &'a [Finding]) -> Vec<&'a Finding> {
    let known: BTreeSet<(&str, Date)> = before.iter().map(|f| (f.id.as_str(), f.from)).collect();
    after
        .iter()
        .filter(|f| !known.contains(&(f.id.as_str(), f.from)))
        .collect()
}

/// The plan seen through one set of shaping decisions.
struct View<'a> {
    plan: &'a Plan,
    shaping: Vec<&'a Decision>,
    /// Built on first use: only constraints and capability prerequisites need them.
    timelines: std::cell::OnceCell<Vec<ElementTimeline>>,
}

/// The first date a decision's steps take effect (its effective date when it has none).
fn start_of(decision: &Decision) -> Date {
    step_dates(decision)
        .min()
        .unwrap_or(decision.effective_date)
}

/// The date a decision's last step takes effect (its effective date when it has none).
fn done_of(decision: &Decision) -> Date {
    step_dates(decision)
        .max()
        .unwrap_or(decision.effective_date)
}

/// The dates a decision's steps take effect.
fn step_dates(decision: &Decision) -> impl Iterator<Item = Date> + '_ {
    decision.steps.iter().map(Step::date)
}

impl<'a> View<'a> {
    fn new(plan: &'a Plan, what_if: bool) -> Self {
        View {
            plan,
            shaping: shaping(plan, what_if).collect(),
            timelines: std::cell::OnceCell::new(),
        }
    }

    fn timelines(&self) -> &[ElementTimeline] {
        self.timelines
            .get_or_init(|| element_timelines(self.plan, &self.shaping))
    }

    fn shapes(&self, id: &DecisionId) -> bool {
        self.shaping.iter().any(|d| &d.id == id)
    }

    /// The decision that stands for `id`: itself, or what superseded it (followed to the end).
    fn standing_for(&self, id: &DecisionId) -> Option<&'a Decision> {
        let mut current = self.plan.decisions.get(id)?;
        let mut seen = BTreeSet::new();
        while let Some(next) = current.superseded_by() {
            if !seen.insert(next.clone()) {
                break;
            }
            current = self.plan.decisions.get(next)?;
        }
        Some(&**current)
    }

    fn prerequisite_findings(&self, decision: &Decision, found: &mut Vec<Finding>) {
        let start = start_of(decision);
        for (n, prerequisite) in decision.prerequisites().iter().enumerate() {
            let id = format!("prerequisite:{}:{}", decision.id, n + 1);
            let finding = |until, message: String, decisions: Vec<DecisionId>| Finding {
                id: id.clone(),
                kind: FindingKind::Prerequisite,
                from: start,
                until,
                message,
                decisions,
                constraint_id: None,
                acknowledged: false,
            };
            match prerequisite {
                Prerequisite::AfterDecision {
                    decision_id,
                    lag_months,
                } => {
                    let other = self.standing_for(decision_id);
                    let Some(other) = other.filter(|o| self.shapes(&o.id)) else {
                        let status = other.map_or("unknown", |o| o.status.name());
                        found.push(finding(
                            None,
                            format!(
                                "decision {} takes effect on {start} but depends on decision {decision_id}, which is {status}",
                                decision.id
                            ),
                            vec![decision.id.clone(), decision_id.clone()],
                        ));
                        continue;
                    };
                    let done = done_of(other);
                    let required = done
                        .checked_add_months(chrono::Months::new(*lag_months))
                        .unwrap_or(Date::MAX);
                    if start < required {
                        let lag = if *lag_months == 0 {
                            String::new()
                        } else {
                            format!(", {lag_months} months after its last step on {done}")
                        };
                        found.push(finding(
                            Some(required),
                            format!(
                                "decision {} takes effect on {start}, before decision {} allows it (not before {required}{lag})",
                                decision.id, other.id
                            ),
                            vec![decision.id.clone(), other.id.clone()],
                        ));
                    }
                }
                Prerequisite::ConditionsMet { conditions } => {
                    if let Some((until, unmet)) = self.unmet_conditions(conditions, start) {
                        found.push(finding(
                            until,
                            format!(
                                "decision {} takes effect on {start} before its conditions are assessed met: {unmet}",
                                decision.id
                            ),
                            vec![decision.id.clone()],
                        ));
                    }
                }
                Prerequisite::CapabilityReached { side, area, level } => {
                    let have = self.capability_on(*side, *area, start);
                    if have < *level {
                        let until = self
                            .change_dates()
                            .into_iter()
                            .filter(|d| *d > start)
                            .find(|d| self.capability_on(*side, *area, *d) >= *level);
                        found.push(finding(
                            until,
                            format!(
                                "decision {} takes effect on {start} before the {} {area:?} capability reaches {level} (it is {have})",
                                decision.id,
                                side.name()
                            ),
                            vec![decision.id.clone()],
                        ));
                    }
                }
            }
        }
    }

    /// The OPCON transfer's own conditions, judged on the transfer's date.
    fn transfer_findings(&self, decision: &Decision, found: &mut Vec<Finding>) {
        for step in &decision.steps {
            let Step::TransferOpcon { on, conditions } = step else {
                continue;
            };
            if let Some((until, unmet)) = self.unmet_conditions(conditions, *on) {
                found.push(Finding {
                    id: format!("conditions:{}", decision.id),
                    kind: FindingKind::TransferConditions,
                    from: *on,
                    until,
                    message: format!(
                        "wartime OPCON transfers on {on} (decision {}) before its conditions are assessed met: {unmet}",
                        decision.id
                    ),
                    decisions: vec![decision.id.clone()],
                    constraint_id: None,
                    acknowledged: false,
                });
            }
        }
    }

    /// The conditions not assessed met on `on`, described, and the first later date on which
    /// all of them are (if the plan records one).
    fn unmet_conditions(
        &self,
        conditions: &BTreeSet<ConditionId>,
        on: Date,
    ) -> Option<(Option<Date>, String)> {
        let mut unmet = Vec::new();
        let mut until = Some(on);
        for id in conditions {
            let Some(condition) = self.plan.conditions.get(id) else {
                continue;
            };
            let status_on = |date: Date| {
                condition
                    .assessments
                    .iter()
                    .filter(|a| a.assessed_on <= date)
                    .max_by_key(|a| a.assessed_on)
                    .map(|a| a.status)
            };
            let status = status_on(on);
            if status == Some(ConditionStatus::Met) {
                continue;
            }
            let met_from = condition
                .assessments
                .iter()
                .map(|a| a.assessed_on)
                .filter(|d| *d > on)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .find(|d| status_on(*d) == Some(ConditionStatus::Met));
            until = until.zip(met_from).map(|(a, b)| a.max(b));
            let status = match status {
                None => "not assessed",
                Some(ConditionStatus::NotMet) => "not met",
                Some(ConditionStatus::PartiallyMet) => "partially met",
                Some(ConditionStatus::Met) => "met",
            };
            unmet.push(format!("{id} ({status})"));
        }
        (!unmet.is_empty()).then(|| (until, unmet.join(", ")))
    }

    fn capability_on(&self, side: Side, area: crate::model::CapabilityArea, on: Date) -> u32 {
        let steps: Vec<(&DecisionId, &Step)> = self
            .shaping
            .iter()
            .flat_map(|d| d.steps.iter().map(move |s| (&d.id, s)))
            .filter(|(_, s)| s.date() <= on)
            .collect();
        capability(&self.plan.capability_levels, &steps, on)
            .get(&(side, area))
            .copied()
            .unwrap_or(0)
    }

    /// Every date on which the posture can change, in order.
    fn change_dates(&self) -> BTreeSet<Date> {
        let mut dates: BTreeSet<Date> = BTreeSet::new();
        dates.insert(self.plan.horizon_start);
        for timeline in self.timelines() {
            dates.insert(timeline.present_from);
            dates.extend(timeline.steps.iter().map(|(date, _, _)| *date));
        }
        for decision in &self.shaping {
            dates.extend(decision.steps.iter().map(Step::date));
        }
        for dated in self.plan.capability_levels.values() {
            dates.extend(dated.keys().copied());
        }
        for constraint in self.plan.constraints.values() {
            dates.extend(constraint.waivers.iter().map(|w| w.from));
            dates.extend(constraint.since);
        }
        dates
    }

    /// The decisions with a step taking effect on `on`.
    fn acting_on(&self, on: Date) -> Vec<DecisionId> {
        self.shaping
            .iter()
            .filter(|d| d.steps.iter().any(|s| s.date() == on))
            .map(|d| d.id.clone())
            .collect()
    }

    /// Where the constraint is broken on `on`, described; `None` where it holds.
    fn breach(&self, constraint: &Constraint, on: Date) -> Option<String> {
        if constraint.waived_from().is_some_and(|from| from <= on)
            || constraint.since.is_some_and(|since| on < since)
        {
            return None;
        }
        match &constraint.rule {
            ConstraintRule::Personnel {
                side,
                component,
                kind,
                min,
                max,
            } => {
                let total: u64 = self
                    .timelines()
                    .iter()
                    .filter(|t| {
                        t.spec.side == *side
                            && component.is_none_or(|c| c == t.spec.component)
                            && kind.is_none_or(|k| k == t.spec.kind)
                    })
                    .map(|t| t.at(on))
                    .filter(|state| state.present)
                    .map(|state| u64::from(state.personnel))
                    .sum();
                let scope = match (component, kind) {
                    (None, None) => String::new(),
                    (Some(c), None) => format!(" ({c:?})"),
                    (None, Some(k)) => format!(" ({k:?})"),
                    (Some(c), Some(k)) => format!(" ({c:?}, {k:?})"),
                };
                if let Some(min) = min.filter(|min| total < *min) {
                    return Some(format!(
                        "{} personnel{scope} {total} below the floor of {min}",
                        side.name()
                    ));
                }
                max.filter(|max| total > *max).map(|max| {
                    format!(
                        "{} personnel{scope} {total} above the ceiling of {max}",
                        side.name()
                    )
                })
            }
            ConstraintRule::CombinedCapability { area, min } => {
                let combined = self.capability_on(Side::Us, *area, on)
                    + self.capability_on(Side::Rok, *area, on);
                (combined < *min)
                    .then(|| format!("combined {area:?} capability {combined} below {min}"))
            }
        }
    }

    fn constraint_findings(&self, constraint: &Constraint, found: &mut Vec<Finding>) {
        let mut open: Option<(Date, String)> = None;
        let mut close = |open: &mut Option<(Date, String)>, until: Option<Date>| {
            if let Some((from, breach)) = open.take() {
                let mut decisions = self.acting_on(from);
                decisions.sort();
                found.push(Finding {
                    id: format!("constraint:{}", constraint.id),
                    kind: FindingKind::Constraint,
                    from,
                    until,
                    message: format!("{breach} ({}: {})", constraint.id, constraint.title),
                    decisions,
                    constraint_id: Some(constraint.id.clone()),
                    acknowledged: false,
                });
            }
        };
        for on in self.change_dates() {
            match (self.breach(constraint, on), open.is_some()) {
                (Some(breach), false) => open = Some((on, breach)),
                (None, true) => close(&mut open, Some(on)),
                _ => {}
            }
        }
        close(&mut open, None);
    }
}
