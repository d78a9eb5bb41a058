//! What a log holds, to compare two copies: every plan's version and head, each chain verified.

use std::collections::BTreeMap;

use alliance_eventlog::{ChainView, Checkpoint, LogReader, PlanId};
use alliance_record::chain::{self, ChainBreak, Hash, Verifier};
use futures::StreamExt;

use crate::CopyError;

/// One plan's head: its last version and that record's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanHead {
    pub version: u64,
    pub hash: Hash,
}

/// Every plan of a log with its verified head, and the events counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub events: u64,
    pub plans: BTreeMap<PlanId, PlanHead>,
}

impl Inventory {
    /// A text line per plan (`plan version hash`), then `events N`: the manifest's form.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (plan, head) in &self.plans {
            text.push_str(&format!(
                "{plan} {} {}\n",
                head.version,
                chain::hex(&head.hash)
            ));
        }
        text.push_str(&format!("events {}\n", self.events));
        text
    }

    /// Reads what [`Inventory::to_text`] wrote.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let mut inventory = Inventory::default();
        for (number, line) in text.lines().enumerate() {
            let bad = || format!("line {}: {line:?} is not `plan version hash`", number + 1);
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["events", n] => inventory.events = n.parse().map_err(|_| bad())?,
                [plan, version, hash] => {
                    let plan = PlanId::parse_str(plan).map_err(|_| bad())?;
                    let version = version.parse().map_err(|_| bad())?;
                    let hash = unhex(hash).ok_or_else(bad)?;
                    inventory.plans.insert(plan, PlanHead { version, hash });
                }
                _ => return Err(bad()),
            }
        }
        Ok(inventory)
    }

    /// Where `self` (a copy) and `source` differ, in words; empty when they agree.
    pub fn differences(&self, source: &Inventory) -> Vec<String> {
        let mut found = Vec::new();
        if self.events != source.events {
            found.push(format!(
                "{} events, where the source holds {}",
                self.events, source.events
            ));
        }
        for (plan, head) in &source.plans {
            match self.plans.get(plan) {
                None => found.push(format!("plan {plan} is missing")),
                Some(h) if h != head => found.push(format!(
                    "plan {plan} ends at version {} ({}), where the source ends at {} ({})",
                    h.version,
                    chain::hex(&h.hash),
                    head.version,
                    chain::hex(&head.hash)
                )),
                Some(_) => {}
            }
        }
        for plan in self.plans.keys().filter(|p| !source.plans.contains_key(p)) {
            found.push(format!("plan {plan} is not in the source"));
        }
        found
    }
}

fn unhex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        hash[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(hash)
}

/// Builds an inventory as records come, in log order, verifying each plan's chain.
#[derive(Default)]
pub struct Counter {
    events: u64,
    verifiers: BTreeMap<PlanId, Verifier>,
}

impl Counter {
    pub fn check<'a>(&mut self, record: impl Into<ChainView<'a>>) -> Result<(), ChainBreak> {
        let record = record.into();
        self.events += 1;
        self.verifiers
            .entry(record.plan_id)
            .or_default()
            .check(record)
    }

    pub fn finish(self) -> Result<Inventory, CopyError> {
        let mut plans = BTreeMap::new();
        for (plan, mut verifier) in self.verifiers {
            let head = verifier
                .finish()
                .map_err(|e| CopyError::Chain { plan, source: e })?;
            plans.insert(
                plan,
                PlanHead {
                    version: head.events,
                    hash: head.head,
                },
            );
        }
        Ok(Inventory {
            events: self.events,
            plans,
        })
    }
}

/// Reads the whole of `log` (in log order) into a verified inventory.
pub async fn inventory<R: LogReader>(log: &R) -> Result<Inventory, CopyError> {
    let mut counter = Counter::default();
    let mut records = log.chain_after(&Checkpoint::default());
    while let Some(record) = records.next().await {
        let record = record?;
        counter.check(&record).map_err(|e| CopyError::Chain {
            plan: record.plan_id,
            source: e,
        })?;
    }
    counter.finish()
}
