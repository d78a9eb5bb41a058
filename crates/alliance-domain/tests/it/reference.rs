//! The reference plan in `deploy/reference-plan.json`: every entry is a domain command that
//! `decide` accepts, and the plan it builds says what the policy paper and the history say.

use std::collections::{BTreeMap, BTreeSet};

use alliance_domain::{
    Actor, ClauseStatus, Command, CommandContext, DecisionId, DecisionStatus, ElementId,
    ElementKind, ElementTimeline, EquipmentCounts, Plan, PlanId, Prerequisite, Side, Sides, Step,
    TeamId, all_findings, decide, fold, posture,
};
use chrono::NaiveDate;
use serde::Deserialize;

const REFERENCE_PLAN: &str = include_str!("../../../../deploy/reference-plan.json");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferencePlan {
    plan_id: PlanId,
    name: String,
    sources: Vec<Source>,
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    id: String,
    citation: String,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "as")]
    team: String,
    source: String,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
    command: Command,
}

const PLAN_NAME: &str = "Alliance modernization 2027–2034";

/// The teams of the reference plan and the side each endorses for.
fn team_side(team: &str) -> Option<Option<Side>> {
    match team {
        "us-force-planning" | "nuclear-policy" => Some(Some(Side::Us)),
        "rok-jcs" => Some(Some(Side::Rok)),
        "alliance-approvers" => Some(None),
        _ => None,
    }
}

const HISTORY_ADOPTED: &[&str] = &[
    "hist-1954-mdt-in-force",
    "hist-1978-cfc-formed",
    "hist-1994-peacetime-opcon",
    "hist-2014-conditions-based-opcon",
    "hist-2018-alliance-guiding-principles",
    "hist-2021-missile-guidelines-ended",
    "hist-2023-washington-declaration",
    "hist-2025-a10-divestment",
];

/// Earlier dated transfers, cancelled by the decisions that superseded them.
const HISTORY_SUPERSEDED: &[(&str, &str)] = &[
    ("hist-2007-opcon-2012", "hist-2010-opcon-2015"),
    ("hist-2010-opcon-2015", "hist-2014-conditions-based-opcon"),
];

const OPCON_TRANSFER: &str = "opcon-wartime-transfer";
const RETRENCHMENT: &[&str] = &[
    "retrenchment-phase-1-ground",
    "retrenchment-phase-2-air-enablers",
];
const PROPOSALS: &[&str] = &[
    OPCON_TRANSFER,
    "opplan-revision-post-transfer",
    "nuclear-latency-123-relaxation",
    "retrenchment-phase-1-ground",
    "retrenchment-phase-2-air-enablers",
    "rok-investments-named-gaps",
    "rok-investments-enablers",
    "security-guarantee-scope-talks",
];

fn date(s: &str) -> NaiveDate {
    s.parse().expect("a YYYY-MM-DD date")
}

fn did(s: &str) -> DecisionId {
    DecisionId::parse(s).expect("a decision id")
}

fn reference() -> ReferencePlan {
    serde_json::from_str(REFERENCE_PLAN)
        .unwrap_or_else(|e| panic!("deploy/reference-plan.json does not parse: {e}"))
}

/// Every field written in the file is one the command reads: serde would otherwise skip a
/// misspelled optional field in silence. The re-serialized command may add defaults.
fn assert_subset(written: &serde_json::Value, read: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (written, read) {
        (Value::Object(w), Value::Object(r)) => {
            for (key, value) in w {
                let Some(other) = r.get(key) else {
                    panic!("{path}.{key} is not a field of the command (misspelled or unknown)");
                };
                assert_subset(value, other, &format!("{path}.{key}"));
            }
        }
        _ => assert_eq!(written, read, "{path} reads back differently"),
    }
}

