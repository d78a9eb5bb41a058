//! The hash chain of each plan's events (tamper evidence), signed by its writer.
//!
//! A writer *seals* each envelope: it sets `prev_hash` to the hash of the plan's previous event
//! (32 zero bytes for the first), encodes the envelope, hashes exactly those bytes with SHA-256
//! and appends the `hash` field (field 14, 32 bytes) after them. A writer holding a key then
//! *signs* the hash ([`crate::signing`]) and appends two more fields: `signing_key_id` (field
//! 15, 8 bytes) and `signature` (field 16, 64 bytes). A record is thus
//!
//! ```text
//! body (the envelope, without fields 14-16) | 0x72 0x20 hash | 0x7a 0x08 key id | 0x82 0x01 0x40 signature
//! ```
//!
//! with the last two parts (77 bytes) only on signed records. The hashed bytes are the record
//! minus its seal (the last 34 bytes of an unsigned record, the last 111 of a signed one), and
//! the signature covers the hash: verifying never depends on re-encoding a message, and records
//! sealed before signing existed verify as they are.
//!
//! [`Verifier`] walks a plan's records in log order and names the first one that was altered,
//! removed, reordered or inserted, and, given the trusted keys, the first whose signature is
//! missing (after the plan's first signed record), wrong, by an unknown key, or by a key outside
//! its validity at the record's time.

use std::sync::Arc;

use alliance_eventlog::StoredEvent;
use alliance_proto::v1;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::signing::{
    KEY_ID_LEN, KeyId, RECORD_CONTEXT, SIGNATURE_LEN, SignatureProblem, Signer, TrustedKeys,
};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The `prev_hash` of a plan's first event.
pub const GENESIS: Hash = [0; 32];

/// Field 14, wire type 2 (length-delimited), then the length 32.
const HASH_FIELD: [u8; 2] = [(14 << 3) | 2, 32];
const SEAL_LEN: usize = HASH_FIELD.len() + 32;
/// Field 15 (`signing_key_id`), wire type 2, then the length 8.
const KEY_ID_FIELD: [u8; 2] = [(15 << 3) | 2, KEY_ID_LEN as u8];
/// Field 16 (`signature`), wire type 2 (a two-byte tag: 16 << 3 | 2 = 130), then the length 64.
const SIGNATURE_FIELD: [u8; 3] = [0x82, 0x01, SIGNATURE_LEN as u8];
const SIGNED_LEN: usize = KEY_ID_FIELD.len() + KEY_ID_LEN + SIGNATURE_FIELD.len() + SIGNATURE_LEN;

/// Encodes `envelope` (whose `hash` and signature must be empty) with `prev_hash` set to
/// `prev`, and seals it. Returns the record's bytes and its hash.
pub fn seal(mut envelope: v1::EventEnvelope, prev: &Hash) -> (Vec<u8>, Hash) {
    envelope.prev_hash = prev.to_vec();
    envelope.hash.clear();
    envelope.signing_key_id.clear();
    envelope.signature.clear();
    let mut bytes = envelope.encode_to_vec();
    let hash: Hash = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&HASH_FIELD);
    bytes.extend_from_slice(&hash);
    (bytes, hash)
}

/// [`seal`], then, with a `signer`, signs the hash and appends the key id and the signature.
pub fn seal_signed(
    envelope: v1::EventEnvelope,
    prev: &Hash,
    signer: Option<&Signer>,
) -> (Vec<u8>, Hash) {
    let (mut bytes, hash) = seal(envelope, prev);
    if let Some(signer) = signer {
        bytes.reserve_exact(SIGNED_LEN);
        bytes.extend_from_slice(&KEY_ID_FIELD);
        bytes.extend_from_slice(&signer.id().0);
        bytes.extend_from_slice(&SIGNATURE_FIELD);
        bytes.extend_from_slice(&signer.sign_record(&hash));
    }
    (bytes, hash)
}

/// The parts of a sealed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The hashed bytes.
    pub body: &'a [u8],
    pub hash: Hash,
    /// The key id and signature, on a signed record.
    pub signature: Option<(KeyId, [u8; SIGNATURE_LEN])>,
}

