//! The vocabulary of the plan: sides, force elements, capability areas, agreements and the
//! dated steps a decision is made of.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{ClauseId, ConditionId, ElementId, InvestmentId, TeamId};

/// A date on the plan's timeline (valid time).
pub type Date = chrono::NaiveDate;

/// A party to the alliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The United States.
    Us,
    /// The Republic of Korea.
    Rok,
}

impl Side {
    /// Every side, in side order.
    pub const ALL: [Side; 2] = [Side::Us, Side::Rok];

    pub fn name(self) -> &'static str {
        match self {
            Side::Us => "U.S.",
            Side::Rok => "ROK",
        }
    }
}

/// A set of sides, as one byte (a decision holds two: the sides its proposer named and those
/// that endorsed it; a tree set took a node of its own for each). In side order, as a
/// `BTreeSet<Side>` is.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sides(u8);

impl Sides {
    pub const fn new() -> Self {
        Self(0)
    }

    const fn bit(side: Side) -> u8 {
        1 << side as u8
    }

    /// Adds `side`; whether it was not there yet.
    pub fn insert(&mut self, side: Side) -> bool {
        let new = !self.contains(&side);
        self.0 |= Self::bit(side);
        new
    }

    pub fn contains(&self, side: &Side) -> bool {
        self.0 & Self::bit(*side) != 0
    }

    /// The sides, in side order.
    pub fn iter(&self) -> SidesIter {
        SidesIter(*self)
    }

    /// The first side, in side order.
    pub fn first(&self) -> Option<Side> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether every side of it is one of `other`'s.
    pub fn is_subset(&self, other: &Sides) -> bool {
        self.0 & !other.0 == 0
    }
}

impl std::fmt::Debug for Sides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Side> for Sides {
    fn from_iter<I: IntoIterator<Item = Side>>(sides: I) -> Self {
        let mut set = Self::new();
        set.extend(sides);
        set
    }
}

impl Extend<Side> for Sides {
    fn extend<I: IntoIterator<Item = Side>>(&mut self, sides: I) {
        for side in sides {
            self.insert(side);
        }
    }
}

/// The sides of a [`Sides`], in side order.
#[derive(Clone, Debug)]
pub struct SidesIter(Sides);

impl Iterator for SidesIter {
    type Item = Side;

    fn next(&mut self) -> Option<Side> {
        let side = Side::ALL.into_iter().find(|side| self.0.contains(side))?;
        self.0.0 &= !Sides::bit(side);
        Some(side)
    }
}

impl IntoIterator for Sides {
    type Item = Side;
    type IntoIter = SidesIter;

    fn into_iter(self) -> SidesIter {
        self.iter()
    }
}

impl IntoIterator for &Sides {
    type Item = Side;
    type IntoIter = SidesIter;

    fn into_iter(self) -> SidesIter {
        self.iter()
    }
}

impl<const N: usize> From<[Side; N]> for Sides {
    fn from(sides: [Side; N]) -> Self {
        sides.into_iter().collect()
    }
}

impl From<&std::collections::BTreeSet<Side>> for Sides {
    fn from(sides: &std::collections::BTreeSet<Side>) -> Self {
        sides.iter().copied().collect()
    }
}

/// Who issued a command: always the authenticated caller, never a field the client fills in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub team: TeamId,
    pub user: String,
    /// The side a team endorses for; `None` for alliance-level teams and auditors.
    pub side: Option<Side>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Army,
    AirForce,
    Navy,
    Marines,
    Joint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    GroundCombatBrigade,
    CombatAviation,
    FieldArtillery,
    AirDefense,
    Thaad,
    FighterSquadron,
    Isr,
    Logistics,
    Medical,
    SignalC2,
    Headquarters,
    StrategicEnabler,
}

/// A mission area whose coverage is tracked over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityArea {
    GroundCombat,
    CombatSupport,
    AirSuperiority,
    MissileDefense,
    Isr,
    Logistics,
    CommandAndControl,
    Munitions,
    ExtendedDeterrence,
}

/// A mission of the combined operational plans, which one side leads and the other may support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mission {
    /// Security of ROK territory in peacetime.
    PeacetimeSecurity,
    /// Major combat operations in wartime.
    MajorCombat,
    /// Combat support in wartime: fires, engineers, sustainment of the fight.
    CombatSupport,
    Logistics,
    Intelligence,
    /// Extended deterrence, nuclear included.
    ExtendedDeterrence,
    /// Reinforcement and military assistance in a contingency, from off the peninsula.
    Reinforcement,
}

impl Mission {
    pub const ALL: [Mission; 7] = [
        Mission::PeacetimeSecurity,
        Mission::MajorCombat,
        Mission::CombatSupport,
        Mission::Logistics,
        Mission::Intelligence,
        Mission::ExtendedDeterrence,
        Mission::Reinforcement,
    ];
}

