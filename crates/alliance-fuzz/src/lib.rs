//! Fuzzing entry points for the two places where untrusted bytes enter the system.
//!
//! * [`command`]: a request of `alliance.v1.PlanCommands` as a client sends it. It is decoded,
//!   converted to a domain command with the conversion the command service uses
//!   ([`CommandRequest::to_command`]), completed the way the service completes it (the id of a
//!   new plan, the version a branch starts from), and decided against the reference plan as one
//!   of the planning teams. Accepted events are applied with `evolve`, and each must read back
//!   unchanged from the record the service would append for it.
//! * [`envelope`]: a record as read from the log (the Kafka topic or the embedded log). It is
//!   decoded as the command service reads it ([`alliance_record::decode_event`]), checked as
//!   the audit checks a chain, and applied to a read model as the projection applies it. A
//!   malformed record must be refused with an error.
//!
//! Neither panics on any input: a panic is a bug in the code they drive. The verdict functions
//! ([`command_verdict`], [`envelope_verdict`]) say how far an input got, for tests.
//!
//! Input of [`command`]: the first byte selects the request and the caller, the rest is the
//! request's protobuf encoding. The selector's low five bits, modulo the number of requests,
//! index [`REQUESTS`]; its high three bits, modulo the number of teams, index [`TEAMS`]
//! ([`selector`] builds one).

pub mod seed;

mod reference;

use alliance_commands::command_digest;
use alliance_domain::{Command, CommandContext, ErrorKind, Plan, PlanId, Version, decide, evolve};
use alliance_eventlog::{StoredEvent, TopicOffset};
use alliance_projection::Projection;
use alliance_proto::convert::CommandRequest;
use alliance_proto::v1;
use alliance_record::chain::{self, GENESIS};
use alliance_record::{decode_event, encode_event};
use alliance_server::{Caller, access};
use prost::Message;

pub use reference::{Reference, reference, repository_file};

/// The command requests of `alliance.v1.PlanCommands`, in the order of the service definition.
/// Each name is also the domain command's [`Command::name`].
pub const REQUESTS: [&str; 29] = [
    "CreatePlan",
    "BranchPlan",
    "RegisterForceElement",
    "RecordCapabilityLevel",
    "DefineAgreementClause",
    "DefineCondition",
    "AssessCondition",
    "ProposeDecision",
    "AddForceElement",
    "WithdrawForceElement",
    "ReduceForceElement",
    "RelocateForceElement",
    "ScheduleOpconTransfer",
    "ChangeCommandArrangement",
    "AmendAgreementClause",
    "PlanCapabilityInvestment",
    "EndorseDecision",
    "AdoptDecision",
    "RejectDecision",
    "WithdrawDecision",
    "RecordSimulationRun",
    "GrantRole",
    "RevokeRole",
    "RequirePrerequisite",
    "DefineConstraint",
    "WaiveConstraint",
    "AssignMission",
    "WitnessHead",
    "SignHead",
];

/// The teams of `deploy/dev-tokens.toml`, which commands are issued as.
pub const TEAMS: [&str; 5] = [
    "us-force-planning",
    "rok-jcs",
    "nuclear-policy",
    "alliance-approvers",
    "auditors",
];

/// Record time of the records a fuzzed command appends (2026-01-01T00:00:00Z).
const RECORD_TIME_MICROS: i64 = 1_767_225_600_000_000;

/// The selector byte of a command input: `request` indexes [`REQUESTS`], `team` [`TEAMS`].
pub fn selector(request: usize, team: usize) -> u8 {
    // Both fit: five bits for the requests, three bits for the teams.
    let request = u8::try_from(request % REQUESTS.len()).unwrap_or_default();
    let team = u8::try_from(team % TEAMS.len()).unwrap_or_default();
    request | (team << 5)
}

