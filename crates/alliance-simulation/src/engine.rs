//! The Monte Carlo engine: each trial draws the threat growth, the withdrawal slips and every
//! investment's delay, then walks the window month by month. Trial `i` draws from its own
//! ChaCha8 stream (`seed`, stream `i`), and everything summed across trials is either an
//! integer count or summed in trial order afterwards, so a seed gives the same result on any
//! number of threads.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use alliance_domain::{CapabilityArea, ConditionId, Date, DecisionId, ElementId, InvestmentId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::model::AREAS;
use crate::scenario::{Criterion, Scenario, area_name, month_date};

const N_AREAS: usize = AREAS.len();
/// Values kept per trial and month: U.S. personnel, then per area required, U.S. and ROK.
const PER_MONTH: usize = 1 + 3 * N_AREAS;
/// Trials handed to a thread at a time (and between progress reports).
const CHUNK: usize = 64;

/// Progress and cancellation shared with whoever started the run.
#[derive(Debug, Default)]
pub struct Control {
    done: AtomicU32,
    cancel: AtomicBool,
}

impl Control {
    pub fn trials_done(&self) -> u32 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the run at the next chunk of trials.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the run was cancelled after {trials_done} trials")]
pub struct Cancelled {
    pub trials_done: u32,
}

/// P10, P50 and P90 over the trials (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Bands {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaMonth {
    pub area: CapabilityArea,
    pub required: Bands,
    pub us: Bands,
    pub rok: Bands,
    pub combined: Bands,
    /// Required minus combined, where positive.
    pub shortfall: Bands,
    pub shortfall_probability: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonthResult {
    /// The first day of the month.
    pub month: Date,
    pub us_personnel: Bands,
    /// Probability of a shortfall in any area this month.
    pub shortfall_probability: f64,
    pub areas: Vec<AreaMonth>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConditionOutcome {
    pub id: ConditionId,
    pub title: String,
    pub criterion: String,
    /// Probability it is met on the scheduled transfer date (when that is in the window).
    pub at_transfer: Option<f64>,
    /// The first month in which it is met with the model's confidence.
    pub likely_met_by: Option<Date>,
}

/// A withdrawal step that comes before the ROK capability that replaces it is likely fielded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SequencingRisk {
    pub decision: Option<DecisionId>,
    pub element: ElementId,
    pub on: Date,
    pub area: CapabilityArea,
    /// U.S. level lost in the area by this step and those before it (points).
    pub us_loss: f64,
    /// The part of that loss the start's surplus over the requirement does not absorb.
    pub to_replace: f64,
    /// The investment whose gains, with those fielded before it, cover that loss; none when the
    /// plan's investments in the area never do.
    pub investment: Option<InvestmentId>,
    /// Probability that investment is fully fielded when the step is executed.
    pub fielded_probability: f64,
    /// Probability of a shortfall in the area in the month after the step.
    pub shortfall_probability: Option<f64>,
}

/// How much an investment's delay moves the total shortfall.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sensitivity {
    pub investment: InvestmentId,
    pub area: CapabilityArea,
    /// Pearson correlation between its delay and the total shortfall (point-months).
    pub correlation: f64,
    /// Point-months of shortfall per month of its delay (least squares).
    pub shortfall_per_month_of_delay: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub start: Date,
    pub months: u32,
    pub trials: u32,
    pub seed: u64,
    pub monthly: Vec<MonthResult>,
    pub transfer: Option<(DecisionId, Date)>,
    pub conditions: Vec<ConditionOutcome>,
    /// Probability that all conditions are met on the transfer date.
    pub all_at_transfer: Option<f64>,
    /// The first month in which all conditions are met with the model's confidence.
    pub all_likely_by: Option<Date>,
    pub risks: Vec<SequencingRisk>,
    pub sensitivity: Vec<Sensitivity>,
    /// Probability of a shortfall in any area in any month.
    pub shortfall_probability: f64,
    /// The area and month with the highest shortfall probability.
    pub worst: Option<(CapabilityArea, Date, f64)>,
}

/// Counts summed over trials (integers, so their sum does not depend on the order).
#[derive(Clone, Debug)]
struct Counts {
    shortfall: Vec<u32>,
    any_shortfall: Vec<u32>,
    trials_with_shortfall: u32,
    condition_met: Vec<u32>,
    all_met: Vec<u32>,
    at_transfer: Vec<u32>,
    all_at_transfer: u32,
}

