//! The state of one plan, folded from its events. Applying an event holds no rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::access::PlanRole;
use crate::conditions::{Constraint, Prerequisite};
use crate::event::Event;
use crate::ids::{
    ClauseId, ConditionId, ConstraintId, DecisionId, ElementId, InvestmentId, PlanId, TeamId,
    Version,
};
use crate::model::{
    AgreementKind, CapabilityArea, ClauseStatus, ConditionStatus, Date, DecisionStatus,
    ForceElementSpec, Side, Sides, SimulationRun, Step,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub id: DecisionId,
    pub title: String,
    pub rationale: String,
    pub owner_team: TeamId,
    pub effective_date: Date,
    pub required_sides: Sides,
    pub steps: Vec<Step>,
    pub status: DecisionStatus,
    pub endorsements: Sides,
    /// What few decisions have, apart: a decision without it takes no room for it (a read
    /// model and the command service hold every decision of every plan).
    more: More,
}

/// What few decisions have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct DecisionMore {
    supersedes: BTreeSet<DecisionId>,
    superseded_by: Option<DecisionId>,
    status_reason: String,
    prerequisites: Vec<Prerequisite>,
    acknowledged_findings: BTreeSet<String>,
}

/// What a decision without [`DecisionMore`] reads as.
static NO_MORE: DecisionMore = DecisionMore {
    supersedes: BTreeSet::new(),
    superseded_by: None,
    status_reason: String::new(),
    prerequisites: Vec::new(),
    acknowledged_findings: BTreeSet::new(),
};

/// [`DecisionMore`], held only when a decision has some: equal to another by what it says,
/// whether held or not.
#[derive(Clone, Debug, Default)]
struct More(Option<Box<DecisionMore>>);

impl More {
    fn get(&self) -> &DecisionMore {
        self.0.as_deref().unwrap_or(&NO_MORE)
    }
}

impl PartialEq for More {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for More {}

impl Decision {
    fn more(&self) -> &DecisionMore {
        self.more.get()
    }

    fn more_mut(&mut self) -> &mut DecisionMore {
        self.more.0.get_or_insert_default()
    }

    /// The decisions it supersedes once adopted.
    pub fn supersedes(&self) -> &BTreeSet<DecisionId> {
        &self.more().supersedes
    }

    /// The decision that superseded it.
    pub fn superseded_by(&self) -> Option<&DecisionId> {
        self.more().superseded_by.as_ref()
    }

    /// Why it was rejected or withdrawn.
    pub fn status_reason(&self) -> &str {
        &self.more().status_reason
    }

    /// What must hold before its steps take effect.
    pub fn prerequisites(&self) -> &[Prerequisite] {
        &self.more().prerequisites
    }

    /// Findings the adopters accepted when adopting it.
    pub fn acknowledged_findings(&self) -> &BTreeSet<String> {
        &self.more().acknowledged_findings
    }
}

impl Decision {
    /// The sides whose endorsement follows from what the decision's steps touch: an element's
    /// owning side; both sides for what the alliance holds jointly (OPCON, the CFC and other
    /// command arrangements, agreement clauses); the ROK for a ROK capability investment.
    pub fn derived_sides(&self, plan: &Plan) -> Sides {
        let mut sides = Sides::new();
        for step in &self.steps {
            match step {
                Step::AddElement { element, .. } => {
                    sides.insert(element.side);
                }
                Step::WithdrawElement { element_id, .. }
                | Step::ReduceElement { element_id, .. }
                | Step::RelocateElement { element_id, .. } => {
                    // An element the plan does not know is refused when the step is planned.
                    sides.extend(plan.element_side(element_id));
                }
                Step::TransferOpcon { .. }
                | Step::ChangeCommandArrangement { .. }
                | Step::AssignMission { .. }
                | Step::AmendClause { .. } => {
                    sides.extend(Side::ALL);
                }
                Step::InvestCapability { .. } => {
                    sides.insert(Side::Rok);
                }
            }
        }
        sides
    }

