//! Real TLS: a tonic server serving the health service on 127.0.0.1, clients with various
//! trust and certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alliance_auth::{
    AuthConfig, CertKeyPaths, ClientCertMap, ClientTlsPaths, Identity, Method, ServerTlsPaths,
    TlsError,
};
use alliance_domain::{Side, TeamId};
use alliance_stdx::lock;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{ClientTlsConfig, Server, ServerTlsConfig};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{Ca, Leaf, TEAMS, write};

const ROK_GATEWAY_URI: &str = "spiffe://alliance.test/team/rok-jcs";

/// Authorities and files of one test.
struct Pki {
    dir: TempDir,
    server_ca: Ca,
    client_ca: Ca,
}

impl Pki {
    fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            server_ca: Ca::new("Alliance Test Server CA"),
            client_ca: Ca::new("Alliance Test Client CA"),
        };
        let server = pki.server_ca.server();
        pki.write("server.pem", &server.cert_pem);
        pki.write("server.key", &server.key_pem);
        pki.write("server-ca.pem", &pki.server_ca.pem);
        pki.write("client-ca.pem", &pki.client_ca.pem);
        pki
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        write(self.dir.path(), name, contents)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server_tls(&self, mutual: bool) -> ServerTlsConfig {
        ServerTlsPaths {
            cert_chain: self.path("server.pem"),
            private_key: self.path("server.key"),
            client_ca: mutual.then(|| self.path("client-ca.pem")),
            client_auth_optional: false,
        }
        .load()
        .unwrap()
    }

    /// A client trusting this CA file, with this certificate (written to files) if any.
    fn client_tls(&self, ca: &Path, certificate: Option<&Leaf>) -> ClientTlsConfig {
        let identity = certificate.map(|leaf| CertKeyPaths {
            cert_chain: self.write("client.pem", &leaf.cert_pem),
            private_key: self.write("client.key", &leaf.key_pem),
        });
        ClientTlsPaths {
            ca: ca.to_owned(),
            identity,
            domain_name: Some("localhost".into()),
        }
        .load()
        .unwrap()
    }

    /// The client certificate mapping of an auth config naming the ROK gateway certificate.
    fn cert_map(&self) -> ClientCertMap {
        let toml = format!(
            "[[client_cert]]\nsubject = \"URI:{ROK_GATEWAY_URI}\"\nteam = \"rok-jcs\"\n\
             user = \"rok.gateway\"\n{TEAMS}"
        );
        let config = AuthConfig::load(&self.write("auth.toml", &toml)).unwrap();
        ClientCertMap::new(&config.client_certs, &config.teams().unwrap()).unwrap()
    }
}

/// Serves the health service with this TLS on a port of 127.0.0.1; each request passes through
/// `check`, and the identities it returns are recorded.
async fn serve(
    tls: ServerTlsConfig,
    check: impl Fn(&Request<()>) -> Result<Option<Identity>, Status> + Send + Sync + Clone + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<Identity>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let interceptor = move |request: Request<()>| {
        if let Some(identity) = check(&request)? {
            lock(&record).push(identity);
        }
        Ok(request)
    };
    let (_reporter, health) = tonic_health::server::health_reporter();
    let router = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(InterceptedService::new(health, interceptor));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    (addr, seen)
}

fn no_check(_: &Request<()>) -> Result<Option<Identity>, Status> {
    Ok(None)
}

/// A health check over a new TLS connection; connection failures become `UNAVAILABLE`.
async fn health_check(addr: SocketAddr, tls: ClientTlsConfig) -> Result<(), Status> {
    let unavailable = |e: tonic::transport::Error| Status::unavailable(format!("{e:?}"));
    let channel =
        alliance_auth::endpoint(&format!("https://127.0.0.1:{}", addr.port()), Some(&tls))
            .map_err(|e| Status::unavailable(format!("{e:?}")))?
            .connect()
            .await
            .map_err(unavailable)?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn client_trusting_the_server_ca_connects() {
    let pki = Pki::new();
    let (addr, _) = serve(pki.server_tls(false), no_check).await;
    let tls = pki.client_tls(&pki.path("server-ca.pem"), None);
    health_check(addr, tls).await.unwrap();
}

#[tokio::test]
async fn client_trusting_another_ca_is_refused() {
    let pki = Pki::new();
    let (addr, _) = serve(pki.server_tls(false), no_check).await;
    let other_ca = pki.write("other-ca.pem", &Ca::new("Someone Else's CA").pem);
    let error = health_check(addr, pki.client_tls(&other_ca, None))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert!(format!("{error:?}").contains("UnknownIssuer"), "{error:?}");
}

/// The interceptor of the mutual TLS server: the peer's certificate mapped to an identity.
fn authenticate_cert(
    map: ClientCertMap,
) -> impl Fn(&Request<()>) -> Result<Option<Identity>, Status> + Send + Sync + Clone + 'static {
    let map = Arc::new(map);
    move |request| {
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let identity = map
            .identify(&certs)
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        Ok(Some(identity))
    }
}