impl Counts {
    fn new(months: usize, conditions: usize) -> Self {
        Counts {
            shortfall: vec![0; months * N_AREAS],
            any_shortfall: vec![0; months],
            trials_with_shortfall: 0,
            condition_met: vec![0; months * conditions],
            all_met: vec![0; months],
            at_transfer: vec![0; conditions],
            all_at_transfer: 0,
        }
    }

    fn add(mut self, other: Counts) -> Counts {
        let sum = |a: &mut Vec<u32>, b: Vec<u32>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        sum(&mut self.shortfall, other.shortfall);
        sum(&mut self.any_shortfall, other.any_shortfall);
        self.trials_with_shortfall += other.trials_with_shortfall;
        sum(&mut self.condition_met, other.condition_met);
        sum(&mut self.all_met, other.all_met);
        sum(&mut self.at_transfer, other.at_transfer);
        self.all_at_transfer += other.all_at_transfer;
        self
    }
}

/// What one trial drew.
struct Draws {
    growth: [f64; N_AREAS],
    slips: Vec<f64>,
    delays: Vec<f64>,
}

fn draw(scenario: &Scenario, seed: u64, trial: usize) -> Draws {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(trial as u64);
    let mut growth = [0.0; N_AREAS];
    for (g, area) in growth.iter_mut().zip(&scenario.areas) {
        *g = area.growth_per_year.sample(&mut rng);
    }
    let slips = (0..scenario.slipping.len())
        .map(|_| scenario.slip_months.sample(&mut rng))
        .collect();
    let delays = scenario
        .investments
        .iter()
        .map(|i| i.delay_months.sample(&mut rng))
        .collect();
    Draws {
        growth,
        slips,
        delays,
    }
}

/// Required minus combined in area `a` of a month's stored values (the one definition the
/// counts, the bands and the risks share).
fn stored_shortfall(row: &[f32], a: usize) -> f64 {
    f64::from(row[1 + 3 * a]) - f64::from(row[2 + 3 * a]) - f64::from(row[3 + 3 * a])
}

/// Fraction of an investment's gain fielded `elapsed` months after its (slipped) delivery.
fn ramp(elapsed: f64, fielding: f64) -> f64 {
    if elapsed < 0.0 {
        0.0
    } else if fielding <= 0.0 {
        1.0
    } else {
        (elapsed / fielding).min(1.0)
    }
}

/// The month index of the first grid month on or after `at`.
fn grid_month(at: f64) -> usize {
    at.max(0.0).ceil() as usize
}

/// The grid month of the scheduled transfer, when the transfer falls in the window.
fn transfer_month(scenario: &Scenario) -> Option<usize> {
    scenario
        .transfer
        .as_ref()
        .filter(|t| t.at >= 0.0)
        .map(|t| grid_month(t.at))
        .filter(|m| *m < scenario.months as usize)
}

/// Baseline weighted U.S. strength per area at the start.
fn baseline_strength(scenario: &Scenario) -> [f64; N_AREAS] {
    let mut strength = [0.0; N_AREAS];
    for element in &scenario.elements {
        for (s, w) in strength.iter_mut().zip(element.weights) {
            *s += w * element.personnel;
        }
    }
    strength
}

/// Per-thread buffers a trial reuses: strength by month and area, personnel by month, and an
/// element's slipped changes.
#[derive(Default)]
struct Scratch {
    strength: Vec<[f64; N_AREAS]>,
    personnel: Vec<f64>,
    changes: Vec<(f64, f64)>,
}

