//! One plan's history in record time: every event of its own stream with when and by whom it
//! was recorded, and the plan's state at any version (from kept states, so no query folds
//! more events than the plan has parts), and its posture index (postures without a fold).

use std::sync::Arc;

use alliance_domain::{Event, PartsHandoff, Plan, PlanId, Version, evolve};
pub use alliance_record::PackedEvent;
use alliance_record::signing::{KEY_ID_LEN, SIGNATURE_LEN};

use crate::ProjectionError;

use crate::index::{PostureAt, PostureIndex};

/// States are kept at least this many versions apart, and further apart in a larger plan:
/// as many versions as the plan has decisions and elements. A query that needs a state
/// (findings, decisions, a diff) reads about that many parts of it anyway, so folding up to
/// that many events costs it about as much again; each kept state costs the tree nodes and
/// entries that the changes after it copy, which fewer kept states copy less often.
const CHECKPOINT_AT_LEAST: usize = 128;

/// How many versions after the last kept state the next one is kept, for a plan at `plan`.
fn checkpoint_spacing(plan: &Plan) -> usize {
    CHECKPOINT_AT_LEAST.max(plan.decisions.len() + plan.elements.len())
}

/// One event of a plan's own stream, as recorded: every field of its envelope in the log, the
/// payload packed (its protobuf bytes, a fraction of the domain event's size: the read models
/// keep every event, and answer most queries from their index without reading one).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub version: Version,
    pub event_id: uuid::Uuid,
    pub record_time_micros: i64,
    /// The command it came from (held in place: most commands record one event, and an
    /// allocation of its own cost more than the copies a command of several events makes;
    /// consecutive commands of one caller still share its [`RecordedBy`]).
    pub command: RecordedCommand,
    pub seal: Seal,
    pub event: PackedEvent,
}

impl Recorded {
    /// Whether its writer signed the record.
    pub fn signed(&self) -> bool {
        self.seal.signature().is_some()
    }

    /// The domain event.
    pub fn event(&self) -> Result<Event, ProjectionError> {
        self.event
            .event()
            .map_err(|e| ProjectionError::Corrupt(format!("version {}: {e}", self.version)))
    }
}

/// Who recorded an event, as its envelope names the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBy {
    pub team: String,
    pub user: String,
    /// The side the caller's team endorses for, as `alliance.v1.Side` (0: none).
    pub side: i32,
}

impl std::fmt::Display for RecordedBy {
    /// `team/user`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.team, self.user)
    }
}

/// The command an event came from, as its envelope records it. Kept small: a command id that
/// is a UUID in its canonical text and a digest of 64 lowercase hex digits (a SHA-256), as the
/// command service writes them, as their 16 and 32 bytes in place, any other pair apart, as
/// written; correlation and causation ids that are both the command id (as the server fills
/// them in when a client sends none) are not kept again, others apart. Each reads back
/// exactly as written. Consecutive commands of one caller share its [`RecordedBy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommand {
    ids: CommandIds,
    /// `(correlation_id, causation_id)`; `None`: both are the command id.
    others: Option<Box<(Box<str>, Box<str>)>>,
    pub actor: Arc<RecordedBy>,
}

/// A command's id and digest: a command id that is a UUID in its canonical text as its 16
/// bytes, and a digest of 64 lowercase hex digits (a SHA-256, as the command service writes
/// it) as its 32, each other text as it is. One tag for the two, so the pair takes 56 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CommandIds {
    UuidSha { id: uuid::Uuid, digest: [u8; 32] },
    TextSha { id: Box<str>, digest: [u8; 32] },
    UuidText { id: uuid::Uuid, digest: Box<str> },
    TextText { id: Box<str>, digest: Box<str> },
}