    /// Every side whose endorsement adoption needs: those its proposer named and those its
    /// steps touch.
    pub fn needed_sides(&self, plan: &Plan) -> Sides {
        let mut sides = self.derived_sides(plan);
        sides.extend(self.required_sides.iter());
        sides
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementClause {
    pub id: ClauseId,
    pub agreement: AgreementKind,
    pub title: String,
    pub status: ClauseStatus,
    pub since: Date,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionAssessment {
    pub assessed_on: Date,
    pub status: ConditionStatus,
    pub value: Option<u32>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub id: ConditionId,
    pub title: String,
    pub description: String,
    pub area: Option<CapabilityArea>,
    pub threshold: Option<u32>,
    pub assessments: Vec<ConditionAssessment>,
}

/// A registered (baseline) force element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredElement {
    pub spec: ForceElementSpec,
    pub present_from: Date,
}

/// A map whose entries are shared between the states of a plan at different versions: a
/// persistent B-tree (`imbl::OrdMap`), so cloning a state copies nothing, and changing an entry
/// copies that entry and the few tree nodes on its path, never the whole map. (With a plain
/// `BTreeMap` behind an `Arc`, the first change after a state was kept copied the whole map:
/// read models keeping states along a plan's history grew with events × elements.)
pub type Shared<K, V> = imbl::OrdMap<K, Arc<V>>;

/// Recorded capability levels by side and area, by the date each holds from. Each area's
/// levels are shared, so a copy of the whole (a read model keeps one for each version that
/// records a level) copies only the keys, and a new level copies only its own area's levels.
pub type CapabilityLevels = BTreeMap<(Side, CapabilityArea), Arc<BTreeMap<Date, u32>>>;

/// Appends `item`, growing `items` to fit it exactly while they are few: a decision holds one
/// or two steps as a rule, and a vector's first growth makes room for four (448 bytes for one
/// step, kept for every decision the read models and the command service hold). Past a few,
/// the vector grows as it does.
fn push_fitted<T>(items: &mut Vec<T>, item: T) {
    const FITTED: usize = 8;
    if items.len() == items.capacity() && items.len() < FITTED {
        items.reserve_exact(1);
    }
    items.push(item);
}

/// The entry `key` of a shared map, to change (copied first if another state shares it).
fn entry_mut<'a, K: Ord + Clone, V: Clone>(
    map: &'a mut Shared<K, V>,
    key: &K,
) -> Option<&'a mut V> {
    map.get_mut(key).map(Arc::make_mut)
}

/// Adds or replaces the entry `key` of a shared map.
fn put<K: Ord + Clone, V>(map: &mut Shared<K, V>, key: K, value: V) {
    map.insert(key, Arc::new(value));
}

/// One plan as its events leave it. `Plan::default()` is a plan that does not exist yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub id: Option<PlanId>,
    pub name: String,
    pub description: String,
    pub horizon_start: Date,
    pub horizon_end: Date,
    /// The plans this one was branched from, nearest last, with the version branched at.
    pub lineage: Vec<(PlanId, Version)>,
    /// Number of events in this plan's own stream.
    pub version: Version,
    pub elements: Shared<ElementId, RegisteredElement>,
    /// Recorded capability levels by side and area, dated.
    pub capability_levels: CapabilityLevels,
    pub clauses: Shared<ClauseId, AgreementClause>,
    pub conditions: Shared<ConditionId, Condition>,
    pub decisions: Shared<DecisionId, Decision>,
    /// Elements introduced by an `AddElement` step, and the decision that planned them.
    pub planned_elements: BTreeMap<ElementId, DecisionId>,
    /// Investments and the decision that planned them.
    pub investments: BTreeMap<InvestmentId, DecisionId>,
    /// Simulation runs recorded in the plan's history.
    pub simulation_runs: Shared<uuid::Uuid, SimulationRun>,
    /// The roles each team holds on the plan (a branch starts with its parent's).
    pub grants: BTreeMap<TeamId, BTreeSet<PlanRole>>,
    /// Plan-level constraints and their waivers.
    pub constraints: Shared<ConstraintId, Constraint>,
}

