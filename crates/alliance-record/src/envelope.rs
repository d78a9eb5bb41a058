//! Envelopes: the log record of one domain event, with both time axes and its causes.

use std::sync::OnceLock;

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
    /// The event packed, for a reader that keeps it: filled by [`decode_event_lean`] (from
    /// the record's own payload bytes where it can), not by [`decode_event`].
    pub packed: Option<PackedEvent>,
}

/// A domain event kept as its payload's protobuf bytes (the envelope's `payload` field, key
/// included): a fraction of the decoded event's size, and decoded again when read. Bytes a
/// decode once accepted, so each read decodes them to the same event.
///
/// Its type is read from the payload field's number, the case of the envelope's `payload` that
/// carries it, not kept beside it: an event's type name is the name of that case's message.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedEvent {
    bytes: Box<[u8]>,
}

/// The envelope's first payload field: every field from here on is a case of `payload`.
const FIRST_PAYLOAD_FIELD: u32 = 20;

/// The name of the message a case of the envelope's `payload` carries, by the case's field
/// number, as the schema the project is built with declares it (read once from its
/// descriptors): an event's type name.
fn payload_type(field: u32) -> Option<&'static str> {
    static TYPES: OnceLock<Vec<Option<String>>> = OnceLock::new();
    let types = TYPES.get_or_init(|| {
        let mut types = Vec::new();
        let files = prost_types::FileDescriptorSet::decode(alliance_proto::FILE_DESCRIPTOR_SET)
            .map(|set| set.file)
            .unwrap_or_default();
        let envelope = files
            .iter()
            .filter(|file| file.package() == "alliance.v1")
            .flat_map(|file| &file.message_type)
            .find(|message| message.name() == "EventEnvelope");
        let Some(envelope) = envelope else {
            return types;
        };
        let payload = envelope
            .oneof_decl
            .iter()
            .position(|oneof| oneof.name() == "payload");
        for field in &envelope.field {
            if field.oneof_index.and_then(|i| usize::try_from(i).ok()) != payload {
                continue;
            }
            let Ok(number) = usize::try_from(field.number()) else {
                continue;
            };
            if types.len() <= number {
                types.resize(number + 1, None);
            }
            let name = field.type_name().rsplit('.').next().unwrap_or_default();
            types[number] = Some(name.to_owned());
        }
        types
    });
    types.get(usize::try_from(field).ok()?)?.as_deref()
}

impl PackedEvent {
    /// `event`, packed.
    pub fn new(event: &Event) -> Self {
        let only_payload = v1::EventEnvelope {
            payload: Some(event_to_payload(event)),
            ..Default::default()
        };
        Self {
            bytes: only_payload.encode_to_vec().into_boxed_slice(),
        }
    }

    /// The event's type name ([`Event::event_type`]), read without decoding it: the name of
    /// the message its payload field carries.
    pub fn event_type(&self) -> &'static str {
        prost::encoding::decode_key(&mut &*self.bytes)
            .ok()
            .and_then(|(field, _)| payload_type(field))
            .unwrap_or("unknown")
    }

    /// The payload, as the envelope carries it.
    pub fn payload(&self) -> Result<v1::event_envelope::Payload, RecordError> {
        v1::EventEnvelope::decode(&*self.bytes)
            .ok()
            .and_then(|envelope| envelope.payload)
            .ok_or_else(|| RecordError(format!("a packed {} does not decode", self.event_type())))
    }

    /// The event.
    pub fn event(&self) -> Result<Event, RecordError> {
        event_from_payload(&self.payload()?).map_err(|violations| {
            RecordError(format!(
                "a packed {} does not decode: {}",
                self.event_type(),
                alliance_domain::describe_violations(&violations)
            ))
        })
    }

    /// The bytes it takes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

impl std::fmt::Debug for PackedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event() {
            Ok(event) => event.fmt(f),
            Err(error) => write!(f, "{error}"),
        }
    }
}

/// An envelope decoded without the strings a reader already has from the stored record's own
/// columns: event id (1), plan id (2), command id (7) and event type (10) are left empty. They
/// are decoded as the whole decode decodes them (their wire type, their UTF-8), so a record one
/// reader refuses no other accepts, but into one scratch string: one allocation where there were
/// four. Every other field decodes as in the whole envelope.
/// It also notes where the record's payload field is, to keep its bytes as they are.
#[derive(Debug, Default)]
struct Lean(v1::EventEnvelope, String, PayloadField, SkippedAt);