/// The agreement or restriction a clause belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementKind {
    /// The U.S.–ROK civil nuclear cooperation (123) agreement.
    NuclearCooperation123,
    /// The bilateral missile guidelines on ROK ballistic missiles.
    MissileGuidelines,
    /// The 1953 Mutual Defense Treaty and the scope of U.S. security guarantees.
    MutualDefenseTreaty,
    /// Extended deterrence arrangements (e.g. the 2023 Washington Declaration).
    ExtendedDeterrence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClauseStatus {
    Restricted,
    Permitted,
    /// The clause has lapsed or been terminated.
    Terminated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionStatus {
    NotMet,
    PartiallyMet,
    Met,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    Proposed,
    Adopted,
    Rejected,
    Withdrawn,
    Superseded,
}

impl DecisionStatus {
    /// The status in lowercase, for messages.
    pub fn name(self) -> &'static str {
        match self {
            DecisionStatus::Proposed => "proposed",
            DecisionStatus::Adopted => "adopted",
            DecisionStatus::Rejected => "rejected",
            DecisionStatus::Withdrawn => "withdrawn",
            DecisionStatus::Superseded => "superseded",
        }
    }
}

/// Free text of a few words (a name, a base): held in place up to 24 bytes, which most are, so
/// the elements every state and read model keeps need no allocation for them. Reads and writes
/// as a string.
pub type Text = compact_str::CompactString;

/// Counts of major equipment by kind, in kind order: a sorted vector rather than a tree. An
/// element holds a few kinds, and a tree's first node holds room for eleven (about 300 bytes,
/// where one kind takes 32). Fields of this type are (de)serialized with [`counts_as_map`].
pub type EquipmentCounts = litemap::LiteMap<String, u32>;

/// Equipment counts in the serde form they have always had: an object (an empty one
/// included, which the vector's own form writes as a list), read as a tree map reads one (a
/// kind given twice keeps its last count). A command's digest is SHA-256 of its JSON: a
/// command recorded before the counts were a vector, retried now, must give the same bytes.
pub(crate) mod counts_as_map {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::EquipmentCounts;

    pub fn serialize<S: Serializer>(counts: &EquipmentCounts, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(counts.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EquipmentCounts, D::Error> {
        let read = std::collections::BTreeMap::<String, u32>::deserialize(d)?;
        Ok(read.into_iter().collect())
    }
}

/// A unit or capability on the peninsula.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceElementSpec {
    pub id: ElementId,
    pub name: Text,
    pub side: Side,
    pub component: Component,
    pub kind: ElementKind,
    pub personnel: u32,
    /// Major equipment by kind, e.g. `{"F-16": 40}`.
    #[serde(default, with = "counts_as_map")]
    pub equipment: EquipmentCounts,
    pub base: Text,
}

/// One dated change a decision makes to the plan. Steps shape the posture only once their
/// decision is adopted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    AddElement {
        element: ForceElementSpec,
        on: Date,
    },
    WithdrawElement {
        element_id: ElementId,
        on: Date,
    },
    ReduceElement {
        element_id: ElementId,
        personnel: u32,
        #[serde(default, with = "counts_as_map")]
        equipment: EquipmentCounts,
        on: Date,
    },
    RelocateElement {
        element_id: ElementId,
        to_base: String,
        on: Date,
    },
    /// Wartime OPCON passes to the ROK and a ROK general commands the CFC, once the named
    /// conditions are met.
    TransferOpcon {
        on: Date,
        conditions: BTreeSet<ConditionId>,
    },
    /// Any other change of who holds OPCON or commands the CFC (e.g. the 1994 return of
    /// peacetime OPCON).
    ChangeCommandArrangement {
        on: Date,
        peacetime_opcon: Option<Side>,
        wartime_opcon: Option<Side>,
        cfc_commander: Option<Side>,
    },
    AmendClause {
        clause_id: ClauseId,
        status: ClauseStatus,
        on: Date,
    },
    /// The operational plans give a mission to a lead side, with the other supporting or not.
    AssignMission {
        mission: Mission,
        lead: Side,
        supporting: Option<Side>,
        on: Date,
    },
    /// A ROK investment that raises ROK capability in an area from its delivery date.
    InvestCapability {
        investment_id: InvestmentId,
        area: CapabilityArea,
        description: String,
        /// Capability points (0–100 scale) gained once fielded.
        level_gain: u32,
        delivery: Date,
        /// Programme cost in thousands of U.S. dollars.
        cost_kusd: u64,
    },
}

impl Step {
    /// The date the step takes effect on the plan's timeline.
    pub fn date(&self) -> Date {
        match self {
            Step::AddElement { on, .. }
            | Step::WithdrawElement { on, .. }
            | Step::ReduceElement { on, .. }
            | Step::RelocateElement { on, .. }
            | Step::TransferOpcon { on, .. }
            | Step::ChangeCommandArrangement { on, .. }
            | Step::AmendClause { on, .. }
            | Step::AssignMission { on, .. } => *on,
            Step::InvestCapability { delivery, .. } => *delivery,
        }
    }

