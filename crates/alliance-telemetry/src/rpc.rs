//! Every gRPC request of a server: a server span continuing the caller's trace, its duration
//! and outcome as metrics, and its line in the access log.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::trace::TraceContextExt;
use tonic::Code;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::record_ids;
use crate::{exporting, extract, meter, record_trace_id};

/// The target of the access log's lines (one per answered request).
pub const ACCESS: &str = "alliance::access";

/// Bucket boundaries of request durations, in seconds: 100 µs to 30 s.
const DURATION_BOUNDARIES: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 30.0,
];

/// The telemetry of every request a server answers.
///
/// * A span named `{service}/{method}` (kind server) following the RPC semantic conventions
///   (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), a child of the trace
///   context in the request's `traceparent` metadata.
/// * `rpc.server.call.duration` (seconds) by method and status code, and
///   `alliance.requests.rejected` by method and reason (the status code's name) for every
///   request that did not succeed.
/// * One log line at `info` (health checks and reflection at `debug`) with the status code and
///   the time taken; the span's fields, the trace id among them, come with it.
///
/// A server stream's span, duration and line cover the call up to its response headers; each
/// update it pushes later has its own span.
#[derive(Clone)]
pub struct RpcLayer {
    instruments: Arc<Instruments>,
}

struct Instruments {
    duration: Histogram<f64>,
    rejected: Counter<u64>,
}

impl Default for RpcLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcLayer {
    pub fn new() -> Self {
        let meter = meter();
        Self {
            instruments: Arc::new(Instruments {
                duration: meter
                    .f64_histogram("rpc.server.call.duration")
                    .with_unit("s")
                    .with_description("Duration of the gRPC requests a server answered")
                    .with_boundaries(DURATION_BOUNDARIES.to_vec())
                    .build(),
                rejected: meter
                    .u64_counter("alliance.requests.rejected")
                    .with_description(
                        "Requests answered with a status other than OK, by reason (status code)",
                    )
                    .build(),
            }),
        }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    instruments: Arc<Instruments>,
}

/// The canonical name of a gRPC status code, e.g. `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a status marks the server span as failed (the RPC conventions: a server's span fails
/// only on codes that say the server could not do its part).
fn server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    alliance_stdx::forward_service!();

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path, ""));
        let quiet = service.starts_with("grpc.");
        let (service, method) = (service.to_owned(), method.to_owned());
        let caller = extract(request.headers());
        // Exported, the span carries the RPC conventions' attributes, recorded once the span has
        // started and only when its trace is sampled (nine requests in ten are not, at a 10%
        // ratio, and would build them to drop them); the method also when log lines show it.
        // Not exported, the span has only what the log lines inside it need: the method and
        // the trace id.
        let span = if exporting() {
            let span = tracing::info_span!(
                "rpc",
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.service = Empty,
                rpc.method = Empty,
                rpc.grpc.status_code = Empty,
                trace_id = Empty,
                span_id = Empty,
            );
            let _ = span.set_parent(caller.clone());
            let logged = span.metadata().is_some_and(crate::logged);
            let cx = span.context();
            let exported = cx.span();
            if exported.span_context().is_sampled() {
                exported.update_name(format!("{service}/{method}"));
                exported.set_attribute(KeyValue::new("rpc.system", "grpc"));
                if !logged {
                    exported.set_attribute(KeyValue::new("rpc.service", service.clone()));
                    exported.set_attribute(KeyValue::new("rpc.method", method.clone()));
                }
            }
            // Recorded as fields, they reach the exported span too.
            if logged {
                span.record("rpc.service", tracing::field::display(&service));
                span.record("rpc.method", tracing::field::display(&method));
                record_ids(&span, exported.span_context(), &caller);
            }
            span
        } else {
            let span = tracing::info_span!(
                "rpc",
                rpc.service = %service,
                rpc.method = %method,
                trace_id = Empty,
            );
            record_trace_id(&span, &caller);
            span
        };
        let started = Instant::now();
        let answer = span.in_scope(|| self.inner.call(request));
        let instruments = self.instruments.clone();
        let done = span.clone();
        Box::pin(
            async move {
                let response = answer.await?;
                // A refusal is a trailers-only response: its status is in the headers.
                let code = tonic::Status::from_header_map(response.headers())
                    .map_or(Code::Ok, |status| status.code());
                let elapsed = started.elapsed();
                done.record("rpc.grpc.status_code", code as i32);
                if server_error(code) {
                    done.record("otel.status_code", "ERROR");
                }
                let attributes = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service),
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", code as i64),
                ];
                instruments
                    .duration
                    .record(elapsed.as_secs_f64(), &attributes);
                if code != Code::Ok {
                    let [_, service, method, _] = attributes;
                    instruments.rejected.add(
                        1,
                        &[service, method, KeyValue::new("reason", code_name(code))],
                    );
                }
                let elapsed_ms = elapsed.as_secs_f64() * 1e3;
                // The access log: every refusal and error at `info`; a request answered OK at
                // `debug` (`RUST_LOG=info,alliance::access=debug` logs each), health checks at
                // `trace`. A line per answered request would cost a busy server a sixth of its
                // CPU.
                match (code, quiet) {
                    (_, true) => {
                        tracing::trace!(target: ACCESS, code = code_name(code), elapsed_ms, "request");
                    }
                    (Code::Ok, false) => {
                        tracing::debug!(target: ACCESS, code = code_name(code), elapsed_ms, "request");
                    }
                    _ => {
                        tracing::info!(target: ACCESS, code = code_name(code), elapsed_ms, "request");
                    }
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
