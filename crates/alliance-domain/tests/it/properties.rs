//! Properties of `decide` and `evolve` over random command sequences.
//!
//! A sequence (up to 60 commands) mostly creates the plan and registers a baseline inventory,
//! then interleaves decision episodes (propose, steps, endorsements, adopt / reject / withdraw)
//! with loose random commands, over small pools of element and decision ids, sides, teams and
//! dates inside and outside the horizon. Adoption chains (each decision adopted before the next,
//! some superseding an earlier one) reach deep adopted plans. Each command is decided against
//! the current state and its events are evolved when it is accepted; refusals are common and
//! the properties hold either way:
//!
//! (a) versions are gapless, (b) folding the accepted events equals the incrementally evolved
//! state, (c) the adopted plan keeps every element rule after every accepted command (and no
//! element ends the horizon with more personnel or equipment than it started with), (d) decide
//! is pure and a refusal changes nothing; and (e) posture totals of elements at the numeric
//! bounds are exact sums.

use std::collections::{BTreeMap, BTreeSet};

use alliance_domain::{
    Actor, CapabilityArea, ClauseStatus, Command, CommandContext, ConditionStatus, Date,
    DomainError, ElementId, ElementTimeline, EquipmentCounts, Event, MAX_EQUIPMENT, MAX_PERSONNEL,
    Plan, Side, Step, decide, evolve, fold,
};
use proptest::prelude::*;
use proptest::sample::select;

use alliance_domain::testing::{
    alliance, clause, cond, created, date, dec, define_clause, el, horizon_end, horizon_start, inv,
    plan_id, rok, spec, us, us_policy,
};

const ELEMENTS: [&str; 5] = ["2id-abct", "8fw", "35ada", "thaad-2", "f35-sq"];
/// Chains work on fewer elements, one registered and one that only a step can add.
const CHAIN_ELEMENTS: [&str; 2] = ["8fw", "f35-sq"];
const DECISIONS: [&str; 6] = ["d1", "d2", "d3", "d4", "d5", "d6"];
/// `c9` is never defined, so it exercises the unknown-condition refusal.
const CONDITIONS: [&str; 3] = ["c1", "c2", "c9"];
const CLAUSES: [&str; 2] = ["k1", "k2"];
const INVESTMENTS: [&str; 2] = ["i1", "i2"];

fn arb_date() -> impl Strategy<Value = Date> {
    prop_oneof![
        20 => (2025i32..=2035, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| date(y, m, d)),
        1 => select(vec![date(2024, 12, 31), date(2036, 1, 1), date(1994, 12, 1)]),
    ]
}

fn arb_actor() -> impl Strategy<Value = Actor> {
    weighted_actor(6)
}

/// One of the four planning teams: the U.S. one weighted `us_weight` against 3, 1 and 1.
fn weighted_actor(us_weight: u32) -> impl Strategy<Value = Actor> {
    prop_oneof![
        us_weight => Just(us()),
        3 => Just(rok()),
        1 => Just(us_policy()),
        1 => Just(alliance()),
    ]
}

fn arb_element(pool: &'static [&'static str]) -> impl Strategy<Value = ElementId> {
    select(pool.to_vec()).prop_map(el)
}

fn arb_decision() -> impl Strategy<Value = String> {
    select(DECISIONS.to_vec()).prop_map(str::to_owned)
}

/// Mostly nothing: a decision superseding one that is not adopted is refused.
fn arb_supersedes() -> impl Strategy<Value = BTreeSet<String>> {
    prop_oneof![
        4 => Just(BTreeSet::new()),
        1 => arb_decision().prop_map(|d| BTreeSet::from([d])),
    ]
}

fn arb_sides() -> impl Strategy<Value = BTreeSet<Side>> {
    prop_oneof![
        10 => Just(BTreeSet::from([Side::Us, Side::Rok])),
        2 => Just(BTreeSet::from([Side::Us])),
        2 => Just(BTreeSet::from([Side::Rok])),
        1 => Just(BTreeSet::new()),
    ]
}