/// Applies every entry in order, failing on the first refusal with its index.
fn build(reference: &ReferencePlan) -> Plan {
    let mut plan = Plan::default();
    for (i, entry) in reference.entries.iter().enumerate() {
        let side = team_side(&entry.team).unwrap_or_else(|| {
            panic!(
                "entry {i}: team {:?} is not a team of the reference plan",
                entry.team
            )
        });
        let ctx = CommandContext {
            actor: Actor {
                team: TeamId::parse(&entry.team).expect("a team id"),
                user: "reference-plan".to_owned(),
                side,
            },
        };
        let events = decide(&plan, &entry.command, &ctx).unwrap_or_else(|e| {
            panic!(
                "entry {i} ({} as {}) refused: {e}",
                entry.command.name(),
                entry.team
            )
        });
        assert!(!events.is_empty(), "entry {i} produced no events");
        plan = fold(plan, &events);
    }
    plan
}

#[test]
fn reference_plan_is_well_formed() {
    let reference = reference();
    let value: serde_json::Value = serde_json::from_str(REFERENCE_PLAN).expect("json");
    let written = value["entries"].as_array().expect("an entries array");
    for (i, (entry, raw)) in reference.entries.iter().zip(written).enumerate() {
        let read = serde_json::to_value(&entry.command).expect("a command serializes");
        assert_subset(&raw["command"], &read, &format!("entries[{i}].command"));
    }

    let mut ids = BTreeSet::new();
    for source in &reference.sources {
        assert!(ids.insert(source.id.as_str()), "source {} twice", source.id);
        assert!(
            !source.citation.trim().is_empty(),
            "source {} has no citation",
            source.id
        );
        assert!(
            !source.note.trim().is_empty(),
            "source {} has no note",
            source.id
        );
    }
    for (i, entry) in reference.entries.iter().enumerate() {
        assert!(
            ids.contains(entry.source.as_str()),
            "entry {i} cites unknown source {}",
            entry.source
        );
    }
    let used: BTreeSet<&str> = reference
        .entries
        .iter()
        .map(|e| e.source.as_str())
        .collect();
    assert_eq!(used, ids, "every source is cited by some entry");

    match reference.entries.first().map(|e| &e.command) {
        Some(Command::CreatePlan { plan_id, name, .. }) => {
            assert_eq!(*plan_id, reference.plan_id);
            assert_eq!(name, &reference.name);
        }
        other => panic!("the first entry must create the plan, got {other:?}"),
    }
}

