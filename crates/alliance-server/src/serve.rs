//! Serving: a gRPC server's routes with the standard health and reflection services, its
//! layers (TLS, verified callers, the security log, malformed requests), its security settings,
//! shutdown, and retrying a start until the log answers.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("grpc server task: {0}")]
    Task(String),
}

/// The routes of `grpc.health.v1` and server reflection of the whole `alliance.v1` contract;
/// services are added to them (and reported serving through the returned health reporter).
pub fn base_routes() -> Result<(Routes, HealthReporter), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(alliance_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok((Routes::new(health_service).add_service(reflection), health))
}

/// Runs `attempt` until it succeeds, waiting 1 s, 2 s, 4 s … (at most 30 s) between attempts
/// and reporting each failure as `what`. Gives up only on Ctrl-C or SIGTERM, with the last
/// error.
pub async fn retry_until_stopped<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = std::time::Duration::from_secs(1);
    // Listening from the start: a SIGTERM that arrives during an attempt, or between the report
    // of a failure and the wait that follows it, is kept for that wait instead of being lost.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(error) => {
                tracing::error!(%error, retry_in = ?delay, "{what}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = tokio::signal::ctrl_c() => return Err(format!("stopped while retrying ({what}): {error}")),
                    () = sigterm(term.as_mut()) => return Err(format!("stopped while retrying ({what}): {error}")),
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: a server's clean stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        () = ctrl_c => {}
        () = sigterm(term.as_mut()) => {}
    }
}

