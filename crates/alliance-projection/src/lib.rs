//! The projection service's read models: every plan's history in record time, from which the
//! posture at any (valid date, record time) pair, posture series, diffs between record times
//! and the decisions view are answered. Always rebuildable from the log: [`Projection::follow`]
//! reads the log from the start (catch-up), then each event as it is committed (live).

mod admin;
mod apply;
mod audit;
mod events;
mod grpc;
mod history;
mod index;
mod queries;
mod snapshot;
mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alliance_domain::{Event, PartsHandoff, PlanId, Version};
use alliance_eventlog::{Checkpoint, LogReader, Position, StoredEvent};
use alliance_record::signing::TrustedKeys;
use alliance_stdx::{lock, read, write};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};

pub use admin::{LAG_REFRESH, ReadModelAdminApi};
pub use alliance_proto::convert::posture_to_proto;
pub use audit::{AuditKeys, AuditLogApi, KeptHead, Verification, verify_plan, verify_plan_against};
pub use events::{EventFilter, EventPage, MAX_PAGE};
pub use grpc::{PostureQueriesApi, add_routes, record_point, status};
pub use history::{
    PackedEvent, PlanHistory, RecordPoint, Recorded, RecordedBy, RecordedCommand, Seal,
};
pub use queries::{
    DecisionChange, DecisionFilter, DecisionView, ElementChange, ElementChangeKind, LifecycleEntry,
    PlanDiff, SeriesStep,
};
pub use snapshot::SnapshotError;
pub use telemetry::{ReadModelMetrics, observe};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("plan {0} not found")]
    PlanNotFound(PlanId),
    /// The read model has not reached the version asked for within the deadline.
    #[error(
        "the read model of plan {plan_id} is at version {have}, {} behind the version {wanted} asked for; retry",
        wanted.saturating_sub(*have)
    )]
    Behind {
        plan_id: PlanId,
        wanted: Version,
        have: Version,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the log holds an event the read model cannot read: {0}")]
    Corrupt(String),
    /// A record whose writer's signature the read model does not trust: never applied.
    #[error("record {event_id} of plan {plan_id} at version {version} is not trusted: {reason}")]
    Untrusted {
        plan_id: PlanId,
        version: Version,
        event_id: uuid::Uuid,
        reason: String,
    },
    /// A second, different record at a version the plan already holds: never applied.
    #[error(
        "record {event_id} of plan {plan_id} at version {version} differs from record {held}, applied at that version before it"
    )]
    Conflict {
        plan_id: PlanId,
        version: Version,
        event_id: uuid::Uuid,
        held: uuid::Uuid,
    },
    #[error("event log: {0}")]
    Log(#[from] alliance_eventlog::LogError),
}

/// What a request does with a plan: read it, or read its audit history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Audit,
}

/// A change of one plan's read model: the plan reached `version` with `event`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub plan_id: PlanId,
    pub recorded: Recorded,
    /// The `traceparent` of the read-model update, when it was traced: pushing the change to a
    /// subscriber continues the trace.
    pub trace: Option<Arc<str>>,
}

/// The read models of every plan in the log.
pub struct Projection {
    plans: RwLock<HashMap<PlanId, PlanHistory>>,
    /// The plans whose own streams record each simulation run, kept with `plans` (written
    /// under its lock), so a run is found without reading every plan.
    runs: RwLock<HashMap<uuid::Uuid, Vec<PlanId>>>,
    /// How far the log has been applied.
    checkpoint: watch::Sender<Checkpoint>,
    /// Every applied event, for live subscribers.
    applied: broadcast::Sender<Applied>,
    /// Held while applying an event from the log, and by a rebuild while it swaps models.
    gate: tokio::sync::Mutex<()>,
    /// The snapshot restored from or last written, when there is one.
    snapshot: std::sync::Mutex<Option<SnapshotMark>>,
    /// Events of the log this model could not apply, set aside.
    quarantine: alliance_eventlog::Quarantine,
    /// The writers' keys each record's signature is checked against; `None`: none is checked.
    trust: Option<Arc<TrustedKeys>>,
    /// Where the command service of this process offers the parts of the events it decided
    /// ([`Projection::share_with`]).
    handoff: std::sync::OnceLock<Arc<PartsHandoff>>,
}

/// A snapshot of the read models on disk: when it was written and the log position it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMark {
    pub written: std::time::SystemTime,
    pub position: Position,
}