/// A command id as [`CommandIds`] holds it.
#[derive(PartialEq, Eq)]
enum IdRef<'a> {
    Uuid(&'a uuid::Uuid),
    Text(&'a str),
}

impl CommandIds {
    fn new(id: String, digest: String) -> Self {
        match (
            canonical_uuid(&id),
            alliance_stdx::hex::decode_lower_array::<32>(&digest),
        ) {
            (Some(id), Some(digest)) => Self::UuidSha { id, digest },
            (None, Some(digest)) => Self::TextSha {
                id: id.into_boxed_str(),
                digest,
            },
            (Some(id), None) => Self::UuidText {
                id,
                digest: digest.into_boxed_str(),
            },
            (None, None) => Self::TextText {
                id: id.into_boxed_str(),
                digest: digest.into_boxed_str(),
            },
        }
    }

    /// The id; a canonical UUID's text is never held as text, so equal ids are equal here.
    fn id(&self) -> IdRef<'_> {
        match self {
            Self::UuidSha { id, .. } | Self::UuidText { id, .. } => IdRef::Uuid(id),
            Self::TextSha { id, .. } | Self::TextText { id, .. } => IdRef::Text(id),
        }
    }
}

/// The UUID `text` is in its canonical text (lowercase, hyphenated), if it is one.
fn canonical_uuid(text: &str) -> Option<uuid::Uuid> {
    // 36 characters parse only as the hyphenated form; without upper case it is canonical.
    let canonical = text.len() == 36 && !text.bytes().any(|b| b.is_ascii_uppercase());
    uuid::Uuid::try_parse(text).ok().filter(|_| canonical)
}

impl RecordedCommand {
    pub fn new(
        command_id: String,
        correlation_id: String,
        causation_id: String,
        command_digest: String,
        actor: RecordedBy,
    ) -> Self {
        let others = (correlation_id != command_id || causation_id != command_id).then(|| {
            Box::new((
                correlation_id.into_boxed_str(),
                causation_id.into_boxed_str(),
            ))
        });
        let ids = CommandIds::new(command_id, command_digest);
        Self {
            ids,
            others,
            actor: Arc::new(actor),
        }
    }

    pub fn command_id(&self) -> String {
        match self.ids.id() {
            IdRef::Uuid(id) => id.hyphenated().to_string(),
            IdRef::Text(id) => id.to_owned(),
        }
    }

    /// Whether the two are the same command (its events share its id).
    pub fn same_command(&self, other: &Self) -> bool {
        self.ids.id() == other.ids.id()
    }

    pub fn correlation_id(&self) -> String {
        self.others.as_deref().map_or_else(
            || self.command_id(),
            |(correlation, _)| correlation.to_string(),
        )
    }

    pub fn causation_id(&self) -> String {
        self.others
            .as_deref()
            .map_or_else(|| self.command_id(), |(_, causation)| causation.to_string())
    }

    /// The digest that judges a retry (`EventEnvelope.command_digest`).
    pub fn command_digest(&self) -> String {
        match &self.ids {
            CommandIds::UuidSha { digest, .. } | CommandIds::TextSha { digest, .. } => {
                alliance_stdx::hex::encode(digest)
            }
            CommandIds::UuidText { digest, .. } | CommandIds::TextText { digest, .. } => {
                digest.to_string()
            }
        }
    }
}

/// The record's place in its plan's hash chain, as written: the previous record's hash, its
/// own, and its writer's key id and signature when signed. Its own hash, of 32 bytes (a SHA-256
/// hash: every sealed record's), is held in place; the previous one apart, until a plan's
/// history keeps the record after the one whose hash it is ([`Events`] then reads it there:
/// the seal says `None`); a signature apart: a writer's (an 8-byte key id and a 64-byte
/// Ed25519 signature) in one allocation of their bytes, and anything else (as an unchecked
/// record may carry) as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    hash: [u8; 32],
    /// The previous record's hash, when 32 bytes long; `None`: that record's own, in its plan's
    /// history (or, with `rest`, carried there).
    prev_hash: Option<Box<[u8; 32]>>,
    rest: Option<Box<SealRest>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SealRest {
    /// Signed as the writers sign.
    Signed {
        key: [u8; KEY_ID_LEN],
        signature: [u8; SIGNATURE_LEN],
    },
    /// Anything else.
    Other {
        /// `(prev_hash, hash)` as carried, when either is not 32 bytes long.
        hashes: Option<BytesPair>,
        /// `(signing_key_id, signature)` of a signed record.
        signature: Option<BytesPair>,
    },
}

