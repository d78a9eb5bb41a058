//! `alliance.v1.Simulation` on a loopback port, over a real SQLite log with the command service
//! and the read models beside it: runs recorded in the plan's history, overlays that append
//! nothing, cancellation and deadlines, runs reproduced by an instance that did not keep them.

use std::sync::Arc;
use std::time::Duration;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_domain::{
    CapabilityArea, ClauseId, ClauseStatus, Component, ConditionId, Date, DecisionId, ElementId,
    ElementKind, Event, ForceElementSpec, InvestmentId, PlanId, Side, Step,
};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_projection::Projection;
use alliance_proto::convert::{event_to_payload, step_to_overlay};
use alliance_proto::v1;
use alliance_proto::v1::simulation_client::SimulationClient;
use alliance_server::{Authenticator, TokenFile};
use alliance_simulation::{LoadedModel, Recorder, RunStore, SimulationApi};
use alliance_tests::requests::{self, authed};
use alliance_tests::server::{self, deploy, tokens};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

const TOKEN: &str = tokens::US;
/// A team with no role on any plan (no roles of its own, and no plan grants it one).
const OUTSIDER: &str = "outsider-token";

struct Env {
    _dir: tempfile::TempDir,
    log: SqliteLog,
    plan_id: PlanId,
    projection: Arc<Projection>,
    auth: Arc<Authenticator>,
    commands: Arc<PlanCommandsApi<SqliteLog>>,
}

impl Env {
    /// Runs `trials` trials of the plan to the end on `client` and waits until the read models
    /// hold the run's record.
    async fn recorded_run(
        &self,
        client: &mut SimulationClient<Channel>,
        trials: u32,
    ) -> v1::SimulationResult {
        let (_, result) = run_to_end(client, self.spec(trials)).await.unwrap();
        self.projection
            .wait_for(
                self.plan_id,
                result.recorded_version,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        result
    }

    /// The reference plan on a fresh log, read models following it.
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
        // The development callers and a team that stands on no plan.
        let mut tokens = std::fs::read_to_string(deploy("dev-tokens.toml")).unwrap();
        tokens.push_str(&format!(
            "\n[[team]]\nteam = \"outsiders\"\nside = \"us\"\nroles = []\n\n[[token]]\ntoken = \"{OUTSIDER}\"\nteam = \"outsiders\"\nuser = \"outsider\"\n"
        ));
        let token_file = dir.path().join("tokens.toml");
        std::fs::write(&token_file, tokens).unwrap();
        let auth = Arc::new(
            Authenticator::from_token_file(&TokenFile::load(&token_file).unwrap()).unwrap(),
        );
        let service = Arc::new(
            CommandService::open(log.clone())
                .await
                .unwrap()
                .with_default_grants(auth.default_grants()),
        );
        let plan = ReferencePlan::read(&deploy("reference-plan.json")).unwrap();
        reference::load(&service, &auth, &plan).await.unwrap();
        let projection = Projection::new();
        projection.catch_up(&log).await.unwrap();
        tokio::spawn(projection.clone().follow(log.clone()));
        let commands = Arc::new(PlanCommandsApi::new(service, auth.clone(), "unused"));
        Env {
            _dir: dir,
            log,
            plan_id: plan.plan_id,
            projection,
            auth,
            commands,
        }
    }

    /// A simulation service with a store of its own, on a loopback port.
    /// A fresh environment and a client of the simulation service it serves.
    async fn serving() -> (Self, SimulationClient<Channel>) {
        let env = Env::open().await;
        let (client, _) = env.serve().await;
        (env, client)
    }

    async fn serve(&self) -> (SimulationClient<Channel>, SimulationApi) {
        self.serve_over(self.projection.clone()).await
    }

