//! Executing one command: idempotency, the conflict check, decide, append.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use alliance_stdx::lock;
use tokio::sync::watch;

use alliance_domain::{
    Actor, Command, CommandContext, Grant, Key, PartsHandoff, Plan, PlanId, Version, decide,
};
use alliance_eventlog::{CommandRecord, EventLog, LogError, Route};

use crate::plans::{Durability, PlanEntry, load};
use alliance_record::envelope::{EnvelopeContext, decode_event, encode};
use alliance_server::Caller;
use alliance_server::access;
use alliance_server::error::{ConflictingEvent, ServiceError};

const MAX_ID_LEN: usize = 128;

/// The envelope metadata a client sends with a command.
#[derive(Debug, Clone, Default)]
pub struct CommandMeta {
    pub command_id: String,
    pub plan_id: Option<PlanId>,
    /// The id a client names for the plan a branch makes (minted by the service when `None`).
    pub new_plan_id: Option<PlanId>,
    pub based_on_version: Option<Version>,
    pub correlation_id: String,
    pub causation_id: String,
}

/// SHA-256 (hex) of a command as the client sent it, before the server fills in anything (such
/// as the id of a new plan): the same command retried has the same digest.
pub fn command_digest(plan_id: Option<PlanId>, command: &Command) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(plan_id.unwrap_or_default().as_bytes());
    // Serializing a domain command cannot fail: every field is a plain value or a string map.
    hasher.update(serde_json::to_vec(command).unwrap_or_default());
    format!("{:x}", hasher.finalize())
}

/// The digest recorded with a command's events and that judges a retry: the command's digest
/// ([`command_digest`]) bound to the caller's team and user, so a command id belongs to its
/// caller. (Events recorded before the caller was bound hold the command's digest alone; a
/// retry of those is recognised by their recorded actor, see [`check_retry`].)
fn caller_digest(actor: &Actor, digest: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [
        "alliance.command.v2",
        actor.team.as_str(),
        actor.user.as_str(),
        digest,
    ] {
        // Length-prefixed, so no two different (team, user) pairs hash alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Who recorded a command: the team and user of its events' actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub team: String,
    pub user: String,
}

impl Owner {
    pub fn of(actor: &Actor) -> Self {
        Self {
            team: actor.team.to_string(),
            user: actor.user.clone(),
        }
    }

    /// The actor of a recorded envelope (an envelope without one belongs to no caller).
    pub fn recorded(actor: Option<&alliance_proto::v1::Actor>) -> Self {
        actor.map_or(
            Self {
                team: String::new(),
                user: String::new(),
            },
            |actor| Self {
                team: actor.team.clone(),
                user: actor.user.clone(),
            },
        )
    }
}

/// What a command appended: versions `first_version..=plan_version` of `plan_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub plan_id: PlanId,
    pub first_version: Version,
    pub plan_version: Version,
    pub event_ids: Vec<uuid::Uuid>,
    /// True when the command had been applied before and this is its first result.
    pub replayed: bool,
}

/// One plan's slot: `None` until loaded, and again after a failed append (reload from the log).
type Slot = Arc<tokio::sync::Mutex<Option<PlanEntry>>>;

/// Decides commands against each plan and appends their events to the log.
pub struct CommandService<L> {
    log: L,
    plans: Mutex<HashMap<PlanId, Slot>>,
    known: Mutex<BTreeSet<PlanId>>,
    /// The key this writer signs each record with; unsigned without one.
    signer: Option<alliance_record::signing::Signer>,
    /// The auditors' keys a witness is checked against; every witness is refused without.
    witness_keys: Option<Arc<alliance_record::witness::WitnessKeys>>,
    /// The roles a new plan gives when its command names none: the deployment's teams'.
    default_grants: Vec<Grant>,
    /// Where the part each decided event made is offered to the read models of this process
    /// ([`CommandService::with_handoff`]).
    handoff: Option<Arc<PartsHandoff>>,
}

