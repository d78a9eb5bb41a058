//! The posture index: what a posture is made of, kept per version as the plan's events arrive,
//! so that the posture at any (valid date, version) is a lookup rather than a fold.
//!
//! Along record time every part of a plan that shapes a posture changes at some versions: each
//! force element's valid-time timeline (as adopted, and in the what-if view), each decision's
//! steps while it shapes the posture, and the plan's clauses, conditions and recorded
//! capability levels. An event changes only the parts it names, so keeping the index costs a
//! few entries per event. The elements' timelines and the decisions' parts are kept per view as
//! logs of changes in version order (`Changes`), which a query reads up to the version asked
//! for; the clauses, conditions and capability levels as the versions at which they changed (a
//! binary search). Then the query reads each element's state on the date asked for (another
//! one). The domain's own `posture` assembles the answer from those parts, the same code that
//! answers from a folded state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use alliance_domain::{
    AgreementClause, CapabilityLevels, ClauseId, Condition, ConditionId, Date, DecisionId,
    DecisionStatus, ElementId, ElementName, Equipment, Event, Plan, Posture, PostureSource,
    PresentElement, Shaping, Shared, Step, Version, element_timeline, first_date,
};
use smallvec::SmallVec;

/// A value along record time: the versions at which it changed and what it became, oldest
/// first. The first two are kept in place (most parts change once or twice), so reading one
/// touches no other memory.
#[derive(Debug, Clone)]
struct Versioned<T>(SmallVec<[(Version, T); 2]>);

impl<T> Versioned<T> {
    fn new(version: Version, value: T) -> Self {
        Self(smallvec::smallvec![(version, value)])
    }

    /// The value at `version`, for a list that starts at version 0: the latest first (a query
    /// at the latest version searches nothing), then a binary search.
    fn at_start_or(&self, version: Version) -> &T {
        let taken = match self.0.last() {
            Some((since, _)) if *since <= version => self.0.len(),
            _ => self.0.partition_point(|(since, _)| *since <= version),
        };
        &self.0[taken.saturating_sub(1)].1
    }

    fn latest(&self) -> Option<&T> {
        self.0.last().map(|(_, value)| value)
    }

    /// Records that the value became `value` at `version` (the latest version).
    fn set(&mut self, version: Version, value: T) {
        match self.0.last_mut() {
            Some(last) if last.0 == version => last.1 = value,
            _ => self.0.push((version, value)),
        }
    }
}

/// Where a slot with no change yet has its latest change: nowhere in [`Changes::log`].
const UNSET: usize = usize::MAX;

/// One change along record time: at `version`, the part in `slot` became `value`. Both in 32
/// bits: a plan holds at most `MAX_VERSION` events, which fits, and a slot is numbered when an
/// event first names its part, so there are no more slots than versions.
#[derive(Debug, Clone)]
struct Change<T> {
    version: u32,
    slot: u32,
    value: T,
}