/// How far a command input got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandVerdict {
    /// No selector byte.
    Empty,
    /// The bytes are not an encoding of the selected request.
    Undecodable,
    /// Refused at the edge: missing or malformed metadata, or a field the conversion refuses.
    Invalid,
    /// Refused because the calling team lacks the role on the plan that the command needs.
    Denied,
    /// Converted, then refused by `decide` (or, for a branch, by the service before it).
    Refused(ErrorKind),
    /// Decided: this many events were evolved and read back from their records.
    Accepted { events: usize },
}

/// How far a log record got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeVerdict {
    /// Refused as corrupt by the decoder.
    Corrupt,
    /// Decoded into a domain event; `projected` when a fresh read model also applied it (the
    /// first event of a plan that is not a branch).
    Decoded { projected: bool },
}

/// Decodes, converts and decides one command request. Never panics on any input.
pub fn command(data: &[u8]) {
    let _ = command_verdict(data);
}

/// Decodes one log record as the readers of the log do. Never panics on any input.
pub fn envelope(data: &[u8]) {
    let _ = envelope_verdict(data);
}

/// [`command`], saying how far the input got.
pub fn command_verdict(data: &[u8]) -> CommandVerdict {
    let Some((&selector, body)) = data.split_first() else {
        return CommandVerdict::Empty;
    };
    let request = usize::from(selector & 0x1f) % REQUESTS.len();
    let team = TEAMS[usize::from(selector >> 5) % TEAMS.len()];
    let Some(caller) = reference().caller(team) else {
        return CommandVerdict::Invalid;
    };
    match request {
        0 => execute::<v1::CreatePlanRequest>(body, &caller, names_no_plan),
        1 => execute::<v1::BranchPlanRequest>(body, &caller, |r| r.new_plan_id.as_str()),
        2 => execute::<v1::RegisterForceElementRequest>(body, &caller, names_no_plan),
        3 => execute::<v1::RecordCapabilityLevelRequest>(body, &caller, names_no_plan),
        4 => execute::<v1::DefineAgreementClauseRequest>(body, &caller, names_no_plan),
        5 => execute::<v1::DefineConditionRequest>(body, &caller, names_no_plan),
        6 => execute::<v1::AssessConditionRequest>(body, &caller, names_no_plan),
        7 => execute::<v1::ProposeDecisionRequest>(body, &caller, names_no_plan),
        8 => execute::<v1::AddForceElementRequest>(body, &caller, names_no_plan),
        9 => execute::<v1::WithdrawForceElementRequest>(body, &caller, names_no_plan),
        10 => execute::<v1::ReduceForceElementRequest>(body, &caller, names_no_plan),
        11 => execute::<v1::RelocateForceElementRequest>(body, &caller, names_no_plan),
        12 => execute::<v1::ScheduleOpconTransferRequest>(body, &caller, names_no_plan),
        13 => execute::<v1::ChangeCommandArrangementRequest>(body, &caller, names_no_plan),
        14 => execute::<v1::AmendAgreementClauseRequest>(body, &caller, names_no_plan),
        15 => execute::<v1::PlanCapabilityInvestmentRequest>(body, &caller, names_no_plan),
        16 => execute::<v1::EndorseDecisionRequest>(body, &caller, names_no_plan),
        17 => execute::<v1::AdoptDecisionRequest>(body, &caller, names_no_plan),
        18 => execute::<v1::RejectDecisionRequest>(body, &caller, names_no_plan),
        19 => execute::<v1::WithdrawDecisionRequest>(body, &caller, names_no_plan),
        20 => execute::<v1::RecordSimulationRunRequest>(body, &caller, names_no_plan),
        21 => execute::<v1::GrantRoleRequest>(body, &caller, names_no_plan),
        22 => execute::<v1::RevokeRoleRequest>(body, &caller, names_no_plan),
        23 => execute::<v1::RequirePrerequisiteRequest>(body, &caller, names_no_plan),
        24 => execute::<v1::DefineConstraintRequest>(body, &caller, names_no_plan),
        25 => execute::<v1::WaiveConstraintRequest>(body, &caller, names_no_plan),
        26 => execute::<v1::AssignMissionRequest>(body, &caller, names_no_plan),
        27 => execute::<v1::WitnessHeadRequest>(body, &caller, names_no_plan),
        _ => execute::<v1::SignHeadRequest>(body, &caller, names_no_plan),
    }
}