    /// The simulation service over the read models `projection`, served on a loopback port: a
    /// client of it, and the service.
    async fn serve_over(
        &self,
        projection: Arc<Projection>,
    ) -> (SimulationClient<Channel>, SimulationApi) {
        let api = SimulationApi::new(
            projection,
            self.auth.clone(),
            Arc::new(LoadedModel::reference()),
            RunStore::in_memory().unwrap(),
            Recorder::Local(self.commands.clone()),
        );
        let (listener, address) = server::loopback().await;
        let (routes, _) = alliance_server::serve::base_routes().unwrap();
        let routes = routes.add_service(api.clone().into_server());
        server::spawn_serving(listener, routes, None);
        (SimulationClient::connect(address).await.unwrap(), api)
    }

    /// A spec of 200 trials of the plan's adopted decisions alone, its run through `client`, and
    /// the plan's version once the run is recorded.
    async fn adopted_run(
        &self,
        client: &mut SimulationClient<Channel>,
    ) -> (v1::SimulationSpec, v1::SimulationResult, u64) {
        let mut spec = self.spec(200);
        spec.include_proposed = false;
        let (_, plain) = run_to_end(client, spec.clone()).await.unwrap();
        (spec, plain, self.version().await)
    }

    async fn version(&self) -> u64 {
        self.log.plan_version(self.plan_id).await.unwrap()
    }

    fn spec(&self, trials: u32) -> v1::SimulationSpec {
        v1::SimulationSpec {
            plan_id: self.plan_id.to_string(),
            include_proposed: true,
            trials,
            seed: Some(11),
            ..Default::default()
        }
    }
}

