//! The security log: every request refused as unauthenticated (`UNAUTHENTICATED`), forbidden
//! (`PERMISSION_DENIED`) or invalid (`INVALID_ARGUMENT`), or answered not found for want of
//! standing, with the caller, the time, the method and the reason. It is kept apart from the
//! plans' streams, in a SQLite file of its own, and never holds a token: the caller is the team
//! and user the token stands for, or `unauthenticated` with the peer's address.
//!
//! Refusals are aggregated: one row per caller (and peer), method, code, reason and minute,
//! with a count and the first and last time. They are gathered in memory on the request path
//! and written by one writer thread in batches (at most every [`FLUSH_EVERY`], sooner when
//! [`BATCH`] rows wait, and when the log is dropped), one transaction a batch. The writer keeps
//! the file bounded ([`Retention`]). Reading the log writes what is pending first, so a refusal
//! is listed as soon as it is answered.
//!
//! [`DenialLayer`] records them for every service of a server, whatever refused the request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use alliance_stdx::{lock, wait, wait_timeout};
use rusqlite::{Connection, OptionalExtension, params};
use tonic::Code;

use crate::auth::Authenticator;

/// Refusals of one caller, method, code and reason within this span share a row.
pub const WINDOW_MICROS: i64 = 60_000_000;
/// The writer writes what is pending at most this often...
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// ...or as soon as this many rows are pending.
pub const BATCH: usize = 1_000;
/// Rows pending beyond this are not kept (a flood of distinct reasons while the disk stalls);
/// the writer logs how many refusals it lost.
const MAX_PENDING: usize = 100_000;

/// Refused requests, aggregated: `count` refusals of one caller, method, code and reason
/// between `recorded_micros` and `last_micros`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The first refusal, microseconds since the Unix epoch.
    pub recorded_micros: i64,
    /// The last refusal, microseconds since the Unix epoch.
    pub last_micros: i64,
    /// How many refusals the row stands for.
    pub count: u64,
    /// `team/user`, or `unauthenticated`.
    pub caller: String,
    /// The peer's address (IP, no port) of an unauthenticated caller when known, else empty.
    pub peer: String,
    /// The gRPC method, e.g. `/alliance.v1.PlanCommands/CreatePlan`.
    pub method: String,
    /// `unauthenticated`, `permission_denied`, `invalid_argument` or `no_standing`.
    pub code: String,
    pub reason: String,
}

impl Denial {
    /// One refusal, now.
    pub fn now(caller: String, peer: String, method: String, code: &str, reason: String) -> Self {
        let now = chrono::Utc::now().timestamp_micros();
        Self {
            recorded_micros: now,
            last_micros: now,
            count: 1,
            caller,
            peer,
            method,
            code: code.to_owned(),
            reason,
        }
    }
}

/// How much of the past the log keeps: the writer deletes rows whose last refusal is older
/// than `max_age`, then the oldest rows beyond `max_rows`.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_rows: u64,
}

impl Default for Retention {
    /// 90 days, 100,000 rows.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 24 * 3600),
            max_rows: 100_000,
        }
    }
}

/// caller, peer, method, code, reason, window.
type Key = (String, String, String, String, String, i64);

#[derive(Default)]
struct Pending {
    rows: HashMap<Key, Denial>,
    /// Refusals not kept because too many rows were pending.
    lost: u64,
    stop: bool,
}

struct Shared {
    conn: Mutex<Connection>,
    pending: Mutex<Pending>,
    wake: Condvar,
    retention: Retention,
}