/// The new plan a request names, for requests that name none.
fn names_no_plan<R>(_: &R) -> &str {
    ""
}

/// A plan id field: empty means none; anything else must be a UUID.
fn plan_id_field(value: &str) -> Result<Option<PlanId>, ()> {
    if value.is_empty() {
        return Ok(None);
    }
    PlanId::parse_str(value).map(Some).map_err(|_| ())
}

/// The id of a new plan the client leaves to the server: derived from the command id, so a
/// retry names the same plan.
fn minted_plan_id(command_id: &str) -> PlanId {
    PlanId::new_v5(&PlanId::NAMESPACE_OID, command_id.as_bytes())
}

/// One request through the command path: decode, convert, complete, decide, evolve, and read
/// each event back from its record. `new_plan_id` reads the id a branch request names.
fn execute<R: CommandRequest + Message + Default>(
    body: &[u8],
    caller: &Caller,
    new_plan_id: fn(&R) -> &str,
) -> CommandVerdict {
    let Ok(request) = R::decode(body) else {
        return CommandVerdict::Undecodable;
    };
    let converted = request.to_command();
    let Some(meta) = request.meta() else {
        return CommandVerdict::Invalid;
    };
    let Ok(meta_plan) = plan_id_field(&meta.plan_id) else {
        return CommandVerdict::Invalid;
    };
    let Ok(mut command) = converted else {
        return CommandVerdict::Invalid;
    };
    // Taken before the server fills anything in, as the service does.
    let _digest = command_digest(meta_plan, &command);
    let ctx = CommandContext {
        actor: caller.actor.clone(),
    };
    if meta.based_on_version.is_some() {
        // What the conflict check compares with the plan's history.
        let _touched = command.keys(&ctx);
    }

    let reference = reference();
    // Which plan the command writes, the state it is decided against, and that plan's version.
    // A command that edits a plan edits the reference plan, whatever its metadata names, so
    // that every input that converts is decided.
    let (plan_id, base, expected): (PlanId, Plan, Version) = match &mut command {
        Command::CreatePlan { plan_id, .. } => {
            let id = meta_plan.unwrap_or_else(|| minted_plan_id(&meta.command_id));
            *plan_id = id;
            let base = if id == reference.plan_id() {
                reference.latest().clone()
            } else {
                Plan::default()
            };
            (id, base, 0)
        }
        Command::BranchPlan {
            new_plan_id: new_id,
            parent_version,
            ..
        } => {
            let Ok(named) = plan_id_field(new_plan_id(&request)) else {
                return CommandVerdict::Invalid;
            };
            let id = named.unwrap_or_else(|| minted_plan_id(&meta.command_id));
            *new_id = id;
            // The parent at the version asked for (its latest when unset).
            let version = match *parent_version {
                0 => reference.latest().version,
                version => version,
            };
            let Some(parent) = reference.at(version) else {
                return CommandVerdict::Invalid;
            };
            *parent_version = version;
            if id == reference.plan_id() {
                // The branch's own stream has events already.
                return CommandVerdict::Refused(ErrorKind::AlreadyExists);
            }
            (id, parent.clone(), 0)
        }
        _ => {
            let state = reference.latest();
            (reference.plan_id(), state.clone(), state.version)
        }
    };

    reference.auth.complete_grants(&mut command);
    // Who may: creating a plan is up to the caller's team, anything else to its roles on the
    // plan (for a branch, on the parent).
    let authorized = match &command {
        Command::CreatePlan { .. } => {
            access::authorize_command(caller, &Plan::default(), plan_id, &command)
        }
        Command::BranchPlan { .. } => {
            access::authorize_command(caller, &base, reference.plan_id(), &command)
        }
        _ => access::authorize_command(caller, &base, plan_id, &command),
    };
    if authorized.is_err() {
        return CommandVerdict::Denied;
    }

    let events = match decide(&base, &command, &ctx) {
        Ok(events) => events,
        Err(refusal) => return CommandVerdict::Refused(refusal.kind()),
    };
    let mut state = base;
    let mut prev = GENESIS;
    for (event, version) in events.iter().zip(expected + 1..) {
        let _keys = event.keys();
        state = evolve(state, event);
        let (record, hash) = encode_event(
            plan_id,
            version,
            event,
            &ctx.actor,
            &meta.command_id,
            RECORD_TIME_MICROS,
            &prev,
        );
        prev = hash;
        let stored = record.stored(plan_id, version, version);
        match decode_event(&stored) {
            Ok(decoded) => assert_eq!(
                &decoded.event,
                event,
                "an accepted {} event reads back changed from its record",
                event.event_type()
            ),
            Err(error) => panic!(
                "an accepted {} event cannot be read back from its record: {error}",
                event.event_type()
            ),
        }
    }
    // A plan's version counts the events of its own stream.
    assert_eq!(
        state.version,
        expected + events.len() as Version,
        "evolve left {} at the wrong version",
        command.name()
    );
    CommandVerdict::Accepted {
        events: events.len(),
    }
}