impl Plan {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The roles `team` holds on the plan.
    pub fn roles_of(&self, team: &TeamId) -> BTreeSet<PlanRole> {
        self.grants.get(team).cloned().unwrap_or_default()
    }

    /// How many teams hold `role`.
    pub fn holders(&self, role: PlanRole) -> usize {
        self.grants.values().filter(|r| r.contains(&role)).count()
    }

    /// Whether `date` lies inside the plan's horizon.
    pub fn in_horizon(&self, date: Date) -> bool {
        self.horizon_start <= date && date <= self.horizon_end
    }

    /// Whether the plan knows a force element: registered, or planned by a decision's
    /// `AddElement` step.
    pub fn has_element(&self, id: &ElementId) -> bool {
        self.elements.contains_key(id) || self.planned_elements.contains_key(id)
    }

    /// The side that owns a force element: registered, or planned by a decision's
    /// `AddElement` step.
    pub fn element_side(&self, id: &ElementId) -> Option<Side> {
        if let Some(registered) = self.elements.get(id) {
            return Some(registered.spec.side);
        }
        let decision = self.decisions.get(self.planned_elements.get(id)?)?;
        decision.steps.iter().find_map(|step| match step {
            Step::AddElement { element, .. } if &element.id == id => Some(element.side),
            _ => None,
        })
    }

    /// Decisions that shape the posture: adopted and not superseded.
    pub fn adopted(&self) -> impl Iterator<Item = &Decision> {
        self.decisions
            .values()
            .map(|d| &**d)
            .filter(|d| d.status == DecisionStatus::Adopted)
    }
}

