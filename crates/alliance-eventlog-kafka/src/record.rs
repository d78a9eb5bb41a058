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
    let header = |name: &str| -> Result<String, MalformedRecord> {
        let headers = message.headers().ok_or_else(|| bad("no headers".into()))?;
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
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
        event_id: uuid::Uuid::parse_str(&header(ID)?).map_err(|_| bad("bad event id".into()))?,
        command_id: header(COMMAND_ID)?,
        event_type: event_type
            .strip_prefix(TYPE_PREFIX)
            .unwrap_or(&event_type)
            .to_owned(),
        record_time_micros: header(RECORD_TIME_MICROS)?
            .parse()
            .map_err(|_| bad("bad record time".into()))?,
        payload: message.payload().unwrap_or_default().to_vec(),
        origin: Some(TopicOffset {
            partition: message.partition(),
            offset: message.offset(),
        }),
        trace_context: header(TRACEPARENT).ok(),
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
}
