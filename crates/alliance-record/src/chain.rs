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
//!
//! A record's hash covers its link to the previous record, so a signature over it vouches for
//! every record before it as well. [`Verifier::trusting`] relies on that: it checks each
//! record's hash, link, key id and the key's validity at once, and the signatures that cover the
//! others (the last record of each run signed by one key, and at least one in every
//! [`COVER_SPAN`] records); when one of those does not verify, or the chain breaks, it checks
//! every signature since the last one that held, to name the first that does not.

use std::sync::Arc;

use alliance_eventlog::{ChainView, StoredEvent, TopicOffset};
use alliance_proto::v1;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::signing::{
    KEY_ID_LEN, KeyId, RECORD_CONTEXT, SIGNATURE_LEN, SignatureProblem, Signer, TrustedKeys,
};
use crate::witness::WitnessKeys;
use alliance_domain::Side;

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
    /// Where the record sits on a Kafka topic.
    pub origin: Option<TopicOffset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The record's content does not match its hash, or it cannot be read.
    Altered,
    /// One or more events are missing before this record.
    Missing,
    /// The record is not where its version puts it, its link to the previous event does not
    /// hold, or (a plan's first) it names another plan: events were reordered, a record was
    /// inserted, or a plan's records were stored under another's id.
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
    /// was rewritten. Also a `HeadSigned` event naming a head the history does not have.
    Diverged,
    /// A `HeadWitnessed` event names a head the history no longer has: the history up to the
    /// witnessed version was rewritten after it was witnessed.
    WitnessDiverged,
    /// A witness's signature does not verify under its key, or the key was not in force.
    BadWitness,
    /// A witness's key is not among the verifier's witness keys.
    UnknownWitness,
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
            Self::WitnessDiverged => "witness_diverged",
            Self::BadWitness => "bad_witness",
            Self::UnknownWitness => "unknown_witness",
        }
    }
}

impl std::fmt::Display for BreakKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code().replace('_', " "))
    }
}

/// At least one signature in this many signed records is checked as it comes, so a signature
/// that does not hold is found within this span and the signatures waiting stay few.
pub const COVER_SPAN: usize = 1024;

/// Checks one plan's chain, records in log order, as they come.
///
/// [`Verifier::default`] checks the chain and that no unsigned record follows a signed one, but
/// no signature: that takes [`Verifier::trusting`] the writers' keys, whose verdict on the
/// signatures still waiting is given by [`Verifier::finish`].
#[derive(Debug, Clone)]
pub struct Verifier {
    next_version: u64,
    prev: Hash,
    /// The last version before the first signed record, while none was seen.
    unsigned_through: u64,
    signed: bool,
    trusted: Option<Arc<TrustedKeys>>,
    /// Check every signature as it comes, instead of those that cover the others.
    every: bool,
    /// Signed records whose signatures are not checked yet, in log order, all by one key: the
    /// last one's signature covers the others.
    waiting: Vec<Waiting>,
    /// The witness keys witnesses are judged against; their signatures are not judged without.
    witnesses: Option<Arc<WitnessKeys>>,
    /// The hash of each version read, for the heads events vouch for.
    hashes: Vec<Hash>,
    /// The heads vouched for so far.
    vouched: Vec<Vouched>,
}

/// Who vouched for a head recorded in the plan's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VouchedBy {
    /// A witness's signature (`HeadWitnessed`).
    Witness,
    /// The writer's signature on the `HeadSigned` event.
    Writer,
}

/// A head vouched for in the plan's history, as verification found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The version of the event that records it.
    pub recorded_at: u64,
    pub version: u64,
    pub head: Hash,
    pub by: VouchedBy,
    /// The signing key (none on an unsigned `HeadSigned` event).
    pub key_id: Option<KeyId>,
    /// The side a witness key answers for, when the witness keys are known.
    pub side: Option<Side>,
    /// team/user who recorded it.
    pub actor: String,
    /// Its signature was judged and holds (a witness's against the witness keys, the writer's
    /// against the trusted keys).
    pub verified: bool,
}

