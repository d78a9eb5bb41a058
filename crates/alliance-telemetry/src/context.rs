//! W3C trace context (`traceparent`, `tracestate`) in and out of gRPC metadata and Kafka
//! headers.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::exporting;

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// One `traceparent` value as a carrier.
struct Traceparent<'a>(&'a str);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The trace context a request carries in its headers (gRPC metadata); an empty context when
/// it carries none or a malformed one.
pub fn extract(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Writes `span`'s trace context into `headers` (replacing what they carried), so the call they
/// belong to continues the trace. Returns `false`, changing nothing, when spans are not
/// exported.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) -> bool {
    if !exporting() {
        return false;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return false;
    }
    TraceContextPropagator::new().inject_context(&cx, &mut HeadersMut(headers));
    true
}

/// `span`'s trace context as a W3C `traceparent` value, when spans are exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// Whether the trace a `traceparent` value names is sampled (its recorded flag): a consumer
/// records spans of its own only for those.
pub fn sampled(traceparent: &str) -> bool {
    remote(traceparent).is_some_and(|context| context.is_sampled())
}

/// The span a `traceparent` value names; `None` when it is malformed.
fn remote(traceparent: &str) -> Option<SpanContext> {
    let cx = TraceContextPropagator::new().extract(&Traceparent(traceparent));
    let context = cx.span().span_context().clone();
    context.is_valid().then_some(context)
}

/// Makes `span` (not yet entered) a child of the span `traceparent` names and links it to that
/// span: how a consumer's span continues the producer's trace. Returns whether `traceparent`
/// named a span.
pub fn continue_from(span: &tracing::Span, traceparent: &str) -> bool {
    let Some(producer) = remote(traceparent) else {
        return false;
    };
    span.add_link(producer.clone());
    let _ = span.set_parent(Context::new().with_remote_span_context(producer));
    true
}

/// Records the trace id of `span` in its `trace_id` field and, when spans are exported, its own
/// id in its `span_id` field, so every log line inside it names the trace: its own when spans
/// are exported, otherwise `remote`'s (the caller's) when valid. Nothing when no log line shows
/// such a span ([`crate::logged`]): an exported span carries its ids anyway.
pub fn record_trace_id(span: &tracing::Span, remote: &Context) {
    if span
        .metadata()
        .is_none_or(|metadata| !crate::logged(metadata))
    {
        return;
    }
    let own = if exporting() {
        span.context().span().span_context().clone()
    } else {
        SpanContext::empty_context()
    };
    record_ids(span, &own, remote);
}

/// [`record_trace_id`]'s recording, for a span whose own context (`own`, invalid when not
/// exported) is already at hand and whose lines are shown.
pub(crate) fn record_ids(span: &tracing::Span, own: &SpanContext, remote: &Context) {
    if own.is_valid() {
        span.record("trace_id", tracing::field::display(own.trace_id()));
        span.record("span_id", tracing::field::display(own.span_id()));
        return;
    }
    let trace_id = remote.span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}
