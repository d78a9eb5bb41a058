//! The posture: everything a plan says about one date of its timeline (valid time), as the
//! plan stands at one version (record time). Only adopted decisions shape it; a what-if view
//! adds the proposed ones.

use crate::EquipmentCounts;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::{ClauseId, ConditionId, DecisionId, ElementId, Version};
use crate::model::{
    AgreementKind, CapabilityArea, ClauseStatus, Component, ConditionStatus, Date, DecisionStatus,
    ElementKind, ForceElementSpec, Mission, Side, Step,
};
use crate::state::{AgreementClause, CapabilityLevels, Condition, Decision, Plan, Shared};
use crate::timeline::{ElementState, element_timelines};

/// One force element present on the date. What does not change from one of its states to the
/// next is shared, not copied: its id and name (`named`; the element reads as them, `e.id`,
/// `e.name`), its equipment counts while they hold, and its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentElement {
    pub named: Arc<ElementName>,
    pub side: Side,
    pub component: Component,
    pub kind: ElementKind,
    pub personnel: u32,
    pub equipment: Equipment,
    pub base: Arc<str>,
}

/// A force element's id and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ElementName {
    pub id: ElementId,
    pub name: crate::model::Text,
}

/// Major equipment by kind. Shared: a read model keeps one map for equal counts, and a
/// posture sums a map shared by several elements of one side once.
pub type Equipment = Arc<EquipmentCounts>;

impl std::ops::Deref for PresentElement {
    type Target = ElementName;

    fn deref(&self) -> &ElementName {
        &self.named
    }
}

/// Who holds OPCON and commands the CFC; `None` where the plan says nothing yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandArrangement {
    pub peacetime_opcon: Option<Side>,
    pub wartime_opcon: Option<Side>,
    pub cfc_commander: Option<Side>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClauseState {
    pub id: ClauseId,
    pub agreement: AgreementKind,
    pub title: String,
    pub status: ClauseStatus,
    /// The date the status took effect.
    pub since: Date,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    pub id: ConditionId,
    pub title: String,
    /// The latest assessment made on or before the date.
    pub assessed_on: Option<Date>,
    pub status: Option<ConditionStatus>,
    pub value: Option<u32>,
}

/// Who leads a mission of the operational plans on the date, and who supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissionState {
    pub mission: Mission,
    pub lead: Side,
    pub supporting: Option<Side>,
    /// The date the assignment took effect.
    pub since: Date,
}

/// The posture of a plan on one date, as the plan stands at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posture {
    pub valid_on: Date,
    pub version: Version,
    /// Whether proposed decisions were included (a what-if view).
    pub what_if: bool,
    /// Shared: a read model keeps each element's states and hands them out as they are.
    pub elements: Vec<Arc<PresentElement>>,
    /// Totals are `u64`: no count of elements at their bounds overflows them.
    pub personnel: BTreeMap<(Side, Component, ElementKind), u64>,
    pub equipment: BTreeMap<(Side, String), u64>,
    /// Capability level (0–100) by side and area: the latest recorded level plus what
    /// investments delivered since that record added.
    pub capability: BTreeMap<(Side, CapabilityArea), u32>,
    pub command: CommandArrangement,
    /// The operational plans' missions, by mission: those some step has assigned by the date.
    pub missions: Vec<MissionState>,
    pub clauses: Vec<ClauseState>,
    pub conditions: Vec<ConditionState>,
    /// The decisions whose steps took effect by the date, in id order.
    pub decisions: Vec<DecisionId>,
}

impl Posture {
    /// Total personnel of one side.
    pub fn personnel_of(&self, side: Side) -> u64 {
        self.personnel
            .iter()
            .filter(|((s, _, _), _)| *s == side)
            .map(|(_, n)| *n)
            .sum()
    }
}

/// The decisions that shape the posture: adopted, plus proposed ones for a what-if view.
pub(crate) fn shaping(plan: &Plan, what_if: bool) -> impl Iterator<Item = &Decision> {
    plan.decisions.values().map(|d| &**d).filter(move |d| {
        d.status == DecisionStatus::Adopted || (what_if && d.status == DecisionStatus::Proposed)
    })
}