impl Vouched {
    /// As `VerifyPlan` reports it.
    pub fn to_proto(&self) -> v1::VouchedHead {
        v1::VouchedHead {
            recorded_at: self.recorded_at,
            version: self.version,
            head_hash: hex(&self.head),
            by: match self.by {
                VouchedBy::Witness => "witness",
                VouchedBy::Writer => "writer",
            }
            .into(),
            key_id: self.key_id.map(|k| k.to_string()).unwrap_or_default(),
            side: match self.side {
                Some(Side::Us) => "us",
                Some(Side::Rok) => "rok",
                None => "",
            }
            .into(),
            actor: self.actor.clone(),
            verified: self.verified,
        }
    }
}

/// A signed record whose signature is not checked yet.
#[derive(Debug, Clone)]
struct Waiting {
    key_id: KeyId,
    micros: i64,
    hash: Hash,
    signature: [u8; SIGNATURE_LEN],
    version: u64,
    position: u64,
    origin: Option<TopicOffset>,
    /// The chain before it: what was verified if its signature does not hold.
    before: (u64, Hash, u64),
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_version: 1,
            prev: GENESIS,
            unsigned_through: 0,
            signed: false,
            trusted: None,
            every: false,
            waiting: Vec::new(),
            witnesses: None,
            hashes: Vec::new(),
            vouched: Vec::new(),
        }
    }
}

impl Verifier {
    /// A verifier that also checks the signatures against `trusted`: each record's key and its
    /// validity at once, and the signatures that cover the others through the chain.
    pub fn trusting(trusted: Arc<TrustedKeys>) -> Self {
        Self {
            trusted: Some(trusted),
            ..Self::default()
        }
    }

    /// Judges the witnesses' signatures of witnessed heads against `witnesses` (without them,
    /// the witnessed heads are still checked against the history, their signatures are not).
    pub fn with_witnesses(mut self, witnesses: Option<Arc<WitnessKeys>>) -> Self {
        self.witnesses = witnesses;
        self
    }

    /// The heads vouched for in the history read so far.
    pub fn vouched(&self) -> &[Vouched] {
        &self.vouched
    }

    /// Checks every record's signature as it comes (what a reader that applies records one by
    /// one does), instead of those that cover the others.
    pub fn every_signature(mut self) -> Self {
        self.every = true;
        self
    }