fn arb_equipment() -> impl Strategy<Value = EquipmentCounts> {
    prop_oneof![
        2 => Just(EquipmentCounts::new()),
        1 => (0u32..40).prop_map(|n| [("F-16".to_owned(), n)].into_iter().collect()),
        1 => (0u32..40).prop_map(|n| [("M1A2".to_owned(), n)].into_iter().collect()),
    ]
}

fn arb_step() -> impl Strategy<Value = Step> {
    arb_step_on(&ELEMENTS)
}

/// A step; element steps name an element of `pool`.
fn arb_step_on(pool: &'static [&'static str]) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (arb_element(pool), arb_date())
            .prop_map(|(element_id, on)| Step::WithdrawElement { element_id, on }),
        4 => (arb_element(pool), 0u32..3000, arb_equipment(), arb_date()).prop_map(
            |(element_id, personnel, equipment, on)| Step::ReduceElement {
                element_id,
                personnel,
                equipment,
                on,
            }
        ),
        2 => (arb_element(pool), select(vec!["Osan AB", "Kunsan AB", "Camp Casey", ""]), arb_date())
            .prop_map(|(element_id, to_base, on)| Step::RelocateElement {
                element_id,
                to_base: to_base.to_owned(),
                on,
            }),
        3 => (select(pool.to_vec()), 0u32..3000, arb_equipment(), arb_date()).prop_map(
            |(id, personnel, equipment, on)| {
                let mut element = spec(id, personnel, &[]);
                element.equipment = equipment;
                Step::AddElement { element, on }
            }
        ),
        1 => (prop::collection::btree_set(select(CONDITIONS.to_vec()), 0..3), arb_date())
            .prop_map(|(conditions, on)| Step::TransferOpcon {
                on,
                conditions: conditions.into_iter().map(cond).collect(),
            }),
        1 => (
            arb_date(),
            prop::option::of(select(vec![Side::Us, Side::Rok])),
            prop::option::of(select(vec![Side::Us, Side::Rok])),
        )
            .prop_map(|(on, wartime_opcon, cfc_commander)| Step::ChangeCommandArrangement {
                on,
                peacetime_opcon: None,
                wartime_opcon,
                cfc_commander,
            }),
        1 => (select(CLAUSES.to_vec()), arb_date()).prop_map(|(id, on)| Step::AmendClause {
            clause_id: clause(id),
            status: ClauseStatus::Permitted,
            on,
        }),
        1 => (select(INVESTMENTS.to_vec()), 0u32..=101, arb_date()).prop_map(
            |(id, level_gain, delivery)| Step::InvestCapability {
                investment_id: inv(id),
                area: CapabilityArea::MissileDefense,
                description: "L-SAM".to_owned(),
                level_gain,
                delivery,
                cost_kusd: 1000,
            }
        ),
    ]
}

fn create_plan() -> Command {
    Command::CreatePlan {
        plan_id: plan_id(),
        name: "Alliance modernization".to_owned(),
        description: String::new(),
        horizon_start: horizon_start(),
        horizon_end: horizon_end(),
        grants: Vec::new(),
    }
}