/// Two byte strings, as a record carries them.
type BytesPair = (Box<[u8]>, Box<[u8]>);

impl Seal {
    /// The seal of a record carrying these hashes and, if signed, `(signing_key_id,
    /// signature)`.
    pub fn new(prev_hash: Vec<u8>, hash: Vec<u8>, signature: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        let inline = <[u8; 32]>::try_from(&prev_hash[..])
            .ok()
            .zip(<[u8; 32]>::try_from(&hash[..]).ok());
        let signed = signature.as_ref().and_then(|(key, signature)| {
            <[u8; KEY_ID_LEN]>::try_from(&key[..])
                .ok()
                .zip(<[u8; SIGNATURE_LEN]>::try_from(&signature[..]).ok())
        });
        let (prev, own, rest) = match (inline, signed) {
            (Some((prev, own)), Some((key, signature))) => {
                (Some(prev), own, Some(SealRest::Signed { key, signature }))
            }
            (Some((prev, own)), None) => (
                Some(prev),
                own,
                signature.map(|signature| SealRest::Other {
                    hashes: None,
                    signature: Some(bytes_pair(signature)),
                }),
            ),
            (None, _) => (
                None,
                [0; 32],
                Some(SealRest::Other {
                    hashes: Some(bytes_pair((prev_hash, hash))),
                    signature: signature.map(bytes_pair),
                }),
            ),
        };
        Self {
            hash: own,
            prev_hash: prev.map(Box::new),
            rest: rest.map(Box::new),
        }
    }

    /// The hashes carried apart, if they are.
    fn hashes(&self) -> Option<&BytesPair> {
        match self.rest.as_deref()? {
            SealRest::Other { hashes, .. } => hashes.as_ref(),
            SealRest::Signed { .. } => None,
        }
    }

    /// The previous record's hash, as the record carries it; `None` for a record a plan's
    /// history keeps after that one, whose hash it is ([`Events::whole`] reads it there).
    pub fn prev_hash(&self) -> Option<&[u8]> {
        match self.hashes() {
            Some((prev, _)) => Some(prev),
            None => self.prev_hash.as_deref().map(|prev| &prev[..]),
        }
    }

    pub fn hash(&self) -> &[u8] {
        match self.hashes() {
            Some((_, own)) => own,
            None => &self.hash,
        }
    }

    /// Drops the previous record's hash if it is `previous`'s own (its history reads it there).
    fn link(&mut self, previous: &Seal) {
        if self.prev_hash.as_deref().map(|prev| &prev[..]) == Some(previous.hash()) {
            self.prev_hash = None;
        }
    }

    /// Holds the previous record's hash again, as `previous` (the record before it in its
    /// plan's history) has it, if it was dropped.
    fn unlink(&mut self, previous: &Seal) {
        if self.prev_hash.is_none()
            && self.hashes().is_none()
            && let Ok(prev) = <[u8; 32]>::try_from(previous.hash())
        {
            self.prev_hash = Some(Box::new(prev));
        }
    }

    /// `(signing_key_id, signature)`, if its writer signed the record.
    pub fn signature(&self) -> Option<(&[u8], &[u8])> {
        match self.rest.as_deref()? {
            SealRest::Signed { key, signature } => Some((key, signature)),
            SealRest::Other { signature, .. } => {
                let (key, signature) = signature.as_ref()?;
                Some((key, signature))
            }
        }
    }
}

