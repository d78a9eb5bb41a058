//! Applying the log's records to the read models: each record decoded and its seal checked,
//! which needs no read model (a catch-up does it for a batch of records at a time, on the
//! blocking pool, while it applies the batch before), then pushed into its plan in log order.

use std::sync::Arc;

use alliance_eventlog::{LogReader, StoredEvent};
use alliance_record::signing::TrustedKeys;
use alliance_stdx::write;
use futures::StreamExt;

use crate::history::{PackedEvent, Recorded, RecordedBy, RecordedCommand, Seal};
use crate::{
    Applied, Event, PROGRESS_EVERY, PlanHistory, PlanId, Progress, Projection, ProjectionError,
    telemetry,
};

/// A record decoded, its seal checked as far as the record alone allows.
pub(crate) struct Prepared {
    recorded: Recorded,
    /// Its event, decoded: the read model folds it, and keeps it packed.
    event: Event,
    /// For a model that checks signatures: whether the record is signed (and its signature
    /// verified).
    signed: Option<bool>,
}

/// Records decoded in one piece of work while catching up, and how many pieces are under way
/// at once (one per core of this machine's class).
const BATCH: usize = 512;
const IN_FLIGHT: usize = 2;

fn untrusted(stored: &StoredEvent, reason: String) -> ProjectionError {
    ProjectionError::Untrusted {
        plan_id: stored.plan_id,
        version: stored.version,
        event_id: stored.event_id,
        reason,
    }
}

/// Decodes a record and checks its seal as far as the record alone allows (`trust`: the
/// writers' keys a trusting model checks signatures against). Needs no read model, so a
/// catch-up does it for many records at once.
pub(crate) fn prepare(
    stored: &StoredEvent,
    trust: Option<&TrustedKeys>,
) -> Result<Prepared, ProjectionError> {
    let decoded = alliance_record::decode_event_lean(stored)
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let signed = match trust {
        Some(trusted) => Some(check_seal(stored, &decoded.envelope, trusted)?),
        None => None,
    };
    let envelope = decoded.envelope;
    let packed = decoded
        .packed
        .unwrap_or_else(|| PackedEvent::new(&decoded.event));
    let actor = envelope.actor.unwrap_or_default();
    let signature =
        (!envelope.signature.is_empty()).then_some((envelope.signing_key_id, envelope.signature));
    let recorded = Recorded {
        version: stored.version,
        event_id: stored.event_id,
        record_time_micros: stored.record_time_micros,
        command: RecordedCommand::new(
            stored.command_id.clone(),
            envelope.correlation_id,
            envelope.causation_id,
            envelope.command_digest,
            RecordedBy {
                team: actor.team,
                user: actor.user,
                side: actor.side,
            },
        ),
        seal: Seal::new(envelope.prev_hash, envelope.hash, signature),
        event: packed,
    };
    Ok(Prepared {
        recorded,
        event: decoded.event,
        signed,
    })
}

/// Whether `stored` is signed, its hash and signature checked against `trusted`;
/// `Untrusted` names why a record is not trusted. Whether an unsigned one is accepted
/// depends on its plan: see [`Projection::commit`].
fn check_seal(
    stored: &StoredEvent,
    envelope: &alliance_proto::v1::EventEnvelope,
    trusted: &TrustedKeys,
) -> Result<bool, ProjectionError> {
    use alliance_record::signing::SignatureProblem;
    let untrusted = |reason: String| untrusted(stored, reason);
    let sealed = alliance_record::chain::sealed(&stored.payload)
        .ok_or_else(|| untrusted("it carries no hash".into()))?;
    let hash = alliance_record::chain::intact(&stored.payload)
        .ok_or_else(|| untrusted("its content does not match the hash it carries".into()))?;
    let Some((key_id, signature)) = sealed.signature else {
        return Ok(false);
    };
    let at = envelope.record_time.as_ref().map_or(i64::MIN, |t| {
        t.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.nanos) / 1_000)
    });
    trusted
        .check(
            key_id,
            at,
            alliance_record::signing::RECORD_CONTEXT,
            &hash,
            &signature,
        )
        .map_err(|problem| {
            untrusted(match problem {
                SignatureProblem::UnknownKey => {
                    format!("it is signed by key {key_id}, which is not trusted")
                }
                SignatureProblem::KeyNotValid => format!(
                    "it is signed by key {key_id}, which was not in force at its record time"
                ),
                SignatureProblem::BadSignature => {
                    format!("its signature does not verify under key {key_id}")
                }
            })
        })?;
    Ok(true)
}

