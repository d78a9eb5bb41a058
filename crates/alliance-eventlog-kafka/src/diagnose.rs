//! Why a client could not reach the broker. librdkafka reports a refused connection, a failed
//! TLS handshake or rejected SASL credentials in its log (facility `FAIL`, from its own
//! threads); the call that then times out only says that it timed out. The startup errors name
//! the last reason.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alliance_eventlog::LogError;
use alliance_stdx::lock;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

/// Whether the broker of `config` answers a metadata request within its timeout.
pub(crate) fn reach(config: &crate::KafkaLogConfig) -> Result<(), LogError> {
    MetadataClient::new(config)?.fetch(None).map(drop)
}

/// A client asking the broker for metadata, whose failures name the client's last connection
/// failure (connection refused, TLS handshake, SASL authentication).
pub(crate) struct MetadataClient {
    consumer: BaseConsumer<Diagnosed>,
    diagnosed: Diagnosed,
    timeout: Duration,
}

impl MetadataClient {
    pub(crate) fn new(config: &crate::KafkaLogConfig) -> Result<Self, LogError> {
        let diagnosed = Diagnosed::default();
        let consumer = config
            .client()
            .create_with_context(diagnosed.clone())
            .map_err(crate::unavailable)?;
        Ok(Self {
            consumer,
            diagnosed,
            timeout: config.timeout,
        })
    }

    /// The metadata of `topic`, or of every topic, within the timeout.
    pub(crate) fn fetch(&self, topic: Option<&str>) -> Result<Metadata, LogError> {
        self.consumer
            .fetch_metadata(topic, self.timeout)
            .map_err(|error| {
                // The client queues its log for whoever polls it: serve what it queued.
                let served = Instant::now() + Duration::from_millis(200);
                while Instant::now() < served {
                    let _ = self.consumer.poll(Duration::from_millis(20));
                }
                self.diagnosed.unavailable(error)
            })
    }
}

/// A client context that keeps the last connection failure librdkafka reported.
#[derive(Clone, Default)]
pub(crate) struct Diagnosed {
    /// The last connection failure the client logged, then the last error it reported (such
    /// as "all brokers are down", which says less).
    last: Arc<Mutex<[Option<String>; 2]>>,
}

impl Diagnosed {
    /// `error` as `Unavailable`, with the last reason the client reported, if any.
    pub(crate) fn unavailable(&self, error: impl std::fmt::Display) -> LogError {
        let [failure, error_reported] = lock(&self.last).clone();
        LogError::Unavailable(match failure.or(error_reported) {
            Some(reason) => format!("{error} (the broker connection failed: {reason})"),
            None => error.to_string(),
        })
    }
}

impl Diagnosed {
    fn keep(&self, which: usize, reason: &str) {
        lock(&self.last)[which] = Some(reason.to_owned());
    }
}

impl ClientContext for Diagnosed {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            _ => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
        if facility == "FAIL" {
            self.keep(0, message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client");
        self.keep(1, reason);
    }
}

impl ConsumerContext for Diagnosed {}
