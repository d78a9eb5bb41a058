//! A connection to one server and what goes with every call: the endpoint, the credentials
//! (never sent in clear beyond this machine), the deadline of each reply.

use std::time::{Duration, Instant};

use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::errors::{CliError, Exit};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the service and what goes with every call.
pub(crate) struct Session {
    pub(crate) server: String,
    pub(crate) client: PlanCommandsClient<Channel>,
    pub(crate) queries: PostureQueriesClient<Channel>,
    pub(crate) channel: Channel,
    auth: Option<AsciiMetadataValue>,
    pub(crate) timeout: Duration,
}

/// The endpoint of `server`, checked: `http(s)://HOST:PORT`; an https server with `tls`.
pub(crate) fn endpoint(server: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, CliError> {
    let bad_server = |why: String| CliError::invalid_input(format!("--server {server:?}: {why}"));
    let endpoint = alliance_auth::endpoint(server, None).map_err(|e| bad_server(e.to_string()))?;
    if !matches!(endpoint.uri().scheme_str(), Some("http" | "https"))
        || endpoint.uri().host().is_none()
    {
        return Err(bad_server(
            "expected http://HOST:PORT or https://HOST:PORT".to_owned(),
        ));
    }
    let endpoint = match (endpoint.uri().scheme_str(), tls) {
        (Some("https"), Some(tls)) => {
            alliance_auth::endpoint(server, Some(tls)).map_err(|e| bad_server(e.to_string()))?
        }
        (Some("https"), None) => {
            return Err(bad_server(
                "https needs --ca-cert (the CA that signed the server's certificate)".to_owned(),
            ));
        }
        _ => endpoint,
    };
    Ok(endpoint.connect_timeout(CONNECT_TIMEOUT))
}

/// Refuses to send a credential in clear: a token (`sends_token`: one is given, without
/// `--insecure-plaintext`) to an `http://` server that is not this machine. A client certificate
/// only ever goes over https.
pub(crate) fn check_clear(server: &str, sends_token: bool) -> Result<(), CliError> {
    if !sends_token {
        return Ok(());
    }
    let Ok(uri) = server.parse::<tonic::codegen::http::Uri>() else {
        return Ok(()); // refused as invalid input by `endpoint`
    };
    if uri.scheme_str() != Some("http") || uri.host().is_some_and(is_loopback_host) {
        return Ok(());
    }
    Err(CliError::new(
        Exit::Insecure,
        format!(
            "insecure: not sending the token in clear to {server}: anyone on the path could \
             read it; use https:// (with --ca-cert), or --insecure-plaintext if you accept that"
        ),
    ))
}

/// Whether `host` (of a URI, IPv6 in brackets) is this machine.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The `authorization` value sent with every call, from `--token`.
pub(crate) fn bearer(token: Option<&String>) -> Result<Option<AsciiMetadataValue>, CliError> {
    token
        .map(|token| MetadataValue::try_from(format!("Bearer {}", token.trim())))
        .transpose()
        .map_err(|_| CliError::invalid_input("--token: must be printable ASCII"))
}

impl Session {
    /// A session with `server` at `endpoint`, sending `auth` with every call and waiting
    /// `timeout` for each reply.
    pub(crate) fn new(
        server: &str,
        endpoint: &Endpoint,
        auth: Option<AsciiMetadataValue>,
        timeout: Duration,
    ) -> Self {
        let channel = endpoint.connect_lazy();
        Session {
            server: server.to_owned(),
            client: PlanCommandsClient::new(channel.clone()),
            queries: PostureQueriesClient::new(channel.clone()),
            channel,
            auth,
            timeout,
        }
    }

    /// The error of a failed call, with where it went and how to retry it when unreachable.
    pub(crate) fn failure(&self, status: &tonic::Status, command_id: Option<String>) -> CliError {
        let mut err = CliError::from_status(status);
        if err.exit == Exit::Unavailable {
            err.message = format!("{} (server {})", err.message, self.server);
            if let Some(id) = &command_id {
                err.message = format!("{}; retry safely with --command-id {id}", err.message);
            }
        }
        err.command_id = command_id;
        err
    }

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = self.open_request(message);
        request.set_timeout(self.timeout);
        request
    }

    /// A request with no deadline, for a stream that lasts as long as the client wants it.
    pub(crate) fn open_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(auth) = &self.auth {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        request
    }
}

/// Waits for a reply no longer than `timeout`. The server may enforce the same deadline (sent as
/// `grpc-timeout`) first; tonic servers report that as CANCELLED, which is a deadline too.
pub(crate) async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let started = Instant::now();
    let late =
        || tonic::Status::deadline_exceeded(format!("no reply within {}s", timeout.as_secs()));
    match tokio::time::timeout(timeout, call).await {
        Ok(Err(status)) if status.code() == Code::Cancelled && started.elapsed() >= timeout => {
            Err(late())
        }
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(late()),
    }
}

/// The next message of `stream`, or a deadline error when none comes within `timeout`; `hint`
/// ends the error's message.
pub(crate) async fn next_within<T>(
    timeout: Duration,
    stream: &mut tonic::Streaming<T>,
    hint: &str,
) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(timeout, stream.message())
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "no progress within {}s{hint}",
                timeout.as_secs()
            )))
        })
}

/// Sends one command RPC and wraps its `CommandResult`.
macro_rules! command {
    ($session:expr, $rpc:ident, $request:expr) => {{
        let request = $session.request($request);
        let command_id = request
            .get_ref()
            .meta
            .as_ref()
            .map(|m| m.command_id.clone())
            .unwrap_or_default();
        match $crate::session::within($session.timeout, $session.client.$rpc(request)).await {
            Ok(result) => Ok($crate::output::Reply::Command { result, command_id }),
            Err(status) => Err($session.failure(&status, Some(command_id))),
        }
    }};
}

/// Sends one RPC of the session's `$client` (`client` or `queries`) and answers its reply, or
/// the error of the call.
macro_rules! ask {
    ($session:expr, $client:ident . $rpc:ident, $request:expr) => {{
        let request = $session.request($request);
        $crate::session::within($session.timeout, $session.$client.$rpc(request))
            .await
            .map_err(|status| $session.failure(&status, None))
    }};
}

/// Sends one query RPC and wraps its reply in `Reply::$variant`.
macro_rules! query {
    ($session:expr, $rpc:ident, $variant:ident, $request:expr) => {
        $crate::session::ask!($session, queries.$rpc, $request).map($crate::output::Reply::$variant)
    };
}
pub(crate) use {ask, command, query};