/// One command and who issues it.
fn arb_command() -> impl Strategy<Value = (Actor, Command)> {
    let command = prop_oneof![
        1 => Just(create_plan()),
        3 => (select(ELEMENTS.to_vec()), 0u32..5000, arb_equipment(), arb_date()).prop_map(
            |(id, personnel, equipment, present_from)| {
                let mut element = spec(id, personnel, &[]);
                element.equipment = equipment;
                Command::RegisterForceElement { element, present_from }
            }
        ),
        1 => (select(vec![Side::Us, Side::Rok]), 0u32..=110, arb_date()).prop_map(
            |(side, level, as_of)| Command::RecordCapabilityLevel {
                side,
                area: CapabilityArea::MissileDefense,
                level,
                as_of,
            }
        ),
        1 => (select(CLAUSES.to_vec()), arb_date())
            .prop_map(|(id, since)| define_clause(id, since)),
        1 => (select(CONDITIONS.to_vec()), prop::option::of(0u32..=110)).prop_map(
            |(id, threshold)| Command::DefineCondition {
                condition_id: cond(id),
                title: format!("condition {id}"),
                description: String::new(),
                area: Some(CapabilityArea::MissileDefense),
                threshold,
            }
        ),
        1 => (select(CONDITIONS.to_vec()), arb_date(), prop::option::of(0u32..=110)).prop_map(
            |(id, assessed_on, value)| Command::AssessCondition {
                condition_id: cond(id),
                assessed_on,
                status: ConditionStatus::PartiallyMet,
                value,
                note: String::new(),
            }
        ),
        6 => (
            arb_decision(),
            arb_sides(),
            arb_supersedes(),
            arb_date(),
        )
            .prop_map(|(id, required_sides, supersedes, effective_date)| {
                Command::ProposeDecision {
                    decision_id: dec(&id),
                    title: format!("decision {id}"),
                    rationale: "phased retrenchment".to_owned(),
                    effective_date,
                    required_sides,
                    supersedes: supersedes.iter().map(|s| dec(s)).collect(),
                }
            }),
        4 => (arb_decision(), arb_step()).prop_map(|(id, step)| Command::PlanStep {
            decision_id: dec(&id),
            step,
        }),
        5 => arb_decision().prop_map(|id| Command::EndorseDecision {
            decision_id: dec(&id),
        }),
        4 => arb_decision().prop_map(|id| Command::AdoptDecision {
            decision_id: dec(&id),
            acknowledged_findings: Default::default(),
        }),
        1 => (arb_decision(), select(vec!["too early", ""])).prop_map(|(id, reason)| {
            Command::RejectDecision {
                decision_id: dec(&id),
                reason: reason.to_owned(),
            }
        }),
        1 => (arb_decision(), select(vec!["replanned", ""])).prop_map(|(id, reason)| {
            Command::WithdrawDecision {
                decision_id: dec(&id),
                reason: reason.to_owned(),
            }
        }),
    ];
    (arb_actor(), command)
}

/// The baseline inventory a sequence may start from: three elements present from the start.
fn baseline() -> Vec<(Actor, Command)> {
    [
        ("2id-abct", 4500, ("M1A2", 90)),
        ("8fw", 2000, ("F-16", 40)),
        ("35ada", 2500, ("M1A2", 0)),
    ]
    .into_iter()
    .map(|(id, personnel, equipment)| {
        (
            us(),
            Command::RegisterForceElement {
                element: spec(id, personnel, &[equipment]),
                present_from: horizon_start(),
            },
        )
    })
    .collect()
}

fn arb_endorser() -> impl Strategy<Value = Actor> {
    weighted_actor(3)
}

/// How a decision's episode ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Adopt,
    Reject,
    Withdraw,
    Open,
}