/// The posture of `plan` on `valid_on`.
pub fn posture(plan: &Plan, valid_on: Date, what_if: bool) -> Posture {
    let shaping: Vec<&Decision> = shaping(plan, what_if).collect();
    let elements = present_elements(plan, &shaping, valid_on);
    PostureSource {
        version: plan.version,
        shaping: shaping
            .iter()
            .map(|d| Shaping {
                id: &d.id,
                from: first_date(&d.steps),
                steps: &d.steps,
            })
            .collect(),
        clauses: &plan.clauses,
        conditions: &plan.conditions,
        capability_levels: &plan.capability_levels,
    }
    .posture(valid_on, what_if, elements)
}

/// What a posture is made of besides its elements, as a plan stands at one version: the
/// steps of the decisions that shape it and the plan's clauses, conditions and recorded
/// capability levels. A read model that keeps these per version answers a posture without
/// folding the plan's events.
pub struct PostureSource<'a> {
    pub version: Version,
    /// The shaping decisions, in id order.
    pub shaping: Vec<Shaping<'a>>,
    pub clauses: &'a Shared<ClauseId, AgreementClause>,
    pub conditions: &'a Shared<ConditionId, Condition>,
    pub capability_levels: &'a CapabilityLevels,
}

/// A decision that shapes a posture, as the posture reads it.
#[derive(Clone, Copy, Debug)]
pub struct Shaping<'a> {
    pub id: &'a DecisionId,
    /// The date its first step takes effect (`None`: it has no step yet).
    pub from: Option<Date>,
    /// Its steps. Those that concern one element may be left out: the elements' own states
    /// (`PostureSource::posture`'s `elements`) already say what they did.
    pub steps: &'a [Step],
}

/// The date the first of `steps` takes effect.
pub fn first_date(steps: &[Step]) -> Option<Date> {
    steps.iter().map(Step::date).min()
}

impl PostureSource<'_> {
    /// The posture on `valid_on`, given the elements present on it (in id order).
    pub fn posture(
        &self,
        valid_on: Date,
        what_if: bool,
        elements: Vec<Arc<PresentElement>>,
    ) -> Posture {
        // Steps of the shaping decisions in the order they take effect on the timeline (by
        // date, then decision id: the sort is stable and the decisions are in id order).
        let mut steps: Vec<(&DecisionId, &Step)> = self
            .shaping
            .iter()
            .flat_map(|d| d.steps.iter().map(move |s| (d.id, s)))
            .filter(|(_, s)| s.date() <= valid_on)
            .collect();
        steps.sort_by_key(|(_, s)| s.date());
        let mut personnel = BTreeMap::new();
        // Each side's elements that share one equipment map (a read model shares equal maps)
        // are summed as one, the map read once.
        let mut maps: Vec<(Side, &Equipment)> = Vec::with_capacity(elements.len());
        for e in &elements {
            *personnel.entry((e.side, e.component, e.kind)).or_insert(0) += u64::from(e.personnel);
            if !e.equipment.is_empty() {
                maps.push((e.side, &e.equipment));
            }
        }
        maps.sort_unstable_by_key(|(side, map)| (*side, Arc::as_ptr(map) as usize));
        // Summed under borrowed names; each name is copied once, not once per element.
        let mut equipment: BTreeMap<(Side, &str), u64> = BTreeMap::new();
        for shared in maps.chunk_by(|a, b| a.0 == b.0 && Arc::ptr_eq(a.1, b.1)) {
            let (side, map) = shared[0];
            let holders = shared.len() as u64;
            for (kind, count) in map.iter() {
                *equipment.entry((side, kind.as_str())).or_insert(0) += u64::from(*count) * holders;
            }
        }
        let equipment: BTreeMap<(Side, String), u64> = equipment
            .into_iter()
            .map(|((side, kind), count)| ((side, kind.to_owned()), count))
            .collect();

        let mut command = CommandArrangement::default();
        let mut amendments: BTreeMap<&ClauseId, (ClauseStatus, Date)> = BTreeMap::new();
        let mut missions: BTreeMap<Mission, MissionState> = BTreeMap::new();
        for (_, step) in &steps {
            match step {
                Step::ChangeCommandArrangement {
                    peacetime_opcon,
                    wartime_opcon,
                    cfc_commander,
                    ..
                } => {
                    command.peacetime_opcon = peacetime_opcon.or(command.peacetime_opcon);
                    command.wartime_opcon = wartime_opcon.or(command.wartime_opcon);
                    command.cfc_commander = cfc_commander.or(command.cfc_commander);
                }
                Step::TransferOpcon { .. } => {
                    command.wartime_opcon = Some(Side::Rok);
                    command.cfc_commander = Some(Side::Rok);
                }
                Step::AmendClause {
                    clause_id,
                    status,
                    on,
                } => {
                    amendments.insert(clause_id, (*status, *on));
                }
                Step::AssignMission {
                    mission,
                    lead,
                    supporting,
                    on,
                } => {
                    missions.insert(
                        *mission,
                        MissionState {
                            mission: *mission,
                            lead: *lead,
                            supporting: *supporting,
                            since: *on,
                        },
                    );
                }
                _ => {}
            }
        }

        let capability = capability(self.capability_levels, &steps, valid_on);
        let clauses = self
            .clauses
            .values()
            .filter_map(|c| {
                let (status, since) = match amendments.get(&c.id) {
                    Some(amended) => *amended,
                    None if c.since <= valid_on => (c.status, c.since),
                    None => return None,
                };
                Some(ClauseState {
                    id: c.id.clone(),
                    agreement: c.agreement,
                    title: c.title.clone(),
                    status,
                    since,
                })
            })
            .collect();
        let conditions = self
            .conditions
            .values()
            .map(|c| {
                let latest = c
                    .assessments
                    .iter()
                    .filter(|a| a.assessed_on <= valid_on)
                    .max_by_key(|a| a.assessed_on);
                ConditionState {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    assessed_on: latest.map(|a| a.assessed_on),
                    status: latest.map(|a| a.status),
                    value: latest.and_then(|a| a.value),
                }
            })
            .collect();
        // In id order, as the shaping decisions are.
        let decisions: Vec<DecisionId> = self
            .shaping
            .iter()
            .filter(|d| d.from.is_some_and(|from| from <= valid_on))
            .map(|d| d.id.clone())
            .collect();

        Posture {
            valid_on,
            version: self.version,
            what_if,
            elements,
            personnel,
            equipment,
            capability,
            command,
            missions: missions.into_values().collect(),
            clauses,
            conditions,
            decisions,
        }
    }
}

