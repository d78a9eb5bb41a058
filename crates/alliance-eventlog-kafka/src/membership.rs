//! Dividing the partitions among command-service instances with a Kafka consumer group.
//!
//! Every instance joins one group on the topic (cooperative-sticky assignment, so a rebalance
//! moves only the partitions that must move). The group is used for membership only: its
//! partitions are paused, nothing is read or committed through it. When the group assigns a
//! partition, the instance takes it over ([`Partitions::acquire`]); when it revokes one, or the
//! instance drops out of the group, the instance lets it go ([`Partitions::release`]). Each
//! member's `client.id` carries the gRPC address it serves, so every instance learns from the
//! group's description where each partition is written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alliance_eventlog::LogError;
use alliance_stdx::lock;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

use crate::partitions::Partitions;
use crate::unavailable;

/// Marks the gRPC address in a member's `client.id`.
const ADDRESS_MARK: &str = "@";
/// Marks the member's token (in its writers' `transactional.id`s) in its `client.id`.
const TOKEN_MARK: &str = "#";

/// The token in a member's `client.id`, if it has one.
pub(crate) fn token_of(client_id: &str) -> Option<&str> {
    let (_, rest) = client_id.split_once(TOKEN_MARK)?;
    Some(
        rest.split_once(ADDRESS_MARK)
            .map_or(rest, |(token, _)| token),
    )
}
/// How often the instance re-reads where the partitions are written.
const OWNERS_REFRESH: Duration = Duration::from_secs(1);
/// How long to wait before trying again to take over a partition that failed to.
const RETRY_ACQUIRE: Duration = Duration::from_millis(500);

struct GroupContext {
    partitions: Arc<Partitions>,
    /// Partitions the group gave this instance, whether or not taken over yet.
    assigned: std::sync::Mutex<BTreeSet<i32>>,
    /// Told once the first assignment is taken over.
    joined: std::sync::Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    first_assignment: AtomicBool,
    /// Set by every rebalance: where the partitions are written has changed.
    rebalanced: AtomicBool,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Relaxed);
        if let Rebalance::Revoke(revoked) = rebalance {
            // What is queued for a revoked partition still commits, under the generation that
            // revokes it; a lost assignment commits nothing more.
            self.keep_metadata(consumer, !consumer.assignment_lost());
            let mut assigned = lock(&self.assigned);
            for element in revoked.elements() {
                assigned.remove(&element.partition());
                self.partitions.release(element.partition());
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(given) = rebalance {
            self.keep_metadata(consumer, true);
            if let Err(error) = consumer.pause(given) {
                tracing::warn!(%error, "cannot pause the group's partitions");
            }
            let mut assigned = lock(&self.assigned);
            assigned.extend(given.elements().iter().map(|e| e.partition()));
            self.first_assignment.store(true, Ordering::Relaxed);
        }
    }
}

impl GroupContext {
    /// Keeps the group's metadata as of this rebalance for the writer's transactions (`valid`),
    /// or drops it: the writer commits nothing until the next rebalance gives it again.
    fn keep_metadata(&self, consumer: &BaseConsumer<Self>, valid: bool) {
        let metadata = valid.then(|| consumer.group_metadata()).flatten();
        *lock(&self.partitions.group) = metadata.map(Arc::new);
    }
}

/// The instance's membership in the group, ended on drop (leaving the group releases every
/// partition and lets the others take them at once).
pub(crate) struct Membership {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins the group and waits (up to the configured timeout) for the first assignment and
    /// for the partitions in it to be taken over.
    pub fn join(partitions: Arc<Partitions>) -> Result<Self, LogError> {
        let config = partitions.config.clone();
        let (joined, joined_rx) = std::sync::mpsc::sync_channel(1);
        let context = GroupContext {
            partitions: partitions.clone(),
            assigned: std::sync::Mutex::new(BTreeSet::new()),
            joined: std::sync::Mutex::new(Some(joined)),
            first_assignment: AtomicBool::new(false),
            rebalanced: AtomicBool::new(false),
        };
        let token = &partitions.token;
        let client_id = match &config.advertised {
            Some(address) => format!("alliance-commands{TOKEN_MARK}{token}{ADDRESS_MARK}{address}"),
            None => format!("alliance-commands{TOKEN_MARK}{token}"),
        };
        let consumer: BaseConsumer<GroupContext> = config
            .client()
            .set("group.id", &config.transactional_prefix)
            .set("client.id", &client_id)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .set(
                "session.timeout.ms",
                config.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (config.session_timeout.as_millis() / 4)
                    .max(100)
                    .to_string(),
            )
            .create_with_context(context)
            .map_err(unavailable)?;
        consumer
            .subscribe(&[config.topic.as_str()])
            .map_err(unavailable)?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-membership".into())
            .spawn(move || run(&consumer, &running))
            .map_err(unavailable)?;
        let membership = Self {
            stop,
            thread: Some(thread),
        };
        joined_rx.recv_timeout(config.timeout).map_err(|_| {
            LogError::Unavailable(format!(
                "joining the writers' group on topic {} timed out",
                config.topic
            ))
        })?;
        Ok(membership)
    }
}

