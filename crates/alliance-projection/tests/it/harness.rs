//! A command service on a real SQLite log in a temporary directory, callers from the dev token
//! file, and naive (checkpoint-free) folds of what the log holds, to compare read models with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{CommandMeta, CommandOutcome, CommandService};
pub use alliance_domain::testing::date;
use alliance_domain::{
    Command, Component, ElementId, ElementKind, Event, ForceElementSpec, PartsHandoff, Plan,
    PlanId, Side, TeamId, Version,
};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_projection::Projection;
use alliance_proto::v1;
use alliance_record::decode_event;
use alliance_record::signing::{Signer, TrustedKey, TrustedKeys};
use alliance_server::{Authenticator, Caller, ServiceError, TokenFile};
use alliance_tests::requests;
use alliance_tests::server::tokens;

pub const US: &str = "us-force-planning";
pub const ROK: &str = "rok-jcs";
pub const APPROVER: &str = "alliance-approvers";

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

/// A command service over a log (by default a fresh SQLite log).
pub struct Env<L: EventLog = SqliteLog> {
    _dir: Option<tempfile::TempDir>,
    pub log: L,
    pub service: Arc<CommandService<L>>,
    pub auth: Authenticator,
    /// The key the command service signs with, trusted alone.
    pub signer: Signer,
    pub trusted: Arc<TrustedKeys>,
    /// Where the service offers the parts of the events it decides, as allianced's does.
    pub handoff: Arc<PartsHandoff>,
}

impl Env {
    pub async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
        let mut env = Env::on(log).await;
        env._dir = Some(dir);
        env
    }

    /// The SQLite file of the log.
    pub fn db(&self) -> PathBuf {
        self._dir
            .as_ref()
            .expect("a SQLite log")
            .path()
            .join("alliance.db")
    }

    /// Every event of one plan, as stored.
    pub async fn plan_events(&self, plan_id: PlanId) -> Vec<StoredEvent> {
        self.log.read_plan(plan_id, 1, 1_000_000).await.unwrap()
    }

    /// A read model of the service's process, as allianced's: it holds the parts the service
    /// hands it ([`Projection::share_with`]).
    pub fn sharing(&self) -> Arc<Projection> {
        let projection = Projection::new();
        projection.share_with(self.handoff.clone());
        projection
    }

    /// A read model that has read everything the log holds now.
    pub async fn caught_up(&self) -> Arc<Projection> {
        let projection = Projection::new();
        projection.catch_up(&self.log).await.unwrap();
        projection
    }

    /// Serves, on a loopback port, read models that have read everything the log holds now;
    /// returns the server's URL.
    pub async fn serve_caught_up(&self) -> String {
        serve(self, self.caught_up().await).await
    }
}

impl<L: EventLog> Env<L> {
    /// A command service over `log`.
    pub async fn on(log: L) -> Self {
        let signer = Signer::generate().unwrap();
        let trusted = Arc::new(TrustedKeys::new([TrustedKey::always(
            signer.verifying_key(),
        )]));
        let auth =
            Authenticator::from_token_file(&TokenFile::load(&deploy("dev-tokens.toml")).unwrap())
                .unwrap();
        let handoff = Arc::new(alliance_domain::parts_handoff());
        let service = Arc::new(
            CommandService::open(log.clone())
                .await
                .unwrap()
                .with_default_grants(auth.default_grants())
                .with_signer(signer.clone())
                .with_handoff(handoff.clone()),
        );
        Self {
            _dir: None,
            log,
            service,
            auth,
            signer,
            trusted,
            handoff,
        }
    }

    pub fn caller(&self, team: &str) -> Caller {
        self.auth
            .team_caller(&TeamId::parse(team).unwrap(), "tester")
            .expect("team of the dev token file")
    }