/// Splits a record into its hashed body, its hash and its signature, if it carries a seal where
/// a seal goes.
pub fn sealed(record: &[u8]) -> Option<Sealed<'_>> {
    let signature = record
        .len()
        .checked_sub(SIGNED_LEN)
        .and_then(|at| signature_at(&record[at..]));
    let end = record.len() - signature.map_or(0, |_| SIGNED_LEN);
    let at = end.checked_sub(SEAL_LEN)?;
    let (field, hash) = record[at..end].split_at(HASH_FIELD.len());
    if field != HASH_FIELD {
        return None;
    }
    Some(Sealed {
        body: &record[..at],
        hash: hash.try_into().ok()?,
        signature,
    })
}

/// The key id and signature of a record's last [`SIGNED_LEN`] bytes, if they are those fields.
fn signature_at(tail: &[u8]) -> Option<(KeyId, [u8; SIGNATURE_LEN])> {
    let (key_field, rest) = tail.split_at_checked(KEY_ID_FIELD.len())?;
    let (key_id, rest) = rest.split_at_checked(KEY_ID_LEN)?;
    let (signature_field, signature) = rest.split_at_checked(SIGNATURE_FIELD.len())?;
    (key_field == KEY_ID_FIELD && signature_field == SIGNATURE_FIELD).then_some(())?;
    Some((KeyId(key_id.try_into().ok()?), signature.try_into().ok()?))
}

/// The hash a sealed record carries, if it carries one where a seal goes.
pub fn carried_hash(record: &[u8]) -> Option<Hash> {
    sealed(record).map(|s| s.hash)
}

/// Whether a record's content hashes to the hash it carries.
pub fn intact(record: &[u8]) -> Option<Hash> {
    let sealed = sealed(record)?;
    (<Hash>::from(Sha256::digest(sealed.body)) == sealed.hash).then_some(sealed.hash)
}

/// A chain that holds: how many events, and the hash of the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub events: u64,
    pub head: Hash,
    /// The last version of the unsigned records the chain starts with (sealed before its writer
    /// signed): 0 when its first record is signed, `events` when none is.
    pub unsigned_through: u64,
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
    /// The record carries no signature, although an earlier record of the plan does.
    Unsigned,
    /// The record's signature does not verify under the key it names.
    BadSignature,
    /// The record is signed by a key that is not trusted.
    UnknownKey,
    /// The record is signed by a trusted key that was not in force at the record's time.
    KeyNotValid,
    /// The log ends before the version of a head kept earlier: its last records were removed.
    Truncated,
    /// The record at a kept head's version does not have the kept hash: the history up to it
    /// was rewritten.
    Diverged,
}

impl BreakKind {
    /// The stable name a client sees (`ChainBreak.kind`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Altered => "altered",
            Self::Missing => "missing",
            Self::OutOfPlace => "out_of_place",
            Self::Unsealed => "unsealed",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::KeyNotValid => "key_not_valid",
            Self::Truncated => "truncated",
            Self::Diverged => "diverged",
        }
    }
}

impl std::fmt::Display for BreakKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code().replace('_', " "))
    }
}

/// Checks one plan's chain, records in log order, as they come.
///
/// [`Verifier::default`] checks the chain and that no unsigned record follows a signed one, but
/// no signature: that takes [`Verifier::trusting`] the writers' keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_version: u64,
    prev: Hash,
    /// The last version before the first signed record, while none was seen.
    unsigned_through: u64,
    signed: bool,
    trusted: Option<Arc<TrustedKeys>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_version: 1,
            prev: GENESIS,
            unsigned_through: 0,
            signed: false,
            trusted: None,
        }
    }
}

impl Verifier {
    /// A verifier that also checks each signature against `trusted`.
    pub fn trusting(trusted: Arc<TrustedKeys>) -> Self {
        Self {
            trusted: Some(trusted),
            ..Self::default()
        }
    }

