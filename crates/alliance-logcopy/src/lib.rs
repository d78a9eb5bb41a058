//! Copies of a log that are checked whole.
//!
//! - [`backup`]: an online backup of a data directory of the embedded log (the event log and the
//!   other SQLite databases through SQLite's backup API, the read models' snapshot as a file),
//!   taken while commands keep landing, with a manifest of every plan's verified head;
//! - [`restore`]: a backup put into a new, empty data directory, checked against its manifest;
//! - [`migrate`]: a whole log, or some plans, copied record for record into another log (the
//!   embedded log to a Kafka topic, or a topic to an embedded log), resumable.
//!
//! Every copy is verified: each plan's hash chain on the copy, its head and the count of
//! events against the source ([`inventory`]).

pub mod backup;
pub mod inventory;
pub mod migrate;

pub use backup::{BackupReport, backup, restore};
pub use inventory::{Inventory, PlanHead, inventory};
pub use migrate::{Migration, MigrationReport, migrate};

use alliance_eventlog::{LogError, PlanId};
use alliance_record::chain::ChainBreak;

/// Why a copy was refused or does not match its source.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not empty (it holds {entry}): a copy is only written into an empty directory"
    )]
    NotEmpty { path: String, entry: String },
    #[error("{0} holds no event log (alliance.db)")]
    NoLog(String),
    #[error("{0} has no MANIFEST: not a complete backup")]
    NoManifest(String),
    #[error("the manifest of {path} does not read: {detail}")]
    Manifest { path: String, detail: String },
    #[error("plan {plan}'s chain breaks: {source}")]
    Chain { plan: PlanId, source: ChainBreak },
    #[error("the target holds other data: {}", .0.join("; "))]
    TargetHoldsOther(Vec<String>),
    #[error("the copy does not match its source: {}", .0.join("; "))]
    Mismatch(Vec<String>),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.display().to_string(),
        source,
    }
}
