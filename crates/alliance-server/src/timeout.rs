//! The server's own bound on how long a call takes to be answered, whatever deadline the caller
//! gave (or none): past it the call is answered `DEADLINE_EXCEEDED`, naming the bound, and its
//! work is dropped. A stream is bounded until it starts (its first reply), not for as long as
//! it stays open; the caller's shorter deadline (`grpc-timeout`) is honoured by tonic and the
//! handlers themselves ([`crate::deadline`]).

use std::time::Duration;

/// Answers a call that takes longer than `timeout` with `DEADLINE_EXCEEDED`.
#[derive(Clone, Copy, Debug)]
pub struct RequestTimeoutLayer {
    timeout: Duration,
}

impl RequestTimeoutLayer {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RequestTimeout<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    alliance_stdx::forward_service!();

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let timeout = self.timeout;
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::warn!(%method, ?timeout, "call not answered within the request timeout");
                    Ok(tonic::Status::deadline_exceeded(format!(
                        "{method} was not answered within this server's request timeout \
                         ({timeout:?}); a call that needs longer is not served here"
                    ))
                    .into_http())
                }
            }
        })
    }
}
