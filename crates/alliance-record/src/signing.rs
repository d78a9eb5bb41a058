//! The writer's signature on what it seals (Ed25519).
//!
//! A writing instance holds one private key ([`Signer`], a PKCS#8 PEM file). It signs each
//! record's hash: the signed message is [`RECORD_CONTEXT`] followed by the 32-byte hash, so a
//! signature over a record can never be taken for a signature over anything else this scheme
//! signs (a plan's head, [`HEAD_CONTEXT`]). Each signature names its key by a [`KeyId`]: the first
//! 8 bytes of the SHA-256 of the raw 32-byte public key.
//!
//! Verifiers hold the [`TrustedKeys`]: public keys, each with the record times it may sign
//! (`not_before` inclusive, `not_after` exclusive), so a key can be rotated and a retired key
//! still verifies what it signed while it was in force.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::signature::Ed25519KeyPair;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::chain::Hash;

/// What a record's signature covers, before the record's hash.
pub const RECORD_CONTEXT: &[u8] = b"alliance.v1.record-hash\0";
/// What a plan head's signature covers, before the head's canonical bytes.
pub const HEAD_CONTEXT: &[u8] = b"alliance.v1.plan-head\0";

/// An Ed25519 signature's length.
pub const SIGNATURE_LEN: usize = 64;
/// A key id's length.
pub const KEY_ID_LEN: usize = 8;

/// Names a signing key: the first 8 bytes of the SHA-256 of its raw public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self(id)
    }

    /// Parses the 16 hex digits [`Display`](std::fmt::Display) writes.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != KEY_ID_LEN * 2 {
            return None;
        }
        let mut id = [0; KEY_ID_LEN];
        for (byte, pair) in id.iter_mut().zip(bytes.chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(id))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::chain::hex(&self.0))
    }
}

/// Why a key could not be loaded or made. Never quotes a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write signing key {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 private key in PKCS#8 PEM")]
    NotPrivateKey { path: String },
    #[error("{path} is not an Ed25519 public key in PEM (SubjectPublicKeyInfo)")]
    NotPublicKey { path: String },
    #[error("no randomness for a new signing key: {0}")]
    Random(String),
    #[error("the signing key cannot be used for signing: {0}")]
    Unusable(String),
}

/// The private key a writer signs with. Its `Debug` names only the key id.
///
/// Signing goes through AWS-LC (`aws-lc-rs`, already the TLS library here), which signs in
/// about 60% of the time `ed25519-dalek` takes; Ed25519 signatures are deterministic, so both
/// make the same bytes. Keys are read, written and verified with `ed25519-dalek`.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    signing: Arc<Ed25519KeyPair>,
    id: KeyId,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("id", &self.id).finish()
    }
}

impl Signer {
    fn new(key: SigningKey) -> Result<Self, KeyError> {
        let id = KeyId::of(&key.verifying_key());
        let signing = Ed25519KeyPair::from_seed_and_public_key(
            key.as_bytes(),
            key.verifying_key().as_bytes(),
        )
        .map_err(|e| KeyError::Unusable(e.to_string()))?;
        Ok(Self {
            key,
            signing: Arc::new(signing),
            id,
        })
    }

    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        // The key wipes itself when dropped; the seed is wiped here.
        seed.fill(0);
        std::hint::black_box(&mut seed);
        Self::new(key)
    }

    /// The key of a PKCS#8 PEM text (`path` names it in errors).
    pub fn from_pem(pem: &str, path: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::NotPrivateKey {
            path: path.to_owned(),
        })?;
        Self::new(key)
    }

    /// Reads the key of a PKCS#8 PEM file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_pem(&pem, &display)
    }

    /// Reads the key of `path`, or, when there is no such file, makes one and writes it there
    /// (readable by its owner only). Returns the key and whether it was made now.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Self::load(path).map(|signer| (signer, false));
        }
        let signer = Self::generate()?;
        signer.write(path)?;
        Ok((signer, true))
    }

    /// Writes the key as PKCS#8 PEM to a new file, mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let failed = |source| KeyError::Write {
            path: path.display().to_string(),
            source,
        };
        // PKCS#8 v1 (RFC 8410: the private key alone), which every tool reads (OpenSSL does
        // not read the v2 form with the public key appended).
        let keypair = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = keypair
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| failed(std::io::Error::other(e.to_string())))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(failed)?;
        file.write_all(pem.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as PEM (SubjectPublicKeyInfo), for the identity configuration.
    pub fn public_pem(&self) -> String {
        public_pem(&self.verifying_key())
    }

    /// Signs a record's hash.
    pub fn sign_record(&self, hash: &Hash) -> [u8; SIGNATURE_LEN] {
        self.sign(RECORD_CONTEXT, hash)
    }

    /// Signs `context` followed by `message`.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut signed = Vec::with_capacity(context.len() + message.len());
        signed.extend_from_slice(context);
        signed.extend_from_slice(message);
        let mut signature = [0; SIGNATURE_LEN];
        signature.copy_from_slice(self.signing.sign(&signed).as_ref());
        signature
    }
}

/// What a plan head's signature covers after [`HEAD_CONTEXT`]: the plan id's 16 bytes, the
/// version, the head hash and the time (microseconds since the epoch), integers big-endian.
pub fn head_message(plan_id: &[u8; 16], version: u64, head: &Hash, micros: i64) -> Vec<u8> {
    let mut message = Vec::with_capacity(16 + 8 + 32 + 8);
    message.extend_from_slice(plan_id);
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(head);
    message.extend_from_slice(&micros.to_be_bytes());
    message
}

/// A public key as PEM (SubjectPublicKeyInfo).
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap_or_default()
}

