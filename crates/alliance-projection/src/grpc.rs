//! `alliance.v1.PostureQueries` over tonic.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use alliance_domain::{Date, PlanId, SCHEMA_VERSION};
use alliance_proto::convert::{
    date_from_proto, date_to_proto, decision_status_to_proto, event_to_payload, posture_to_proto,
    side_from_proto, sides_to_proto,
};
use alliance_proto::v1;
use alliance_proto::v1::posture_queries_server::{PostureQueries, PostureQueriesServer};
use alliance_server::deadline::patience;
use alliance_server::{Authenticator, Caller, ServiceError, invalid_field, out_of_range_field};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::admin::ReadModelAdminApi;
use crate::queries::{DecisionFilter, ElementChangeKind, SeriesStep};
use crate::{Access, Projection, ProjectionError, RecordPoint, Recorded};
use alliance_server::limits::{StreamPermit, StreamQuota};

/// How long a query waits for the read model when the caller set no deadline.
pub(crate) const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);

/// The gRPC face of the projection service.
pub struct PostureQueriesApi {
    projection: Arc<Projection>,
    auth: Arc<Authenticator>,
}

impl PostureQueriesApi {
    /// The caller of a watch on `plan_id`, standing on the plan held (after waiting for
    /// `min_version`), and its stream permit.
    async fn open_watch<T>(
        &self,
        request: &Request<T>,
        plan_id: &str,
        min_version: u64,
    ) -> Result<(Caller, PlanId, StreamPermit), Status> {
        let caller = self.auth.authenticate(request)?;
        let plan_id = ready_for(
            &self.projection,
            &caller,
            request.metadata(),
            plan_id,
            min_version,
            Access::Read,
        )
        .await?;
        let permit = StreamQuota::global().open(&caller)?;
        Ok((caller, plan_id, permit))
    }

    pub fn new(projection: Arc<Projection>, auth: Arc<Authenticator>) -> Self {
        Self { projection, auth }
    }

    pub fn into_server(self) -> PostureQueriesServer<Self> {
        PostureQueriesServer::new(self)
            .max_decoding_message_size(alliance_server::limits::MAX_MESSAGE_BYTES)
    }

    /// Authenticates, then waits (within the caller's deadline) for `min_version` of the plan.
    async fn ready<R>(
        &self,
        request: &Request<R>,
        plan_id: &str,
        min_version: u64,
    ) -> Result<PlanId, Status> {
        ready(
            &self.projection,
            &self.auth,
            request,
            plan_id,
            min_version,
            Access::Read,
        )
        .await
    }
}

/// Authenticates, checks that the caller may have `access` to the plan, then waits (within the
/// caller's deadline) for `min_version` of it.
pub(crate) async fn ready<R>(
    projection: &Projection,
    auth: &Authenticator,
    request: &Request<R>,
    plan_id: &str,
    min_version: u64,
    access: Access,
) -> Result<PlanId, Status> {
    let caller = auth.authenticate(request)?;
    ready_for(
        projection,
        &caller,
        request.metadata(),
        plan_id,
        min_version,
        access,
    )
    .await
}

/// [`ready`] for a caller authenticated already (`metadata`: its request's, for the deadline).
async fn ready_for(
    projection: &Projection,
    caller: &Caller,
    metadata: &tonic::metadata::MetadataMap,
    plan_id: &str,
    min_version: u64,
    access: Access,
) -> Result<PlanId, Status> {
    let plan_id = parse_plan(plan_id)?;
    let patience = patience(metadata).unwrap_or(DEFAULT_PATIENCE);
    projection
        .ready(caller, plan_id, min_version, patience, access)
        .await?;
    Ok(plan_id)
}

pub(crate) fn parse_plan(value: &str) -> Result<PlanId, Status> {
    if value.is_empty() {
        return Err(invalid_field("plan_id", "is required"));
    }
    PlanId::parse_str(value)
        .map_err(|_| invalid_field("plan_id", format!("{value:?} is not a UUID")))
}

