//! What every log's writer reports of its commits: how many appends and events each carried
//! and how long it took to make them durable.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

/// The instruments of one log's writer.
#[derive(Clone)]
pub struct CommitMetrics {
    appends: Histogram<u64>,
    events: Histogram<u64>,
    duration: Histogram<f64>,
    system: [KeyValue; 1],
}

impl CommitMetrics {
    /// The instruments of a writer of `system` (`sqlite`, `kafka`).
    pub fn new(system: &'static str) -> Self {
        let meter = alliance_telemetry::meter();
        let sizes = || {
            vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]
        };
        Self {
            appends: meter
                .u64_histogram("alliance.log.commit.appends")
                .with_description("Appends (commands) in one commit of the event log")
                .with_boundaries(sizes())
                .build(),
            events: meter
                .u64_histogram("alliance.log.commit.events")
                .with_description("Events in one commit of the event log")
                .with_boundaries(sizes())
                .build(),
            duration: meter
                .f64_histogram("alliance.log.commit.duration")
                .with_unit("s")
                .with_description(
                    "Time to make one commit of the event log durable (SQLite transaction with \
                     fsync, or Kafka transaction)",
                )
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
                .build(),
            system: [KeyValue::new("alliance.log.system", system)],
        }
    }

    /// One commit of `appends` appends holding `events` events, durable after `took`.
    pub fn record(&self, appends: u64, events: u64, took: Duration) {
        self.appends.record(appends, &self.system);
        self.events.record(events, &self.system);
        self.duration.record(took.as_secs_f64(), &self.system);
    }
}
