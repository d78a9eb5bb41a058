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
    let mut headers = std::mem::take(request.metadata_mut()).into_headers();
    let traced = alliance_telemetry::inject(&tracing::Span::current(), &mut headers);
    *request.metadata_mut() = MetadataMap::from_headers(headers);
    let carried = if traced { &CALLER[..1] } else { &CALLER[..] };
    for key in carried {
        if let Some(value) = metadata.get(*key) {
            request.metadata_mut().insert(*key, value.clone());
        }
    }
    if !metadata.contains_key(CALLER[0]) {
        let named = format!("{}/{}", caller.actor.team, caller.actor.user);
        if let Ok(value) = named.parse() {
            request
                .metadata_mut()
                .insert(alliance_auth::ON_BEHALF_OF, value);
        }
    }
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