/// One trial: fills `values` (months × PER_MONTH) and counts, returns the total shortfall.
fn trial(
    scenario: &Scenario,
    draws: &Draws,
    baseline: &[f64; N_AREAS],
    values: &mut [f32],
    counts: &mut Counts,
    scratch: &mut Scratch,
) -> f64 {
    let months = scenario.months as usize;
    let n_conditions = scenario.conditions.len();
    // Personnel of each element in each month, with the slipped schedule.
    let Scratch {
        strength,
        personnel,
        changes,
    } = scratch;
    strength.clear();
    strength.resize(months, [0.0; N_AREAS]);
    personnel.clear();
    personnel.resize(months, 0.0);
    for element in &scenario.elements {
        changes.clear();
        changes.extend(element.changes.iter().map(|c| {
            let slip = c.group.map_or(0.0, |g| draws.slips[g]);
            (c.at + slip, c.personnel)
        }));
        changes.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut current = element.personnel;
        let mut next = 0;
        for m in 0..months {
            while next < changes.len() && changes[next].0 <= m as f64 {
                current = changes[next].1;
                next += 1;
            }
            personnel[m] += current;
            if current != 0.0 {
                for (s, w) in strength[m].iter_mut().zip(element.weights) {
                    *s += w * current;
                }
            }
        }
    }
    let mut total_shortfall = 0.0;
    let mut any = false;
    let transfer_month = transfer_month(scenario);
    let mut rok = [0.0f64; N_AREAS];
    let mut us = [0.0f64; N_AREAS];
    for m in 0..months {
        let row = &mut values[m * PER_MONTH..(m + 1) * PER_MONTH];
        row[0] = personnel[m] as f32;
        let mut any_this_month = false;
        for (a, area) in scenario.areas.iter().enumerate() {
            rok[a] = area.rok_level;
        }
        for (investment, delay) in scenario.investments.iter().zip(&draws.delays) {
            rok[investment.area] += investment.gain
                * ramp(
                    m as f64 - (investment.at + delay),
                    investment.fielding_months,
                );
        }
        for (a, area) in scenario.areas.iter().enumerate() {
            let required = area.required + draws.growth[a] * m as f64 / 12.0;
            let us_counted = scenario.us_counts.get(m).is_none_or(|c| c[a]);
            us[a] = if !us_counted {
                // The operational plans leave the area to the ROK alone.
                0.0
            } else if baseline[a] > 0.0 {
                area.off_peninsula() + area.stationed() * strength[m][a] / baseline[a]
            } else {
                area.us_level
            };
            rok[a] = rok[a].min(100.0);
            row[1 + 3 * a] = required as f32;
            row[2 + 3 * a] = us[a] as f32;
            row[3 + 3 * a] = rok[a] as f32;
            // Judged on the stored values, as the bands and the risks are.
            let shortfall = stored_shortfall(row, a);
            if shortfall > 0.0 {
                total_shortfall += shortfall;
                counts.shortfall[m * N_AREAS + a] += 1;
                any_this_month = true;
            }
        }
        if any_this_month {
            counts.any_shortfall[m] += 1;
            any = true;
        }
        let mut all = true;
        for (c, condition) in scenario.conditions.iter().enumerate() {
            let met = match &condition.criterion {
                Criterion::Level {
                    area,
                    threshold,
                    combined,
                } => {
                    let level = if *combined {
                        us[*area] + rok[*area]
                    } else {
                        rok[*area]
                    };
                    level >= *threshold
                }
                Criterion::Assessed { met } => met.get(m).copied().unwrap_or(false),
            };
            if met {
                counts.condition_met[m * n_conditions + c] += 1;
                if Some(m) == transfer_month {
                    counts.at_transfer[c] += 1;
                }
            }
            all &= met;
        }
        if all {
            counts.all_met[m] += 1;
            if Some(m) == transfer_month {
                counts.all_at_transfer += 1;
            }
        }
    }
    if any {
        counts.trials_with_shortfall += 1;
    }
    total_shortfall
}

