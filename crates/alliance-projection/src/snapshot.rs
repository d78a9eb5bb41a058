//! Snapshots of the read models and their canonical digest.
//!
//! A snapshot file holds one JSON line per recorded event of every plan (plans in id order,
//! events in version order), after a header line naming the log position it covers, and ends
//! with the SHA-256 of everything before it. Loading checks the checksum and every plan's
//! versions before anything is served; a snapshot that fails is ignored (the caller rebuilds
//! from the log instead). The digest of a read model is the same SHA-256 over the same
//! canonical lines, so a restart from a snapshot plus the log's tail can be compared, byte for
//! byte, with a full rebuild.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use alliance_record::signing::TrustedKeys;
use alliance_stdx::hex;

use alliance_domain::{Event, PlanId, Version};
use alliance_eventlog::{Checkpoint, LogReader, Position};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Projection, ProjectionError};
use std::collections::HashMap;

use crate::history::{PackedEvent, PlanHistory, Recorded, RecordedBy, RecordedCommand, Seal};

const FORMAT: &str = "alliance-read-model/5";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    checkpoint: Checkpoint,
}

#[derive(Serialize, Deserialize)]
struct Line {
    plan_id: PlanId,
    version: Version,
    event_id: uuid::Uuid,
    record_time_micros: i64,
    command_id: String,
    correlation_id: String,
    causation_id: String,
    command_digest: String,
    team: String,
    user: String,
    side: i32,
    /// The seal's bytes, in hex: previous hash, hash, signing key id and signature (the last
    /// two empty when unsigned).
    prev_hash: String,
    hash: String,
    signing_key_id: String,
    signature: String,
    event: Event,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    sha256: String,
}