    /// Executes `command` on `plan_id` as `team`, under a fresh command id.
    pub async fn try_exec(
        &self,
        team: &str,
        plan_id: PlanId,
        command: Command,
    ) -> Result<CommandOutcome, ServiceError> {
        let meta = CommandMeta {
            command_id: uuid::Uuid::now_v7().to_string(),
            plan_id: Some(plan_id),
            ..CommandMeta::default()
        };
        self.service
            .execute(&self.caller(team), meta, command)
            .await
    }

    pub async fn exec(&self, team: &str, plan_id: PlanId, command: Command) -> CommandOutcome {
        let name = command.name();
        self.try_exec(team, plan_id, command)
            .await
            .unwrap_or_else(|e| panic!("{name} refused: {e}"))
    }

    /// Registers a U.S. element `name` of 500 on `plan`, present from 2024; returns the plan's
    /// version.
    pub async fn register(&self, plan: PlanId, name: &str) -> u64 {
        self.exec(US, plan, registration(name, 500))
            .await
            .plan_version
    }

    /// Creates a plan with the horizon 2020–2035.
    pub async fn create_plan(&self) -> PlanId {
        let plan_id = uuid::Uuid::now_v7();
        let create = Command::CreatePlan {
            plan_id,
            name: "test plan".into(),
            description: String::new(),
            horizon_start: date(2020, 1, 1),
            horizon_end: date(2035, 12, 31),
            grants: Vec::new(),
        };
        assert_eq!(self.exec(APPROVER, plan_id, create).await.plan_version, 1);
        plan_id
    }

    /// A new plan with `n` U.S. elements `unit-0`, `unit-1`, ... of 100, 101, ... personnel,
    /// present from 2024.
    pub async fn plan_with_elements(&self, n: u32) -> PlanId {
        let plan = self.create_plan().await;
        for i in 0..n {
            self.exec(US, plan, registration(&format!("unit-{i}"), 100 + i))
                .await;
        }
        plan
    }

    /// Loads `deploy/reference-plan.json` through the command service; returns the plan's id.
    pub async fn load_reference(&self) -> (PlanId, usize) {
        let plan = ReferencePlan::read(&deploy("reference-plan.json")).unwrap();
        let report = reference::load(&self.service, &self.auth, &plan)
            .await
            .unwrap();
        assert_eq!(report.applied, plan.entries.len());
        assert_eq!(report.already_present, 0);
        (plan.plan_id, plan.entries.len())
    }
}

/// `GetPosture` of `plan_id` on 2025-01-01 as recorded now (adopted decisions only), answered
/// at or after `min_version`, as the auditors ask it.
pub fn posture_request(plan_id: &str, min_version: u64) -> tonic::Request<v1::GetPostureRequest> {
    requests::authed(
        tokens::AUDITOR,
        v1::GetPostureRequest {
            plan_id: plan_id.to_owned(),
            valid_on: requests::date(2025, 1, 1),
            record: None,
            include_proposed: false,
            min_version,
        },
    )
}

/// The log position of `plan`'s record at `version` in the SQLite file `db`.
pub fn position_of(db: &rusqlite::Connection, plan: PlanId, version: u64) -> u64 {
    db.query_row(
        "SELECT position FROM events WHERE plan_id = ?1 AND version = ?2",
        rusqlite::params![plan.as_bytes().as_slice(), version as i64],
        |row| row.get::<_, i64>(0),
    )
    .map(|p| p as u64)
    .unwrap()
}

/// The stored bytes of `plan`'s record at `version` in the SQLite file `db`.
pub fn payload_of(db: &rusqlite::Connection, plan: PlanId, version: u64) -> Vec<u8> {
    db.query_row(
        "SELECT payload FROM events WHERE plan_id = ?1 AND version = ?2",
        rusqlite::params![plan.as_bytes().as_slice(), version as i64],
        |row| row.get(0),
    )
    .unwrap()
}

pub fn id(s: &str) -> ElementId {
    ElementId::parse(s).unwrap()
}

/// Registers a U.S. element of `personnel` as a baseline element present from 2024.
pub fn registration(element_id: &str, personnel: u32) -> Command {
    Command::RegisterForceElement {
        element: element(element_id, Side::Us, personnel),
        present_from: date(2024, 1, 1),
    }
}