/// Wakes the waiters of a read model when dropped, if it noted records read quietly.
struct Announce<'a> {
    projection: &'a Projection,
    moved: bool,
}

impl Drop for Announce<'_> {
    fn drop(&mut self) {
        if self.moved {
            self.projection.announce();
        }
    }
}

impl Projection {
    /// Applies one stored event (in log order). An event already applied is ignored; a gap in a
    /// plan's versions is reported, never papered over; a different record at a version
    /// already held is refused (`Conflict`). A read model [`Projection::trusting`] the writers'
    /// keys also refuses (`Untrusted`) a record that does not match its hash, one whose
    /// signature does not verify or is by a key not trusted at its record time, and an
    /// unsigned one after the plan's first signed record.
    pub fn apply(&self, stored: &StoredEvent) -> Result<(), ProjectionError> {
        self.apply_unnoted(stored)?;
        self.advance(stored);
        Ok(())
    }

    /// Prepares and commits one stored event, without noting it read.
    fn apply_unnoted(&self, stored: &StoredEvent) -> Result<(), ProjectionError> {
        self.commit(stored, prepare(stored, self.trust.as_deref())?)
    }

    /// Pushes a prepared record into its plan (the caller then notes it read). An unsigned
    /// record is accepted only while the plan has no signed record (a history written before
    /// its writers signed).
    fn commit(&self, stored: &StoredEvent, prepared: Prepared) -> Result<(), ProjectionError> {
        if prepared.signed == Some(false)
            && let Some(from) = self
                .plans()
                .get(&stored.plan_id)
                .and_then(PlanHistory::signed_from)
        {
            return Err(untrusted(
                stored,
                format!(
                    "it is unsigned, although the plan's records are signed from version {from}"
                ),
            ));
        }
        let Prepared {
            recorded, event, ..
        } = prepared;
        // Cloned for live subscribers only when there are any (not while catching up).
        let copy = (self.applied.receiver_count() > 0).then(|| recorded.clone());
        let update = telemetry::update_span(stored);
        let new = update.in_scope(|| self.push_recorded(stored.plan_id, recorded, &event))?;
        if let Some(recorded) = copy.filter(|_| new) {
            let _ = self.applied.send(Applied {
                plan_id: stored.plan_id,
                recorded,
                trace: alliance_telemetry::traceparent(&update).map(Arc::from),
            });
        }
        Ok(())
    }

    /// Applies one event; one that cannot be applied is quarantined: reported, set aside, and
    /// the read goes on.
    pub(crate) fn apply_or_skip(&self, stored: &StoredEvent) {
        self.settle(stored, self.apply_unnoted(stored));
        self.advance(stored);
    }

    /// Quarantines `stored` if it could not be applied: reported and set aside (the caller
    /// passes it).
    fn settle(&self, stored: &StoredEvent, applied: Result<(), ProjectionError>) {
        if let Err(error) = applied {
            tracing::error!(position = stored.position, %error, "read model quarantines an event");
            self.quarantine.add(alliance_eventlog::Quarantined {
                origin: stored.origin,
                position: stored.position,
                reason: error.to_string(),
                at_micros: chrono::Utc::now().timestamp_micros(),
            });
        }
    }

