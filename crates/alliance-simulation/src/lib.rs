//! The simulation service: runs a plan forward under uncertainty, month by month, and reports
//! coverage by capability area, shortfalls, the OPCON transfer's conditions, sequencing risks
//! and which investment's delay matters most.
//!
//! - `model`: the model data (required levels, contributions, delay distributions), read from
//!   a TOML file that cites its sources;
//! - `scenario`: a plan at one version, with an optional unsaved overlay, turned into numbers;
//! - `engine`: the Monte Carlo run, reproducible from a seed on any number of threads.

pub mod engine;
pub mod model;
pub mod scenario;

pub use engine::{Cancelled, Control, Outcome, run};
pub use model::{LoadedModel, ModelData, ModelError};
pub use scenario::{Scenario, Window, apply_overlay, scenario};
