//! `alliance.v1.Simulation` over tonic: plans come from the read models, runs go to a blocking
//! thread (the engine uses the rayon pool), progress and the result stream back, and completed
//! runs are recorded through the command service as the caller.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use alliance_domain::{Date, DecisionId, PlanId, SimulationRun, Version};
use alliance_projection::{Projection, record_point, status};
use alliance_proto::convert::{
    actor_to_proto, area_to_proto, date_from_proto, date_to_proto, overlay_commands,
    simulation_run_to_proto,
};
use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::plan_commands_server::PlanCommands;
use alliance_proto::v1::simulation_server::{Simulation, SimulationServer};
use alliance_record::chain::hex;
use alliance_server::deadline::patience;
use alliance_server::{Authenticator, Caller, ServiceError};
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, watch};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::engine::{self, Bands, Control, Outcome};
use crate::model::{LoadedModel, MAX_MONTHS, MAX_TRIAL_MONTHS, MAX_TRIALS};
use crate::scenario::{Scenario, Window, apply_overlay, scenario};
use crate::store::RunStore;

/// How long a run waits for the read model when the caller set no deadline.
const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);
/// How often progress is sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// Runs computed at once; more wait their turn.
const CONCURRENT_RUNS: usize = 2;

/// Where completed runs are recorded: the command service of this process, or one reached over
/// gRPC. Either way the request carries the caller's credentials, so the caller is the actor,
/// and is marked as the simulation service's (`alliance_server::recording`): the command
/// service refuses `RecordSimulationRun` from anyone else.
#[derive(Clone)]
pub enum Recorder {
    Local(Arc<dyn PlanCommands>),
    Remote(PlanCommandsClient<Channel>),
}

impl Recorder {
    async fn record(
        &self,
        caller: &Caller,
        metadata: &MetadataMap,
        plan_id: PlanId,
        run: &SimulationRun,
    ) -> Result<Version, Status> {
        let mut request = Request::new(v1::RecordSimulationRunRequest {
            meta: Some(v1::CommandMeta {
                // A retry names the same command: recording is idempotent.
                command_id: format!("simulation-run:{}", run.run_id),
                plan_id: plan_id.to_string(),
                based_on_version: None,
                correlation_id: String::new(),
                causation_id: String::new(),
            }),
            run: Some(simulation_run_to_proto(run)),
        });
        alliance_server::calls::carry_caller(metadata, caller, &mut request);
        let result = match self {
            Recorder::Local(api) => {
                // In this process the caller is verified already, as a server's VerifyLayer
                // would have left it; the mark says the simulation service sends it.
                request
                    .extensions_mut()
                    .insert(alliance_server::Verified(Ok(caller.clone())));
                alliance_server::recording::InProcessRecorder::mark(&mut request);
                api.record_simulation_run(request).await?
            }
            Recorder::Remote(client) => {
                // Believed by the command service from this server's peer certificate only.
                alliance_server::recording::mark_remote(&mut request);
                client.clone().record_simulation_run(request).await?
            }
        };
        Ok(result.into_inner().plan_version)
    }
}

/// A run's inputs, resolved against the plan and the model.
struct Resolved {
    plan_id: PlanId,
    version: Version,
    what_if: bool,
    overlay: Vec<DecisionId>,
    trials: u32,
    seed: u64,
    scenario: Arc<Scenario>,
    inputs_digest: String,
}

struct Inner {
    projection: Arc<Projection>,
    auth: Arc<Authenticator>,
    model: Arc<LoadedModel>,
    store: RunStore,
    recorder: Recorder,
    permits: Semaphore,
    stats: watch::Sender<RunStats>,
    metrics: RunMetrics,
}

/// The runs as metrics: how many, by outcome, and how long each computed.
struct RunMetrics {
    runs: opentelemetry::metrics::Counter<u64>,
    duration: opentelemetry::metrics::Histogram<f64>,
}

impl RunMetrics {
    fn new() -> Self {
        let meter = alliance_telemetry::meter();
        Self {
            runs: meter
                .u64_counter("alliance.simulation.runs")
                .with_description("Simulation runs computed, by outcome (completed, cancelled)")
                .build(),
            duration: meter
                .f64_histogram("alliance.simulation.run.duration")
                .with_unit("s")
                .with_description("Time to compute one simulation run, by outcome")
                .with_boundaries(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ])
                .build(),
        }
    }

    fn record(&self, completed: bool, took: std::time::Duration) {
        let outcome = [opentelemetry::KeyValue::new(
            "alliance.simulation.outcome",
            if completed { "completed" } else { "cancelled" },
        )];
        self.runs.add(1, &outcome);
        self.duration.record(took.as_secs_f64(), &outcome);
    }
}