/// The life of one decision: proposed, given steps (mostly by its owner), endorsed by some
/// teams (more often than not by both sides), then adopted, rejected, withdrawn or left open. Every command may still be refused.
fn arb_episode() -> impl Strategy<Value = Vec<(Actor, Command)>> {
    let ending = prop_oneof![
        6 => Just(Ending::Adopt),
        1 => Just(Ending::Reject),
        1 => Just(Ending::Withdraw),
        2 => Just(Ending::Open),
    ];
    (
        (
            arb_decision(),
            arb_actor(),
            arb_sides(),
            arb_supersedes(),
            arb_date(),
        ),
        prop::collection::vec((prop::bool::weighted(0.9), arb_actor(), arb_step()), 0..7),
        (
            prop::bool::weighted(0.6),
            prop::collection::vec(arb_endorser(), 0..4),
        ),
        (arb_actor(), ending),
    )
        .prop_map(
            |(
                (id, owner, sides, supersedes, effective_date),
                steps,
                (both, mut endorsers),
                (closer, ending),
            )| {
                if both {
                    endorsers.extend([us(), rok()]);
                }
                let decision_id = dec(&id);
                let mut commands = vec![(
                    owner.clone(),
                    Command::ProposeDecision {
                        decision_id: decision_id.clone(),
                        title: format!("decision {id}"),
                        rationale: "phased retrenchment".to_owned(),
                        effective_date,
                        required_sides: sides,
                        supersedes: supersedes.iter().map(|s| dec(s)).collect(),
                    },
                )];
                for (by_owner, other, step) in steps {
                    let actor = if by_owner { owner.clone() } else { other };
                    let decision_id = decision_id.clone();
                    commands.push((actor, Command::PlanStep { decision_id, step }));
                }
                for endorser in endorsers {
                    let decision_id = decision_id.clone();
                    commands.push((endorser, Command::EndorseDecision { decision_id }));
                }
                match ending {
                    Ending::Adopt => commands.push((
                        closer,
                        Command::AdoptDecision {
                            decision_id,
                            acknowledged_findings: Default::default(),
                        },
                    )),
                    Ending::Reject => commands.push((
                        closer,
                        Command::RejectDecision {
                            decision_id,
                            reason: "too early".to_owned(),
                        },
                    )),
                    Ending::Withdraw => commands.push((
                        owner,
                        Command::WithdrawDecision {
                            decision_id,
                            reason: "replanned".to_owned(),
                        },
                    )),
                    Ending::Open => {}
                }
                commands
            },
        )
}

/// Interleaves several command lists, keeping the order within each. Most choices stay with
/// the current list, so an episode often completes (and its decision is adopted) before the
/// next one starts, while some choices switch lists mid-way.
fn interleave(mut lists: Vec<Vec<(Actor, Command)>>, choices: &[u16]) -> Vec<(Actor, Command)> {
    for list in &mut lists {
        list.reverse();
    }
    let mut merged = Vec::new();
    let mut choice = choices.iter().cycle();
    let mut current = 0;
    loop {
        lists.retain(|l| !l.is_empty());
        if lists.is_empty() {
            return merged;
        }
        let c = usize::from(*choice.next().unwrap_or(&0));
        if c % 8 == 0 || current >= lists.len() {
            current = (c / 8) % lists.len();
        }
        if let Some(command) = lists[current].pop() {
            merged.push(command);
        }
    }
}

const MAX_COMMANDS: usize = 60;

/// A command sequence of up to 60 commands. Nine times in ten it opens by creating the plan,
/// and then most of the time by registering a baseline inventory, so that steps have elements
/// to work on. Then decision episodes and loose random commands, interleaved.
fn arb_sequence() -> impl Strategy<Value = Vec<(Actor, Command)>> {
    (
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.75),
        prop::collection::vec(arb_episode(), 0..6),
        prop::collection::vec(arb_command(), 0..15),
        prop::collection::vec(any::<u16>(), 1..64),
        prop::collection::vec(prop::bool::weighted(0.3), 6),
    )
        .prop_map(
            |(create_first, with_baseline, episodes, loose, choices, supersede_previous)| {
                let mut sequence = Vec::new();
                if create_first {
                    sequence.push((us(), create_plan()));
                }
                if with_baseline {
                    sequence.extend(baseline());
                }
                let mut lists = episodes;
                // Some episodes supersede the decision of the episode before them, which is often
                // adopted by then: a random supersedes set rarely names an adopted decision.
                for (i, supersede_previous) in supersede_previous.into_iter().enumerate() {
                    if !supersede_previous || i == 0 || i >= lists.len() {
                        continue;
                    }
                    let previous = match lists[i - 1].first() {
                        Some((_, Command::ProposeDecision { decision_id, .. })) => {
                            decision_id.clone()
                        }
                        _ => continue,
                    };
                    if let Some((_, Command::ProposeDecision { supersedes, .. })) =
                        lists[i].first_mut()
                    {
                        *supersedes = BTreeSet::from([previous]);
                    }
                }
                lists.extend(loose.into_iter().map(|c| vec![c]));
                sequence.extend(interleave(lists, &choices));
                sequence.truncate(MAX_COMMANDS);
                sequence
            },
        )
}

