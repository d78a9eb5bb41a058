//! The authentication configuration: a TOML file such as
//!
//! ```toml
//! [jwt]
//! issuer = "https://idp.alliance.example/realms/planning"
//! audience = "alliance-planning"          # or a list: ["alliance-planning", "planning-cli"]
//! jwks_url = "https://idp.alliance.example/realms/planning/protocol/openid-connect/certs"
//! # jwks_file = "jwks.json"              # instead of jwks_url
//! team_claim = "team"                     # default
//! leeway_seconds = 30                     # default; clock skew allowed for exp and nbf
//! jwks_min_refresh_seconds = 60           # default; at most one JWKS reload per minute
//! jwks_max_age_seconds = 3600             # default; reload keys older than an hour
//!
//! [tls]                                   # optional: the server's TLS files
//! cert_chain = "server.pem"
//! private_key = "server.key"
//! client_ca = "client-ca.pem"             # optional: require client certificates (mutual TLS)
//!
//! [[client_cert]]
//! subject = "URI:spiffe://alliance.example/team/rok-jcs"   # or "CN=…" or "DNS:…"
//! team = "rok-jcs"
//! user = "rok.gateway"                    # optional; defaults to the subject's value
//!
//! [[team]]
//! team = "rok-jcs"
//! side = "rok"
//! description = "ROK Joint Chiefs of Staff planning cell"
//! ```
//!
//! Relative paths are relative to the directory of the configuration file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alliance_domain::{Side, TeamId};
use serde::{Deserialize, Deserializer};

use crate::jwt::JwksError;
use crate::mtls::{CertName, ClientCertMap};
use crate::tls::{ClientTlsPaths, ServerTlsPaths};
use crate::{Identity, Method};

/// The whole authentication configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer JWTs; without it bearer tokens are refused.
    pub jwt: Option<JwtConfig>,
    /// The server's TLS files, for the services to use.
    pub tls: Option<ServerTlsPaths>,
    /// TLS of the calls a server makes to the other servers of the deployment (forwarding a
    /// command to the instance writing its plan, recording a simulation run).
    pub peer_tls: Option<ClientTlsPaths>,
    /// Client certificate subjects and the team each acts for.
    #[serde(default, rename = "client_cert")]
    pub client_certs: Vec<ClientCertEntry>,
    /// The client certificates of this deployment's own servers, which may pass on a caller
    /// they verified (see [`crate::ON_BEHALF_OF`]).
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerEntry>,
    /// The known teams: tokens and certificates can only name these.
    #[serde(rename = "team")]
    pub teams: Vec<TeamEntry>,
    /// The keys whose signatures on the log's records are trusted ([`crate::signing`]).
    #[serde(default, rename = "signing_key")]
    pub signing_keys: Vec<crate::signing::SigningKeyEntry>,
    /// The keys of the auditors who counter-sign plans' heads ([`crate::signing`]).
    #[serde(default, rename = "witness_key")]
    pub witness_keys: Vec<crate::signing::WitnessKeyEntry>,
}

/// A `[[peer]]` entry: a server of this deployment, named by its client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub subject: CertName,
}

/// The `[jwt]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The audiences accepted: a token's `aud` must name at least one of them.
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// The claim holding the caller's team.
    #[serde(default = "default_team_claim")]
    pub team_claim: String,
    /// Clock skew allowed when checking `exp` and `nbf`.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// The JWKS is loaded again at most this often (on an unknown key id or when old).
    #[serde(default = "default_jwks_min_refresh_seconds")]
    pub jwks_min_refresh_seconds: u64,
    /// Keys older than this are loaded again before use (the old ones serve if that fails).
    #[serde(default = "default_jwks_max_age_seconds")]
    pub jwks_max_age_seconds: u64,
}

fn default_team_claim() -> String {
    "team".to_owned()
}

fn default_leeway_seconds() -> u64 {
    30
}

fn default_jwks_min_refresh_seconds() -> u64 {
    60
}

fn default_jwks_max_age_seconds() -> u64 {
    3600
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Where the JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(reqwest::Url),
}

impl JwtConfig {
    /// Checks the table (some audience; exactly one of `jwks_file` and `jwks_url`, the URL https,
    /// or http to a loopback host only) and returns where the JWKS comes from.
    pub fn check(&self) -> Result<JwksSource, ConfigProblem> {
        if self.audience.is_empty() {
            return Err(ConfigProblem::NoAudience);
        }
        match (&self.jwks_file, &self.jwks_url) {
            (Some(path), None) => Ok(JwksSource::File(path.clone())),
            (None, Some(url)) => reqwest::Url::parse(url)
                .ok()
                .filter(|url| match url.scheme() {
                    "https" => true,
                    // Whoever is on the path of a plain fetch serves their own keys: only the
                    // machine itself (tests, a local identity provider).
                    "http" => is_loopback_host(url),
                    _ => false,
                })
                .map(JwksSource::Url)
                .ok_or_else(|| ConfigProblem::JwksUrl(url.clone())),
            _ => Err(ConfigProblem::JwksSource),
        }
    }
}

/// Whether the URL's host is this machine: a loopback address or `localhost`.
fn is_loopback_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// A `[[client_cert]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertEntry {
    pub subject: CertName,
    pub team: TeamId,
    /// The user recorded for this certificate; defaults to the subject's value.
    pub user: Option<String>,
}