/// Runs `trials` trials (at least one) of `scenario` on the current rayon pool.
pub fn run(
    scenario: &Scenario,
    trials: u32,
    seed: u64,
    control: &Control,
) -> Result<Outcome, Cancelled> {
    let trials = trials.max(1);
    let n = trials as usize;
    let months = scenario.months as usize;
    let n_inv = scenario.investments.len();
    let n_slips = scenario.slipping.len();
    let baseline = baseline_strength(scenario);
    let mut values = vec![0f32; n * months * PER_MONTH];
    // Rows at least one wide, so that every buffer has one chunk per chunk of trials.
    let (inv_stride, slip_stride) = (n_inv.max(1), n_slips.max(1));
    let mut delays = vec![0f64; n * inv_stride];
    let mut slips = vec![0f64; n * slip_stride];
    let mut totals = vec![0f64; n];

    let counts = values
        .par_chunks_mut(CHUNK * months * PER_MONTH)
        .zip(delays.par_chunks_mut(CHUNK * inv_stride))
        .zip(slips.par_chunks_mut(CHUNK * slip_stride))
        .zip(totals.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(chunk, (((values, delays), slips), totals))| {
            let mut counts = Counts::new(months, scenario.conditions.len());
            if control.is_cancelled() {
                return counts;
            }
            let mut scratch = Scratch::default();
            for (k, total) in totals.iter_mut().enumerate() {
                let trial_index = chunk * CHUNK + k;
                let draws = draw(scenario, seed, trial_index);
                let span = months * PER_MONTH;
                *total = trial(
                    scenario,
                    &draws,
                    &baseline,
                    &mut values[k * span..(k + 1) * span],
                    &mut counts,
                    &mut scratch,
                );
                delays[k * inv_stride..k * inv_stride + n_inv].copy_from_slice(&draws.delays);
                slips[k * slip_stride..k * slip_stride + n_slips].copy_from_slice(&draws.slips);
            }
            control
                .done
                .fetch_add(totals.len() as u32, Ordering::Relaxed);
            counts
        })
        .reduce(
            || Counts::new(months, scenario.conditions.len()),
            Counts::add,
        );
    if control.is_cancelled() {
        return Err(Cancelled {
            trials_done: control.trials_done(),
        });
    }

    let monthly = monthly_results(scenario, &values, &counts, n);
    let p = |count: u32| f64::from(count) / n as f64;
    let first_likely = |met: &dyn Fn(usize) -> u32| {
        (0..months)
            .find(|m| p(met(*m)) >= scenario.confidence)
            .map(|m| month_date(scenario.start, m as u32))
    };
    let in_window = transfer_month(scenario).is_some();
    let n_conditions = scenario.conditions.len();
    let conditions = scenario
        .conditions
        .iter()
        .enumerate()
        .map(|(c, condition)| ConditionOutcome {
            id: condition.id.clone(),
            title: condition.title.clone(),
            criterion: condition.describe.clone(),
            at_transfer: in_window.then(|| p(counts.at_transfer[c])),
            likely_met_by: first_likely(&|m| counts.condition_met[m * n_conditions + c]),
        })
        .collect();
    let worst = monthly
        .iter()
        .flat_map(|month| {
            month
                .areas
                .iter()
                .map(move |a| (a.area, month.month, a.shortfall_probability))
        })
        .filter(|(_, _, p)| *p > 0.0)
        .fold(
            None,
            |best: Option<(CapabilityArea, Date, f64)>, item| match best {
                Some(b) if b.2 >= item.2 => Some(b),
                _ => Some(item),
            },
        );
    Ok(Outcome {
        start: scenario.start,
        months: scenario.months,
        trials,
        seed,
        risks: sequencing_risks(scenario, &baseline, &delays, &slips, &values, n),
        sensitivity: sensitivity(scenario, &delays, &totals, n),
        monthly,
        transfer: scenario
            .transfer
            .as_ref()
            .map(|t| (t.decision.clone(), t.on)),
        conditions,
        all_at_transfer: in_window.then(|| p(counts.all_at_transfer)),
        all_likely_by: first_likely(&|m| counts.all_met[m]),
        shortfall_probability: p(counts.trials_with_shortfall),
        worst,
    })
}

/// Nearest-rank percentiles of `values` (reordered in place).
fn bands(values: &mut [f64]) -> Bands {
    let n = values.len();
    if n == 0 {
        return Bands::default();
    }
    let rank = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let (k10, k50, k90) = (rank(0.1), rank(0.5), rank(0.9));
    let (below, p50, above) = values.select_nth_unstable_by(k50, f64::total_cmp);
    let p50 = *p50;
    let p10 = if k10 < k50 {
        *below.select_nth_unstable_by(k10, f64::total_cmp).1
    } else {
        p50
    };
    let p90 = if k90 > k50 {
        *above
            .select_nth_unstable_by(k90 - k50 - 1, f64::total_cmp)
            .1
    } else {
        p50
    };
    Bands { p10, p50, p90 }
}