/// A chain of decisions, each proposed, planned by its owner, endorsed by both sides and
/// adopted before the next one, some of them superseding an earlier one of the chain. Most
/// commands are accepted, so this reaches deep adopted plans and supersessions that the
/// interleaved sequences reach only rarely.
fn arb_adoption_chain() -> impl Strategy<Value = Vec<(Actor, Command)>> {
    let link = (
        prop::option::weighted(0.4, any::<prop::sample::Index>()),
        prop::collection::vec(arb_step_on(&CHAIN_ELEMENTS), 0..4),
    );
    prop::collection::vec(link, 1..8).prop_map(|links| {
        let mut sequence = vec![(us(), create_plan())];
        sequence.extend(baseline());
        for (i, (supersede, steps)) in links.into_iter().enumerate() {
            let decision_id = dec(&format!("chain-{i}"));
            let supersedes = match supersede {
                Some(index) if i > 0 => BTreeSet::from([dec(&format!("chain-{}", index.index(i)))]),
                _ => BTreeSet::new(),
            };
            sequence.push((
                us(),
                Command::ProposeDecision {
                    decision_id: decision_id.clone(),
                    title: format!("link {i}"),
                    rationale: "phased retrenchment".to_owned(),
                    effective_date: horizon_start(),
                    required_sides: BTreeSet::from([Side::Us, Side::Rok]),
                    supersedes,
                },
            ));
            for step in steps {
                let decision_id = decision_id.clone();
                sequence.push((us(), Command::PlanStep { decision_id, step }));
            }
            for endorser in [us(), rok()] {
                let decision_id = decision_id.clone();
                sequence.push((endorser, Command::EndorseDecision { decision_id }));
            }
            sequence.push((
                alliance(),
                Command::AdoptDecision {
                    decision_id,
                    acknowledged_findings: Default::default(),
                },
            ));
        }
        sequence
    })
}

/// What running a sequence leaves: the incrementally evolved state and every accepted event.
struct Run {
    plan: Plan,
    events: Vec<Event>,
    accepted: usize,
    /// How often each rule (or error kind) refused a command.
    refusals: BTreeMap<String, usize>,
}

/// The rule that refused a command, or the kind of error for the other refusals.
fn refusal_name(e: &DomainError) -> String {
    match e {
        DomainError::Rule { rule, .. } => (*rule).to_owned(),
        other => format!("{:?}", other.kind()),
    }
}

/// Every element the plan knows of, registered or planned by a step.
fn element_ids(plan: &Plan) -> BTreeSet<ElementId> {
    plan.elements
        .keys()
        .chain(plan.planned_elements.keys())
        .cloned()
        .collect()
}

/// The adopted plan keeps every rule: each element's timeline builds, and at the horizon end
/// no element has more personnel or equipment than it started with.
fn check_adopted_plan(plan: &Plan) -> Result<(), TestCaseError> {
    for id in element_ids(plan) {
        let timeline = ElementTimeline::build(plan, &id, [], &BTreeSet::new());
        let timeline = match timeline {
            Ok(t) => t,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "the adopted plan breaks a rule on element {id}: {e:?}"
                )));
            }
        };
        let Some(timeline) = timeline else {
            // Only planned by a decision that is not adopted: nothing to check.
            prop_assert!(!plan.elements.contains_key(&id));
            continue;
        };
        let end = timeline.at(plan.horizon_end);
        prop_assert!(
            end.personnel <= timeline.spec.personnel,
            "element {id}: {} personnel at the horizon end, {} at the start",
            end.personnel,
            timeline.spec.personnel
        );
        for (kind, count) in &end.equipment {
            let initial = timeline.spec.equipment.get(kind).copied().unwrap_or(0);
            prop_assert!(
                *count <= initial,
                "element {id}: {count} {kind} at the horizon end, {initial} at the start"
            );
        }
    }
    Ok(())
}

