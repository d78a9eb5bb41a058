//! Auditing: a plan's hash chain recomputed over the log itself, never over a read model.

use std::sync::Arc;

use alliance_domain::PlanId;
use alliance_eventlog::{LogError, LogReader, TopicOffset};
use alliance_proto::v1;
use alliance_record::chain::{self, ChainBreak, ChainHead, Verifier, Vouched};
use alliance_record::chain::{BreakKind, Hash};
use alliance_record::signing::{HEAD_CONTEXT, KeyId, Signer, TrustedKeys, head_message};
use alliance_record::witness::WitnessKeys;
use alliance_server::Authenticator;
use alliance_server::security::SecurityLog;
use futures::StreamExt;
use tonic::{Request, Response, Status};

use crate::Projection;
use crate::events::{EventFilter, MAX_PAGE};
use crate::grpc::{envelope, instant, parse_plan, ready, status};

/// What verifying a plan's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The chain up to the break, or all of it.
    pub head: ChainHead,
    /// The first record that does not fit, and where it sits on a Kafka topic.
    pub first_break: Option<(ChainBreak, Option<TopicOffset>)>,
    /// The heads vouched for in the history verified (witnessed, or signed by the writer).
    pub vouched: Vec<Vouched>,
}

/// A head of a plan's chain kept earlier: the history must extend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptHead {
    pub version: u64,
    pub hash: Hash,
}

/// Reads every record of `plan_id` from `log`, in log order, and checks its chain and each
/// signature against `trusted`. `None` when the log holds nothing of the plan.
pub async fn verify_plan<R: LogReader>(
    log: &R,
    plan_id: PlanId,
    trusted: &Arc<TrustedKeys>,
) -> Result<Option<Verification>, LogError> {
    let keys = AuditKeys::from(trusted.clone());
    verify_plan_against(log, plan_id, &keys, None).await
}

/// [`verify_plan`] (record signatures judged only given `keys.trusted`, witnesses' only given
/// `keys.witnesses`), and that the history extends `kept`: the record at its version has its
/// hash (else [`BreakKind::Diverged`] there), and the log reaches it (else
/// [`BreakKind::Truncated`] at the first version missing).
pub async fn verify_plan_against<R: LogReader>(
    log: &R,
    plan_id: PlanId,
    keys: &AuditKeys,
    kept: Option<KeptHead>,
) -> Result<Option<Verification>, LogError> {
    let mut records = log.plan_chain(plan_id);
    let mut verifier = keys
        .trusted
        .as_ref()
        .map_or_else(Verifier::default, |t| Verifier::trusting(t.clone()))
        .with_witnesses(keys.witnesses.clone());
    let mut seen = false;
    let broken_at = |verifier: &Verifier, head: ChainHead, broken: ChainBreak| {
        let origin = broken.origin;
        Some(Verification {
            head,
            first_break: Some((broken, origin)),
            vouched: verifier.vouched().to_vec(),
        })
    };
    while let Some(record) = records.next().await {
        let record = record?;
        seen = true;
        let before = verifier.head();
        if let Err(broken) = verifier.check(&record) {
            return Ok(broken_at(&verifier, verifier.head(), broken));
        }
        let head = verifier.head();
        if let Some(kept) = kept
            && head.events == kept.version
            && head.head != kept.hash
        {
            // A signature before it that does not hold is the first break.
            if let Err(broken) = verifier.settle() {
                return Ok(broken_at(&verifier, verifier.head(), broken));
            }
            let diverged = ChainBreak {
                kind: BreakKind::Diverged,
                version: record.version,
                position: record.position,
                detail: format!(
                    "its hash is {}, not the kept head's {}: the history up to it was \
                     rewritten",
                    chain::hex(&head.head),
                    chain::hex(&kept.hash)
                ),
                origin: record.origin,
            };
            return Ok(broken_at(&verifier, before, diverged));
        }
    }
    let head = match verifier.finish() {
        Ok(head) => head,
        Err(broken) => return Ok(broken_at(&verifier, verifier.head(), broken)),
    };
    let truncated = kept.filter(|kept| head.events < kept.version).map(|kept| {
        let broken = ChainBreak {
            kind: BreakKind::Truncated,
            version: head.events + 1,
            position: 0,
            detail: format!(
                "the log ends at version {}; versions {}..{} of the kept head are not in it",
                head.events,
                head.events + 1,
                kept.version
            ),
            origin: None,
        };
        (broken, None)
    });
    // With a kept head, a plan the log no longer holds at all is truncated at version 1.
    Ok((seen || truncated.is_some()).then_some(Verification {
        head,
        first_break: truncated,
        vouched: verifier.vouched().to_vec(),
    }))
}