/// The run of `result` as `client` answers it by id, asserting it holds the same results.
async fn same_run(
    client: &mut SimulationClient<Channel>,
    result: &v1::SimulationResult,
) -> v1::SimulationResult {
    let run = client
        .get_run(run_request(result.run_id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.results_digest, result.results_digest);
    assert_eq!(run.monthly, result.monthly);
    run
}

/// A spec of more trials than a run may have.
fn too_many_trials(env: &Env) -> v1::SimulationSpec {
    v1::SimulationSpec {
        trials: 10_000_000,
        ..env.spec(0)
    }
}

/// The request for the run `run_id`, as the U.S. planner.
fn run_request(run_id: String) -> tonic::Request<v1::GetRunRequest> {
    authorized(v1::GetRunRequest { run_id })
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    authed(TOKEN, message)
}

/// Runs to the end; returns the progress updates seen and the final update.
/// The refusal of a run of `spec`, answered to the call itself (before any update) with `code`.
async fn refused(
    client: &mut SimulationClient<Channel>,
    spec: v1::SimulationSpec,
    code: Code,
) -> tonic::Status {
    let status = client
        .run(authorized(v1::RunSimulationRequest { spec: Some(spec) }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), code, "{status:?}");
    status
}

async fn run_to_end(
    client: &mut SimulationClient<Channel>,
    spec: v1::SimulationSpec,
) -> Result<(Vec<v1::SimulationProgress>, v1::SimulationResult), tonic::Status> {
    let mut stream = client
        .run(authorized(v1::RunSimulationRequest { spec: Some(spec) }))
        .await?
        .into_inner();
    let mut progress = Vec::new();
    while let Some(update) = stream.next().await {
        match update?.update.unwrap() {
            v1::simulation_update::Update::Progress(p) => progress.push(p),
            v1::simulation_update::Update::Result(r) => return Ok((progress, r)),
            v1::simulation_update::Update::Comparison(_) => panic!("a comparison from Run"),
        }
    }
    panic!("the stream ended without a result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_is_recorded_in_the_plan_s_history_as_the_caller() {
    let (env, mut client) = Env::serving().await;
    let before = env.version().await;
    let (_, result) = run_to_end(&mut client, env.spec(400)).await.unwrap();

    assert_eq!(result.plan_version, before);
    assert_eq!(result.recorded_version, before + 1);
    assert_eq!(env.version().await, before + 1);
    assert_eq!(result.monthly.len(), 96);
    assert!(result.monthly.iter().all(|m| m.areas.len() == 9));
    env.projection
        .wait_for(env.plan_id, before + 1, Duration::from_secs(10))
        .await
        .unwrap();
    let (run, actor) = env
        .projection
        .with_plan(env.plan_id, |h| {
            let recorded = h.events.last().unwrap();
            match recorded.event().unwrap() {
                Event::SimulationRunRecorded { run } => {
                    (run.clone(), recorded.command.actor.to_string())
                }
                other => panic!("the last event is {other:?}"),
            }
        })
        .unwrap();
    assert_eq!(run.run_id.to_string(), result.run_id);
    assert_eq!(run.inputs_digest, result.inputs_digest);
    assert_eq!(run.results_digest, result.results_digest);
    assert_eq!((run.seed, run.trials, run.what_if), (11, 400, true));
    assert_eq!(run.model_version, LoadedModel::reference().data.version);
    assert!(actor.starts_with("us-force-planning/"), "{actor}");
    assert_eq!(result.actor.as_ref().unwrap().team, "us-force-planning");

    // Kept by id.
    same_run(&mut client, &result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_inputs_and_seed_give_the_same_results_and_digests() {
    let (env, mut client) = Env::serving().await;
    let mut spec = env.spec(300);
    spec.record = Some(v1::RecordPoint {
        point: Some(v1::record_point::Point::Version(env.version().await)),
    });
    let (_, first) = run_to_end(&mut client, spec.clone()).await.unwrap();
    let (_, second) = run_to_end(&mut client, spec.clone()).await.unwrap();
    assert_ne!(first.run_id, second.run_id);
    assert_eq!(first.inputs_digest, second.inputs_digest);
    assert_eq!(first.results_digest, second.results_digest);
    assert_eq!(first.monthly, second.monthly);

    spec.seed = Some(12);
    let (_, other) = run_to_end(&mut client, spec).await.unwrap();
    assert_ne!(other.inputs_digest, first.inputs_digest);
    assert_ne!(other.results_digest, first.results_digest);
}

/// The deprecated event-shaped step, still accepted.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_run_appends_nothing_and_changes_the_result() {
    let (env, mut client) = Env::serving().await;
    let before = env.version().await;
    let mut spec = env.spec(300);
    spec.include_proposed = false;
    let (_, plain) = run_to_end(&mut client, spec.clone()).await.unwrap();
    let recorded = env.version().await;
    assert_eq!(recorded, before + 1);

    // Withdraw the THAAD battery in 2028, unsaved.
    spec.overlay = vec![v1::OverlayDecision {
        decision_id: "what-if-thaad-leaves".into(),
        title: "THAAD battery leaves".into(),
        rationale: "What if the THAAD battery left early?".into(),
        effective_date: Some(v1::Date {
            year: 2028,
            month: 1,
            day: 1,
        }),
        required_sides: vec![v1::Side::Us as i32],
        steps: vec![v1::OverlayStep {
            step: Some(v1::overlay_step::Step::WithdrawElement(
                v1::ForceElementWithdrawalPlanned {
                    decision_id: String::new(),
                    element_id: "thaad-seongju".into(),
                    on: Some(v1::Date {
                        year: 2028,
                        month: 1,
                        day: 1,
                    }),
                },
            )),
        }],
    }];
    let (_, overlaid) = run_to_end(&mut client, spec.clone()).await.unwrap();
    assert_eq!(overlaid.recorded_version, 0);
    assert_eq!(overlaid.overlay, vec!["what-if-thaad-leaves".to_owned()]);
    assert_eq!(env.version().await, recorded, "an overlay run appended");
    let missile_defense = |r: &v1::SimulationResult, month: usize| {
        r.monthly[month]
            .areas
            .iter()
            .find(|a| a.area == v1::CapabilityArea::MissileDefense as i32)
            .unwrap()
            .us
            .unwrap()
            .p50
    };
    // 2028-06: the U.S. missile-defense level is lower without the battery.
    assert!(missile_defense(&overlaid, 17) < missile_defense(&plain, 17));
    assert_eq!(missile_defense(&overlaid, 6), missile_defense(&plain, 6));

    // An overlay step on an element that does not exist is refused, and nothing is appended.
    if let Some(v1::overlay_step::Step::WithdrawElement(step)) =
        spec.overlay[0].steps[0].step.as_mut()
    {
        step.element_id = "no-such-unit".into();
    }
    let refused = run_to_end(&mut client, spec).await.unwrap_err();
    assert!(
        matches!(refused.code(), Code::NotFound | Code::FailedPrecondition),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("no-such-unit"),
        "{}",
        refused.message()
    );
    assert_eq!(env.version().await, recorded);
}

fn date(year: i32, month: i32, day: i32) -> Option<v1::Date> {
    Some(v1::Date { year, month, day })
}

/// An unsaved decision of the caller's side, effective 2028-01-01, with `steps`.
fn what_if(id: &str, steps: Vec<v1::overlay_step::Step>) -> v1::OverlayDecision {
    v1::OverlayDecision {
        decision_id: id.into(),
        title: format!("What if: {id}"),
        rationale: "An unsaved what-if.".into(),
        effective_date: date(2028, 1, 1),
        required_sides: vec![v1::Side::Us as i32],
        steps: steps
            .into_iter()
            .map(|step| v1::OverlayStep { step: Some(step) })
            .collect(),
    }
}

/// The U.S., ROK and combined median level of `area` in month `month` of a result.
fn levels(result: &v1::SimulationResult, month: usize, area: v1::CapabilityArea) -> [f64; 3] {
    let area = result.monthly[month]
        .areas
        .iter()
        .find(|a| a.area == area as i32)
        .unwrap();
    [area.us, area.rok, area.combined].map(|bands| bands.unwrap().p50)
}

/// A step in the deprecated event-shaped form: the event message it used to borrow, under a
/// decision id that is ignored.
#[allow(deprecated)]
fn deprecated_step(step: &Step) -> v1::overlay_step::Step {
    use v1::event_envelope::Payload as P;
    use v1::overlay_step::Step as S;
    let planned = Event::StepPlanned {
        decision_id: DecisionId::parse("ignored").unwrap(),
        step: step.clone(),
    };
    match event_to_payload(&planned) {
        P::ForceElementAdditionPlanned(p) => S::AddElement(p),
        P::ForceElementWithdrawalPlanned(p) => S::WithdrawElement(p),
        P::ForceElementReductionPlanned(p) => S::ReduceElement(p),
        P::ForceElementRelocationPlanned(p) => S::RelocateElement(p),
        P::OpconTransferScheduled(p) => S::TransferOpcon(p),
        P::CommandArrangementChangePlanned(p) => S::ChangeCommandArrangement(p),
        P::AgreementClauseAmendmentPlanned(p) => S::AmendClause(p),
        P::CapabilityInvestmentPlanned(p) => S::InvestCapability(p),
        other => panic!("no deprecated form of {other:?}"),
    }
}

/// The same what-if written with the overlay's own step messages and with the deprecated
/// event-shaped ones is the same run: the same inputs, digests and months, for every kind of
/// step the old form has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_of_step_messages_is_the_run_of_its_deprecated_event_form() {
    let (env, mut client) = Env::serving().await;
    let (mut spec, plain, recorded) = env.adopted_run(&mut client).await;

    // One what-if, every kind of step the deprecated form has, in the domain's terms.
    let on = |year, month| Date::from_ymd_opt(year, month, 1).unwrap();
    let patriot = ElementId::parse("what-if-patriot").unwrap();
    let decisions = [
        (
            "what-if-thaad-leaves",
            vec![Step::WithdrawElement {
                element_id: ElementId::parse("thaad-seongju").unwrap(),
                on: on(2028, 1),
            }],
        ),
        (
            "what-if-more-and-less",
            vec![
                Step::AddElement {
                    element: ForceElementSpec {
                        id: patriot.clone(),
                        name: "Additional Patriot battalion".into(),
                        side: Side::Us,
                        component: Component::Army,
                        kind: ElementKind::AirDefense,
                        personnel: 600,
                        equipment: [("Patriot launcher".to_owned(), 12)].into_iter().collect(),
                        base: "Osan Air Base".into(),
                    },
                    on: on(2028, 3),
                },
                Step::ReduceElement {
                    element_id: patriot.clone(),
                    personnel: 100,
                    equipment: [("Patriot launcher".to_owned(), 4)].into_iter().collect(),
                    on: on(2029, 3),
                },
                Step::RelocateElement {
                    element_id: patriot,
                    to_base: "Camp Humphreys".into(),
                    on: on(2029, 6),
                },
                Step::ChangeCommandArrangement {
                    on: on(2028, 6),
                    peacetime_opcon: Some(Side::Rok),
                    wartime_opcon: None,
                    cfc_commander: None,
                },
                Step::InvestCapability {
                    investment_id: InvestmentId::parse("what-if-l-sam").unwrap(),
                    area: CapabilityArea::MissileDefense,
                    description: "An earlier L-SAM battery".into(),
                    level_gain: 10,
                    delivery: on(2028, 9),
                    cost_kusd: 900_000,
                },
                Step::TransferOpcon {
                    on: on(2028, 10),
                    conditions: ["rok-c2-certified", "rok-missile-defense-70"]
                        .map(|c| ConditionId::parse(c).unwrap())
                        .into(),
                },
                Step::AmendClause {
                    clause_id: ClauseId::parse("123-enrichment").unwrap(),
                    status: ClauseStatus::Permitted,
                    on: on(2029, 1),
                },
            ],
        ),
    ];
    // Written each way by the contract's own writers: the step messages as alliancectl writes
    // them, and, as clients wrote them before, the event message each step used to borrow.
    let overlay = |form: &dyn Fn(&Step) -> v1::overlay_step::Step| -> Vec<v1::OverlayDecision> {
        decisions
            .iter()
            .map(|(decision, steps)| what_if(decision, steps.iter().map(form).collect()))
            .collect()
    };
    let new = overlay(&step_to_overlay);
    let old = overlay(&deprecated_step);

    spec.overlay = new;
    let (_, with_new) = run_to_end(&mut client, spec.clone()).await.unwrap();
    spec.overlay = old;
    let (_, with_old) = run_to_end(&mut client, spec).await.unwrap();
    assert_eq!(with_new.inputs_digest, with_old.inputs_digest);
    assert_eq!(with_new.results_digest, with_old.results_digest);
    assert_eq!(with_new.monthly, with_old.monthly);
    assert_eq!(with_new.overlay, with_old.overlay);
    assert_eq!(
        with_new.overlay,
        ["what-if-more-and-less", "what-if-thaad-leaves"]
    );
    // And the overlay is applied: the run differs from the plan without it.
    assert_ne!(with_new.results_digest, plain.results_digest);
    assert_eq!(env.version().await, recorded, "an overlay run appended");
}

/// An overlay assigns a mission of the operational plans, as AssignMission does: the ROK
/// leading major combat alone from 2028 takes the U.S. missile-defense level out of the area's
/// coverage from then on, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_assigns_a_mission() {
    let (env, mut client) = Env::serving().await;
    let (mut spec, plain, recorded) = env.adopted_run(&mut client).await;

    let rok_alone = |lead: v1::Side, supporting: v1::Side| {
        what_if(
            "what-if-rok-leads-alone",
            vec![v1::overlay_step::Step::AssignMission(
                v1::AssignMissionStep {
                    mission: v1::Mission::MajorCombat as i32,
                    lead: lead as i32,
                    supporting: supporting as i32,
                    on: date(2028, 1, 1),
                },
            )],
        )
    };
    spec.overlay = vec![rok_alone(v1::Side::Rok, v1::Side::Unspecified)];
    let (_, assigned) = run_to_end(&mut client, spec.clone()).await.unwrap();
    assert_eq!(assigned.overlay, ["what-if-rok-leads-alone"]);
    assert_eq!(assigned.recorded_version, 0);
    let area = v1::CapabilityArea::MissileDefense;
    // 2027-07: before the assignment, the same.
    assert_eq!(levels(&assigned, 6, area), levels(&plain, 6, area));
    // 2028-06: the U.S. level no longer counts, and the combined coverage is lower.
    let [us, _, combined] = levels(&assigned, 17, area);
    let [plain_us, _, plain_combined] = levels(&plain, 17, area);
    assert!(plain_us > 0.0, "{plain_us}");
    assert_eq!(us, 0.0);
    assert!(combined < plain_combined, "{combined} < {plain_combined}");

    // The supporting side must be the other side: the domain's check, on the overlay too.
    spec.overlay = vec![rok_alone(v1::Side::Rok, v1::Side::Rok)];
    let refused = run_to_end(&mut client, spec).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("supporting"), "{refused:?}");
    assert_eq!(env.version().await, recorded, "an overlay run appended");
}

