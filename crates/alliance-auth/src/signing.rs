//! The `[[signing_key]]` entries of the identity configuration: the public keys whose
//! signatures on the log's records are trusted, each with the record times it may sign.
//!
//! ```toml
//! [[signing_key]]
//! public_key = "keys/writer-2025.pub.pem"   # Ed25519, PEM (SubjectPublicKeyInfo)
//! not_before = "2025-01-01T00:00:00Z"       # optional; inclusive
//! not_after = "2026-01-01T00:00:00Z"        # optional; exclusive: the key's retirement
//! description = "allianced writer key, 2025"
//! ```
//!
//! A retired key stays listed, with its `not_after`, so that what it signed while in force
//! still verifies. Reading the key files is the verifier's business (`alliance-server`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A `[[signing_key]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyEntry {
    /// The public key's PEM file (relative to the configuration file's directory).
    pub public_key: PathBuf,
    /// The first record time the key may sign.
    pub not_before: Option<DateTime<Utc>>,
    /// The first record time the key may no longer sign.
    pub not_after: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

impl SigningKeyEntry {
    /// Whether its period is empty (`not_after` not after `not_before`).
    pub fn empty_period(&self) -> bool {
        matches!((self.not_before, self.not_after), (Some(from), Some(until)) if until <= from)
    }
}
