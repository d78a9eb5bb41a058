//! The hash chain of each plan's events (tamper evidence).
//!
//! A writer *seals* each envelope: it sets `prev_hash` to the hash of the plan's previous event
//! (32 zero bytes for the first), encodes the envelope, hashes exactly those bytes with SHA-256
//! and appends the `hash` field (field 14, 32 bytes) after them. The hashed bytes are thus the
//! record itself minus its last 34 bytes: verifying never depends on re-encoding a message.
//!
//! [`verify`] walks a plan's records in log order and names the first one that was altered,
//! removed, reordered or inserted.

use alliance_eventlog::StoredEvent;
use alliance_proto::v1;
use prost::Message;
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The `prev_hash` of a plan's first event.
pub const GENESIS: Hash = [0; 32];

/// Field 14, wire type 2 (length-delimited), then the length 32.
const HASH_FIELD: [u8; 2] = [(14 << 3) | 2, 32];
const SEAL_LEN: usize = HASH_FIELD.len() + 32;

/// Encodes `envelope` (whose `hash` must be empty) with `prev_hash` set to `prev`, and seals it.
/// Returns the record's bytes and its hash.
pub fn seal(mut envelope: v1::EventEnvelope, prev: &Hash) -> (Vec<u8>, Hash) {
    envelope.prev_hash = prev.to_vec();
    envelope.hash.clear();
    let mut bytes = envelope.encode_to_vec();
    let hash: Hash = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&HASH_FIELD);
    bytes.extend_from_slice(&hash);
    (bytes, hash)
}

/// The hash a sealed record carries, if it carries one where a seal goes.
pub fn carried_hash(record: &[u8]) -> Option<Hash> {
    let at = record.len().checked_sub(SEAL_LEN)?;
    let (field, hash) = record[at..].split_at(HASH_FIELD.len());
    (field == HASH_FIELD)
        .then(|| hash.try_into().ok())
        .flatten()
}

/// Whether a record's content hashes to the hash it carries.
pub fn intact(record: &[u8]) -> Option<Hash> {
    let hash = carried_hash(record)?;
    let body = &record[..record.len() - SEAL_LEN];
    (<Hash>::from(Sha256::digest(body)) == hash).then_some(hash)
}

/// A chain that holds: how many events, and the hash of the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub events: u64,
    pub head: Hash,
}

/// Where and how a chain breaks: the first record (in log order) that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at version {version} (log position {position}): {detail}")]
pub struct ChainBreak {
    pub kind: BreakKind,
    /// The version the log's index gives the record.
    pub version: u64,
    pub position: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The record's content does not match its hash, or it cannot be read.
    Altered,
    /// One or more events are missing before this record.
    Missing,
    /// The record is not where its version puts it, or its link to the previous event does not
    /// hold: events were reordered, or a record was inserted.
    OutOfPlace,
    /// The record carries no seal.
    Unsealed,
}

impl BreakKind {
    /// The stable name a client sees (`ChainBreak.kind`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Altered => "altered",
            Self::Missing => "missing",
            Self::OutOfPlace => "out_of_place",
            Self::Unsealed => "unsealed",
        }
    }
}

impl std::fmt::Display for BreakKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code().replace('_', " "))
    }
}

/// Checks one plan's chain, records in log order, as they come.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_version: u64,
    prev: Hash,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_version: 1,
            prev: GENESIS,
        }
    }
}

impl Verifier {
    /// Checks the next record of the plan.
    pub fn check(&mut self, record: &StoredEvent) -> Result<(), ChainBreak> {
        let broken = |kind, detail: String| ChainBreak {
            kind,
            version: record.version,
            position: record.position,
            detail,
        };
        if carried_hash(&record.payload).is_none() {
            return Err(broken(
                BreakKind::Unsealed,
                "the record carries no hash".into(),
            ));
        }
        let hash = intact(&record.payload).ok_or_else(|| {
            broken(
                BreakKind::Altered,
                "its content does not match the hash it carries".into(),
            )
        })?;
        let envelope = v1::EventEnvelope::decode(record.payload.as_slice())
            .map_err(|e| broken(BreakKind::Altered, format!("it does not decode: {e}")))?;
        let version = envelope.plan_version;
        if version != record.version {
            return Err(broken(
                BreakKind::OutOfPlace,
                format!("the record holds version {version}"),
            ));
        }
        if version > self.next_version {
            return Err(broken(
                BreakKind::Missing,
                format!(
                    "versions {}..{} are not in the log",
                    self.next_version,
                    version - 1
                ),
            ));
        }
        if version < self.next_version {
            return Err(broken(
                BreakKind::OutOfPlace,
                format!("version {version} was already read: an inserted or repeated record"),
            ));
        }
        if envelope.prev_hash != self.prev {
            return Err(broken(
                BreakKind::OutOfPlace,
                "its link to the previous event does not hold".into(),
            ));
        }
        self.prev = hash;
        self.next_version += 1;
        Ok(())
    }