/// Why a snapshot was not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("snapshot {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Projection {
    /// Every canonical line of `plans`, plans in id order, events in version order.
    fn canonical_lines(
        plans: &HashMap<PlanId, PlanHistory>,
    ) -> Result<Vec<String>, ProjectionError> {
        let mut ids: Vec<&PlanId> = plans.keys().collect();
        ids.sort_unstable();
        let mut lines = Vec::new();
        for id in ids {
            let events = &plans[id].events;
            for (i, r) in events.iter().enumerate() {
                let line = Line {
                    plan_id: *id,
                    version: r.version,
                    event_id: r.event_id,
                    record_time_micros: r.record_time_micros,
                    command_id: r.command.command_id(),
                    correlation_id: r.command.correlation_id(),
                    causation_id: r.command.causation_id(),
                    command_digest: r.command.command_digest(),
                    team: r.command.actor.team.clone(),
                    user: r.command.actor.user.clone(),
                    side: r.command.actor.side,
                    prev_hash: hex::encode(events.prev_hash(i).unwrap_or_default()),
                    hash: hex::encode(r.seal.hash()),
                    signing_key_id: r
                        .seal
                        .signature()
                        .map(|(key, _)| hex::encode(key))
                        .unwrap_or_default(),
                    signature: r
                        .seal
                        .signature()
                        .map(|(_, signature)| hex::encode(signature))
                        .unwrap_or_default(),
                    event: r.event()?,
                };
                // Serializing plain data to a string cannot fail.
                lines.push(serde_json::to_string(&line).unwrap_or_default());
            }
        }
        Ok(lines)
    }

    /// SHA-256 (hex) of the read model's canonical lines: equal digests, equal read models. A
    /// model holding an event it cannot read has no digest: what it returns says why, and is
    /// never equal to a digest (it is not hex).
    pub fn digest(&self) -> String {
        let lines = match Self::canonical_lines(&self.plans()) {
            Ok(lines) => lines,
            Err(error) => return format!("no digest: {error}"),
        };
        let mut hasher = Sha256::new();
        for line in lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        format!("{:x}", hasher.finalize())
    }

    /// Writes a snapshot of the read model to `path` (through a temporary file and a rename,
    /// so a crash never leaves half a snapshot). Returns the position it covers.
    pub fn write_snapshot(&self, path: &Path) -> Result<Position, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        };
        // The position is published after its event is in the models, so the lines hold at
        // least everything up to it; restoring reads the tail from there and skips repeats.
        let checkpoint = self.checkpoint();
        let position = checkpoint.position;
        let lines =
            Self::canonical_lines(&self.plans()).map_err(|error| SnapshotError::Invalid {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        let header = serde_json::to_string(&Header {
            format: FORMAT.into(),
            checkpoint,
        })
        .unwrap_or_default();
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial).map_err(io)?;
        let mut out = BufWriter::new(file);
        let mut hasher = Sha256::new();
        for line in std::iter::once(&header).chain(&lines) {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
            writeln!(out, "{line}").map_err(io)?;
        }
        let trailer = Trailer {
            sha256: format!("{:x}", hasher.finalize()),
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&trailer).unwrap_or_default()
        )
        .map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)?;
        Ok(position)
    }

    /// A read model loaded from a snapshot, checked: the checksum, the format, and every plan's
    /// versions (gapless from 1). Nothing of a snapshot that fails a check is used.
    pub fn from_snapshot(path: &Path) -> Result<Self, SnapshotError> {
        Self::from_snapshot_trusting(path, None)
    }

    fn from_snapshot_trusting(
        path: &Path,
        trust: Option<Arc<TrustedKeys>>,
    ) -> Result<Self, SnapshotError> {
        let invalid = |message: String| SnapshotError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut lines: Vec<String> = Vec::new();
        for line in BufReader::new(file).lines() {
            lines.push(line.map_err(|e| invalid(format!("unreadable: {e}")))?);
        }
        let trailer = lines.pop().ok_or_else(|| invalid("empty".into()))?;
        let trailer: Trailer = serde_json::from_str(&trailer)
            .map_err(|_| invalid("no checksum at the end (truncated?)".into()))?;
        let mut hasher = Sha256::new();
        for line in &lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        if format!("{:x}", hasher.finalize()) != trailer.sha256 {
            return Err(invalid("checksum mismatch".into()));
        }
        let mut lines = lines.into_iter();
        let header: Header = lines
            .next()
            .and_then(|l| serde_json::from_str(&l).ok())
            .ok_or_else(|| invalid("no header".into()))?;
        if header.format != FORMAT {
            return Err(invalid(format!("unknown format {}", header.format)));
        }
        let mut pending: std::collections::BTreeMap<PlanId, Vec<(Recorded, Event)>> =
            Default::default();
        for line in lines {
            let line: Line =
                serde_json::from_str(&line).map_err(|e| invalid(format!("bad line: {e}")))?;
            let bytes = |field: &str, text: &str| {
                hex::decode(text).ok_or_else(|| invalid(format!("bad {field} {text:?}")))
            };
            let signature = if line.signature.is_empty() {
                None
            } else {
                Some((
                    bytes("signing_key_id", &line.signing_key_id)?,
                    bytes("signature", &line.signature)?,
                ))
            };
            let recorded = Recorded {
                version: line.version,
                event_id: line.event_id,
                record_time_micros: line.record_time_micros,
                command: RecordedCommand::new(
                    line.command_id,
                    line.correlation_id,
                    line.causation_id,
                    line.command_digest,
                    RecordedBy {
                        team: line.team,
                        user: line.user,
                        side: line.side,
                    },
                ),
                seal: Seal::new(
                    bytes("prev_hash", &line.prev_hash)?,
                    bytes("hash", &line.hash)?,
                    signature,
                ),
                event: PackedEvent::new(&line.event),
            };
            pending
                .entry(line.plan_id)
                .or_default()
                .push((recorded, line.event));
        }
        // A branch is built on its parent's state: load parents first.
        let projection = Projection::with_trust(trust);
        while !pending.is_empty() {
            let ready: Vec<PlanId> = pending
                .iter()
                .filter(|(_, events)| match events.first().map(|(_, event)| event) {
                    Some(Event::PlanBranched { parent_plan_id, .. }) => {
                        !pending.contains_key(parent_plan_id)
                    }
                    _ => true,
                })
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                return Err(invalid("branches whose parents are missing".into()));
            }
            for plan_id in ready {
                for (recorded, event) in pending.remove(&plan_id).unwrap_or_default() {
                    projection
                        .push_recorded(plan_id, recorded, &event)
                        .map_err(|e| invalid(e.to_string()))?;
                }
            }
        }
        projection.checkpoint.send_replace(header.checkpoint);
        Ok(projection)
    }
}

impl Projection {
    /// A read model restored from the snapshot at `path` and checked against `log`: the events
    /// the snapshot's checkpoint names must be where it says in the log (so a snapshot of
    /// another log is never used). The caller then reads the log's tail (`catch_up`).
    pub async fn restore<R: LogReader>(path: &Path, log: &R) -> Result<Self, SnapshotError> {
        Self::restore_trusting(path, log, None).await
    }

    /// [`Projection::restore`], into a read model that checks signatures against `trust`
    /// ([`Projection::trusting`]).
    pub async fn restore_trusting<R: LogReader>(
        path: &Path,
        log: &R,
        trust: Option<Arc<TrustedKeys>>,
    ) -> Result<Self, SnapshotError> {
        let projection = Self::from_snapshot_trusting(path, trust)?;
        let invalid = |message: String| SnapshotError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let checkpoint = projection.checkpoint();
        let holds = log
            .holds(&checkpoint)
            .await
            .map_err(|e| invalid(format!("cannot read the log: {e}")))?;
        if !holds {
            return Err(invalid(format!(
                "it does not match the log at position {}",
                checkpoint.position
            )));
        }
        Ok(projection)
    }
}
