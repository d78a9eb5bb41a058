//! TLS for the gRPC servers and clients, from PEM files.
//!
//! tonic only parses the PEM it is given when the server starts or the channel connects, and then
//! reports a bare rustls error. Here every file is read and checked when the configuration is
//! built (certificates parse, the private key is of a usable type and belongs to the leaf
//! certificate, CA certificates are usable trust anchors), so that a mistake is reported with the
//! file it is in.
//!
//! All TLS runs on rustls with the aws-lc-rs provider, which these functions also install as the
//! process default if none is installed yet: rustls can pick a default by itself only while
//! exactly one provider is compiled in, and a dependency enabling a second one would otherwise
//! make the server panic on its first connection.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The files of a server's TLS: its certificate and key and, for mutual TLS, the CA its clients'
/// certificates must be signed by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsPaths {
    /// PEM certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub private_key: PathBuf,
    /// PEM CA certificate(s) for client certificates. When given, clients must present a
    /// certificate signed by it (mutual TLS) unless `client_auth_optional` is set.
    pub client_ca: Option<PathBuf>,
    /// Let clients without a certificate connect (they then need a bearer token).
    #[serde(default)]
    pub client_auth_optional: bool,
}

/// The files of a client's TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsPaths {
    /// PEM CA certificate(s) the server's certificate must be signed by.
    pub ca: PathBuf,
    /// The client's own certificate and key, for mutual TLS.
    pub identity: Option<CertKeyPaths>,
    /// The name the server's certificate must carry, when not the host of the URL.
    pub domain_name: Option<String>,
}

/// A PEM certificate chain (leaf first) and the PEM private key of its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertKeyPaths {
    pub cert_chain: PathBuf,
    pub private_key: PathBuf,
}

/// Why a TLS file could not be used. The messages name the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {path} {problem}")]
    Invalid {
        what: &'static str,
        path: String,
        problem: &'static str,
    },
    #[error("private key {key} does not belong to certificate {cert}")]
    KeyMismatch { key: String, cert: String },
}

impl ServerTlsPaths {
    /// Reads and checks the files.
    pub fn load(&self) -> Result<ServerTlsConfig, TlsError> {
        let identity = load_identity(&self.cert_chain, &self.private_key)?;
        let config = ServerTlsConfig::new().identity(identity);
        Ok(match &self.client_ca {
            None => config,
            Some(ca) => config
                .client_ca_root(load_ca("client CA", ca)?)
                .client_auth_optional(self.client_auth_optional),
        })
    }
}

impl ClientTlsPaths {
    /// Reads and checks the files.
    pub fn load(&self) -> Result<ClientTlsConfig, TlsError> {
        let mut config = ClientTlsConfig::new().ca_certificate(load_ca("CA", &self.ca)?);
        if let Some(identity) = &self.identity {
            config = config.identity(load_identity(&identity.cert_chain, &identity.private_key)?);
        }
        if let Some(domain_name) = &self.domain_name {
            config = config.domain_name(domain_name);
        }
        Ok(config)
    }
}

const CERT_CHAIN: &str = "certificate chain";
const PRIVATE_KEY: &str = "private key";

fn load_identity(cert_chain: &Path, private_key: &Path) -> Result<Identity, TlsError> {
    let (cert_pem, key_pem, _, _) = read_identity(cert_chain, private_key)?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}

/// A certificate chain and its private key as read (PEM) and parsed, checked to belong together.
pub(crate) type ReadIdentity = (
    Vec<u8>,
    Vec<u8>,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
);

pub(crate) fn read_identity(
    cert_chain: &Path,
    private_key: &Path,
) -> Result<ReadIdentity, TlsError> {
    ensure_default_provider();
    let (cert_pem, certs) = read_certificates(CERT_CHAIN, cert_chain)?;
    let key_pem = read(PRIVATE_KEY, private_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let problem = match e {
            pem::Error::NoItemsFound => "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            _ => "is not valid PEM",
        };
        invalid(PRIVATE_KEY, private_key, problem)
    })?;
    CertifiedKey::from_der(
        certs.clone(),
        key.clone_key(),
        &aws_lc_rs::default_provider(),
    )
    .map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            key: private_key.display().to_string(),
            cert: cert_chain.display().to_string(),
        },
        rustls::Error::InvalidCertificate(_) => invalid(
            CERT_CHAIN,
            cert_chain,
            "starts with a certificate that cannot be parsed",
        ),
        _ => invalid(
            PRIVATE_KEY,
            private_key,
            "holds a key of an unsupported type",
        ),
    })?;
    Ok((cert_pem, key_pem, certs, key))
}

/// The CA certificates of `path` as trust anchors.
pub(crate) fn read_roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    ensure_default_provider();
    let (_, certs) = read_certificates(what, path)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|_| invalid(what, path, "holds a certificate that is not a usable CA"))?;
    }
    Ok(roots)
}

fn load_ca(what: &'static str, path: &Path) -> Result<Certificate, TlsError> {
    read_roots(what, path)?;
    Ok(Certificate::from_pem(read(what, path)?))
}

/// The file's bytes and the certificates in it (at least one).
fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid(what, path, "is not valid PEM"))?;
    if certs.is_empty() {
        return Err(invalid(what, path, "holds no PEM certificate"));
    }
    Ok((pem, certs))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, problem: &'static str) -> TlsError {
    TlsError::Invalid {
        what,
        path: path.display().to_string(),
        problem,
    }
}

/// Installs aws-lc-rs as the process's rustls provider unless one is installed already.
fn ensure_default_provider() {
    // An error only means a provider is installed already, which is what is wanted.
    let _ = aws_lc_rs::default_provider().install_default();
}

/// Why [`endpoint`] could not build an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The address is not a URI tonic can connect to.
    #[error("{0}")]
    Address(String),
    /// The client TLS configuration does not apply to it.
    #[error("{0}")]
    Tls(String),
}

/// The one way a tonic endpoint is built, by the servers calling each other and by the command
/// line: `url` (`http://HOST:PORT` or `https://HOST:PORT`), over TLS with `tls` when given. The
/// callers check the scheme against the TLS they have and add their own timeouts.
#[allow(clippy::disallowed_methods)]
pub fn endpoint(url: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, EndpointError> {
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|e| EndpointError::Address(e.to_string()))?;
    match tls {
        Some(tls) => endpoint
            .tls_config(tls.clone())
            .map_err(|e| EndpointError::Tls(e.to_string())),
        None => Ok(endpoint),
    }
}