    /// Checks the next record of the plan.
    pub fn check(&mut self, record: &StoredEvent) -> Result<(), ChainBreak> {
        let broken = |kind, detail: String| ChainBreak {
            kind,
            version: record.version,
            position: record.position,
            detail,
        };
        let Some(sealed) = sealed(&record.payload) else {
            return Err(broken(
                BreakKind::Unsealed,
                "the record carries no hash".into(),
            ));
        };
        if <Hash>::from(Sha256::digest(sealed.body)) != sealed.hash {
            return Err(broken(
                BreakKind::Altered,
                "its content does not match the hash it carries".into(),
            ));
        }
        let hash = sealed.hash;
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
        match sealed.signature {
            None if self.signed => {
                return Err(broken(
                    BreakKind::Unsigned,
                    format!(
                        "it carries no signature, although the plan's records are signed from \
                         version {}",
                        self.unsigned_through + 1
                    ),
                ));
            }
            None => self.unsigned_through = version,
            Some((key_id, signature)) => {
                if let Some(trusted) = &self.trusted {
                    let at = envelope.record_time.as_ref().map_or(i64::MIN, |t| {
                        t.seconds
                            .saturating_mul(1_000_000)
                            .saturating_add(i64::from(t.nanos) / 1_000)
                    });
                    trusted
                        .check(key_id, at, RECORD_CONTEXT, &hash, &signature)
                        .map_err(|problem| match problem {
                            SignatureProblem::UnknownKey => broken(
                                BreakKind::UnknownKey,
                                format!("it is signed by key {key_id}, which is not trusted"),
                            ),
                            SignatureProblem::KeyNotValid => broken(
                                BreakKind::KeyNotValid,
                                format!(
                                    "it is signed by key {key_id}, which was not in force at \
                                     its record time"
                                ),
                            ),
                            SignatureProblem::BadSignature => broken(
                                BreakKind::BadSignature,
                                format!("its signature does not verify under key {key_id}"),
                            ),
                        })?;
                }
                self.signed = true;
            }
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
            unsigned_through: self.unsigned_through,
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

    /// Re-seals `records[from..]` as a writer holding `signer` (or none) would.
    fn reseal(records: &mut [StoredEvent], from: usize, signer: Option<&Signer>) {
        let mut prev = if from == 0 {
            GENESIS
        } else {
            carried_hash(&records[from - 1].payload).unwrap()
        };
        for record in &mut records[from..] {
            let envelope = v1::EventEnvelope::decode(record.payload.as_slice()).unwrap();
            let (payload, hash) = seal_signed(envelope, &prev, signer);
            record.payload = payload;
            prev = hash;
        }
    }

    #[test]
    fn signatures_are_checked_after_the_chain_and_named_where_they_fail() {
        let writer = Signer::generate().unwrap();
        let trusted = Arc::new(TrustedKeys::new([crate::signing::TrustedKey::always(
            writer.verifying_key(),
        )]));
        let check = |records: &[StoredEvent]| {
            let mut verifier = Verifier::trusting(trusted.clone());
            for record in records {
                verifier.check(record).map_err(|b| (b.kind, b.version))?;
            }
            Ok::<_, (BreakKind, u64)>(verifier.head())
        };
        // The first two records sealed before signing, the rest signed.
        let mut signed = chain();
        reseal(&mut signed, 2, Some(&writer));
        let head = check(&signed).unwrap();
        assert_eq!((head.events, head.unsigned_through), (4, 2));
        assert_eq!(
            sealed(&signed[3].payload).unwrap().signature.unwrap().0,
            writer.id()
        );
        // The hash chain alone holds, and the decoded envelope names the key.
        assert_eq!(verify(&signed).unwrap(), head);
        let envelope = v1::EventEnvelope::decode(signed[2].payload.as_slice()).unwrap();
        assert_eq!(envelope.signing_key_id, writer.id().0.to_vec());
        assert_eq!(envelope.signature.len(), SIGNATURE_LEN);

        let mut stripped = signed.clone();
        reseal(&mut stripped, 3, None);
        assert_eq!(check(&stripped), Err((BreakKind::Unsigned, 4)));

        let mut forged = signed.clone();
        reseal(&mut forged, 3, Some(&Signer::generate().unwrap()));
        assert_eq!(check(&forged), Err((BreakKind::UnknownKey, 4)));

        let mut wrong = signed.clone();
        let last = wrong[3].payload.len() - 1;
        wrong[3].payload[last] ^= 1;
        assert_eq!(check(&wrong), Err((BreakKind::BadSignature, 4)));
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&GENESIS).len(), 64);
    }
}