impl Shared {
    /// Writes what is pending in one transaction, then applies the retention.
    fn flush(&self) -> Result<(), rusqlite::Error> {
        // The connection first: two flushes write in the order they took their batches.
        let mut conn = lock(&self.conn);
        let (mut batch, lost) = {
            let mut pending = lock(&self.pending);
            let lost = std::mem::take(&mut pending.lost);
            (
                std::mem::take(&mut pending.rows)
                    .into_values()
                    .collect::<Vec<_>>(),
                lost,
            )
        };
        if lost > 0 {
            tracing::warn!(
                lost,
                "refusals not recorded: too many pending in the security log"
            );
        }
        if batch.is_empty() {
            return Ok(());
        }
        batch.sort_by_key(|d| d.recorded_micros);
        let tx = conn.transaction()?;
        {
            let mut find = tx.prepare_cached(
                "SELECT id FROM denials WHERE span = ?1 AND caller = ?2 AND peer = ?3
                 AND method = ?4 AND code = ?5 AND reason = ?6 ORDER BY id DESC LIMIT 1",
            )?;
            let mut add = tx.prepare_cached(
                "UPDATE denials SET count = count + ?2, last = max(last, ?3),
                 recorded = min(recorded, ?4) WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO denials (recorded, last, count, span, caller, peer, method, code, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for d in &batch {
                let window = d.recorded_micros.div_euclid(WINDOW_MICROS);
                let count = i64::try_from(d.count).unwrap_or(i64::MAX);
                let found: Option<i64> = find
                    .query_row(
                        params![window, d.caller, d.peer, d.method, d.code, d.reason],
                        |row| row.get(0),
                    )
                    .optional()?;
                match found {
                    Some(id) => {
                        add.execute(params![id, count, d.last_micros, d.recorded_micros])?;
                    }
                    None => {
                        insert.execute(params![
                            d.recorded_micros,
                            d.last_micros,
                            count,
                            window,
                            d.caller,
                            d.peer,
                            d.method,
                            d.code,
                            d.reason
                        ])?;
                    }
                }
            }
            let oldest = chrono::Utc::now().timestamp_micros().saturating_sub(
                i64::try_from(self.retention.max_age.as_micros()).unwrap_or(i64::MAX),
            );
            tx.execute("DELETE FROM denials WHERE last < ?1", params![oldest])?;
            tx.execute(
                "DELETE FROM denials WHERE id <=
                 (SELECT id FROM denials ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                params![i64::try_from(self.retention.max_rows).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()
    }

    /// The writer: waits for refusals, lets them gather for up to [`FLUSH_EVERY`] (less when
    /// [`BATCH`] rows wait or the log closes), writes them; at the close, writes the rest.
    fn write(&self) {
        loop {
            let mut pending = lock(&self.pending);
            while pending.rows.is_empty() && pending.lost == 0 && !pending.stop {
                pending = wait(&self.wake, pending);
            }
            let deadline = Instant::now() + FLUSH_EVERY;
            while !pending.stop && pending.rows.len() < BATCH {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = wait_timeout(&self.wake, pending, left).0;
            }
            let stop = pending.stop;
            drop(pending);
            if let Err(error) = self.flush() {
                tracing::error!(%error, "the security log refused a batch of denials");
            }
            if stop {
                return;
            }
        }
    }
}

/// Stops the writer when the last handle goes, after it has written what is pending.
struct Writer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.pending).stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The security log of one server: a SQLite file and the writer that fills it.
#[derive(Clone)]
pub struct SecurityLog {
    writer: Arc<Writer>,
}

/// The security log's table as first written, one row per refusal (a log opened since gains the
/// aggregate's columns).
const DENIALS_TABLE: &str = "CREATE TABLE IF NOT EXISTS denials (
    id       INTEGER PRIMARY KEY,
    recorded INTEGER NOT NULL,
    caller   TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    code     TEXT    NOT NULL,
    reason   TEXT    NOT NULL
) STRICT;";

impl SecurityLog {
    /// Opens (or creates) the log at `path`, with the default [`Retention`].
    pub fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        Self::open_with(path, Retention::default())
    }

    /// Opens (or creates) the log at `path`, keeping what `retention` says.
    pub fn open_with(path: &Path, retention: Retention) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")?;
        conn.execute_batch(DENIALS_TABLE)?;
        // A log written one row per refusal gains the aggregate's columns.
        let aggregated: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM pragma_table_info('denials') WHERE name = 'count'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if aggregated.is_none() {
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE denials ADD COLUMN count  INTEGER NOT NULL DEFAULT 1;
                 ALTER TABLE denials ADD COLUMN last   INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE denials ADD COLUMN span   INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE denials ADD COLUMN peer   TEXT    NOT NULL DEFAULT '';
                 UPDATE denials SET last = recorded, span = recorded / 60000000;
                 COMMIT;",
            )?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS denials_span ON denials (span, caller, method);
             CREATE INDEX IF NOT EXISTS denials_last ON denials (last);",
        )?;
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            retention,
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("security-log".to_owned())
                .spawn(move || shared.write())
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
        };
        Ok(Self {
            writer: Arc::new(Writer {
                shared,
                thread: Some(writer),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.writer.shared
    }

    /// Counts a refusal (or `denial.count` of them) in memory; the writer writes it within
    /// [`FLUSH_EVERY`]. Never touches the disk.
    pub fn record(&self, denial: Denial) {
        let shared = self.shared();
        let window = denial.recorded_micros.div_euclid(WINDOW_MICROS);
        let mut pending = lock(&shared.pending);
        let key = (
            denial.caller.clone(),
            denial.peer.clone(),
            denial.method.clone(),
            denial.code.clone(),
            denial.reason.clone(),
            window,
        );
        let pending_rows = pending.rows.len();
        match pending.rows.get_mut(&key) {
            Some(row) => {
                row.count = row.count.saturating_add(denial.count);
                row.recorded_micros = row.recorded_micros.min(denial.recorded_micros);
                row.last_micros = row.last_micros.max(denial.last_micros);
            }
            None if pending_rows >= MAX_PENDING => {
                pending.lost = pending.lost.saturating_add(denial.count);
            }
            None => {
                pending.rows.insert(key, denial);
                if pending.rows.len() >= BATCH {
                    shared.wake.notify_one();
                }
            }
        }
        if pending_rows == 0 {
            shared.wake.notify_one();
        }
    }

    /// Writes what is pending now (blocking).
    pub fn flush(&self) -> Result<(), rusqlite::Error> {
        self.shared().flush()
    }

    /// The rows whose last refusal is at or after `since` (microseconds), the first refused
    /// first, at most `limit`; what is pending is written first (blocking).
    pub fn list(&self, since: i64, limit: usize) -> Result<Vec<Denial>, rusqlite::Error> {
        self.flush()?;
        let conn = lock(&self.shared().conn);
        let mut statement = conn.prepare(
            "SELECT recorded, last, count, caller, peer, method, code, reason FROM denials
             WHERE last >= ?1 ORDER BY recorded, id LIMIT ?2",
        )?;
        let rows = statement.query_map(
            params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(Denial {
                    recorded_micros: row.get(0)?,
                    last_micros: row.get(1)?,
                    count: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                    caller: row.get(3)?,
                    peer: row.get(4)?,
                    method: row.get(5)?,
                    code: row.get(6)?,
                    reason: row.get(7)?,
                })
            },
        )?;
        rows.collect()
    }

    /// How many rows the file holds (after writing what is pending).
    pub fn rows(&self) -> Result<u64, rusqlite::Error> {
        self.flush()?;
        let n: i64 =
            lock(&self.shared().conn)
                .query_row("SELECT count(*) FROM denials", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Records the requests a server refuses in a [`SecurityLog`].
#[derive(Clone)]
pub struct DenialLayer {
    log: SecurityLog,
    auth: Arc<Authenticator>,
}

impl DenialLayer {
    pub fn new(log: SecurityLog, auth: Arc<Authenticator>) -> Self {
        Self { log, auth }
    }
}

impl DenialLayer {
    /// Who asked: the verified caller, or the team and user of a known development token;
    /// never a credential itself. `None`: unauthenticated.
    fn caller(
        &self,
        verified: Option<crate::auth::Verified>,
        authorization: Option<http::HeaderValue>,
    ) -> Option<String> {
        let caller = match verified {
            Some(crate::auth::Verified(caller)) => caller.ok(),
            None => {
                let mut headers = http::HeaderMap::new();
                if let Some(value) = authorization {
                    headers.insert(http::header::AUTHORIZATION, value);
                }
                self.auth
                    .token_holder(&tonic::metadata::MetadataMap::from_headers(headers))
                    .ok()
            }
        };
        caller.map(|c| format!("{}/{}", c.actor.team, c.actor.user))
    }
}

impl<S> tower::Layer<S> for DenialLayer {
    type Service = DenialService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DenialService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct DenialService<S> {
    inner: S,
    layer: DenialLayer,
}

/// The code name of a refusal worth recording.
fn denied(code: Code) -> Option<&'static str> {
    match code {
        Code::Unauthenticated => Some("unauthenticated"),
        Code::PermissionDenied => Some("permission_denied"),
        Code::InvalidArgument => Some("invalid_argument"),
        // A message past the size limit, a page or record point out of bounds.
        Code::OutOfRange => Some("out_of_range"),
        // A caller past its quota (streams), a connection past its limit.
        Code::ResourceExhausted => Some("resource_exhausted"),
        _ => None,
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for DenialService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    alliance_stdx::forward_service!();

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Kept to name the caller should the request be refused (a cheap, shared copy).
        let authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        let verified = request.extensions().get::<crate::auth::Verified>().cloned();
        let peer = peer_address(request.extensions());
        let method = request.uri().path().to_owned();
        let layer = self.layer.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // Refusals are trailers-only responses: the status is in the headers. A plan the
            // caller has no role on is answered as not found; the status the handler returned,
            // kept in the response's extensions, says so.
            let no_standing = response
                .extensions()
                .get::<tonic::Status>()
                .is_some_and(|status| crate::error::NoStanding::of(status).is_some());
            let refused = tonic::Status::from_header_map(response.headers()).and_then(|status| {
                let code = if no_standing {
                    Some("no_standing")
                } else {
                    denied(status.code())
                };
                code.map(|code| {
                    let caller = layer.caller(verified, authorization);
                    // An unauthenticated caller is told apart by where it calls from.
                    let peer = match (&caller, peer) {
                        (None, Some(ip)) => ip.to_string(),
                        _ => String::new(),
                    };
                    let caller = caller.unwrap_or_else(|| "unauthenticated".to_owned());
                    Denial::now(caller, peer, method, code, status.message().to_owned())
                })
            });
            if let Some(denial) = refused {
                tracing::info!(
                    caller = %denial.caller, peer = %denial.peer, method = %denial.method,
                    code = %denial.code, "request refused"
                );
                layer.log.record(denial);
            }
            Ok(response)
        })
    }
}

/// The address (without the port) the request came from, over TCP or TLS.
fn peer_address(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|tls| tls.get_ref().remote_addr())
        })
        .map(|address| address.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1_000_000;

    fn refusal(reason: &str, at: i64) -> Denial {
        Denial {
            recorded_micros: at,
            last_micros: at,
            count: 1,
            caller: "unauthenticated".to_owned(),
            peer: "192.0.2.7".to_owned(),
            method: "/alliance.v1.PlanCommands/CreatePlan".to_owned(),
            code: "unauthenticated".to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp_micros()
    }

    #[test]
    fn refusals_of_one_minute_share_a_row_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = SecurityLog::open(&dir.path().join("security.db")).unwrap();
        // The middle of a minute: both fall in it.
        let at = now().div_euclid(WINDOW_MICROS) * WINDOW_MICROS + WINDOW_MICROS / 2;
        log.record(refusal("no credentials", at));
        log.flush().unwrap();
        log.record(refusal("no credentials", at + 1));
        log.record(refusal("no credentials", at + 2));
        // The next minute is a row of its own.
        log.record(refusal("no credentials", at + WINDOW_MICROS));
        let rows = log.list(i64::MIN, 100).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            (rows[0].count, rows[0].recorded_micros, rows[0].last_micros),
            (3, at, at + 2)
        );
        assert_eq!(rows[1].count, 1);
        // A row is listed while its last refusal is at or after `since`.
        assert_eq!(log.list(at + 2, 100).unwrap().len(), 2);
        assert_eq!(log.list(at + 3, 100).unwrap().len(), 1);
    }

    #[test]
    fn the_writer_keeps_at_most_max_rows_and_forgets_rows_older_than_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let log = SecurityLog::open_with(
            &dir.path().join("security.db"),
            Retention {
                max_age: Duration::from_secs(24 * 3600),
                max_rows: 3,
            },
        )
        .unwrap();
        log.record(refusal("long ago", now() - 2 * DAY));
        log.flush().unwrap();
        assert_eq!(log.rows().unwrap(), 0, "older than max_age");
        for i in 0..10 {
            log.record(refusal(&format!("reason {i}"), now() + i));
        }
        let reasons: Vec<_> = log
            .list(i64::MIN, 100)
            .unwrap()
            .into_iter()
            .map(|d| d.reason)
            .collect();
        assert_eq!(reasons, ["reason 7", "reason 8", "reason 9"]);
    }