pub fn element(element_id: &str, side: Side, personnel: u32) -> ForceElementSpec {
    ForceElementSpec {
        id: id(element_id),
        name: format!("element {element_id}").into(),
        side,
        component: Component::Army,
        kind: ElementKind::GroundCombatBrigade,
        personnel,
        equipment: [("M1A2".to_owned(), 10)].into_iter().collect(),
        base: "Camp Humphreys".into(),
    }
}

/// The domain events of stored records, decoded the way every reader decodes them.
pub fn decode(stored: &[StoredEvent]) -> Vec<Event> {
    stored
        .iter()
        .map(|s| decode_event(s).unwrap().event)
        .collect()
}

/// The plan folded from scratch over its first `version` events (no checkpoints).
/// The version a reader sees for `version`: the end of the command whose events include it (a
/// command's events are never read in part).
pub fn command_end(stored: &[StoredEvent], version: Version) -> Version {
    let mut end = version as usize;
    while end > 0 && end < stored.len() && stored[end].command_id == stored[end - 1].command_id {
        end += 1;
    }
    end as Version
}

pub fn naive_state(events: &[Event], version: Version) -> Plan {
    alliance_domain::fold(Plan::default(), &events[..version as usize])
}

/// The version of the first event of `plan` matching `pick`.
pub fn version_of(events: &[StoredEvent], pick: impl Fn(&Event) -> bool) -> Version {
    events
        .iter()
        .find(|s| pick(&decode_event(s).unwrap().event))
        .map(|s| s.version)
        .expect("no such event")
}

/// Serves the read models of `projection` (over `env`'s log) on a loopback port.
pub async fn serve(env: &Env, projection: Arc<Projection>) -> String {
    serve_guarded(env, projection, alliance_server::serve::Guard::default()).await
}

/// Serves the read models of `projection` on a loopback port, guarded as `guard` says (its
/// connection limits, for instance).
pub async fn serve_guarded(
    env: &Env,
    projection: Arc<Projection>,
    guard: alliance_server::serve::Guard,
) -> String {
    serve_read_models(
        projection,
        env.log.clone(),
        &env.auth,
        env.trusted.clone(),
        guard,
    )
    .await
}

/// Asserts that the hash chain of `plan` in `log` verifies whole over `events` events.
pub async fn assert_chain_holds<L: alliance_eventlog::LogReader>(
    log: &L,
    plan: PlanId,
    trusted: &Arc<TrustedKeys>,
    events: u64,
) {
    let chain = alliance_projection::verify_plan(log, plan, trusted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((chain.head.events, chain.first_break), (events, None));
}

/// Serves read models of `log` (caught up to what it holds now), verifying signatures against
/// `trusted`, on a loopback port: a server over a copy of a log.
pub async fn serve_log<L: alliance_eventlog::LogReader>(
    log: L,
    auth: &Authenticator,
    keys: impl Into<alliance_projection::AuditKeys>,
) -> String {
    let projection = Projection::new();
    projection.catch_up(&log).await.unwrap();
    serve_read_models(
        projection,
        log,
        auth,
        keys,
        alliance_server::serve::Guard::default(),
    )
    .await
}

/// Serves the read models of `projection` over `log` on a loopback port; returns its URL.
async fn serve_read_models<L: alliance_eventlog::LogReader>(
    projection: Arc<Projection>,
    log: L,
    auth: &Authenticator,
    keys: impl Into<alliance_projection::AuditKeys>,
    guard: alliance_server::serve::Guard,
) -> String {
    let (listener, address) = alliance_tests::server::loopback().await;
    let (routes, health) = alliance_server::serve::base_routes().unwrap();
    let routes = alliance_projection::add_routes(
        routes,
        &health,
        projection,
        log,
        Arc::new(auth.clone()),
        None,
        keys,
    )
    .await;
    alliance_tests::server::spawn_serving(listener, routes, guard);
    address
}
