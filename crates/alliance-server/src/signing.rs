//! The writers' keys: the trusted public keys of the identity configuration
//! (`[[signing_key]]`), and the key a writing instance signs its records with; and the
//! auditors' witness keys (`[[witness_key]]`).

use std::path::Path;

use alliance_record::signing::{KeyError, Signer, TrustedKey, TrustedKeys};
use alliance_record::witness::{WitnessKey, WitnessKeys};

/// The name of the key an instance makes in its data directory when none is configured.
pub const DEFAULT_KEY_FILE: &str = "signing-key.pem";

/// The trusted keys an identity configuration lists.
pub fn trusted_keys(config: &alliance_auth::AuthConfig) -> Result<TrustedKeys, KeyError> {
    signing_keys(&config.signing_keys)
}

/// The keys of `[[signing_key]]` entries.
pub fn signing_keys(entries: &[alliance_auth::SigningKeyEntry]) -> Result<TrustedKeys, KeyError> {
    entries
        .iter()
        .map(|entry| {
            TrustedKey::from_file(
                &entry.public_key,
                entry.not_before.map(|t| t.timestamp_micros()),
                entry.not_after.map(|t| t.timestamp_micros()),
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedKeys::new)
}

/// The keys of `[[witness_key]]` entries.
pub fn witness_keys(entries: &[alliance_auth::WitnessKeyEntry]) -> Result<WitnessKeys, KeyError> {
    entries
        .iter()
        .map(|entry| {
            let key = TrustedKey::from_file(
                &entry.public_key,
                entry.not_before.map(|t| t.timestamp_micros()),
                entry.not_after.map(|t| t.timestamp_micros()),
            )?;
            Ok(WitnessKey {
                key,
                side: entry.side,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(WitnessKeys::new)
}

/// The key a writer signs with: `configured` if given, else `{data_dir}/signing-key.pem`, made
/// there (mode 0600) on first start. Reports which key it is, never the key itself.
pub fn writer_key(configured: Option<&Path>, data_dir: &Path) -> Result<Signer, KeyError> {
    let signer = match configured {
        Some(path) => Signer::load(path)?,
        None => {
            let path = data_dir.join(DEFAULT_KEY_FILE);
            let (signer, made) = Signer::load_or_create(&path)?;
            if made {
                tracing::info!(path = %path.display(), key_id = %signer.id(), "made a new signing key");
            }
            signer
        }
    };
    Ok(signer)
}

/// The keys a server trusts: those of its identity configuration or, without one
/// (development), its own writer key alone. Warns when its own key is not among them.
pub fn trusted_for_writer(configured: Option<TrustedKeys>, own: &Signer) -> TrustedKeys {
    let trusted =
        configured.unwrap_or_else(|| TrustedKeys::new([TrustedKey::always(own.verifying_key())]));
    if !trusted.knows(own.id()) {
        tracing::warn!(
            key_id = %own.id(),
            "this instance's signing key is not a [[signing_key]] of the identity configuration: \
             verification will report its records as signed by an unknown key"
        );
    }
    trusted
}
