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
//!
//! The `[[witness_key]]` entries are the keys of the governments' auditors who counter-sign
//! plans' heads, each answering for one side, with the record times it may witness at:
//!
//! ```toml
//! [[witness_key]]
//! public_key = "keys/rok-audit-2025.pub.pem"
//! side = "rok"
//! not_before = "2025-01-01T00:00:00Z"       # optional; inclusive
//! not_after = "2027-01-01T00:00:00Z"        # optional; exclusive
//! description = "ROK Board of Audit and Inspection, 2025"
//! ```
//!
//! [`KeysFile`] reads only these two kinds of entries from a file (the identity configuration
//! itself, or a file of keys alone), for verifying offline.

use std::path::{Path, PathBuf};

use alliance_domain::Side;
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

/// A `[[witness_key]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessKeyEntry {
    /// The public key's PEM file (relative to the configuration file's directory).
    pub public_key: PathBuf,
    /// The side whose auditors hold it.
    pub side: Side,
    /// The first record time it may witness at.
    pub not_before: Option<DateTime<Utc>>,
    /// The first record time it may no longer witness at.
    pub not_after: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// The first of the `signing` and `witness` keys whose period is empty (`not_after` not after
/// `not_before`), by its public key's file.
pub fn empty_period<'a>(
    signing: &'a [SigningKeyEntry],
    witness: &'a [WitnessKeyEntry],
) -> Option<&'a Path> {
    let periods = signing
        .iter()
        .map(|k| (&k.public_key, k.not_before, k.not_after));
    let witnessed = witness
        .iter()
        .map(|k| (&k.public_key, k.not_before, k.not_after));
    periods
        .chain(witnessed)
        .find(
            |(_, from, until)| matches!((from, until), (Some(from), Some(until)) if until <= from),
        )
        .map(|(key, _, _)| key.as_path())
}

/// The `[[signing_key]]` and `[[witness_key]]` entries of a file, everything else in it left
/// aside: what a verifier needs of the identity configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct KeysFile {
    #[serde(default, rename = "signing_key")]
    pub signing_keys: Vec<SigningKeyEntry>,
    #[serde(default, rename = "witness_key")]
    pub witness_keys: Vec<WitnessKeyEntry>,
}

impl KeysFile {
    /// Reads the entries of `path`; their key files are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut keys: KeysFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for key in &mut keys.signing_keys {
            key.public_key = base.join(&key.public_key);
        }
        for key in &mut keys.witness_keys {
            key.public_key = base.join(&key.public_key);
        }
        if let Some(key) = empty_period(&keys.signing_keys, &keys.witness_keys) {
            return Err(format!(
                "{}: key {}: not_after is not after not_before",
                path.display(),
                key.display()
            ));
        }
        Ok(keys)
    }
}
