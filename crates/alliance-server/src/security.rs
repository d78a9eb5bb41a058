//! The security log: every request refused as unauthenticated (`UNAUTHENTICATED`), forbidden
//! (`PERMISSION_DENIED`) or invalid (`INVALID_ARGUMENT`), with the caller, the time, the method
//! and the reason. It is kept apart from the plans' streams, in a SQLite file of its own, and
//! never holds a token: the caller is the team and user the token stands for, or
//! `unauthenticated`.
//!
//! [`DenialLayer`] records them for every service of a server, whatever refused the request.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rusqlite::{Connection, params};
use tonic::Code;

use crate::auth::Authenticator;

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// When it was refused, microseconds since the Unix epoch.
    pub recorded_micros: i64,
    /// `team/user`, or `unauthenticated`.
    pub caller: String,
    /// The gRPC method, e.g. `/alliance.v1.PlanCommands/CreatePlan`.
    pub method: String,
    /// `unauthenticated`, `permission_denied` or `invalid_argument`.
    pub code: String,
    pub reason: String,
}

/// The security log of one server: a SQLite file.
#[derive(Clone)]
pub struct SecurityLog {
    conn: Arc<Mutex<Connection>>,
}

impl SecurityLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS denials (
                 id       INTEGER PRIMARY KEY,
                 recorded INTEGER NOT NULL,
                 caller   TEXT    NOT NULL,
                 method   TEXT    NOT NULL,
                 code     TEXT    NOT NULL,
                 reason   TEXT    NOT NULL
             ) STRICT;",
        )?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one denial.
    pub fn record(&self, denial: &Denial) -> Result<(), rusqlite::Error> {
        self.conn().execute(
            "INSERT INTO denials (recorded, caller, method, code, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                denial.recorded_micros,
                denial.caller,
                denial.method,
                denial.code,
                denial.reason
            ],
        )?;
        Ok(())
    }

    /// The denials recorded at or after `since` (microseconds), oldest first, at most `limit`.
    pub fn list(&self, since: i64, limit: usize) -> Result<Vec<Denial>, rusqlite::Error> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT recorded, caller, method, code, reason FROM denials
             WHERE recorded >= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map(
            params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(Denial {
                    recorded_micros: row.get(0)?,
                    caller: row.get(1)?,
                    method: row.get(2)?,
                    code: row.get(3)?,
                    reason: row.get(4)?,
                })
            },
        )?;
        rows.collect()
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
    /// never a credential itself.
    fn caller(
        &self,
        verified: Option<crate::auth::Verified>,
        authorization: Option<http::HeaderValue>,
    ) -> String {
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
        caller.map_or_else(
            || "unauthenticated".to_owned(),
            |c| format!("{}/{}", c.actor.team, c.actor.user),
        )
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
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Kept to name the caller should the request be refused (a cheap, shared copy).
        let authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        let verified = request.extensions().get::<crate::auth::Verified>().cloned();
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
                code.map(|code| Denial {
                    recorded_micros: chrono::Utc::now().timestamp_micros(),
                    caller: layer.caller(verified, authorization),
                    method,
                    code: code.to_owned(),
                    reason: status.message().to_owned(),
                })
            });
            if let Some(denial) = refused {
                let log = layer.log;
                let written =
                    tokio::task::spawn_blocking(move || log.record(&denial).map(|()| denial)).await;
                match written {
                    Ok(Ok(denial)) => tracing::info!(
                        caller = %denial.caller, method = %denial.method, code = %denial.code,
                        "request refused"
                    ),
                    Ok(Err(error)) => tracing::error!(%error, "the security log refused a denial"),
                    Err(error) => tracing::error!(%error, "recording a denial failed"),
                }
            }
            Ok(response)
        })
    }
}
