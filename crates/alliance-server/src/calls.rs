//! Calls one server makes to another on a caller's behalf: the caller's credentials and trace
//! carried on, and the endpoint of a peer (plaintext, or TLS with the deployment's CA).

use alliance_auth::EndpointError;
use tonic::Request;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic::transport::{ClientTlsConfig, Endpoint};

/// The caller's credentials, then its trace context: carried on a call made on the caller's
/// behalf (the trace context only when this service's own spans are not exported).
const CALLER: [&str; 3] = ["authorization", "traceparent", "tracestate"];

/// Copies the caller's credentials from `metadata` onto `request` and continues the caller's
/// trace from the current span, so the service called sees the same caller (the actor of what
/// it appends) in the same trace. A caller known by its client certificate, which cannot travel
/// on, is named instead ([`alliance_auth::ON_BEHALF_OF`]): the server called believes it only
/// from a certificate of this deployment's servers (`[[peer]]`, `--peer-cert`).
pub fn carry_caller<T>(metadata: &MetadataMap, caller: &crate::Caller, request: &mut Request<T>) {
    let traced = carry_trace(request);
    if traced {
        copy(metadata, &CALLER[..1], request);
    } else {
        copy(metadata, &CALLER[..], request);
    }
    if !metadata.contains_key(CALLER[0]) {
        name(caller, request);
    }
}

/// Names the caller on `request` ([`alliance_auth::ON_BEHALF_OF`]) and continues its trace; its
/// credentials (a bearer token) never travel. For a call to a server that proved it is a
/// `[[peer]]`, made under this server's own certificate, which is what the server called
/// believes the name from.
pub fn name_caller<T>(metadata: &MetadataMap, caller: &crate::Caller, request: &mut Request<T>) {
    if !carry_trace(request) {
        copy(metadata, &CALLER[1..], request);
    }
    name(caller, request);
}

/// Continues the trace from the current span; whether its spans are exported (when not, the
/// caller's own trace headers are to be copied).
fn carry_trace<T>(request: &mut Request<T>) -> bool {
    let mut headers = std::mem::take(request.metadata_mut()).into_headers();
    let traced = alliance_telemetry::inject(&tracing::Span::current(), &mut headers);
    *request.metadata_mut() = MetadataMap::from_headers(headers);
    traced
}

fn copy<T>(metadata: &MetadataMap, keys: &[&'static str], request: &mut Request<T>) {
    for key in keys {
        if let Some(value) = metadata.get(*key) {
            request.metadata_mut().insert(*key, value.clone());
        }
    }
}

fn name<T>(caller: &crate::Caller, request: &mut Request<T>) {
    let named = format!("{}/{}", caller.actor.team, caller.actor.user);
    if let Ok(value) = named.parse() {
        request
            .metadata_mut()
            .insert(alliance_auth::ON_BEHALF_OF, value);
    }
}

/// This server's TLS to the other servers when they must prove they are of this deployment:
/// with an identity configuration (`--auth-config`), its `[[peer]]` names and the peer TLS
/// (`--peer-ca` and `--peer-cert`, or the configuration's `[peer_tls]`). `Ok(None)` with an
/// identity configuration but no peer TLS; `Err` names a file that cannot be used.
pub fn proven_peers(
    args: &crate::serve::SecurityArgs,
) -> Result<Option<Option<alliance_auth::PeerTls>>, String> {
    let Some(path) = &args.auth_config else {
        return Ok(None);
    };
    let config = alliance_auth::AuthConfig::load(path).map_err(|e| e.to_string())?;
    let paths = args.peer_tls(config.peer_tls.clone());
    let peers = alliance_auth::PeerCerts::new(config.peers.iter().map(|peer| peer.subject.clone()));
    paths
        .map(|paths| {
            alliance_auth::PeerTls::load(&paths, peers).map_err(|e| format!("peer TLS: {e}"))
        })
        .transpose()
        .map(Some)
}

/// The endpoint of another server at `address`, `HOST:PORT` or a URL: over TLS with `tls`
/// (the certificate it presents must carry the host), plaintext without. A URL's scheme must
/// agree: `https://` needs `tls`, `http://` is refused with it.
pub fn endpoint(address: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, Status> {
    let host_port = match (address.split_once("://"), tls) {
        (None, _) => address,
        (Some(("http", rest)), None) | (Some(("https", rest)), Some(_)) => rest,
        (Some(("https", _)), None) => {
            return Err(Status::failed_precondition(format!(
                "{address} is a TLS address, but no CA is set to verify it (--peer-ca)"
            )));
        }
        (Some(("http", _)), Some(_)) => {
            return Err(Status::failed_precondition(format!(
                "{address} is a plaintext address, but calls to other servers use TLS \
                 (--peer-ca): write https://"
            )));
        }
        (Some(_), _) => {
            return Err(Status::invalid_argument(format!(
                "{address} is neither HOST:PORT nor an http:// or https:// URL"
            )));
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    alliance_auth::endpoint(&format!("{scheme}://{host_port}"), tls).map_err(|e| match e {
        EndpointError::Address(e) => {
            Status::invalid_argument(format!("bad server address {address:?}: {e}"))
        }
        EndpointError::Tls(e) => Status::internal(format!("TLS to {address}: {e}")),
    })
}