    /// Checks the next record of the plan.
    pub fn check<'a>(&mut self, record: impl Into<ChainView<'a>>) -> Result<(), ChainBreak> {
        match self.check_record(record.into()) {
            Ok(()) => Ok(()),
            // A signature still waiting that does not hold comes before this record.
            Err(broken) => Err(self.settle().err().unwrap_or(broken)),
        }
    }

    fn check_record(&mut self, record: ChainView<'_>) -> Result<(), ChainBreak> {
        let broken = |kind, detail: String| ChainBreak {
            kind,
            version: record.version,
            position: record.position,
            detail,
            origin: record.origin,
        };
        let Some(sealed) = sealed(record.payload) else {
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
        let envelope = Linked::decode(record.payload)
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
        // A plan's first record names its plan, and every later one is linked to it: one
        // stored under another plan's id (the log's column, a topic's key) is out of place.
        if version == 1
            && Named::decode(record.payload)
                .ok()
                .and_then(|named| uuid::Uuid::try_parse_ascii(&named.plan_id).ok())
                != Some(record.plan_id)
        {
            return Err(broken(
                BreakKind::OutOfPlace,
                "its envelope names another plan: a plan's records were stored under another's \
                 id"
                .into(),
            ));
        }
        if envelope.prev_hash != self.prev {
            return Err(broken(
                BreakKind::OutOfPlace,
                "its link to the previous event does not hold".into(),
            ));
        }
        let micros = envelope.record_time.as_ref().map_or(i64::MIN, |t| {
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos) / 1_000)
        });
        let vouched = self
            .vouching(record, &envelope, micros, sealed.signature.map(|s| s.0))
            .map_err(|(kind, detail)| broken(kind, detail))?;
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
                if let Some(trusted) = self.trusted.clone() {
                    let waiting = Waiting {
                        key_id,
                        micros,
                        hash,
                        signature,
                        version,
                        position: record.position,
                        origin: record.origin,
                        before: (self.next_version - 1, self.prev, self.unsigned_through),
                    };
                    if self.every {
                        judge(&trusted, &waiting)?;
                    } else {
                        // The key and its validity need no signature checked.
                        trusted
                            .admits(key_id, micros)
                            .map_err(|problem| problem_break(&waiting, problem))?;
                        // A run of one key ends: its last signature covers the run.
                        if self.waiting.last().is_some_and(|w| w.key_id != key_id) {
                            self.settle()?;
                        }
                        self.waiting.push(waiting);
                        if self.waiting.len() >= COVER_SPAN {
                            self.settle()?;
                        }
                    }
                }
                self.signed = true;
            }
        }
        self.prev = hash;
        self.hashes.push(hash);
        self.vouched.extend(vouched);
        self.next_version += 1;
        Ok(())
    }

    /// The heads a `HeadWitnessed` or `HeadSigned` record vouches for, each checked against the
    /// history read so far and, a witness's, against the witness keys.
    fn vouching(
        &self,
        record: ChainView<'_>,
        linked: &Linked,
        micros: i64,
        signed_by: Option<KeyId>,
    ) -> Result<Vec<Vouched>, (BreakKind, String)> {
        if linked.head_witnessed.is_none() && linked.head_signed.is_none() {
            return Ok(Vec::new());
        }
        let actor = v1::EventEnvelope::decode(record.payload)
            .ok()
            .and_then(|e| e.actor)
            .map(|a| format!("{}/{}", a.team, a.user))
            .unwrap_or_default();
        let (version, head_hash, by) = match (&linked.head_witnessed, &linked.head_signed) {
            (Some(w), _) => (w.version, &w.head_hash, VouchedBy::Witness),
            (None, Some(s)) => (s.version, &s.head_hash, VouchedBy::Writer),
            (None, None) => return Ok(Vec::new()),
        };
        let diverged = if by == VouchedBy::Witness {
            BreakKind::WitnessDiverged
        } else {
            BreakKind::Diverged
        };
        let head: Hash = unhex(head_hash).ok_or_else(|| {
            (
                diverged,
                format!("the head it records at version {version} has no hash"),
            )
        })?;
        let held = usize::try_from(version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| self.hashes.get(i));
        let plan_id = *record.plan_id.as_bytes();
        let mut found = Vec::new();
        match by {
            VouchedBy::Writer => found.push(Vouched {
                recorded_at: record.version,
                version,
                head,
                by,
                key_id: signed_by,
                side: None,
                actor: actor.clone(),
                verified: signed_by.is_some() && self.trusted.is_some(),
            }),
            VouchedBy::Witness => {
                let witnesses = linked
                    .head_witnessed
                    .as_ref()
                    .map_or(&[][..], |w| &w.witnesses[..]);
                for (i, witness) in witnesses.iter().enumerate() {
                    let bad = |detail: String| (BreakKind::BadWitness, detail);
                    let key_id = KeyId::parse(&witness.key_id)
                        .ok_or_else(|| bad(format!("witness {i} names no key id")))?;
                    let signature: [u8; SIGNATURE_LEN] =
                        witness.signature.as_slice().try_into().map_err(|_| {
                            bad(format!(
                                "the signature of witness key {key_id} is not 64 bytes"
                            ))
                        })?;
                    let side = match &self.witnesses {
                        Some(keys) => Some(
                            keys.check(key_id, micros, (&plan_id, version, &head), &signature)
                                .map_err(|problem| match problem {
                                    SignatureProblem::UnknownKey => (
                                        BreakKind::UnknownWitness,
                                        format!(
                                            "it records a witness by key {key_id}, which is \
                                             not a witness key"
                                        ),
                                    ),
                                    SignatureProblem::KeyNotValid => bad(format!(
                                        "witness key {key_id} was not in force at its record time"
                                    )),
                                    SignatureProblem::BadSignature => bad(format!(
                                        "the signature of witness key {key_id} does not verify \
                                         over the head at version {version}"
                                    )),
                                })?,
                        ),
                        None => None,
                    };
                    found.push(Vouched {
                        recorded_at: record.version,
                        version,
                        head,
                        by,
                        key_id: Some(key_id),
                        side,
                        actor: actor.clone(),
                        verified: side.is_some(),
                    });
                }
            }
        }
        match held {
            Some(held) if *held == head => Ok(found),
            Some(held) => Err((
                diverged,
                format!(
                    "it records the head at version {version} with hash {}, {}, but this \
                     history's record at version {version} has hash {}: the history up to it \
                     was rewritten after that",
                    hex(&head),
                    vouchers(&found, &actor),
                    hex(held)
                ),
            )),
            None => Err((
                diverged,
                format!(
                    "it records the head at version {version}, {}, which is not before it",
                    vouchers(&found, &actor)
                ),
            )),
        }
    }

    /// Judges the signatures waiting: the last one's covers the others; when it does not hold,
    /// each is checked in turn and the first that does not is named, the chain going back to
    /// the record before it.
    pub fn settle(&mut self) -> Result<(), ChainBreak> {
        let Some(trusted) = self.trusted.clone() else {
            return Ok(());
        };
        let waiting = std::mem::take(&mut self.waiting);
        let Some(last) = waiting.last() else {
            return Ok(());
        };
        if judge(&trusted, last).is_ok() {
            return Ok(());
        }
        let failed = waiting
            .iter()
            .find_map(|w| judge(&trusted, w).err().map(|broken| (w, broken)));
        match failed {
            Some((w, broken)) => {
                (self.next_version, self.prev, self.unsigned_through) =
                    (w.before.0 + 1, w.before.1, w.before.2);
                self.hashes
                    .truncate(usize::try_from(w.before.0).unwrap_or(usize::MAX));
                self.vouched.retain(|v| v.recorded_at < w.version);
                Err(broken)
            }
            None => Ok(()),
        }
    }

    /// The chain so far, its signatures judged: the head it reaches, or the first record that
    /// does not hold.
    pub fn finish(&mut self) -> Result<ChainHead, ChainBreak> {
        self.settle()?;
        Ok(self.head())
    }

    /// The chain as read so far (signatures still waiting are judged by [`Verifier::finish`]).
    pub fn head(&self) -> ChainHead {
        ChainHead {
            events: self.next_version - 1,
            head: self.prev,
            unsigned_through: self.unsigned_through,
        }
    }
}