pub fn status(error: ProjectionError) -> Status {
    match &error {
        // The same answer as the command service's, and as a plan the caller has no role on.
        ProjectionError::PlanNotFound(plan_id) => ServiceError::PlanNotFound(*plan_id).into(),
        ProjectionError::Behind { .. } => Status::unavailable(error.to_string()),
        ProjectionError::Invalid { field, message } => invalid_field(field, message.clone()),
        ProjectionError::Corrupt(_)
        | ProjectionError::Untrusted { .. }
        | ProjectionError::Conflict { .. }
        | ProjectionError::Log(_) => {
            tracing::error!(%error, "query failed");
            Status::internal(error.to_string())
        }
    }
}

pub(crate) fn required_date(field: &str, date: Option<&v1::Date>) -> Result<Date, Status> {
    date.and_then(date_from_proto)
        .ok_or_else(|| invalid_field(field, "a valid date is required"))
}

fn optional_date(field: &str, date: Option<&v1::Date>) -> Result<Option<Date>, Status> {
    date.map(|d| date_from_proto(d).ok_or_else(|| invalid_field(field, "not a date")))
        .transpose()
}

/// The record point `field` of a request on `plan_id`. A version past the plan's head is
/// refused (`OUT_OF_RANGE`, naming `{field}.version` and the head: the plan may reach it
/// later, and `min_version` waits for it), as is a time that is not a valid timestamp
/// (`{field}.time`).
pub fn record_point(
    projection: &Projection,
    plan_id: PlanId,
    field: &str,
    point: Option<&v1::RecordPoint>,
) -> Result<RecordPoint, Status> {
    match point.and_then(|p| p.point.as_ref()) {
        None => Ok(RecordPoint::Latest),
        Some(v1::record_point::Point::Version(v)) => {
            let head = projection
                .with_plan(plan_id, crate::PlanHistory::version)
                .map_err(status)?;
            if *v > head {
                return Err(out_of_range_field(
                    &format!("{field}.version"),
                    format!("the plan is at version {head}, not {v}"),
                ));
            }
            Ok(RecordPoint::Version(*v))
        }
        Some(v1::record_point::Point::Time(t)) => {
            Ok(RecordPoint::Time(instant(&format!("{field}.time"), t)?))
        }
    }
}

/// A timestamp field as microseconds since the Unix epoch; its nanos must be 0 to 999,999,999.
pub(crate) fn instant(field: &str, t: &prost_types::Timestamp) -> Result<i64, Status> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(invalid_field(
            field,
            format!("nanos must be 0 to 999999999, got {}", t.nanos),
        ));
    }
    Ok(micros(t))
}

/// A timestamp as microseconds since the Unix epoch (the read models' record time).
pub(crate) fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1_000)
}

pub(crate) fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or_default(),
    }
}

/// The envelope of a recorded event as the log holds it: every field the writer wrote, the
/// seal and signature included (`recorded` whole: [`crate::history::Events::whole`]).
pub(crate) fn envelope(plan_id: PlanId, recorded: &Recorded) -> Result<v1::EventEnvelope, Status> {
    let event = recorded.event().map_err(status)?;
    let prev_hash = recorded.seal.prev_hash().ok_or_else(|| {
        Status::internal(format!(
            "version {} of plan {plan_id} was read without its previous record's hash",
            recorded.version
        ))
    })?;
    let command = &recorded.command;
    let (signing_key_id, signature) = recorded
        .seal
        .signature()
        .map_or((Vec::new(), Vec::new()), |(key, signature)| {
            (key.to_vec(), signature.to_vec())
        });
    Ok(v1::EventEnvelope {
        event_id: recorded.event_id.to_string(),
        plan_id: plan_id.to_string(),
        plan_version: recorded.version,
        record_time: Some(timestamp(recorded.record_time_micros)),
        valid_date: event.valid_date().map(date_to_proto),
        actor: Some(v1::Actor {
            team: command.actor.team.clone(),
            user: command.actor.user.clone(),
            side: command.actor.side,
        }),
        command_id: command.command_id(),
        correlation_id: command.correlation_id(),
        causation_id: command.causation_id(),
        event_type: recorded.event.event_type().to_owned(),
        schema_version: SCHEMA_VERSION,
        command_digest: command.command_digest(),
        prev_hash: prev_hash.to_vec(),
        hash: recorded.seal.hash().to_vec(),
        signing_key_id,
        signature,
        payload: Some(event_to_payload(&event)),
    })
}