/// Bad values in the overlay's step messages are refused before anything runs, every one named
/// by its path in the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_in_overlay_step_messages_are_refused_with_their_paths() {
    use v1::overlay_step::Step as S;
    let (env, mut client) = Env::serving().await;
    let head = env.version().await;
    let mut spec = env.spec(10);
    spec.overlay = vec![what_if(
        "what-if-bad",
        vec![
            S::AssignMission(v1::AssignMissionStep {
                mission: v1::Mission::Unspecified as i32,
                lead: 99,
                supporting: v1::Side::Us as i32,
                on: None,
            }),
            S::WithdrawForceElement(v1::WithdrawForceElementStep {
                element_id: String::new(),
                on: date(2029, 2, 30),
            }),
            S::PlanCapabilityInvestment(v1::PlanCapabilityInvestmentStep {
                investment_id: "what-if-l-sam".into(),
                area: v1::CapabilityArea::Unspecified as i32,
                description: "An earlier L-SAM battery".into(),
                level_gain: 10,
                delivery: date(2028, 9, 1),
                cost_kusd: 900_000,
            }),
        ],
    )];
    spec.overlay[0].steps.push(v1::OverlayStep { step: None });
    let status = refused(&mut client, spec, Code::InvalidArgument).await;
    assert_eq!(
        requests::violated(&status),
        [
            "overlay[0].steps[0].assign_mission.mission",
            "overlay[0].steps[0].assign_mission.lead",
            "overlay[0].steps[0].assign_mission.on",
            "overlay[0].steps[1].withdraw_force_element.element_id",
            "overlay[0].steps[1].withdraw_force_element.on",
            "overlay[0].steps[2].plan_capability_investment.area",
            "overlay[0].steps[3]",
        ],
        "{status:?}"
    );
    assert_eq!(env.version().await, head, "nothing recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_and_records_nothing() {
    let env = Env::open().await;
    let (mut client, api) = env.serve().await;
    let before = env.version().await;
    let mut runs = api.runs();
    // The largest run allowed (3,000,000 trial-months over the 96-month default window):
    // seconds of work if nothing stopped it.
    let spec = env.spec(31_000);
    let mut stream = client
        .run(authorized(v1::RunSimulationRequest { spec: Some(spec) }))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    let Some(v1::simulation_update::Update::Progress(progress)) = first.update else {
        panic!("expected progress first, got {first:?}");
    };
    assert_eq!(progress.trials, 31_000);
    drop(stream);
    let stats = *tokio::time::timeout(
        Duration::from_secs(60),
        runs.wait_for(|s| s.completed + s.cancelled == 1),
    )
    .await
    .expect("the run neither stopped nor ended")
    .unwrap();
    assert_eq!((stats.cancelled, stats.completed, stats.active), (1, 0, 0));
    assert_eq!(env.version().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_deadline_is_stopped_with_deadline_exceeded() {
    let env = Env::open().await;
    let (mut client, api) = env.serve().await;
    let before = env.version().await;
    let spec = env.spec(31_000);
    let mut request = authorized(v1::RunSimulationRequest { spec: Some(spec) });
    request.set_timeout(Duration::from_millis(300));
    let outcome = async {
        let mut stream = client.run(request).await?.into_inner();
        while let Some(update) = stream.next().await {
            if let Some(v1::simulation_update::Update::Result(_)) = update?.update {
                panic!("a result within the deadline");
            }
        }
        Ok::<(), tonic::Status>(())
    }
    .await;
    let status = outcome.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let stats = *tokio::time::timeout(
        Duration::from_secs(60),
        api.runs().wait_for(|s| s.completed + s.cancelled == 1),
    )
    .await
    .expect("the run neither stopped nor ended")
    .unwrap();
    assert_eq!((stats.cancelled, stats.completed), (1, 0));
    assert_eq!(env.version().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_reproduces_a_recorded_run_it_did_not_keep() {
    let (env, mut first) = Env::serving().await;
    let result = env.recorded_run(&mut first, 300).await;

    let (mut second, _) = env.serve().await;
    let reproduced = same_run(&mut second, &result).await;
    assert_eq!(reproduced.recorded_version, result.recorded_version);
    assert_eq!(reproduced.actor.unwrap().team, "us-force-planning");

    let unknown = second
        .get_run(run_request(uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

/// A run is found by its id through the read model's index of recorded runs, which a read model
/// built from the log and one rebuilt in place both hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_is_found_on_a_read_model_built_or_rebuilt_from_the_log() {
    let (env, mut first) = Env::serving().await;
    let result = env.recorded_run(&mut first, 200).await;
    let run = |projection: Arc<Projection>| {
        let env = &env;
        let run_id = result.run_id.clone();
        async move {
            let (mut client, _) = env.serve_over(projection).await;
            client.get_run(run_request(run_id)).await
        }
    };
    // Built from the log.
    let built = Projection::new();
    built.catch_up(&env.log).await.unwrap();
    let found = run(built.clone()).await.unwrap().into_inner();
    assert_eq!(found.results_digest, result.results_digest);
    assert_eq!(found.plan_id, env.plan_id.to_string());
    // Rebuilt in place: the fresh model's index comes with it.
    built.rebuild(&env.log, &mut |_| {}).await.unwrap();
    let found = run(built.clone()).await.unwrap().into_inner();
    assert_eq!(found.results_digest, result.results_digest);
    assert_eq!(found.recorded_version, result.recorded_version);
    // A model that holds no plan finds no run.
    let empty = run(Projection::new()).await.unwrap_err();
    assert_eq!(empty.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comparison_runs_both_sides_with_the_same_draws() {
    let (env, mut client) = Env::serving().await;
    let left = v1::SimulationSpec {
        include_proposed: false,
        ..env.spec(300)
    };
    let right = v1::SimulationSpec {
        plan_id: env.plan_id.to_string(),
        include_proposed: true,
        ..Default::default()
    };
    let mut stream = client
        .compare(authorized(v1::CompareSimulationsRequest {
            left: Some(left),
            right: Some(right),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut comparison = None;
    while let Some(update) = stream.next().await {
        if let Some(v1::simulation_update::Update::Comparison(c)) = update.unwrap().update {
            comparison = Some(c);
        }
    }
    let comparison = comparison.expect("a comparison");
    let (left, right) = (comparison.left.unwrap(), comparison.right.unwrap());
    assert_eq!((left.seed, left.trials), (right.seed, right.trials));
    assert_eq!(left.start, right.start);
    assert!(!left.what_if && right.what_if);
    // The drawdown is proposed: only the what-if side sees U.S. personnel fall by 2031.
    let personnel = |r: &v1::SimulationResult| r.monthly[59].us_personnel.unwrap().p50;
    assert!(personnel(&right) < personnel(&left));
    assert!(left.recorded_version > 0 && right.recorded_version > left.recorded_version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_at_once_and_appends_nothing() {
    let (env, mut client) = Env::serving().await;
    let before = env.version().await;
    let cases: Vec<(v1::SimulationSpec, Code, &str)> = vec![
        (too_many_trials(&env), Code::InvalidArgument, "trials"),
        (
            v1::SimulationSpec {
                months: 100_000,
                ..env.spec(10)
            },
            Code::InvalidArgument,
            "months",
        ),
        (
            v1::SimulationSpec {
                months: 600,
                ..env.spec(100_000)
            },
            Code::InvalidArgument,
            "trial-months",
        ),
        (
            v1::SimulationSpec {
                plan_id: "not-a-uuid".into(),
                ..env.spec(10)
            },
            Code::InvalidArgument,
            "plan_id",
        ),
        (
            v1::SimulationSpec {
                plan_id: uuid::Uuid::now_v7().to_string(),
                ..env.spec(10)
            },
            Code::NotFound,
            "",
        ),
        (
            v1::SimulationSpec {
                start: Some(v1::Date {
                    year: 2029,
                    month: 2,
                    day: 30,
                }),
                ..env.spec(10)
            },
            Code::InvalidArgument,
            "start",
        ),
    ];
    for (spec, code, field) in cases {
        let status = refused(&mut client, spec, code).await;
        assert!(status.message().contains(field), "{status:?}");
    }
    let mut unauthenticated = tonic::Request::new(v1::RunSimulationRequest {
        spec: Some(env.spec(10)),
    });
    unauthenticated
        .metadata_mut()
        .insert("authorization", "Bearer nobody".parse().unwrap());
    let status = client.run(unauthenticated).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(env.version().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_grpc_timeout_is_clamped_and_the_run_completes() {
    let (env, mut client) = Env::serving().await;
    let mut request = authorized(v1::RunSimulationRequest {
        spec: Some(env.spec(50)),
    });
    request
        .metadata_mut()
        .insert("grpc-timeout", "18446744073709551615S".parse().unwrap());
    let mut stream = client.run(request).await.unwrap().into_inner();
    let mut result = None;
    while let Some(update) = stream.next().await {
        if let v1::simulation_update::Update::Result(r) = update.unwrap().update.unwrap() {
            result = Some(r);
        }
    }
    assert_eq!(result.expect("a result").trials, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field_in_a_bad_request() {
    let (env, mut client) = Env::serving().await;
    let head = env.version().await;
    let cases = [
        (too_many_trials(&env), Code::InvalidArgument, "trials"),
        (
            v1::SimulationSpec {
                record: Some(v1::RecordPoint {
                    point: Some(v1::record_point::Point::Version(head + 1)),
                }),
                ..env.spec(10)
            },
            Code::OutOfRange,
            "record.version",
        ),
        (
            v1::SimulationSpec {
                record: Some(v1::RecordPoint {
                    point: Some(v1::record_point::Point::Time(prost_types::Timestamp {
                        seconds: 0,
                        nanos: -5,
                    })),
                }),
                ..env.spec(10)
            },
            Code::InvalidArgument,
            "record.time",
        ),
    ];
    for (spec, code, field) in cases {
        let status = refused(&mut client, spec, code).await;
        assert_eq!(requests::fields(&status), [field], "{status:?}");
    }
    assert_eq!(env.version().await, head, "nothing recorded");
}

/// A caller who stands on no plan learns nothing from a run's id: a run kept here, a run
/// recorded in a plan and no run at all are answered alike, without the plan or the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_plan_the_caller_does_not_stand_on_is_answered_as_no_run() {
    let (env, mut first) = Env::serving().await;
    let result = env.recorded_run(&mut first, 100).await;
    // Kept by the first instance; only recorded in the plan for the second.
    let (mut second, _) = env.serve().await;
    let answer = |mut client: SimulationClient<Channel>, run_id: String| async move {
        client
            .get_run(authed(OUTSIDER, v1::GetRunRequest { run_id }))
            .await
            .unwrap_err()
    };
    let unknown_id = uuid::Uuid::now_v7().to_string();
    let unknown = answer(first.clone(), unknown_id.clone()).await;
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let as_unknown = |status: &tonic::Status| status.message().replace(&result.run_id, &unknown_id);
    for (instance, refused) in [
        ("kept", answer(first.clone(), result.run_id.clone()).await),
        (
            "recorded",
            answer(second.clone(), result.run_id.clone()).await,
        ),
    ] {
        assert_eq!(refused.code(), Code::NotFound, "{instance}: {refused:?}");
        assert_eq!(as_unknown(&refused), unknown.message(), "{instance}");
        assert!(
            !refused.message().contains(&env.plan_id.to_string()),
            "{instance}: {refused:?}"
        );
        assert!(
            refused.details().is_empty() || refused.details() == unknown.details(),
            "{instance}"
        );
    }
    // The caller who stands on it gets the run.
    second
        .get_run(run_request(result.run_id.clone()))
        .await
        .unwrap();
}
