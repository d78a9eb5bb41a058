//! Spans that serve only tracing, inside a request whose trace is or is not sampled. A test
//! binary of its own: it installs the process's subscriber and exporter.

use alliance_telemetry::{LogFormat, in_sampled_trace, install, trace_span};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A request's span, continuing the caller's trace when `caller` is sampled or not.
fn request(caller: Option<bool>) -> tracing::Span {
    let span = tracing::info_span!("rpc", rpc.method = "CreatePlan");
    if let Some(sampled) = caller {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let remote = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
            SpanId::from(0xb7ad6b7169203331),
            flags,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    span
}

/// At a sampling ratio of 10%, nine requests in ten are not exported: the spans inside them
/// that serve only tracing (`decide`, the log append) are not made at all, and those of a
/// sampled request are made and exported.
#[test]
fn a_trace_only_span_is_made_only_in_a_sampled_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        // A request with no caller is a root, and roots are never sampled here; a caller's
        // decision is followed.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .build();
    let _telemetry = install(LogFormat::Text, Some(provider.clone()), None).unwrap();

    assert!(!in_sampled_trace(), "outside any span");
    for (caller, sampled) in [(None, false), (Some(false), false), (Some(true), true)] {
        let rpc = request(caller);
        rpc.in_scope(|| {
            assert_eq!(in_sampled_trace(), sampled, "caller {caller:?}");
            let decide = trace_span!("decide", alliance.command = "CreatePlan");
            assert_eq!(decide.is_none(), !sampled, "caller {caller:?}");
            decide.in_scope(|| {
                let append = trace_span!("append", alliance.events = 1);
                assert_eq!(append.is_none(), !sampled, "caller {caller:?}");
            });
        });
    }
    provider.force_flush().unwrap();
    let mut names: Vec<_> = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|span| span.name.into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["append", "decide", "rpc"]);
}