impl<L: EventLog> CommandService<L> {
    /// A service over `log`, knowing every plan already in it.
    pub async fn open(log: L) -> Result<Self, ServiceError> {
        let mut known = BTreeSet::new();
        let mut from = 1;
        loop {
            let batch = log.read_all(from, 4096).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            known.extend(batch.iter().map(|e| e.plan_id));
        }
        Ok(Self {
            log,
            plans: Mutex::new(HashMap::new()),
            known: Mutex::new(known),
            signer: None,
            witness_keys: None,
            default_grants: Vec::new(),
            handoff: None,
        })
    }

    /// Offers the part each decided event made (an element, a clause, a run), as this service's
    /// state holds it, to the read models of this process through `handoff`, so they hold the
    /// same value once rather than an equal copy each ([`alliance_domain::Part`]).
    pub fn with_handoff(mut self, handoff: Arc<PartsHandoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// Gives a new plan whose command names no roles these grants (the deployment's teams',
    /// [`alliance_server::Authenticator::default_grants`]).
    pub fn with_default_grants(mut self, grants: Vec<Grant>) -> Self {
        self.default_grants = grants;
        self
    }

    /// Checks witnesses against `keys` (the identity configuration's `[[witness_key]]`).
    pub fn with_witness_keys(
        mut self,
        keys: Option<Arc<alliance_record::witness::WitnessKeys>>,
    ) -> Self {
        self.witness_keys = keys;
        self
    }

    /// The witness keys witnesses are checked against, if any.
    pub fn witness_keys(&self) -> Option<&Arc<alliance_record::witness::WitnessKeys>> {
        self.witness_keys.as_ref()
    }

    /// Signs every record this service seals with `signer`'s key.
    pub fn with_signer(mut self, signer: alliance_record::signing::Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The key records are signed with, if any.
    pub fn signer(&self) -> Option<&alliance_record::signing::Signer> {
        self.signer.as_ref()
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    fn slot(&self, plan_id: PlanId) -> Slot {
        let mut plans = lock(&self.plans);
        plans.entry(plan_id).or_default().clone()
    }

    /// The plan `command` writes: the plan it edits, or the plan it makes. A new plan's id is
    /// the one the command or the client names, else derived from the command id
    /// ([`Self::new_plan_id`]).
    pub fn written_plan(
        &self,
        meta: &CommandMeta,
        command: &Command,
    ) -> Result<PlanId, ServiceError> {
        let named = command.new_plan().filter(|id| !id.is_nil());
        match command {
            Command::CreatePlan { .. } => Ok(named
                .or(meta.plan_id)
                .unwrap_or_else(|| self.new_plan_id(&meta.command_id, None))),
            Command::BranchPlan { .. } => {
                let parent = require_plan(meta)?;
                Ok(named
                    .or(meta.new_plan_id)
                    .unwrap_or_else(|| self.new_plan_id(&meta.command_id, Some(parent))))
            }
            _ => require_plan(meta),
        }
    }

    /// Fills in what the client leaves to the service: the new plan's id and, for a plan
    /// created without roles, the deployment's grants. Returns the plan the command writes.
    fn complete(&self, meta: &CommandMeta, command: &mut Command) -> Result<PlanId, ServiceError> {
        let plan_id = self.written_plan(meta, command)?;
        match command {
            Command::CreatePlan {
                plan_id: id,
                grants,
                ..
            } => {
                *id = plan_id;
                if grants.is_empty() {
                    grants.clone_from(&self.default_grants);
                }
            }
            Command::BranchPlan { new_plan_id, .. } => *new_plan_id = plan_id,
            _ => {}
        }
        Ok(plan_id)
    }

    /// The id of the plan a create or branch command makes when the client names none: derived
    /// from the command id, so a retry (on any instance) names the same plan, and, for a
    /// branch, written with its parent.
    fn new_plan_id(&self, command_id: &str, parent: Option<PlanId>) -> PlanId {
        const NAMESPACE: PlanId = PlanId::from_u128(0x019a_0000_0000_7000_8000_a111_a0ce_0001);
        let mut attempt: u32 = 0;
        loop {
            let id = PlanId::new_v5(&NAMESPACE, format!("{command_id}/{attempt}").as_bytes());
            if parent.is_none_or(|parent| self.log.same_shard(id, parent)) || attempt > 1_000_000 {
                return id;
            }
            attempt += 1;
        }
    }

    /// Refuses, naming the owner, a plan this instance does not write.
    fn check_route(&self, plan_id: PlanId) -> Result<(), ServiceError> {
        match self.log.route(plan_id) {
            Route::Local => Ok(()),
            Route::Remote { partition, owner } => Err(ServiceError::OwnedElsewhere {
                plan_id,
                partition,
                owner,
            }),
        }
    }

    /// The slot of a plan that has events; unknown ids get no slot, so asking about random
    /// plans costs no memory.
    async fn existing_slot(&self, plan_id: PlanId) -> Result<Slot, ServiceError> {
        let cached = {
            let plans = lock(&self.plans);
            plans.get(&plan_id).cloned()
        };
        match cached {
            Some(slot) => Ok(slot),
            None if self.log.plan_version(plan_id).await? > 0 => Ok(self.slot(plan_id)),
            None => Err(ServiceError::PlanNotFound(plan_id)),
        }
    }

    /// Every plan that has events, in id order.
    pub fn plan_ids(&self) -> Vec<PlanId> {
        let known = lock(&self.known);
        known.iter().copied().collect()
    }

    /// The current write-side state of a plan.
    /// Only what is durable is shown: a read waits for the appends in flight.
    pub async fn plan(&self, plan_id: PlanId) -> Result<Plan, ServiceError> {
        self.check_route(plan_id)?;
        self.state_at(plan_id, 0).await.map(|(plan, _)| plan)
    }

    async fn loaded<'g>(
        &self,
        plan_id: PlanId,
        guard: &'g mut Option<PlanEntry>,
    ) -> Result<&'g mut PlanEntry, ServiceError> {
        // Written elsewhere meanwhile, the plan may have events this state misses.
        if guard
            .as_ref()
            .is_some_and(|entry| entry.term != self.log.writer_term(plan_id))
        {
            *guard = None;
        }
        if guard.is_none() {
            *guard = Some(load(&self.log, plan_id, None).await?);
        }
        guard
            .as_mut()
            .ok_or_else(|| ServiceError::Corrupt("plan entry vanished".into()))
    }

    /// Executes one command for `caller`: the one write path.
    ///
    /// 1. The command's digest, as the client sent it ([`command_digest`]); then what the client
    ///    leaves to the service is filled in (the new plan's id, a new plan's grants).
    /// 2. The route: only a plan this instance writes.
    /// 3. Idempotency: a command id belongs to the caller who first used it. Another caller's
    ///    reuse, or the same caller's reuse for another command, is refused before anything of
    ///    the plan is looked at; a retry is answered with the first result.
    /// 4. Authorization, once, against the state the command is decided on.
    /// 5. The conflict check, `decide`, sealing and the append.
    pub async fn execute(
        &self,
        caller: &Caller,
        meta: CommandMeta,
        mut command: Command,
    ) -> Result<CommandOutcome, ServiceError> {
        check_meta(&meta)?;
        let digest = command_digest(meta.plan_id, &command);
        let plan_id = self.complete(&meta, &mut command)?;
        self.check_route(plan_id)?;
        let prior = self
            .applied_before(caller, &meta.command_id, &digest)
            .await?;
        let base = match &mut command {
            Command::BranchPlan { parent_version, .. } => {
                let parent_id = require_plan(&meta)?;
                if !self.log.same_shard(plan_id, parent_id) {
                    return Err(ServiceError::invalid(
                        "new_plan_id",
                        "must be written with its parent plan on this log; leave it empty to have one chosen",
                    ));
                }
                let (parent, version) = self.state_at(parent_id, *parent_version).await?;
                *parent_version = version;
                Some(Base { parent_id, parent })
            }
            Command::CreatePlan { .. } => None,
            _ => {
                if prior.is_none() {
                    self.check_vouched_head(caller, plan_id, &command).await?;
                }
                None
            }
        };
        let run = Run {
            caller,
            meta: &meta,
            digest: &digest,
            prior,
        };
        self.run(run, plan_id, command, base).await
    }

    /// A plan's state at `version` (its latest when `0`), and that version.
    async fn state_at(
        &self,
        plan_id: PlanId,
        version: Version,
    ) -> Result<(Plan, Version), ServiceError> {
        let slot = self.existing_slot(plan_id).await?;
        let mut guard = slot.lock().await;
        let entry = self.loaded(plan_id, &mut guard).await?;
        if !entry.state.exists() {
            return Err(ServiceError::PlanNotFound(plan_id));
        }
        let current = entry.state.version;
        if version == 0 || version == current {
            let state = entry.state.clone();
            let tail = entry.tail.clone();
            drop(guard);
            // The state may hold appends still in flight: answer only once they are durable.
            if let Some(mut tail) = tail {
                let settled = tail
                    .wait_for(|d| !matches!(d, Durability::Pending))
                    .await
                    .map(|d| matches!(*d, Durability::Durable))
                    .unwrap_or(false);
                if !settled {
                    return Err(ServiceError::Concurrent { plan_id });
                }
            }
            return Ok((state, current));
        }
        if version > current {
            return Err(ServiceError::invalid(
                "parent_version",
                format!("plan {plan_id} is only at version {current}"),
            ));
        }
        drop(guard);
        let entry = load(&self.log, plan_id, Some(version)).await?;
        if entry.state.version != version {
            // The version exists in memory but is not durable yet.
            return Err(ServiceError::Concurrent { plan_id });
        }
        Ok((entry.state, version))
    }

    /// The first result of a command already in the log under `command_id`, if it is this
    /// caller's same command; refused if the id is another caller's or another command's.
    async fn applied_before(
        &self,
        caller: &Caller,
        command_id: &str,
        digest: &str,
    ) -> Result<Option<CommandOutcome>, ServiceError> {
        match self.log.find_command(command_id).await? {
            Some(record) => Ok(Some(self.outcome_of(&record, caller, digest).await?)),
            None => Ok(None),
        }
    }

    /// The first result of a command found in the log, if it is the caller's same command.
    async fn outcome_of(
        &self,
        record: &CommandRecord,
        caller: &Caller,
        digest: &str,
    ) -> Result<CommandOutcome, ServiceError> {
        let count = usize::try_from(record.last_version - record.first_version + 1).unwrap_or(0);
        let events = self
            .log
            .read_plan(record.plan_id, record.first_version, count)
            .await?;
        let first = events.first().ok_or_else(|| {
            ServiceError::Corrupt(format!("command {} has no events", record.command_id))
        })?;
        let envelope = decode_event(first)?.envelope;
        let owner = Owner::recorded(envelope.actor.as_ref());
        check_retry(
            &record.command_id,
            (&owner, &envelope.command_digest),
            &caller.actor,
            digest,
        )?;
        Ok(CommandOutcome {
            plan_id: record.plan_id,
            first_version: record.first_version,
            plan_version: record.last_version,
            event_ids: events.iter().map(|e| e.event_id).collect(),
            replayed: true,
        })
    }

    async fn run(
        &self,
        run: Run<'_>,
        plan_id: PlanId,
        command: Command,
        base: Option<Base>,
    ) -> Result<CommandOutcome, ServiceError> {
        let Run {
            caller,
            meta,
            digest,
            prior,
        } = run;
        let creates = command.new_plan().is_some();
        let slot = if creates {
            self.slot(plan_id)
        } else {
            self.existing_slot(plan_id).await?
        };
        let mut guard = slot.lock().await;
        let entry = self.loaded(plan_id, &mut guard).await?;
        // A command still on its way to the log is found in memory only: another caller's reuse
        // of its id is refused here, before the plan's authorization, as one in the log is.
        let applied = entry.commands.get(&meta.command_id).cloned();
        if let Some(applied) = &applied {
            check_retry(
                &meta.command_id,
                (&applied.owner, &applied.digest),
                &caller.actor,
                digest,
            )?;
        }
        if !creates && !entry.state.exists() {
            return Err(ServiceError::PlanNotFound(plan_id));
        }
        // The one authorization: against the parent for a branch, against no plan for a new
        // plan, else against the plan as it stands.
        let none = Plan::default();
        let (judged, judged_id) = match (&base, creates) {
            (Some(base), _) => (&base.parent, base.parent_id),
            (None, true) => (&none, plan_id),
            (None, false) => (&entry.state, plan_id),
        };
        access::authorize_command(caller, judged, judged_id, &command)?;

        if let Some(applied) = applied {
            let mut outcome = applied.outcome;
            outcome.replayed = true;
            drop(guard);
            // The first attempt may still be on its way to disk: answer when it is.
            return self
                .settle(plan_id, applied.durability, outcome, caller, digest)
                .await;
        }
        if let Some(outcome) = prior {
            return Ok(outcome);
        }
        let ctx = CommandContext {
            actor: caller.actor.clone(),
        };
        let bound = caller_digest(&caller.actor, digest);
        if base.is_none() {
            if let Some(based_on) = meta.based_on_version {
                check_conflicts(plan_id, entry, based_on, &command, &ctx)?;
            }
        } else if entry.state.exists() {
            return Err(alliance_domain::DomainError::already_exists("plan", plan_id).into());
        }

        let decided_on = base.as_ref().map_or(&entry.state, |base| &base.parent);
        let events = alliance_telemetry::trace_span!(
            "decide",
            alliance.command = command.name(),
            alliance.plan_id = %plan_id,
            alliance.plan_version = entry.state.version,
        )
        .in_scope(|| decide(decided_on, &command, &ctx))?;
        let expected = entry.state.version;
        let envelope_ctx = EnvelopeContext {
            plan_id,
            actor: &ctx.actor,
            command_id: &meta.command_id,
            correlation_id: &meta.correlation_id,
            causation_id: &meta.causation_id,
            command_digest: &bound,
            record_time_micros: chrono::Utc::now().timestamp_micros(),
            signer: self.signer.as_ref(),
        };
        let mut head = entry.head_hash;
        let records: Vec<_> = events
            .iter()
            .zip(expected + 1..)
            .map(|(event, version)| {
                let (record, hash) = encode(&envelope_ctx, version, event, &head);
                head = hash;
                record
            })
            .collect();
        let outcome = CommandOutcome {
            plan_id,
            first_version: expected + 1,
            plan_version: expected + events.len() as Version,
            event_ids: records.iter().map(|r| r.event_id).collect(),
            replayed: false,
        };
        // Enqueued now, in plan order; durable when `appended` resolves.
        let appended = self.log.append(plan_id, expected, records);

        if let Some(base) = base {
            entry.state = base.parent;
        }
        entry.head_hash = head;
        let versions = outcome.first_version..;
        for ((event, &event_id), version) in events.iter().zip(&outcome.event_ids).zip(versions) {
            entry.push(event_id, event, ctx.actor.team.as_str());
            if let Some((handoff, part)) = self.handoff.as_ref().zip(entry.state.part_made(event)) {
                handoff.offer(plan_id, version, part);
            }
        }
        let (durable, durability) = watch::channel(Durability::Pending);
        entry.record_command(
            &meta.command_id,
            outcome.clone(),
            (Owner::of(&caller.actor), bound),
            durability.clone(),
        );
        entry.tail = Some(durability.clone());
        let generation = entry.generation;
        drop(guard);

        // Waiting for durability is a task of its own: if this caller goes away, the outcome is
        // still published for retries, and a failure still resets the plan's state.
        let failed_slot = slot.clone();
        tokio::spawn(async move {
            let result = match appended.await {
                Ok(_) => Durability::Durable,
                Err(error) => {
                    // The in-memory state ran ahead of the log: rebuild it from the log next time
                    // (unless it was rebuilt already and may hold newer appends).
                    let mut slot = failed_slot.lock().await;
                    if slot.as_ref().is_some_and(|e| e.generation == generation) {
                        *slot = None;
                    }
                    Durability::Failed(Arc::new(error))
                }
            };
            let _ = durable.send(result);
        });
        let result = self
            .settle(plan_id, durability, outcome, caller, digest)
            .await;
        if result.is_ok() {
            let mut known = lock(&self.known);
            known.insert(plan_id);
        }
        result
    }

    /// Answers with `outcome` once its append is durable, or with why it failed.
    async fn settle(
        &self,
        plan_id: PlanId,
        mut durability: watch::Receiver<Durability>,
        outcome: CommandOutcome,
        caller: &Caller,
        digest: &str,
    ) -> Result<CommandOutcome, ServiceError> {
        let settled = durability
            .wait_for(|d| !matches!(d, Durability::Pending))
            .await
            .map(|d| d.clone())
            .map_err(|_| ServiceError::Log(LogError::Unavailable("append abandoned".into())))?;
        match settled {
            Durability::Pending | Durability::Durable => Ok(outcome),
            Durability::Failed(error) => match error.as_ref() {
                LogError::VersionConflict { .. } => Err(ServiceError::Concurrent { plan_id }),
                LogError::DuplicateCommand { record, .. } => {
                    self.outcome_of(record, caller, digest).await
                }
                LogError::Unavailable(message) => {
                    Err(ServiceError::Log(LogError::Unavailable(message.clone())))
                }
                other => Err(ServiceError::Log(LogError::Storage(other.to_string()))),
            },
        }
    }
}

/// Who runs a command, with what metadata, the command's digest, and its first result when the
/// log holds it already.
struct Run<'a> {
    caller: &'a Caller,
    meta: &'a CommandMeta,
    digest: &'a str,
    prior: Option<CommandOutcome>,
}

