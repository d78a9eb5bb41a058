//! Logs, traces and metrics of every service.
//!
//! * **Logs** go to stderr through `tracing`, as text or as one JSON object per line
//!   (`ALLIANCE_LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`). Every refused or
//!   failed request is one line at `info` ([`RpcLayer`]; one answered OK at `debug`), carrying
//!   its method and trace id; no header value is ever logged.
//! * **Traces**: `tracing` spans are bridged to OpenTelemetry by `tracing-opentelemetry` and
//!   exported over OTLP/gRPC (`opentelemetry-otlp`, tonic). W3C trace context comes in through
//!   gRPC metadata ([`RpcLayer`]), goes out in each Kafka record's `traceparent` header
//!   ([`traceparent`]) and is picked up by whoever consumes the record ([`continue_from`]).
//! * **Metrics** are OpenTelemetry instruments on the global meter ([`meter`]), exported over
//!   OTLP/gRPC.
//!
//! Everything is configured by the standard `OTEL_*` variables, read by the SDK itself:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal `…_TRACES_ENDPOINT` and
//! `…_METRICS_ENDPOINT`), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_SDK_DISABLED`. A signal
//! is exported when an endpoint is set for it or its exporter is named
//! (`OTEL_TRACES_EXPORTER=otlp`, `OTEL_METRICS_EXPORTER=otlp`), and never when its exporter is
//! `none`. With none of them set, nothing is exported: no OpenTelemetry layer is installed, no
//! span is recorded for export, and the instruments are the global no-op ones.

mod context;
mod rpc;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

pub use context::{continue_from, extract, inject, record_trace_id, sampled, traceparent};
pub use rpc::{RpcLayer, RpcService, code_name};

/// The instrumentation scope of every span and instrument.
pub const SCOPE: &str = "alliance";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are recorded for export (an OpenTelemetry tracer is installed). Spans that only
/// serve tracing (one per consumed record, one per pushed update, [`trace_span!`]) are created
/// only then.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The installed log directives when they are by target only (`None` inside: with span
/// conditions, which [`logged`] cannot answer for a span alone).
static LOGGED: std::sync::OnceLock<Option<Targets>> = std::sync::OnceLock::new();

/// Whether log lines carry spans like the one `metadata` describes: the fields a span records
/// only for log lines (its trace id, its method while it is not exported) need not be recorded
/// when no line will show them. `true` when that cannot be told (span conditions, nothing
/// installed).
pub fn logged(metadata: &tracing::Metadata<'_>) -> bool {
    match LOGGED.get() {
        Some(Some(targets)) => targets.would_enable(metadata.target(), metadata.level()),
        _ => true,
    }
}

/// The target of the spans that serve only tracing ([`trace_span!`]): log lines never carry
/// them, whatever `RUST_LOG` says (the request's span around them names the trace).
pub const TRACE_ONLY: &str = "alliance::trace";

#[doc(hidden)]
pub use tracing as __tracing;

/// An `info` span that serves only tracing (`decide`, a log append): created while spans are
/// exported and the span it is made in belongs to a sampled trace ([`in_sampled_trace`]),
/// `Span::none()` otherwise, and never formatted into log lines. Takes what
/// `tracing::info_span!` takes after its target.
#[macro_export]
macro_rules! trace_span {
    ($($span:tt)*) => {
        if $crate::in_sampled_trace() {
            $crate::__tracing::info_span!(target: $crate::TRACE_ONLY, $($span)*)
        } else {
            $crate::__tracing::Span::none()
        }
    };
}

/// Whether the current span belongs to a trace that is sampled (exported). A span made inside
/// one that is not would be recorded only to be dropped: at a 10% sampling ratio, nine requests
/// in ten would pay for spans no one sees. `false` outside any span, and while spans are not
/// exported.
pub fn in_sampled_trace() -> bool {
    exporting() && {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        opentelemetry::trace::TraceContextExt::span(&tracing::Span::current().context())
            .span_context()
            .is_sampled()
    }
}

/// The meter every instrument comes from: the installed provider's, or a no-op one.
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter(SCOPE)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, with the fields of every span the line is in (trace ids
    /// included).
    Json,
}