/// Where the last value of each field [`Lean`] skips is, in [`SKIPPED`]'s order: the bytes left
/// to decode after it and its length (`None`: the record has none).
type SkippedAt = [Option<(usize, usize)>; SKIPPED.len()];

/// Where a record's payload fields are: how many there are, and the last one's field number,
/// wire type and value, as the bytes left to decode before and after it.
#[derive(Debug, Default)]
struct PayloadField {
    count: u32,
    tag: u32,
    wire_type: Option<prost::encoding::WireType>,
    left_before: usize,
    left_after: usize,
}

/// The envelope's string fields [`Lean`] checks without keeping.
const SKIPPED: [u32; 4] = [1, 2, 7, 10];

impl Message for Lean {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        self.0.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        if let Some(at) = SKIPPED.iter().position(|skipped| *skipped == tag) {
            // Decoded as the whole envelope decodes them, each into the same scratch string,
            // whose bytes are the value's as they are in the record.
            prost::encoding::string::merge(wire_type, &mut self.1, buf, ctx)?;
            self.3[at] = Some((buf.remaining(), self.1.len()));
            Ok(())
        } else if tag >= FIRST_PAYLOAD_FIELD {
            let left_before = buf.remaining();
            self.0.merge_field(tag, wire_type, buf, ctx)?;
            self.2 = PayloadField {
                count: self.2.count + 1,
                tag,
                wire_type: Some(wire_type),
                left_before,
                left_after: buf.remaining(),
            };
            Ok(())
        } else {
            self.0.merge_field(tag, wire_type, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        self.0.clear();
        self.1.clear();
        self.2 = PayloadField::default();
        self.3 = SkippedAt::default();
    }
}

/// A record that does not decode, or does not match where the log holds it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Decodes a stored record through the upcasters, as the current schema version; a record
/// that does not decode, or of a version this build does not know, is reported, never guessed
/// at.
pub fn decode_event(stored: &StoredEvent) -> Result<DecodedEvent, RecordError> {
    let envelope = v1::EventEnvelope::decode(stored.payload.as_slice());
    decoded(stored, envelope, None)
}

/// [`decode_event`] for a reader that has the ids and the event type from the stored record's
/// own columns: the envelope's event id, plan id, command id and event type are left empty
/// (checked, not kept). It refuses what `decode_event` refuses. A record written under an older
/// schema version, whose upcasting may need them, is decoded whole.
///
/// The event comes packed too: the record's payload field as it is, when the record has one
/// (a record may repeat it, and a decode merges the repeats), or else packed anew.
pub fn decode_event_lean(stored: &StoredEvent) -> Result<DecodedEvent, RecordError> {
    let record = stored.payload.as_slice();
    let (envelope, field, skipped) = match Lean::decode(record) {
        Ok(lean) => (Ok(lean.0), lean.2, lean.3),
        Err(error) => (Err(error), PayloadField::default(), SkippedAt::default()),
    };
    if matches!(&envelope, Ok(e) if e.schema_version != SCHEMA_VERSION) {
        return decode_event(stored).map(|mut decoded| {
            decoded.packed = Some(PackedEvent::new(&decoded.event));
            decoded
        });
    }
    let [event_id, plan_id, command_id, event_type] = skipped.map(|at| {
        at.and_then(|(left_after, len)| {
            let end = record.len().checked_sub(left_after)?;
            record.get(end.checked_sub(len)?..end)
        })
        .unwrap_or_default()
    });
    let stated = Stated {
        event_id,
        plan_id,
        command_id,
        event_type,
    };
    let mut decoded = decoded(stored, envelope, Some(stated))?;
    let value = (record.len() - field.left_before)..(record.len() - field.left_after);
    decoded.packed = Some(match field.wire_type {
        Some(wire_type) if field.count == 1 => {
            let mut bytes = Vec::with_capacity(prost::encoding::key_len(field.tag) + value.len());
            prost::encoding::encode_key(field.tag, wire_type, &mut bytes);
            bytes.extend_from_slice(&record[value]);
            PackedEvent {
                bytes: bytes.into_boxed_slice(),
            }
        }
        _ => PackedEvent::new(&decoded.event),
    });
    Ok(decoded)
}

/// The ids and the event type an envelope states (fields 1, 2, 7 and 10, each the last of its
/// number, as a decode merges them; empty when absent), as its bytes hold them.
struct Stated<'a> {
    event_id: &'a [u8],
    plan_id: &'a [u8],
    command_id: &'a [u8],
    event_type: &'a [u8],
}

