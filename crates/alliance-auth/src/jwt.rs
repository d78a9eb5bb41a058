//! Bearer JWTs: RS256 or ES256 signatures checked against the keys of a JWKS.
//!
//! The JWKS comes from a file or an http(s) URL ([`JwksSource`]). It is loaded when the verifier
//! is built (which fails if it cannot be) and cached. It is loaded again from the same source
//!
//! - when a token names a key id the cached set lacks (the identity provider rotated its keys):
//!   the request waits for the reload, then is verified or refused as `unknown signing key id`;
//! - when a token's key comes from a set older than `jwks_max_age_seconds`, so that keys the
//!   identity provider withdrew stop being trusted: the cached key serves that request.
//!
//! One reload runs at a time, and none starts within `jwks_min_refresh_seconds` of the last
//! attempt, whatever tokens arrive: made-up key ids cannot make the service hammer the identity
//! provider. A failed reload is logged and the cached keys stay in use.
//!
//! Only keys with a key id (`kid`) are used, each for the one algorithm it is for: the key's
//! `alg` when it has one, otherwise RS256 for RSA keys and ES256 for P-256 keys. Keys marked for
//! encryption (`"use": "enc"`) are ignored. Tokens must name a key id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use alliance_domain::TeamId;
use alliance_stdx::{read, write};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{JwksSource, JwtConfig, SetupError, Teams};
use crate::{Identity, Method};

/// Why a bearer token was refused. The messages never quote the token or any key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token malformed")]
    Malformed,
    #[error("token algorithm not accepted (only RS256 and ES256 are)")]
    AlgorithmNotAccepted,
    #[error("token has no key id")]
    MissingKeyId,
    #[error("unknown signing key id")]
    UnknownKeyId,
    #[error("token algorithm does not match its signing key")]
    KeyAlgorithmMismatch,
    #[error("signing keys unavailable")]
    KeysUnavailable,
    #[error("token signature invalid")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issuer not accepted")]
    IssuerNotAccepted,
    #[error("token audience not accepted")]
    AudienceNotAccepted,
    #[error("token claim {0} missing")]
    ClaimMissing(String),
    #[error("token claim {0} malformed")]
    ClaimMalformed(String),
    #[error("team claim {0} missing")]
    TeamClaimMissing(String),
    #[error("team claim {0} is not a team id")]
    TeamClaimMalformed(String),
    #[error("unknown team {0}")]
    UnknownTeam(TeamId),
}

/// Why a JWKS could not be loaded. The messages never quote key material.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot fetch JWKS from {url}: {source}")]
    Fetch { url: String, source: reqwest::Error },
    #[error("JWKS from {from} is not a key set: {problem}")]
    Parse { from: String, problem: String },
    #[error("JWKS from {from} holds no RS256 or ES256 signing key with a key id")]
    NoUsableKeys { from: String },
    #[error("cannot set up the HTTP client for the JWKS: {0}")]
    Client(reqwest::Error),
}

/// Verifies bearer JWTs and maps their claims to an [`Identity`].
#[derive(Debug)]
pub struct JwtVerifier {
    source: KeySource,
    validation: Validation,
    team_claim: String,
    teams: Teams,
    min_refresh: Duration,
    max_age: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last loaded or tried to be; held while a refresh runs.
    last_attempt: tokio::sync::Mutex<Instant>,
}