/// `n` in 32 bits: a version or a slot, within `MAX_VERSION` (see [`Change`]; a history takes
/// no version past it), which never saturates.
fn narrow(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// A snapshot of where each part's latest change is is kept at least this many changes apart,
/// and further apart for more parts: as many changes as there are parts.
const SNAPSHOT_AT_LEAST: usize = 256;

/// The changes of many parts of one kind (each element's timeline, each decision's part) in one
/// view, in the order they were made, which is version order. The parts are numbered (slots) in
/// the order the index first met them.
///
/// A query reads the changes up to its version in one pass over contiguous memory, each part's
/// last change being its value then. That pass touches a few cache lines per change, where a
/// map of each part's own versions touched several lines per part, scattered: a query's cost
/// was the memory it waited for, not the work it did. So that a long history does not make
/// every query read all of it, where each part's latest change is is kept every so often
/// (`snapshots`): a query starts from the last one its version covers, and reads at most as
/// many changes as there are parts (or `SNAPSHOT_AT_LEAST`) after it.
#[derive(Debug, Clone)]
struct Changes<T> {
    log: Vec<Change<T>>,
    /// By slot: the position in `log` of the part's latest change (`UNSET`: none yet).
    latest: Vec<usize>,
    /// How many changes of `log` each snapshot follows, and `latest` then.
    snapshots: Vec<(usize, Box<[usize]>)>,
}

impl<T> Changes<T> {
    fn new() -> Self {
        Self {
            log: Vec::new(),
            latest: Vec::new(),
            snapshots: Vec::new(),
        }
    }

    /// The part's latest value, if it has one.
    fn latest(&self, slot: usize) -> Option<&T> {
        let at = *self.latest.get(slot)?;
        self.log.get(at).map(|change| &change.value)
    }

    /// Records that the part in `slot` became `value` at `version` (the latest version).
    fn set(&mut self, version: Version, slot: usize, value: T) {
        if self.latest.len() <= slot {
            let more = slot + 1 - self.latest.len();
            alliance_stdx::room_for(&mut self.latest, more);
            self.latest.resize(slot + 1, UNSET);
        }
        let version = narrow(version);
        // Changed in place only at the version of its latest change, which a snapshot taken
        // since covers whole: a query it serves asks for that version or a later one.
        match self.log.get_mut(self.latest[slot]) {
            Some(change) if change.version == version => change.value = value,
            _ => {
                self.latest[slot] = self.log.len();
                alliance_stdx::room_for(&mut self.log, 1);
                self.log.push(Change {
                    version,
                    slot: narrow(slot),
                    value,
                });
                let since = self.snapshots.last().map_or(0, |(after, _)| *after);
                if self.log.len() - since >= SNAPSHOT_AT_LEAST.max(self.latest.len()) {
                    self.snapshots
                        .push((self.log.len(), self.latest.clone().into_boxed_slice()));
                }
            }
        }
    }

    /// Each part's value at `version`, by slot (`None`: it had none yet).
    fn at(&self, version: Version) -> Vec<Option<&T>> {
        let end = match self.log.last() {
            Some(change) if Version::from(change.version) <= version => self.log.len(),
            _ => self
                .log
                .partition_point(|change| Version::from(change.version) <= version),
        };
        // The last snapshot of changes all made by then.
        let kept = self.snapshots.partition_point(|(after, _)| *after <= end);
        let (start, mut at) = match kept.checked_sub(1).map(|k| &self.snapshots[k]) {
            Some((after, latest)) => (
                *after,
                latest
                    .iter()
                    .map(|position| self.log.get(*position).map(|change| &change.value))
                    .collect(),
            ),
            None => (0, Vec::new()),
        };
        at.resize(self.latest.len(), None);
        for change in &self.log[start..end] {
            at[change.slot as usize] = Some(&change.value);
        }
        at
    }
}

/// The two views of a posture: as adopted, and what-if (proposed decisions included).
const VIEWS: usize = 2;

fn view(what_if: bool) -> usize {
    usize::from(what_if)
}

/// An element over valid time: the element as a posture lists it from each date on which it
/// changes (`None` once it has left), in date order; not present before the first date.
/// `None` for an element nothing introduces.
type Timeline = Option<Arc<States>>;
/// An element's states from each date on which it changes.
type States = [(Date, Option<Arc<PresentElement>>)];

/// What a posture reads of a shaping decision: when its first step takes effect, and its steps
/// other than those that concern one element (`None`: it has no others), which the elements'
/// states already account for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    from: Option<Date>,
    steps: Option<Arc<[Step]>>,
    /// How many steps the decision had (a decision's steps are only ever added to, so a step
    /// for an element changes this).
    of: usize,
}

impl Part {
    fn steps(&self) -> &[Step] {
        self.steps.as_deref().unwrap_or_default()
    }

    /// Whether it is the part of a decision with these `steps`.
    fn is_of(&self, steps: &[Step]) -> bool {
        self.of == steps.len()
            && self.from == first_date(steps)
            && self.steps().iter().eq(own_steps(steps))
    }