/// Resolves when `term` (the SIGTERM listener, if one could be installed) receives the signal;
/// never without a listener.
async fn sigterm(term: Option<&mut tokio::signal::unix::Signal>) {
    match term {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// What guards a server besides each service's own checks.
#[derive(Clone, Default)]
pub struct Guard {
    /// Records every refused request in the security log.
    pub denials: Option<crate::security::DenialLayer>,
    /// Verifies each request's JWT or client certificate (an identity configuration).
    pub verify: Option<crate::VerifyLayer>,
    /// TLS (and mutual TLS when it names a client CA); plaintext without it.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// How much one connection may ask at once, and how long a call may take to be answered.
    pub limits: ConnectionLimits,
}

/// How much one connection may ask of a server at once, and how long a call may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Calls one connection may have in progress; more wait their turn. A stream counts until
    /// its first reply, not for as long as it stays open.
    pub per_connection: usize,
    /// The longest a call may take to be answered (a stream: to start), whatever deadline the
    /// caller gave; past it the call is answered `DEADLINE_EXCEEDED`.
    pub request_timeout: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            per_connection: DEFAULT_CALLS_PER_CONNECTION,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Calls one connection may have in progress at once, unless configured otherwise.
pub const DEFAULT_CALLS_PER_CONNECTION: usize = 64;

/// The longest a call may take to be answered, unless configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl From<Option<crate::security::DenialLayer>> for Guard {
    fn from(denials: Option<crate::security::DenialLayer>) -> Self {
        Guard {
            denials,
            ..Guard::default()
        }
    }
}

/// Serves `routes` on `listener` until `shutdown`, with the telemetry of every request
/// ([`alliance_telemetry::RpcLayer`]) and what `guard` asks: TLS, verified credentials, the
/// security log of refused requests, how many calls one connection may have in progress and
/// how long a call may take to be answered ([`crate::timeout::RequestTimeoutLayer`]). A request that does not decode is answered
/// `INVALID_ARGUMENT` ([`crate::malformed::MalformedLayer`]).
pub async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    guard: impl Into<Guard>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let guard = guard.into();
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(guard.limits.per_connection);
    if let Some(tls) = guard.tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(alliance_telemetry::RpcLayer::new())
        .layer(crate::timeout::RequestTimeoutLayer::new(
            guard.limits.request_timeout,
        ))
        .layer(tower::util::option_layer(guard.verify))
        .layer(tower::util::option_layer(guard.denials))
        .layer(crate::malformed::MalformedLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// How a server authenticates callers and secures its connections (common to the servers).
#[derive(clap::Args, Debug, Clone)]
pub struct SecurityArgs {
    /// Identity configuration (TOML): bearer JWTs verified against a JWKS, client certificates
    /// mapped to teams, the teams and their roles. Without it the development token file is
    /// used.
    #[arg(long, env = "ALLIANCE_AUTH_CONFIG")]
    pub auth_config: Option<std::path::PathBuf>,
    /// The server's TLS certificate chain (PEM); with --tls-key, the server speaks TLS only.
    #[arg(long, env = "ALLIANCE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "ALLIANCE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// CA (PEM) of client certificates: clients present one it signed (mutual TLS; optional
    /// when bearer JWTs are accepted too).
    #[arg(long, env = "ALLIANCE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Serve without TLS although the listen address is not loopback.
    #[arg(long, env = "ALLIANCE_PLAINTEXT")]
    pub plaintext: bool,
    /// Accept the development token file although the listen address is not loopback. Its
    /// tokens are static and, for the shipped file, public: development only.
    #[arg(long, env = "ALLIANCE_DEV_TOKENS_BEYOND_LOOPBACK")]
    pub dev_tokens_beyond_loopback: bool,
    /// CA (PEM) of the other servers' certificates: calls to them (forwarding a command to the
    /// instance writing its plan, recording a simulation run) use TLS verified against it.
    #[arg(long, env = "ALLIANCE_PEER_CA")]
    pub peer_ca: Option<std::path::PathBuf>,
    /// A client certificate chain (PEM) presented on those calls, to servers asking for one.
    #[arg(long, env = "ALLIANCE_PEER_CERT", requires_all = ["peer_key", "peer_ca"])]
    pub peer_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --peer-cert.
    #[arg(long, env = "ALLIANCE_PEER_KEY", requires = "peer_cert")]
    pub peer_key: Option<std::path::PathBuf>,
    /// Calls one connection may have in progress at once; more wait their turn (a stream
    /// counts until its first reply).
    #[arg(
        long,
        env = "ALLIANCE_CALLS_PER_CONNECTION",
        default_value_t = DEFAULT_CALLS_PER_CONNECTION as u32,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub calls_per_connection: u32,
    /// The longest a call may take to be answered (a stream: to start), in seconds, whatever
    /// deadline the caller gave: past it, DEADLINE_EXCEEDED.
    #[arg(
        long,
        env = "ALLIANCE_REQUEST_TIMEOUT_SECS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub request_timeout_secs: u64,
}

impl Default for SecurityArgs {
    /// No identity configuration, TLS or peers; the default limits.
    fn default() -> Self {
        Self {
            auth_config: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            plaintext: false,
            dev_tokens_beyond_loopback: false,
            peer_ca: None,
            peer_cert: None,
            peer_key: None,
            calls_per_connection: DEFAULT_CALLS_PER_CONNECTION as u32,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT.as_secs(),
        }
    }
}

impl SecurityArgs {
    /// The connection limits these settings ask for.
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            per_connection: self.calls_per_connection.max(1) as usize,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
        }
    }

    /// The TLS of calls to the other instances: from `--peer-ca` (with `--peer-cert` and
    /// `--peer-key`, if given) when set, else `configured` (the identity configuration's).
    pub fn peer_tls(
        &self,
        configured: Option<alliance_auth::ClientTlsPaths>,
    ) -> Option<alliance_auth::ClientTlsPaths> {
        match &self.peer_ca {
            Some(ca) => Some(alliance_auth::ClientTlsPaths {
                ca: ca.clone(),
                identity: self.peer_cert.clone().zip(self.peer_key.clone()).map(
                    |(cert_chain, private_key)| alliance_auth::CertKeyPaths {
                        cert_chain,
                        private_key,
                    },
                ),
                domain_name: None,
            }),
            None => configured,
        }
    }
}

/// A server's callers and connections: who is calling, and the guard of its connections.
pub struct Security {
    pub auth: std::sync::Arc<crate::Authenticator>,
    pub verify: Option<crate::VerifyLayer>,
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// TLS of the calls to the other servers; plaintext without it.
    pub peer: Option<tonic::transport::ClientTlsConfig>,
    /// The keys whose signatures on records are trusted (`[[signing_key]]`); `None` without an
    /// identity configuration.
    pub signing_keys: Option<alliance_record::signing::TrustedKeys>,
    /// The auditors' keys that witness plans' heads (`[[witness_key]]`); `None` without an
    /// identity configuration.
    pub witness_keys: Option<alliance_record::witness::WitnessKeys>,
    /// How much one connection may ask at once, and how long a call may take.
    pub limits: ConnectionLimits,
}