/// Runs a sequence, checking the per-command properties on the way.
fn run(commands: &[(Actor, Command)]) -> Result<Run, TestCaseError> {
    let mut plan = Plan::default();
    let mut events = Vec::new();
    let mut accepted = 0;
    let mut refusals = BTreeMap::new();
    for (actor, command) in commands {
        let ctx = CommandContext {
            actor: actor.clone(),
        };
        let before = plan.clone();
        let result = decide(&plan, command, &ctx);
        // (d) decide is pure: the same state and command give the same answer, and the state is
        // left as it was.
        prop_assert_eq!(&result, &decide(&plan, command, &ctx));
        prop_assert_eq!(&plan, &before);
        match result {
            Ok(new_events) => {
                prop_assert!(
                    !new_events.is_empty(),
                    "{command:?} was accepted with no event"
                );
                let next = fold(plan, &new_events);
                // (a) gapless versions: one version per event.
                prop_assert_eq!(
                    next.version,
                    before.version + new_events.len() as u64,
                    "{:?} produced {:?}",
                    command,
                    new_events
                );
                plan = next;
                events.extend(new_events);
                accepted += 1;
                // (c) after every accepted command, the adopted plan keeps the rules.
                check_adopted_plan(&plan).map_err(|e| {
                    TestCaseError::fail(format!("after {command:?} by {}: {e}", actor.team))
                })?;
            }
            Err(e) => {
                *refusals.entry(refusal_name(&e)).or_default() += 1;
                // (d) a refused command changes nothing.
                prop_assert_eq!(&plan, &before);
            }
        }
    }
    Ok(Run {
        plan,
        events,
        accepted,
        refusals,
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a)–(d): gapless versions, fold equals incremental evolution, the adopted plan keeps the
    /// rules after every accepted command, refusals change nothing.
    #[test]
    fn random_command_sequences_keep_the_invariants(commands in arb_sequence()) {
        let Run { plan, events, .. } = run(&commands)?;
        // (a) over the whole stream: the version is the number of events.
        prop_assert_eq!(plan.version, events.len() as u64);
        // (b) folding the accepted events from scratch gives the incrementally evolved state.
        prop_assert_eq!(&fold(Plan::default(), &events), &plan);
        let stepwise = events.iter().fold(Plan::default(), evolve);
        prop_assert_eq!(&stepwise, &plan);
        // (c) at the end, too.
        check_adopted_plan(&plan)?;
        // Without a PlanCreated nothing is ever accepted.
        if !plan.exists() {
            prop_assert!(events.is_empty());
        }
    }

    /// (a)–(d) again, on chains of adopted and superseding decisions.
    #[test]
    fn adoption_chains_keep_the_invariants(commands in arb_adoption_chain()) {
        let Run { plan, events, .. } = run(&commands)?;
        prop_assert_eq!(plan.version, events.len() as u64);
        prop_assert_eq!(&fold(Plan::default(), &events), &plan);
        check_adopted_plan(&plan)?;
    }

    /// A branch taken at the end of a random sequence is the parent's state under a new id at
    /// version 1, and the parent's later events do not reach it.
    #[test]
    fn a_branch_holds_the_parents_history_at_the_version_branched(
        commands in arb_sequence(),
        later in prop::collection::vec(arb_command(), 0..10),
    ) {
        let Run { plan: parent, .. } = run(&commands)?;
        let branch_id = alliance_domain::PlanId::from_u128(0xb7a4c4);
        let branch = Command::BranchPlan {
            new_plan_id: branch_id,
            parent_version: parent.version,
            name: "scenario".to_owned(),
            description: String::new(),
        };
        let ctx = CommandContext { actor: us() };
        let Ok(opening) = decide(&parent, &branch, &ctx) else {
            prop_assert!(!parent.exists(), "branching an existing plan was refused");
            return Ok(());
        };
        prop_assert_eq!(opening.len(), 1);
        let branched = fold(parent.clone(), &opening);
        prop_assert_eq!(branched.version, 1);
        prop_assert_eq!(branched.id, Some(branch_id));
        let mut expected_lineage = parent.lineage.clone();
        expected_lineage.push((plan_id(), parent.version));
        prop_assert_eq!(&branched.lineage, &expected_lineage);
        prop_assert_eq!(&branched.decisions, &parent.decisions);
        prop_assert_eq!(&branched.elements, &parent.elements);
        prop_assert_eq!(&branched.planned_elements, &parent.planned_elements);
        prop_assert_eq!(&branched.conditions, &parent.conditions);
        prop_assert_eq!(&branched.clauses, &parent.clauses);
        prop_assert_eq!(&branched.capability_levels, &parent.capability_levels);
        // The branch then decides as its parent would: the same commands, applied to both in
        // lockstep, get the same answers, and the two stay alike but for identity and version.
        let mut parent_now = parent.clone();
        let mut branch_now = branched.clone();
        for (actor, command) in &later {
            let ctx = CommandContext { actor: actor.clone() };
            let on_parent = decide(&parent_now, command, &ctx);
            prop_assert_eq!(&on_parent, &decide(&branch_now, command, &ctx));
            if let Ok(events) = on_parent {
                parent_now = fold(parent_now, &events);
                branch_now = fold(branch_now, &events);
            }
        }
        prop_assert_eq!(branch_now.version - 1, parent_now.version - parent.version);
        prop_assert_eq!(&branch_now.decisions, &parent_now.decisions);
        prop_assert_eq!(&branch_now.elements, &parent_now.elements);
        prop_assert_eq!(branch_now.id, Some(branch_id));
        prop_assert_eq!(&branch_now.lineage, &expected_lineage);
    }
}

/// Draws `count` values of `strategy` from a fixed seed.
fn samples<S: Strategy>(strategy: &S, seed: u64, count: usize) -> Vec<S::Value> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngSeed, TestRunner};

    let mut runner = TestRunner::new(ProptestConfig {
        rng_seed: RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    });
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