/// The plan an envelope names (a string field, read as its bytes: a UUID's text); decoding it
/// skips the rest.
#[derive(Clone, PartialEq, prost::Message)]
struct Named {
    #[prost(bytes = "vec", tag = "2")]
    plan_id: Vec<u8>,
}

/// The fields of an envelope the chain needs; decoding them skips the rest.
#[derive(Clone, PartialEq, prost::Message)]
struct Linked {
    #[prost(uint64, tag = "3")]
    plan_version: u64,
    #[prost(message, optional, tag = "4")]
    record_time: Option<prost_types::Timestamp>,
    #[prost(bytes = "vec", tag = "13")]
    prev_hash: Vec<u8>,
    #[prost(message, optional, tag = "50")]
    head_witnessed: Option<v1::HeadWitnessed>,
    #[prost(message, optional, tag = "51")]
    head_signed: Option<v1::HeadSigned>,
}

/// Who vouched for a head, for a finding: the witnesses (key, side) and who recorded them.
fn vouchers(found: &[Vouched], actor: &str) -> String {
    let keys: Vec<String> = found
        .iter()
        .filter_map(|v| {
            let key = v.key_id?;
            Some(match (v.by, v.side) {
                (VouchedBy::Writer, _) => format!("writer key {key}"),
                (VouchedBy::Witness, Some(side)) => {
                    format!("witness key {key} ({})", side.name())
                }
                (VouchedBy::Witness, None) => format!("witness key {key}"),
            })
        })
        .collect();
    let by = if keys.is_empty() {
        "unsigned".to_owned()
    } else {
        keys.join(", ")
    };
    format!("vouched for by {by}, recorded by {actor}")
}

/// The 32 bytes of 64 hex digits.
fn unhex(text: &str) -> Option<Hash> {
    alliance_stdx::hex::decode_array(text)
}

/// Checks one waiting record's signature.
fn judge(trusted: &TrustedKeys, w: &Waiting) -> Result<(), ChainBreak> {
    trusted
        .check(w.key_id, w.micros, RECORD_CONTEXT, &w.hash, &w.signature)
        .map_err(|problem| problem_break(w, problem))
}