/// What a read model holds and how far it has read the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    pub plans: usize,
    /// Events applied, over every plan (a branch's own events only).
    pub events: u64,
    pub checkpoint: Checkpoint,
    pub snapshot: Option<SnapshotMark>,
}

/// Events between two progress reports of a long read.
pub const PROGRESS_EVERY: u64 = 100_000;

/// How far a long read of the log has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub read: u64,
    /// About how many events there are to read in all.
    pub total: u64,
}

/// A read model ready to serve: restored from the snapshot at `snapshot` when there is a usable
/// one, otherwise built from the whole log; then caught up with the log's tail. The caller
/// follows the log from there ([`Projection::follow`]).
///
/// With `trust`, the model applies only records signed by those keys, besides the unsigned
/// records a plan starts with when it was written before its writers signed
/// ([`Projection::trusting`]). With `handoff`, it holds the parts the command service of its
/// process offers there from the start ([`Projection::share_with`]).
pub async fn open<R: LogReader>(
    log: &R,
    snapshot: &std::path::Path,
    trust: Option<Arc<TrustedKeys>>,
    handoff: Option<Arc<PartsHandoff>>,
) -> Result<Arc<Projection>, ProjectionError> {
    let started = std::time::Instant::now();
    let projection = if snapshot.exists() {
        match Projection::restore_trusting(snapshot, log, trust.clone()).await {
            Ok(restored) => {
                if let Ok(written) = std::fs::metadata(snapshot).and_then(|m| m.modified()) {
                    restored.note_snapshot(written, restored.position());
                }
                Arc::new(restored)
            }
            Err(error) => {
                tracing::warn!(%error, "snapshot ignored; rebuilding the read models from the log");
                Arc::new(Projection::with_trust(trust))
            }
        }
    } else {
        Arc::new(Projection::with_trust(trust))
    };
    if let Some(handoff) = handoff {
        projection.share_with(handoff);
    }
    let from = projection.position();
    let read = projection
        .catch_up_reporting(log, &mut |p: Progress| {
            if p.read < p.total {
                tracing::info!(
                    read = p.read,
                    of = p.total,
                    "reading the log into the read models"
                );
            }
        })
        .await?;
    tracing::info!(snapshot_position = from, tail = read, elapsed = ?started.elapsed(), "read models ready");
    Ok(projection)
}

/// Serves `routes` on `listener` until Ctrl-C or SIGTERM, guarded by `guard` (TLS, verified
/// credentials, the security log of refused requests), then writes the snapshot of `projection`
/// to `snapshot`, so the next start reads only the log's tail. `server` names the process in the
/// lines it prints.
pub async fn serve_until_stopped(
    server: &str,
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    projection: &Projection,
    snapshot: &std::path::Path,
    guard: alliance_server::serve::Guard,
) -> Result<(), alliance_server::serve::ServeError> {
    // Served from a task so connections run on the runtime's workers, not on the caller's.
    tokio::spawn(alliance_server::serve::serve_routes(
        listener,
        routes,
        guard,
        alliance_server::serve::shutdown_signal(),
    ))
    .await
    .map_err(|e| alliance_server::serve::ServeError::Task(e.to_string()))??;
    match projection.write_snapshot(snapshot) {
        Ok(position) => {
            projection.note_snapshot(std::time::SystemTime::now(), position);
            println!("{server}: read-model snapshot at position {position} written");
        }
        Err(error) => tracing::warn!(%error, "no snapshot written"),
    }
    println!("{server}: stopped");
    Ok(())
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub plans: usize,
    pub position: Position,
    pub digest: String,
    pub elapsed: Duration,
}

impl Default for Projection {
    fn default() -> Self {
        Self {
            plans: RwLock::default(),
            runs: RwLock::default(),
            checkpoint: watch::channel(Checkpoint::default()).0,
            applied: broadcast::channel(4096).0,
            gate: tokio::sync::Mutex::new(()),
            snapshot: std::sync::Mutex::default(),
            quarantine: alliance_eventlog::Quarantine::default(),
            trust: None,
            handoff: std::sync::OnceLock::new(),
        }
    }
}

impl Projection {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A read model that applies only records its writers signed with a key of `trusted`
    /// (see [`Projection::apply`]).
    pub fn trusting(trusted: Arc<TrustedKeys>) -> Arc<Self> {
        Arc::new(Self::with_trust(Some(trusted)))
    }