    fn of(steps: &[Step]) -> Self {
        let own: Vec<Step> = own_steps(steps).cloned().collect();
        Self {
            from: first_date(steps),
            steps: (!own.is_empty()).then(|| Arc::from(own)),
            of: steps.len(),
        }
    }
}

/// The steps that concern no one element.
fn own_steps(steps: &[Step]) -> impl Iterator<Item = &Step> {
    steps.iter().filter(|step| step.element_id().is_none())
}

/// What the element states of a plan hold in common, kept once: equipment counts and bases
/// (equal values share one allocation, across states and across elements). An element's name
/// (its id with it) is its own: its states share it with one another.
#[derive(Debug, Clone, Default)]
struct Kept {
    equipment: BTreeSet<Equipment>,
    bases: BTreeSet<Arc<str>>,
}

/// The kept value equal to `value`, kept now if there is none.
fn kept<T: Ord + ?Sized>(set: &mut BTreeSet<Arc<T>>, value: Arc<T>) -> Arc<T> {
    if let Some(kept) = set.get(&*value) {
        return kept.clone();
    }
    set.insert(value.clone());
    value
}

impl Kept {
    /// `changes` as the index keeps them: one of `held` if equal to it, else new, with each
    /// state equal to a state of `held` shared and each new state's parts kept once.
    fn timeline(
        &mut self,
        changes: Vec<(Date, Option<PresentElement>)>,
        held: &[Arc<States>],
    ) -> Arc<States> {
        if let Some(same) = held.iter().find(|h| same_timeline(h, &changes)) {
            return same.clone();
        }
        let held_states = || {
            held.iter()
                .flat_map(|h| h.iter())
                .filter_map(|(_, kept)| kept.as_ref())
        };
        // The element's name as its states hold it already.
        let mut named = held_states().next().map(|kept| kept.named.clone());
        changes
            .into_iter()
            .map(|(date, state)| {
                let state = state.map(|state| {
                    held_states()
                        .find(|kept| ***kept == state)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(self.state(state, &mut named)))
                });
                (date, state)
            })
            .collect()
    }

    /// `state` with its parts kept once; `named`: the element's name as its other states hold
    /// it (the first new state's, if none).
    fn state(
        &mut self,
        state: PresentElement,
        named: &mut Option<Arc<ElementName>>,
    ) -> PresentElement {
        let named = match named {
            Some(kept) if **kept == *state.named => kept.clone(),
            _ => named.insert(state.named).clone(),
        };
        PresentElement {
            named,
            equipment: kept(&mut self.equipment, state.equipment),
            base: kept(&mut self.bases, state.base),
            ..state
        }
    }
}

/// The element on `date` under `timeline`.
fn present_on(
    timeline: &[(Date, Option<Arc<PresentElement>>)],
    date: Date,
) -> Option<&Arc<PresentElement>> {
    let taken = timeline.partition_point(|(since, _)| *since <= date);
    timeline.get(taken.checked_sub(1)?)?.1.as_ref()
}

/// The part a decision has in a view while it does not shape it.
const NOT_SHAPING: usize = usize::MAX;

/// The part of a decision with no steps.
const NO_STEPS: usize = 0;

#[derive(Debug, Clone)]
pub(crate) struct PostureIndex {
    /// The version a state before the plan's own first event carries (a branch's parent's).
    base_version: Version,
    /// Each element's slot, in id order.
    elements: BTreeMap<ElementId, usize>,
    /// By element slot: the decisions with a step that concerns it, in id order (most
    /// elements have one or two: held in place).
    element_decisions: Vec<SmallVec<[DecisionId; 2]>>,
    /// By view: each element's timeline.
    timelines: [Changes<Timeline>; VIEWS],
    /// Each decision's slot, in id order.
    decisions: BTreeMap<DecisionId, usize>,
    /// By view: each decision's part (an index into `parts`) while it shapes the view
    /// (`NOT_SHAPING` while it does not).
    shaping: [Changes<usize>; VIEWS],
    /// The decisions' parts, each kept once (both views share it); every decision with no
    /// steps yet (as each is once proposed) shares the first, [`NO_STEPS`].
    parts: Vec<Part>,
    kept: Kept,
    /// The elements and decisions in id order, as of the last one the index met: kept by the
    /// first query after it.
    in_order: OnceLock<InOrder>,
    /// These three start at version 0.
    clauses: Versioned<Shared<ClauseId, AgreementClause>>,
    conditions: Versioned<Shared<ConditionId, Condition>>,
    capability_levels: Versioned<Arc<CapabilityLevels>>,
}