/// The keys of the audit log: those whose signatures verify, and this server's own, which
/// signs the heads it serves (unsigned without one).
#[derive(Debug, Clone, Default)]
pub struct AuditKeys {
    /// The writers' keys signatures are judged against; `None` (a replica with no identity
    /// configuration, development only): the chain is checked, signatures are not judged.
    pub trusted: Option<Arc<TrustedKeys>>,
    pub signer: Option<Signer>,
    /// The auditors' witness keys witnessed heads are judged against; `None`: witnessed heads
    /// are held against the history, their signatures are not judged.
    pub witnesses: Option<Arc<WitnessKeys>>,
}

impl From<Option<Arc<TrustedKeys>>> for AuditKeys {
    fn from(trusted: Option<Arc<TrustedKeys>>) -> Self {
        Self {
            trusted,
            ..Self::default()
        }
    }
}

impl From<Arc<TrustedKeys>> for AuditKeys {
    fn from(trusted: Arc<TrustedKeys>) -> Self {
        Some(trusted).into()
    }
}

/// The kept head of a `VerifyPlan` request, its signature checked against `trusted`.
fn kept_head(
    plan_id: PlanId,
    head: &v1::SignedHead,
    trusted: Option<&TrustedKeys>,
) -> Result<KeptHead, Status> {
    let invalid = |field: &str, message: String| {
        alliance_server::invalid_field(&format!("kept_head.{field}"), message)
    };
    if head.plan_id != plan_id.to_string() {
        return Err(invalid(
            "plan_id",
            format!("a head of plan {}, not of {plan_id}", head.plan_id),
        ));
    }
    let hash: Hash = unhex(&head.head_hash)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| invalid("head_hash", "not 64 hex digits".into()))?;
    if head.version == 0 {
        return Err(invalid("version", "at least 1".into()));
    }
    if let (false, Some(trusted)) = (head.key_id.is_empty(), trusted) {
        let id = KeyId::parse(&head.key_id)
            .ok_or_else(|| invalid("key_id", "not 16 hex digits".into()))?;
        let signature: [u8; 64] = head
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| invalid("signature", "not 64 bytes".into()))?;
        let micros = head
            .time
            .as_ref()
            .map(|t| crate::grpc::instant("kept_head.time", t))
            .transpose()?
            .ok_or_else(|| invalid("time", "a signed head names its time".into()))?;
        let message = head_message(plan_id.as_bytes(), head.version, &hash, micros);
        trusted
            .check(id, micros, HEAD_CONTEXT, &message, &signature)
            .map_err(|problem| {
                invalid(
                    "signature",
                    format!("does not verify under a trusted key in force ({problem:?})"),
                )
            })?;
    }
    Ok(KeptHead {
        version: head.version,
        hash,
    })
}

use alliance_stdx::hex::decode as unhex;

/// `alliance.v1.AuditLog`: verification and export over the log, event history from the read
/// model.
pub struct AuditLogApi<L> {
    projection: Arc<Projection>,
    log: L,
    auth: Arc<Authenticator>,
    /// This server's security log, when it keeps one.
    security: Option<SecurityLog>,
    keys: AuditKeys,
}

impl<L: LogReader> AuditLogApi<L> {
    pub fn new(
        projection: Arc<Projection>,
        log: L,
        auth: Arc<Authenticator>,
        security: Option<SecurityLog>,
        keys: impl Into<AuditKeys>,
    ) -> Self {
        Self {
            projection,
            log,
            auth,
            security,
            keys: keys.into(),
        }
    }

    pub fn into_server(self) -> v1::audit_log_server::AuditLogServer<Self> {
        v1::audit_log_server::AuditLogServer::new(self)
            .max_decoding_message_size(alliance_server::limits::MAX_MESSAGE_BYTES)
    }
}

/// The exported form of one stored record.
fn exported(record: alliance_eventlog::StoredEvent) -> v1::ExportedRecord {
    use prost::Message;
    // A record that does not decode is exported as stored; verifying it says so.
    let envelope = v1::EventEnvelope::decode(record.payload.as_slice()).unwrap_or_default();
    v1::ExportedRecord {
        version: record.version,
        position: record.position,
        event_id: record.event_id.to_string(),
        event_type: record.event_type,
        actor: envelope
            .actor
            .map(|a| format!("{}/{}", a.team, a.user))
            .unwrap_or_default(),
        record_time: envelope.record_time,
        valid_date: envelope.valid_date,
        command_id: record.command_id,
        prev_hash: chain::hex(&envelope.prev_hash),
        hash: chain::hex(&envelope.hash),
        record: record.payload,
    }
}

type ExportStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::ExportedRecord, Status>> + Send>>;