/// Applies one event. Infallible: every rule was checked when the event was decided.
pub fn evolve(mut plan: Plan, event: &Event) -> Plan {
    plan.version += 1;
    match event {
        Event::PlanCreated {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => {
            for grant in grants {
                plan.grants
                    .entry(grant.team.clone())
                    .or_default()
                    .insert(grant.role);
            }
            plan.id = Some(*plan_id);
            plan.name.clone_from(name);
            plan.description.clone_from(description);
            plan.horizon_start = *horizon_start;
            plan.horizon_end = *horizon_end;
        }
        Event::PlanBranched {
            plan_id,
            parent_plan_id,
            parent_version,
            name,
            description,
        } => {
            // The branch's own stream starts here; the parent's history stays in the state.
            plan.id = Some(*plan_id);
            plan.name.clone_from(name);
            plan.description.clone_from(description);
            plan.lineage.push((*parent_plan_id, *parent_version));
            plan.version = 1;
        }
        Event::ForceElementRegistered {
            element,
            present_from,
        } => {
            put(
                &mut plan.elements,
                element.id.clone(),
                RegisteredElement {
                    spec: element.clone(),
                    present_from: *present_from,
                },
            );
        }
        Event::CapabilityLevelRecorded {
            side,
            area,
            level,
            as_of,
        } => {
            Arc::make_mut(plan.capability_levels.entry((*side, *area)).or_default())
                .insert(*as_of, *level);
        }
        Event::AgreementClauseDefined {
            clause_id,
            agreement,
            title,
            status,
            since,
        } => {
            put(
                &mut plan.clauses,
                clause_id.clone(),
                AgreementClause {
                    id: clause_id.clone(),
                    agreement: *agreement,
                    title: title.clone(),
                    status: *status,
                    since: *since,
                },
            );
        }
        Event::ConditionDefined {
            condition_id,
            title,
            description,
            area,
            threshold,
        } => {
            put(
                &mut plan.conditions,
                condition_id.clone(),
                Condition {
                    id: condition_id.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    area: *area,
                    threshold: *threshold,
                    assessments: Vec::new(),
                },
            );
        }
        Event::ConditionAssessed {
            condition_id,
            assessed_on,
            status,
            value,
            note,
        } => {
            if let Some(condition) = entry_mut(&mut plan.conditions, condition_id) {
                condition.assessments.push(ConditionAssessment {
                    assessed_on: *assessed_on,
                    status: *status,
                    value: *value,
                    note: note.clone(),
                });
            }
        }
        Event::DecisionProposed {
            decision_id,
            title,
            rationale,
            owner_team,
            effective_date,
            required_sides,
            supersedes,
        } => {
            put(
                &mut plan.decisions,
                decision_id.clone(),
                Decision {
                    id: decision_id.clone(),
                    title: title.clone(),
                    rationale: rationale.clone(),
                    owner_team: owner_team.clone(),
                    effective_date: *effective_date,
                    required_sides: Sides::from(required_sides),
                    steps: Vec::new(),
                    status: DecisionStatus::Proposed,
                    endorsements: Sides::new(),
                    more: More((!supersedes.is_empty()).then(|| {
                        Box::new(DecisionMore {
                            supersedes: supersedes.clone(),
                            ..DecisionMore::default()
                        })
                    })),
                },
            );
        }
        Event::StepPlanned { decision_id, step } => {
            match step {
                Step::AddElement { element, .. } => {
                    plan.planned_elements
                        .insert(element.id.clone(), decision_id.clone());
                }
                Step::InvestCapability { investment_id, .. } => {
                    plan.investments
                        .insert(investment_id.clone(), decision_id.clone());
                }
                _ => {}
            }
            if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
                push_fitted(&mut decision.steps, step.clone());
            }
        }
        Event::DecisionEndorsed { decision_id, side } => {
            if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
                decision.endorsements.insert(*side);
            }
        }
        Event::DecisionAdopted { decision_id } => {
            set_status(&mut plan, decision_id, DecisionStatus::Adopted, "");
        }
        Event::DecisionRejected {
            decision_id,
            reason,
        } => set_status(&mut plan, decision_id, DecisionStatus::Rejected, reason),
        Event::DecisionWithdrawn {
            decision_id,
            reason,
        } => set_status(&mut plan, decision_id, DecisionStatus::Withdrawn, reason),
        Event::DecisionSuperseded {
            decision_id,
            superseded_by,
        } => {
            if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
                decision.status = DecisionStatus::Superseded;
                decision.more_mut().superseded_by = Some(superseded_by.clone());
            }
        }
        Event::RoleGranted { grant } => {
            plan.grants
                .entry(grant.team.clone())
                .or_default()
                .insert(grant.role);
        }
        Event::RoleRevoked { grant } => {
            if let Some(roles) = plan.grants.get_mut(&grant.team) {
                roles.remove(&grant.role);
                if roles.is_empty() {
                    plan.grants.remove(&grant.team);
                }
            }
        }
        Event::SimulationRunRecorded { run } => {
            put(&mut plan.simulation_runs, run.run_id, run.clone());
        }
        Event::PrerequisiteRequired {
            decision_id,
            prerequisite,
        } => {
            if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
                decision.more_mut().prerequisites.push(prerequisite.clone());
            }
        }
        Event::FindingsAcknowledged {
            decision_id,
            findings,
        } => {
            if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
                decision
                    .more_mut()
                    .acknowledged_findings
                    .extend(findings.iter().cloned());
            }
        }
        Event::ConstraintDefined {
            constraint_id,
            title,
            rule,
            side,
            authority,
            since,
        } => put(
            &mut plan.constraints,
            constraint_id.clone(),
            Constraint {
                id: constraint_id.clone(),
                title: title.clone(),
                rule: rule.clone(),
                side: *side,
                authority: authority.clone(),
                since: *since,
                waivers: Vec::new(),
            },
        ),
        Event::ConstraintWaived {
            constraint_id,
            waiver,
        } => {
            if let Some(constraint) = entry_mut(&mut plan.constraints, constraint_id) {
                constraint.waivers.push(waiver.clone());
            }
        }
        // What a head is vouched by is the verifiers' business; the plan is unchanged.
        Event::HeadWitnessed { .. } | Event::HeadSigned { .. } => {}
    }
    plan
}