    #[test]
    fn what_is_pending_is_written_when_the_log_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("security.db");
        let log = SecurityLog::open(&path).unwrap();
        let at = now();
        log.record(refusal("no credentials", at));
        drop(log.clone());
        drop(log);
        let rows = SecurityLog::open(&path)
            .unwrap()
            .list(i64::MIN, 10)
            .unwrap();
        assert_eq!(rows, [refusal("no credentials", at)]);
    }

    #[test]
    fn a_log_written_row_by_row_is_read_as_rows_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("security.db");
        let at = now();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(DENIALS_TABLE).unwrap();
            conn.execute(
                "INSERT INTO denials (recorded, caller, method, code, reason)
                 VALUES (?1, 'us/u', '/m', 'permission_denied', 'no role')",
                params![at],
            )
            .unwrap();
        }
        let log = SecurityLog::open(&path).unwrap();
        let rows = log.list(i64::MIN, 10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].count, rows[0].last_micros), (1, at));
        assert_eq!(rows[0].peer, "");
        let mut again = rows[0].clone();
        again.recorded_micros = at + 1;
        again.last_micros = at + 1;
        log.record(again);
        let rows = log.list(i64::MIN, 10).unwrap();
        let same_minute = at.div_euclid(WINDOW_MICROS) == (at + 1).div_euclid(WINDOW_MICROS);
        assert_eq!(rows.len(), if same_minute { 1 } else { 2 }, "{rows:?}");
        assert_eq!(rows.iter().map(|d| d.count).sum::<u64>(), 2);
    }
}
