//! `alliance.v1.ReadModelAdmin` over tonic: rebuilding the read models from the log (one at a
//! time), and their status.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alliance_proto::v1;
use alliance_server::deadline::patience;
use alliance_server::{Authenticator, Caller};
use alliance_stdx::lock;
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::Projection;
use crate::grpc::{DEFAULT_PATIENCE, status, timestamp};

/// How often at most `Status` asks the log how far behind the read models are (on Kafka a
/// consumer and a read of every partition's end): calls meanwhile are answered from the last
/// figures, with their time and age.
pub const LAG_REFRESH: Duration = Duration::from_secs(2);

/// `alliance.v1.ReadModelAdmin`: rebuilding the read models from the log, and their status.
pub struct ReadModelAdminApi<L> {
    projection: Arc<Projection>,
    log: L,
    auth: Arc<Authenticator>,
    /// The rebuild in progress, if any: who started it and when.
    rebuilding: Arc<std::sync::Mutex<Option<String>>>,
    /// The last lag figures taken from the log; held while new ones are taken, so one call at
    /// a time takes them and the others wait for its figures.
    lag: tokio::sync::Mutex<Option<LagFigures>>,
}

/// How far the read models were behind the log when it was last asked, or why it did not say.
#[derive(Clone)]
struct LagFigures {
    taken: std::time::SystemTime,
    at: tokio::time::Instant,
    lag: Result<alliance_eventlog::Lag, String>,
}

/// The one rebuild in progress; dropping it lets the next one start.
struct RebuildSlot(Arc<std::sync::Mutex<Option<String>>>);

impl Drop for RebuildSlot {
    fn drop(&mut self) {
        *lock(&self.0) = None;
    }
}

impl<L: alliance_eventlog::LogReader> ReadModelAdminApi<L> {
    pub fn new(projection: Arc<Projection>, log: L, auth: Arc<Authenticator>) -> Self {
        Self {
            projection,
            log,
            auth,
            rebuilding: Arc::default(),
            lag: tokio::sync::Mutex::new(None),
        }
    }