/// Sends the envelope of `recorded` on a stream; `false`: the stream ends (its caller has
/// gone, or the event could not be read, which the caller is told).
async fn send_envelope(
    tx: &tokio::sync::mpsc::Sender<Result<v1::EventEnvelope, Status>>,
    plan_id: PlanId,
    recorded: &Recorded,
) -> bool {
    let envelope = envelope(plan_id, recorded);
    let readable = envelope.is_ok();
    tx.send(envelope).await.is_ok() && readable
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::EventEnvelope, Status>> + Send>>;

#[tonic::async_trait]
impl PostureQueries for PostureQueriesApi {
    async fn get_posture(
        &self,
        request: Request<v1::GetPostureRequest>,
    ) -> Result<Response<v1::Posture>, Status> {
        let r = request.get_ref();
        let plan_id = self.ready(&request, &r.plan_id, r.min_version).await?;
        let valid_on = required_date("valid_on", r.valid_on.as_ref())?;
        let posture = self
            .projection
            .posture(
                plan_id,
                valid_on,
                record_point(&self.projection, plan_id, "record", r.record.as_ref())?,
                r.include_proposed,
            )
            .map_err(status)?;
        Ok(Response::new(posture_to_proto(plan_id, &posture)))
    }

    async fn get_findings(
        &self,
        request: Request<v1::GetFindingsRequest>,
    ) -> Result<Response<v1::FindingsReport>, Status> {
        let r = request.get_ref();
        let plan_id = self.ready(&request, &r.plan_id, r.min_version).await?;
        let from = optional_date("from", r.from.as_ref())?;
        let to = optional_date("to", r.to.as_ref())?;
        let found = self
            .projection
            .findings(
                plan_id,
                from,
                to,
                record_point(&self.projection, plan_id, "record", r.record.as_ref())?,
                r.include_proposed,
            )
            .map_err(status)?;
        Ok(Response::new(findings_report(
            plan_id,
            r.include_proposed,
            &found,
        )))
    }

    async fn get_posture_series(
        &self,
        request: Request<v1::GetPostureSeriesRequest>,
    ) -> Result<Response<v1::PostureSeries>, Status> {
        let r = request.get_ref();
        let plan_id = self.ready(&request, &r.plan_id, r.min_version).await?;
        let from = required_date("from", r.from.as_ref())?;
        let to = required_date("to", r.to.as_ref())?;
        let step = match v1::SeriesStep::try_from(r.step) {
            Ok(v1::SeriesStep::Quarter) => SeriesStep::Quarter,
            Ok(v1::SeriesStep::Year) => SeriesStep::Year,
            Ok(v1::SeriesStep::Month | v1::SeriesStep::Unspecified) => SeriesStep::Month,
            Err(_) => return Err(invalid_field("step", "unknown value")),
        };
        let points = self
            .projection
            .series(
                plan_id,
                from,
                to,
                step,
                record_point(&self.projection, plan_id, "record", r.record.as_ref())?,
                r.include_proposed,
            )
            .map_err(status)?;
        Ok(Response::new(v1::PostureSeries {
            points: points
                .iter()
                .map(|p| posture_to_proto(plan_id, p))
                .collect(),
        }))
    }

    async fn diff_plan(
        &self,
        request: Request<v1::DiffPlanRequest>,
    ) -> Result<Response<v1::PlanDiff>, Status> {
        let r = request.get_ref();
        let plan_id = self.ready(&request, &r.plan_id, r.min_version).await?;
        let from = match r.from.as_ref().and_then(|p| p.point.as_ref()) {
            None => RecordPoint::Version(0),
            Some(_) => record_point(&self.projection, plan_id, "from", r.from.as_ref())?,
        };
        let to = record_point(&self.projection, plan_id, "to", r.to.as_ref())?;
        let diff = self.projection.diff(plan_id, from, to).map_err(status)?;
        let refs = |events: &[(u64, &'static str)]| {
            events
                .iter()
                .map(|(version, kind)| v1::EventRef {
                    version: *version,
                    event_type: (*kind).to_owned(),
                })
                .collect()
        };
        Ok(Response::new(v1::PlanDiff {
            plan_id: plan_id.to_string(),
            from_version: diff.from_version,
            to_version: diff.to_version,
            decisions: diff
                .decisions
                .iter()
                .map(|d| v1::DecisionChange {
                    decision_id: d.decision_id.to_string(),
                    title: d.title.clone(),
                    before: d.before.map_or(0, decision_status_to_proto),
                    after: d.after.map_or(0, decision_status_to_proto),
                    events: refs(&d.events),
                })
                .collect(),
            elements: diff
                .elements
                .iter()
                .map(|e| v1::ElementChange {
                    element_id: e.element_id.to_string(),
                    kind: match e.kind {
                        ElementChangeKind::Added => v1::ElementChangeKind::Added,
                        ElementChangeKind::Removed => v1::ElementChangeKind::Removed,
                        ElementChangeKind::Changed => v1::ElementChangeKind::Changed,
                    } as i32,
                    events: refs(&e.events),
                })
                .collect(),
            events: diff
                .events
                .iter()
                .map(|(version, kind, actor, micros)| v1::RecordedEvent {
                    version: *version,
                    event_type: (*kind).to_owned(),
                    actor: actor.clone(),
                    record_time: Some(timestamp(*micros)),
                })
                .collect(),
        }))
    }

    async fn list_decisions(
        &self,
        request: Request<v1::ListDecisionsRequest>,
    ) -> Result<Response<v1::ListDecisionsResponse>, Status> {
        let r = request.get_ref();
        let plan_id = self.ready(&request, &r.plan_id, r.min_version).await?;
        let team = if r.team.is_empty() {
            None
        } else {
            Some(
                alliance_domain::TeamId::parse(&r.team)
                    .map_err(|e| invalid_field("team", e.to_string()))?,
            )
        };
        let filter = DecisionFilter {
            status: alliance_proto::convert::decision_status_from_proto(r.status),
            side: side_from_proto(r.side),
            team,
            effective_from: optional_date("effective_from", r.effective_from.as_ref())?,
            effective_to: optional_date("effective_to", r.effective_to.as_ref())?,
        };
        let views = self
            .projection
            .decisions(
                plan_id,
                record_point(&self.projection, plan_id, "record", r.record.as_ref())?,
                &filter,
            )
            .map_err(status)?;
        Ok(Response::new(v1::ListDecisionsResponse {
            decisions: views
                .iter()
                .map(|v| {
                    let d = &v.decision;
                    v1::DecisionView {
                        decision_id: d.id.to_string(),
                        title: d.title.clone(),
                        rationale: d.rationale.clone(),
                        owner_team: d.owner_team.to_string(),
                        effective_date: Some(date_to_proto(d.effective_date)),
                        required_sides: sides_to_proto(d.required_sides),
                        derived_sides: sides_to_proto(v.derived_sides),
                        status: decision_status_to_proto(d.status),
                        endorsements: sides_to_proto(d.endorsements),
                        status_reason: d.status_reason().to_owned(),
                        step_count: u32::try_from(d.steps.len()).unwrap_or(u32::MAX),
                        prerequisites: d
                            .prerequisites()
                            .iter()
                            .map(alliance_proto::convert::prerequisite_to_proto)
                            .collect(),
                        acknowledged_findings: d.acknowledged_findings().iter().cloned().collect(),
                        history: v
                            .history
                            .iter()
                            .map(|h| v1::RecordedEvent {
                                version: h.version,
                                event_type: h.event_type.to_owned(),
                                actor: h.actor.clone(),
                                record_time: Some(timestamp(h.record_time_micros)),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }))
    }

    type WatchPlanStream = EventStream;

    async fn watch_plan(
        &self,
        request: Request<v1::WatchPlanRequest>,
    ) -> Result<Response<Self::WatchPlanStream>, Status> {
        let caller = self.auth.authenticate(&request)?;
        let r = request.get_ref();
        let from_version = r.from_version.max(1);
        // Subscribed before standing is checked and the catch-up is read, so nothing recorded
        // in between is missed (a revocation included); what both hold is sent once (versions
        // only go up).
        let mut live = self.projection.changes();
        let plan_id = ready_for(
            &self.projection,
            &caller,
            request.metadata(),
            &r.plan_id,
            r.min_version,
            Access::Read,
        )
        .await?;
        let permit = StreamQuota::global().open(&caller)?;
        let stored = self
            .projection
            .events_from(plan_id, from_version)
            .map_err(status)?;
        let mut next = stored.last().map_or(from_version, |e| e.version + 1);
        let projection = self.projection.clone();
        let stream = async_stream_of(permit, move |tx| async move {
            for recorded in &stored {
                if !send_envelope(&tx, plan_id, recorded).await {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(applied) if applied.plan_id == plan_id => {
                        if applied.recorded.version < next {
                            continue;
                        }
                        // Standing changes only with the plan's grants: judged as of this event,
                        // before it is sent.
                        if changes_standing(applied.recorded.event.event_type())
                            && let Err(ended) = still_standing(
                                &projection,
                                &caller,
                                plan_id,
                                Some(applied.recorded.version),
                            )
                        {
                            let _ = tx.send(Err(ended)).await;
                            return;
                        }
                        next = applied.recorded.version + 1;
                        let push = crate::telemetry::push_span(
                            "alliance.v1.PostureQueries/WatchPlan",
                            applied.trace.as_deref(),
                        );
                        if !send_envelope(&tx, plan_id, &applied.recorded)
                            .instrument(push)
                            .await
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live feed: re-read what was missed from the model,
                        // if the caller still stands on the plan as it is now.
                        if let Err(ended) = still_standing(&projection, &caller, plan_id, None) {
                            let _ = tx.send(Err(ended)).await;
                            return;
                        }
                        let missed = projection.events_from(plan_id, next).unwrap_or_default();
                        for recorded in &missed {
                            next = recorded.version + 1;
                            if !send_envelope(&tx, plan_id, recorded).await {
                                return;
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    type WatchPostureStream = Pin<Box<dyn Stream<Item = Result<v1::Posture, Status>> + Send>>;

    async fn watch_posture(
        &self,
        request: Request<v1::WatchPostureRequest>,
    ) -> Result<Response<Self::WatchPostureStream>, Status> {
        let r = request.get_ref();
        let (caller, plan_id, permit) =
            self.open_watch(&request, &r.plan_id, r.min_version).await?;
        let valid_on = required_date("valid_on", r.valid_on.as_ref())?;
        let what_if = r.include_proposed;
        let projection = self.projection.clone();
        let read = move || {
            projection
                .posture(plan_id, valid_on, RecordPoint::Latest, what_if)
                .map(|posture| posture_to_proto(plan_id, &posture))
        };
        let stream = watch_view(
            &self.projection,
            caller,
            plan_id,
            permit,
            "alliance.v1.PostureQueries/WatchPosture",
            read,
            |a, b| {
                v1::Posture {
                    version: b.version,
                    ..a.clone()
                } != *b
            },
        )?;
        Ok(Response::new(stream))
    }

    type WatchFindingsStream =
        Pin<Box<dyn Stream<Item = Result<v1::FindingsReport, Status>> + Send>>;

    async fn watch_findings(
        &self,
        request: Request<v1::WatchFindingsRequest>,
    ) -> Result<Response<Self::WatchFindingsStream>, Status> {
        let r = request.get_ref();
        let (caller, plan_id, permit) =
            self.open_watch(&request, &r.plan_id, r.min_version).await?;
        let from = optional_date("from", r.from.as_ref())?;
        let to = optional_date("to", r.to.as_ref())?;
        let what_if = r.include_proposed;
        let projection = self.projection.clone();
        let read = move || {
            projection
                .findings(plan_id, from, to, RecordPoint::Latest, what_if)
                .map(|found| findings_report(plan_id, what_if, &found))
        };
        let stream = watch_view(
            &self.projection,
            caller,
            plan_id,
            permit,
            "alliance.v1.PostureQueries/WatchFindings",
            read,
            |a, b| a.findings != b.findings,
        )?;
        Ok(Response::new(stream))
    }
}

/// The findings of a plan as the contract reports them.
fn findings_report(
    plan_id: PlanId,
    what_if: bool,
    found: &crate::queries::FindingsAt,
) -> v1::FindingsReport {
    v1::FindingsReport {
        plan_id: plan_id.to_string(),
        version: found.version,
        what_if,
        from: Some(date_to_proto(found.from)),
        to: Some(date_to_proto(found.to)),
        findings: found
            .findings
            .iter()
            .map(alliance_proto::convert::finding_to_proto)
            .collect(),
    }
}

/// Whether an event (of type `event_type`) can change who stands on a plan: only its grants
/// do.
fn changes_standing(event_type: &str) -> bool {
    matches!(event_type, "RoleGranted" | "RoleRevoked")
}

/// Ends a stream once `caller` holds no role on the plan (at `version`, or now): a stream
/// lasts only as long as its caller's standing.
/// A stream of one kind of view of a plan.
type ViewStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A view of one plan, sent first as it stands and then again each time an applied edit changes
/// it (`differs` says whether it did, ignoring the version); ends when the caller's standing
/// does. Subscribed before the first read, so no edit in between is missed.
fn watch_view<T, R, D>(
    projection: &Arc<Projection>,
    caller: Caller,
    plan_id: PlanId,
    permit: StreamPermit,
    method: &'static str,
    read: R,
    differs: D,
) -> Result<ViewStream<T>, Status>
where
    T: Clone + Send + Sync + 'static,
    R: Fn() -> Result<T, ProjectionError> + Send + 'static,
    D: Fn(&T, &T) -> bool + Send + 'static,
{
    let mut live = projection.changes();
    let reader = projection.clone();
    let mut shown = read().map_err(status)?;
    Ok(async_stream_of(permit, move |tx| async move {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        if tx.send(Ok(shown.clone())).await.is_err() {
            return;
        }
        loop {
            let trace = match live.recv().await {
                Ok(applied) if applied.plan_id != plan_id => continue,
                Ok(applied) => applied.trace,
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            };
            // Whatever else is already applied is read in the same view.
            while !matches!(
                live.try_recv(),
                Err(TryRecvError::Empty | TryRecvError::Closed)
            ) {}
            if let Err(ended) = still_standing(&reader, &caller, plan_id, None) {
                let _ = tx.send(Err(ended)).await;
                return;
            }
            let Ok(view) = read() else { continue };
            let changed = differs(&view, &shown);
            shown = view;
            let push = crate::telemetry::push_span(method, trace.as_deref());
            if changed && tx.send(Ok(shown.clone())).instrument(push).await.is_err() {
                return;
            }
        }
    }))
}

fn still_standing(
    projection: &Projection,
    caller: &Caller,
    plan_id: PlanId,
    version: Option<alliance_domain::Version>,
) -> Result<(), Status> {
    let plan = projection
        .with_plan(plan_id, |h| {
            h.state_at(version.unwrap_or_else(|| h.version()))
        })
        .and_then(|plan| plan)
        .map_err(status)?;
    alliance_server::access::standing(caller, &plan, plan_id)
        .map(drop)
        .map_err(|_| {
            ServiceError::StandingEnded {
                team: caller.actor.team.to_string(),
                plan_id,
            }
            .into()
        })
}

/// A stream fed by a task, so a slow client never holds up the read model.
/// The task ends when the client goes away, freeing the caller's place (`permit`) at once.
fn async_stream_of<T, F, Fut>(
    permit: StreamPermit,
    produce: F,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let gone = tx.clone();
    let produced = produce(tx);
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            () = produced => {}
            () = gone.closed() => {}
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Adds `alliance.v1.PostureQueries` and `alliance.v1.ReadModelAdmin` on `projection` (rebuilt
/// from `log`) and `alliance.v1.AuditLog` on `log` to `routes`, and reports them serving.
pub async fn add_routes<L: alliance_eventlog::LogReader>(
    routes: tonic::service::Routes,
    health: &tonic_health::server::HealthReporter,
    projection: Arc<Projection>,
    log: L,
    auth: Arc<Authenticator>,
    security: Option<alliance_server::security::SecurityLog>,
    keys: impl Into<crate::audit::AuditKeys>,
) -> tonic::service::Routes {
    for name in [
        "alliance.v1.PostureQueries",
        "alliance.v1.ReadModelAdmin",
        "alliance.v1.AuditLog",
    ] {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    routes
        .add_service(PostureQueriesApi::new(projection.clone(), auth.clone()).into_server())
        .add_service(
            crate::audit::AuditLogApi::new(
                projection.clone(),
                log.clone(),
                auth.clone(),
                security,
                keys,
            )
            .into_server(),
        )
        .add_service(ReadModelAdminApi::new(projection, log, auth).into_server())
}
