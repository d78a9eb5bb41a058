//! What a run simulates: a plan, as it stands at one version (with the proposed decisions of a
//! what-if run and any unsaved overlay), turned into the numbers the engine needs.

use std::collections::BTreeSet;

use alliance_domain::{
    Actor, CapabilityArea, Command, CommandContext, ConditionId, ConditionStatus, Date, Decision,
    DecisionId, DecisionStatus, DomainError, ElementId, ElementKind, InvestmentId, Mission, Plan,
    Side, Step, decide, element_timelines, evolve,
};
use chrono::{Datelike, Months};

use crate::model::{AREAS, Distribution, ModelData, area_index};

/// Months since the window's first day; fractions within a month.
pub type MonthTime = f64;

/// Where a date falls in a window that starts on `start` (the first of a month).
pub fn month_time(start: Date, date: Date) -> MonthTime {
    let months = (date.year() - start.year()) * 12 + date.month0() as i32 - start.month0() as i32;
    let days = days_in_month(date);
    f64::from(months) + f64::from(date.day0()) / f64::from(days)
}

fn days_in_month(date: Date) -> u32 {
    let first = date.with_day(1).unwrap_or(date);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    u32::try_from((next - first).num_days()).unwrap_or(30)
}

/// The first day of the `m`-th month of a window.
pub fn month_date(start: Date, m: u32) -> Date {
    start.checked_add_months(Months::new(m)).unwrap_or(start)
}