#[tonic::async_trait]
impl<L: LogReader> v1::audit_log_server::AuditLog for AuditLogApi<L> {
    type ExportPlanStream = ExportStream;

    async fn list_denials(
        &self,
        request: Request<v1::ListDenialsRequest>,
    ) -> Result<Response<v1::ListDenialsResponse>, Status> {
        let caller = self.auth.authenticate(&request)?;
        if !caller.may(alliance_server::Role::Audit) {
            return Err(Status::permission_denied(format!(
                "team {} may not read the security log: it needs the audit role",
                caller.actor.team
            )));
        }
        let r = request.into_inner();
        let limit = page_size("limit", r.limit)?;
        let since = match r.since.as_ref() {
            Some(t) => instant("since", t)?,
            None => i64::MIN,
        };
        let Some(security) = self.security.clone() else {
            return Err(Status::unimplemented("this server keeps no security log"));
        };
        let denials = tokio::task::spawn_blocking(move || security.list(since, limit))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("the security log: {e}")))?;
        Ok(Response::new(v1::ListDenialsResponse {
            denials: denials
                .into_iter()
                .map(|d| v1::Denial {
                    time: Some(crate::grpc::timestamp(d.recorded_micros)),
                    last_time: Some(crate::grpc::timestamp(d.last_micros)),
                    count: d.count,
                    caller: d.caller,
                    peer: d.peer,
                    method: d.method,
                    code: d.code,
                    reason: d.reason,
                })
                .collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        let r = request.get_ref();
        let plan_id = ready(
            &self.projection,
            &self.auth,
            &request,
            &r.plan_id,
            r.min_version,
            crate::Access::Audit,
        )
        .await?;
        let (filter, after, limit) = event_query(r)?;
        let page = self
            .projection
            .events(plan_id, &filter, after, limit)
            .map_err(status)?;
        Ok(Response::new(v1::ListEventsResponse {
            events: page
                .events
                .iter()
                .map(|e| envelope(plan_id, e))
                .collect::<Result<_, _>>()?,
            next_page_token: page
                .next_after
                .map(|v| format!("after-{v}"))
                .unwrap_or_default(),
        }))
    }

    async fn export_plan(
        &self,
        request: Request<v1::ExportPlanRequest>,
    ) -> Result<Response<Self::ExportPlanStream>, Status> {
        let caller = self.auth.authenticate(&request)?;
        let plan_id = parse_plan(&request.get_ref().plan_id)?;
        self.projection
            .authorize(&caller, plan_id, crate::Access::Audit)?;
        // An export counts among the caller's open streams until it ends.
        let permit = alliance_server::limits::StreamQuota::global().open(&caller)?;
        let mut records = self.log.plan_records(plan_id).peekable();
        // An unknown plan is NOT_FOUND, not an empty export.
        if std::pin::Pin::new(&mut records).peek().await.is_none() {
            return Err(Status::not_found(format!(
                "the log holds no event of plan {plan_id}"
            )));
        }
        // Streamed as read: memory stays flat however long the history.
        let exported = records.map(move |record| {
            let _held = &permit;
            record
                .map(exported)
                .map_err(|e| Status::unavailable(format!("cannot read the log: {e}")))
        });
        Ok(Response::new(Box::pin(exported)))
    }

    async fn get_head(
        &self,
        request: Request<v1::GetHeadRequest>,
    ) -> Result<Response<v1::SignedHead>, Status> {
        self.head(&request).await.map(Response::new)
    }

    async fn verify_plan(
        &self,
        request: Request<v1::VerifyPlanRequest>,
    ) -> Result<Response<v1::VerifyPlanReply>, Status> {
        let caller = self.auth.authenticate(&request)?;
        let plan_id = parse_plan(&request.get_ref().plan_id)?;
        self.projection
            .authorize(&caller, plan_id, crate::Access::Audit)?;
        let kept = request
            .get_ref()
            .kept_head
            .as_ref()
            .map(|head| kept_head(plan_id, head, self.keys.trusted.as_deref()))
            .transpose()?;
        let verification = verify_plan_against(&self.log, plan_id, &self.keys, kept)
            .await
            .map_err(|e| Status::unavailable(format!("cannot read the log: {e}")))?
            .ok_or_else(|| {
                Status::not_found(format!("the log holds no event of plan {plan_id}"))
            })?;
        let first_break = verification.first_break.map(|(broken, at)| {
            tracing::warn!(%plan_id, %broken, "a plan's hash chain does not hold");
            v1::ChainBreak {
                kind: broken.kind.code().into(),
                version: broken.version,
                position: broken.position,
                partition: at.map(|at| at.partition),
                offset: at.map(|at| at.offset),
                detail: broken.detail,
            }
        });
        let head = &verification.head;
        // The first signed record after unsigned ones covers them through the chain.
        let covered = self.keys.trusted.is_some()
            && head.unsigned_through > 0
            && head.events > head.unsigned_through;
        Ok(Response::new(v1::VerifyPlanReply {
            plan_id: plan_id.to_string(),
            ok: first_break.is_none(),
            events: head.events,
            head_hash: chain::hex(&head.head),
            first_break,
            unsigned_through: head.unsigned_through,
            vouched: verification.vouched.iter().map(vouched_head).collect(),
            unsigned_covered_by: if covered {
                head.unsigned_through + 1
            } else {
                0
            },
        }))
    }
}

impl<L: LogReader> AuditLogApi<L> {
    /// `GetHead`: the head of a plan's verified chain, signed by this server's key.
    pub async fn head(
        &self,
        caller_request: &Request<v1::GetHeadRequest>,
    ) -> Result<v1::SignedHead, Status> {
        let caller = self.auth.authenticate(caller_request)?;
        let plan_id = parse_plan(&caller_request.get_ref().plan_id)?;
        self.projection
            .authorize(&caller, plan_id, crate::Access::Audit)?;
        let verification = verify_plan_against(&self.log, plan_id, &self.keys, None)
            .await
            .map_err(|e| Status::unavailable(format!("cannot read the log: {e}")))?
            .ok_or_else(|| {
                Status::not_found(format!("the log holds no event of plan {plan_id}"))
            })?;
        if let Some((broken, _)) = verification.first_break {
            return Err(Status::failed_precondition(format!(
                "no head is vouched for: the chain of plan {plan_id} does not hold: {broken}"
            )));
        }
        let head = verification.head;
        let micros = chrono::Utc::now().timestamp_micros();
        let (key_id, signature) = match &self.keys.signer {
            Some(signer) => {
                let message = head_message(plan_id.as_bytes(), head.events, &head.head, micros);
                (
                    signer.id().to_string(),
                    signer.sign(HEAD_CONTEXT, &message).to_vec(),
                )
            }
            None => (String::new(), Vec::new()),
        };
        Ok(v1::SignedHead {
            plan_id: plan_id.to_string(),
            version: head.events,
            head_hash: chain::hex(&head.head),
            time: Some(crate::grpc::timestamp(micros)),
            key_id,
            signature,
        })
    }
}

/// A vouched head as `VerifyPlan` reports it.
pub fn vouched_head(v: &Vouched) -> v1::VouchedHead {
    v.to_proto()
}

/// The filter, the version to continue after and the page size of a `ListEvents` request.
fn event_query(r: &v1::ListEventsRequest) -> Result<(EventFilter, u64, usize), Status> {
    let invalid = |field: &str, message: String| alliance_server::invalid_field(field, message);
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let date = |field: &str, d: Option<&v1::Date>| {
        d.map(|d| crate::grpc::required_date(field, Some(d)))
            .transpose()
    };
    let element = text(&r.element_id)
        .map(|e| {
            alliance_domain::ElementId::try_from(e)
                .map_err(|e| invalid("element_id", e.to_string()))
        })
        .transpose()?;
    let decision = text(&r.decision_id)
        .map(|d| {
            alliance_domain::DecisionId::try_from(d)
                .map_err(|e| invalid("decision_id", e.to_string()))
        })
        .transpose()?;
    let filter = EventFilter {
        element,
        decision,
        team: text(&r.team),
        user: text(&r.user),
        event_types: r
            .event_types
            .iter()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect(),
        recorded_from: r
            .recorded_from
            .as_ref()
            .map(|t| instant("recorded_from", t))
            .transpose()?,
        recorded_to: r
            .recorded_to
            .as_ref()
            .map(|t| instant("recorded_to", t))
            .transpose()?,
        valid_from: date("valid_from", r.valid_from.as_ref())?,
        valid_to: date("valid_to", r.valid_to.as_ref())?,
    };
    let after = match r.page_token.as_str() {
        "" => 0,
        token => token
            .strip_prefix("after-")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                invalid(
                    "page_token",
                    format!("{token:?} is not a token this service gave"),
                )
            })?,
    };
    Ok((filter, after, page_size("page_size", r.page_size)?))
}

/// How many items a page asks for: 100 by default, at most [`MAX_PAGE`].
fn page_size(field: &str, requested: u32) -> Result<usize, Status> {
    match usize::try_from(requested).unwrap_or(usize::MAX) {
        0 => Ok(100),
        n if n > MAX_PAGE => Err(alliance_server::invalid_field(
            field,
            format!("at most {MAX_PAGE}, not {n}"),
        )),
        n => Ok(n),
    }
}
