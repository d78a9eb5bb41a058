//! The events of the partitions this instance owns, in memory: what `read_plan`, `read_all`,
//! `find_command` and subscriptions answer from. Filled by the rebuild on taking a partition,
//! then by the partition's writer after each committed transaction.

use std::collections::HashMap;

use alliance_eventlog::{CommandRecord, PlanId, Position, StoredEvent, Version};

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Every indexed event in the order it was indexed; `events[i]` has position `i + 1`.
    events: Vec<StoredEvent>,
    /// Positions of each plan's events, in version order.
    plans: HashMap<PlanId, Vec<Position>>,
    commands: HashMap<String, CommandRecord>,
    /// For each partition ever indexed, the offset after its last indexed record. A partition's
    /// records never change once committed, so an instance that takes a partition back only
    /// reads what it has not indexed yet.
    next_offsets: HashMap<i32, i64>,
}

impl Index {
    /// The next position.
    pub fn next_position(&self) -> Position {
        self.events.len() as Position + 1
    }

    /// The offset to read `partition` from to index what is not indexed yet.
    pub fn next_offset(&self, partition: i32) -> i64 {
        self.next_offsets.get(&partition).copied().unwrap_or(0)
    }

    /// Notes that the records of `partition` before `next` are indexed.
    pub fn indexed_up_to(&mut self, partition: i32, next: i64) {
        let entry = self.next_offsets.entry(partition).or_insert(0);
        *entry = (*entry).max(next);
    }

    /// The version of each indexed plan that `belongs` (to a partition).
    pub fn heads(&self, belongs: impl Fn(PlanId) -> bool) -> HashMap<PlanId, Version> {
        self.plans
            .keys()
            .filter(|plan_id| belongs(**plan_id))
            .map(|plan_id| (*plan_id, self.plan_version(*plan_id)))
            .collect()
    }

    /// Adds an event; its `position` must be [`Index::next_position`].
    pub fn push(&mut self, event: StoredEvent) {
        let record = self
            .commands
            .entry(event.command_id.clone())
            .or_insert_with(|| CommandRecord {
                command_id: event.command_id.clone(),
                plan_id: event.plan_id,
                first_version: event.version,
                last_version: event.version,
            });
        record.last_version = record.last_version.max(event.version);
        self.plans
            .entry(event.plan_id)
            .or_default()
            .push(event.position);
        self.events.push(event);
    }

    pub fn plan_version(&self, plan_id: PlanId) -> Version {
        self.plans
            .get(&plan_id)
            .and_then(|positions| positions.last())
            .and_then(|p| self.get(*p))
            .map_or(0, |e| e.version)
    }

    fn get(&self, position: Position) -> Option<&StoredEvent> {
        usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1))
            .and_then(|i| self.events.get(i))
    }

    pub fn read_plan(&self, plan_id: PlanId, from: Version, limit: usize) -> Vec<StoredEvent> {
        let Some(positions) = self.plans.get(&plan_id) else {
            return Vec::new();
        };
        // Versions are gapless from 1, so version v sits at index v - 1.
        let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        positions
            .iter()
            .skip(skip)
            .take(limit)
            .filter_map(|p| self.get(*p).cloned())
            .collect()
    }

    pub fn read_all(&self, from: Position, limit: usize) -> Vec<StoredEvent> {
        let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        self.events.iter().skip(skip).take(limit).cloned().collect()
    }

    pub fn command(&self, command_id: &str) -> Option<CommandRecord> {
        self.commands.get(command_id).cloned()
    }
}