fn monthly_results(
    scenario: &Scenario,
    values: &[f32],
    counts: &Counts,
    n: usize,
) -> Vec<MonthResult> {
    let months = scenario.months as usize;
    let span = months * PER_MONTH;
    (0..months)
        .into_par_iter()
        .map(|m| {
            let mut scratch = vec![0f64; n];
            let mut column = |f: &dyn Fn(&[f32]) -> f64| {
                for (t, slot) in scratch.iter_mut().enumerate() {
                    let row = &values[t * span + m * PER_MONTH..t * span + (m + 1) * PER_MONTH];
                    *slot = f(row);
                }
                bands(&mut scratch)
            };
            let us_personnel = column(&|row| f64::from(row[0]));
            let areas = AREAS
                .iter()
                .enumerate()
                .map(|(a, &area)| {
                    let required = |row: &[f32]| f64::from(row[1 + 3 * a]);
                    let us = |row: &[f32]| f64::from(row[2 + 3 * a]);
                    let rok = |row: &[f32]| f64::from(row[3 + 3 * a]);
                    AreaMonth {
                        area,
                        required: column(&required),
                        us: column(&us),
                        rok: column(&rok),
                        combined: column(&|row| us(row) + rok(row)),
                        shortfall: column(&|row| stored_shortfall(row, a).max(0.0)),
                        shortfall_probability: f64::from(counts.shortfall[m * N_AREAS + a])
                            / n as f64,
                    }
                })
                .collect();
            MonthResult {
                month: month_date(scenario.start, m as u32),
                us_personnel,
                shortfall_probability: f64::from(counts.any_shortfall[m]) / n as f64,
                areas,
            }
        })
        .collect()
}

/// For each U.S. step that lowers an area's level below what the start's surplus absorbs: the
/// ROK investment that, with those fielded before it, replaces the rest of the loss so far, and
/// how likely it is fielded when the step happens. Steps whose replacement is likely fielded
/// (at the model's `likely` probability) are not flagged.
fn sequencing_risks(
    scenario: &Scenario,
    baseline: &[f64; N_AREAS],
    delays: &[f64],
    slips: &[f64],
    values: &[f32],
    n: usize,
) -> Vec<SequencingRisk> {
    let months = scenario.months as usize;
    let n_inv = scenario.investments.len();
    let (inv_stride, slip_stride) = (n_inv.max(1), scenario.slipping.len().max(1));
    // Every change in the window, in schedule order.
    let mut steps: Vec<(usize, usize)> = scenario
        .elements
        .iter()
        .enumerate()
        .flat_map(|(e, element)| (0..element.changes.len()).map(move |c| (e, c)))
        .filter(|(e, c)| scenario.elements[*e].changes[*c].at < months as f64)
        .collect();
    steps.sort_by(|a, b| {
        let (x, y) = (
            &scenario.elements[a.0].changes[a.1],
            &scenario.elements[b.0].changes[b.1],
        );
        x.at.total_cmp(&y.at).then(a.cmp(b))
    });
    // Personnel of each element on the unslipped schedule, as the steps apply.
    let mut personnel: Vec<f64> = scenario.elements.iter().map(|e| e.personnel).collect();
    let mut risks = Vec::new();
    for (e, c) in steps {
        let element = &scenario.elements[e];
        let change = &element.changes[c];
        let before = personnel[e];
        personnel[e] = change.personnel;
        if change.personnel >= before {
            continue;
        }
        for (a, area) in scenario.areas.iter().enumerate() {
            if element.weights[a] <= 0.0 || baseline[a] <= 0.0 {
                continue;
            }
            let now: f64 = scenario
                .elements
                .iter()
                .zip(&personnel)
                .map(|(el, p)| el.weights[a] * p)
                .sum();
            let loss = area.stationed() * (baseline[a] - now) / baseline[a];
            // What the start's surplus over the requirement does not absorb must be replaced.
            let need = loss - (area.us_level + area.rok_level - area.required);
            if need <= 0.0 {
                continue;
            }
            let mut candidates: Vec<usize> = (0..n_inv)
                .filter(|i| scenario.investments[*i].area == a)
                .collect();
            candidates.sort_by(|x, y| {
                let (p, q) = (&scenario.investments[*x], &scenario.investments[*y]);
                (p.at + p.fielding_months)
                    .total_cmp(&(q.at + q.fielding_months))
                    .then(x.cmp(y))
            });
            let mut gained = 0.0;
            let replacing = candidates.into_iter().find(|i| {
                gained += scenario.investments[*i].gain;
                gained >= need - 1e-9
            });
            let fielded = replacing.map_or(0.0, |i| {
                let investment = &scenario.investments[i];
                let on_time = (0..n)
                    .filter(|t| {
                        let slip = change.group.map_or(0.0, |g| slips[t * slip_stride + g]);
                        investment.at + delays[t * inv_stride + i] + investment.fielding_months
                            <= change.at + slip
                    })
                    .count();
                on_time as f64 / n as f64
            });
            if fielded >= scenario.likely {
                continue;
            }
            // A shortfall in the area in the month after the step as each trial executed it.
            let slipped =
                |t: usize| change.at + change.group.map_or(0.0, |g| slips[t * slip_stride + g]);
            let span = months * PER_MONTH;
            let mut in_window = 0;
            let mut short = 0;
            for t in 0..n {
                let m = grid_month(slipped(t));
                if m >= months {
                    continue;
                }
                in_window += 1;
                if stored_shortfall(&values[t * span + m * PER_MONTH..], a) > 0.0 {
                    short += 1;
                }
            }
            risks.push(SequencingRisk {
                decision: change.decision.clone(),
                element: element.id.clone(),
                on: change.date,
                area: area.area,
                us_loss: loss,
                to_replace: need,
                investment: replacing.map(|i| scenario.investments[i].id.clone()),
                fielded_probability: fielded,
                shortfall_probability: (in_window > 0).then(|| f64::from(short) / n as f64),
            });
        }
    }
    risks
}