#[test]
fn reference_plan_is_accepted_and_says_what_the_paper_says() {
    let reference = reference();
    let plan = build(&reference);

    // The plan.
    assert_eq!(plan.id, Some(reference.plan_id));
    assert_eq!(plan.name, PLAN_NAME);
    assert_eq!(reference.name, PLAN_NAME);
    assert_eq!(plan.horizon_start, date("1950-01-01"));
    assert_eq!(plan.horizon_end, date("2040-12-31"));

    // The baseline: about 28,500 U.S. personnel.
    let us_personnel: u32 = plan
        .elements
        .values()
        .filter(|e| e.spec.side == Side::Us)
        .map(|e| e.spec.personnel)
        .sum();
    assert!(
        (27_000..=30_000).contains(&us_personnel),
        "U.S. personnel {us_personnel}"
    );
    let kinds: BTreeSet<ElementKind> = plan.elements.values().map(|e| e.spec.kind).collect();
    for kind in [
        ElementKind::GroundCombatBrigade,
        ElementKind::CombatAviation,
        ElementKind::FieldArtillery,
        ElementKind::AirDefense,
        ElementKind::Thaad,
        ElementKind::FighterSquadron,
        ElementKind::Isr,
        ElementKind::Logistics,
        ElementKind::Medical,
        ElementKind::SignalC2,
        ElementKind::Headquarters,
        ElementKind::StrategicEnabler,
    ] {
        assert!(
            kinds.contains(&kind),
            "no baseline element of kind {kind:?}"
        );
    }

    // History: adopted, and the cancelled dated transfers superseded.
    for id in HISTORY_ADOPTED {
        let d = &plan.decisions[&did(id)];
        assert_eq!(d.status, DecisionStatus::Adopted, "{id}");
        assert!(d.effective_date < date("2026-01-01"), "{id} is history");
    }
    for (old, new) in HISTORY_SUPERSEDED {
        let d = &plan.decisions[&did(old)];
        assert_eq!(d.status, DecisionStatus::Superseded, "{old}");
        assert_eq!(d.superseded_by(), Some(&did(new)), "{old}");
    }
    // The command arrangement the adopted history leaves: peacetime OPCON with the ROK, wartime
    // OPCON and the CFC with the U.S.
    let arrangement = command_arrangement(&plan, date("2026-01-01"));
    assert_eq!(
        arrangement,
        (Some(Side::Rok), Some(Side::Us), Some(Side::Us)),
        "(peacetime, wartime, CFC commander) today"
    );
    assert_eq!(
        command_arrangement(&plan, date("1990-01-01")),
        (Some(Side::Us), Some(Side::Us), Some(Side::Us))
    );

    // 2021: the missile guidelines end by an adopted decision.
    let guidelines = plan
        .clauses
        .values()
        .find(|c| c.id.as_str() == "missile-guidelines-range-payload")
        .expect("the missile guidelines clause");
    assert_eq!(guidelines.status, ClauseStatus::Restricted);
    assert!(guidelines.since.to_string().starts_with("1979"));
    let termination = plan.adopted().find(|d| {
        d.steps.iter().any(|s| {
            matches!(s, Step::AmendClause { clause_id, status: ClauseStatus::Terminated, on }
                if clause_id == &guidelines.id && on.to_string().starts_with("2021"))
        })
    });
    assert_eq!(
        termination.map(|d| d.id.as_str()),
        Some("hist-2021-missile-guidelines-ended")
    );

    // The paper's proposals: all proposed, none adopted.
    for id in PROPOSALS {
        let d = plan
            .decisions
            .get(&did(id))
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(d.status, DecisionStatus::Proposed, "{id}");
    }

    // (1) The OPCON transfer names existing conditions and both sides have endorsed it.
    let opcon = &plan.decisions[&did(OPCON_TRANSFER)];
    let transfers: Vec<&BTreeSet<_>> = opcon
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::TransferOpcon { conditions, .. } => Some(conditions),
            _ => None,
        })
        .collect();
    assert_eq!(transfers.len(), 1);
    let named: BTreeSet<&str> = transfers[0].iter().map(|c| c.as_str()).collect();
    assert_eq!(
        named,
        BTreeSet::from(["rok-c2-certified"]),
        "the paper ties the capability gaps to self-reliance and says North Korea's arsenal \
         should not prevent the transfer: only ROK-led C2 gates it"
    );
    for c in transfers[0] {
        assert!(plan.conditions.contains_key(c), "condition {c} not defined");
    }
    assert_eq!(
        plan.conditions
            .values()
            .find(|c| c.id.as_str() == "rok-missile-defense-70")
            .and_then(|c| c.threshold),
        Some(70)
    );
    assert_eq!(opcon.endorsements, Sides::from([Side::Us, Side::Rok]));

    // (3) The 123 relaxation belongs to the nuclear-policy cell and needs both sides.
    let latency = &plan.decisions[&did("nuclear-latency-123-relaxation")];
    assert_eq!(latency.owner_team.as_str(), "nuclear-policy");
    assert_eq!(latency.required_sides, Sides::from([Side::Us, Side::Rok]));
    let permitted: BTreeSet<&str> = latency
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::AmendClause {
                clause_id,
                status: ClauseStatus::Permitted,
                ..
            } => Some(clause_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        permitted,
        BTreeSet::from(["123-enrichment", "123-reprocessing"])
    );

    // (4) The retrenchment: U.S.-owned, 2029-2033, ground first, then air and enablers.
    let mut retrenchment_steps: Vec<(&DecisionId, &Step)> = Vec::new();
    for (phase, id) in RETRENCHMENT.iter().enumerate() {
        let d = &plan.decisions[&did(id)];
        assert_eq!(d.owner_team.as_str(), "us-force-planning", "{id}");
        assert!(!d.steps.is_empty(), "{id} has no steps");
        let (from, to) = if phase == 0 {
            ("2029-07-01", "2030-12-31")
        } else {
            ("2031-01-01", "2033-12-31")
        };
        for s in &d.steps {
            assert!(
                (date(from)..=date(to)).contains(&s.date()),
                "{id}: step dated {} outside {from}..{to}",
                s.date()
            );
        }
        retrenchment_steps.extend(d.steps.iter().map(|s| (&d.id, s)));
    }
    let ground_first = plan.decisions[&did(RETRENCHMENT[0])]
        .steps
        .iter()
        .filter_map(Step::element_id)
        .map(|e| plan.elements[e].spec.kind)
        .collect::<BTreeSet<_>>();
    assert!(ground_first.contains(&ElementKind::GroundCombatBrigade));
    assert!(ground_first.contains(&ElementKind::CombatAviation));
    assert!(ground_first.contains(&ElementKind::FieldArtillery));

    // Adopting both phases would be accepted, and leaves what the paper says stays.
    let after = date("2034-01-01");
    let touched: BTreeSet<&ElementId> = retrenchment_steps
        .iter()
        .filter_map(|(_, s)| s.element_id())
        .collect();
    let mut remaining: BTreeMap<&ElementId, (ElementKind, u32, EquipmentCounts)> = BTreeMap::new();
    for (id, e) in plan.elements.iter() {
        let state = if touched.contains(id) {
            let timeline = ElementTimeline::build(
                &plan,
                id,
                retrenchment_steps.iter().copied(),
                &BTreeSet::new(),
            )
            .unwrap_or_else(|err| panic!("the two phases together are inconsistent: {err}"))
            .expect("a registered element");
            timeline.at(after)
        } else {
            ElementTimeline::build(&plan, id, [], &BTreeSet::new())
                .expect("baseline timeline")
                .expect("a registered element")
                .at(after)
        };
        if state.present && e.spec.side == Side::Us {
            remaining.insert(id, (e.spec.kind, state.personnel, state.equipment));
        }
    }
    let left: u32 = remaining.values().map(|(_, p, _)| p).sum();
    assert!(
        left > 0 && left < us_personnel / 4,
        "{left} U.S. personnel stay after 2033; the paper says few"
    );
    let kinds_left: BTreeSet<ElementKind> = remaining.values().map(|(k, _, _)| *k).collect();
    for gone in [
        ElementKind::GroundCombatBrigade,
        ElementKind::CombatAviation,
        ElementKind::FieldArtillery,
        ElementKind::StrategicEnabler,
    ] {
        assert!(!kinds_left.contains(&gone), "{gone:?} stays after 2033");
    }
    for kept in [
        ElementKind::Logistics,
        ElementKind::FighterSquadron,
        ElementKind::AirDefense,
    ] {
        assert!(kinds_left.contains(&kept), "no {kept:?} stays after 2033");
    }
    let fighters: u32 = remaining
        .values()
        .filter(|(k, _, _)| *k == ElementKind::FighterSquadron)
        .flat_map(|(_, _, eq)| eq.values())
        .sum();
    assert!(fighters > 0 && fighters < 40, "{fighters} fighters stay");

    // (5) ROK investments close the three named gaps.
    let invested: BTreeSet<_> = ["rok-investments-named-gaps", "rok-investments-enablers"]
        .iter()
        .flat_map(|id| plan.decisions[&did(id)].steps.iter())
        .filter_map(|s| match s {
            Step::InvestCapability { area, .. } => Some(*area),
            _ => None,
        })
        .collect();
    use alliance_domain::CapabilityArea as A;
    for area in [
        A::CombatSupport,
        A::Munitions,
        A::MissileDefense,
        A::Isr,
        A::CommandAndControl,
    ] {
        assert!(invested.contains(&area), "no ROK investment in {area:?}");
    }
    for d in ["rok-investments-named-gaps", "rok-investments-enablers"] {
        assert_eq!(plan.decisions[&did(d)].owner_team.as_str(), "rok-jcs");
    }

    // (6) The paper's order, as prerequisites: the transfer, then the revised plans, then the
    // two phases of the retrenchment; and the plan passes its own findings check, adopted and
    // what-if, the U.S. personnel floor lifted by a certification before the drawdown passes it.
    let after = |d: &str, on: &str| {
        plan.decisions[&did(d)]
            .prerequisites()
            .contains(&Prerequisite::AfterDecision {
                decision_id: did(on),
                lag_months: 0,
            })
    };
    assert!(after("opplan-revision-post-transfer", OPCON_TRANSFER));
    assert!(after(RETRENCHMENT[0], "opplan-revision-post-transfer"));
    assert!(after(RETRENCHMENT[1], RETRENCHMENT[0]));
    for what_if in [false, true] {
        let found = all_findings(&plan, what_if);
        assert!(found.is_empty(), "what-if {what_if}: {found:#?}");
    }
    let floor = plan
        .constraints
        .values()
        .find(|c| c.id.as_str() == "us-personnel-floor")
        .expect("the U.S. personnel floor");
    assert_eq!(floor.side, Some(Side::Us));
    let first_cut = retrenchment_steps
        .iter()
        .map(|(_, s)| s.date())
        .min()
        .unwrap();
    assert!(floor.waived_from().is_some_and(|from| from < first_cut));

    // (7) The operational plans: today the U.S.-led CFC leads major combat; once revised, the
    // ROK leads every mission on the peninsula, the U.S. supporting logistics and intelligence
    // and leading what comes from off the peninsula.
    let lead = |on: &str, what_if, mission| {
        posture(&plan, date(on), what_if)
            .missions
            .iter()
            .find(|m| m.mission == mission)
            .map(|m| (m.lead, m.supporting))
    };
    use alliance_domain::Mission as M;
    assert_eq!(
        lead("2026-01-01", false, M::MajorCombat),
        Some((Side::Us, Some(Side::Rok)))
    );
    assert_eq!(
        lead("2026-01-01", false, M::PeacetimeSecurity),
        Some((Side::Rok, Some(Side::Us)))
    );
    for (mission, expected) in [
        (M::PeacetimeSecurity, (Side::Rok, None)),
        (M::MajorCombat, (Side::Rok, None)),
        (M::CombatSupport, (Side::Rok, None)),
        (M::Logistics, (Side::Rok, Some(Side::Us))),
        (M::Intelligence, (Side::Rok, Some(Side::Us))),
        (M::Reinforcement, (Side::Us, None)),
        (M::ExtendedDeterrence, (Side::Us, None)),
    ] {
        assert_eq!(
            lead("2029-07-01", true, mission),
            Some(expected),
            "{mission:?}"
        );
    }

    println!(
        "reference plan: {} entries, {} U.S. personnel registered, {left} left after the retrenchment",
        reference.entries.len(),
        us_personnel
    );
    for d in plan.decisions.values() {
        println!(
            "  {:<40} {:?} endorsed by {:?}",
            d.id.as_str(),
            d.status,
            d.endorsements
        );
    }
}

/// (peacetime OPCON, wartime OPCON, CFC commander) on `on` under the adopted decisions.
fn command_arrangement(plan: &Plan, on: NaiveDate) -> (Option<Side>, Option<Side>, Option<Side>) {
    let mut steps: Vec<&Step> = plan
        .adopted()
        .flat_map(|d| d.steps.iter())
        .filter(|s| s.date() <= on)
        .collect();
    steps.sort_by_key(|s| s.date());
    let mut arrangement = (None, None, None);
    for step in steps {
        match step {
            Step::ChangeCommandArrangement {
                peacetime_opcon: peacetime,
                wartime_opcon: wartime,
                cfc_commander: cfc,
                ..
            } => {
                let (was_peacetime, was_wartime, was_cfc) = arrangement;
                let peacetime = peacetime.or(was_peacetime);
                arrangement = (peacetime, wartime.or(was_wartime), cfc.or(was_cfc));
            }
            Step::TransferOpcon { .. } => {
                arrangement.1 = Some(Side::Rok);
                arrangement.2 = Some(Side::Rok);
            }
            _ => {}
        }
    }
    arrangement
}