fn run(consumer: &BaseConsumer<GroupContext>, stop: &AtomicBool) {
    let context = consumer.context();
    let mut refreshed = Instant::now() - OWNERS_REFRESH;
    let mut retry_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Serves rebalances (the callbacks above) and errors; no message is expected.
        if let Some(Err(error)) = consumer.poll(Duration::from_millis(100)) {
            tracing::warn!(%error, "writers' group");
        }
        let wanted: Vec<i32> = lock(&context.assigned).iter().copied().collect();
        // A partition whose writer lost the right to write is taken over again while the group
        // gives it here, once a rebalance has given metadata to commit with (the group's
        // generation decides who may commit to it).
        let owned = context.partitions.owned_partitions();
        let missing: Vec<i32> = wanted.into_iter().filter(|p| !owned.contains(p)).collect();
        let member = lock(&context.partitions.group).is_some();
        if !missing.is_empty() && member && Instant::now() >= retry_at {
            // Each take-over waits on the broker (fencing, reading): take them over together.
            let failed = std::thread::scope(|scope| {
                let takeovers: Vec<_> = missing
                    .iter()
                    .map(|&partition| {
                        scope.spawn(move || (partition, context.partitions.acquire(partition)))
                    })
                    .collect();
                takeovers
                    .into_iter()
                    .filter_map(|t| t.join().ok())
                    .filter_map(|(partition, result)| result.err().map(|e| (partition, e)))
                    .count()
            });
            if failed > 0 {
                retry_at = Instant::now() + RETRY_ACQUIRE;
            }
            refreshed = Instant::now() - OWNERS_REFRESH;
        } else if missing.is_empty()
            && context.first_assignment.load(Ordering::Relaxed)
            && let Some(joined) = lock(&context.joined).take()
        {
            let _ = joined.send(());
        }
        if context.rebalanced.swap(false, Ordering::Relaxed) {
            refreshed = Instant::now() - OWNERS_REFRESH;
        }
        if refreshed.elapsed() >= OWNERS_REFRESH {
            refreshed = Instant::now();
            match owners(consumer) {
                Ok(owners) => context.partitions.set_owners(owners),
                Err(error) => tracing::debug!(%error, "cannot describe the writers' group"),
            }
        }
    }
    // Leaving: dropping the consumer closes it, which revokes (and so releases) everything.
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where each partition is written, from the group's description: each member's address (in
/// its `client.id`) and assignment.
fn owners(consumer: &BaseConsumer<GroupContext>) -> Result<BTreeMap<i32, String>, LogError> {
    let config = &consumer.context().partitions.config;
    let groups = consumer
        .fetch_group_list(Some(&config.transactional_prefix), Duration::from_secs(2))
        .map_err(unavailable)?;
    let mut owners = BTreeMap::new();
    for group in groups.groups() {
        for member in group.members() {
            let Some((_, address)) = member.client_id().split_once(ADDRESS_MARK) else {
                continue;
            };
            let Some(assignment) = member.assignment() else {
                continue;
            };
            for partition in assigned_partitions(assignment, &config.topic) {
                owners.insert(partition, address.to_owned());
            }
        }
    }
    Ok(owners)
}

/// The partitions of `topic` in a consumer-protocol assignment (version, then an array of
/// topic name and partition array; user data after it is ignored).
fn assigned_partitions(bytes: &[u8], topic: &str) -> Vec<i32> {
    let mut reader = Reader { bytes };
    let mut partitions = Vec::new();
    let parsed = (|| {
        reader.i16()?;
        for _ in 0..reader.i32()? {
            let name_len = usize::try_from(reader.i16()?).ok()?;
            let name = reader.take(name_len)?;
            let count = reader.i32()?;
            for _ in 0..count {
                let partition = reader.i32()?;
                if name == topic.as_bytes() {
                    partitions.push(partition);
                }
            }
        }
        Some(())
    })();
    if parsed.is_none() {
        tracing::debug!("unreadable group assignment");
    }
    partitions
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{assigned_partitions, token_of};

    #[test]
    fn a_member_s_token_is_read_from_its_client_id_with_or_without_an_address() {
        assert_eq!(
            token_of("alliance-commands#01ab@127.0.0.1:50051"),
            Some("01ab")
        );
        assert_eq!(token_of("alliance-commands#01ab"), Some("01ab"));
        assert_eq!(token_of("alliance-commands@127.0.0.1:50051"), None);
    }

    #[test]
    fn reads_the_partitions_of_a_consumer_protocol_assignment() {
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        for (topic, partitions) in [("other", vec![9]), ("plans", vec![2_i32, 5])] {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend([0, 0, 0, 0]);
        assert_eq!(assigned_partitions(&bytes, "plans"), vec![2, 5]);
        assert_eq!(assigned_partitions(&bytes[..9], "plans"), Vec::<i32>::new());
    }
}
