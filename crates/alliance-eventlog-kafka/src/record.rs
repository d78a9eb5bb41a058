//! One event as one Kafka record: the plan id as key, the envelope as value, and the CloudEvents
//! Kafka binding as headers, so other systems can consume the topic directly.

use alliance_eventlog::{NewEvent, PlanId, StoredEvent, TopicOffset, Version};
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

/// CloudEvents attribute names (Kafka binding: `ce_` prefix) and our extensions.
const SPECVERSION: &str = "ce_specversion";
const ID: &str = "ce_id";
const SOURCE: &str = "ce_source";
const TYPE: &str = "ce_type";
const TIME: &str = "ce_time";
const PLAN_VERSION: &str = "ce_planversion";
const COMMAND_ID: &str = "ce_commandid";
const RECORD_TIME_MICROS: &str = "ce_recordtimemicros";
const CONTENT_TYPE: &str = "content-type";
const TRACEPARENT: &str = "traceparent";
/// The topic's partition count the record was written under: plans map to partitions by it,
/// so a topic whose count changed since is refused (`KafkaLog::check_partitions`).
const PARTITIONS: &str = "alliance_partitions";

/// Prefix of `ce_type`: the event type's protobuf message, fully qualified.
const TYPE_PREFIX: &str = "alliance.v1.";

/// The headers a stored event is read from.
const WANTED: [&str; 6] = [
    ID,
    TYPE,
    PLAN_VERSION,
    COMMAND_ID,
    RECORD_TIME_MICROS,
    TRACEPARENT,
];

