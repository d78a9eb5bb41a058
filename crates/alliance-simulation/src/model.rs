//! The model data: every parameter of the simulation, read from a TOML file that names its
//! sources and assumptions beside each value. Nothing about the alliance is in the code.

use std::collections::BTreeMap;

use alliance_domain::{CapabilityArea, Date, ElementKind};
use alliance_record::chain::hex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every capability area, in the order results list them.
pub const AREAS: [CapabilityArea; 9] = [
    CapabilityArea::GroundCombat,
    CapabilityArea::CombatSupport,
    CapabilityArea::AirSuperiority,
    CapabilityArea::MissileDefense,
    CapabilityArea::Isr,
    CapabilityArea::Logistics,
    CapabilityArea::CommandAndControl,
    CapabilityArea::Munitions,
    CapabilityArea::ExtendedDeterrence,
];

/// The index of an area in [`AREAS`].
pub fn area_index(area: CapabilityArea) -> usize {
    AREAS.iter().position(|a| *a == area).unwrap_or(0)
}

/// A random quantity. `Fixed` has no variance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Fixed {
        value: f64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
    Triangular {
        min: f64,
        mode: f64,
        max: f64,
    },
    /// `median` and `sigma` of the underlying normal (`mu = ln median`); shifted by `offset`.
    Lognormal {
        median: f64,
        sigma: f64,
        #[serde(default)]
        offset: f64,
    },
    /// A normal distribution truncated below at `min` (by clamping).
    Normal {
        mean: f64,
        sd: f64,
        #[serde(default = "neg_infinity")]
        min: f64,
    },
}

/// A uniform value in [0, 1) from the top 53 bits of one `u64`.
fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn neg_infinity() -> f64 {
    f64::NEG_INFINITY
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution::Fixed { value: 0.0 }
    }
}

impl Distribution {
    fn check(&self, what: &str) -> Result<(), ModelError> {
        let finite = |v: f64| v.is_finite();
        let ok = match *self {
            Distribution::Fixed { value } => finite(value),
            Distribution::Uniform { min, max } => finite(min) && finite(max) && min <= max,
            Distribution::Triangular { min, mode, max } => {
                finite(min) && finite(max) && min <= mode && mode <= max
            }
            Distribution::Lognormal {
                median,
                sigma,
                offset,
            } => median > 0.0 && finite(median) && sigma >= 0.0 && finite(sigma) && finite(offset),
            Distribution::Normal { mean, sd, min } => {
                finite(mean) && sd >= 0.0 && finite(sd) && !min.is_nan()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ModelError::Invalid(format!(
                "{what}: {self:?} is not a valid distribution (parameters must be finite, ordered, and spreads non-negative)"
            )))
        }
    }

    /// One draw. Every variant takes exactly two uniform values from `rng`, whatever its
    /// parameters, so the other draws of a trial never shift when one distribution changes
    /// (a fixed value and a spread of zero draw the same). The transforms are written here with
    /// the standard library's arithmetic, so every binary of one platform draws the same values.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        // (0, 1], so the logarithm below is finite.
        let u1 = 1.0 - unit(rng);
        let u2 = unit(rng);
        // Box–Muller: a standard normal from the two.
        let normal = || (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        match *self {
            Distribution::Fixed { value } => value,
            Distribution::Uniform { min, max } => min + (max - min) * u2,
            Distribution::Triangular { min, mode, max } => {
                // Inverse of the triangular CDF.
                let width = max - min;
                if width <= 0.0 {
                    return mode;
                }
                let split = (mode - min) / width;
                if u2 < split {
                    min + (u2 * width * (mode - min)).sqrt()
                } else {
                    max - ((1.0 - u2) * width * (max - mode)).sqrt()
                }
            }
            Distribution::Lognormal {
                median,
                sigma,
                offset,
            } => offset + median * (sigma * normal()).exp(),
            Distribution::Normal { mean, sd, min } => (mean + sd * normal()).max(min),
        }
    }