impl LogFormat {
    /// From `ALLIANCE_LOG_FORMAT`: `text` (also when unset) or `json`.
    pub fn from_env() -> Result<Self, TelemetryError> {
        match std::env::var("ALLIANCE_LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "text") => Ok(Self::Text),
            Ok("json") => Ok(Self::Json),
            Ok(other) => Err(TelemetryError::Config(format!(
                "ALLIANCE_LOG_FORMAT must be text or json, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry configuration: {0}")]
    Config(String),
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// The installed exporters; dropping it flushes and stops them.
#[derive(Debug, Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces(&self) -> bool {
        self.tracer.is_some()
    }

    /// Whether metrics are exported.
    pub fn metrics(&self) -> bool {
        self.meter.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
        if let Some(meter) = self.meter.take() {
            let _ = meter.shutdown();
        }
    }
}

/// Installs logging, and the OTLP exporters the `OTEL_*` variables ask for, for `service` (the
/// service name unless `OTEL_SERVICE_NAME` names another). Call it inside the Tokio runtime:
/// the exporters' gRPC channels live on it.
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    let format = LogFormat::from_env()?;
    let disabled = env_is("OTEL_SDK_DISABLED", "true");
    let resource = || {
        let builder = Resource::builder();
        match std::env::var("OTEL_SERVICE_NAME") {
            Ok(name) if !name.is_empty() => builder,
            _ => builder.with_service_name(service),
        }
        .build()
    };
    let tracer = if !disabled && signal_exported("TRACES") {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource())
                .build(),
        )
    } else {
        None
    };
    let meter = if !disabled && signal_exported("METRICS") {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        Some(
            SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource())
                .build(),
        )
    } else {
        None
    };
    let telemetry = install(format, tracer, meter)?;
    tracing::info!(
        traces = telemetry.traces(),
        metrics = telemetry.metrics(),
        "telemetry export {}",
        if telemetry.traces() || telemetry.metrics() {
            "enabled"
        } else {
            "disabled (no OTEL_* exporter configured)"
        }
    );
    Ok(telemetry)
}

/// What `RUST_LOG` enables, held as the cheapest filter that says it.
#[derive(Debug)]
pub enum Directives {
    /// Levels by target only (`info`, `warn,alliance::access=debug`), the usual case: decided
    /// once per callsite, and nothing kept per span.
    Targets(Box<Targets>),
    /// Directives with span or field conditions (`[rpc{rpc.method=CreatePlan}]=debug`): an
    /// [`EnvFilter`], which must look up every span a thread enters or leaves (a lock and a
    /// table lookup each time) to know whether a condition holds inside it.
    Spans(Box<EnvFilter>),
}

impl Directives {
    /// `spec` in `RUST_LOG`'s syntax; `None` when it is not valid.
    pub fn parse(spec: &str) -> Option<Self> {
        // `EnvFilter` is the syntax's authority; a condition is written in brackets, and a
        // target (a Rust path) never holds one. (`Targets` alone would take `[rpc]` for a
        // target's name.)
        let filter = EnvFilter::try_new(spec).ok()?;
        // `Targets` reads an empty directive (`info,`) as the default level `error`, and an
        // empty level (`alliance=`) as `error` where `EnvFilter` reads `trace`: such specs are
        // left to `EnvFilter`.
        let plain = spec
            .split(',')
            .all(|directive| !directive.trim().is_empty() && !directive.trim_end().ends_with('='));
        match spec.parse() {
            Ok(targets) if plain && !spec.contains('[') => Some(Self::Targets(Box::new(targets))),
            _ => Some(Self::Spans(Box::new(filter))),
        }
    }

    /// From `RUST_LOG`; `info` when it is unset, empty or not valid.
    pub fn from_env() -> Self {
        std::env::var("RUST_LOG")
            .ok()
            .filter(|spec| !spec.trim().is_empty())
            .and_then(|spec| Self::parse(&spec))
            .unwrap_or_else(|| {
                Self::Targets(Box::new(Targets::new().with_default(LevelFilter::INFO)))
            })
    }
}

/// What log lines are written and which spans they carry: what `directives` (`RUST_LOG`)
/// enable, and never a span that serves only tracing ([`TRACE_ONLY`]), which would cost every
/// request the formatting of fields no line needs.
fn log_filter<S>(directives: Directives) -> Box<dyn Filter<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The exclusion leaves every level open, so the directives' own most verbose level stays
    // the hint that lets a disabled event or span skip even the lookup of its callsite.
    let not_trace_only = filter_fn(|metadata| metadata.target() != TRACE_ONLY)
        .with_max_level_hint(LevelFilter::TRACE);
    match directives {
        Directives::Targets(targets) => (*targets).and(not_trace_only).boxed(),
        Directives::Spans(filter) => (*filter).and(not_trace_only).boxed(),
    }
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Whether `signal` (`TRACES` or `METRICS`) is to be exported over OTLP.
fn signal_exported(signal: &str) -> bool {
    let exporter = format!("OTEL_{signal}_EXPORTER");
    if env_is(&exporter, "none") {
        return false;
    }
    env_is(&exporter, "otlp")
        || env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
        || env_set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
}