/// Kafka's default partitioner (murmur2 of the key bytes, as the Java clients compute it), so
/// every client agrees where a plan lives.
pub fn partition_of(plan_id: PlanId, partitions: u32) -> i32 {
    let hash = murmur2(plan_id.to_string().as_bytes()) & 0x7fff_ffff;
    i32::try_from(hash % partitions.max(1)).unwrap_or(0)
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The headers of one event at `version` of `plan_id`.
pub fn headers(
    plan_id: PlanId,
    version: Version,
    event: &NewEvent,
    traceparent: Option<&str>,
    partitions: u32,
) -> OwnedHeaders {
    let time = DateTime::<Utc>::from_timestamp_micros(event.record_time_micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let values = [
        (SPECVERSION, "1.0".to_owned()),
        (ID, event.event_id.to_string()),
        (SOURCE, format!("/alliance/plans/{plan_id}")),
        (TYPE, format!("{TYPE_PREFIX}{}", event.event_type)),
        (TIME, time),
        (CONTENT_TYPE, "application/protobuf".to_owned()),
        (PLAN_VERSION, version.to_string()),
        (COMMAND_ID, event.command_id.clone()),
        (RECORD_TIME_MICROS, event.record_time_micros.to_string()),
        (PARTITIONS, partitions.to_string()),
    ];
    let traced = traceparent.map(|value| (TRACEPARENT, value));
    values
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .chain(traced)
        .fold(
            OwnedHeaders::new_with_capacity(values.len() + 1),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        )
}

#[derive(Debug, thiserror::Error)]
#[error("malformed record at partition {partition} offset {offset}: {reason}")]
pub struct MalformedRecord {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// The partition count a record was written under (none on records written before it was
/// recorded).
pub fn written_with_partitions<M: Message>(message: &M) -> Option<u32> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == PARTITIONS)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// Reads one record back into a stored event at `position`.
pub fn stored_event<M: Message>(
    message: &M,
    position: u64,
) -> Result<StoredEvent, MalformedRecord> {
    let bad = |reason: String| MalformedRecord {
        partition: message.partition(),
        offset: message.offset(),
        reason,
    };
    // The headers read in one pass (each lookup by name would walk them through the client
    // again): the first value of each name this reads, if it is text.
    let mut found: [Option<Option<&str>>; WANTED.len()] = [None; WANTED.len()];
    for h in message
        .headers()
        .ok_or_else(|| bad("no headers".into()))?
        .iter()
    {
        if let Some(at) = WANTED.iter().position(|name| *name == h.key)
            && found[at].is_none()
        {
            found[at] = Some(h.value.and_then(|v| std::str::from_utf8(v).ok()));
        }
    }
    let header = |name: &str| -> Result<&str, MalformedRecord> {
        WANTED
            .iter()
            .position(|wanted| *wanted == name)
            .and_then(|at| found[at].flatten())
            .ok_or_else(|| bad(format!("header {name} missing")))
    };
    let key = message.key().ok_or_else(|| bad("no key".into()))?;
    let plan_id = std::str::from_utf8(key)
        .ok()
        .and_then(|k| PlanId::parse_str(k).ok())
        .ok_or_else(|| bad("key is not a plan id".into()))?;
    let event_type = header(TYPE)?;
    Ok(StoredEvent {
        position,
        plan_id,
        version: header(PLAN_VERSION)?
            .parse()
            .map_err(|_| bad("bad plan version".into()))?,
        event_id: uuid::Uuid::parse_str(header(ID)?).map_err(|_| bad("bad event id".into()))?,
        command_id: header(COMMAND_ID)?.to_owned(),
        event_type: event_type
            .strip_prefix(TYPE_PREFIX)
            .unwrap_or(event_type)
            .to_owned(),
        record_time_micros: header(RECORD_TIME_MICROS)?
            .parse()
            .map_err(|_| bad("bad record time".into()))?,
        payload: message.payload().unwrap_or_default().to_vec(),
        origin: Some(TopicOffset {
            partition: message.partition(),
            offset: message.offset(),
        }),
        trace_context: header(TRACEPARENT).ok().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Reference values of org.apache.kafka.common.utils.Utils.murmur2.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }

    fn message(headers: OwnedHeaders, plan_id: PlanId) -> rdkafka::message::OwnedMessage {
        rdkafka::message::OwnedMessage::new(
            Some(b"payload".to_vec()),
            Some(plan_id.to_string().into_bytes()),
            "topic".into(),
            rdkafka::Timestamp::NotAvailable,
            3,
            41,
            Some(headers),
        )
    }

    fn event() -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::now_v7(),
            command_id: "command-1".into(),
            event_type: "ForceElementRegistered".into(),
            record_time_micros: 1_780_000_000_000_001,
            payload: b"payload".to_vec(),
        }
    }

    /// The headers of `event` without `dropped`, and with `extra` after them.
    fn headers_without(dropped: &str, extra: &[(&str, &str)]) -> (PlanId, NewEvent, OwnedHeaders) {
        let plan_id = uuid::Uuid::now_v7();
        let event = event();
        let written = headers(plan_id, 7, &event, Some("00-trace-span-01"), 8);
        let kept = written
            .iter()
            .filter(|h| h.key != dropped)
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)));
        let all: Vec<_> = kept
            .chain(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Some(v.as_bytes().to_vec()))),
            )
            .collect();
        let headers = all.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key: key.as_str(),
                value: value.as_deref(),
            })
        });
        (plan_id, event, headers)
    }

    #[test]
    fn a_record_reads_back_as_the_event_written() {
        let (plan_id, event, headers) = headers_without("", &[]);
        let stored = stored_event(&message(headers, plan_id), 12).unwrap();
        assert_eq!(stored.position, 12);
        assert_eq!(stored.plan_id, plan_id);
        assert_eq!(stored.version, 7);
        assert_eq!(stored.event_id, event.event_id);
        assert_eq!(stored.command_id, "command-1");
        assert_eq!(stored.event_type, "ForceElementRegistered");
        assert_eq!(stored.record_time_micros, event.record_time_micros);
        assert_eq!(stored.payload, b"payload");
        assert_eq!(stored.trace_context.as_deref(), Some("00-trace-span-01"));
        assert_eq!(
            stored.origin,
            Some(TopicOffset {
                partition: 3,
                offset: 41
            })
        );
    }

    #[test]
    fn a_record_missing_a_header_is_malformed_and_named_so() {
        for name in [ID, TYPE, PLAN_VERSION, COMMAND_ID, RECORD_TIME_MICROS] {
            let (plan_id, _, headers) = headers_without(name, &[]);
            let malformed = stored_event(&message(headers, plan_id), 1).unwrap_err();
            assert_eq!(malformed.reason, format!("header {name} missing"));
            assert_eq!((malformed.partition, malformed.offset), (3, 41));
        }
        // A trace context is optional.
        let (plan_id, _, headers) = headers_without(TRACEPARENT, &[]);
        let stored = stored_event(&message(headers, plan_id), 1).unwrap();
        assert_eq!(stored.trace_context, None);
    }

    #[test]
    fn a_header_repeated_later_does_not_replace_the_first() {
        let (plan_id, _, headers) =
            headers_without("", &[(COMMAND_ID, "smuggled"), (PLAN_VERSION, "99")]);
        let stored = stored_event(&message(headers, plan_id), 1).unwrap();
        assert_eq!(stored.command_id, "command-1");
        assert_eq!(stored.version, 7);
    }
}