    /// Adds the next recorded event of a plan (`event`: its event). `Ok(false)`: it was there
    /// already. A different record at a version the plan holds is a `Conflict`: the one applied
    /// first stands.
    pub(crate) fn push_recorded(
        &self,
        plan_id: PlanId,
        recorded: Recorded,
        event: &Event,
    ) -> Result<bool, ProjectionError> {
        let mut plans = write(&self.plans);
        let have = plans.get(&plan_id).map_or(0, PlanHistory::version);
        if recorded.version <= have {
            let held = plans
                .get(&plan_id)
                .and_then(|h| {
                    h.events
                        .get(usize::try_from(recorded.version).ok()?.checked_sub(1)?)
                })
                .map(|r| r.event_id);
            return match held {
                Some(held) if held != recorded.event_id => Err(ProjectionError::Conflict {
                    plan_id,
                    version: recorded.version,
                    event_id: recorded.event_id,
                    held,
                }),
                _ => Ok(false),
            };
        }
        if recorded.version > alliance_domain::MAX_VERSION {
            return Err(ProjectionError::Corrupt(format!(
                "plan {plan_id} passes its bound of {} versions at version {}",
                alliance_domain::MAX_VERSION,
                recorded.version
            )));
        }
        if recorded.version != have + 1 {
            return Err(ProjectionError::Corrupt(format!(
                "plan {plan_id} jumps from version {have} to {}",
                recorded.version
            )));
        }
        if have == 0 {
            let base = match event {
                Event::PlanBranched {
                    parent_plan_id,
                    parent_version,
                    ..
                } => plans
                    .get(parent_plan_id)
                    .map(|parent| parent.state_at(*parent_version))
                    .ok_or_else(|| {
                        ProjectionError::Corrupt(format!(
                            "plan {plan_id} branches from plan {parent_plan_id}, which is not in the log before it"
                        ))
                    })??
                    .as_ref()
                    .clone(),
                _ => alliance_domain::Plan::default(),
            };
            plans.insert(plan_id, PlanHistory::new(plan_id, base));
        }
        if let Event::SimulationRunRecorded { run } = event {
            write(&self.runs)
                .entry(run.run_id)
                .or_default()
                .push(plan_id);
        }
        if let Some(history) = plans.get_mut(&plan_id) {
            history.push(recorded, event, self.handoff.get().map(|h| &**h));
        }
        Ok(true)
    }

    /// [`Projection::catch_up`], reporting its progress every [`PROGRESS_EVERY`] events and at
    /// the end.
    pub async fn catch_up_reporting<R: LogReader>(
        &self,
        log: &R,
        report: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<u64, ProjectionError> {
        let from = self.checkpoint();
        let total = log.remaining(&from).await?;
        let trust = self.trust.clone();
        // Batches are decoded on the blocking pool, the next ones while this task applies the
        // one before, and applied in log order.
        let mut batches = log
            .read_after(&from, false)
            .chunks(BATCH)
            .map(move |batch| {
                let trust = trust.clone();
                tokio::task::spawn_blocking(move || {
                    batch
                        .into_iter()
                        .map(|stored| {
                            stored.map(|mut stored| {
                                let prepared = prepare(&stored, trust.as_deref());
                                // Freed here, by the thread that decoded it, not by the one
                                // applying: only the record's place is needed from now on.
                                stored.payload = Vec::new();
                                (stored, prepared)
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .buffered(IN_FLIGHT);
        let mut read = 0;
        while let Some(batch) = batches.next().await {
            // Only a runtime shutting down cancels blocking work: the catch-up stops there, at
            // the last record it applied, rather than pass over a batch.
            let batch = batch.map_err(|error| match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => ProjectionError::Log(alliance_eventlog::LogError::Storage(format!(
                    "decoding the log's records stopped: {error}"
                ))),
            })?;
            // Once a batch (waking the waiters for each record cost as much as applying it),
            // and however the batch ends.
            let mut announce = Announce {
                projection: self,
                moved: false,
            };
            for next in batch {
                let (stored, prepared) = next?;
                self.settle(&stored, prepared.and_then(|p| self.commit(&stored, p)));
                announce.moved |= self.advance_quietly(&stored);
                read += 1;
                if read % PROGRESS_EVERY == 0 {
                    report(Progress { read, total });
                }
            }
        }
        report(Progress { read, total: read });
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use alliance_domain::testing::{created, plan_id};
    use alliance_domain::{Event, MAX_VERSION};

    use crate::history::tests::recorded;
    use crate::{Projection, ProjectionError};

    /// A record past the bound of a plan's versions is not applied (a read model sets it
    /// aside), whatever the plan holds before it.
    #[test]
    fn a_record_past_the_bound_of_versions_is_not_applied() {
        let projection = Projection::new();
        let event: Event = created();
        let refused = projection
            .push_recorded(plan_id(), recorded(MAX_VERSION + 1), &event)
            .unwrap_err();
        assert!(
            matches!(&refused, ProjectionError::Corrupt(why) if why.contains("bound")),
            "{refused:?}"
        );
        assert!(
            projection
                .push_recorded(plan_id(), recorded(1), &event)
                .unwrap()
        );
    }
}