/// The generators are useful only if they reach the interesting states: over a fixed sample of
/// sequences, decisions get adopted and superseded, element steps get accepted, and the rules
/// that matter most refuse some commands.
#[test]
fn the_generators_reach_adoptions_element_steps_and_refusals() {
    let mut sequences = samples(&arb_sequence(), 2027, 64);
    sequences.extend(samples(&arb_adoption_chain(), 2031, 64));
    let (mut accepted, mut adopted, mut superseded, mut element_steps) = (0, 0, 0, 0);
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for commands in &sequences {
        // A sequence that breaks a property is reported by the property tests, not here.
        let Ok(outcome) = run(commands) else {
            continue;
        };
        accepted += outcome.accepted;
        for (rule, n) in outcome.refusals {
            *refusals.entry(rule).or_default() += n;
        }
        for event in &outcome.events {
            match event {
                Event::DecisionAdopted { .. } => adopted += 1,
                Event::DecisionSuperseded { .. } => superseded += 1,
                Event::StepPlanned { step, .. } if step.element_id().is_some() => {
                    element_steps += 1;
                }
                _ => {}
            }
        }
    }
    eprintln!(
        "accepted {accepted}, adopted {adopted}, superseded {superseded}, element steps \
         {element_steps}, refusals {refusals:?}"
    );
    assert!(accepted > 600, "only {accepted} commands accepted");
    assert!(adopted > 100, "only {adopted} adoptions");
    assert!(superseded > 5, "only {superseded} supersessions");
    assert!(element_steps > 60, "only {element_steps} element steps");
    for rule in [
        "plan_missing",
        "not_owner",
        "already_endorsed",
        "no_side",
        "endorsement_missing",
        "endorsement_not_required",
        "decision_closed",
        "negative_personnel",
        "negative_equipment",
        "withdrawn_twice",
        "after_withdrawal",
        "before_present",
        "InvalidArgument",
        "NotFound",
        "AlreadyExists",
    ] {
        assert!(
            refusals.contains_key(rule),
            "no command was refused by {rule}: {refusals:?}"
        );
    }
}

