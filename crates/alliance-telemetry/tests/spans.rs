//! Which spans the installed subscriber makes. A test binary of its own: whether a callsite is
//! enabled is decided once for every subscriber alive at the time, so subscribers that other
//! tests set on other threads would change what this one sees.

use alliance_telemetry::Directives;
use alliance_telemetry::{LogFormat, subscriber};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;

/// What the directives leave out is not made at all: the HTTP/2 stack makes `trace` spans on
/// every frame it handles, and a span that is made is recorded in the registry whether or not
/// any layer then writes or exports it.
#[test]
fn a_span_no_layer_wants_is_not_made() {
    let exporter = SdkTracerProvider::builder().build();
    for tracer in [None, Some(&exporter)] {
        for directives in ["warn", "info"] {
            let exported = tracer.is_some();
            let subscriber = subscriber(
                LogFormat::Text,
                Directives::parse(directives).unwrap(),
                tracer,
            );
            tracing::subscriber::with_default(subscriber, || {
                // The most verbose level any layer wants, which every disabled event and span
                // below it is checked against before anything else.
                let wanted = if exported || directives == "info" {
                    LevelFilter::INFO
                } else {
                    LevelFilter::WARN
                };
                assert_eq!(
                    LevelFilter::current(),
                    wanted,
                    "{directives}, exported {exported}"
                );
                let frame = tracing::trace_span!(target: "h2::proto", "poll");
                let debug = tracing::debug_span!(target: "hyper::proto", "encode");
                let request = tracing::info_span!("rpc", rpc.method = "CreatePlan");
                assert!(frame.is_disabled(), "{directives}, exported {exported}");
                assert!(debug.is_disabled(), "{directives}, exported {exported}");
                // A request's span is wanted by the lines at `info`, and by the export.
                assert_eq!(
                    request.is_disabled(),
                    directives == "warn" && !exported,
                    "{directives}, exported {exported}"
                );
            });
        }
    }
}