/// The elements present on `valid_on`, in id order.
fn present_elements(
    plan: &Plan,
    shaping: &[&Decision],
    valid_on: Date,
) -> Vec<Arc<PresentElement>> {
    element_timelines(plan, shaping)
        .into_iter()
        .filter_map(|timeline| present_element(&timeline.spec, timeline.at(valid_on)))
        .map(Arc::new)
        .collect()
}

/// The element as the posture lists it, if it is present.
pub fn present_element(spec: &ForceElementSpec, state: ElementState) -> Option<PresentElement> {
    state.present.then(|| PresentElement {
        named: Arc::new(ElementName {
            id: spec.id.clone(),
            name: spec.name.clone(),
        }),
        side: spec.side,
        component: spec.component,
        kind: spec.kind,
        personnel: state.personnel,
        equipment: Arc::new(state.equipment),
        base: state.base.into(),
    })
}

/// Per side and area: the latest level recorded on or before `valid_on`, plus the gains of
/// ROK investments delivered after that record and by `valid_on`.
pub(crate) fn capability(
    levels: &CapabilityLevels,
    steps: &[(&DecisionId, &Step)],
    valid_on: Date,
) -> BTreeMap<(Side, CapabilityArea), u32> {
    let mut levels: BTreeMap<(Side, CapabilityArea), (u32, Option<Date>)> = levels
        .iter()
        .filter_map(|(key, dated)| {
            let (as_of, level) = dated.range(..=valid_on).next_back()?;
            Some((*key, (*level, Some(*as_of))))
        })
        .collect();
    for (_, step) in steps {
        if let Step::InvestCapability {
            area,
            level_gain,
            delivery,
            ..
        } = step
        {
            let entry = levels.entry((Side::Rok, *area)).or_insert((0, None));
            if entry.1.is_none_or(|as_of| *delivery > as_of) {
                entry.0 = entry.0.saturating_add(*level_gain).min(100);
            }
        }
    }
    levels
        .into_iter()
        .map(|(key, (level, _))| (key, level))
        .collect()
}
