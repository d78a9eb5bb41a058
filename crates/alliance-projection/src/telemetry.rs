//! The read models' part of a trace (consuming an event, updating the read model, pushing the
//! update to subscribers) and their lag as metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alliance_eventlog::{Lag, LogReader, StoredEvent};
use alliance_stdx::lock;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, ObservableGauge};
use tracing::Span;
use tracing::field::Empty;

use crate::Projection;

/// The span of consuming `stored` from the log (kind consumer, the messaging conventions'
/// `process`): a child of the span that appended it, linked to it. `Span::none()` when spans
/// are not exported or the append's trace is not sampled.
pub(crate) fn process_span(stored: &StoredEvent, source: &str) -> Span {
    let Some(traceparent) = stored
        .trace_context
        .as_deref()
        .filter(|tp| alliance_telemetry::exporting() && alliance_telemetry::sampled(tp))
    else {
        return Span::none();
    };
    let (system, partition, offset) = match stored.origin {
        Some(at) => ("kafka", Some(at.partition), Some(at.offset)),
        None => ("sqlite", None, None),
    };
    let span = tracing::info_span!(
        "process",
        otel.name = format_args!("process {source}"),
        otel.kind = "consumer",
        messaging.system = system,
        messaging.destination.name = source,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.partition.id = partition,
        messaging.kafka.offset = offset,
        messaging.message.id = %stored.event_id,
        alliance.plan_id = %stored.plan_id,
        alliance.plan_version = stored.version,
        trace_id = Empty,
        span_id = Empty,
    );
    alliance_telemetry::continue_from(&span, traceparent);
    alliance_telemetry::record_trace_id(&span, &opentelemetry::Context::new());
    span
}

/// The span of applying one event to a plan's read model, inside the current (`process`)
/// span; `Span::none()` when that is not traced.
pub(crate) fn update_span(stored: &StoredEvent) -> Span {
    if Span::current().is_none() {
        return Span::none();
    }
    tracing::info_span!(
        "update read model",
        alliance.plan_id = %stored.plan_id,
        alliance.plan_version = stored.version,
        alliance.event_type = %stored.event_type,
    )
}

/// The span of pushing an update to one subscriber of `method`, a child of the read-model
/// update `trace` names; `Span::none()` when that was not traced.
pub(crate) fn push_span(method: &'static str, trace: Option<&str>) -> Span {
    let Some(traceparent) = trace else {
        return Span::none();
    };
    let span = tracing::info_span!(
        "push",
        otel.name = format_args!("push {method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = method,
        trace_id = Empty,
        span_id = Empty,
    );
    alliance_telemetry::continue_from(&span, traceparent);
    alliance_telemetry::record_trace_id(&span, &opentelemetry::Context::new());
    span
}

/// Keeps the read models' gauges registered; dropping it stops observing them.
pub struct ReadModelMetrics {
    _gauges: Vec<ObservableGauge<u64>>,
    _age: ObservableGauge<f64>,
}

/// Asks the log how far the read model is behind, once per collection: the two gauges of one
/// collection share one answer.
struct LagProbe<R> {
    projection: Arc<Projection>,
    log: R,
    runtime: tokio::runtime::Handle,
    /// An answer one gauge asked for and the other has not used yet.
    unused: Mutex<Option<(Instant, Option<Lag>)>>,
}

/// How long an answer may wait for the other gauge, and how long the log is given to answer.
const FRESH: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(5);

impl<R: LogReader> LagProbe<R> {
    /// The read model's lag behind the log now (`None`: the log did not answer). Called by the
    /// meter's collection, on a thread of its own.
    fn lag(&self) -> Option<Lag> {
        let mut unused = lock(&self.unused);
        if let Some((at, lag)) = unused.take()
            && at.elapsed() < FRESH
        {
            return lag;
        }
        let checkpoint = self.projection.checkpoint();
        // Asked on the runtime and awaited here without its timer: a collection while the
        // runtime shuts down (a last export at exit) finds no answer instead of panicking.
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let log = self.log.clone();
        self.runtime.spawn(async move {
            let _ = answer.send(log.lag(&checkpoint).await);
        });
        let lag = answered.recv_timeout(PATIENCE).ok().and_then(Result::ok);
        *unused = Some((Instant::now(), lag.clone()));
        lag
    }
}

/// Registers the gauges of `projection` following `log`, each with the log's
/// [`LogReader::source`] as `alliance.log`:
/// * `alliance.projection.lag`: events the log holds that the read model has not applied;
/// * `alliance.consumer.lag`: per Kafka partition, records left to read;
/// * `alliance.projection.snapshot.age`: seconds since the snapshot was written.
///
/// The lag is asked of the log when the meter collects (every export interval), never in
/// between. Call inside the Tokio runtime.
pub fn observe<R: LogReader>(projection: Arc<Projection>, log: R) -> ReadModelMetrics {
    let meter = alliance_telemetry::meter();
    let source = KeyValue::new("alliance.log", log.source());
    let probe = Arc::new(LagProbe {
        projection: projection.clone(),
        log,
        runtime: tokio::runtime::Handle::current(),
        unused: Mutex::new(None),
    });
    let events = probe.clone();
    let (of_events, of_partitions, of_age) = (source.clone(), source.clone(), source);
    let behind = meter
        .u64_observable_gauge("alliance.projection.lag")
        .with_unit("{event}")
        .with_description("Events in the log that the read model has not applied yet")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            if let Some(lag) = events.lag() {
                observer.observe(lag.remaining, std::slice::from_ref(&of_events));
            }
        })
        .build();
    let partitions = meter
        .u64_observable_gauge("alliance.consumer.lag")
        .with_unit("{message}")
        .with_description("Records of a Kafka partition that the read model has not read yet")
        .with_callback(move |observer: &dyn AsyncInstrument<u64>| {
            for partition in probe.lag().map(|lag| lag.partitions).unwrap_or_default() {
                observer.observe(
                    partition.remaining,
                    &[
                        of_partitions.clone(),
                        KeyValue::new("messaging.system", "kafka"),
                        KeyValue::new(
                            "messaging.destination.partition.id",
                            partition.partition.to_string(),
                        ),
                    ],
                );
            }
        })
        .build();
    let age = meter
        .f64_observable_gauge("alliance.projection.snapshot.age")
        .with_unit("s")
        .with_description("Time since the read models' snapshot was written")
        .with_callback(move |observer: &dyn AsyncInstrument<f64>| {
            if let Some(snapshot) = projection.holdings().snapshot {
                let age = snapshot.written.elapsed().unwrap_or_default();
                observer.observe(age.as_secs_f64(), std::slice::from_ref(&of_age));
            }
        })
        .build();
    ReadModelMetrics {
        _gauges: vec![behind, partitions],
        _age: age,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_collection_after_the_runtime_stopped_finds_no_answer_and_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let log = alliance_eventlog::SqliteLog::open(alliance_eventlog::SqliteLogConfig::new(
            dir.path().join("alliance.db"),
        ))
        .unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let probe = LagProbe {
            projection: Projection::new(),
            log,
            runtime: runtime.handle().clone(),
            unused: Mutex::new(None),
        };
        // While the runtime runs, the log answers: nothing to read.
        assert_eq!(probe.lag().map(|lag| lag.remaining), Some(0));
        runtime.shutdown_background();
        *lock(&probe.unused) = None;
        // As a meter's last collection at exit would: on a thread of its own.
        let answer = std::thread::scope(|scope| scope.spawn(|| probe.lag()).join().unwrap());
        assert!(answer.is_none());
    }
}