    /// Holds the parts the command service of this process offers through `handoff` in place
    /// of equal parts of its own, as it applies their events from the log: the values are the
    /// same, held once ([`alliance_domain::Part`]). A part that differs from what the model
    /// folded is not taken. Only the first handoff given is used.
    pub fn share_with(&self, handoff: Arc<PartsHandoff>) {
        let _ = self.handoff.set(handoff);
    }

    fn with_trust(trust: Option<Arc<TrustedKeys>>) -> Self {
        Self {
            trust,
            ..Self::default()
        }
    }

    fn plans(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PlanId, PlanHistory>> {
        read(&self.plans)
    }

    /// The last log position this read model has applied.
    pub fn position(&self) -> Position {
        self.checkpoint.borrow().position
    }

    /// How far this read model has applied the log.
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint.borrow().clone()
    }

    /// What this read model holds, how far it has read the log, and its snapshot.
    pub fn holdings(&self) -> Holdings {
        let (plans, events) = {
            let plans = self.plans();
            let events = plans.values().map(PlanHistory::version).sum();
            (plans.len(), events)
        };
        Holdings {
            plans,
            events,
            checkpoint: self.checkpoint(),
            snapshot: *lock(&self.snapshot),
        }
    }

    /// Notes the snapshot of this read model on disk: written at `written`, covering the log
    /// up to `position`.
    fn note_snapshot(&self, written: std::time::SystemTime, position: Position) {
        *lock(&self.snapshot) = Some(SnapshotMark { written, position });
    }

    /// Notes that `stored` was read (applied, or skipped as unreadable), and wakes whoever
    /// waits for the model to move.
    fn advance(&self, stored: &StoredEvent) {
        if self.advance_quietly(stored) {
            self.announce();
        }
    }

    /// Notes that `stored` was read without waking anyone; whether the model moved. A catch-up
    /// notes each record of a batch so, then announces the batch once ([`Self::announce`]).
    fn advance_quietly(&self, stored: &StoredEvent) -> bool {
        let mut moved = false;
        self.checkpoint.send_if_modified(|checkpoint| {
            let before = checkpoint.position;
            checkpoint.advance(stored);
            moved = checkpoint.position > before || stored.origin.is_some();
            false
        });
        moved
    }

    /// Wakes whoever waits for the model to move.
    fn announce(&self) {
        self.checkpoint.send_modify(|_| ());
    }

    /// Follows the log from where this model stands: what is stored first, then each event as
    /// it is committed. Returns when the log's stream ends; an event that cannot be applied is
    /// reported and skipped.
    ///
    /// Its lag behind the log is observed as metrics ([`observe`]) while it follows, from the
    /// call on (before the returned future first runs, so a collection right after sees them).
    pub fn follow<R: LogReader>(
        self: Arc<Self>,
        log: R,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let metrics = observe(self.clone(), log.clone());
        async move {
            let _metrics = metrics;
            let source = log.source();
            let mut events = log.read_after(&self.checkpoint(), true);
            while let Some(next) = events.next().await {
                match next {
                    Ok(stored) => {
                        let _gate = self.gate.lock().await;
                        telemetry::process_span(&stored, &source)
                            .in_scope(|| self.apply_or_skip(&stored));
                    }
                    Err(error) => {
                        tracing::error!(%error, "the log stream failed; the read model stops here");
                        return;
                    }
                }
            }
        }
    }

    /// The events this model set aside as unreadable, with those the log reader did.
    pub fn quarantined<R: LogReader>(&self, log: &R) -> (u64, Vec<alliance_eventlog::Quarantined>) {
        let (read_total, mut records) = log.quarantined();
        let (own_total, own) = self.quarantine.snapshot();
        records.extend(own);
        records.sort_by_key(|r| r.at_micros);
        let keep = records
            .len()
            .saturating_sub(alliance_eventlog::Quarantine::KEPT);
        records.drain(..keep);
        (read_total + own_total, records)
    }

    /// Pauses [`Projection::follow`] while the guard is held: no event is applied (a rebuild
    /// waits too), so the model falls behind the log and its lag grows; dropping the guard
    /// resumes it where it stopped.
    pub async fn pause(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.gate.lock().await
    }