/// The plan a branch starts from, at the version it branches at.
struct Base {
    parent_id: PlanId,
    parent: Plan,
}

/// A command id names one command of one caller forever: a retry is the same caller's same
/// command. Another caller's reuse is refused saying only that (not the plan, type, result or
/// version of the first command); the same caller's reuse for another command is refused too.
///
/// `recorded` is who recorded the first command and the digest recorded with it: the caller's
/// digest ([`caller_digest`]), or, in events recorded before the caller was bound, the
/// command's digest alone, recognised when the recorded actor is the caller.
fn check_retry(
    command_id: &str,
    recorded: (&Owner, &str),
    caller: &Actor,
    digest: &str,
) -> Result<(), ServiceError> {
    let (owner, stored) = recorded;
    if *owner != Owner::of(caller) {
        return Err(ServiceError::invalid(
            "meta.command_id",
            format!("command id {command_id} belongs to another caller; use a new id"),
        ));
    }
    if stored == caller_digest(caller, digest) || stored == digest {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "meta.command_id",
            format!(
                "command id {command_id} was already used for a different command; use a new id"
            ),
        ))
    }
}

fn require_plan(meta: &CommandMeta) -> Result<PlanId, ServiceError> {
    meta.plan_id
        .ok_or_else(|| ServiceError::invalid("meta.plan_id", "is required"))
}