/// Runs of this service so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Computing now.
    pub active: usize,
    pub completed: u64,
    /// Stopped because the caller went away or the deadline passed.
    pub cancelled: u64,
}

/// The gRPC face of the simulation service.
#[derive(Clone)]
pub struct SimulationApi {
    inner: Arc<Inner>,
}

impl SimulationApi {
    pub fn new(
        projection: Arc<Projection>,
        auth: Arc<Authenticator>,
        model: Arc<LoadedModel>,
        store: RunStore,
        recorder: Recorder,
    ) -> Self {
        SimulationApi {
            inner: Arc::new(Inner {
                projection,
                auth,
                model,
                store,
                recorder,
                permits: Semaphore::new(CONCURRENT_RUNS),
                stats: watch::Sender::new(RunStats::default()),
                metrics: RunMetrics::new(),
            }),
        }
    }

    pub fn into_server(self) -> SimulationServer<Self> {
        SimulationServer::new(self)
            .max_decoding_message_size(alliance_server::limits::MAX_MESSAGE_BYTES)
    }

    /// The runs computing now, completed and cancelled, as they change.
    pub fn runs(&self) -> watch::Receiver<RunStats> {
        self.inner.stats.subscribe()
    }
}

fn invalid(field: &str, description: impl std::fmt::Display) -> Status {
    alliance_server::invalid_field(field, description.to_string())
}

impl Inner {
    /// Checks a spec and resolves it against the read model (waiting for `min_version`).
    async fn resolve(
        &self,
        caller: &Caller,
        spec: &v1::SimulationSpec,
        defaults: Option<(u32, u64, Window)>,
        patience: Duration,
    ) -> Result<Resolved, Status> {
        let plan_id = PlanId::parse_str(&spec.plan_id)
            .map_err(|_| invalid("plan_id", format!("{:?} is not a UUID", spec.plan_id)))?;
        // Standing is judged on the plan as held after the wait, before anything else is read.
        self.projection
            .ready(
                caller,
                plan_id,
                spec.min_version,
                patience,
                alliance_projection::Access::Read,
            )
            .await?;
        let model = &self.model.data;
        let (default_trials, default_seed, default_window) = defaults.unwrap_or((
            model.defaults.trials,
            rand::random(),
            Window::new(model.defaults.start, model.defaults.months),
        ));
        let trials = match spec.trials {
            0 => default_trials,
            n if n > MAX_TRIALS => return Err(invalid("trials", format!("at most {MAX_TRIALS}"))),
            n => n,
        };
        let months = match spec.months {
            0 => default_window.months,
            n if n > MAX_MONTHS => return Err(invalid("months", format!("at most {MAX_MONTHS}"))),
            n => n,
        };
        let start = match &spec.start {
            None => default_window.start,
            Some(d) => date_from_proto(d).ok_or_else(|| invalid("start", "not a date"))?,
        };
        if u64::from(trials) * u64::from(months) > MAX_TRIAL_MONTHS {
            return Err(invalid(
                "trials",
                format!(
                    "{trials} trials x {months} months exceeds {MAX_TRIAL_MONTHS} trial-months"
                ),
            ));
        }
        let window = Window::new(start, months);
        let seed = spec.seed.unwrap_or(default_seed);
        let overlay =
            overlay_commands(&spec.overlay).map_err(|v| alliance_server::invalid_fields(&v))?;

        let point = record_point(&self.projection, plan_id, "record", spec.record.as_ref())?;
        let (version, plan) = self
            .projection
            .with_plan(plan_id, |history| {
                let version = history.version_at(point);
                Ok((version, history.state_at(version)?))
            })
            .and_then(|read| read)
            .map_err(status)?;
        let (plan, overlay_ids) = if overlay.is_empty() {
            ((*plan).clone(), BTreeSet::new())
        } else {
            apply_overlay(&plan, &overlay, &caller.actor)
                .map_err(|e| Status::from(ServiceError::Domain(e)))?
        };
        if !plan.in_horizon(window.start) {
            return Err(alliance_server::out_of_range_field(
                "start",
                format!(
                    "{} is outside the plan's horizon {}..={}",
                    window.start, plan.horizon_start, plan.horizon_end
                ),
            ));
        }
        let scenario = scenario(&plan, spec.include_proposed, &overlay_ids, model, window);
        let inputs = serde_json::json!({
            "plan_id": plan_id,
            "plan_version": version,
            "what_if": spec.include_proposed,
            "overlay": overlay,
            "model_digest": self.model.digest,
            "start": window.start,
            "months": window.months,
            "trials": trials,
            "seed": seed,
        });
        Ok(Resolved {
            plan_id,
            version,
            what_if: spec.include_proposed,
            overlay: overlay_ids.into_iter().collect(),
            trials,
            seed,
            scenario: Arc::new(scenario),
            inputs_digest: hex(&Sha256::digest(inputs.to_string().as_bytes())),
        })
    }