    /// The lag figures at most [`LAG_REFRESH`] old: the last ones, or new ones taken now (by
    /// one call at a time, within `patience`).
    async fn lag(&self, patience: Duration) -> Result<LagFigures, Status> {
        let mut last = tokio::time::timeout(patience, self.lag.lock())
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "the log's lag was still being taken after {} ms",
                    patience.as_millis()
                ))
            })?;
        if let Some(figures) = last.as_ref()
            && figures.at.elapsed() < LAG_REFRESH
        {
            return Ok(figures.clone());
        }
        let checkpoint = self.projection.holdings().checkpoint;
        // The model's part is answered even when the log cannot say how far behind it is.
        let lag = match tokio::time::timeout(patience, self.log.lag(&checkpoint)).await {
            Ok(Ok(lag)) => Ok(lag),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "the log did not answer within {} ms",
                patience.as_millis()
            )),
        };
        if let Err(error) = &lag {
            tracing::warn!(%error, "read-model status without the lag");
        }
        let figures = LagFigures {
            taken: std::time::SystemTime::now(),
            at: tokio::time::Instant::now(),
            lag,
        };
        *last = Some(figures.clone());
        Ok(figures)
    }

    /// Claims the one rebuild a server runs at a time, or refuses (ABORTED) naming the one in
    /// progress: each builds a whole model beside the one serving.
    fn claim_rebuild(&self, caller: &Caller) -> Result<RebuildSlot, Status> {
        let mut rebuilding = lock(&self.rebuilding);
        if let Some(running) = rebuilding.as_ref() {
            return Err(Status::aborted(format!(
                "{running} is in progress; retry once it is over"
            )));
        }
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        *rebuilding = Some(format!(
            "a rebuild started by {}/{} at {started}",
            caller.actor.team, caller.actor.user
        ));
        Ok(RebuildSlot(self.rebuilding.clone()))
    }

    pub fn into_server(self) -> v1::read_model_admin_server::ReadModelAdminServer<Self> {
        v1::read_model_admin_server::ReadModelAdminServer::new(self)
            .max_decoding_message_size(alliance_server::limits::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl<L: alliance_eventlog::LogReader> v1::read_model_admin_server::ReadModelAdmin
    for ReadModelAdminApi<L>
{
    type RebuildStream = Pin<Box<dyn Stream<Item = Result<v1::RebuildProgress, Status>> + Send>>;

    async fn rebuild(
        &self,
        request: Request<v1::RebuildRequest>,
    ) -> Result<Response<Self::RebuildStream>, Status> {
        let caller = self.auth.authenticate(&request)?;
        if !caller.may(alliance_server::Role::Admin) {
            return Err(Status::permission_denied(format!(
                "team {} may not rebuild read models: it needs the admin role",
                caller.actor.team
            )));
        }
        let slot = self.claim_rebuild(&caller)?;
        let projection = self.projection.clone();
        let log = self.log.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        // The rebuild runs to its end even if the caller goes away.
        tokio::spawn(async move {
            let progress = tx.clone();
            let mut report = move |p: crate::Progress| {
                // A slow reader misses a progress report, never the result.
                let _ = progress.try_send(Ok(v1::RebuildProgress {
                    events_read: p.read,
                    events_total: p.total,
                    done: None,
                }));
            };
            let result = projection.rebuild(&log, &mut report).await;
            // Over before its result is sent: whoever reads the result may start the next.
            drop(slot);
            let message = result.map_err(status).map(|rebuilt| {
                tracing::info!(events = rebuilt.events, elapsed = ?rebuilt.elapsed, digest = %rebuilt.digest, "read models rebuilt");
                v1::RebuildProgress {
                    events_read: rebuilt.events,
                    events_total: rebuilt.events,
                    done: Some(v1::RebuildReply {
                        events: rebuilt.events,
                        plans: rebuilt.plans as u64,
                        position: rebuilt.position,
                        digest: rebuilt.digest,
                        elapsed_ms: u64::try_from(rebuilt.elapsed.as_millis()).unwrap_or(u64::MAX),
                    }),
                }
            });
            let _ = tx.send(message).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::ReadModelStatus>, Status> {
        self.auth.authenticate(&request)?;
        let patience = patience(request.metadata()).unwrap_or(DEFAULT_PATIENCE);
        let figures = self.lag(patience).await?;
        let holdings = self.projection.holdings();
        let (lag, lag_error) = match figures.lag {
            Ok(lag) => (lag, String::new()),
            Err(error) => (alliance_eventlog::Lag::default(), error),
        };
        let snapshot = holdings.snapshot;
        let (quarantined_total, quarantined) = self.projection.quarantined(&self.log);
        let micros_since_epoch = |at: std::time::SystemTime| {
            at.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        };
        Ok(Response::new(v1::ReadModelStatus {
            plans: holdings.plans as u64,
            events: holdings.events,
            position: holdings.checkpoint.position,
            lag: lag.remaining,
            partitions: lag
                .partitions
                .iter()
                .map(|p| v1::PartitionLag {
                    partition: p.partition,
                    next_offset: p.next_offset,
                    high_watermark: p.high_watermark,
                    lag: p.remaining,
                })
                .collect(),
            lag_error,
            quarantined_total,
            quarantined: quarantined
                .iter()
                .map(|q| v1::QuarantinedRecord {
                    partition: q.origin.map(|o| o.partition),
                    offset: q.origin.map(|o| o.offset),
                    position: q.position,
                    reason: q.reason.clone(),
                    quarantined_at: Some(timestamp(q.at_micros)),
                })
                .collect(),
            snapshot_time: snapshot.map(|s| timestamp(micros_since_epoch(s.written))),
            snapshot_age: snapshot.map(|s| duration(s.written.elapsed().unwrap_or_default())),
            snapshot_position: snapshot.map_or(0, |s| s.position),
            lag_time: Some(timestamp(micros_since_epoch(figures.taken))),
            lag_age: Some(duration(figures.at.elapsed())),
        }))
    }
}

/// A duration as the contract carries it.
fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or_default(),
    }
}
