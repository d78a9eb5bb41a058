//! The engine on the reference plan and on small hand-made plans: reproducibility across
//! threads, runs without variance, monotonicity in delivery dates, a worked example computed
//! by hand, overlays, cancellation and the checks on model data.

use std::collections::BTreeSet;
use std::path::Path;

use alliance_commands::reference::ReferencePlan;
use alliance_domain::testing::{cond as cid, date, dec as did, el as eid, inv as iid, rok, us};
use alliance_domain::{
    Actor, CapabilityArea, Command, CommandContext, Component, ConditionStatus, Date,
    DecisionStatus, DomainError, ElementKind, ForceElementSpec, InvestmentId, Plan, Side, Step,
    decide, fold,
};
use alliance_server::{Authenticator, TokenFile};
use alliance_simulation::engine::{AreaMonth, Bands, Sensitivity, SequencingRisk};
use alliance_simulation::model::{AREAS, Distribution, area_index};
use alliance_simulation::{
    Cancelled, Control, LoadedModel, ModelError, Outcome, Scenario, Window, apply_overlay, run,
    scenario,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Plans

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn reference_plan() -> Plan {
    let auth = Authenticator::from_token_file(
        &TokenFile::load(&repo().join("deploy/dev-tokens.toml")).unwrap(),
    )
    .unwrap();
    ReferencePlan::read(&repo().join("deploy/reference-plan.json"))
        .unwrap()
        .fold(&auth)
        .unwrap()
}

/// Decides `command` as `actor` and folds its events onto `plan`.
fn apply(plan: Plan, actor: &Actor, command: Command) -> Plan {
    let name = command.name();
    let ctx = CommandContext {
        actor: actor.clone(),
    };
    let events = decide(&plan, &command, &ctx).unwrap_or_else(|e| panic!("{name} refused: {e}"));
    fold(plan, &events)
}

fn create_plan() -> Command {
    Command::CreatePlan {
        plan_id: uuid::Uuid::from_u128(0x5eed_0001),
        name: "Engine test plan".into(),
        description: String::new(),
        horizon_start: date(2025, 1, 1),
        horizon_end: date(2040, 12, 31),
        grants: Vec::new(),
    }
}

fn record(side: Side, area: CapabilityArea, level: u32, as_of: Date) -> Command {
    Command::RecordCapabilityLevel {
        side,
        area,
        level,
        as_of,
    }
}

fn register(id: &str, side: Side, kind: ElementKind, personnel: u32) -> Command {
    Command::RegisterForceElement {
        element: ForceElementSpec {
            id: eid(id),
            name: id.into(),
            side,
            component: Component::Army,
            kind,
            personnel,
            equipment: Default::default(),
            base: "Camp Humphreys".into(),
        },
        present_from: date(2025, 1, 1),
    }
}

fn propose(id: &str, sides: &[Side], effective: Date) -> Command {
    Command::ProposeDecision {
        decision_id: did(id),
        title: format!("Decision {id}"),
        rationale: "Engine test".into(),
        effective_date: effective,
        required_sides: sides.iter().copied().collect(),
        supersedes: BTreeSet::new(),
    }
}

fn plan_step(decision: &str, step: Step) -> Command {
    Command::PlanStep {
        decision_id: did(decision),
        step,
    }
}

fn invest(id: &str, area: CapabilityArea, gain: u32, delivery: Date) -> Step {
    Step::InvestCapability {
        investment_id: iid(id),
        area,
        description: format!("Investment {id}"),
        level_gain: gain,
        delivery,
        cost_kusd: 100,
    }
}

fn reduce(element: &str, personnel: u32, on: Date) -> Step {
    Step::ReduceElement {
        element_id: eid(element),
        personnel,
        equipment: Default::default(),
        on,
    }
}

fn define_condition(id: &str, area: Option<CapabilityArea>, threshold: Option<u32>) -> Command {
    Command::DefineCondition {
        condition_id: cid(id),
        title: format!("Condition {id}"),
        description: String::new(),
        area,
        threshold,
    }
}

fn assess(id: &str, on: Date, status: ConditionStatus) -> Command {
    Command::AssessCondition {
        condition_id: cid(id),
        assessed_on: on,
        status,
        value: None,
        note: String::new(),
    }
}

const MD: CapabilityArea = CapabilityArea::MissileDefense;

fn window_of(model: &LoadedModel) -> Window {
    let d = &model.data.defaults;
    Window::new(d.start, d.months)
}

fn area(outcome: &Outcome, month: usize, area: CapabilityArea) -> &AreaMonth {
    let a = &outcome.monthly[month].areas[area_index(area)];
    assert_eq!(a.area, area);
    a
}

fn flat(x: f64) -> Bands {
    Bands {
        p10: x,
        p50: x,
        p90: x,
    }
}

fn has_spread(b: &Bands) -> bool {
    b.p10 < b.p90
}

// ---------------------------------------------------------------------------------------------
// 1. Reproducibility

#[test]
fn a_seed_gives_the_same_outcome_on_one_thread_and_on_four() {
    let model = LoadedModel::reference();
    let plan = reference_plan();
    let s = scenario(
        &plan,
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    let trials = 2_000;
    let seed = 20_261_101;
    let on = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let control = Control::default();
        let outcome = pool.install(|| run(&s, trials, seed, &control)).unwrap();
        assert_eq!(control.trials_done(), trials);
        outcome
    };
    let one = on(1, seed);
    let four = on(4, seed);

    // The comparison means something only if the run has spread, risks and sensitivities.
    assert!(
        one.monthly
            .iter()
            .flat_map(|m| &m.areas)
            .any(|a| has_spread(&a.rok) && has_spread(&a.combined)),
        "the reference plan should have uncertain ROK levels"
    );
    assert!(!one.risks.is_empty());
    assert!(one.sensitivity.iter().any(|x| x.correlation != 0.0));
    assert_eq!(one.trials, trials);
    assert_eq!(one.seed, seed);

    assert_eq!(one, four, "one thread and four threads disagree");

    let other = on(4, seed + 1);
    assert_ne!(
        one.monthly, other.monthly,
        "another seed should draw other delays"
    );
    assert_ne!(one.sensitivity, other.sensitivity);
}

/// The reference plan under `model`, `trials` trials with one seed.
fn reference_outcome(model: &LoadedModel, trials: u32, seed: u64) -> Outcome {
    let s = scenario(
        &reference_plan(),
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(model),
    );
    run(&s, trials, seed, &Control::default()).unwrap()
}

#[test]
fn a_spread_of_zero_draws_exactly_as_a_fixed_value() {
    let reference = LoadedModel::reference();
    let gc = CapabilityArea::GroundCombat;
    assert_eq!(
        reference.data.areas[&gc].growth_per_year,
        Distribution::Fixed { value: 0.0 }
    );
    let trials = 500;
    let seed = 7;
    let expected = reference_outcome(&reference, trials, seed);
    // Meaningful only if the draws after the first area's growth have spread.
    assert!(
        expected
            .monthly
            .iter()
            .any(|m| has_spread(&m.us_personnel) && m.areas.iter().any(|a| has_spread(&a.rok)))
    );
    // Each draws 0 every time. Ground combat's growth is the first value a trial draws, so a
    // distribution taking another number of values from the stream would shift every other one.
    for zero in [
        Distribution::Uniform { min: 0.0, max: 0.0 },
        Distribution::Triangular {
            min: 0.0,
            mode: 0.0,
            max: 0.0,
        },
        Distribution::Normal {
            mean: 0.0,
            sd: 0.0,
            min: f64::NEG_INFINITY,
        },
        Distribution::Lognormal {
            median: 1.0,
            sigma: 0.0,
            offset: -1.0,
        },
    ] {
        let mut model = LoadedModel::reference();
        model.data.areas.get_mut(&gc).unwrap().growth_per_year = zero.clone();
        assert!(zero.is_fixed());
        assert_eq!(
            reference_outcome(&model, trials, seed),
            expected,
            "growth_per_year = {zero:?}"
        );
    }
}

#[test]
fn changing_one_programme_leaves_the_draws_of_the_others() {
    let reference = LoadedModel::reference();
    let changed = "space_isr";
    let mut model = LoadedModel::reference();
    let programme = model.data.programmes.get_mut(changed).unwrap();
    assert!(!programme.delay_months.is_fixed());
    programme.delay_months = Distribution::Fixed { value: 6.0 };

    let s = scenario(
        &reference_plan(),
        true,
        &BTreeSet::new(),
        &reference.data,
        window_of(&reference),
    );
    let of_changed = |id: &InvestmentId| {
        reference
            .data
            .investments
            .get(id.as_str())
            .map(String::as_str)
            == Some(changed)
    };
    // The areas holding an investment of the changed programme.
    let touched: BTreeSet<usize> = s
        .investments
        .iter()
        .filter(|i| of_changed(&i.id))
        .map(|i| i.area)
        .collect();
    assert_eq!(touched, BTreeSet::from([area_index(CapabilityArea::Isr)]));
    // Investments of other areas are drawn after the changed ones: the check below would see a
    // shift of the stream.
    let first = s
        .investments
        .iter()
        .position(|i| of_changed(&i.id))
        .unwrap();
    let later: BTreeSet<usize> = s.investments[first..]
        .iter()
        .map(|i| i.area)
        .filter(|a| !touched.contains(a))
        .collect();
    assert!(later.contains(&area_index(MD)), "{later:?}");

    let trials = 500;
    let seed = 2_027;
    let before = reference_outcome(&reference, trials, seed);
    let after = reference_outcome(&model, trials, seed);
    for (b, a) in before.monthly.iter().zip(&after.monthly) {
        assert_eq!(b.us_personnel, a.us_personnel, "{}", b.month);
        for (x, y) in b.areas.iter().zip(&a.areas) {
            if !touched.contains(&area_index(x.area)) {
                assert_eq!(x, y, "{} {:?}", b.month, x.area);
            }
        }
    }
    // The later areas have uncertain ROK levels, and the changed area did change.
    for a in later {
        assert!(
            before.monthly.iter().any(|m| has_spread(&m.areas[a].rok)),
            "{:?}",
            AREAS[a]
        );
    }
    let isr = area_index(CapabilityArea::Isr);
    assert!(
        before
            .monthly
            .iter()
            .zip(&after.monthly)
            .any(|(b, a)| b.areas[isr].rok != a.areas[isr].rok)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. No variance without uncertainty

/// A distribution's central value as a fixed one.
fn central(d: &Distribution) -> Distribution {
    let value = match *d {
        Distribution::Fixed { value } => value,
        Distribution::Uniform { min, max } => (min + max) / 2.0,
        Distribution::Triangular { mode, .. } => mode,
        Distribution::Lognormal { median, offset, .. } => median + offset,
        Distribution::Normal { mean, min, .. } => mean.max(min),
    };
    Distribution::Fixed { value }
}

/// The reference model with every distribution replaced by its central value, written out as
/// TOML and read back as any model file is.
fn fixed_reference_model() -> LoadedModel {
    let mut data = LoadedModel::reference().data;
    for area in data.areas.values_mut() {
        area.growth_per_year = central(&area.growth_per_year);
    }
    for programme in data.programmes.values_mut() {
        programme.delay_months = central(&programme.delay_months);
    }
    data.withdrawals.slip_months = central(&data.withdrawals.slip_months);
    let text = toml::to_string(&data).unwrap();
    let model = LoadedModel::parse(&text).unwrap();
    assert_eq!(model.data, data);
    model
}

#[test]
fn fixed_distributions_give_no_spread() {
    let model = fixed_reference_model();
    assert!(
        model
            .data
            .areas
            .values()
            .all(|a| a.growth_per_year.is_fixed())
    );
    assert!(
        model
            .data
            .programmes
            .values()
            .all(|p| p.delay_months.is_fixed())
    );
    assert!(model.data.withdrawals.slip_months.is_fixed());

    let plan = reference_plan();
    let s = scenario(
        &plan,
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    assert!(!s.investments.is_empty() && !s.slipping.is_empty());
    let outcome = run(&s, 500, 11, &Control::default()).unwrap();
    assert_eq!(outcome.monthly.len(), model.data.defaults.months as usize);

    for month in &outcome.monthly {
        let b = &month.us_personnel;
        assert!(b.p10 == b.p50 && b.p50 == b.p90, "{}: {b:?}", month.month);
        assert!(
            month.shortfall_probability == 0.0 || month.shortfall_probability == 1.0,
            "{}: {}",
            month.month,
            month.shortfall_probability
        );
        for a in &month.areas {
            for (name, b) in [
                ("required", &a.required),
                ("us", &a.us),
                ("rok", &a.rok),
                ("combined", &a.combined),
                ("shortfall", &a.shortfall),
            ] {
                assert!(
                    b.p10 == b.p50 && b.p50 == b.p90,
                    "{} {:?} {name}: {b:?}",
                    month.month,
                    a.area
                );
            }
            assert!(a.shortfall_probability == 0.0 || a.shortfall_probability == 1.0);
        }
    }
    for risk in &outcome.risks {
        assert!(risk.fielded_probability == 0.0 || risk.fielded_probability == 1.0);
    }
    // Without variance there is nothing to correlate.
    assert!(
        outcome
            .sensitivity
            .iter()
            .all(|x| x.correlation == 0.0 && x.shortfall_per_month_of_delay == 0.0)
    );
    // The levels still move over the window: the run is not trivially flat.
    let first = &outcome.monthly[0];
    let last = outcome.monthly.last().unwrap();
    assert!(
        first
            .areas
            .iter()
            .zip(&last.areas)
            .any(|(a, b)| a.rok != b.rok)
    );
    assert_ne!(first.us_personnel, last.us_personnel);

    // The same plan under the reference model's distributions does spread.
    let random = LoadedModel::reference();
    let s = scenario(
        &plan,
        true,
        &BTreeSet::new(),
        &random.data,
        window_of(&random),
    );
    let outcome = run(&s, 500, 11, &Control::default()).unwrap();
    assert!(
        outcome
            .monthly
            .iter()
            .any(|m| has_spread(&m.us_personnel) && m.areas.iter().any(|a| has_spread(&a.rok)))
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A later delivery never helps

/// U.S. and ROK missile defense recorded before the window, a U.S. Patriot battalion reduced in
/// 2028, and three ROK investments (two in missile defense); `lsam` is the delivery date of
/// the L-SAM batch. The munitions investment is delivered on 2029-01-01, so a late enough
/// L-SAM batch comes after it: the order of the delays drawn must not follow the dates.
fn investment_plan(lsam: Date) -> Plan {
    let mut plan = apply(Plan::default(), &us(), create_plan());
    for (actor, command) in [
        (us(), record(Side::Us, MD, 30, date(2026, 6, 1))),
        (rok(), record(Side::Rok, MD, 45, date(2026, 6, 1))),
        (
            us(),
            record(Side::Us, CapabilityArea::Munitions, 25, date(2026, 6, 1)),
        ),
        (
            rok(),
            record(Side::Rok, CapabilityArea::Munitions, 40, date(2026, 6, 1)),
        ),
        (
            us(),
            register("patriot", Side::Us, ElementKind::AirDefense, 1000),
        ),
        (
            us(),
            propose("us-md-reduction", &[Side::Us], date(2028, 3, 1)),
        ),
        (
            us(),
            plan_step("us-md-reduction", reduce("patriot", 500, date(2028, 3, 1))),
        ),
        (
            rok(),
            propose("rok-md-programme", &[Side::Rok, Side::Us], date(2027, 1, 1)),
        ),
        (
            rok(),
            plan_step(
                "rok-md-programme",
                invest("md-kmsam-block2", MD, 10, date(2027, 9, 1)),
            ),
        ),
        (
            rok(),
            plan_step("rok-md-programme", invest("md-lsam-batch1", MD, 20, lsam)),
        ),
        (
            rok(),
            plan_step(
                "rok-md-programme",
                invest(
                    "mun-155mm-expansion",
                    CapabilityArea::Munitions,
                    15,
                    date(2029, 1, 1),
                ),
            ),
        ),
    ] {
        plan = apply(plan, &actor, command);
    }
    plan
}

const LSAM_DELIVERY: (i32, u32, u32) = (2028, 6, 15);

/// Runs the investment plan with the L-SAM delivery on time and `days` later, with the same
/// seed, and checks that no band of missile defense improves and at least one month's median
/// gets worse, while nothing else changes.
fn check_delay_never_improves(days: u64, seed: u64, trials: u32) -> Result<(), String> {
    let model = LoadedModel::reference();
    let window = window_of(&model);
    let (y, m, d) = LSAM_DELIVERY;
    let on_time = date(y, m, d);
    let late = on_time + chrono::Days::new(days);
    let outcome = |delivery: Date| {
        let plan = investment_plan(delivery);
        let s = scenario(&plan, true, &BTreeSet::new(), &model.data, window);
        assert_eq!(s.investments.len(), 3);
        run(&s, trials, seed, &Control::default()).unwrap()
    };
    let (original, delayed) = (outcome(on_time), outcome(late));

    let mut strictly_lower = Vec::new();
    for (o, l) in original.monthly.iter().zip(&delayed.monthly) {
        if o.us_personnel != l.us_personnel {
            return Err(format!("{}: U.S. personnel moved", o.month));
        }
        for (oa, la) in o.areas.iter().zip(&l.areas) {
            if oa.area != MD {
                if oa != la {
                    return Err(format!("{} {:?} moved: {oa:?} vs {la:?}", o.month, oa.area));
                }
                continue;
            }
            if oa.us != la.us || oa.required != la.required {
                return Err(format!("{}: U.S. or required level moved", o.month));
            }
            for (name, ob, lb) in [
                ("rok", &oa.rok, &la.rok),
                ("combined", &oa.combined, &la.combined),
            ] {
                let pairs = [(ob.p10, lb.p10), (ob.p50, lb.p50), (ob.p90, lb.p90)];
                if pairs.iter().any(|(o, l)| l > o) {
                    return Err(format!(
                        "{}: {name} improved when delivery slipped {days} days: {ob:?} -> {lb:?}",
                        o.month
                    ));
                }
            }
            if la.shortfall_probability < oa.shortfall_probability {
                return Err(format!("{}: shortfall probability fell", o.month));
            }
            if la.rok.p50 < oa.rok.p50 && la.combined.p50 < oa.combined.p50 {
                strictly_lower.push(o.month);
            }
        }
    }
    if strictly_lower.is_empty() {
        return Err(format!(
            "a delay of {days} days lowered no month's median missile-defense level"
        ));
    }
    Ok(())
}

#[test]
fn delaying_an_investment_never_improves_its_area() {
    check_delay_never_improves(270, 42, 1_000).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn delaying_an_investment_by_any_shift_never_improves_its_area(
        days in 1u64..=540,
        seed in any::<u64>(),
    ) {
        let result = check_delay_never_improves(days, seed, 256);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A worked example

/// Fixed values only: missile defense needs 65 in January 2030, rising 6 a year (0.5 a month);
/// extended deterrence needs 80; nothing else is needed. Investments deliver one month late and
/// field linearly over four months.
const WORKED_MODEL: &str = r#"
version = "worked-example-1"
title = "Fixed values whose results are computed by hand"
default_programme = "fixed_delivery"

[defaults]
start = "2030-01-01"
months = 12
trials = 100
likely = 0.8
confidence = 0.9

[[sources]]
id = "worked-example"
citation = "Values chosen so that every result can be computed by hand"

[areas.ground_combat]
required = 0
source = "worked-example"

[areas.combat_support]
required = 0
source = "worked-example"

[areas.air_superiority]
required = 0
source = "worked-example"

[areas.missile_defense]
required = 65
growth_per_year = { kind = "fixed", value = 6.0 }
source = "worked-example"

[areas.isr]
required = 0
source = "worked-example"

[areas.logistics]
required = 0
source = "worked-example"

[areas.command_and_control]
required = 0
source = "worked-example"

[areas.munitions]
required = 0
source = "worked-example"

[areas.extended_deterrence]
required = 80
growth_per_year = { kind = "fixed", value = 0.0 }
source = "worked-example"

[contributions]
air_defense = { missile_defense = 1.0 }
thaad = { missile_defense = 3.0 }

[programmes.fixed_delivery]
delay_months = { kind = "fixed", value = 1.0 }
fielding_months = 4
source = "worked-example"

[conditions.combined-md]
area = "missile_defense"
threshold = 70
combined = true
source = "worked-example"
"#;

fn worked_model() -> LoadedModel {
    LoadedModel::parse(WORKED_MODEL).unwrap()
}

/// The worked example's plan:
/// - U.S. missile defense 20 and ROK 50 recorded on 2029-06-01 (an older ROK 40 and a later
///   ROK 70 are not the level at the start); U.S. extended deterrence 90;
/// - a Patriot battalion (1,000, weight 1) and a THAAD battery (200, weight 3): a U.S.
///   strength of 1,600; a ROK brigade that counts for neither;
/// - `us-reduce` cuts the Patriot battalion by 600 on 2030-02-15 (month time 1.5);
/// - `rok-invest` delivers `md-lsam` (+10) on 2030-04-16 (month time 3.5), and `md-old` (+30)
///   on 2029-01-01, before the ROK level was recorded, so already in it;
/// - `opcon` transfers OPCON on 2030-07-10 under three conditions: ROK missile defense >= 55
///   (plan), combined missile defense >= 70 (model data), and one assessed met on 2030-05-10;
///   a fourth condition is not named.
fn worked_plan() -> Plan {
    let mut plan = apply(Plan::default(), &us(), create_plan());
    for (actor, command) in [
        (us(), record(Side::Us, MD, 20, date(2029, 6, 1))),
        (rok(), record(Side::Rok, MD, 40, date(2028, 1, 1))),
        (rok(), record(Side::Rok, MD, 50, date(2029, 6, 1))),
        (rok(), record(Side::Rok, MD, 70, date(2030, 6, 1))),
        (
            us(),
            record(
                Side::Us,
                CapabilityArea::ExtendedDeterrence,
                90,
                date(2029, 6, 1),
            ),
        ),
        (
            us(),
            register("patriot", Side::Us, ElementKind::AirDefense, 1000),
        ),
        (us(), register("thaad", Side::Us, ElementKind::Thaad, 200)),
        (
            rok(),
            register(
                "rok-brigade",
                Side::Rok,
                ElementKind::GroundCombatBrigade,
                5000,
            ),
        ),
        (us(), propose("us-reduce", &[Side::Us], date(2030, 2, 15))),
        (
            us(),
            plan_step("us-reduce", reduce("patriot", 600, date(2030, 2, 15))),
        ),
        (rok(), propose("rok-invest", &[Side::Rok], date(2029, 1, 1))),
        (
            rok(),
            plan_step("rok-invest", invest("md-lsam", MD, 10, date(2030, 4, 16))),
        ),
        (
            rok(),
            plan_step("rok-invest", invest("md-old", MD, 30, date(2029, 1, 1))),
        ),
        (us(), define_condition("rok-md", Some(MD), Some(55))),
        (us(), define_condition("combined-md", None, None)),
        (us(), define_condition("political", None, None)),
        (us(), define_condition("not-named", Some(MD), Some(99))),
        (
            us(),
            assess("political", date(2029, 1, 1), ConditionStatus::NotMet),
        ),
        (
            us(),
            assess("political", date(2030, 5, 10), ConditionStatus::Met),
        ),
        (
            us(),
            propose("opcon", &[Side::Us, Side::Rok], date(2030, 7, 10)),
        ),
        (
            us(),
            plan_step(
                "opcon",
                Step::TransferOpcon {
                    on: date(2030, 7, 10),
                    conditions: [cid("rok-md"), cid("combined-md"), cid("political")]
                        .into_iter()
                        .collect(),
                },
            ),
        ),
    ] {
        plan = apply(plan, &actor, command);
    }
    plan
}

fn worked_scenario(what_if: bool) -> Scenario {
    let model = worked_model();
    scenario(
        &worked_plan(),
        what_if,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    )
}

#[test]
fn the_worked_example_matches_the_hand_computation() {
    let s = worked_scenario(true);
    // `md-old` was delivered before the ROK level was recorded: it is already in it.
    assert_eq!(s.investments.len(), 1);
    assert_eq!(s.investments[0].id, iid("md-lsam"));
    assert_eq!(s.investments[0].at, 3.5);
    let md = &s.areas[area_index(MD)];
    assert_eq!((md.us_level, md.rok_level), (20.0, 50.0));
    assert_eq!(md.rok_as_of, Some(date(2029, 6, 1)));

    // 100 trials: more than one chunk of work.
    let outcome = run(&s, 100, 9, &Control::default()).unwrap();
    assert_eq!(outcome.monthly.len(), 12);

    // U.S.: 20 x strength / 1,600; after the cut (month time 1.5, in force from month 2) the
    // strength is 400 + 3 x 200 = 1,000, so 12.5.
    // ROK: 50 + 10 x ramp((m - 3.5 - 1) / 4): 1.25, 3.75, 6.25, 8.75, then 10 from month 9.
    // Required: 65 + m / 2.
    #[rustfmt::skip]
    let expected: [(f64, f64, f64, f64, f64, f64); 12] = [
        // personnel, required, U.S., ROK, combined, shortfall
        (1200.0, 65.0, 20.0, 50.0,  70.0,  0.0),
        (1200.0, 65.5, 20.0, 50.0,  70.0,  0.0),
        (600.0,  66.0, 12.5, 50.0,  62.5,  3.5),
        (600.0,  66.5, 12.5, 50.0,  62.5,  4.0),
        (600.0,  67.0, 12.5, 50.0,  62.5,  4.5),
        (600.0,  67.5, 12.5, 51.25, 63.75, 3.75),
        (600.0,  68.0, 12.5, 53.75, 66.25, 1.75),
        (600.0,  68.5, 12.5, 56.25, 68.75, 0.0),
        (600.0,  69.0, 12.5, 58.75, 71.25, 0.0),
        (600.0,  69.5, 12.5, 60.0,  72.5,  0.0),
        (600.0,  70.0, 12.5, 60.0,  72.5,  0.0),
        (600.0,  70.5, 12.5, 60.0,  72.5,  0.0),
    ];
    for (m, &(personnel, required, us_level, rok_level, combined, shortfall)) in
        expected.iter().enumerate()
    {
        let month = &outcome.monthly[m];
        assert_eq!(month.month, date(2030, m as u32 + 1, 1));
        assert_eq!(month.us_personnel, flat(personnel), "month {m}");
        let short = if shortfall > 0.0 { 1.0 } else { 0.0 };
        assert_eq!(
            *area(&outcome, m, MD),
            AreaMonth {
                area: MD,
                required: flat(required),
                us: flat(us_level),
                rok: flat(rok_level),
                combined: flat(combined),
                shortfall: flat(shortfall),
                shortfall_probability: short,
            },
            "month {m}"
        );
        assert_eq!(month.shortfall_probability, short, "month {m}");
        // Extended deterrence: no element carries it, so the U.S. level stays as recorded.
        let ed = area(&outcome, m, CapabilityArea::ExtendedDeterrence);
        assert_eq!(
            (ed.required, ed.us, ed.rok, ed.combined, ed.shortfall),
            (flat(80.0), flat(90.0), flat(0.0), flat(90.0), flat(0.0))
        );
        for a in AREAS {
            if a != MD && a != CapabilityArea::ExtendedDeterrence {
                let x = area(&outcome, m, a);
                assert_eq!(
                    (x.us, x.rok, x.shortfall),
                    (flat(0.0), flat(0.0), flat(0.0))
                );
                assert_eq!(x.shortfall_probability, 0.0);
            }
        }
    }

    // The transfer on 2030-07-10 (month time 6 + 9/31) is judged in month 7 (August).
    assert_eq!(outcome.transfer, Some((did("opcon"), date(2030, 7, 10))));
    let conditions: Vec<_> = outcome
        .conditions
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.criterion.as_str(),
                c.at_transfer,
                c.likely_met_by,
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            // Combined >= 70: months 0-1 and from month 8; 68.75 in August.
            (
                "combined-md",
                "combined missile defense level >= 70 (model data)",
                Some(0.0),
                Some(date(2030, 1, 1)),
            ),
            // Assessed met on 2030-05-10: met from June.
            (
                "political",
                "assessed as met by the plan's latest assessment",
                Some(1.0),
                Some(date(2030, 6, 1)),
            ),
            // ROK >= 55: 56.25 from August.
            (
                "rok-md",
                "ROK missile defense level >= 55 (plan)",
                Some(1.0),
                Some(date(2030, 8, 1)),
            ),
        ]
    );
    assert_eq!(outcome.all_at_transfer, Some(0.0));
    assert_eq!(outcome.all_likely_by, Some(date(2030, 9, 1)));

    // The cut loses 20 x 600 / 1,600 = 7.5; the start's surplus is 20 + 50 - 65 = 5, so 2.5
    // must be replaced, by `md-lsam`, fully fielded at month time 3.5 + 1 + 4 = 8.5, after the
    // cut at 1.5. Month 2 (the month after the cut) has a shortfall in every trial.
    assert_eq!(
        outcome.risks,
        [SequencingRisk {
            decision: Some(did("us-reduce")),
            element: eid("patriot"),
            on: date(2030, 2, 15),
            area: MD,
            us_loss: 7.5,
            to_replace: 2.5,
            investment: Some(iid("md-lsam")),
            fielded_probability: 0.0,
            shortfall_probability: Some(1.0),
        }]
    );
    assert_eq!(
        outcome.sensitivity,
        [Sensitivity {
            investment: iid("md-lsam"),
            area: MD,
            correlation: 0.0,
            shortfall_per_month_of_delay: 0.0,
        }]
    );
    assert_eq!(outcome.shortfall_probability, 1.0);
    assert_eq!(outcome.worst, Some((MD, date(2030, 3, 1), 1.0)));
}

#[test]
fn without_what_if_proposed_decisions_do_not_count() {
    let s = worked_scenario(false);
    assert!(s.investments.is_empty() && s.transfer.is_none() && s.slipping.is_empty());
    let outcome = run(&s, 10, 9, &Control::default()).unwrap();
    for (m, month) in outcome.monthly.iter().enumerate() {
        assert_eq!(month.us_personnel, flat(1200.0));
        let md = area(&outcome, m, MD);
        let required = 65.0 + m as f64 / 2.0;
        // Combined 70 against 65 + m / 2: short only in December, by 0.5.
        let shortfall = (required - 70.0).max(0.0);
        assert_eq!(
            (md.required, md.us, md.rok, md.combined, md.shortfall),
            (
                flat(required),
                flat(20.0),
                flat(50.0),
                flat(70.0),
                flat(shortfall)
            ),
            "month {m}"
        );
        assert_eq!(md.shortfall_probability, if m == 11 { 1.0 } else { 0.0 });
    }
    // Without a transfer, every condition of the plan is reported.
    let ids: Vec<&str> = outcome.conditions.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["combined-md", "not-named", "political", "rok-md"]);
    assert!(outcome.conditions.iter().all(|c| c.at_transfer.is_none()));
    assert_eq!((outcome.transfer, outcome.all_at_transfer), (None, None));
    assert_eq!(outcome.all_likely_by, None);
    assert!(outcome.risks.is_empty() && outcome.sensitivity.is_empty());
    assert_eq!(outcome.worst, Some((MD, date(2030, 12, 1), 1.0)));
}

#[test]
fn a_sequencing_risk_is_judged_when_the_step_is_executed() {
    // The worked model with every withdrawal one month late.
    let model = LoadedModel::parse(&format!(
        "{WORKED_MODEL}\n[withdrawals]\nslip_months = {{ kind = \"fixed\", value = 1.0 }}\nsource = \"worked-example\"\n"
    ))
    .unwrap();
    let s = scenario(
        &worked_plan(),
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    assert_eq!(s.slipping, [did("us-reduce")]);
    assert_eq!(s.slip_months, Distribution::Fixed { value: 1.0 });
    let outcome = run(&s, 100, 9, &Control::default()).unwrap();

    // The cut, scheduled at month time 1.5, is executed at 2.5, so in force from month 3
    // (April) instead of March; everything else is as in the worked example.
    #[rustfmt::skip]
    let expected: [(f64, f64, f64, f64, f64, f64); 12] = [
        // personnel, required, U.S., ROK, combined, shortfall
        (1200.0, 65.0, 20.0, 50.0,  70.0,  0.0),
        (1200.0, 65.5, 20.0, 50.0,  70.0,  0.0),
        (1200.0, 66.0, 20.0, 50.0,  70.0,  0.0),
        (600.0,  66.5, 12.5, 50.0,  62.5,  4.0),
        (600.0,  67.0, 12.5, 50.0,  62.5,  4.5),
        (600.0,  67.5, 12.5, 51.25, 63.75, 3.75),
        (600.0,  68.0, 12.5, 53.75, 66.25, 1.75),
        (600.0,  68.5, 12.5, 56.25, 68.75, 0.0),
        (600.0,  69.0, 12.5, 58.75, 71.25, 0.0),
        (600.0,  69.5, 12.5, 60.0,  72.5,  0.0),
        (600.0,  70.0, 12.5, 60.0,  72.5,  0.0),
        (600.0,  70.5, 12.5, 60.0,  72.5,  0.0),
    ];
    for (m, &(personnel, required, us_level, rok_level, combined, shortfall)) in
        expected.iter().enumerate()
    {
        assert_eq!(
            outcome.monthly[m].us_personnel,
            flat(personnel),
            "month {m}"
        );
        let md = area(&outcome, m, MD);
        assert_eq!(
            (md.required, md.us, md.rok, md.combined, md.shortfall),
            (
                flat(required),
                flat(us_level),
                flat(rok_level),
                flat(combined),
                flat(shortfall)
            ),
            "month {m}"
        );
        let short = if shortfall > 0.0 { 1.0 } else { 0.0 };
        assert_eq!(md.shortfall_probability, short, "month {m}");
    }

    // The step as scheduled would be judged in month 2 (March), where no trial is short; as
    // executed it is judged in month 3 (April), where every trial is short by 4. `md-lsam`
    // is fully fielded at 8.5, after the executed cut at 2.5.
    assert_eq!(
        outcome.risks,
        [SequencingRisk {
            decision: Some(did("us-reduce")),
            element: eid("patriot"),
            on: date(2030, 2, 15),
            area: MD,
            us_loss: 7.5,
            to_replace: 2.5,
            investment: Some(iid("md-lsam")),
            fielded_probability: 0.0,
            shortfall_probability: Some(1.0),
        }]
    );
    assert_eq!(outcome.worst, Some((MD, date(2030, 4, 1), 1.0)));
}

#[test]
fn a_transfer_before_the_window_is_not_judged_in_it() {
    let model = worked_model();
    let plan = worked_plan();
    let run_from = |start: Date| {
        let s = scenario(
            &plan,
            true,
            &BTreeSet::new(),
            &model.data,
            Window::new(start, 12),
        );
        (s.clone(), run(&s, 100, 9, &Control::default()).unwrap())
    };

    // The transfer on 2030-07-10 is 0.71 months before a window starting in August.
    let (s, outcome) = run_from(date(2030, 8, 1));
    let transfer = s.transfer.as_ref().unwrap();
    assert!(transfer.at < 0.0 && transfer.at > -1.0, "{}", transfer.at);
    assert_eq!(outcome.transfer, Some((did("opcon"), date(2030, 7, 10))));
    assert_eq!(outcome.all_at_transfer, None);
    // From August, ROK missile defense is 70 (recorded 2030-06-01, `md-lsam` already in it),
    // U.S. 20 and combined 90, and the political condition has been assessed met since
    // 2030-05-10: every condition is met from the first month.
    let conditions: Vec<_> = outcome
        .conditions
        .iter()
        .map(|c| (c.id.as_str(), c.at_transfer, c.likely_met_by))
        .collect();
    assert_eq!(
        conditions,
        [
            ("combined-md", None, Some(date(2030, 8, 1))),
            ("political", None, Some(date(2030, 8, 1))),
            ("rok-md", None, Some(date(2030, 8, 1))),
        ]
    );
    assert_eq!(outcome.all_likely_by, Some(date(2030, 8, 1)));
    assert!(
        outcome
            .headline()
            .contains("OPCON conditions all met on 2030-07-10: outside the window"),
        "{}",
        outcome.headline()
    );

    // From July, the transfer (month time 9/31) is in the window, judged in month 1.
    let (s, outcome) = run_from(date(2030, 7, 1));
    assert!(s.transfer.as_ref().unwrap().at > 0.0);
    assert_eq!(outcome.all_at_transfer, Some(1.0));
    assert!(
        outcome
            .conditions
            .iter()
            .all(|c| c.at_transfer == Some(1.0))
    );
}

#[test]
fn zero_trials_run_one_and_zero_months_make_one() {
    let s = worked_scenario(true);
    let control = Control::default();
    let outcome = run(&s, 0, 9, &control).unwrap();
    assert_eq!(outcome.trials, 1);
    assert_eq!(control.trials_done(), 1);
    let probabilities =
        outcome
            .monthly
            .iter()
            .flat_map(|m| {
                std::iter::once(m.shortfall_probability)
                    .chain(m.areas.iter().map(|a| a.shortfall_probability))
            })
            .chain(outcome.conditions.iter().filter_map(|c| c.at_transfer))
            .chain(outcome.all_at_transfer)
            .chain(outcome.risks.iter().flat_map(|r| {
                std::iter::once(r.fielded_probability).chain(r.shortfall_probability)
            }))
            .chain(outcome.worst.map(|w| w.2))
            .chain([outcome.shortfall_probability])
            .collect::<Vec<_>>();
    assert!(probabilities.len() > 12 * AREAS.len());
    assert!(
        probabilities
            .iter()
            .all(|p| p.is_finite() && (0.0..=1.0).contains(p)),
        "{probabilities:?}"
    );
    assert!(outcome.conditions.iter().all(|c| c.at_transfer.is_some()));
    // The worked example has no variance: one trial is the whole answer.
    assert_eq!(outcome, run(&s, 1, 9, &Control::default()).unwrap());

    let window = Window::new(date(2030, 5, 17), 0);
    assert_eq!(
        window,
        Window {
            start: date(2030, 5, 1),
            months: 1
        }
    );
    let model = worked_model();
    let s = scenario(&worked_plan(), true, &BTreeSet::new(), &model.data, window);
    assert_eq!(s.months, 1);
    let outcome = run(&s, 0, 9, &Control::default()).unwrap();
    assert_eq!((outcome.months, outcome.trials), (1, 1));
    assert_eq!(outcome.monthly.len(), 1);
    assert_eq!(outcome.monthly[0].month, date(2030, 5, 1));
    assert!(outcome.shortfall_probability.is_finite());
    // The transfer (2030-07-10) is after this one-month window.
    assert_eq!(outcome.all_at_transfer, None);
}

// ---------------------------------------------------------------------------------------------
// 5. Overlays

#[test]
fn an_overlay_applies_to_a_copy_and_holds_only_proposals_and_their_steps() {
    let plan = worked_plan();
    let before = plan.clone();
    let overlay = [
        propose("rok-overlay", &[Side::Rok], date(2030, 1, 1)),
        plan_step("rok-overlay", invest("md-overlay", MD, 5, date(2030, 2, 1))),
    ];
    let (with, ids) = apply_overlay(&plan, &overlay, &rok()).unwrap();

    assert_eq!(plan, before, "the plan itself must not change");
    assert!(!plan.decisions.contains_key(&did("rok-overlay")));
    assert!(!plan.investments.contains_key(&iid("md-overlay")));
    assert_eq!(with.version, plan.version + 2);
    assert_eq!(ids, BTreeSet::from([did("rok-overlay")]));
    let decision = &with.decisions[&did("rok-overlay")];
    assert_eq!(decision.status, DecisionStatus::Proposed);
    assert_eq!(
        decision.steps,
        [invest("md-overlay", MD, 5, date(2030, 2, 1))]
    );
    assert_eq!(decision.owner_team, rok().team);

    // A run that is not a what-if includes the overlay's decisions and no other proposal.
    let model = worked_model();
    let s = scenario(&with, false, &ids, &model.data, window_of(&model));
    let investments: Vec<_> = s.investments.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(investments, ["md-overlay"]);
    let s = scenario(
        &with,
        false,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    assert!(s.investments.is_empty());

    let refused = |overlay: &[Command], actor: &Actor| -> (String, String) {
        match apply_overlay(&plan, overlay, actor) {
            Err(DomainError::Invalid(violations)) => {
                assert_eq!(violations.len(), 1, "{violations:?}");
                let v = &violations[0];
                (v.field.clone(), v.description.clone())
            }
            other => panic!("expected an invalid overlay, got {other:?}"),
        }
    };
    // Only proposals and their steps.
    let (field, description) = refused(
        &[Command::AdoptDecision {
            decision_id: did("us-reduce"),
            acknowledged_findings: Default::default(),
        }],
        &us(),
    );
    assert_eq!(field, "overlay[0]");
    assert!(description.contains("AdoptDecision"), "{description}");
    let (field, description) = refused(
        &[
            propose("rok-overlay", &[Side::Rok], date(2030, 1, 1)),
            record(Side::Rok, MD, 90, date(2030, 1, 1)),
        ],
        &rok(),
    );
    assert_eq!(field, "overlay[1]");
    assert!(
        description.contains("RecordCapabilityLevel"),
        "{description}"
    );
    // A step of a decision the overlay does not propose, even one the plan proposes.
    let (field, description) = refused(
        &[plan_step(
            "rok-invest",
            invest("md-overlay", MD, 5, date(2030, 2, 1)),
        )],
        &rok(),
    );
    assert_eq!(field, "overlay[0]");
    assert!(description.contains("rok-invest"), "{description}");
    // What the command service refuses, the overlay refuses too.
    assert!(matches!(
        apply_overlay(
            &plan,
            &[propose("us-reduce", &[Side::Us], date(2030, 1, 1))],
            &us()
        ),
        Err(DomainError::AlreadyExists { .. })
    ));
    assert_eq!(plan, before);
}

// ---------------------------------------------------------------------------------------------
// 6. Cancellation

#[test]
fn a_run_cancelled_before_it_starts_returns_cancelled() {
    let s = worked_scenario(true);
    let control = Control::default();
    control.cancel();
    assert!(control.is_cancelled());
    let result = run(&s, 1_000, 1, &control);
    assert_eq!(result.unwrap_err(), Cancelled { trials_done: 0 });
    assert_eq!(control.trials_done(), 0);
}

// ---------------------------------------------------------------------------------------------
// 7. Model data checks

/// The worked model with one edit, which must apply.
fn edited(from: &str, to: &str) -> String {
    assert!(WORKED_MODEL.contains(from), "the model has no {from:?}");
    WORKED_MODEL.replacen(from, to, 1)
}

fn invalid(text: &str) -> String {
    match LoadedModel::parse(text) {
        Err(ModelError::Invalid(message)) => message,
        other => panic!("expected invalid model data, got {other:?}"),
    }
}

#[test]
fn invalid_model_data_is_refused_with_the_problem_named() {
    // The worked model itself is valid, and its digest is that of its text.
    let model = worked_model();
    assert_eq!(model.digest.len(), 64);
    assert_eq!(model.digest, worked_model().digest);
    assert_ne!(model.digest, LoadedModel::reference().digest);

    let message = invalid(&edited(
        "[areas.isr]\nrequired = 0\nsource = \"worked-example\"\n",
        "",
    ));
    assert!(message.contains("Isr is missing"), "{message}");

    let message = invalid(&edited(
        "fielding_months = 4\nsource = \"worked-example\"",
        "fielding_months = 4\nsource = \"dapa-2031\"",
    ));
    assert!(
        message.contains("programmes.fixed_delivery") && message.contains("\"dapa-2031\""),
        "{message}"
    );

    let message = invalid(&edited(
        "required = 80\ngrowth_per_year = { kind = \"fixed\", value = 0.0 }\nsource = \"worked-example\"",
        "required = 80\ngrowth_per_year = { kind = \"fixed\", value = 0.0 }\nsource = \"unlisted\"",
    ));
    assert!(
        message.contains("ExtendedDeterrence") && message.contains("\"unlisted\""),
        "{message}"
    );

    let message = invalid(&edited(
        "growth_per_year = { kind = \"fixed\", value = 6.0 }",
        "growth_per_year = { kind = \"triangular\", min = 3.0, mode = 2.0, max = 1.0 }",
    ));
    assert!(
        message.contains("areas.MissileDefense.growth_per_year"),
        "{message}"
    );

    let message = invalid(&edited(
        "delay_months = { kind = \"fixed\", value = 1.0 }",
        "delay_months = { kind = \"uniform\", min = 2.0, max = 1.0 }",
    ));
    assert!(
        message.contains("programmes.fixed_delivery.delay_months"),
        "{message}"
    );

    let message = invalid(&edited(
        "default_programme = \"fixed_delivery\"",
        "default_programme = \"unknown_type\"",
    ));
    assert!(message.contains("\"unknown_type\""), "{message}");

    // An uncertain withdrawal slip must cite a source.
    let message = invalid(&format!(
        "{WORKED_MODEL}\n[withdrawals]\nslip_months = {{ kind = \"uniform\", min = 0.0, max = 2.0 }}\n"
    ));
    assert!(message.contains("withdrawals"), "{message}");

    let message = invalid(&edited("likely = 0.8", "likely = 1.5"));
    assert!(message.contains("likely"), "{message}");

    // Fields the schema does not know are refused, not ignored.
    match LoadedModel::parse(&edited(
        "fielding_months = 4\n",
        "fielding_months = 4\nfielding_month = 6\n",
    )) {
        Err(ModelError::Parse(message)) => {
            assert!(message.contains("fielding_month"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn the_u_s_level_from_off_the_peninsula_stays_when_stationed_forces_leave() {
    let mut model = worked_model();
    model
        .data
        .areas
        .get_mut(&MD)
        .expect("missile defense")
        .us_off_peninsula = 8.0;
    let s = scenario(
        &worked_plan(),
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    let outcome = run(&s, 10, 9, &Control::default()).unwrap();
    // 8 + 12 x strength / 1,600: 20 before the cut; 8 + 12 x 1,000 / 1,600 = 15.5 after it
    // (without the off-peninsula share, 12.5).
    assert_eq!(area(&outcome, 0, MD).us, flat(20.0));
    assert_eq!(area(&outcome, 2, MD).us, flat(15.5));
}

#[test]
fn the_operational_plans_decide_whether_the_u_s_level_counts_toward_an_area() {
    let mut plan = worked_plan();
    for (actor, command) in [
        (
            us(),
            propose("oplan", &[Side::Us, Side::Rok], date(2030, 3, 1)),
        ),
        (
            us(),
            plan_step(
                "oplan",
                Step::AssignMission {
                    mission: alliance_domain::Mission::MajorCombat,
                    lead: Side::Rok,
                    supporting: None,
                    on: date(2030, 3, 1),
                },
            ),
        ),
    ] {
        plan = apply(plan, &actor, command);
    }
    let model = worked_model();
    let s = scenario(
        &plan,
        true,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    let outcome = run(&s, 10, 9, &Control::default()).unwrap();
    // Missile defense is a major-combat area: from March the ROK covers it alone.
    assert_eq!(area(&outcome, 1, MD).us, flat(20.0));
    assert_eq!(area(&outcome, 2, MD).us, flat(0.0));
    assert_eq!(area(&outcome, 2, MD).combined, flat(50.0));
    // Extended deterrence is another mission: the U.S. still counts there.
    assert_eq!(
        area(&outcome, 2, CapabilityArea::ExtendedDeterrence).us,
        flat(90.0)
    );
    // Adopted only, the assignment is not applied.
    let adopted = scenario(
        &plan,
        false,
        &BTreeSet::new(),
        &model.data,
        window_of(&model),
    );
    assert!(adopted.us_counts.iter().all(|c| c.iter().all(|v| *v)));
}