fn bytes_pair((a, b): (Vec<u8>, Vec<u8>)) -> BytesPair {
    (a.into_boxed_slice(), b.into_boxed_slice())
}

/// Where on the record-time axis to read a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPoint {
    /// The latest version.
    Latest,
    /// The plan as it stood at this version.
    Version(Version),
    /// The plan as recorded at this instant (microseconds since the Unix epoch).
    Time(i64),
}

/// How many events a block of [`Events`] holds once full: as many as 16 KiB hold (a size the
/// allocator serves exactly; a block of 64 events, 17,920 B, was served 20,480).
const BLOCK: usize = 16 * 1024 / std::mem::size_of::<Recorded>();

/// A plan's events in version order, in blocks of [`BLOCK`] that stay where they were put: a
/// new event moves none of the others (a plan's events in one vector were copied whole each
/// time it grew, which took about a tenth of a rebuild, and held twice their size meanwhile).
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Every block but the last is full.
    blocks: Vec<Vec<Recorded>>,
}

impl Events {
    pub fn len(&self) -> usize {
        self.blocks
            .last()
            .map_or(0, |last| (self.blocks.len() - 1) * BLOCK + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Recorded> {
        self.blocks.get(i / BLOCK)?.get(i % BLOCK)
    }

    pub fn last(&self) -> Option<&Recorded> {
        self.blocks.last()?.last()
    }

    /// Every event, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Recorded> + '_ {
        self.blocks.iter().flatten()
    }

    /// The events from the `from`-th one (counted from 0) to the `to`-th, excluded (at most
    /// the last), oldest first.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &Recorded> + '_ {
        let to = to.min(self.len());
        let from = from.min(to);
        self.blocks[from / BLOCK..]
            .iter()
            .flatten()
            .skip(from % BLOCK)
            .take(to - from)
    }

    /// The `i`-th event as recorded, its seal whole (see [`Seal::prev_hash`]): a copy, for a
    /// reader the event leaves the history for.
    pub fn whole(&self, i: usize) -> Option<Recorded> {
        let mut recorded = self.get(i)?.clone();
        if let Some(previous) = i.checked_sub(1).and_then(|p| self.get(p)) {
            recorded.seal.unlink(&previous.seal);
        }
        Some(recorded)
    }

    /// [`Self::whole`] of the events from the `from`-th one to the `to`-th, excluded (at most
    /// the last), oldest first.
    pub fn range_whole(&self, from: usize, to: usize) -> impl Iterator<Item = Recorded> + '_ {
        (from..to.min(self.len())).filter_map(|i| self.whole(i))
    }

    /// The previous record's hash, as the `i`-th event's record carries it.
    pub fn prev_hash(&self, i: usize) -> Option<&[u8]> {
        let seal = &self.get(i)?.seal;
        seal.prev_hash()
            .or_else(|| Some(self.get(i.checked_sub(1)?)?.seal.hash()))
    }

    fn push(&mut self, mut recorded: Recorded) {
        if let Some(previous) = self.last() {
            recorded.seal.link(&previous.seal);
        }
        let first = self.blocks.is_empty();
        match self.blocks.last_mut() {
            // The first block grows as a plan's first events arrive (most plans are small),
            // to a block's room at most; the others take their whole room at once.
            Some(block) if block.len() < BLOCK => {
                if block.len() == block.capacity() {
                    block.reserve_exact((2 * block.len()).clamp(4, BLOCK) - block.len());
                }
                block.push(recorded);
            }
            _ if first => self.blocks.push(vec![recorded]),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(recorded);
                self.blocks.push(block);
            }
        }
    }
}

impl std::ops::Index<usize> for Events {
    type Output = Recorded;

    fn index(&self, i: usize) -> &Recorded {
        &self.blocks[i / BLOCK][i % BLOCK]
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Recorded;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<Recorded>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.blocks.iter().flatten()
    }
}