/// The elements' slots and the decisions' ids and slots, in id order. A query reads them all;
/// walking the maps for them took about a tenth of a query (on the benchmark's history).
#[derive(Debug, Clone)]
struct InOrder {
    elements: Box<[usize]>,
    decisions: Box<[(DecisionId, usize)]>,
}

/// The slot of `id` in `slots`, the next one if it has none.
fn slot_of<K: Ord + Clone>(slots: &mut BTreeMap<K, usize>, id: &K) -> (usize, bool) {
    if let Some(slot) = slots.get(id) {
        return (*slot, false);
    }
    let slot = slots.len();
    slots.insert(id.clone(), slot);
    (slot, true)
}

/// The decision an event is about, if any.
pub(crate) fn decision_of(event: &Event) -> Option<&DecisionId> {
    match event {
        Event::DecisionProposed { decision_id, .. }
        | Event::StepPlanned { decision_id, .. }
        | Event::DecisionEndorsed { decision_id, .. }
        | Event::DecisionAdopted { decision_id }
        | Event::DecisionRejected { decision_id, .. }
        | Event::DecisionWithdrawn { decision_id, .. }
        | Event::DecisionSuperseded { decision_id, .. }
        | Event::PrerequisiteRequired { decision_id, .. }
        | Event::FindingsAcknowledged { decision_id, .. } => Some(decision_id),
        _ => None,
    }
}

/// Whether a decision of this status shapes the view.
fn shapes(status: DecisionStatus, view: usize) -> bool {
    status == DecisionStatus::Adopted || (view == 1 && status == DecisionStatus::Proposed)
}

impl PostureIndex {
    /// The index of a plan whose history starts from `base` (empty, or a branch's parent as
    /// branched), at version 0.
    pub(crate) fn new(base: &Plan) -> Self {
        let mut index = Self {
            base_version: base.version,
            elements: BTreeMap::new(),
            element_decisions: Vec::new(),
            timelines: std::array::from_fn(|_| Changes::new()),
            decisions: BTreeMap::new(),
            shaping: std::array::from_fn(|_| Changes::new()),
            parts: vec![Part::of(&[])],
            kept: Kept::default(),
            in_order: OnceLock::new(),
            clauses: Versioned::new(0, base.clauses.clone()),
            conditions: Versioned::new(0, base.conditions.clone()),
            capability_levels: Versioned::new(0, Arc::new(base.capability_levels.clone())),
        };
        for id in base.decisions.keys() {
            index.decision_changed(0, base, id, false);
        }
        let elements: BTreeSet<&ElementId> = base
            .elements
            .keys()
            .chain(base.planned_elements.keys())
            .collect();
        for id in elements {
            index.element_changed(0, base, id, true);
        }
        index
    }

    /// Takes in the event that made `plan` (the state after it) at `version`.
    pub(crate) fn record(&mut self, version: Version, event: &Event, plan: &Plan) {
        if let Event::ForceElementRegistered { element, .. } = event {
            self.element_changed(version, plan, &element.id, true);
        }
        if let Event::CapabilityLevelRecorded { .. } = event {
            self.capability_levels
                .set(version, Arc::new(plan.capability_levels.clone()));
        }
        if !self
            .clauses
            .latest()
            .is_some_and(|clauses| clauses.ptr_eq(&plan.clauses))
        {
            self.clauses.set(version, plan.clauses.clone());
        }
        if !self
            .conditions
            .latest()
            .is_some_and(|conditions| conditions.ptr_eq(&plan.conditions))
        {
            self.conditions.set(version, plan.conditions.clone());
        }
        if let Some(decision_id) = decision_of(event) {
            self.decision_changed(version, plan, decision_id, true);
        }
    }

