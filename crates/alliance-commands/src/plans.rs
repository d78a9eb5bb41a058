//! The write-side model of each plan: its state, the keys each of its events changed (for
//! conflict checks) and the commands already applied (for idempotency). Always the fold of the
//! log; rebuilt from the log whenever in doubt.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use alliance_domain::{Key, Plan, PlanId, Version, evolve};
use alliance_eventlog::{EventLog, LogError};
use alliance_stdx::room_for;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

use crate::service::{CommandOutcome, Owner};
use alliance_record::envelope::decode_event;
use alliance_server::error::ServiceError;

const READ_BATCH: usize = 1024;

/// What the events of a plan's own stream changed, for conflict checks: kept for every event of
/// every plan, so kept small (32 bytes an event that changed one key, 8 more for each other
/// key, and an eighth of that spare at most).
///
/// * A key is held as its fingerprint (std's SipHash with a random key, 64 bits): a check
///   knows the keys its command touches and only asks which of them an event changed. A
///   conflict is never missed (a key always has the same fingerprint in a process). Two
///   different keys share one about once in 2^64 comparisons, which would refuse a command
///   with a conflict it does not have; with the key unknown outside the process, no caller can
///   feasibly choose keys that do.
/// * Which event type and which team recorded an event is an index into the plan's few
///   distinct (type, team) pairs.
/// * The events' ids, items and keys are three vectors, by version: one vector of items each
///   holding its keys in place took 48 bytes an event, a third of it padding and room for a
///   second key that most events do not change.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// By version (the first event's first): the event's id.
    event_ids: Vec<uuid::Uuid>,
    /// By version: the event's label and where its keys end in `keys`.
    items: Vec<HistoryItem>,
    /// Every event's keys, in version order, each event's in the order it changed them.
    keys: Vec<KeyPrint>,
    /// The distinct (event type, recording team) pairs of the plan's events.
    labels: Vec<(&'static str, Arc<str>)>,
}

#[derive(Debug, Clone, Copy)]
struct HistoryItem {
    label: u32,
    /// Where the event's keys end in [`History::keys`]; they start where the event before's
    /// end.
    keys_end: u32,
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
        let keys = event.keys();
        // Checked before anything is changed.
        let keys_end = u32::try_from(self.keys.len() + keys.len())
            .expect("a plan's history holds fewer than 2^32 keys");
        room_for(&mut self.keys, keys.len());
        self.keys.extend(keys.iter().map(key_print));
        room_for(&mut self.items, 1);
        self.items.push(HistoryItem { label, keys_end });
        room_for(&mut self.event_ids, 1);
        self.event_ids.push(event_id);
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
        let first = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.items.len());
        // Where the keys of the event at `at` start: where the event before's end.
        let start = |at: usize| {
            at.checked_sub(1)
                .map_or(0, |before| self.items[before].keys_end)
        };
        (first..self.items.len()).filter_map(move |at| {
            let item = self.items[at];
            let keys: Vec<&Key> = self.keys[start(at) as usize..item.keys_end as usize]
                .iter()
                .filter_map(|print| {
                    let found = prints.binary_search_by_key(print, |(p, _)| *p).ok()?;
                    Some(prints[found].1)
                })
                .collect();
            let (event_type, team) = &self.labels[item.label as usize];
            (!keys.is_empty()).then_some(Changed {
                version: at as Version + 1,
                event_id: self.event_ids[at],
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
        // An event of two keys, then one of none, then one of one: each event's keys are its
        // own, wherever the ones before end.
        let relocated = Event::StepPlanned {
            decision_id: DecisionId::parse("d3").unwrap(),
            step: alliance_domain::Step::RelocateElement {
                element_id: ElementId::parse("abct").unwrap(),
                to_base: "Osan".into(),
                on: alliance_domain::Date::from_ymd_opt(2028, 1, 1).unwrap(),
            },
        };
        assert_eq!(relocated.keys().len(), 2, "{:?}", relocated.keys());
        history.push(uuid::Uuid::from_u128(4), &relocated, "us-cell");
        let witnessed = Event::HeadWitnessed {
            version: 4,
            head_hash: String::new(),
            witnesses: Vec::new(),
        };
        assert!(witnessed.keys().is_empty());
        history.push(uuid::Uuid::from_u128(5), &witnessed, "us-cell");
        history.push(uuid::Uuid::from_u128(6), &adopted("d1"), "us-cell");

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
                (
                    4,
                    4,
                    "ForceElementRelocationPlanned",
                    "us-cell",
                    vec![&touched[1]]
                ),
                (6, 6, "DecisionAdopted", "us-cell", vec![&d1]),
            ]
        );
        assert_eq!(history.changed(1, &touched).count(), 3);
        assert_eq!(history.changed(3, &touched).count(), 2);
        assert_eq!(history.changed(6, &touched).count(), 0);
        assert_eq!(history.changed(u64::MAX, &touched).count(), 0);
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
    fn an_event_of_one_key_costs_its_history_32_bytes_and_little_spare_room() {
        let per_event = std::mem::size_of::<uuid::Uuid>()
            + std::mem::size_of::<HistoryItem>()
            + std::mem::size_of::<KeyPrint>();
        assert_eq!(per_event, 32);
        let mut history = History::default();
        for n in 0..100_000_u128 {
            history.push(uuid::Uuid::from_u128(n), &adopted("d1"), "us-cell");
            let len = history.items.len();
            for capacity in [
                history.event_ids.capacity(),
                history.items.capacity(),
                history.keys.capacity(),
            ] {
                assert!(capacity - len <= len / 8 + 16, "{len} held in {capacity}");
            }
        }
    }
}