    /// Computes the runs one after another, sending progress on `tx`; stops when the caller
    /// goes away or the deadline passes.
    async fn compute(
        self: &Arc<Self>,
        runs: &[Resolved],
        deadline: Option<tokio::time::Instant>,
        tx: &mpsc::Sender<Result<v1::SimulationUpdate, Status>>,
    ) -> Result<Vec<Outcome>, Status> {
        let _permit = tokio::select! {
            permit = self.permits.acquire() => permit.map_err(|_| Status::unavailable("shutting down"))?,
            () = tx.closed() => return Err(Status::cancelled("the caller went away")),
            () = sleep_until(deadline) => return Err(Status::deadline_exceeded("waited for a free slot past the deadline")),
        };
        let total: u32 = runs.iter().map(|r| r.trials).sum();
        let mut done_before = 0;
        let mut outcomes = Vec::new();
        for resolved in runs {
            let control = Arc::new(Control::default());
            let mut task = {
                let (control, scenario, inner) =
                    (control.clone(), resolved.scenario.clone(), self.clone());
                let (trials, seed) = (resolved.trials, resolved.seed);
                let span = tracing::info_span!(
                    "compute",
                    alliance.simulation.trials = trials,
                    alliance.simulation.seed = seed,
                    alliance.simulation.months = scenario.months,
                );
                tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    inner.stats.send_modify(|s| s.active += 1);
                    let started = std::time::Instant::now();
                    let outcome = engine::run(&scenario, trials, seed, &control);
                    inner.metrics.record(outcome.is_ok(), started.elapsed());
                    inner.stats.send_modify(|s| {
                        s.active -= 1;
                        match outcome {
                            Ok(_) => s.completed += 1,
                            Err(_) => s.cancelled += 1,
                        }
                    });
                    outcome
                })
            };
            let mut ticks = tokio::time::interval(PROGRESS_EVERY);
            let outcome = loop {
                tokio::select! {
                    joined = &mut task => break joined.map_err(|e| Status::internal(e.to_string()))?,
                    _ = ticks.tick() => {
                        let progress = v1::SimulationProgress {
                            trials_done: done_before + control.trials_done(),
                            trials: total,
                        };
                        let update = v1::SimulationUpdate {
                            update: Some(v1::simulation_update::Update::Progress(progress)),
                        };
                        if tx.try_send(Ok(update)).is_err() && tx.is_closed() {
                            control.cancel();
                        }
                    }
                    () = tx.closed(), if !control.is_cancelled() => control.cancel(),
                    () = sleep_until(deadline), if !control.is_cancelled() => control.cancel(),
                }
            };
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                Err(cancelled) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => {
                    return Err(Status::deadline_exceeded(format!(
                        "the deadline passed after {} of {} trials",
                        cancelled.trials_done, resolved.trials
                    )));
                }
                Err(cancelled) => return Err(Status::cancelled(cancelled.to_string())),
            }
            done_before += resolved.trials;
        }
        Ok(outcomes)
    }

    /// Records (unless it has an overlay), keeps, and returns the result of one run.
    async fn finish(
        &self,
        resolved: &Resolved,
        outcome: &Outcome,
        caller: &Caller,
        metadata: &MetadataMap,
    ) -> Result<v1::SimulationResult, Status> {
        let run_id = Uuid::now_v7();
        let results_digest = hex(&Sha256::digest(
            serde_json::to_vec(outcome).map_err(|e| Status::internal(e.to_string()))?,
        ));
        let record = run_record(run_id, resolved, outcome, &self.model, &results_digest);
        let recorded_version = if resolved.overlay.is_empty() {
            self.recorder
                .record(caller, metadata, resolved.plan_id, &record)
                .await?
        } else {
            0
        };
        let mut result = result_to_proto(resolved, outcome, &record);
        result.recorded_version = recorded_version;
        result.actor = Some(actor_to_proto(&caller.actor));
        result.completed_at = Some(prost_types::Timestamp::from(std::time::SystemTime::now()));
        self.store
            .put(run_id, resolved.plan_id, &result)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(result)
    }

    /// Reproduces a run recorded in a plan's history that this instance does not keep: the
    /// same inputs and seed give the same results, which the recorded digest confirms.
    async fn reproduce(
        self: &Arc<Self>,
        caller: &Caller,
        run_id: Uuid,
    ) -> Result<Option<v1::SimulationResult>, Status> {
        // The plan that recorded the run (from the read model's index, never a scan of every
        // plan), if the caller stands on it: a run of any other plan is not found. Standing is
        // judged first; then the run's event, for where and by whom.
        let found = self.projection.plans_recording(run_id).into_iter().find_map(|plan_id| {
            self.projection
                .with_plan(plan_id, |history| {
                    let state = history.latest();
                    alliance_server::access::standing(caller, &state, plan_id).ok()?;
                    let run = state.simulation_runs.get(&run_id)?;
                    let recorded = history.events.iter().rev().find(|r| {
                        r.event.event_type() == "SimulationRunRecorded"
                            && matches!(r.event(), Ok(alliance_domain::Event::SimulationRunRecorded { run }) if run.run_id == run_id)
                    })?;
                    Some((plan_id, (**run).clone(), recorded.version, (*recorded.command.actor).clone()))
                })
                .ok()
                .flatten()
        });
        let Some((plan_id, run, recorded_version, actor)) = found else {
            return Ok(None);
        };
        if run.model_version != self.model.data.version {
            return Err(Status::failed_precondition(format!(
                "run {run_id} used model data {}; this instance has {}, so it cannot reproduce it",
                run.model_version, self.model.data.version
            )));
        }
        let spec = v1::SimulationSpec {
            plan_id: plan_id.to_string(),
            record: Some(v1::RecordPoint {
                point: Some(v1::record_point::Point::Version(run.plan_version)),
            }),
            include_proposed: run.what_if,
            overlay: Vec::new(),
            trials: run.trials,
            seed: Some(run.seed),
            start: Some(date_to_proto(run.start)),
            months: run.months,
            min_version: 0,
        };
        let resolved = self.resolve(caller, &spec, None, DEFAULT_PATIENCE).await?;
        if resolved.inputs_digest != run.inputs_digest {
            return Err(Status::failed_precondition(format!(
                "run {run_id}'s inputs no longer match (model data or plan differ); it cannot be reproduced"
            )));
        }
        let (tx, _rx) = mpsc::channel(1);
        let mut outcomes = self
            .compute(std::slice::from_ref(&resolved), None, &tx)
            .await?;
        let outcome = outcomes
            .pop()
            .ok_or_else(|| Status::internal("no outcome"))?;
        let digest = hex(&Sha256::digest(
            serde_json::to_vec(&outcome).map_err(|e| Status::internal(e.to_string()))?,
        ));
        if digest != run.results_digest {
            return Err(Status::data_loss(format!(
                "run {run_id} reproduced with results digest {digest}, not the recorded {}",
                run.results_digest
            )));
        }
        let mut result = result_to_proto(&resolved, &outcome, &run);
        result.recorded_version = recorded_version;
        // Who recorded the run, as its event says (the same actor `Run` answered with).
        result.actor = Some(v1::Actor {
            team: actor.team,
            user: actor.user,
            side: actor.side,
        });
        self.store
            .put(run_id, plan_id, &result)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Some(result))
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn permille(p: f64) -> u32 {
    (p * 1000.0).round().clamp(0.0, 1000.0) as u32
}