#[derive(Debug, Clone)]
pub struct PlanHistory {
    pub plan_id: PlanId,
    pub events: Events,
    /// The events recorded before an earlier event's time (a writer's clock stepped back):
    /// each one's position and the latest record time among the events up to it. With them,
    /// the latest record time up to each event is monotonic, so "as recorded at t" is always a
    /// prefix; elsewhere it is the event's own.
    recorded_late: Vec<(usize, i64)>,
    /// The latest record time among all events.
    latest_record_time: i64,
    /// The state before the plan's own first event: empty, or a branch's parent at the version
    /// branched from.
    base: Arc<Plan>,
    /// Kept states: how many of the plan's own events each follows, and the state.
    checkpoints: Vec<(usize, Arc<Plan>)>,
    current: Arc<Plan>,
    /// The version of the plan's first signed record.
    signed_from: Option<Version>,
    /// What its postures are made of, per version.
    index: PostureIndex,
}

impl PlanHistory {
    pub fn new(plan_id: PlanId, base: Plan) -> Self {
        let index = PostureIndex::new(&base);
        let base = Arc::new(base);
        Self {
            index,
            plan_id,
            events: Events::default(),
            recorded_late: Vec::new(),
            latest_record_time: i64::MIN,
            current: base.clone(),
            base,
            checkpoints: Vec::new(),
            signed_from: None,
        }
    }

    /// The version of the plan's first signed record, if any is signed: the plan's records are
    /// unsigned before it (written before its writers signed).
    pub fn signed_from(&self) -> Option<Version> {
        self.signed_from
    }

    pub fn version(&self) -> Version {
        self.events.len() as Version
    }

    /// Adds the next event of the plan's own stream: `recorded`, whose event is `event`; the
    /// part `handoff` holds for it replaces an equal one of the state ([`Plan::hold_equal`]).
    pub fn push(&mut self, mut recorded: Recorded, event: &Event, handoff: Option<&PartsHandoff>) {
        if let Some(last) = self.events.last()
            && last.command.actor == recorded.command.actor
        {
            recorded.command.actor = last.command.actor.clone();
        }
        // In place, unless a checkpoint shares the state (then it is copied once).
        let state = Arc::make_mut(&mut self.current);
        *state = evolve(std::mem::take(state), event);
        if let Some(part) = handoff.and_then(|h| h.take(&self.plan_id, recorded.version)) {
            state.hold_equal(part);
        }
        self.index.record(recorded.version, event, state);
        if recorded.signed() && self.signed_from.is_none() {
            self.signed_from = Some(recorded.version);
        }
        if recorded.record_time_micros < self.latest_record_time {
            self.recorded_late
                .push((self.events.len(), self.latest_record_time));
        }
        self.latest_record_time = self.latest_record_time.max(recorded.record_time_micros);
        self.events.push(recorded);
        let since = self.checkpoints.last().map_or(0, |(after, _)| *after);
        if self.events.len() - since >= checkpoint_spacing(&self.current) {
            self.checkpoints
                .push((self.events.len(), self.current.clone()));
        }
    }

    /// The version a record point names: the latest version recorded at or before a time, the
    /// version itself (at most the latest), or the latest. A version inside one command's
    /// events (a command may append several, e.g. an adoption and the supersession it causes)
    /// names the end of that command: no reader sees half a command.
    pub fn version_at(&self, point: RecordPoint) -> Version {
        let version = match point {
            RecordPoint::Latest => return self.version(),
            RecordPoint::Version(v) => v.min(self.version()),
            RecordPoint::Time(micros) => self.recorded_by_within(micros) as Version,
        };
        let mut end = usize::try_from(version).unwrap_or(usize::MAX);
        while end > 0
            && end < self.events.len()
            && self.events[end]
                .command
                .same_command(&self.events[end - 1].command)
        {
            end += 1;
        }
        end as Version
    }