    /// The force element the step changes, if any.
    pub fn element_id(&self) -> Option<&ElementId> {
        match self {
            Step::AddElement { element, .. } => Some(&element.id),
            Step::WithdrawElement { element_id, .. }
            | Step::ReduceElement { element_id, .. }
            | Step::RelocateElement { element_id, .. } => Some(element_id),
            _ => None,
        }
    }
}

/// The record of one simulation run in a plan's history: what was simulated, with which model,
/// and what it found, so auditors see which analysis informed which decision. Probabilities are
/// in permille so the record compares exactly; the full results are kept by the simulation
/// service under `run_id` and can be reproduced from the inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationRun {
    pub run_id: uuid::Uuid,
    /// The plan version simulated (the record point).
    pub plan_version: u64,
    /// Whether proposed decisions were included (a what-if run).
    pub what_if: bool,
    /// SHA-256 (hex) of everything the run depended on: plan, version, model data, window,
    /// trials and seed.
    pub inputs_digest: String,
    /// SHA-256 (hex) of the full results.
    pub results_digest: String,
    pub seed: u64,
    pub trials: u32,
    /// First month simulated, and how many.
    pub start: Date,
    pub months: u32,
    /// Version of the model data (required levels, contributions, delay distributions).
    pub model_version: String,
    /// Probability of a shortfall in any area in any month, in permille.
    pub shortfall_permille: u32,
    /// Probability that every condition of the OPCON transfer is met on its scheduled date.
    pub conditions_at_transfer_permille: Option<u32>,
    /// Earliest month in which all those conditions are met with the model's confidence.
    pub conditions_likely_by: Option<Date>,
    /// Withdrawal steps flagged as coming before the ROK capability that replaces them.
    pub sequencing_risks: u32,
    /// One sentence: what the run found.
    pub headline: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equipment counts keep the serde form a tree map gave them: a JSON object in kind order.
    /// Names and bases are held in place, and read and written exactly as the strings they
    /// replaced (a command's digest is SHA-256 of its JSON).
    #[test]
    fn text_is_held_in_place_and_serializes_as_a_string() {
        for text in [
            "",
            "Camp Humphreys",
            "2nd Infantry Division HQ",
            "a name longer than the 24 bytes",
        ] {
            let held = Text::from(text);
            assert_eq!(held.is_heap_allocated(), text.len() > 24, "{text}");
            let json = serde_json::to_string(&held).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<Text>(&json).unwrap(), text);
        }
        assert!(serde_json::from_str::<Text>("7").is_err());
    }

    /// A command's digest is SHA-256 of its JSON, so a command recorded by an earlier build and
    /// retried now must serialize to the same bytes.
    #[test]
    fn equipment_counts_serialize_as_the_map_they_replaced() {
        let counts: EquipmentCounts = [("M1A2".to_owned(), 4), ("F-16".to_owned(), 40)]
            .into_iter()
            .collect();
        let as_tree: std::collections::BTreeMap<String, u32> =
            [("M1A2".to_owned(), 4), ("F-16".to_owned(), 40)]
                .into_iter()
                .collect();
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"F-16":40,"M1A2":4}"#);
        assert_eq!(json, serde_json::to_string(&as_tree).unwrap());
        // Read back in any order, sorted; a kind given twice keeps its last count, as a tree
        // map's did.
        let read: EquipmentCounts =
            serde_json::from_str(r#"{"M1A2":4,"F-16":1,"F-16":40}"#).unwrap();
        assert_eq!(read, counts);
        let tree: std::collections::BTreeMap<String, u32> =
            serde_json::from_str(r#"{"M1A2":4,"F-16":1,"F-16":40}"#).unwrap();
        assert!(read.iter().eq(tree.iter()));
        // Empty, it is still an object (a command's JSON, and so its digest, has one).
        let mut spec: ForceElementSpec = serde_json::from_str(
            r#"{"id":"e1","name":"unit","side":"us","component":"army","kind":"logistics","personnel":1,"equipment":{},"base":"Osan"}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""equipment":{}"#), "{json}");
        spec.equipment = counts.clone();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(r#""equipment":{"F-16":40,"M1A2":4}"#),
            "{json}"
        );
        let step = Step::ReduceElement {
            element_id: ElementId::parse("e1").unwrap(),
            personnel: 1,
            equipment: EquipmentCounts::new(),
            on: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
        };
        let json = serde_json::to_string(&step).unwrap();
        assert!(json.contains(r#""equipment":{}"#), "{json}");
        // Only an object is read: a list of pairs never was.
        assert!(serde_json::from_str::<ForceElementSpec>(
            r#"{"id":"e1","name":"unit","side":"us","component":"army","kind":"logistics","personnel":1,"equipment":[["F-16",4]],"base":"Osan"}"#,
        )
        .is_err());
        // Absent, it is empty.
        let spec: ForceElementSpec = serde_json::from_str(
            r#"{"id":"e1","name":"unit","side":"us","component":"army","kind":"logistics","personnel":1,"base":"Osan"}"#,
        )
        .unwrap();
        assert!(spec.equipment.is_empty());
    }
}
