//! The write-side model of each plan: its state, the keys each of its events changed (for
//! conflict checks) and the commands already applied (for idempotency). Always the fold of the
//! log; rebuilt from the log whenever in doubt.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use alliance_domain::{Key, Plan, PlanId, Version, evolve};
use alliance_eventlog::{EventLog, LogError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

use crate::service::{CommandOutcome, Owner};
use alliance_record::envelope::decode_event;
use alliance_server::error::ServiceError;

const READ_BATCH: usize = 1024;

/// What one event of the plan's own stream changed.
#[derive(Debug, Clone)]
pub(crate) struct HistoryItem {
    pub event_id: uuid::Uuid,
    pub event_type: &'static str,
    pub team: String,
    pub keys: BTreeSet<Key>,
}

#[derive(Debug, Default)]
pub(crate) struct PlanEntry {
    pub state: Plan,
    /// `history[i]` is the event at version `i + 1` of the plan's own stream.
    pub history: Vec<HistoryItem>,
    /// Every command applied to this plan, by command id.
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
    /// Records an event just decided (or read back) at the next version.
    pub fn push(&mut self, item: HistoryItem, event: &alliance_domain::Event) {
        let state = std::mem::take(&mut self.state);
        self.state = evolve(state, event);
        self.history.push(item);
    }

    pub fn record_command(
        &mut self,
        command_id: &str,
        outcome: CommandOutcome,
        (owner, digest): (Owner, String),
        durability: watch::Receiver<Durability>,
    ) {
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
                let applied = entry
                    .commands
                    .entry(stored.command_id.clone())
                    .or_insert_with(|| AppliedCommand {
                        outcome: CommandOutcome {
                            plan_id,
                            first_version: stored.version,
                            plan_version: stored.version,
                            event_ids: Vec::new(),
                            replayed: true,
                        },
                        owner: Owner::recorded(decoded.envelope.actor.as_ref()),
                        digest: decoded.envelope.command_digest.clone(),
                        durability: watch::channel(Durability::Durable).1,
                    });
                applied.outcome.plan_version = stored.version;
                applied.outcome.event_ids.push(stored.event_id);
                entry.push(
                    HistoryItem {
                        event_id: stored.event_id,
                        event_type: decoded.event.event_type(),
                        team: decoded
                            .actor_team
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        keys: decoded.event.keys(),
                    },
                    &decoded.event,
                );
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