#[tokio::test]
async fn mutual_tls_maps_the_client_certificate_to_its_team() {
    let pki = Pki::new();
    let (addr, seen) = serve(pki.server_tls(true), authenticate_cert(pki.cert_map())).await;
    let cert = pki.client_ca.client("rok-jcs-gateway", ROK_GATEWAY_URI);
    let tls = pki.client_tls(&pki.path("server-ca.pem"), Some(&cert));
    health_check(addr, tls).await.unwrap();
    assert_eq!(
        *lock(&seen),
        vec![Identity {
            team: TeamId::parse("rok-jcs").unwrap(),
            user: "rok.gateway".into(),
            side: Some(Side::Rok),
            method: Method::ClientCertificate,
        }]
    );
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_certificate() {
    let pki = Pki::new();
    let (addr, seen) = serve(pki.server_tls(true), authenticate_cert(pki.cert_map())).await;
    let tls = pki.client_tls(&pki.path("server-ca.pem"), None);
    let error = health_check(addr, tls).await.unwrap_err();
    assert!(
        format!("{error:?}").contains("CertificateRequired"),
        "{error:?}"
    );
    assert!(lock(&seen).is_empty());
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_of_another_ca() {
    let pki = Pki::new();
    let (addr, seen) = serve(pki.server_tls(true), authenticate_cert(pki.cert_map())).await;
    let rogue = Ca::new("Rogue CA").client("rok-jcs-gateway", ROK_GATEWAY_URI);
    let tls = pki.client_tls(&pki.path("server-ca.pem"), Some(&rogue));
    let error = health_check(addr, tls).await.unwrap_err();
    assert!(format!("{error:?}").contains("UnknownCA"), "{error:?}");
    assert!(lock(&seen).is_empty());
}

#[tokio::test]
async fn mutual_tls_refuses_an_unmapped_certificate_as_unauthenticated() {
    let pki = Pki::new();
    let (addr, _) = serve(pki.server_tls(true), authenticate_cert(pki.cert_map())).await;
    let cert = pki
        .client_ca
        .client("someone", "spiffe://alliance.test/team/unknown");
    let tls = pki.client_tls(&pki.path("server-ca.pem"), Some(&cert));
    let error = health_check(addr, tls).await.unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    assert_eq!(
        error.message(),
        "client certificate (CN=someone, URI:spiffe://alliance.test/team/unknown) is not mapped to a team"
    );
}

fn load_error(paths: ServerTlsPaths) -> String {
    let error: TlsError = paths.load().unwrap_err();
    error.to_string()
}

#[test]
fn unreadable_or_invalid_files_are_named() {
    let pki = Pki::new();
    let paths = |cert: &str, key: &str, ca: Option<&str>| ServerTlsPaths {
        cert_chain: pki.path(cert),
        private_key: pki.path(key),
        client_ca: ca.map(|ca| pki.path(ca)),
        client_auth_optional: false,
    };
    let shown = |name: &str| pki.path(name).display().to_string();

    let message = load_error(paths("missing.pem", "server.key", None));
    assert!(
        message.starts_with(&format!(
            "cannot read certificate chain {}: ",
            shown("missing.pem")
        )),
        "{message}"
    );

    pki.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    assert_eq!(
        load_error(paths("garbage.pem", "server.key", None)),
        format!(
            "certificate chain {} is not valid PEM",
            shown("garbage.pem")
        )
    );

    pki.write("empty.pem", "nothing here\n");
    assert_eq!(
        load_error(paths("empty.pem", "server.key", None)),
        format!(
            "certificate chain {} holds no PEM certificate",
            shown("empty.pem")
        )
    );

    // The key file holds a certificate, not a key: no key material is quoted either way.
    assert_eq!(
        load_error(paths("server.pem", "server.pem", None)),
        format!(
            "private key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            shown("server.pem")
        )
    );

    pki.write("other.key", &pki.server_ca.server().key_pem);
    assert_eq!(
        load_error(paths("server.pem", "other.key", None)),
        format!(
            "private key {} does not belong to certificate {}",
            shown("other.key"),
            shown("server.pem")
        )
    );

    assert_eq!(
        load_error(paths("server.pem", "server.key", Some("empty.pem"))),
        format!("client CA {} holds no PEM certificate", shown("empty.pem"))
    );

    let message = ClientTlsPaths {
        ca: pki.path("nowhere.pem"),
        identity: None,
        domain_name: None,
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with(&format!("cannot read CA {}: ", shown("nowhere.pem"))),
        "{message}"
    );
}