/// One change of a U.S. element's strength: on `at`, its personnel becomes `personnel`.
#[derive(Clone, Debug, PartialEq)]
pub struct StrengthChange {
    pub at: MonthTime,
    pub date: Date,
    pub personnel: f64,
    /// The decision whose step it is (none for a baseline element's arrival).
    pub decision: Option<DecisionId>,
    /// Index into [`Scenario::slipping`]: the decision whose execution may slip.
    pub group: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ElementInput {
    pub id: ElementId,
    pub kind: ElementKind,
    /// Weight of one person in each area (by [`AREAS`] index).
    pub weights: [f64; AREAS.len()],
    /// Personnel at the window's start.
    pub personnel: f64,
    pub changes: Vec<StrengthChange>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AreaInput {
    pub area: CapabilityArea,
    /// The U.S. level recorded at the start (latest on or before it).
    pub us_level: f64,
    /// The part of `us_level` from off the peninsula: it does not scale with stationed strength.
    pub us_off_peninsula: f64,
    /// The ROK level recorded at the start, and the date it was recorded as of.
    pub rok_level: f64,
    pub rok_as_of: Option<Date>,
    pub required: f64,
    pub growth_per_year: Distribution,
}

impl AreaInput {
    /// The U.S. level from off the peninsula (at most the level recorded).
    pub fn off_peninsula(&self) -> f64 {
        self.us_off_peninsula.clamp(0.0, self.us_level)
    }

    /// The U.S. level of the forces stationed on the peninsula: what withdrawals take away.
    pub fn stationed(&self) -> f64 {
        self.us_level - self.off_peninsula()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct InvestmentInput {
    pub id: InvestmentId,
    pub decision: DecisionId,
    pub area: usize,
    pub gain: f64,
    pub delivery: Date,
    /// Scheduled delivery, in window months.
    pub at: MonthTime,
    pub fielding_months: f64,
    pub delay_months: Distribution,
}

/// How a condition is judged in each month of each trial.
#[derive(Clone, Debug, PartialEq)]
pub enum Criterion {
    /// The ROK (or combined) level in an area reaches a threshold.
    Level {
        area: usize,
        threshold: f64,
        combined: bool,
    },
    /// No measurable criterion: the plan's assessments decide, month by month (met or not,
    /// the same in every trial).
    Assessed { met: Vec<bool> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConditionInput {
    pub id: ConditionId,
    pub title: String,
    pub criterion: Criterion,
    /// How the criterion reads, for people.
    pub describe: String,
}

/// The scheduled wartime OPCON transfer.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    pub decision: DecisionId,
    pub on: Date,
    pub at: MonthTime,
}

/// Everything a run needs, with no reference to the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub start: Date,
    pub months: u32,
    pub areas: Vec<AreaInput>,
    pub elements: Vec<ElementInput>,
    /// Decisions whose element steps slip together, with the slip distribution.
    pub slipping: Vec<DecisionId>,
    pub slip_months: Distribution,
    pub investments: Vec<InvestmentInput>,
    pub conditions: Vec<ConditionInput>,
    pub transfer: Option<Transfer>,
    pub likely: f64,
    pub confidence: f64,
    /// Per month, per area: whether the U.S. level counts toward the area's coverage. The
    /// operational plans decide: an area whose mission the ROK leads with no U.S. support is
    /// covered by the ROK alone (months before any assignment count the U.S., as the CFC does).
    pub us_counts: Vec<[bool; AREAS.len()]>,
}

/// The mission of the operational plans that covers a capability area.
pub fn mission_of(area: CapabilityArea) -> Mission {
    match area {
        CapabilityArea::GroundCombat
        | CapabilityArea::AirSuperiority
        | CapabilityArea::MissileDefense
        | CapabilityArea::CommandAndControl => Mission::MajorCombat,
        CapabilityArea::CombatSupport | CapabilityArea::Munitions => Mission::CombatSupport,
        CapabilityArea::Isr => Mission::Intelligence,
        CapabilityArea::Logistics => Mission::Logistics,
        CapabilityArea::ExtendedDeterrence => Mission::ExtendedDeterrence,
    }
}

/// Whether the U.S. leads or supports `mission` on `on`, under the shaping decisions; true when
/// no step has assigned it yet.
fn us_covers(decisions: &[&Decision], mission: Mission, on: Date) -> bool {
    decisions
        .iter()
        .flat_map(|d| d.steps.iter().map(move |s| (&d.id, s)))
        .filter_map(|(id, s)| match s {
            Step::AssignMission {
                mission: m,
                lead,
                supporting,
                on: from,
            } if *m == mission && *from <= on => Some(((*from, id), *lead, *supporting)),
            _ => None,
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .is_none_or(|(_, lead, supporting)| lead == Side::Us || supporting == Some(Side::Us))
}

/// The window a run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Date,
    pub months: u32,
}

impl Window {
    /// `start` moved to the first of its month; at least one month.
    pub fn new(start: Date, months: u32) -> Self {
        Window {
            start: start.with_day(1).unwrap_or(start),
            months: months.max(1),
        }
    }
}

/// Applies unsaved proposed decisions to a copy of `plan`, exactly as the command service
/// would decide them for `actor`; the plan itself is never touched. Returns the plan with the
/// overlay and the ids of the overlay's decisions.
pub fn apply_overlay(
    plan: &Plan,
    overlay: &[Command],
    actor: &Actor,
) -> Result<(Plan, BTreeSet<DecisionId>), DomainError> {
    let ctx = CommandContext {
        actor: actor.clone(),
    };
    let mut plan = plan.clone();
    let mut ids = BTreeSet::new();
    for (index, command) in overlay.iter().enumerate() {
        match command {
            Command::ProposeDecision { decision_id, .. } => {
                ids.insert(decision_id.clone());
            }
            Command::PlanStep { decision_id, .. } if ids.contains(decision_id) => {}
            Command::PlanStep { decision_id, .. } => {
                return Err(DomainError::invalid(
                    format!("overlay[{index}]"),
                    format!("a step of {decision_id}, which the overlay does not propose"),
                ));
            }
            other => {
                return Err(DomainError::invalid(
                    format!("overlay[{index}]"),
                    format!(
                        "{} is not allowed: an overlay holds proposed decisions and their steps",
                        other.name()
                    ),
                ));
            }
        }
        for event in decide(&plan, command, &ctx)? {
            plan = evolve(plan, &event);
        }
    }
    Ok((plan, ids))
}

/// The decisions a run applies: adopted ones, the proposed ones of a what-if run, and the
/// overlay's.
fn shaping<'a>(
    plan: &'a Plan,
    what_if: bool,
    overlay: &'a BTreeSet<DecisionId>,
) -> impl Iterator<Item = &'a Decision> + 'a {
    plan.decisions.values().map(|d| &**d).filter(move |d| {
        d.status == DecisionStatus::Adopted
            || (d.status == DecisionStatus::Proposed && (what_if || overlay.contains(&d.id)))
    })
}

/// Builds the scenario of `plan` (already at the version simulated, overlay applied).
pub fn scenario(
    plan: &Plan,
    what_if: bool,
    overlay: &BTreeSet<DecisionId>,
    model: &ModelData,
    window: Window,
) -> Scenario {
    let Window { start, months } = window;
    let decisions: Vec<&Decision> = shaping(plan, what_if, overlay).collect();

    let areas = AREAS
        .iter()
        .map(|&area| {
            let recorded = |side| {
                plan.capability_levels
                    .get(&(side, area))
                    .and_then(|dated| dated.range(..=start).next_back())
                    .map(|(as_of, level)| (*as_of, f64::from(*level)))
            };
            let rok = recorded(Side::Rok);
            let area_model = &model.areas[&area];
            AreaInput {
                area,
                us_level: recorded(Side::Us).map_or(0.0, |(_, level)| level),
                us_off_peninsula: area_model.us_off_peninsula,
                rok_level: rok.map_or(0.0, |(_, level)| level),
                rok_as_of: rok.map(|(as_of, _)| as_of),
                required: area_model.required,
                growth_per_year: area_model.growth_per_year.clone(),
            }
        })
        .collect::<Vec<_>>();

    let (elements, slipping) = us_elements(plan, &decisions, model, window);

    let mut investments: Vec<InvestmentInput> = decisions
        .iter()
        .flat_map(|d| d.steps.iter().map(move |s| (d, s)))
        .filter_map(|(d, step)| match step {
            Step::InvestCapability {
                investment_id,
                area,
                level_gain,
                delivery,
                ..
            } => {
                let index = area_index(*area);
                // A delivery before the level recorded at the start is already in that level.
                let counted = areas[index].rok_as_of.is_none_or(|as_of| *delivery > as_of);
                let programme = model.programme(investment_id.as_str());
                counted.then(|| InvestmentInput {
                    id: investment_id.clone(),
                    decision: d.id.clone(),
                    area: index,
                    gain: f64::from(*level_gain),
                    delivery: *delivery,
                    at: month_time(start, *delivery),
                    fielding_months: programme.fielding_months,
                    delay_months: programme.delay_months.clone(),
                })
            }
            _ => None,
        })
        .collect();
    investments.sort_by(|a, b| a.id.cmp(&b.id));

    let transfer = decisions
        .iter()
        .flat_map(|d| d.steps.iter().map(move |s| (d, s)))
        .filter_map(|(d, step)| match step {
            Step::TransferOpcon { on, conditions } => Some((d.id.clone(), *on, conditions)),
            _ => None,
        })
        .max_by_key(|(id, on, _)| (*on, id.clone()));
    let named: Option<&BTreeSet<ConditionId>> = transfer.as_ref().map(|(_, _, c)| *c);
    let conditions = plan
        .conditions
        .values()
        .filter(|c| named.is_none_or(|named| named.contains(&c.id)))
        .map(|c| {
            let from_model = model.conditions.get(c.id.as_str());
            let (criterion, describe) = match (from_model, c.area, c.threshold) {
                (Some(m), _, _) => (
                    Criterion::Level {
                        area: area_index(m.area),
                        threshold: m.threshold,
                        combined: m.combined,
                    },
                    format!(
                        "{} {} level >= {} (model data)",
                        if m.combined { "combined" } else { "ROK" },
                        area_name(m.area),
                        m.threshold
                    ),
                ),
                (None, Some(area), Some(threshold)) => (
                    Criterion::Level {
                        area: area_index(area),
                        threshold: f64::from(threshold),
                        combined: false,
                    },
                    format!("ROK {} level >= {threshold} (plan)", area_name(area)),
                ),
                (None, _, _) => (
                    Criterion::Assessed {
                        met: (0..months)
                            .map(|m| {
                                let on = month_date(start, m);
                                c.assessments
                                    .iter()
                                    .filter(|a| a.assessed_on <= on)
                                    .max_by_key(|a| a.assessed_on)
                                    .is_some_and(|a| a.status == ConditionStatus::Met)
                            })
                            .collect(),
                    },
                    "assessed as met by the plan's latest assessment".to_owned(),
                ),
            };
            ConditionInput {
                id: c.id.clone(),
                title: c.title.clone(),
                criterion,
                describe,
            }
        })
        .collect();

    Scenario {
        start,
        months,
        areas,
        elements,
        slipping,
        slip_months: model.withdrawals.slip_months.clone(),
        investments,
        conditions,
        transfer: transfer.map(|(decision, on, _)| Transfer {
            decision,
            on,
            at: month_time(start, on),
        }),
        likely: model.defaults.likely,
        confidence: model.defaults.confidence,
        us_counts: (0..months)
            .map(|m| {
                let on = month_date(start, m);
                AREAS.map(|area| us_covers(&decisions, mission_of(area), on))
            })
            .collect(),
    }
}

/// A readable area name.
pub fn area_name(area: CapabilityArea) -> String {
    format!("{area:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let space = (i > 0 && c.is_uppercase()).then_some(' ');
            space.into_iter().chain(c.to_lowercase())
        })
        .collect()
}

/// The U.S. elements, with their strength at the start and every later change, and the
/// decisions whose steps change them.
fn us_elements(
    plan: &Plan,
    decisions: &[&Decision],
    model: &ModelData,
    window: Window,
) -> (Vec<ElementInput>, Vec<DecisionId>) {
    let mut slipping: Vec<DecisionId> = Vec::new();
    let mut elements = Vec::new();
    for timeline in element_timelines(plan, decisions) {
        let id = &timeline.spec.id;
        if timeline.spec.side != Side::Us {
            continue;
        }
        let mut weights = [0.0; AREAS.len()];
        if let Some(by_area) = model.contributions.get(&timeline.spec.kind) {
            for (area, weight) in by_area {
                weights[area_index(*area)] = *weight;
            }
        }
        let strength = |date: Date| {
            let state = timeline.at(date);
            if state.present {
                f64::from(state.personnel)
            } else {
                0.0
            }
        };
        // Its arrival counts as a change when it is in the window: an addition slips with its
        // decision, a registered baseline element does not.
        let arrival = (timeline.present_from > window.start).then(|| {
            (
                timeline.present_from,
                plan.planned_elements.get(id).cloned(),
            )
        });
        let steps = timeline
            .steps
            .iter()
            .map(|(date, decision, _)| (*date, Some(decision.clone())));
        let mut changes = Vec::new();
        for (date, decision) in arrival
            .into_iter()
            .chain(steps)
            .filter(|(date, _)| *date > window.start)
        {
            let group = decision.as_ref().map(|decision| {
                slipping
                    .iter()
                    .position(|d| d == decision)
                    .unwrap_or_else(|| {
                        slipping.push(decision.clone());
                        slipping.len() - 1
                    })
            });
            changes.push(StrengthChange {
                at: month_time(window.start, date),
                date,
                personnel: strength(date),
                decision,
                group,
            });
        }
        elements.push(ElementInput {
            id: id.clone(),
            kind: timeline.spec.kind,
            weights,
            personnel: strength(window.start),
            changes,
        });
    }
    (elements, slipping)
}
