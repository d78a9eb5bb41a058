//! Who is calling, for the gRPC services: a bearer JWT or a client certificate, mapped to one of
//! the configured planning teams.
//!
//! [`Authenticator::authenticate`] looks at a request's metadata and verified peer certificates:
//!
//! 1. an `authorization: Bearer <jwt>` header is verified by [`JwtVerifier`] (and only that:
//!    a bad token is refused even when a client certificate is present);
//! 2. otherwise a client certificate verified in the TLS handshake is mapped by
//!    [`ClientCertMap`];
//! 3. otherwise the caller is unauthenticated.
//!
//! Either way the result is an [`Identity`]: team, user, the team's side, and how the caller
//! authenticated. The [`config`] module documents the TOML file ([`AuthConfig`]); [`tls`] builds
//! tonic's server and client TLS configurations from PEM files.
//!
//! # Design choices
//!
//! - **One crypto library, aws-lc-rs.** TLS is rustls (tonic's `tls-aws-lc` feature), JWT
//!   signatures are checked by `jsonwebtoken`'s aws-lc-rs backend, and the tests generate RSA and
//!   EC keys and certificates with `rcgen` on aws-lc-rs too (ring cannot generate RSA keys).
//!   aws-lc-rs is rustls's default provider, maintained by AWS, with a FIPS-validated build
//!   behind a feature; its cost is compiling C at build time (a C compiler is needed). A single
//!   provider also keeps rustls able to pick its default by itself; in case another dependency
//!   compiles in a second one, the [`tls`] functions install aws-lc-rs as the process default.
//! - **`jsonwebtoken` 11** verifies signatures and the registered claims (`exp` required, `nbf`,
//!   `iss`, `aud`, all with one leeway). Its JWK types parse the key set. The token header is
//!   read here first, so that `none`, HMAC and every algorithm but RS256 and ES256 are refused
//!   as such, and each key verifies only the one algorithm it is for (no algorithm confusion).
//! - **`reqwest` 0.13** (rustls, no default features) downloads the JWKS: the usual async HTTP
//!   client, built on the same hyper and tokio as tonic. Keys are cached; see [`jwt`] for when
//!   they are loaded again (unknown key id, age) and how that is rate-limited.
//! - **`x509-parser`** reads the names of the client's leaf certificate. It does no
//!   verification and needs none: rustls verified the chain against the client CA during the
//!   handshake, and only such certificates reach [`ClientCertMap::identify`]. The mapping keys
//!   on a prefixed name, `CN=…`, `URI:…` or `DNS:…` (see [`mtls`]).
//! - **Errors are enums with fixed messages**: they name files, claims and teams, never a token,
//!   a key or the contents of a PEM file, so they can be logged and returned to callers.
//! - **Authentication is async** because an unknown key id may require loading the JWKS again;
//!   call it from the service handlers (or an async tower layer). The client certificate
//!   mapping alone is synchronous and fits a tonic interceptor.

pub mod config;
pub mod jwt;
pub mod mtls;
pub mod peer;
pub mod signing;
pub mod tls;

use alliance_domain::{Actor, Side, TeamId};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::CertificateDer;

pub use config::{
    AuthConfig, ClientCertEntry, ConfigError, ConfigProblem, JwksSource, JwtConfig, PeerEntry,
    SetupError, TeamEntry, TeamRole, Teams,
};
pub use jwt::{JwksError, JwtError, JwtVerifier};
pub use mtls::{CertError, CertName, ClientCertMap, PeerCerts};
pub use signing::{KeysFile, SigningKeyEntry, WitnessKeyEntry};

/// The metadata by which a server of this deployment passes on a caller it verified by client
/// certificate (a certificate cannot travel with the request): `<team>/<user>`. Believed only
/// from a client certificate listed as a `[[peer]]`; a bearer token, when present, is verified
/// instead.
pub const ON_BEHALF_OF: &str = "x-alliance-on-behalf-of";
pub use peer::PeerTls;
pub use tls::{CertKeyPaths, ClientTlsPaths, EndpointError, ServerTlsPaths, TlsError, endpoint};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub team: TeamId,
    pub user: String,
    /// The side the team endorses for (from the team list); none for alliance-level teams.
    pub side: Option<Side>,
    pub method: Method,
}

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Jwt,
    ClientCertificate,
    /// Verified by another server of this deployment (by client certificate), which passed the
    /// caller on ([`ON_BEHALF_OF`]).
    Peer,
}