/// A `[[team]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    pub team: TeamId,
    /// The side the team endorses for; none for alliance-level teams and auditors.
    pub side: Option<Side>,
    /// What the team may do beyond a plan's grants, and the roles it starts with on a new plan;
    /// defaults to `["edit"]`, and an empty list makes the team read-only.
    #[serde(default = "default_roles")]
    pub roles: Vec<TeamRole>,
    pub description: Option<String>,
}

/// A team's own role, from the identity configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// Starts every new plan as the editor of every section and the endorser for its side.
    Edit,
    /// Starts every new plan as its adopter (alliance-level approval).
    Adopt,
    /// Creates plans (and administers them), and operates the services: rebuilds read models.
    Admin,
    /// Reads the security log; starts every new plan as its auditor.
    Audit,
}

fn default_roles() -> Vec<TeamRole> {
    vec![TeamRole::Edit]
}

/// The known teams.
#[derive(Debug, Clone, Default)]
pub struct Teams(BTreeMap<TeamId, TeamEntry>);

impl Teams {
    pub fn new(entries: impl IntoIterator<Item = TeamEntry>) -> Result<Self, ConfigProblem> {
        let mut teams = BTreeMap::new();
        for entry in entries {
            if let Some(dup) = teams.insert(entry.team.clone(), entry) {
                return Err(ConfigProblem::DuplicateTeam(dup.team));
            }
        }
        Ok(Self(teams))
    }

    pub fn get(&self, team: &TeamId) -> Option<&TeamEntry> {
        self.0.get(team)
    }

    /// The identity of a user of a known team.
    pub(crate) fn identity(&self, team: &TeamId, user: String, method: Method) -> Option<Identity> {
        self.get(team).map(|entry| Identity {
            team: entry.team.clone(),
            user,
            side: entry.side,
            method,
        })
    }
}

/// What is wrong with a configuration that parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("team {0} is listed twice")]
    DuplicateTeam(TeamId),
    #[error("client_cert {subject} names unknown team {team}")]
    UnknownCertTeam { subject: CertName, team: TeamId },
    #[error("client_cert {0} is listed twice")]
    DuplicateCertSubject(CertName),
    #[error("[jwt] needs exactly one of jwks_file and jwks_url")]
    JwksSource,
    #[error(
        "[jwt] jwks_url {0} is not an https URL (plain http is accepted only to a loopback host: \
         whoever is on the path of a plain fetch could serve keys of their own)"
    )]
    JwksUrl(String),
    #[error("[jwt] audience names no audience")]
    NoAudience,
    #[error("neither [jwt] nor [[client_cert]] is configured: no caller could authenticate")]
    NoMethod,
    #[error("signing_key or witness_key {0}: not_after is not after not_before")]
    EmptySigningPeriod(String),
}

/// Why the configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read auth config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("auth config {path} is invalid: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("auth config {path}: {problem}")]
    Invalid {
        path: String,
        problem: ConfigProblem,
    },
}

/// Why an [`Authenticator`](crate::Authenticator) or [`JwtVerifier`](crate::JwtVerifier) could
/// not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigProblem),
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

impl AuthConfig {
    /// Reads, parses and checks a configuration file; relative paths in it are resolved against
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display(),
            source,
        })?;
        let mut config: AuthConfig =
            toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: display(),
                source: Box::new(source),
            })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        config.check().map_err(|problem| ConfigError::Invalid {
            path: display(),
            problem,
        })?;
        Ok(config)
    }

    /// The checks that need no I/O: teams listed once, certificates naming known teams, a JWKS
    /// source, some way to authenticate.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let teams = self.teams()?;
        ClientCertMap::new(&self.client_certs, &teams)?;
        if let Some(key) = crate::signing::empty_period(&self.signing_keys, &self.witness_keys) {
            return Err(ConfigProblem::EmptySigningPeriod(key.display().to_string()));
        }
        match &self.jwt {
            Some(jwt) => jwt.check().map(drop),
            None if self.client_certs.is_empty() => Err(ConfigProblem::NoMethod),
            None => Ok(()),
        }
    }

    /// The known teams.
    pub fn teams(&self) -> Result<Teams, ConfigProblem> {
        Teams::new(self.teams.iter().cloned())
    }

    fn resolve_paths(&mut self, base: &Path) {
        // `join` keeps absolute paths as they are.
        let jwks = self.jwt.iter_mut().filter_map(|jwt| jwt.jwks_file.as_mut());
        let tls = self.tls.iter_mut().flat_map(|tls| {
            [
                Some(&mut tls.cert_chain),
                Some(&mut tls.private_key),
                tls.client_ca.as_mut(),
            ]
            .into_iter()
            .flatten()
        });
        let peer_tls = self.peer_tls.iter_mut().flat_map(|tls| {
            let identity = tls
                .identity
                .iter_mut()
                .flat_map(|identity| [&mut identity.cert_chain, &mut identity.private_key]);
            std::iter::once(&mut tls.ca).chain(identity)
        });
        let signing = self.signing_keys.iter_mut().map(|key| &mut key.public_key);
        let witness = self.witness_keys.iter_mut().map(|key| &mut key.public_key);
        for path in jwks
            .chain(tls)
            .chain(peer_tls)
            .chain(signing)
            .chain(witness)
        {
            *path = base.join(&*path);
        }
    }
}