fn set_status(plan: &mut Plan, decision_id: &DecisionId, status: DecisionStatus, reason: &str) {
    if let Some(decision) = entry_mut(&mut plan.decisions, decision_id) {
        decision.status = status;
        if !reason.is_empty() || decision.more.0.is_some() {
            decision.more_mut().status_reason = reason.to_owned();
        }
    }
}

/// Folds events, oldest first, onto a state.
pub fn fold<'a>(plan: Plan, events: impl IntoIterator<Item = &'a Event>) -> Plan {
    events.into_iter().fold(plan, evolve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(area: CapabilityArea, year: i32, level: u32) -> Event {
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area,
            level,
            as_of: Date::from_ymd_opt(year, 1, 1).expect("a date"),
        }
    }

    /// What few decisions have is held apart only by those that have it, and a decision reads
    /// and compares the same either way.
    #[test]
    fn what_few_decisions_have_is_held_apart_by_those_alone() {
        let id = |s: &str| DecisionId::parse(s).expect("an id");
        let team = TeamId::parse("us-force-planning").expect("a team");
        let proposed = |decision: &str, supersedes: &[&str]| Event::DecisionProposed {
            decision_id: id(decision),
            title: decision.to_owned(),
            rationale: String::new(),
            owner_team: team.clone(),
            effective_date: Date::from_ymd_opt(2028, 1, 1).expect("a date"),
            required_sides: BTreeSet::from([Side::Us]),
            supersedes: supersedes.iter().map(|s| id(s)).collect(),
        };
        let plan = [
            proposed("d1", &[]),
            proposed("d2", &["d1"]),
            proposed("d3", &[]),
            Event::DecisionAdopted {
                decision_id: id("d3"),
            },
            proposed("d4", &[]),
            Event::DecisionRejected {
                decision_id: id("d4"),
                reason: "not now".into(),
            },
        ]
        .iter()
        .fold(Plan::default(), evolve);
        let held: Vec<bool> = ["d1", "d2", "d3", "d4"]
            .map(|d| plan.decisions[&id(d)].more.0.is_some())
            .to_vec();
        assert_eq!(held, [false, true, false, true]);
        assert_eq!(
            plan.decisions[&id("d2")].supersedes(),
            &BTreeSet::from([id("d1")])
        );
        assert_eq!(plan.decisions[&id("d4")].status_reason(), "not now");
        assert!(plan.decisions[&id("d1")].supersedes().is_empty());
        // Held apart or not, the same decision is equal; another reason is another decision.
        let d1 = (*plan.decisions[&id("d1")]).clone();
        let mut apart = d1.clone();
        apart.more = More(Some(Box::default()));
        assert_eq!(d1, apart);
        apart.more_mut().status_reason = "not now".into();
        assert_ne!(d1, apart);
    }

    /// A state kept along a plan's history shares the capability levels of every area a later
    /// level does not touch, and keeps its own levels of the area it does.
    #[test]
    fn a_recorded_level_copies_only_its_own_areas_levels() {
        let (ground, isr) = (CapabilityArea::GroundCombat, CapabilityArea::Isr);
        let plan = [level(ground, 2026, 40), level(isr, 2026, 50)]
            .iter()
            .fold(Plan::default(), evolve);
        let kept = plan.clone();
        let plan = evolve(plan, &level(ground, 2027, 60));
        let of = |plan: &Plan, area| plan.capability_levels[&(Side::Rok, area)].clone();
        assert!(Arc::ptr_eq(&of(&kept, isr), &of(&plan, isr)));
        assert!(!Arc::ptr_eq(&of(&kept, ground), &of(&plan, ground)));
        assert_eq!(of(&kept, ground).len(), 1);
        assert_eq!(
            of(&plan, ground).values().copied().collect::<Vec<_>>(),
            [40, 60]
        );
    }
}