impl Identity {
    /// The actor recorded on the caller's events.
    pub fn actor(&self) -> Actor {
        Actor {
            team: self.team.clone(),
            user: self.user.clone(),
            side: self.side,
        }
    }
}

/// Why a request is unauthenticated. The messages never quote a token or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unauthenticated: no bearer token and no client certificate")]
    NoCredentials,
    #[error("authorization header is not a bearer token")]
    NotBearer,
    #[error("bearer tokens are not accepted (no [jwt] configured)")]
    BearerNotAccepted,
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    ClientCert(#[from] CertError),
    #[error("{ON_BEHALF_OF} must be <team>/<user> naming a known team")]
    OnBehalfOf,
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        tonic::Status::unauthenticated(error.to_string())
    }
}

/// Authenticates requests by bearer JWT or client certificate.
#[derive(Debug)]
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
    certs: ClientCertMap,
    peers: PeerCerts,
    teams: Teams,
}

impl Authenticator {
    pub fn new(jwt: Option<JwtVerifier>, certs: ClientCertMap) -> Self {
        Self {
            jwt,
            certs,
            peers: PeerCerts::default(),
            teams: Teams::default(),
        }
    }

    /// Believes the callers that these servers (`peers`) pass on, if of `teams`.
    pub fn with_peers(mut self, peers: PeerCerts, teams: Teams) -> Self {
        self.peers = peers;
        self.teams = teams;
        self
    }

    /// Checks the configuration and loads the JWKS (if `[jwt]` is configured).
    pub async fn from_config(config: &AuthConfig) -> Result<Self, SetupError> {
        config.check()?;
        let teams = config.teams()?;
        let certs = ClientCertMap::new(&config.client_certs, &teams)?;
        let jwt = match &config.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt, teams.clone()).await?),
            None => None,
        };
        let peers = PeerCerts::new(config.peers.iter().map(|peer| peer.subject.clone()));
        Ok(Self::new(jwt, certs).with_peers(peers, teams))
    }

    /// The caller behind a request: its bearer JWT if it has an `authorization` header, else
    /// its client certificate (`peer_certs`: the chain the TLS handshake verified, leaf first),
    /// or, from a peer's certificate, the caller named by [`ON_BEHALF_OF`].
    pub async fn authenticate(
        &self,
        metadata: &MetadataMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Identity, AuthError> {
        if let Some(header) = metadata.get("authorization") {
            let token = bearer_token(header)?;
            let jwt = self.jwt.as_ref().ok_or(AuthError::BearerNotAccepted)?;
            return Ok(jwt.verify(token).await?);
        }
        let certs = match peer_certs {
            Some(certs) if !certs.is_empty() => certs,
            _ => return Err(AuthError::NoCredentials),
        };
        let Some(on_behalf_of) = metadata.get(ON_BEHALF_OF) else {
            return Ok(self.certs.identify(certs)?);
        };
        self.peers.check(certs)?;
        let (team, user) = on_behalf_of
            .to_str()
            .ok()
            .and_then(|value| value.split_once('/'))
            .filter(|(_, user)| !user.is_empty())
            .ok_or(AuthError::OnBehalfOf)?;
        let team = TeamId::try_from(team.to_owned()).map_err(|_| AuthError::OnBehalfOf)?;
        self.teams
            .identity(&team, user.to_owned(), Method::Peer)
            .ok_or(AuthError::OnBehalfOf)
    }

    /// Whether a verified client certificate chain (leaf first) is a `[[peer]]`'s: one of this
    /// deployment's servers. Never when no peer is configured.
    pub fn is_peer(&self, peer_certs: Option<&[CertificateDer<'_>]>) -> bool {
        peer_certs.is_some_and(|certs| !certs.is_empty() && self.peers.check(certs).is_ok())
    }

    /// [`authenticate`](Self::authenticate) with the metadata and peer certificates of a tonic
    /// request.
    pub async fn authenticate_request<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<Identity, AuthError> {
        let peer_certs = request.peer_certs();
        self.authenticate(request.metadata(), peer_certs.as_deref().map(Vec::as_slice))
            .await
    }
}

/// The token of an `authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer_token(header: &MetadataValue<tonic::metadata::Ascii>) -> Result<&str, AuthError> {
    let value = header.to_str().map_err(|_| AuthError::NotBearer)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthError::NotBearer),
    }
}