impl JwtVerifier {
    /// Loads the JWKS (failing if it cannot be loaded or holds no usable key) and returns a
    /// verifier accepting tokens for the given teams.
    pub async fn new(config: &JwtConfig, teams: Teams) -> Result<Self, SetupError> {
        let source = KeySource::new(config.check()?)?;
        let keys = source.load().await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&config.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = config.leeway_seconds;
        Ok(Self {
            source,
            validation,
            team_claim: config.team_claim.clone(),
            teams,
            min_refresh: Duration::from_secs(config.jwks_min_refresh_seconds),
            max_age: Duration::from_secs(config.jwks_max_age_seconds),
            keys: RwLock::new(Arc::new(keys)),
            last_attempt: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// The identity behind a token (the part after `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        let (alg, kid) = algorithm_and_key_id(token)?;
        let key = self.key(&kid).await?;
        if key.alg != alg {
            return Err(JwtError::KeyAlgorithmMismatch);
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.into_kind()))?
            .claims;
        self.identity(&claims)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, JwtError> {
        let user = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(JwtError::ClaimMalformed("sub".into())),
        };
        let team = match claims.get(&self.team_claim) {
            None | Some(Value::Null) => {
                return Err(JwtError::TeamClaimMissing(self.team_claim.clone()));
            }
            Some(Value::String(team)) => TeamId::parse(team)
                .map_err(|_| JwtError::TeamClaimMalformed(self.team_claim.clone()))?,
            Some(_) => return Err(JwtError::TeamClaimMalformed(self.team_claim.clone())),
        };
        self.teams
            .identity(&team, user, Method::Jwt)
            .ok_or(JwtError::UnknownTeam(team))
    }

    /// The key with this id. An unknown id waits for the key set to be loaded again; a known
    /// id in an old set triggers a reload unless one is running, and is used meanwhile. Either
    /// way no reload starts within `min_refresh` of the last.
    async fn key(&self, kid: &str) -> Result<VerifyingKey, JwtError> {
        let cached = self.snapshot();
        match cached.keys.get(kid) {
            Some(key) if cached.loaded_at.elapsed() < self.max_age => return Ok(key.clone()),
            Some(_) => {
                if let Ok(last_attempt) = self.last_attempt.try_lock() {
                    // On failure the cached keys serve on (the failure is logged).
                    let _ = self.reload(last_attempt, &cached).await;
                }
            }
            None => {
                let last_attempt = self.last_attempt.lock().await;
                self.reload(last_attempt, &cached)
                    .await
                    .map_err(|_| JwtError::KeysUnavailable)?;
            }
        }
        self.snapshot()
            .keys
            .get(kid)
            .cloned()
            .ok_or(JwtError::UnknownKeyId)
    }

    /// Loads the key set again, unless it changed since `seen` (another caller reloaded it) or
    /// the last attempt is too recent.
    async fn reload(
        &self,
        mut last_attempt: tokio::sync::MutexGuard<'_, Instant>,
        seen: &Arc<KeySet>,
    ) -> Result<(), JwksError> {
        if !Arc::ptr_eq(&self.snapshot(), seen) || last_attempt.elapsed() < self.min_refresh {
            return Ok(());
        }
        *last_attempt = Instant::now();
        let keys = self.source.load().await.inspect_err(|error| {
            tracing::warn!(%error, "JWKS reload failed; the cached keys stay in use");
        })?;
        tracing::info!(source = %self.source, keys = keys.keys.len(), "JWKS reloaded");
        *write(&self.keys) = Arc::new(keys);
        Ok(())
    }

    fn snapshot(&self) -> Arc<KeySet> {
        read(&self.keys).clone()
    }
}

/// The two algorithms accepted.
const ACCEPTED: [(&str, Algorithm); 2] = [("RS256", Algorithm::RS256), ("ES256", Algorithm::ES256)];

/// The token's algorithm (if accepted) and key id, read from its header before anything else so
/// that `none`, HMAC and other algorithms are refused as such.
fn algorithm_and_key_id(token: &str) -> Result<(Algorithm, String), JwtError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: Option<String>,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = ACCEPTED
        .iter()
        .find(|(name, _)| *name == header.alg)
        .map(|(_, alg)| *alg)
        .ok_or(JwtError::AlgorithmNotAccepted)?;
    Ok((alg, header.kid.ok_or(JwtError::MissingKeyId)?))
}

fn map_jwt_error(kind: ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::IssuerNotAccepted,
        ErrorKind::InvalidAudience => JwtError::AudienceNotAccepted,
        ErrorKind::MissingRequiredClaim(claim) => JwtError::ClaimMissing(claim),
        ErrorKind::InvalidClaimFormat(claim) => JwtError::ClaimMalformed(claim),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => JwtError::KeyAlgorithmMismatch,
        _ => JwtError::Malformed,
    }
}

/// A key of the set, with the one algorithm it verifies.
#[derive(Clone)]
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct KeySet {
    keys: HashMap<String, VerifyingKey>,
    loaded_at: Instant,
}

impl KeySet {
    /// The usable keys of a JWKS, by key id.
    fn from_jwks(jwks: &JwkSet) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                    return None;
                }
                let alg = key_algorithm(jwk)?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, VerifyingKey { alg, key }))
            })
            .collect();
        Self {
            keys,
            loaded_at: Instant::now(),
        }
    }
}

/// The accepted algorithm a JWK is for, if any.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Some(Algorithm::RS256),
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

/// Where the JWKS is loaded from.
#[derive(Debug)]
enum KeySource {
    File(PathBuf),
    Url {
        url: reqwest::Url,
        client: reqwest::Client,
    },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Url { url, .. } => write!(f, "{url}"),
        }
    }
}

/// How long a JWKS download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

impl KeySource {
    fn new(source: JwksSource) -> Result<Self, JwksError> {
        Ok(match source {
            JwksSource::File(path) => KeySource::File(path),
            JwksSource::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(JwksError::Client)?;
                KeySource::Url { url, client }
            }
        })
    }

    /// Reads or downloads the JWKS and keeps its usable keys.
    async fn load(&self) -> Result<KeySet, JwksError> {
        let bytes = match self {
            KeySource::File(path) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
            }
            KeySource::Url { url, client } => {
                let fetch = async {
                    client
                        .get(url.clone())
                        .send()
                        .await?
                        .error_for_status()?
                        .bytes()
                        .await
                };
                fetch
                    .await
                    .map_err(|source| JwksError::Fetch {
                        url: url.to_string(),
                        source,
                    })?
                    .to_vec()
            }
        };
        // Only the position of a JSON error is reported: serde_json's messages may quote values.
        let jwks: JwkSet = serde_json::from_slice(&bytes).map_err(|e| JwksError::Parse {
            from: self.to_string(),
            problem: format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        })?;
        let keys = KeySet::from_jwks(&jwks);
        if keys.keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                from: self.to_string(),
            });
        }
        Ok(keys)
    }
}