fn check_meta(meta: &CommandMeta) -> Result<(), ServiceError> {
    let mut violations = Vec::new();
    for (field, value, required) in [
        ("meta.command_id", &meta.command_id, true),
        ("meta.correlation_id", &meta.correlation_id, false),
        ("meta.causation_id", &meta.causation_id, false),
    ] {
        if required && value.trim().is_empty() {
            violations.push(alliance_domain::FieldViolation::new(
                field,
                "must not be empty",
            ));
        }
        if value.len() > MAX_ID_LEN {
            violations.push(alliance_domain::FieldViolation::new(
                field,
                format!("must be at most {MAX_ID_LEN} bytes"),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(violations))
    }
}

/// Refuses a command based on `based_on` if an event after it changed what the command touches.
fn check_conflicts(
    plan_id: PlanId,
    entry: &PlanEntry,
    based_on: Version,
    command: &Command,
    ctx: &CommandContext,
) -> Result<(), ServiceError> {
    let current = entry.state.version;
    if based_on > current {
        return Err(ServiceError::invalid(
            "meta.based_on_version",
            format!("plan {plan_id} is only at version {current}"),
        ));
    }
    let touched: Vec<Key> = command.keys(ctx).into_iter().collect();
    let conflicts: Vec<ConflictingEvent> = entry
        .history
        .changed(based_on, &touched)
        .map(|changed| ConflictingEvent {
            version: changed.version,
            event_id: changed.event_id,
            event_type: changed.event_type,
            team: changed.team.to_owned(),
            keys: changed.keys.iter().map(ToString::to_string).collect(),
        })
        .collect();
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Conflict {
            plan_id,
            based_on,
            current,
            conflicts,
        })
    }
}
