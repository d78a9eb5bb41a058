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
pub mod tls;

use alliance_domain::{Actor, Side, TeamId};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::CertificateDer;

pub use config::{
    AuthConfig, ClientCertEntry, ConfigError, ConfigProblem, JwksSource, JwtConfig, SetupError,
    TeamEntry, TeamRole, Teams,
};
pub use jwt::{JwksError, JwtError, JwtVerifier};
pub use mtls::{CertError, CertName, ClientCertMap};
pub use tls::{CertKeyPaths, ClientTlsPaths, ServerTlsPaths, TlsError};

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
}

impl Authenticator {
    pub fn new(jwt: Option<JwtVerifier>, certs: ClientCertMap) -> Self {
        Self { jwt, certs }
    }

    /// Checks the configuration and loads the JWKS (if `[jwt]` is configured).
    pub async fn from_config(config: &AuthConfig) -> Result<Self, SetupError> {
        config.check()?;
        let teams = config.teams()?;
        let certs = ClientCertMap::new(&config.client_certs, &teams)?;
        let jwt = match &config.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt, teams).await?),
            None => None,
        };
        Ok(Self::new(jwt, certs))
    }

    /// The caller behind a request: its bearer JWT if it has an `authorization` header, else
    /// its client certificate (`peer_certs`: the chain the TLS handshake verified, leaf first).
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
        match peer_certs {
            Some(certs) if !certs.is_empty() => Ok(self.certs.identify(certs)?),
            _ => Err(AuthError::NoCredentials),
        }
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