fn problem_break(w: &Waiting, problem: SignatureProblem) -> ChainBreak {
    let key_id = w.key_id;
    let (kind, detail) = match problem {
        SignatureProblem::UnknownKey => (
            BreakKind::UnknownKey,
            format!("it is signed by key {key_id}, which is not trusted"),
        ),
        SignatureProblem::KeyNotValid => (
            BreakKind::KeyNotValid,
            format!("it is signed by key {key_id}, which was not in force at its record time"),
        ),
        SignatureProblem::BadSignature => (
            BreakKind::BadSignature,
            format!("its signature does not verify under key {key_id}"),
        ),
    };
    ChainBreak {
        kind,
        version: w.version,
        position: w.position,
        detail,
        origin: w.origin,
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
    verifier.finish()
}

pub use alliance_stdx::hex::encode as hex;

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

        // A whole plan's records stored under another plan's id (the log's column): intact as
        // a chain, but every record names its own plan.
        let mut renamed = chain();
        let other = uuid::Uuid::now_v7();
        for record in &mut renamed {
            record.plan_id = other;
        }
        assert_eq!(broken(&renamed), (BreakKind::OutOfPlace, 1, 10));
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
            verifier.finish().map_err(|b| (b.kind, b.version))
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

    /// Checks `records` as [`Verifier::trusting`] `writer` (with `every` signature, or those
    /// covering the others): the head, or the first break's kind, version and the head before it.
    fn judged(
        records: &[StoredEvent],
        writer: &Signer,
        every: bool,
    ) -> Result<ChainHead, (BreakKind, u64, u64)> {
        let trusted = Arc::new(TrustedKeys::new([crate::signing::TrustedKey::always(
            writer.verifying_key(),
        )]));
        let mut verifier = Verifier::trusting(trusted);
        if every {
            verifier = verifier.every_signature();
        }
        let named = |b: ChainBreak, v: &Verifier| (b.kind, b.version, v.head().events);
        for record in records {
            if let Err(b) = verifier.check(record) {
                return Err(named(b, &verifier));
            }
        }
        verifier.finish().map_err(|b| named(b, &verifier))
    }

    /// `n` records of one plan, all signed by `writer`.
    fn signed_chain(n: u64, writer: &Signer) -> Vec<StoredEvent> {
        let mut records: Vec<StoredEvent> = (0..n.div_ceil(4))
            .flat_map(|_| chain())
            .take(usize::try_from(n).unwrap())
            .collect();
        let plan_id = records[0].plan_id;
        for (i, record) in records.iter_mut().enumerate() {
            let version = i as u64 + 1;
            let mut envelope = v1::EventEnvelope::decode(record.payload.as_slice()).unwrap();
            envelope.plan_version = version;
            envelope.plan_id = plan_id.to_string();
            record.payload = envelope.encode_to_vec();
            *record = StoredEvent {
                version,
                position: version * 10,
                plan_id,
                ..record.clone()
            };
        }
        reseal(&mut records, 0, Some(writer));
        records
    }

    #[test]
    fn a_signature_covers_the_records_before_it_and_a_rewrite_is_named_where_it_starts() {
        let writer = Signer::generate().unwrap();
        let records = signed_chain(COVER_SPAN as u64 + 600, &writer);
        let last = records.len() as u64;
        assert_eq!(judged(&records, &writer, false).map(|h| h.events), Ok(last));
        // Version 1300 rewritten, it and every later record re-sealed and given back its old
        // signature: the covering signatures fail, and the first record that does not hold is
        // named, the chain verified up to the one before it.
        let mut rewritten = records.clone();
        let at = 1300;
        let signatures: Vec<Vec<u8>> = rewritten[at - 1..]
            .iter()
            .map(|r| r.payload[r.payload.len() - SIGNED_LEN..].to_vec())
            .collect();
        let mut envelope = v1::EventEnvelope::decode(rewritten[at - 1].payload.as_slice()).unwrap();
        envelope.command_id = "rewritten".into();
        rewritten[at - 1].payload = envelope.encode_to_vec();
        reseal(&mut rewritten, at - 1, None);
        for (record, signature) in rewritten[at - 1..].iter_mut().zip(&signatures) {
            record.payload.extend_from_slice(signature);
        }
        assert_eq!(
            judged(&rewritten, &writer, false),
            Err((BreakKind::BadSignature, at as u64, at as u64 - 1))
        );
    }

    #[test]
    fn a_signature_that_does_not_hold_is_named_before_a_break_after_it() {
        let writer = Signer::generate().unwrap();
        let records = signed_chain(8, &writer);
        // Version 5 forged under the writer's key id (its signature is not the writer's), then a
        // record repeated: the forgery is named, not the repeat.
        let mut forged = records.clone();
        let mut envelope = v1::EventEnvelope::decode(forged[4].payload.as_slice()).unwrap();
        envelope.command_id = "forged".into();
        let prev = carried_hash(&forged[3].payload).unwrap();
        let (mut payload, _) = seal_signed(envelope, &prev, Some(&Signer::generate().unwrap()));
        let key_at = payload.len() - SIGNED_LEN + KEY_ID_FIELD.len();
        payload[key_at..key_at + KEY_ID_LEN].copy_from_slice(&writer.id().0);
        forged[4].payload = payload;
        let mut repeat = forged[4].clone();
        repeat.position = 55;
        forged.insert(5, repeat);
        for every in [false, true] {
            assert_eq!(
                judged(&forged, &writer, every),
                Err((BreakKind::BadSignature, 5, 4))
            );
        }
    }

    #[test]
    fn a_signature_altered_alone_on_a_record_a_later_signature_covers_is_found_only_checking_each()
    {
        let writer = Signer::generate().unwrap();
        let mut records = signed_chain(6, &writer);
        let last = records[2].payload.len() - 1;
        records[2].payload[last] ^= 1;
        // The content of version 3 is the writer's: the signature of version 6 covers it.
        assert_eq!(judged(&records, &writer, false).map(|h| h.events), Ok(6));
        assert_eq!(
            judged(&records, &writer, true),
            Err((BreakKind::BadSignature, 3, 2))
        );
        // The last record's own signature covers nothing after it: altered, it is named.
        let mut records = signed_chain(6, &writer);
        let last = records[5].payload.len() - 1;
        records[5].payload[last] ^= 1;
        assert_eq!(
            judged(&records, &writer, false),
            Err((BreakKind::BadSignature, 6, 5))
        );
    }

    /// `records` and then a `HeadWitnessed` of the head at `version`, signed by `witnesses`
    /// (their signatures given, or made), all sealed and signed by `writer`.
    fn witnessed(
        mut records: Vec<StoredEvent>,
        version: u64,
        witnesses: &[&Signer],
        writer: &Signer,
    ) -> Vec<StoredEvent> {
        let plan_id = records[0].plan_id;
        let head = carried_hash(&records[usize::try_from(version).unwrap() - 1].payload).unwrap();
        let event = alliance_domain::Event::HeadWitnessed {
            version,
            head_hash: hex(&head),
            witnesses: witnesses
                .iter()
                .map(|w| alliance_domain::HeadWitness {
                    key_id: w.id().to_string(),
                    signature: hex(&crate::witness::sign_head(
                        w,
                        plan_id.as_bytes(),
                        version,
                        &head,
                    )),
                })
                .collect(),
        };
        let actor = Actor {
            team: TeamId::parse("rok-auditors").unwrap(),
            user: "auditor".into(),
            side: Some(Side::Rok),
        };
        let next = records.len() as u64 + 1;
        let prev = carried_hash(&records.last().unwrap().payload).unwrap();
        let (record, _) = crate::envelope::encode_event(
            plan_id,
            next,
            &event,
            &actor,
            "witness",
            1_700_000_000_000_000,
            &prev,
        );
        records.push(record.stored(plan_id, next, next * 10));
        let last = records.len() - 1;
        reseal(&mut records, last, Some(writer));
        records
    }

    fn witness_keys(keys: &[(&Signer, Side)]) -> Arc<crate::witness::WitnessKeys> {
        Arc::new(crate::witness::WitnessKeys::new(keys.iter().map(
            |(signer, side)| crate::witness::WitnessKey {
                key: crate::signing::TrustedKey::always(signer.verifying_key()),
                side: *side,
            },
        )))
    }

    /// Verifies `records` trusting `writer` and judging witnesses by `witnesses`.
    fn with_witnesses(
        records: &[StoredEvent],
        writer: &Signer,
        witnesses: Option<Arc<crate::witness::WitnessKeys>>,
    ) -> Result<Vec<Vouched>, ChainBreak> {
        let trusted = Arc::new(TrustedKeys::new([crate::signing::TrustedKey::always(
            writer.verifying_key(),
        )]));
        let mut verifier = Verifier::trusting(trusted).with_witnesses(witnesses);
        for record in records {
            verifier.check(record)?;
        }
        verifier.finish()?;
        Ok(verifier.vouched().to_vec())
    }

    #[test]
    fn a_witnessed_head_is_verified_against_the_history_and_the_witness_keys() {
        let (writer, rok, us, stranger) = (
            Signer::generate().unwrap(),
            Signer::generate().unwrap(),
            Signer::generate().unwrap(),
            Signer::generate().unwrap(),
        );
        let keys = witness_keys(&[(&rok, Side::Rok), (&us, Side::Us)]);
        let records = witnessed(signed_chain(4, &writer), 3, &[&rok, &us], &writer);
        let vouched = with_witnesses(&records, &writer, Some(keys.clone())).unwrap();
        let seen: Vec<_> = vouched
            .iter()
            .map(|v| (v.recorded_at, v.version, v.by, v.key_id, v.side, v.verified))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    5,
                    3,
                    VouchedBy::Witness,
                    Some(rok.id()),
                    Some(Side::Rok),
                    true
                ),
                (
                    5,
                    3,
                    VouchedBy::Witness,
                    Some(us.id()),
                    Some(Side::Us),
                    true
                ),
            ]
        );
        assert_eq!(vouched[0].actor, "rok-auditors/auditor");
        // Without witness keys the head is still held against the history, the witnesses are
        // listed unjudged.
        let unjudged = with_witnesses(&records, &writer, None).unwrap();
        assert!(unjudged.iter().all(|v| !v.verified && v.side.is_none()));

        // A witness by a key that is not a witness key, and one whose signature is not of this
        // head.
        let strange = witnessed(signed_chain(4, &writer), 3, &[&stranger], &writer);
        let found = with_witnesses(&strange, &writer, Some(keys.clone())).unwrap_err();
        assert_eq!((found.kind, found.version), (BreakKind::UnknownWitness, 5));
        let mut forged = witnessed(signed_chain(4, &writer), 3, &[&rok], &writer);
        let mut envelope = v1::EventEnvelope::decode(forged[4].payload.as_slice()).unwrap();
        if let Some(v1::event_envelope::Payload::HeadWitnessed(w)) = envelope.payload.as_mut() {
            w.version = 2;
            w.head_hash = hex(&carried_hash(&forged[1].payload).unwrap());
        }
        forged[4].payload = envelope.encode_to_vec();
        reseal(&mut forged, 4, Some(&writer));
        let found = with_witnesses(&forged, &writer, Some(keys)).unwrap_err();
        assert_eq!((found.kind, found.version), (BreakKind::BadWitness, 5));
    }

    #[test]
    fn a_rewrite_below_a_witnessed_head_is_named_with_its_witnesses() {
        let (writer, rok) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        let keys = witness_keys(&[(&rok, Side::Rok)]);
        let mut records = witnessed(signed_chain(4, &writer), 3, &[&rok], &writer);
        // The holder of the writer's key rewrites version 2 and signs everything after again:
        // every record signature holds, the witness's does not cover the new history.
        let mut envelope = v1::EventEnvelope::decode(records[1].payload.as_slice()).unwrap();
        envelope.command_id = "rewritten".into();
        records[1].payload = envelope.encode_to_vec();
        reseal(&mut records, 1, Some(&writer));
        let found = with_witnesses(&records, &writer, Some(keys)).unwrap_err();
        assert_eq!((found.kind, found.version), (BreakKind::WitnessDiverged, 5));
        assert!(
            found.detail.contains(&rok.id().to_string())
                && found.detail.contains("(ROK)")
                && found.detail.contains("rok-auditors/auditor"),
            "{}",
            found.detail
        );
        // The same, judged without witness keys: the head is still not this history's.
        let found = with_witnesses(&records, &writer, None).unwrap_err();
        assert_eq!((found.kind, found.version), (BreakKind::WitnessDiverged, 5));
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&GENESIS).len(), 64);
    }
}