    /// The element's slot, new if the index has none.
    fn element_slot(&mut self, element_id: &ElementId) -> usize {
        let (slot, new) = slot_of(&mut self.elements, element_id);
        if new {
            alliance_stdx::room_for(&mut self.element_decisions, 1);
            self.element_decisions.push(SmallVec::new());
            self.in_order.take();
        }
        slot
    }

    /// Records a decision's steps in each view it shapes and, where they changed, the
    /// timelines of the elements its steps concern.
    fn decision_changed(
        &mut self,
        version: Version,
        plan: &Plan,
        decision_id: &DecisionId,
        then_elements: bool,
    ) {
        let Some(decision) = plan.decisions.get(decision_id) else {
            return;
        };
        let elements: BTreeSet<&ElementId> =
            decision.steps.iter().filter_map(Step::element_id).collect();
        for element in &elements {
            let slot = self.element_slot(element);
            let decisions = &mut self.element_decisions[slot];
            if let Err(at) = decisions.binary_search(decision_id) {
                decisions.insert(at, decision_id.clone());
            }
        }
        let (slot, new) = slot_of(&mut self.decisions, decision_id);
        if new {
            self.in_order.take();
        }
        let parts = &mut self.parts;
        let holds = |parts: &[Part], part: usize| {
            parts
                .get(part)
                .is_some_and(|held| held.is_of(&decision.steps))
        };
        // Both views share one copy of the part.
        let mut shared: Option<usize> = self
            .shaping
            .iter()
            .filter_map(|views| views.latest(slot).copied())
            .find(|part| holds(parts, *part));
        let mut changed = [false; VIEWS];
        for (view, changes) in self.shaping.iter_mut().enumerate() {
            let shaping = shapes(decision.status, view);
            let unchanged = match changes.latest(slot).copied() {
                Some(NOT_SHAPING) => !shaping,
                Some(part) => shaping && holds(parts, part),
                None => false,
            };
            if unchanged {
                continue;
            }
            let part = if shaping {
                *shared.get_or_insert_with(|| {
                    if decision.steps.is_empty() {
                        return NO_STEPS;
                    }
                    alliance_stdx::room_for(parts, 1);
                    parts.push(Part::of(&decision.steps));
                    parts.len() - 1
                })
            } else {
                NOT_SHAPING
            };
            changes.set(version, slot, part);
            changed[view] = true;
        }
        if changed.contains(&true) && then_elements {
            for element in elements {
                self.element_changed(version, plan, element, changed[0]);
            }
        }
    }

    /// Records an element's timeline in both views, from the decisions that concern it (as
    /// adopted only if `adopted_changed`: else that view is as the index holds it).
    fn element_changed(
        &mut self,
        version: Version,
        plan: &Plan,
        element_id: &ElementId,
        adopted_changed: bool,
    ) {
        let slot = self.element_slot(element_id);
        let mut adopted = Vec::new();
        let mut proposed = Vec::new();
        for decision_id in &self.element_decisions[slot] {
            let Some(decision) = plan.decisions.get(decision_id) else {
                continue;
            };
            let group = match decision.status {
                DecisionStatus::Adopted => &mut adopted,
                DecisionStatus::Proposed => &mut proposed,
                _ => continue,
            };
            group.extend(
                decision
                    .steps
                    .iter()
                    .filter(|step| step.element_id() == Some(element_id))
                    .map(|step| (&decision.id, step)),
            );
        }
        // What the index holds already is shared, not copied: an unchanged view, a view equal
        // to the other's, and each state equal to one held before.
        let mut held: Vec<Arc<States>> = self
            .timelines
            .iter()
            .filter_map(|changes| changes.latest(slot)?.clone())
            .collect();
        let own = match self.timelines[0].latest(slot) {
            Some(kept) if !adopted_changed => kept.clone(),
            _ => element_timeline(plan, element_id, adopted.clone(), None)
                .map(|t| self.kept.timeline(t.changes(), &held)),
        };
        let what_if = if proposed.is_empty() {
            own.clone()
        } else {
            held.extend(own.clone());
            element_timeline(plan, element_id, adopted, Some(proposed))
                .map(|t| self.kept.timeline(t.changes(), &held))
        };
        for (changes, timeline) in self.timelines.iter_mut().zip([own, what_if]) {
            let unchanged = match (changes.latest(slot), &timeline) {
                (Some(Some(kept)), Some(new)) => Arc::ptr_eq(kept, new),
                (Some(None), None) => true,
                _ => false,
            };
            if !unchanged {
                changes.set(version, slot, timeline);
            }
        }
    }