/// A count at its bound, just under it, or anywhere in range.
fn arb_bounded(max: u32) -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(max), 1 => Just(max - 1), 2 => 0..=max]
}

/// One element at or near the bounds: side, personnel, and one equipment line.
fn arb_bounded_element() -> impl Strategy<Value = (Side, u32, &'static str, u32)> {
    (
        select(vec![Side::Us, Side::Rok]),
        arb_bounded(MAX_PERSONNEL),
        select(vec!["K2", "M1A2"]),
        arb_bounded(MAX_EQUIPMENT),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (e) Thousands of elements at the bounds (more personnel than a `u32` holds on one side):
    /// every one is accepted, and the posture's totals are the exact `u64` sums, without a panic.
    #[test]
    fn posture_totals_at_the_bounds_are_exact_sums(
        random in proptest::collection::vec(arb_bounded_element(), 0..400),
    ) {
        // 4,300 U.S. elements at the bound already hold more than `u32::MAX` personnel.
        let elements = std::iter::repeat_n((Side::Us, MAX_PERSONNEL, "M1A2", MAX_EQUIPMENT), 4_300)
            .chain(random);
        let ctx = CommandContext { actor: us() };
        let mut plan = fold(Plan::default(), &[created()]);
        let mut personnel: BTreeMap<Side, u64> = BTreeMap::new();
        let mut equipment: BTreeMap<(Side, String), u64> = BTreeMap::new();
        for (i, (side, people, kind, count)) in elements.enumerate() {
            let mut element = spec(&format!("e{i}"), people, &[(kind, count)]);
            element.side = side;
            let command = Command::RegisterForceElement { element, present_from: horizon_start() };
            let events = decide(&plan, &command, &ctx)
                .map_err(|e| TestCaseError::fail(format!("refused at the bounds: {e}")))?;
            plan = events.iter().fold(plan, evolve);
            *personnel.entry(side).or_default() += u64::from(people);
            *equipment.entry((side, kind.to_owned())).or_default() += u64::from(count);
        }
        let posture = alliance_domain::posture(&plan, horizon_start(), false);
        for side in [Side::Us, Side::Rok] {
            prop_assert_eq!(posture.personnel_of(side), personnel.get(&side).copied().unwrap_or(0));
        }
        let mut by_kind: BTreeMap<(Side, String), u64> = BTreeMap::new();
        for ((side, kind), total) in &posture.equipment {
            *by_kind.entry((*side, kind.clone())).or_default() += total;
        }
        equipment.retain(|_, n| *n > 0);
        by_kind.retain(|_, n| *n > 0);
        prop_assert_eq!(by_kind, equipment);
    }
}

/// One past each bound is refused, naming the field.
#[test]
fn one_past_the_bounds_is_refused() {
    let plan = fold(Plan::default(), &[created()]);
    let ctx = CommandContext { actor: us() };
    let command = Command::RegisterForceElement {
        element: spec("e", MAX_PERSONNEL + 1, &[("K2", MAX_EQUIPMENT + 1)]),
        present_from: horizon_start(),
    };
    let Err(DomainError::Invalid(violations)) = decide(&plan, &command, &ctx) else {
        panic!("accepted one past the bounds");
    };
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["element.personnel", "element.equipment"]);
}
