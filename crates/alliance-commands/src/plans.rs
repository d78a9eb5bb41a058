//! The write-side model of each plan: its state, the keys each of its events changed (for
//! conflict checks) and the commands already applied (for idempotency). Always the fold of the
//! log; rebuilt from the log whenever in doubt.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use alliance_domain::{Key, Plan, PlanId, Version, evolve};
use alliance_eventlog::{EventLog, LogError};
use smallvec::SmallVec;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

use crate::service::{CommandOutcome, Owner};
use alliance_record::envelope::decode_event;
use alliance_server::error::ServiceError;

const READ_BATCH: usize = 1024;

/// What the events of a plan's own stream changed, for conflict checks: kept for every event of
/// every plan, so kept small (48 bytes an event, and a tenth of that spare at most).
///
/// * A key is held as its fingerprint (std's SipHash with a random key, 64 bits): a check
///   knows the keys its command touches and only asks which of them an event changed. A
///   conflict is never missed (a key always has the same fingerprint in a process). Two
///   different keys share one about once in 2^64 comparisons, which would refuse a command
///   with a conflict it does not have; with the key unknown outside the process, no caller can
///   feasibly choose keys that do.
/// * Which event type and which team recorded an event is an index into the plan's few
///   distinct (type, team) pairs.
#[derive(Debug, Default)]
pub(crate) struct History {
    items: Vec<HistoryItem>,
    /// The distinct (event type, recording team) pairs of the plan's events.
    labels: Vec<(&'static str, Arc<str>)>,
}

#[derive(Debug, Clone)]
struct HistoryItem {
    event_id: uuid::Uuid,
    /// In order; exactly as many as the event changed (most change one or two).
    keys: SmallVec<[KeyPrint; 2]>,
    label: u32,
}

/// A key's fingerprint ([`History`]).
type KeyPrint = u64;

/// The per-process key of every fingerprint.
static KEY_PRINTS: std::sync::LazyLock<std::hash::RandomState> =
    std::sync::LazyLock::new(std::hash::RandomState::new);

fn key_print(key: &Key) -> KeyPrint {
    std::hash::BuildHasher::hash_one(&*KEY_PRINTS, key)
}

/// An event [`History::changed`] names: what of `touched` it changed.
pub(crate) struct Changed<'a> {
    pub version: Version,
    pub event_id: uuid::Uuid,
    pub event_type: &'static str,
    pub team: &'a str,
    pub keys: Vec<&'a Key>,
}

impl History {
    /// Notes the event at the next version.
    fn push(&mut self, event_id: uuid::Uuid, event: &alliance_domain::Event, team: &str) {
        let event_type = event.event_type();
        let same = |(t, by): &(&'static str, Arc<str>)| *t == event_type && &**by == team;
        let label = match self.items.last() {
            Some(before) if same(&self.labels[before.label as usize]) => before.label,
            _ => match self.labels.iter().position(same) {
                Some(at) => at as u32,
                None => {
                    self.labels.push((event_type, Arc::from(team)));
                    (self.labels.len() - 1) as u32
                }
            },
        };
        // Grown by an eighth at a time: a doubling vector would hold up to as much again spare.
        if self.items.len() == self.items.capacity() {
            self.items.reserve_exact((self.items.len() / 8).max(16));
        }
        self.items.push(HistoryItem {
            event_id,
            keys: event.keys().iter().map(key_print).collect(),
            label,
        });
    }

    /// The events after version `after` that changed a key of `touched`, in version order,
    /// each with those keys (in the order the event changed them).
    pub(crate) fn changed<'a>(
        &'a self,
        after: Version,
        touched: &'a [Key],
    ) -> impl Iterator<Item = Changed<'a>> + 'a {
        // Sorted, so an event's key costs a binary search however many keys a command names
        // (the check runs under the plan's lock, before `decide` limits them).
        let mut prints: Vec<(KeyPrint, &Key)> = touched.iter().map(|k| (key_print(k), k)).collect();
        prints.sort_unstable_by_key(|(print, _)| *print);
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        self.items
            .iter()
            .zip(1..)
            .skip(skip)
            .filter_map(move |(item, version)| {
                let keys: Vec<&Key> = item
                    .keys
                    .iter()
                    .filter_map(|print| {
                        let at = prints.binary_search_by_key(print, |(p, _)| *p).ok()?;
                        Some(prints[at].1)
                    })
                    .collect();
                let (event_type, team) = &self.labels[item.label as usize];
                (!keys.is_empty()).then_some(Changed {
                    version,
                    event_id: item.event_id,
                    event_type,
                    team,
                    keys,
                })
            })
    }
}

#[derive(Debug, Default)]
pub(crate) struct PlanEntry {
    pub state: Plan,
    /// What each event of the plan's own stream changed, by version.
    pub history: History,
    /// The commands decided on this plan whose events are not known to be durable yet, by
    /// command id (a durable command is found in the log).
    pub commands: HashMap<String, AppliedCommand>,
    /// The durability of the latest append: once it settles, everything in `state` is on disk
    /// (appends of one plan commit in order). `None` when nothing is in flight since loading.
    pub tail: Option<watch::Receiver<Durability>>,
    /// Tells this load of the plan from a later one, so a late failure resets only the state
    /// it was built on.
    pub generation: u64,
    /// The log's writer term of the plan when it was loaded ([`EventLog::writer_term`]).
    pub term: u64,
    /// The hash of the last event of the plan's own stream: the next event's `prev_hash`.
    pub head_hash: alliance_record::chain::Hash,
}

