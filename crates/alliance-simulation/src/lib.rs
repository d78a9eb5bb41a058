//! The simulation service: runs a plan forward under uncertainty, month by month, and reports
//! coverage by capability area, shortfalls, the OPCON transfer's conditions, sequencing risks
//! and which investment's delay matters most.
//!
//! - `model`: the model data (required levels, contributions, delay distributions), read from
//!   a TOML file that cites its sources;
//! - `scenario`: a plan at one version, with an optional unsaved overlay, turned into numbers;
//! - `engine`: the Monte Carlo run, reproducible from a seed on any number of threads.

pub mod engine;
pub mod grpc;
pub mod model;
pub mod scenario;
pub mod store;

pub use engine::{Cancelled, Control, Outcome, run};
pub use grpc::{Recorder, RunStats, SimulationApi};
pub use model::{LoadedModel, ModelData, ModelError};
pub use scenario::{Scenario, Window, apply_overlay, scenario};
pub use store::RunStore;

use std::path::Path;
use std::sync::Arc;

use alliance_projection::Projection;
use alliance_server::Authenticator;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// The model data at `path`, or the shipped reference model when `path` is empty.
pub fn load_model(path: &Path) -> Result<LoadedModel, ModelError> {
    if path.as_os_str().is_empty() {
        return Ok(LoadedModel::reference());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ModelError::Parse(format!("cannot read {}: {e}", path.display())))?;
    LoadedModel::parse(&text)
}

/// Opens the run store in `data_dir` and adds `alliance.v1.Simulation` to `routes`, reported
/// serving.
pub async fn add_routes(
    routes: Routes,
    health: &HealthReporter,
    projection: Arc<Projection>,
    auth: Arc<Authenticator>,
    model: LoadedModel,
    data_dir: &Path,
    recorder: Recorder,
) -> Result<(Routes, SimulationApi), store::StoreError> {
    let store = RunStore::open(&data_dir.join("simulation.db"))?;
    let api = SimulationApi::new(projection, auth, Arc::new(model), store, recorder);
    health
        .set_serving::<alliance_proto::v1::simulation_server::SimulationServer<SimulationApi>>()
        .await;
    Ok((routes.add_service(api.clone().into_server()), api))
}