    /// Reads what the log holds after this model's checkpoint now, then returns (from an empty
    /// model: a full rebuild into it).
    pub async fn catch_up<R: LogReader>(&self, log: &R) -> Result<u64, ProjectionError> {
        self.catch_up_reporting(log, &mut |_| {}).await
    }

    /// Rebuilds the read models from the whole log and swaps them in; queries keep being
    /// answered from the old ones meanwhile, and nothing the log records during the rebuild is
    /// missed.
    pub async fn rebuild<R: LogReader>(
        &self,
        log: &R,
        report: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Rebuilt, ProjectionError> {
        let started = std::time::Instant::now();
        let fresh = Projection::with_trust(self.trust.clone());
        let mut events = fresh.catch_up_reporting(log, report).await?;
        let _gate = self.gate.lock().await;
        // What was recorded while the rebuild ran (following is paused now).
        events += fresh.catch_up(log).await?;
        let models = std::mem::take(&mut *write(&fresh.plans));
        let runs = std::mem::take(&mut *write(&fresh.runs));
        let plans = models.len();
        {
            let mut held = write(&self.plans);
            *held = models;
            *write(&self.runs) = runs;
        }
        let checkpoint = fresh.checkpoint();
        let position = checkpoint.position;
        self.checkpoint.send_replace(checkpoint);
        Ok(Rebuilt {
            events,
            plans,
            position,
            digest: self.digest(),
            elapsed: started.elapsed(),
        })
    }

    /// The version of a plan in this read model (`0` when it has none).
    pub fn plan_version(&self, plan_id: PlanId) -> Version {
        self.plans().get(&plan_id).map_or(0, PlanHistory::version)
    }

    /// Waits until the read model holds `plan_id` at `min_version` or later, up to `patience`.
    pub async fn wait_for(
        &self,
        plan_id: PlanId,
        min_version: Version,
        patience: Duration,
    ) -> Result<(), ProjectionError> {
        if min_version == 0 || self.plan_version(plan_id) >= min_version {
            return Ok(());
        }
        let mut progress = self.checkpoint.subscribe();
        let reached = tokio::time::timeout(patience, async {
            loop {
                progress.borrow_and_update();
                if self.plan_version(plan_id) >= min_version {
                    return;
                }
                if progress.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        let have = self.plan_version(plan_id);
        match reached {
            Ok(()) => Ok(()),
            // It may have arrived just as the wait ended.
            Err(_) if have >= min_version => Ok(()),
            Err(_) => Err(ProjectionError::Behind {
                plan_id,
                wanted: min_version,
                have,
            }),
        }
    }

    /// Every applied event from now on.
    pub fn changes(&self) -> broadcast::Receiver<Applied> {
        self.applied.subscribe()
    }

    /// Runs `read` on a plan's history.
    pub fn with_plan<T>(
        &self,
        plan_id: PlanId,
        read: impl FnOnce(&PlanHistory) -> T,
    ) -> Result<T, ProjectionError> {
        self.plans()
            .get(&plan_id)
            .map(read)
            .ok_or(ProjectionError::PlanNotFound(plan_id))
    }

    /// Refuses unless `caller` may read `plan_id` (any role on it), or with `audit`, read its
    /// audit history (auditor or admin): the plan's grants at its latest version here. A plan
    /// this model does not hold, and a plan the caller holds no role on, are both answered as
    /// not found, alike.
    pub fn authorize(
        &self,
        caller: &alliance_server::Caller,
        plan_id: PlanId,
        access: Access,
    ) -> Result<(), tonic::Status> {
        let plan = self
            .with_plan(plan_id, |h| h.latest())
            .map_err(grpc::status)?;
        let allowed = match access {
            Access::Read => alliance_server::access::authorize_read(caller, &plan, plan_id),
            Access::Audit => alliance_server::access::authorize_audit(caller, &plan, plan_id),
        };
        allowed.map_err(tonic::Status::from)
    }

    /// Waits (up to `patience`) for `min_version` of the plan, then checks that `caller` may have
    /// `access` to the plan as this model holds it: standing is judged after the wait, never
    /// before, so a plan is shown only to those its history grants a role.
    pub async fn ready(
        &self,
        caller: &alliance_server::Caller,
        plan_id: PlanId,
        min_version: Version,
        patience: Duration,
        access: Access,
    ) -> Result<(), tonic::Status> {
        let started = tokio::time::Instant::now();
        let waited = self.wait_for(plan_id, min_version, patience).await;
        if let Err(refused) = self.authorize(caller, plan_id, access) {
            // A plan this model does not hold is answered "not found" once the whole wait is
            // over; a plan the caller may not see is answered no sooner, so the time an answer
            // takes does not tell whether the plan exists.
            if min_version > 0 && refused.code() == tonic::Code::NotFound {
                tokio::time::sleep_until(started + patience).await;
            }
            return Err(refused);
        }
        waited.map_err(grpc::status)
    }

    /// The plans whose own streams record simulation run `run_id`, in the order recorded
    /// (one, unless a run id was recorded twice).
    pub fn plans_recording(&self, run_id: uuid::Uuid) -> Vec<PlanId> {
        read(&self.runs).get(&run_id).cloned().unwrap_or_default()
    }

    /// The ids of every plan, in id order.
    pub fn plan_ids(&self) -> Vec<PlanId> {
        let mut ids: Vec<PlanId> = self.plans().keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

impl alliance_server::access::PlanDirectory for Projection {
    fn plans(&self) -> Vec<Arc<alliance_domain::Plan>> {
        let mut plans: Vec<_> = self
            .plans()
            .iter()
            .map(|(id, history)| (*id, history.latest()))
            .collect();
        plans.sort_unstable_by_key(|(id, _)| *id);
        plans.into_iter().map(|(_, plan)| plan).collect()
    }
}

/// The keys a server's read models check signatures against: the writers' keys the identity
/// configuration lists (`[[signing_key]]`). Without one, or with none listed, no writer's key
/// is known and no signature is checked (development).
pub fn read_model_trust(configured: Option<TrustedKeys>) -> Option<Arc<TrustedKeys>> {
    configured.filter(|keys| !keys.is_empty()).map(Arc::new)
}

/// What a service that reads the whole log into read models of its own starts with.
pub struct Replica {
    pub auth: Arc<alliance_server::Authenticator>,
    pub listener: tokio::net::TcpListener,
    pub projection: Arc<Projection>,
    /// Where its snapshot is kept (written on a clean stop).
    pub snapshot: std::path::PathBuf,
    pub security: alliance_server::security::SecurityLog,
    /// TLS, verified credentials and the security log of refused requests.
    pub guard: alliance_server::serve::Guard,
    /// TLS of the calls to other servers.
    pub peer: Option<tonic::transport::ClientTlsConfig>,
    /// The writers' keys of the identity configuration; `None` without one.
    pub signing_keys: Option<alliance_record::signing::TrustedKeys>,
    /// The auditors' witness keys of the identity configuration; `None` without one.
    pub witness_keys: Option<alliance_record::witness::WitnessKeys>,
}

/// Loads the callers (`security`: the identity configuration and TLS, or the development
/// `token_file`), binds `listen`, restores or builds the read models from `reader` (retrying
/// until the log answers), follows the log, and opens the security log in `data_dir`.
pub async fn start_replica<R: LogReader>(
    reader: &R,
    listen: std::net::SocketAddr,
    data_dir: &std::path::Path,
    token_file: &std::path::Path,
    security: &alliance_server::serve::SecurityArgs,
) -> Result<Replica, String> {
    let secured = alliance_server::serve::secure(security, token_file, listen).await?;
    let auth = secured.auth.clone();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let snapshot = data_dir.join("read-model.snapshot");
    // Until the broker answers and the topic exists (the command service creates it).
    let trust = read_model_trust(secured.signing_keys.clone());
    let projection = alliance_server::serve::retry_until_stopped("cannot read the log yet", || {
        open(reader, &snapshot, trust.clone(), None)
    })
    .await?;
    tokio::spawn(projection.clone().follow(reader.clone()));
    // Refused requests go to a security log of their own.
    let security_path = data_dir.join("security.db");
    let security = alliance_server::security::SecurityLog::open(&security_path).map_err(|e| {
        format!(
            "cannot open the security log {}: {e}",
            security_path.display()
        )
    })?;
    let denials = alliance_server::security::DenialLayer::new(security.clone(), auth.clone());
    Ok(Replica {
        auth,
        listener,
        projection,
        snapshot,
        security,
        guard: secured.guard(Some(denials)),
        peer: secured.peer,
        signing_keys: secured.signing_keys,
        witness_keys: secured.witness_keys,
    })
}