/// A record as a reader of the Kafka topic gets it: `data` is the value; the key (plan id),
/// the version, event id, command id, type and record time that the writer puts in the headers
/// are taken from the envelope where it decodes, so that a well-formed record is consistent.
pub fn record_of(data: &[u8]) -> StoredEvent {
    let envelope = v1::EventEnvelope::decode(data).ok();
    let plan_id = envelope
        .as_ref()
        .and_then(|e| PlanId::parse_str(&e.plan_id).ok())
        .unwrap_or_else(|| reference().plan_id());
    let version = envelope.as_ref().map_or(1, |e| e.plan_version);
    let event_id = envelope
        .as_ref()
        .and_then(|e| uuid::Uuid::parse_str(&e.event_id).ok())
        .unwrap_or_default();
    let record_time_micros =
        envelope
            .as_ref()
            .and_then(|e| e.record_time)
            .map_or(RECORD_TIME_MICROS, |t| {
                t.seconds
                    .saturating_mul(1_000_000)
                    .saturating_add(i64::from(t.nanos) / 1_000)
            });
    let (command_id, event_type) = envelope
        .map(|e| (e.command_id, e.event_type))
        .unwrap_or_default();
    StoredEvent {
        position: version,
        plan_id,
        version,
        event_id,
        command_id,
        event_type,
        record_time_micros,
        payload: data.to_vec(),
        origin: Some(TopicOffset {
            partition: 0,
            offset: i64::try_from(version).unwrap_or(i64::MAX),
        }),
        trace_context: None,
    }
}

/// [`envelope`], saying how far the input got.
pub fn envelope_verdict(data: &[u8]) -> EnvelopeVerdict {
    let stored = record_of(data);
    // The audit's chain check reads the raw record.
    let _chain = chain::Verifier::default().check(&stored);
    let _head = chain::carried_hash(&stored.payload);
    let decoded = match decode_event(&stored) {
        Ok(decoded) => decoded,
        Err(_) => return EnvelopeVerdict::Corrupt,
    };
    // The projection reads the record through its own path, into a fresh read model. That
    // model applies a plan's first event and refuses any later one as a gap; building one is
    // costly, so only first events are given to it.
    let projected = stored.version == 1 && Projection::default().apply(&stored).is_ok();
    // The command service folds a plan from its records: the event applies to the plan as it
    // stood before it (the reference plan where it reaches that version).
    let reference = reference();
    let _keys = decoded.event.keys();
    let before = reference
        .at(stored.version.saturating_sub(1))
        .unwrap_or_else(|| reference.latest());
    let _after = evolve(before.clone(), &decoded.event);
    EnvelopeVerdict::Decoded { projected }
}