/// A public key of a PEM text (`path` names it in errors).
pub fn public_key_from_pem(pem: &str, path: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::NotPublicKey {
        path: path.to_owned(),
    })
}

/// One trusted public key and the record times (microseconds since the epoch) it may sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub id: KeyId,
    pub key: VerifyingKey,
    /// The first record time it may sign; unbounded when `None`.
    pub not_before_micros: Option<i64>,
    /// The first record time it may no longer sign; unbounded when `None`.
    pub not_after_micros: Option<i64>,
}

impl TrustedKey {
    /// A key trusted at every time.
    pub fn always(key: VerifyingKey) -> Self {
        Self {
            id: KeyId::of(&key),
            key,
            not_before_micros: None,
            not_after_micros: None,
        }
    }

    /// The public key of a PEM file, trusted from `not_before_micros` (inclusive) to
    /// `not_after_micros` (exclusive), each unbounded when `None`.
    pub fn from_file(
        path: &Path,
        not_before_micros: Option<i64>,
        not_after_micros: Option<i64>,
    ) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let key = public_key_from_pem(&pem, &shown)?;
        Ok(Self {
            not_before_micros,
            not_after_micros,
            ..Self::always(key)
        })
    }

    /// Whether it may sign a record written at `micros`.
    pub fn valid_at(&self, micros: i64) -> bool {
        self.not_before_micros.is_none_or(|from| micros >= from)
            && self.not_after_micros.is_none_or(|until| micros < until)
    }
}

/// How a signature fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// No trusted key has the id.
    UnknownKey,
    /// The key was not in force at the record's time.
    KeyNotValid,
    /// The signature does not verify under the key.
    BadSignature,
}

/// The public keys whose signatures a verifier accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Whether any entry holds the key with this id.
    pub fn knows(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Whether key `id` is trusted and in force at `micros` (record time), the signature aside.
    pub fn admits(&self, id: KeyId, micros: i64) -> Result<(), SignatureProblem> {
        let mut entries = self.keys.iter().filter(|k| k.id == id).peekable();
        entries.peek().ok_or(SignatureProblem::UnknownKey)?;
        if entries.any(|k| k.valid_at(micros)) {
            Ok(())
        } else {
            Err(SignatureProblem::KeyNotValid)
        }
    }

    /// Checks `signature` by key `id` over `context` + `message`, signed at `micros` (record
    /// time). A key listed more than once (several validity periods) is valid when any entry
    /// covers the time.
    pub fn check(
        &self,
        id: KeyId,
        micros: i64,
        context: &[u8],
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureProblem> {
        let mut entries = self.keys.iter().filter(|k| k.id == id).peekable();
        let first = entries.peek().ok_or(SignatureProblem::UnknownKey)?.key;
        let mut signed = Vec::with_capacity(context.len() + message.len());
        signed.extend_from_slice(context);
        signed.extend_from_slice(message);
        first
            .verify_strict(&signed, &Signature::from_bytes(signature))
            .map_err(|_| SignatureProblem::BadSignature)?;
        if entries.any(|k| k.valid_at(micros)) {
            Ok(())
        } else {
            Err(SignatureProblem::KeyNotValid)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_key_written_to_a_file_reads_back_the_same_and_only_its_owner_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let (made, created) = Signer::load_or_create(&path).unwrap();
        assert!(created);
        let (read, created) = Signer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made.id(), read.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{made:?}").contains("PRIVATE"));
        let public = public_key_from_pem(&made.public_pem(), "pub").unwrap();
        assert_eq!(KeyId::of(&public), made.id());
        assert_eq!(KeyId::parse(&made.id().to_string()), Some(made.id()));
        assert!(matches!(
            Signer::from_pem(&made.public_pem(), "pub"),
            Err(KeyError::NotPrivateKey { .. })
        ));
    }

    #[test]
    fn a_signature_is_the_ed25519_signature_of_the_context_and_message() {
        use aws_lc_rs::signature::KeyPair as _;
        use ed25519_dalek::Signer as _;
        let signer = Signer::generate().unwrap();
        let reference = SigningKey::from_bytes(signer.key.as_bytes());
        let message = b"alliance.v1.record-hash\0the record's hash";
        assert_eq!(
            signer.sign(b"alliance.v1.record-hash\0", b"the record's hash"),
            reference.sign(message).to_bytes()
        );
        assert_eq!(
            signer.signing.public_key().as_ref(),
            signer.verifying_key().as_bytes()
        );
    }

    #[test]
    fn a_signature_verifies_only_under_its_key_its_context_and_its_period() {
        let a = Signer::generate().unwrap();
        let b = Signer::generate().unwrap();
        let hash = [7; 32];
        let signature = a.sign_record(&hash);
        let trusted = TrustedKeys::new([TrustedKey {
            not_before_micros: Some(100),
            not_after_micros: Some(200),
            ..TrustedKey::always(a.verifying_key())
        }]);
        let check =
            |id, at, context: &[u8], signature| trusted.check(id, at, context, &hash, signature);
        assert_eq!(check(a.id(), 150, RECORD_CONTEXT, &signature), Ok(()));
        assert_eq!(
            check(a.id(), 200, RECORD_CONTEXT, &signature),
            Err(SignatureProblem::KeyNotValid)
        );
        assert_eq!(
            check(a.id(), 99, RECORD_CONTEXT, &signature),
            Err(SignatureProblem::KeyNotValid)
        );
        assert_eq!(
            check(a.id(), 150, HEAD_CONTEXT, &signature),
            Err(SignatureProblem::BadSignature)
        );
        assert_eq!(
            check(b.id(), 150, RECORD_CONTEXT, &b.sign_record(&hash)),
            Err(SignatureProblem::UnknownKey)
        );
    }
}