    /// Whether every draw is the same value.
    pub fn is_fixed(&self) -> bool {
        match *self {
            Distribution::Fixed { .. } => true,
            Distribution::Uniform { min, max } => min == max,
            Distribution::Triangular { min, max, .. } => min == max,
            Distribution::Lognormal { sigma, .. } => sigma == 0.0,
            Distribution::Normal { sd, .. } => sd == 0.0,
        }
    }
}

/// A published or assumed source that values cite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub citation: String,
    #[serde(default)]
    pub note: String,
}

/// What an area needs, and how the need grows with the threat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaModel {
    /// Required combined level (U.S. + ROK, capability points) at the start of the window.
    pub required: f64,
    /// Growth of the requirement in points per year (drawn once per trial).
    #[serde(default)]
    pub growth_per_year: Distribution,
    /// Points of the U.S. level that come from off the peninsula (national ISR, strategic lift,
    /// reinforcement) and so do not leave with the stationed forces.
    #[serde(default)]
    pub us_off_peninsula: f64,
    pub source: String,
    #[serde(default)]
    pub note: String,
}

/// How ROK programmes of one type slip and field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeModel {
    /// Delivery slip in months (drawn per investment per trial; negative values are early).
    pub delay_months: Distribution,
    /// Months from delivery to full capability (linear ramp); 0 is immediate.
    pub fielding_months: f64,
    pub source: String,
    #[serde(default)]
    pub note: String,
}

/// How a condition is judged in the simulation, when the plan's own definition is not enough.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionModel {
    pub area: CapabilityArea,
    pub threshold: f64,
    /// Judge the combined (U.S. + ROK) level instead of the ROK level.
    #[serde(default)]
    pub combined: bool,
    pub source: String,
    #[serde(default)]
    pub note: String,
}

/// Execution slips of U.S. withdrawal and reduction steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalModel {
    /// Slip in months, drawn once per decision per trial, moving all its element steps.
    #[serde(default)]
    pub slip_months: Distribution,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// First month simulated.
    pub start: Date,
    pub months: u32,
    pub trials: u32,
    /// Probability at which a capability counts as "likely fielded" (sequencing risks).
    pub likely: f64,
    /// Probability at which all conditions count as met (earliest date).
    pub confidence: f64,
}

/// The whole model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelData {
    pub version: String,
    pub title: String,
    pub defaults: Defaults,
    pub sources: Vec<Source>,
    pub areas: BTreeMap<CapabilityArea, AreaModel>,
    /// Per element kind: the weight of one person of that kind in each area. A side's level
    /// in an area moves with the weighted strength of its elements present.
    pub contributions: BTreeMap<ElementKind, BTreeMap<CapabilityArea, f64>>,
    pub programmes: BTreeMap<String, ProgrammeModel>,
    /// Programme type of each investment; others use `default_programme`.
    #[serde(default)]
    pub investments: BTreeMap<String, String>,
    pub default_programme: String,
    #[serde(default)]
    pub withdrawals: WithdrawalModel,
    /// Conditions judged by a capability threshold the plan does not give (or overrides).
    #[serde(default)]
    pub conditions: BTreeMap<String, ConditionModel>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model data does not parse: {0}")]
    Parse(String),
    #[error("model data is invalid: {0}")]
    Invalid(String),
}

/// Model data with the digest of the text it was read from.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub data: ModelData,
    /// SHA-256 (hex) of the file's bytes.
    pub digest: String,
}

impl LoadedModel {
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let data: ModelData = toml::from_str(text).map_err(|e| ModelError::Parse(e.to_string()))?;
        data.check()?;
        Ok(LoadedModel {
            data,
            digest: hex(&Sha256::digest(text.as_bytes())),
        })
    }

    /// The reference model shipped with the product (`deploy/simulation-model.toml`).
    pub fn reference() -> Self {
        #[allow(clippy::expect_used)]
        Self::parse(REFERENCE).expect("the shipped model data is valid")
    }
}

/// The shipped model data.
pub const REFERENCE: &str = include_str!("../../../deploy/simulation-model.toml");

