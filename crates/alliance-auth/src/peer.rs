//! Calls to a server that must first prove it is one of this deployment's: TLS whose server
//! certificate is verified against the peer CA for the host called *and* carries the name of a
//! `[[peer]]`. A server learned of from elsewhere (the writers' group says which instance writes
//! a partition, and whoever may join the group can say it) is believed only once it has proved
//! this, on the very connection the call then travels on: a certificate the CA signed for
//! anything else (a client's, another service's) does not pass.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{ClientTlsPaths, TlsError, read_identity, read_roots};
use crate::{CertError, EndpointError, PeerCerts};

/// Connections to the other servers of this deployment, each proved to be a `[[peer]]`'s.
#[derive(Clone)]
pub struct PeerTls {
    config: Arc<rustls::ClientConfig>,
    /// The name the servers' certificates must carry, when not the host called.
    domain_name: Option<String>,
    /// Whether this server presents a certificate of its own (without one, a server called
    /// cannot tell it from a client).
    presents_certificate: bool,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("domain_name", &self.domain_name)
            .field("presents_certificate", &self.presents_certificate)
            .finish_non_exhaustive()
    }
}

/// Why a server called was not believed to be a `[[peer]]`.
#[derive(Debug, thiserror::Error)]
#[error("its certificate ({0}) names no [[peer]] of the identity configuration")]
struct NotAPeer(String);

impl PeerTls {
    /// Reads the peer CA and this server's own certificate (`paths`); the servers called must
    /// present a certificate naming one of `peers`.
    pub fn load(paths: &ClientTlsPaths, peers: PeerCerts) -> Result<Self, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let roots = Arc::new(read_roots("peer CA", &paths.ca)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|_| TlsError::Invalid {
                what: "peer CA",
                path: paths.ca.display().to_string(),
                problem: "holds no usable CA",
            })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| TlsError::Invalid {
                what: "peer CA",
                path: paths.ca.display().to_string(),
                problem: "cannot be used with the TLS versions of this build",
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerVerifier { webpki, peers }));
        let mut config = match &paths.identity {
            Some(identity) => {
                let (_, _, certs, key) =
                    read_identity(&identity.cert_chain, &identity.private_key)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|_| TlsError::KeyMismatch {
                        key: identity.private_key.display().to_string(),
                        cert: identity.cert_chain.display().to_string(),
                    })?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            domain_name: paths.domain_name.clone(),
            presents_certificate: paths.identity.is_some(),
        })
    }

    /// Whether this server presents a certificate of its own on these calls.
    pub fn presents_certificate(&self) -> bool {
        self.presents_certificate
    }

    /// A channel to `address` (`HOST:PORT`), connected when first used; every connection it
    /// makes is refused unless the server proves itself a `[[peer]]`.
    pub fn channel(
        &self,
        address: &str,
        connect_timeout: Duration,
    ) -> Result<Channel, EndpointError> {
        let uri: Uri = format!("http://{address}").parse().map_err(
            |e: tonic::codegen::http::uri::InvalidUri| EndpointError::Address(e.to_string()),
        )?;
        let host = uri
            .host()
            .ok_or_else(|| EndpointError::Address(format!("{address} names no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .ok_or_else(|| EndpointError::Address(format!("{address} names no port")))?;
        let name = self.domain_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name)
            .map_err(|e| EndpointError::Tls(format!("{address}: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let connect = tower::service_fn(move |_: Uri| {
            let (connector, server_name, host) =
                (connector.clone(), server_name.clone(), host.clone());
            async move {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        // The TLS is the connector's, not tonic's: the scheme stays http.
        let endpoint = Endpoint::from(uri).connect_timeout(connect_timeout);
        Ok(endpoint.connect_with_connector_lazy(connect))
    }
}

/// The CA's verification for the host called, then the `[[peer]]` names.
#[derive(Debug)]
struct PeerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    peers: PeerCerts,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match self.peers.check(std::slice::from_ref(end_entity)) {
            Ok(()) => Ok(verified),
            Err(error) => {
                let names = match error {
                    CertError::NotAPeer(names) => names,
                    other => other.to_string(),
                };
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(NotAPeer(names))),
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Why a call through [`PeerTls`] found no server of this deployment at the other end, when it is
/// why `error` (or an error it was caused by) happened: the TLS handshake refused its
/// certificate (or it spoke no TLS). `None` for other failures (nobody listening, a timeout).
pub fn unproven(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(match tls {
                rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                    other.to_string()
                }
                other => other.to_string(),
            });
        }
        next = error.source();
    }
    None
}