impl Security {
    /// The guard of a server with these settings, recording refusals through `denials`.
    pub fn guard(&self, denials: Option<crate::security::DenialLayer>) -> Guard {
        Guard {
            denials,
            verify: self.verify.clone(),
            tls: self.tls.clone(),
            limits: self.limits,
        }
    }
}

/// Loads what `args` name for a server listening on `listen`: the identity configuration (or
/// the development token file `token_file`) and the TLS files (from the flags, or the identity
/// configuration's `[tls]`). Refuses plaintext beyond loopback unless `--plaintext` says so.
pub async fn secure(
    args: &SecurityArgs,
    token_file: &std::path::Path,
    listen: std::net::SocketAddr,
) -> Result<Security, String> {
    let (auth, config_tls, config_peer, jwt, keys) = match &args.auth_config {
        Some(path) => {
            let config = alliance_auth::AuthConfig::load(path).map_err(|e| e.to_string())?;
            let auth = crate::Authenticator::from_identity_config(&config)
                .await
                .map_err(|e| format!("identity configuration {}: {e}", path.display()))?;
            let invalid = |e: alliance_record::signing::KeyError| {
                format!("identity configuration {}: {e}", path.display())
            };
            let signing_keys = crate::signing::trusted_keys(&config).map_err(invalid)?;
            let witness_keys =
                crate::signing::witness_keys(&config.witness_keys).map_err(invalid)?;
            (
                auth,
                config.tls.clone(),
                config.peer_tls.clone(),
                config.jwt.is_some(),
                Some((signing_keys, witness_keys)),
            )
        }
        None => (
            dev_tokens(token_file, listen, args.dev_tokens_beyond_loopback)?,
            None,
            None,
            false,
            None,
        ),
    };
    let (signing_keys, witness_keys) = keys.unzip();
    let peer_paths = args.peer_tls(config_peer);
    let peer = peer_paths
        .map(|paths| paths.load().map_err(|e| format!("peer TLS: {e}")))
        .transpose()?;
    let paths = match (&args.tls_cert, &args.tls_key) {
        (Some(cert_chain), Some(private_key)) => Some(alliance_auth::ServerTlsPaths {
            cert_chain: cert_chain.clone(),
            private_key: private_key.clone(),
            client_ca: args.tls_client_ca.clone(),
            client_auth_optional: jwt,
        }),
        _ => config_tls,
    };
    let tls = paths
        .map(|paths| paths.load().map_err(|e| e.to_string()))
        .transpose()?;
    if tls.is_none() && !listen.ip().is_loopback() && !args.plaintext {
        return Err(format!(
            "refusing to serve without TLS on {listen}: give --tls-cert and --tls-key (or [tls] in \
             the identity configuration), or --plaintext to serve without it"
        ));
    }
    if tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "serving plaintext gRPC beyond loopback (--plaintext)");
    }
    let auth = std::sync::Arc::new(auth);
    Ok(Security {
        verify: crate::VerifyLayer::new(auth.clone()),
        auth,
        tls,
        peer,
        signing_keys,
        witness_keys,
        limits: args.limits(),
    })
}

/// The callers of the development token file `token_file`, for a server listening on `listen`.
/// Its tokens are static (the shipped ones are public): beyond loopback it is refused unless
/// `beyond_loopback` (`--dev-tokens-beyond-loopback`) says otherwise, and then loudly warned of.
pub fn dev_tokens(
    token_file: &std::path::Path,
    listen: std::net::SocketAddr,
    beyond_loopback: bool,
) -> Result<crate::Authenticator, String> {
    if !listen.ip().is_loopback() && !beyond_loopback {
        return Err(format!(
            "refusing the development token file {} on {listen}: its tokens are static and the \
             shipped ones public; give an identity configuration (--auth-config), or \
             --dev-tokens-beyond-loopback (development only)",
            token_file.display()
        ));
    }
    let auth = crate::TokenFile::load(token_file)
        .and_then(|file| crate::Authenticator::from_token_file(&file))
        .map_err(|e| e.to_string())?;
    if !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "the static development token file is in use on a non-loopback address: anyone holding a development token can edit plans"
        );
    }
    Ok(auth)
}
