//! Envelopes: the log record of one domain event, with both time axes and its causes.

use alliance_domain::{Actor, Event, PlanId, SCHEMA_VERSION, TeamId, Version};
use alliance_eventlog::{NewEvent, StoredEvent};
use alliance_proto::convert::{
    actor_to_proto, date_to_proto, event_from_payload, event_to_payload,
};
use alliance_proto::v1;
use prost::Message;

use crate::chain::{self, Hash};

/// What every envelope of one command shares.
pub struct EnvelopeContext<'a> {
    pub plan_id: PlanId,
    pub actor: &'a Actor,
    pub command_id: &'a str,
    pub correlation_id: &'a str,
    pub causation_id: &'a str,
    pub command_digest: &'a str,
    pub record_time_micros: i64,
    /// The writer's key, which signs each record it seals; records are left unsigned without
    /// one.
    pub signer: Option<&'a crate::signing::Signer>,
}

/// The sealed record of `event` at `version`, chained to `prev` (the hash of the plan's previous
/// event); also returns its hash.
pub fn encode(
    ctx: &EnvelopeContext<'_>,
    version: Version,
    event: &Event,
    prev: &Hash,
) -> (NewEvent, Hash) {
    let event_id = uuid::Uuid::now_v7();
    let seconds = ctx.record_time_micros.div_euclid(1_000_000);
    let nanos = ctx.record_time_micros.rem_euclid(1_000_000) * 1_000;
    let envelope = v1::EventEnvelope {
        event_id: event_id.to_string(),
        plan_id: ctx.plan_id.to_string(),
        plan_version: version,
        record_time: Some(prost_types::Timestamp {
            seconds,
            nanos: i32::try_from(nanos).unwrap_or_default(),
        }),
        valid_date: event.valid_date().map(date_to_proto),
        actor: Some(actor_to_proto(ctx.actor)),
        command_id: ctx.command_id.to_owned(),
        correlation_id: ctx.correlation_id.to_owned(),
        causation_id: ctx.causation_id.to_owned(),
        event_type: event.event_type().to_owned(),
        schema_version: SCHEMA_VERSION,
        command_digest: ctx.command_digest.to_owned(),
        payload: Some(event_to_payload(event)),
        prev_hash: Vec::new(),
        hash: Vec::new(),
        signing_key_id: Vec::new(),
        signature: Vec::new(),
    };
    let (payload, hash) = chain::seal_signed(envelope, prev, ctx.signer);
    let record = NewEvent {
        event_id,
        command_id: ctx.command_id.to_owned(),
        event_type: event.event_type().to_owned(),
        record_time_micros: ctx.record_time_micros,
        payload,
    };
    (record, hash)
}

/// The log record of `event` at `version` of `plan_id`, recorded by `actor` for `command_id`
/// at `record_time_micros`: what the command service appends, for tools that write histories
/// directly (benchmarks, imports). It is chained to `prev`, the hash of the plan's previous
/// event ([`chain::GENESIS`] for the first); its own hash is returned beside it.
pub fn encode_event(
    plan_id: PlanId,
    version: Version,
    event: &Event,
    actor: &Actor,
    command_id: &str,
    record_time_micros: i64,
    prev: &Hash,
) -> (NewEvent, Hash) {
    let ctx = EnvelopeContext {
        plan_id,
        actor,
        command_id,
        correlation_id: command_id,
        causation_id: command_id,
        command_digest: "",
        record_time_micros,
        signer: None,
    };
    encode(&ctx, version, event, prev)
}

/// A stored event decoded back into the domain, read as the current schema version.
#[derive(Debug, Clone)]
pub struct DecodedEvent {
    /// The envelope upcast to the current schema version ([`crate::upcast`]); the stored bytes
    /// are the record's, unchanged.
    pub envelope: v1::EventEnvelope,
    /// The schema version the record was written under.
    pub written_schema: u32,
    pub event: Event,
    pub actor_team: Option<TeamId>,
}

/// A record that does not decode, or does not match where the log holds it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Decodes a stored record through the upcasters, as the current schema version; a record
/// that does not decode, or of a version this build does not know, is reported, never guessed
/// at.
pub fn decode_event(stored: &StoredEvent) -> Result<DecodedEvent, RecordError> {
    let corrupt = |what: String| {
        RecordError(format!(
            "plan {} version {} (position {}): {what}",
            stored.plan_id, stored.version, stored.position
        ))
    };
    let mut envelope = v1::EventEnvelope::decode(stored.payload.as_slice())
        .map_err(|e| corrupt(format!("undecodable envelope: {e}")))?;
    if envelope.plan_version != stored.version {
        return Err(corrupt(format!(
            "envelope says version {}",
            envelope.plan_version
        )));
    }
    let written_schema = envelope.schema_version;
    crate::upcast::upcast(&mut envelope).map_err(corrupt)?;
    let payload = envelope
        .payload
        .as_ref()
        .ok_or_else(|| corrupt("envelope without payload".into()))?;
    let event = event_from_payload(payload)
        .map_err(|violations| corrupt(alliance_domain::describe_violations(&violations)))?;
    let actor_team = envelope
        .actor
        .as_ref()
        .and_then(|a| TeamId::parse(&a.team).ok());
    Ok(DecodedEvent {
        envelope,
        written_schema,
        event,
        actor_team,
    })
}
