//! Verifying each request's credentials before any service sees it: a bearer JWT, or the client
//! certificate the TLS handshake verified. The outcome goes into the request's extensions
//! ([`Verified`]), where [`Authenticator::authenticate`] finds it; a request that fails is
//! answered by its service as `UNAUTHENTICATED` (health checks and reflection need no
//! credentials).

use std::sync::Arc;

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::auth::{Authenticator, Verified};

/// Verifies the credentials of every request of a server.
#[derive(Clone)]
pub struct VerifyLayer {
    auth: Arc<Authenticator>,
}

impl VerifyLayer {
    /// `None` unless `auth` verifies credentials (the development token file needs no layer).
    pub fn new(auth: Arc<Authenticator>) -> Option<Self> {
        auth.verifies().then_some(Self { auth })
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for VerifyService<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    alliance_stdx::forward_service!();

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let metadata = tonic::metadata::MetadataMap::from_headers(request.headers().clone());
            let certs = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs);
            let certs = certs.as_deref().map(Vec::as_slice);
            let verified = auth.verify(&metadata, certs).await;
            request.extensions_mut().insert(Verified(verified));
            if auth.is_peer(certs) {
                request
                    .extensions_mut()
                    .insert(crate::recording::PeerConnection::new());
            }
            inner.call(request).await
        })
    }
}