/// Investments ranked by how strongly their delay moves the total shortfall.
fn sensitivity(scenario: &Scenario, delays: &[f64], totals: &[f64], n: usize) -> Vec<Sensitivity> {
    let stride = scenario.investments.len().max(1);
    if n == 0 {
        return Vec::new();
    }
    let mean_total = totals.iter().sum::<f64>() / n as f64;
    let var_total = totals.iter().map(|t| (t - mean_total).powi(2)).sum::<f64>();
    let mut ranked: Vec<Sensitivity> = scenario
        .investments
        .iter()
        .enumerate()
        .map(|(i, investment)| {
            let delay = |t: usize| delays[t * stride + i];
            let mean = (0..n).map(delay).sum::<f64>() / n as f64;
            let var = (0..n).map(|t| (delay(t) - mean).powi(2)).sum::<f64>();
            let cov = (0..n)
                .map(|t| (delay(t) - mean) * (totals[t] - mean_total))
                .sum::<f64>();
            let (correlation, slope) = if var > 0.0 && var_total > 0.0 {
                (cov / (var * var_total).sqrt(), cov / var)
            } else {
                (0.0, 0.0)
            };
            Sensitivity {
                investment: investment.id.clone(),
                area: AREAS[investment.area],
                correlation,
                shortfall_per_month_of_delay: slope,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.correlation
            .abs()
            .total_cmp(&a.correlation.abs())
            .then_with(|| a.investment.cmp(&b.investment))
    });
    ranked
}

impl Outcome {
    /// One sentence: what the run found.
    pub fn headline(&self) -> String {
        let pct = |p: f64| format!("{:.0}%", p * 100.0);
        let mut parts = vec![format!(
            "P(shortfall in any area) {}",
            pct(self.shortfall_probability)
        )];
        if let Some((area, month, p)) = self.worst {
            parts.push(format!(
                "worst: {} in {} ({})",
                area_name(area),
                month.format("%Y-%m"),
                pct(p)
            ));
        }
        if let Some((_, on)) = &self.transfer {
            let at = self
                .all_at_transfer
                .map_or_else(|| "outside the window".to_owned(), pct);
            parts.push(format!("OPCON conditions all met on {on}: {at}"));
            parts.push(match self.all_likely_by {
                Some(by) => format!("likely met by {}", by.format("%Y-%m")),
                None => "not likely met in the window".to_owned(),
            });
        }
        parts.push(format!("{} sequencing risk(s)", self.risks.len()));
        parts.join("; ")
    }
}