    /// What the posture is made of at `version` in one view, for any number of dates.
    pub(crate) fn at(&self, version: Version, what_if: bool) -> PostureAt<'_> {
        let view = view(what_if);
        let in_order = self.in_order.get_or_init(|| InOrder {
            elements: self.elements.values().copied().collect(),
            decisions: self
                .decisions
                .iter()
                .map(|(id, slot)| (id.clone(), *slot))
                .collect(),
        });
        let parts = self.shaping[view].at(version);
        let shaping = in_order
            .decisions
            .iter()
            .filter_map(|(id, slot)| {
                let part = self.parts.get(**parts.get(*slot)?.as_ref()?)?;
                Some(Shaping {
                    id,
                    from: part.from,
                    steps: part.steps(),
                })
            })
            .collect();
        let timelines_at = self.timelines[view].at(version);
        let timelines = in_order
            .elements
            .iter()
            .filter_map(|slot| timelines_at.get(*slot)?.as_ref()?.as_deref())
            .collect();
        PostureAt {
            source: PostureSource {
                version: if version == 0 {
                    self.base_version
                } else {
                    version
                },
                shaping,
                clauses: self.clauses.at_start_or(version),
                conditions: self.conditions.at_start_or(version),
                capability_levels: self.capability_levels.at_start_or(version),
            },
            timelines,
            what_if,
        }
    }
}

fn same_timeline(held: &States, changes: &[(Date, Option<PresentElement>)]) -> bool {
    held.len() == changes.len()
        && held
            .iter()
            .zip(changes)
            .all(|((d1, e1), (d2, e2))| d1 == d2 && e1.as_deref() == e2.as_ref())
}

/// A plan's posture parts at one version and view.
pub(crate) struct PostureAt<'a> {
    source: PostureSource<'a>,
    timelines: Vec<&'a States>,
    what_if: bool,
}

impl PostureAt<'_> {
    /// The posture on `valid_on`.
    pub(crate) fn on(&self, valid_on: Date) -> Posture {
        let elements = self
            .timelines
            .iter()
            .filter_map(|timeline| present_on(timeline, valid_on).cloned())
            .collect();
        self.source.posture(valid_on, self.what_if, elements)
    }
}

#[cfg(test)]
mod tests {
    use alliance_domain::testing::{
        adopted_decision, created, date, endorsed_decision, planned, proposed, registered,
        relocate, withdraw,
    };
    use alliance_domain::{Event, Plan, Version, evolve, posture};

    use super::PostureIndex;

    /// Folds `events` into `plan` and records each in `index`.
    fn record(index: &mut PostureIndex, plan: &mut Plan, events: Vec<Event>) {
        for event in events {
            *plan = evolve(std::mem::take(plan), &event);
            index.record(plan.version, &event, plan);
        }
    }

    /// The index answers as the fold does at every version so far, in both views, on dates
    /// before, between and after the steps.
    fn assert_answers_as_folded(index: &PostureIndex, events: &[Event]) {
        let mut plan = Plan::default();
        for (version, event) in (1..).zip(events) {
            plan = evolve(plan, event);
            for what_if in [false, true] {
                let at = index.at(version, what_if);
                for on in [date(2026, 1, 1), date(2028, 6, 1), date(2031, 1, 1)] {
                    assert_eq!(at.on(on), posture(&plan, on, what_if), "v{version} {on}");
                }
            }
        }
    }