static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A command applied to the plan: its first result, who recorded it and its digest, and whether
/// its events are durable yet (a retry is answered only once they are).
#[derive(Debug, Clone)]
pub(crate) struct AppliedCommand {
    pub outcome: CommandOutcome,
    pub owner: Owner,
    pub digest: String,
    pub durability: watch::Receiver<Durability>,
}

/// How the append of a command's events ended.
#[derive(Debug, Clone)]
pub(crate) enum Durability {
    Pending,
    Durable,
    /// The append failed: the command was not applied.
    Failed(Arc<LogError>),
}

impl PlanEntry {
    /// Records an event just decided (or read back) at the next version, recorded by `team`.
    pub fn push(&mut self, event_id: uuid::Uuid, event: &alliance_domain::Event, team: &str) {
        self.history.push(event_id, event, team);
        let state = std::mem::take(&mut self.state);
        self.state = evolve(state, event);
    }

    pub fn record_command(
        &mut self,
        command_id: &str,
        outcome: CommandOutcome,
        (owner, digest): (Owner, String),
        durability: watch::Receiver<Durability>,
    ) {
        // The log answers for the durable ones.
        self.commands
            .retain(|_, applied| !matches!(*applied.durability.borrow(), Durability::Durable));
        self.commands.insert(
            command_id.to_owned(),
            AppliedCommand {
                outcome,
                owner,
                digest,
                durability,
            },
        );
    }
}

/// Folds a plan from the log, up to `upto` (its latest version when `None`).
///
/// A branch's history begins with `PlanBranched`: the parent is folded to the version branched
/// at first, then the branch's own events.
pub(crate) fn load<'a, L: EventLog>(
    log: &'a L,
    plan_id: PlanId,
    upto: Option<Version>,
) -> Pin<Box<dyn Future<Output = Result<PlanEntry, ServiceError>> + Send + 'a>> {
    Box::pin(async move {
        let mut entry = PlanEntry {
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            term: log.writer_term(plan_id),
            ..PlanEntry::default()
        };
        let mut next: Version = 1;
        loop {
            let batch = log.read_plan(plan_id, next, READ_BATCH).await?;
            let done = batch.len() < READ_BATCH;
            for stored in &batch {
                if upto.is_some_and(|u| stored.version > u) {
                    return Ok(entry);
                }
                let decoded = decode_event(stored)?;
                if let alliance_domain::Event::PlanBranched {
                    parent_plan_id,
                    parent_version,
                    ..
                } = &decoded.event
                {
                    let parent = load(log, *parent_plan_id, Some(*parent_version)).await?;
                    if parent.state.version != *parent_version {
                        return Err(ServiceError::Corrupt(format!(
                            "plan {plan_id} branches from version {parent_version} of plan {parent_plan_id}, which has only {} events",
                            parent.state.version
                        )));
                    }
                    entry.state = parent.state;
                }
                let team = decoded.actor_team.as_ref().map_or("", |t| t.as_str());
                entry.push(stored.event_id, &decoded.event, team);
                entry.head_hash = alliance_record::chain::carried_hash(&stored.payload)
                    .unwrap_or(alliance_record::chain::GENESIS);
                next = stored.version + 1;
            }
            if done {
                return Ok(entry);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alliance_domain::{DecisionId, ElementId, Event};

    use super::*;

    fn adopted(decision: &str) -> Event {
        Event::DecisionAdopted {
            decision_id: DecisionId::parse(decision).unwrap(),
        }
    }

    #[test]
    fn a_check_is_told_which_of_its_keys_each_later_event_changed_and_by_whom() {
        let mut history = History::default();
        history.push(uuid::Uuid::from_u128(1), &adopted("d1"), "us-cell");
        history.push(uuid::Uuid::from_u128(2), &adopted("d2"), "rok-cell");
        history.push(uuid::Uuid::from_u128(3), &adopted("d1"), "us-cell");
        // One label for each (type, team) pair, however many events share it.
        assert_eq!(history.labels.len(), 2);

        let d1 = Key::Decision(DecisionId::parse("d1").unwrap());
        let touched = [d1.clone(), Key::Element(ElementId::parse("abct").unwrap())];
        let found: Vec<_> = history
            .changed(0, &touched)
            .map(|c| {
                (
                    c.version,
                    c.event_id.as_u128(),
                    c.event_type,
                    c.team,
                    c.keys,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (1, 1, "DecisionAdopted", "us-cell", vec![&d1]),
                (3, 3, "DecisionAdopted", "us-cell", vec![&d1]),
            ]
        );
        assert_eq!(history.changed(1, &touched).count(), 1);
        assert_eq!(history.changed(3, &touched).count(), 0);
        let d2 = [Key::Decision(DecisionId::parse("d2").unwrap())];
        let by_rok: Vec<_> = history
            .changed(0, &d2)
            .map(|c| (c.version, c.team))
            .collect();
        assert_eq!(by_rok, [(2, "rok-cell")]);
    }

    /// Every event of every plan keeps an item: a few bytes more each, or a doubling vector's
    /// spare room, is a lasting share of the server's memory.
    #[test]
    fn an_event_costs_its_history_48_bytes_and_little_spare_room() {
        assert_eq!(std::mem::size_of::<HistoryItem>(), 48);
        let mut history = History::default();
        for n in 0..100_000_u128 {
            history.push(uuid::Uuid::from_u128(n), &adopted("d1"), "us-cell");
            let (len, capacity) = (history.items.len(), history.items.capacity());
            assert!(capacity - len <= len / 8 + 16, "{len} held in {capacity}");
        }
    }
}
