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

/// What one event of the plan's own stream changed. Kept for every event of every plan, so
/// kept small: the team is shared with the item before when the same team recorded both, and
/// one key (most events change one) is held in place.
#[derive(Debug, Clone)]
pub(crate) struct HistoryItem {
    pub event_id: uuid::Uuid,
    pub event_type: &'static str,
    pub team: Arc<str>,
    /// In order; exactly as many as the event changed (a plan keeps one item per event).
    pub keys: SmallVec<[Key; 1]>,
}

#[derive(Debug, Default)]
pub(crate) struct PlanEntry {
    pub state: Plan,
    /// `history[i]` is the event at version `i + 1` of the plan's own stream.
    pub history: Vec<HistoryItem>,
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
        let team = match self.history.last() {
            Some(before) if &*before.team == team => Arc::clone(&before.team),
            _ => Arc::from(team),
        };
        self.history.push(HistoryItem {
            event_id,
            event_type: event.event_type(),
            team,
            keys: event.keys().into_iter().collect(),
        });
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