fn run_record(
    run_id: Uuid,
    resolved: &Resolved,
    outcome: &Outcome,
    model: &LoadedModel,
    results_digest: &str,
) -> SimulationRun {
    SimulationRun {
        run_id,
        plan_version: resolved.version,
        what_if: resolved.what_if,
        inputs_digest: resolved.inputs_digest.clone(),
        results_digest: results_digest.to_owned(),
        seed: resolved.seed,
        trials: resolved.trials,
        start: outcome.start,
        months: outcome.months,
        model_version: model.data.version.clone(),
        shortfall_permille: permille(outcome.shortfall_probability),
        conditions_at_transfer_permille: outcome.all_at_transfer.map(permille),
        conditions_likely_by: outcome.all_likely_by,
        sequencing_risks: outcome.risks.len() as u32,
        headline: outcome.headline(),
    }
}

fn bands(b: &Bands) -> Option<v1::Bands> {
    Some(v1::Bands {
        p10: b.p10,
        p50: b.p50,
        p90: b.p90,
    })
}

fn date(d: Option<Date>) -> Option<v1::Date> {
    d.map(date_to_proto)
}

fn result_to_proto(
    resolved: &Resolved,
    outcome: &Outcome,
    record: &SimulationRun,
) -> v1::SimulationResult {
    v1::SimulationResult {
        run_id: record.run_id.to_string(),
        plan_id: resolved.plan_id.to_string(),
        plan_version: resolved.version,
        what_if: resolved.what_if,
        overlay: resolved.overlay.iter().map(ToString::to_string).collect(),
        seed: outcome.seed,
        trials: outcome.trials,
        start: Some(date_to_proto(outcome.start)),
        months: outcome.months,
        model_version: record.model_version.clone(),
        inputs_digest: record.inputs_digest.clone(),
        results_digest: record.results_digest.clone(),
        monthly: outcome
            .monthly
            .iter()
            .map(|m| v1::SimulatedMonth {
                month: Some(date_to_proto(m.month)),
                us_personnel: bands(&m.us_personnel),
                shortfall_probability: m.shortfall_probability,
                areas: m
                    .areas
                    .iter()
                    .map(|a| v1::AreaMonth {
                        area: area_to_proto(a.area),
                        required: bands(&a.required),
                        us: bands(&a.us),
                        rok: bands(&a.rok),
                        combined: bands(&a.combined),
                        shortfall: bands(&a.shortfall),
                        shortfall_probability: a.shortfall_probability,
                    })
                    .collect(),
            })
            .collect(),
        transfer_decision_id: outcome
            .transfer
            .as_ref()
            .map(|(d, _)| d.to_string())
            .unwrap_or_default(),
        transfer_on: date(outcome.transfer.as_ref().map(|(_, on)| *on)),
        conditions: outcome
            .conditions
            .iter()
            .map(|c| v1::ConditionOutcome {
                condition_id: c.id.to_string(),
                title: c.title.clone(),
                criterion: c.criterion.clone(),
                probability_at_transfer: c.at_transfer,
                likely_met_by: date(c.likely_met_by),
            })
            .collect(),
        all_conditions_at_transfer: outcome.all_at_transfer,
        all_conditions_likely_by: date(outcome.all_likely_by),
        risks: outcome
            .risks
            .iter()
            .map(|r| v1::SequencingRisk {
                decision_id: r
                    .decision
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                element_id: r.element.to_string(),
                on: Some(date_to_proto(r.on)),
                area: area_to_proto(r.area),
                us_loss: r.us_loss,
                to_replace: r.to_replace,
                investment_id: r
                    .investment
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                fielded_probability: r.fielded_probability,
                shortfall_probability: r.shortfall_probability,
            })
            .collect(),
        sensitivity: outcome
            .sensitivity
            .iter()
            .map(|s| v1::Sensitivity {
                investment_id: s.investment.to_string(),
                area: area_to_proto(s.area),
                correlation: s.correlation,
                shortfall_per_month_of_delay: s.shortfall_per_month_of_delay,
            })
            .collect(),
        shortfall_probability: outcome.shortfall_probability,
        headline: record.headline.clone(),
        recorded_version: 0,
        actor: None,
        completed_at: None,
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<v1::SimulationUpdate, Status>> + Send>>;

impl SimulationApi {
    /// Resolves the specs now (bad input is answered at once), then computes on a task of its
    /// own that streams progress and, through `finish`, the final update.
    async fn start(
        &self,
        request: Request<Vec<v1::SimulationSpec>>,
        compare: bool,
    ) -> Result<Response<UpdateStream>, Status> {
        let caller = self.inner.auth.authenticate(&request)?;
        let permit = alliance_server::limits::StreamQuota::global().open(&caller)?;
        let metadata = request.metadata().clone();
        let patience = patience(&metadata);
        let at = patience.map(|p| tokio::time::Instant::now() + p);
        let specs = request.into_inner();
        let mut resolved: Vec<Resolved> = Vec::new();
        for spec in &specs {
            // The right-hand run of a comparison defaults to the left's trials, seed and window.
            let defaults = resolved.first().map(|left| {
                (
                    left.trials,
                    left.seed,
                    Window::new(left.scenario.start, left.scenario.months),
                )
            });
            resolved.push(
                self.inner
                    .resolve(
                        &caller,
                        spec,
                        defaults,
                        patience.unwrap_or(DEFAULT_PATIENCE),
                    )
                    .await?,
            );
        }
        let (tx, rx) = mpsc::channel(16);
        let inner = self.inner.clone();
        // The runs outlive the call's span (they stream), so they get one of their own inside it.
        let span = tracing::info_span!(
            "simulate",
            alliance.plan_id = %resolved.first().map_or_else(String::new, |r| r.plan_id.to_string()),
            alliance.simulation.runs = resolved.len(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let done = async {
                let outcomes = inner.compute(&resolved, at, &tx).await?;
                let mut results = Vec::new();
                for (resolved, outcome) in resolved.iter().zip(&outcomes) {
                    results.push(inner.finish(resolved, outcome, &caller, &metadata).await?);
                }
                let mut results = results.into_iter();
                let update = if compare {
                    v1::simulation_update::Update::Comparison(v1::SimulationComparison {
                        left: results.next(),
                        right: results.next(),
                    })
                } else {
                    v1::simulation_update::Update::Result(
                        results
                            .next()
                            .ok_or_else(|| Status::internal("no result"))?,
                    )
                };
                Ok::<_, Status>(v1::SimulationUpdate {
                    update: Some(update),
                })
            };
            let last = done.await;
            if let Err(status) = &last {
                tracing::info!(code = ?status.code(), message = status.message(), "simulation run ended");
            }
            let _ = tx.send(last).await;
        }.instrument(span));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[tonic::async_trait]
impl Simulation for SimulationApi {
    type RunStream = UpdateStream;
    type CompareStream = UpdateStream;

    async fn run(
        &self,
        request: Request<v1::RunSimulationRequest>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let specs = request.map(|message| Vec::from_iter(message.spec));
        if specs.get_ref().is_empty() {
            return Err(invalid("spec", "is required"));
        }
        self.start(specs, false).await
    }

    async fn compare(
        &self,
        request: Request<v1::CompareSimulationsRequest>,
    ) -> Result<Response<Self::CompareStream>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let left = message.left.ok_or_else(|| invalid("left", "is required"))?;
        let right = message
            .right
            .ok_or_else(|| invalid("right", "is required"))?;
        self.start(
            Request::from_parts(metadata, extensions, vec![left, right]),
            true,
        )
        .await
    }

    async fn get_run(
        &self,
        request: Request<v1::GetRunRequest>,
    ) -> Result<Response<v1::SimulationResult>, Status> {
        let caller = self.inner.auth.authenticate(&request)?;
        let raw = &request.get_ref().run_id;
        let run_id = Uuid::parse_str(raw)
            .map_err(|_| invalid("run_id", format!("{raw:?} is not a UUID")))?;
        let no_run = || {
            Status::not_found(format!(
                "simulation run {run_id} is neither kept here nor recorded in any plan"
            ))
        };
        if let Some(result) = self
            .inner
            .store
            .get(run_id)
            .map_err(|e| Status::internal(e.to_string()))?
        {
            // A run kept here is shown only to those who stand on its plan; to anyone else it
            // is no run at all (neither its plan nor that it exists is told), as a run recorded
            // in a plan they do not stand on is.
            let plan_id = PlanId::parse_str(&result.plan_id)
                .map_err(|_| Status::internal("a kept run names no plan"))?;
            return match self.inner.projection.authorize(
                &caller,
                plan_id,
                alliance_projection::Access::Read,
            ) {
                Ok(()) => Ok(Response::new(result)),
                Err(refused) if refused.code() == tonic::Code::NotFound => {
                    let mut answer = no_run();
                    // The security log still tells a caller without standing apart.
                    if let Some(source) = alliance_server::NoStanding::of(&refused) {
                        answer.set_source(Arc::new(alliance_server::NoStanding(source.0)));
                    }
                    Err(answer)
                }
                Err(refused) => Err(refused),
            };
        }
        match self.inner.reproduce(&caller, run_id).await? {
            Some(result) => Ok(Response::new(result)),
            None => Err(no_run()),
        }
    }
}