    /// Three elements moved back and forth by 800 decisions: a history of several snapshots
    /// in each view, every version answered as the fold does (from the snapshot before it and
    /// the changes after).
    #[test]
    fn a_long_history_is_answered_from_its_snapshots_as_folded() {
        let mut plan = Plan::default();
        let mut index = PostureIndex::new(&plan);
        let mut events = vec![created()];
        events.extend(["a", "b", "c"].map(|id| registered(id, 100, &[])));
        for d in 0..800 {
            let element = ["a", "b", "c"][d % 3];
            let base = if d % 2 == 0 { "Osan" } else { "Camp Humphreys" };
            let on = date(2026 + (d % 8) as i32, 1 + (d % 12) as u32, 1);
            let step = relocate(element, base, on);
            let id = format!("d{d:03}");
            if d % 5 == 0 {
                // Left proposed: the what-if view only.
                events.extend(endorsed_decision(&id, vec![step]));
            } else {
                events.extend(adopted_decision(&id, vec![step]));
            }
        }
        record(&mut index, &mut plan, events.clone());
        for view in &index.timelines {
            assert!(
                view.snapshots.len() >= 2,
                "{} snapshots",
                view.snapshots.len()
            );
        }
        assert!(!index.shaping[0].snapshots.is_empty());
        assert_answers_as_folded(&index, &events);
    }

    /// Every version a plan may hold, and so every slot, fits in a change's 32 bits as it is.
    #[test]
    fn every_version_a_plan_may_hold_fits_a_change() {
        assert_eq!(
            Version::from(super::narrow(alliance_domain::MAX_VERSION)),
            alliance_domain::MAX_VERSION
        );
        assert_eq!(super::narrow(17_usize), 17);
    }

    /// Decisions proposed with no steps yet share one part, and each takes its own once a
    /// step is planned; the index answers as folded throughout.
    #[test]
    fn decisions_with_no_steps_share_one_part() {
        let mut plan = Plan::default();
        let mut index = PostureIndex::new(&plan);
        let mut events = vec![created(), registered("m", 100, &[])];
        events.extend(["d1", "d2", "d3"].map(proposed));
        record(&mut index, &mut plan, events.clone());
        assert_eq!(index.parts.len(), 1);
        let more = vec![planned("d2", relocate("m", "Osan", date(2027, 1, 1)))];
        record(&mut index, &mut plan, more.clone());
        events.extend(more);
        assert_eq!(index.parts.len(), 2);
        assert_answers_as_folded(&index, &events);
    }

    #[test]
    fn a_query_reads_the_elements_and_decisions_met_since_the_last_query() {
        let mut plan = Plan::default();
        let mut index = PostureIndex::new(&plan);
        let mut events = vec![created(), registered("m", 100, &[])];
        events.extend(adopted_decision(
            "d5",
            vec![relocate("m", "Osan", date(2027, 1, 1))],
        ));
        record(&mut index, &mut plan, events.clone());
        assert_answers_as_folded(&index, &events);
        // Elements and decisions whose ids sort before, between and after those queried.
        let mut more = vec![
            registered("a", 200, &[]),
            registered("z", 300, &[]),
            registered("n", 400, &[]),
        ];
        more.extend(adopted_decision(
            "d1",
            vec![withdraw("z", date(2028, 1, 1))],
        ));
        more.extend(endorsed_decision(
            "d9",
            vec![withdraw("a", date(2027, 6, 1))],
        ));
        more.extend(adopted_decision(
            "d6",
            vec![relocate("n", "Osan", date(2029, 1, 1))],
        ));
        record(&mut index, &mut plan, more.clone());
        events.extend(more);
        assert_answers_as_folded(&index, &events);
        let latest = index.at(plan.version, true).on(date(2031, 1, 1));
        let ids: Vec<&str> = latest
            .elements
            .iter()
            .map(|e| e.named.id.as_str())
            .collect();
        assert_eq!(ids, ["m", "n"], "a and z have left");
        let latest = index.at(plan.version, false).on(date(2031, 1, 1));
        assert_eq!(latest.decisions.len(), 3, "{:?}", latest.decisions);
    }
}
