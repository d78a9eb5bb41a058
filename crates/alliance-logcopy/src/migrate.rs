//! Moving a history between logs: every plan of a source (or some plans) copied into a target
//! log, record for record: event ids, versions, record times, actors, seals and signatures are
//! the stored bytes themselves, never re-encoded.
//!
//! A migration reads the source twice. The first read verifies every chain and counts; the
//! target is then checked before anything is written: each plan it already holds must be one
//! of those copied and end on the source's own record at its version (a hash covers every
//! record before it, so the whole prefix is the source's). A target holding anything else is
//! refused. The second read appends what the target lacks, each command's events in one append
//! (atomic, so a migration interrupted anywhere resumes at each plan's head without a
//! duplicate), pipelined. The target is read back last and its heads and counts compared.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alliance_eventlog::{Checkpoint, EventLog, LogReader, NewEvent, PlanId, StoredEvent};
use alliance_record::chain;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::CopyError;
use crate::inventory::{Counter, Inventory, inventory};

/// Appends in flight at once.
const WINDOW: usize = 512;

/// What to copy.
#[derive(Debug, Clone, Default)]
pub struct Migration {
    /// Only these plans [default: every plan of the source].
    pub plans: Option<BTreeSet<PlanId>>,
    /// Stop after appending this many events (at a command's end): a migration cut short, to
    /// be resumed.
    pub stop_after: Option<u64>,
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Events appended to the target now.
    pub copied: u64,
    /// Events the target held already (a resumed migration).
    pub already_present: u64,
    /// Whether every selected plan now ends where the source's does (false when cut short).
    pub complete: bool,
    /// The source's verified heads and count, of the plans selected.
    pub source: Inventory,
}

/// Copies `source` into `target`, whose records `target_reader` reads back (the same log, read
/// as every reader reads it: on Kafka, the committed records of the topic).
pub async fn migrate<S: LogReader, T: EventLog, R: LogReader>(
    source: &S,
    target: &T,
    target_reader: &R,
    migration: &Migration,
) -> Result<MigrationReport, CopyError> {
    let selected = |plan: &PlanId| migration.plans.as_ref().is_none_or(|p| p.contains(plan));

    // What the target holds, each plan's chain verified.
    let held = inventory(target_reader).await?;

    // The source, verified, and its hash at each version the target ends at.
    let mut counter = Counter::default();
    let mut at_target_head: BTreeMap<PlanId, chain::Hash> = BTreeMap::new();
    let mut records = source.read_after(&Checkpoint::default(), false);
    while let Some(record) = records.next().await {
        let record = record?;
        if !selected(&record.plan_id) {
            continue;
        }
        counter.check(&record).map_err(|e| CopyError::Chain {
            plan: record.plan_id,
            source: e,
        })?;
        if held
            .plans
            .get(&record.plan_id)
            .is_some_and(|h| h.version == record.version)
            && let Some(hash) = chain::carried_hash(&record.payload)
        {
            at_target_head.insert(record.plan_id, hash);
        }
    }
    let source_inventory = counter.finish()?;
    let mut foreign = Vec::new();
    for (plan, head) in &held.plans {
        if !source_inventory.plans.contains_key(plan) {
            foreign.push(format!("plan {plan} is not one of those copied"));
        } else if at_target_head.get(plan) != Some(&head.hash) {
            foreign.push(format!(
                "plan {plan} at version {} is not the source's record",
                head.version
            ));
        }
    }
    if !foreign.is_empty() {
        return Err(CopyError::TargetHoldsOther(foreign));
    }

    // The copy: what each plan lacks, a command per append.
    let mut heads: HashMap<PlanId, u64> = held.plans.iter().map(|(p, h)| (*p, h.version)).collect();
    let mut pending: HashMap<PlanId, Vec<StoredEvent>> = HashMap::new();
    let mut in_flight = FuturesOrdered::new();
    let (mut copied, mut already_present) = (0u64, 0u64);
    let mut cut_short = false;
    let mut records = source.read_after(&Checkpoint::default(), false);
    while let Some(record) = records.next().await {
        let record = record?;
        // Only what the first read verified: a source still being written (a topic that keeps
        // serving) is copied as it stood then.
        let verified = source_inventory
            .plans
            .get(&record.plan_id)
            .map_or(0, |h| h.version);
        if !selected(&record.plan_id) || record.version > verified {
            continue;
        }
        if record.version <= heads.get(&record.plan_id).copied().unwrap_or(0) {
            already_present += 1;
            continue;
        }
        let group = pending.entry(record.plan_id).or_default();
        if group
            .last()
            .is_some_and(|last| last.command_id != record.command_id)
        {
            let events = std::mem::take(group);
            if migration.stop_after.is_some_and(|n| copied >= n) {
                cut_short = true;
                break;
            }
            copied += events.len() as u64;
            in_flight.push_back(append(target, &mut heads, events));
            while in_flight.len() >= WINDOW {
                if let Some(done) = in_flight.next().await {
                    done?;
                }
            }
        }
        pending.entry(record.plan_id).or_default().push(record);
    }
    drop(records);
    if !cut_short {
        for (_, events) in pending.drain() {
            if events.is_empty() {
                continue;
            }
            if migration.stop_after.is_some_and(|n| copied >= n) {
                cut_short = true;
                break;
            }
            copied += events.len() as u64;
            in_flight.push_back(append(target, &mut heads, events));
        }
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    if cut_short {
        return Ok(MigrationReport {
            copied,
            already_present,
            complete: false,
            source: source_inventory,
        });
    }

    // The target read back: every chain verified, each head and the count the source's.
    let copy = inventory(target_reader).await?;
    let differences = copy.differences(&source_inventory);
    if !differences.is_empty() {
        return Err(CopyError::Mismatch(differences));
    }
    Ok(MigrationReport {
        copied,
        already_present,
        complete: true,
        source: source_inventory,
    })
}

/// Appends one command's events (`events`, consecutive versions of one plan) after the plan's
/// head, which it moves on.
fn append<T: EventLog>(
    target: &T,
    heads: &mut HashMap<PlanId, u64>,
    events: Vec<StoredEvent>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CopyError>> + Send>> {
    let plan = events[0].plan_id;
    let head = heads.entry(plan).or_insert(0);
    let expected = *head;
    *head += events.len() as u64;
    let records = events
        .into_iter()
        .map(|r| NewEvent {
            event_id: r.event_id,
            command_id: r.command_id,
            event_type: r.event_type,
            record_time_micros: r.record_time_micros,
            payload: r.payload,
        })
        .collect();
    let appending = target.append(plan, expected, records);
    Box::pin(async move {
        appending.await?;
        Ok(())
    })
}