impl ModelData {
    fn check(&self) -> Result<(), ModelError> {
        let invalid = |m: String| Err(ModelError::Invalid(m));
        if self.version.trim().is_empty() {
            return invalid("version is empty".into());
        }
        let d = &self.defaults;
        if d.months == 0 || d.months > MAX_MONTHS || d.trials == 0 || d.trials > MAX_TRIALS {
            return invalid(format!(
                "defaults: months must be 1..={MAX_MONTHS} and trials 1..={MAX_TRIALS}"
            ));
        }
        if u64::from(d.trials) * u64::from(d.months) > MAX_TRIAL_MONTHS {
            return invalid(format!(
                "defaults: trials x months must be at most {MAX_TRIAL_MONTHS}"
            ));
        }
        for (name, p) in [("likely", d.likely), ("confidence", d.confidence)] {
            if !(p > 0.0 && p <= 1.0) {
                return invalid(format!("defaults.{name} must be in (0, 1]"));
            }
        }
        let sources: Vec<&str> = self.sources.iter().map(|s| s.id.as_str()).collect();
        let cited = |what: &str, source: &str| {
            if sources.contains(&source) {
                Ok(())
            } else {
                Err(ModelError::Invalid(format!(
                    "{what} cites source {source:?}, which is not listed"
                )))
            }
        };
        for area in AREAS {
            let Some(model) = self.areas.get(&area) else {
                return invalid(format!("areas: {area:?} is missing"));
            };
            if !(model.required.is_finite() && model.required >= 0.0) {
                return invalid(format!("areas.{area:?}.required must be >= 0"));
            }
            if !(0.0..=100.0).contains(&model.us_off_peninsula) {
                return invalid(format!(
                    "areas.{area:?}.us_off_peninsula must be between 0 and 100"
                ));
            }
            model
                .growth_per_year
                .check(&format!("areas.{area:?}.growth_per_year"))?;
            cited(&format!("areas.{area:?}"), &model.source)?;
        }
        for (kind, weights) in &self.contributions {
            if weights.values().any(|w| !(w.is_finite() && *w >= 0.0)) {
                return invalid(format!("contributions.{kind:?}: weights must be >= 0"));
            }
        }
        for (name, programme) in &self.programmes {
            programme
                .delay_months
                .check(&format!("programmes.{name}.delay_months"))?;
            if !(programme.fielding_months.is_finite() && programme.fielding_months >= 0.0) {
                return invalid(format!("programmes.{name}.fielding_months must be >= 0"));
            }
            cited(&format!("programmes.{name}"), &programme.source)?;
        }
        for (investment, programme) in self
            .investments
            .iter()
            .chain([(&String::from("default_programme"), &self.default_programme)])
        {
            if !self.programmes.contains_key(programme) {
                return invalid(format!(
                    "{investment}: programme type {programme:?} is not defined"
                ));
            }
        }
        self.withdrawals
            .slip_months
            .check("withdrawals.slip_months")?;
        if !self.withdrawals.slip_months.is_fixed() || !self.withdrawals.source.is_empty() {
            cited("withdrawals", &self.withdrawals.source)?;
        }
        for (id, condition) in &self.conditions {
            if !condition.threshold.is_finite() {
                return invalid(format!("conditions.{id}.threshold must be finite"));
            }
            cited(&format!("conditions.{id}"), &condition.source)?;
        }
        Ok(())
    }

    /// The programme model of an investment.
    pub fn programme(&self, investment: &str) -> &ProgrammeModel {
        let name = self
            .investments
            .get(investment)
            .unwrap_or(&self.default_programme);
        &self.programmes[name]
    }
}

/// Largest window and trial count a run may ask for.
pub const MAX_MONTHS: u32 = alliance_domain::MAX_SIMULATION_MONTHS;
pub const MAX_TRIALS: u32 = alliance_domain::MAX_SIMULATION_TRIALS;
/// Largest trials × months of one run: each trial-month keeps 28 values for the percentiles,
/// so this bounds a run's memory at about 340 MB.
pub const MAX_TRIAL_MONTHS: u64 = 3_000_000;