    /// The chain so far.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            events: self.next_version - 1,
            head: self.prev,
        }
    }
}

/// Checks a whole chain.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<ChainHead, ChainBreak> {
    let mut verifier = Verifier::default();
    for record in records {
        verifier.check(record)?;
    }
    Ok(verifier.head())
}

/// Lower-case hex of a hash or a record.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alliance_domain::{Actor, Event, Side, TeamId};

    /// Four sealed records of one plan, as a log would hold them.
    fn chain() -> Vec<StoredEvent> {
        let plan_id = uuid::Uuid::now_v7();
        let actor = Actor {
            team: TeamId::parse("us-force-planning").unwrap(),
            user: "planner".into(),
            side: Some(Side::Us),
        };
        let mut prev = GENESIS;
        (1..=4u64)
            .map(|version| {
                let event = Event::PlanCreated {
                    plan_id,
                    name: format!("plan {version}"),
                    description: String::new(),
                    horizon_start: alliance_domain::Date::from_ymd_opt(2020, 1, 1).unwrap(),
                    horizon_end: alliance_domain::Date::from_ymd_opt(2035, 1, 1).unwrap(),
                    grants: Vec::new(),
                };
                let (record, hash) = crate::envelope::encode_event(
                    plan_id,
                    version,
                    &event,
                    &actor,
                    &format!("c{version}"),
                    1_700_000_000_000_000,
                    &prev,
                );
                prev = hash;
                record.stored(plan_id, version, version * 10)
            })
            .collect()
    }

    fn broken(records: &[StoredEvent]) -> (BreakKind, u64, u64) {
        let at = verify(records).expect_err("the chain should break");
        (at.kind, at.version, at.position)
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let records = chain();
        let head = verify(&records).unwrap();
        assert_eq!(head.events, 4);
        assert_eq!(Some(head.head), carried_hash(&records[3].payload));
        let envelope = v1::EventEnvelope::decode(records[2].payload.as_slice()).unwrap();
        assert_eq!(
            Some(envelope.prev_hash.as_slice().try_into().unwrap()),
            carried_hash(&records[1].payload)
        );
        assert_eq!(
            envelope.hash,
            carried_hash(&records[2].payload).unwrap().to_vec()
        );
    }

    #[test]
    fn every_kind_of_tampering_is_found_where_it_happened() {
        let mut altered = chain();
        let middle = altered[2].payload.len() / 2;
        altered[2].payload[middle] ^= 1;
        assert_eq!(broken(&altered), (BreakKind::Altered, 3, 30));

        let mut removed = chain();
        removed.remove(1);
        assert_eq!(broken(&removed), (BreakKind::Missing, 3, 30));

        // Two records' contents swapped in place (the index keeps its versions).
        let mut swapped = chain();
        let (a, b) = (swapped[1].payload.clone(), swapped[2].payload.clone());
        swapped[1].payload = b;
        swapped[2].payload = a;
        assert_eq!(broken(&swapped), (BreakKind::OutOfPlace, 2, 20));

        // A copy of version 2 appended after version 4.
        let mut inserted = chain();
        let mut copy = inserted[1].clone();
        copy.position = 50;
        inserted.push(copy);
        assert_eq!(broken(&inserted), (BreakKind::OutOfPlace, 2, 50));

        // A record rewritten and resealed by someone who recomputed its own hash: the next
        // event's link no longer holds.
        let mut resealed = chain();
        let mut envelope = v1::EventEnvelope::decode(resealed[1].payload.as_slice()).unwrap();
        envelope.command_id = "forged".into();
        let prev: Hash = envelope.prev_hash.as_slice().try_into().unwrap();
        resealed[1].payload = seal(envelope, &prev).0;
        assert_eq!(broken(&resealed), (BreakKind::OutOfPlace, 3, 30));

        let mut unsealed = chain();
        let len = unsealed[0].payload.len();
        unsealed[0].payload.truncate(len - SEAL_LEN);
        assert_eq!(broken(&unsealed), (BreakKind::Unsealed, 1, 10));
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&GENESIS).len(), 64);
    }
}