/// Installs logging in `format` and the given providers as this process's telemetry: spans go
/// to `tracer`'s processors, instruments to `meter`. [`init`] calls it with the OTLP providers;
/// tests call it with in-memory ones.
pub fn install(
    format: LogFormat,
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
) -> Result<Telemetry, TelemetryError> {
    install_with(format, Directives::from_env(), tracer, meter)
}

/// [`install`] with the log directives given rather than read from `RUST_LOG`.
pub fn install_with(
    format: LogFormat,
    directives: Directives,
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
) -> Result<Telemetry, TelemetryError> {
    let targets = match &directives {
        Directives::Targets(targets) => Some((**targets).clone()),
        Directives::Spans(_) => None,
    };
    subscriber(format, directives, tracer.as_ref())
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    let _ = LOGGED.set(targets);
    if let Some(provider) = &meter {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    EXPORTING.store(tracer.is_some(), Ordering::Relaxed);
    Ok(Telemetry { tracer, meter })
}

/// What [`install`] installs, for `directives` (`RUST_LOG`): log lines on stderr as they
/// enable them, and, given a `tracer`, spans exported at `info` and above whatever the
/// directives say of the lines.
pub fn subscriber(
    format: LogFormat,
    directives: Directives,
    tracer: Option<&SdkTracerProvider>,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let filter = log_filter(directives);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs);
    // The export layer only when there is one: an absent layer (`None`) would count as one
    // that wants everything, and every span and event of every crate (the HTTP/2 stack's
    // `trace` spans on each frame among them) would be created and recorded for nothing.
    match tracer {
        Some(provider) => Box::new(
            registry.with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer(SCOPE))
                    .with_threads(false)
                    .with_location(false)
                    // Nothing here reads the OpenTelemetry context from the thread (trace
                    // context is taken from the span itself), so entering a span need not
                    // attach it, nor time it.
                    .with_context_activation(false)
                    .with_tracked_inactivity(false)
                    .with_filter(LevelFilter::INFO),
            ),
        ),
        None => Box::new(registry),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    /// The log lines written under `directives`, by a subscriber built as [`install`] builds it.
    fn logged(directives: &str, emit: impl FnOnce()) -> String {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&written);
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .with_filter(log_filter(Directives::parse(directives).unwrap()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = alliance_stdx::lock(&written).clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            alliance_stdx::lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_carries_the_request_span_and_never_a_span_that_serves_only_tracing() {
        for directives in ["info", "trace"] {
            let lines = logged(directives, || {
                let rpc = tracing::info_span!("rpc", rpc.method = "CreatePlan", trace_id = "t1");
                let _rpc = rpc.enter();
                let decide =
                    tracing::info_span!(target: TRACE_ONLY, "decide", alliance.command = "c1");
                let _decide = decide.enter();
                tracing::info!("inside");
            });
            assert!(lines.contains("inside"), "{directives}: {lines}");
            assert!(
                lines.contains("rpc.method=\"CreatePlan\"") && lines.contains("trace_id=\"t1\""),
                "{directives}: {lines}"
            );
            assert!(
                !lines.contains("decide") && !lines.contains("c1"),
                "{directives}: {lines}"
            );
        }
    }

    #[test]
    fn directives_by_target_are_held_without_tracking_spans_and_span_conditions_still_apply() {
        // Whether each spec is held as `Targets` (rather than `EnvFilter`).
        for (spec, by_target) in [
            ("info", true),
            ("warn,alliance::access=debug", true),
            ("alliance=trace,h2=off", true),
            ("warn,[rpc]=info", false),
            ("info,", false),
            ("warn,,alliance=debug", false),
            ("alliance=", false),
        ] {
            let held = Directives::parse(spec).unwrap();
            assert_eq!(matches!(held, Directives::Targets(_)), by_target, "{spec}");
        }
        // As `EnvFilter` reads them: an empty directive is nothing, an empty level `trace`.
        let lines = logged("info,", || tracing::info!("kept at info"));
        assert!(lines.contains("kept at info"), "{lines}");
        let lines = logged("warn,alliance_telemetry=", || {
            tracing::trace!("kept at trace")
        });
        assert!(lines.contains("kept at trace"), "{lines}");
        assert!(Directives::parse("warn,[unclosed=info").is_none());
        let lines = logged("warn,[rpc]=info", || {
            tracing::info!("outside");
            let rpc = tracing::info_span!("rpc", rpc.method = "CreatePlan");
            rpc.in_scope(|| tracing::info!("inside"));
        });
        assert!(
            lines.contains("inside") && !lines.contains("outside"),
            "{lines}"
        );
    }

    #[test]
    fn a_trace_only_span_is_none_while_spans_are_not_exported() {
        assert!(!exporting());
        assert!(trace_span!("decide", alliance.command = "c1").is_none());
    }
}