impl<'a> Stated<'a> {
    fn of(envelope: &'a v1::EventEnvelope) -> Self {
        Self {
            event_id: envelope.event_id.as_bytes(),
            plan_id: envelope.plan_id.as_bytes(),
            command_id: envelope.command_id.as_bytes(),
            event_type: envelope.event_type.as_bytes(),
        }
    }

    /// Which of them a record is stored under (the log's columns, or a topic's headers, which
    /// neither its hash nor its signature covers) is another, if one is. A reader takes them
    /// from where the record is stored, so one changed there (by an operator with the file,
    /// or a producer writing to the topic) would be served while every chain still verifies;
    /// such a record is refused instead.
    fn differs_from(&self, stored: &StoredEvent) -> Option<&'static str> {
        let same_id =
            |text: &[u8], id: uuid::Uuid| uuid::Uuid::try_parse_ascii(text).is_ok_and(|t| t == id);
        if !same_id(self.event_id, stored.event_id) {
            Some("event id")
        } else if !same_id(self.plan_id, stored.plan_id) {
            Some("plan id")
        } else if self.command_id != stored.command_id.as_bytes() {
            Some("command id")
        } else if self.event_type != stored.event_type.as_bytes() {
            Some("event type")
        } else {
            None
        }
    }
}

/// `stated`: what the envelope states of its ids and event type, where the decode left them out
/// of `envelope` (`None`: read from it).
fn decoded(
    stored: &StoredEvent,
    envelope: Result<v1::EventEnvelope, prost::DecodeError>,
    stated: Option<Stated<'_>>,
) -> Result<DecodedEvent, RecordError> {
    let corrupt = |what: String| {
        RecordError(format!(
            "plan {} version {} (position {}): {what}",
            stored.plan_id, stored.version, stored.position
        ))
    };
    let mut envelope = envelope.map_err(|e| corrupt(format!("undecodable envelope: {e}")))?;
    if envelope.plan_version != stored.version {
        return Err(corrupt(format!(
            "envelope says version {}",
            envelope.plan_version
        )));
    }
    let differs = match stated {
        Some(stated) => stated.differs_from(stored),
        None => Stated::of(&envelope).differs_from(stored),
    };
    if let Some(differs) = differs {
        return Err(corrupt(format!(
            "the {differs} it is stored under is not the one its envelope states"
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
        packed: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alliance_domain::{DecisionId, ElementId, Side, Step};

    fn actor() -> Actor {
        Actor {
            team: TeamId::parse("us-force-planning").unwrap(),
            user: "planner".into(),
            side: Some(Side::Us),
        }
    }

    /// `record` as version 1 of `plan_id`, with `bytes` after its own.
    fn with_appended(record: &NewEvent, plan_id: PlanId, bytes: Vec<u8>) -> StoredEvent {
        let mut payload = record.payload.clone();
        payload.extend(bytes);
        NewEvent {
            payload,
            ..record.clone()
        }
        .stored(plan_id, 1, 1)
    }

    /// `event` as the first record of `plan_id`, recorded by [`actor`] for command `command`.
    fn first_record(plan_id: PlanId, event: &Event) -> NewEvent {
        encode_event(
            plan_id,
            1,
            event,
            &actor(),
            "command",
            1_700_000_000_000_000,
            &crate::chain::GENESIS,
        )
        .0
    }

    fn date(y: i32, m: u32, d: u32) -> alliance_domain::Date {
        alliance_domain::Date::from_ymd_opt(y, m, d).unwrap()
    }

    /// A packed event's type is read from its payload field's number: every case of the
    /// schema's `payload` is named, each differently, and the names are the domain's own.
    #[test]
    fn a_packed_event_is_of_the_type_its_payload_field_names() {
        let named: Vec<&str> = (FIRST_PAYLOAD_FIELD..=51)
            .filter(|field| *field != 49)
            .map(|field| payload_type(field).unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<&str> = named.iter().copied().collect();
        assert_eq!((named.len(), distinct.len()), (31, 31));
        assert_eq!(payload_type(49), None);
        assert_eq!(payload_type(1), None);
        let decision_id = DecisionId::try_from("d1".to_owned()).unwrap();
        let element_id = ElementId::try_from("e1".to_owned()).unwrap();
        let events = [
            Event::DecisionEndorsed {
                decision_id: decision_id.clone(),
                side: Side::Rok,
            },
            Event::StepPlanned {
                decision_id: decision_id.clone(),
                step: Step::RelocateElement {
                    element_id,
                    to_base: "Osan".into(),
                    on: date(2028, 1, 1),
                },
            },
            Event::DecisionAdopted { decision_id },
            Event::HeadSigned {
                version: 9,
                head_hash: "ab".repeat(32),
            },
        ];
        for event in &events {
            assert_eq!(PackedEvent::new(event).event_type(), event.event_type());
        }
    }

    #[test]
    fn the_lean_decode_reads_every_field_but_the_skipped_ones_as_the_whole_one() {
        let plan_id = uuid::Uuid::now_v7();
        let actor = actor();
        let decision_id = DecisionId::try_from("d1".to_owned()).unwrap();
        let events = [
            Event::PlanCreated {
                plan_id,
                name: "plan".into(),
                description: "its description".into(),
                horizon_start: date(2026, 1, 1),
                horizon_end: date(2031, 12, 31),
                grants: Vec::new(),
            },
            Event::DecisionProposed {
                decision_id: decision_id.clone(),
                title: "a decision".into(),
                rationale: "its rationale".into(),
                owner_team: actor.team.clone(),
                effective_date: date(2028, 6, 1),
                required_sides: [Side::Us, Side::Rok].into(),
                supersedes: Default::default(),
            },
            Event::StepPlanned {
                decision_id: decision_id.clone(),
                step: Step::WithdrawElement {
                    element_id: ElementId::try_from("e1".to_owned()).unwrap(),
                    on: date(2029, 1, 1),
                },
            },
            Event::DecisionEndorsed {
                decision_id,
                side: Side::Rok,
            },
        ];
        let mut prev = crate::chain::GENESIS;
        for (version, event) in (1..).zip(&events) {
            let ctx = EnvelopeContext {
                plan_id,
                actor: &actor,
                command_id: "command",
                correlation_id: "correlation",
                causation_id: "cause",
                command_digest: "digest",
                record_time_micros: 1_700_000_000_123_456,
                signer: None,
            };
            let (record, hash) = encode(&ctx, version, event, &prev);
            prev = hash;
            let stored = record.stored(plan_id, version, version * 10);
            let whole = decode_event(&stored).unwrap();
            let lean = decode_event_lean(&stored).unwrap();
            assert_eq!(lean.event, *event);
            assert_eq!(lean.event, whole.event);
            assert_eq!(lean.actor_team, whole.actor_team);
            assert_eq!(lean.written_schema, whole.written_schema);
            let mut expected = whole.envelope;
            assert!(!expected.event_id.is_empty() && !expected.event_type.is_empty());
            expected.event_id.clear();
            expected.plan_id.clear();
            expected.command_id.clear();
            expected.event_type.clear();
            assert_eq!(lean.envelope, expected);
            // Packed from the record's own bytes: as the event packs anew, and read back whole.
            let packed = lean.packed.unwrap();
            assert_eq!(packed, PackedEvent::new(event));
            assert_eq!(packed.event().unwrap(), *event);
            assert_eq!(packed.event_type(), event.event_type());
            assert!(whole.packed.is_none());
        }
    }

    /// A record may carry its payload field twice, and a decode merges the two (the later
    /// one's fields over the earlier's): the packed event is the merged one, not the last
    /// field's bytes alone.
    #[test]
    fn a_payload_given_twice_is_packed_as_the_decode_merges_it() {
        let plan_id = uuid::Uuid::now_v7();
        let event = Event::DecisionEndorsed {
            decision_id: DecisionId::try_from("d1".to_owned()).unwrap(),
            side: Side::Us,
        };
        let record = first_record(plan_id, &event);
        // A second `decision_endorsed` (field 36) naming only the other side.
        let side_only = v1::EventEnvelope {
            payload: Some(v1::event_envelope::Payload::DecisionEndorsed(
                v1::DecisionEndorsed {
                    side: alliance_proto::convert::side_to_proto(Side::Rok),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
        .encode_to_vec();
        let stored = with_appended(&record, plan_id, side_only);
        let merged = Event::DecisionEndorsed {
            decision_id: DecisionId::try_from("d1".to_owned()).unwrap(),
            side: Side::Rok,
        };
        let lean = decode_event_lean(&stored).unwrap();
        assert_eq!(lean.event, merged);
        assert_eq!(decode_event(&stored).unwrap().event, merged);
        assert_eq!(lean.packed.unwrap().event().unwrap(), merged);
    }

    /// The fields the lean decode skips are still checked as the whole decode checks them: a
    /// record one reader refuses, no other reader accepts.
    #[test]
    fn a_skipped_field_the_whole_decode_refuses_is_refused_by_the_lean_one() {
        let plan_id = uuid::Uuid::now_v7();
        let event = Event::DecisionAdopted {
            decision_id: DecisionId::try_from("d1".to_owned()).unwrap(),
        };
        let record = first_record(plan_id, &event);
        // Each appended field is a later occurrence of a skipped one.
        let not_utf8 = |tag: u8| vec![tag << 3 | 2, 2, 0xc3, 0x28];
        let as_varint = |tag: u8| vec![tag << 3, 1];
        let cases = [
            ("event id not UTF-8", not_utf8(1)),
            ("plan id not UTF-8", not_utf8(2)),
            ("command id not UTF-8", not_utf8(7)),
            ("event type not UTF-8", not_utf8(10)),
            ("event id as a number", as_varint(1)),
            ("event type as a number", as_varint(10)),
            ("valid date as a number", as_varint(5)),
            ("valid date not a message", vec![5 << 3 | 2, 2, 0xff, 0xff]),
        ];
        for (case, appended) in cases {
            let stored = with_appended(&record, plan_id, appended);
            assert!(decode_event(&stored).is_err(), "{case}: the whole decode");
            assert!(
                decode_event_lean(&stored).is_err(),
                "{case}: the lean decode"
            );
        }
    }

    /// The ids and the event type a record is stored under (the log's columns, a topic's
    /// headers) are covered by neither its hash nor its signature: both decodes refuse a record
    /// stored under one its envelope does not state, naming which, where the same record
    /// stored as written decodes.
    #[test]
    fn a_record_stored_under_ids_its_envelope_does_not_state_is_refused() {
        let plan_id = uuid::Uuid::now_v7();
        let event = Event::DecisionAdopted {
            decision_id: DecisionId::try_from("d1".to_owned()).unwrap(),
        };
        let record = first_record(plan_id, &event);
        let stored = record.clone().stored(plan_id, 1, 1);
        assert_eq!(decode_event(&stored).unwrap().event, event);
        assert_eq!(decode_event_lean(&stored).unwrap().event, event);
        let other = uuid::Uuid::now_v7();
        // A later command id in the envelope is the one it states: a decode keeps the last.
        let mut later_command = vec![7 << 3 | 2, 7];
        later_command.extend_from_slice(b"another");
        let cases = [
            (
                "event id",
                StoredEvent {
                    event_id: other,
                    ..stored.clone()
                },
            ),
            (
                "plan id",
                StoredEvent {
                    plan_id: other,
                    ..stored.clone()
                },
            ),
            (
                "command id",
                StoredEvent {
                    command_id: "another".into(),
                    ..stored.clone()
                },
            ),
            (
                "event type",
                StoredEvent {
                    event_type: "DecisionProposed".into(),
                    ..stored.clone()
                },
            ),
            ("command id", with_appended(&record, plan_id, later_command)),
        ];
        for (differs, stored) in cases {
            let whole = decode_event(&stored).unwrap_err().0;
            let lean = decode_event_lean(&stored).unwrap_err().0;
            for refused in [whole, lean] {
                assert!(
                    refused.ends_with(&format!(
                        "the {differs} it is stored under is not the one its envelope states"
                    )),
                    "{differs}: {refused}"
                );
            }
        }
    }

    #[test]
    fn a_record_the_lean_decode_cannot_read_is_refused_as_the_whole_one_is() {
        let plan_id = uuid::Uuid::now_v7();
        let stored = NewEvent {
            event_id: uuid::Uuid::now_v7(),
            command_id: "command".into(),
            event_type: "PlanCreated".into(),
            record_time_micros: 0,
            payload: vec![0x0a, 0xff],
        }
        .stored(plan_id, 1, 1);
        let whole = decode_event(&stored).unwrap_err().0;
        let lean = decode_event_lean(&stored).unwrap_err().0;
        for refused in [&whole, &lean] {
            assert!(
                refused.starts_with(&format!(
                    "plan {plan_id} version 1 (position 1): undecodable envelope"
                )),
                "{refused}"
            );
        }
    }
}