    /// How many of the first events were all recorded by `micros`.
    fn recorded_by_within(&self, micros: i64) -> usize {
        // The latest record time among the events up to the `i`-th: monotonic in `i`.
        let up_to = |i: usize| match self.recorded_late.binary_search_by_key(&i, |(at, _)| *at) {
            Ok(late) => self.recorded_late[late].1,
            Err(_) => self.events[i].record_time_micros,
        };
        let (mut low, mut high) = (0, self.events.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if up_to(mid) <= micros {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// What the plan's postures are made of at `version` (at most the latest), in one view.
    pub(crate) fn posture_at(&self, version: Version, what_if: bool) -> PostureAt<'_> {
        self.index.at(version.min(self.version()), what_if)
    }

    /// The plan at its latest version.
    pub fn latest(&self) -> Arc<Plan> {
        self.current.clone()
    }

    /// The plan as it stood at `version` (`0`: before its first event).
    pub fn state_at(&self, version: Version) -> Result<Arc<Plan>, ProjectionError> {
        let version = usize::try_from(version)
            .unwrap_or(usize::MAX)
            .min(self.events.len());
        if version == self.events.len() {
            return Ok(self.current.clone());
        }
        let kept = self
            .checkpoints
            .partition_point(|(after, _)| *after <= version);
        let (start, state) = match kept.checked_sub(1) {
            Some(k) => self.checkpoints[k].clone(),
            None => (0, self.base.clone()),
        };
        if start == version {
            return Ok(state);
        }
        let mut plan = (*state).clone();
        for recorded in self.events.range(start, version) {
            plan = evolve(plan, &recorded.event()?);
        }
        Ok(Arc::new(plan))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alliance_domain::testing::{dec, plan_id};

    /// A record of `version`, each of its own command.
    pub(crate) fn recorded(version: Version) -> Recorded {
        Recorded {
            version,
            event_id: uuid::Uuid::now_v7(),
            record_time_micros: i64::try_from(version).unwrap_or_default(),
            command: RecordedCommand::new(
                format!("c{version}"),
                format!("c{version}"),
                format!("c{version}"),
                String::new(),
                RecordedBy {
                    team: "us-force-planning".into(),
                    user: "planner".into(),
                    side: 1,
                },
            ),
            seal: Seal::new(vec![0; 32], vec![1; 32], None),
            event: PackedEvent::new(&Event::DecisionAdopted {
                decision_id: dec(&format!("d{version}")),
            }),
        }
    }

    /// A command's ids and digest read back exactly as recorded, whichever form they are kept
    /// in: a canonical UUID and a lowercase SHA-256 in hex as bytes, any other text as it is
    /// (an upper-case UUID or digest, a braced UUID, a digest one digit short or signed, none at
    /// all).
    #[test]
    fn a_command_reads_back_exactly_as_recorded() {
        let by = || RecordedBy {
            team: "rok-jcs".into(),
            user: "planner".into(),
            side: 2,
        };
        let uuid = "019a0000-0000-7000-8000-00000000002a";
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let braced = format!("{{{uuid}}}");
        let short = &sha[1..];
        // Not hex: a sign is no digit.
        let signed = format!("+{short}");
        for id in [
            uuid,
            &uuid.to_uppercase(),
            &braced,
            &uuid.replace('-', ""),
            "c-17",
            "",
        ] {
            for digest in [sha, &sha.to_uppercase(), short, &signed, "", "digest"] {
                for cause in [id, "cause"] {
                    let command = RecordedCommand::new(
                        id.to_owned(),
                        id.to_owned(),
                        cause.to_owned(),
                        digest.to_owned(),
                        by(),
                    );
                    assert_eq!(command.command_id(), id);
                    assert_eq!(command.correlation_id(), id);
                    assert_eq!(command.causation_id(), cause);
                    assert_eq!(command.command_digest(), digest);
                }
            }
        }
        let kept =
            |id: &str| RecordedCommand::new(id.into(), id.into(), id.into(), sha.into(), by());
        assert_eq!(
            kept(uuid).ids,
            CommandIds::UuidSha {
                id: uuid.parse().unwrap(),
                digest: alliance_stdx::hex::decode_array(sha).unwrap()
            }
        );
        assert!(kept(uuid).same_command(&kept(uuid)));
        // The same UUID in other text is another command id, as the log holds it.
        assert!(!kept(uuid).same_command(&kept(&uuid.to_uppercase())));
        assert_eq!(kept(uuid).correlation_id(), uuid);
        // A cause of the client's own is kept apart; the id and digest as bytes still.
        let caused =
            RecordedCommand::new(uuid.into(), uuid.into(), "cause".into(), sha.into(), by());
        assert!(matches!(caused.ids, CommandIds::UuidSha { .. }) && caused.others.is_some());
        // One command's events are one command's, whichever way its id and digest are kept.
        let odd = RecordedCommand::new(uuid.into(), uuid.into(), uuid.into(), "d".into(), by());
        assert!(matches!(odd.ids, CommandIds::UuidText { .. }));
        for one in [&caused, &odd] {
            assert!(one.same_command(&kept(uuid)) && kept(uuid).same_command(one));
            assert!(!one.same_command(&kept(&uuid.replace('a', "b"))));
        }
        assert!(matches!(kept("c-17").ids, CommandIds::TextSha { .. }));
        assert!(kept("c-17").same_command(&kept("c-17")) && !kept("c-17").same_command(&odd));
    }

    /// A seal reads back exactly as the record carries it, whichever form it is kept in: a
    /// writer's signature (8-byte key id, 64-byte signature) over 32-byte hashes in one
    /// allocation of its bytes, an unsigned record's in none, and anything else as it is.
    #[test]
    fn a_seal_reads_back_exactly_as_recorded() {
        let (prev, own) = (vec![1; 32], vec![2; 32]);
        let signed = Some((vec![3; KEY_ID_LEN], vec![4; SIGNATURE_LEN]));
        let cases = [
            (prev.clone(), own.clone(), signed.clone()),
            (prev.clone(), own.clone(), None),
            (
                prev.clone(),
                own.clone(),
                Some((vec![3; 7], vec![4; SIGNATURE_LEN])),
            ),
            (
                prev.clone(),
                own.clone(),
                Some((vec![3; KEY_ID_LEN], vec![4; 63])),
            ),
            (prev.clone(), own.clone(), Some((Vec::new(), Vec::new()))),
            (vec![1; 31], own.clone(), signed.clone()),
            (prev.clone(), Vec::new(), None),
        ];
        for (prev_hash, hash, signature) in cases {
            let seal = Seal::new(prev_hash.clone(), hash.clone(), signature.clone());
            assert_eq!(seal.prev_hash(), Some(&prev_hash[..]));
            assert_eq!(seal.hash(), hash);
            assert_eq!(
                seal.signature().map(|(k, s)| (k.to_vec(), s.to_vec())),
                signature
            );
        }
        let kept = Seal::new(prev.clone(), own.clone(), signed);
        assert!(matches!(
            kept.rest.as_deref(),
            Some(SealRest::Signed { .. })
        ));
        assert!(Seal::new(prev, own, None).rest.is_none());
    }

    /// A record's previous hash is dropped when its plan's history keeps it after the record
    /// whose hash it is, and read there: every record's whole copy, and the snapshot's reading,
    /// carry the previous hash the record carried, whether it links or not (a first record, a
    /// break, hashes of another length).
    #[test]
    fn a_kept_record_s_previous_hash_reads_as_recorded() {
        let hash = |n: u8| vec![n; 32];
        let signed = || Some((vec![3; KEY_ID_LEN], vec![4; SIGNATURE_LEN]));
        // (prev, own, signed): linked, linked and signed, a break, odd hashes, then linked to
        // an odd hash, and linked again.
        let seals = [
            (hash(0), hash(1), None),
            (hash(1), hash(2), None),
            (hash(2), hash(3), signed()),
            (hash(9), hash(4), None),
            (hash(4), vec![5; 31], signed()),
            (vec![5; 31], hash(6), None),
            (hash(6), hash(7), signed()),
        ];
        let mut events = Events::default();
        for (version, (prev, own, signature)) in (1..).zip(seals.clone()) {
            let mut record = recorded(version);
            record.seal = Seal::new(prev, own, signature);
            events.push(record);
        }
        let linked: Vec<bool> = events
            .iter()
            .map(|r| r.seal.prev_hash().is_none())
            .collect();
        assert_eq!(linked, [false, true, true, false, false, false, true]);
        for (i, (prev, own, signature)) in seals.into_iter().enumerate() {
            assert_eq!(events.prev_hash(i), Some(&prev[..]), "{i}");
            let whole = events.whole(i).unwrap();
            assert_eq!(whole.seal, Seal::new(prev, own, signature), "{i}");
            assert_eq!(
                events
                    .range_whole(i, i + 1)
                    .map(|r| r.seal)
                    .collect::<Vec<_>>(),
                [whole.seal]
            );
        }
    }

    /// "As recorded at t" is the longest prefix of the plan's events all recorded by t, even
    /// where a writer's clock stepped back (a later event recorded at an earlier time).
    #[test]
    fn as_recorded_at_a_time_is_a_prefix_when_a_clock_steps_back() {
        let times = [10, 20, 15, 30, 25, 25, 40, 5, 40, 41];
        let mut history = PlanHistory::new(plan_id(), Plan::default());
        for (version, time) in (1..).zip(times) {
            let mut record = recorded(version);
            record.record_time_micros = time;
            let event = record.event().unwrap();
            history.push(record, &event, None);
        }
        for t in 0..=45 {
            let prefix = (0..=times.len())
                .take_while(|n| times[..*n].iter().all(|time| *time <= t))
                .last()
                .unwrap_or(0);
            assert_eq!(
                history.version_at(RecordPoint::Time(t)),
                prefix as Version,
                "at {t}"
            );
        }
    }

    /// Over several blocks, the events read as the one vector they stand for: by position, in
    /// order, and from any position to any other (past the end too).
    #[test]
    fn events_in_blocks_read_as_one_list() {
        let count = 3 * BLOCK + 5;
        let mut events = Events::default();
        assert!(events.is_empty() && events.last().is_none());
        for version in 1..=count as Version {
            events.push(recorded(version));
        }
        let versions = |it: &mut dyn Iterator<Item = &Recorded>| -> Vec<Version> {
            it.map(|r| r.version).collect()
        };
        assert_eq!(events.len(), count);
        assert_eq!(
            versions(&mut events.iter()),
            (1..=count as Version).collect::<Vec<_>>()
        );
        assert_eq!(
            versions(&mut events.iter().rev()).first(),
            Some(&(count as Version))
        );
        assert_eq!(events.last().map(|r| r.version), Some(count as Version));
        for i in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, count - 1] {
            assert_eq!(events[i].version, i as Version + 1);
            assert_eq!(events.get(i).map(|r| r.version), Some(i as Version + 1));
        }
        assert!(events.get(count).is_none());
        for (from, to) in [
            (0, 0),
            (0, count),
            (3, BLOCK + 2),
            (BLOCK, 2 * BLOCK),
            (BLOCK - 1, BLOCK + 1),
            (count - 2, usize::MAX),
            (count + 4, usize::MAX),
            (7, 3),
        ] {
            let expected: Vec<Version> = (1..=count as Version)
                .skip(from)
                .take(to.saturating_sub(from))
                .collect();
            assert_eq!(
                versions(&mut events.range(from, to)),
                expected,
                "{from}..{to}"
            );
        }
    }
}
