//! `alliancectl status`: for each server, the `grpc.health.v1` status of each `alliance.v1`
//! service it may serve, and, where it serves `alliance.v1.ReadModelAdmin`, what its read
//! models hold and how far behind the log they are. Printed as a table or one JSON object;
//! a server that cannot be reached, or that serves none of the services or not all it serves,
//! makes the exit code 5.

use std::time::Duration;

use alliance_proto::v1;
use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::errors::{CliError, Exit};
use crate::output::{Format, Render, instant, table};
use crate::session::within;

/// The services a server may serve, in the order shown.
pub const SERVICES: [&str; 5] = [
    "alliance.v1.PlanCommands",
    "alliance.v1.PostureQueries",
    "alliance.v1.ReadModelAdmin",
    "alliance.v1.AuditLog",
    "alliance.v1.Simulation",
];

const READ_MODEL_ADMIN: &str = "alliance.v1.ReadModelAdmin";

/// What the health service says of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Serving,
    NotServing,
    /// The server does not serve it.
    NotServed,
    /// Any other answer (UNKNOWN, or an error of the check).
    Unknown(String),
}

impl Health {
    fn name(&self) -> &'static str {
        match self {
            Health::Serving => "serving",
            Health::NotServing => "not_serving",
            Health::NotServed => "not_served",
            Health::Unknown(_) => "unknown",
        }
    }
}

/// What one server answered.
struct Report {
    server: String,
    /// Why the server could not be checked at all (unreachable, no health service).
    error: Option<String>,
    services: Vec<(&'static str, Health)>,
    read_model: Option<Result<v1::ReadModelStatus, String>>,
}

impl Report {
    /// Reachable, serving at least one of the services, and all those it serves.
    fn healthy(&self) -> bool {
        self.error.is_none()
            && self.services.iter().any(|(_, h)| *h == Health::Serving)
            && self
                .services
                .iter()
                .all(|(_, h)| matches!(h, Health::Serving | Health::NotServed))
    }

    fn state(&self) -> &'static str {
        match &self.error {
            Some(_) => "unreachable",
            None if self.healthy() => "serving",
            None => "not_serving",
        }
    }
}

/// Checks every server (at once), prints the report, and fails with exit 5 when one of them is
/// unreachable or not serving.
pub async fn run(
    servers: &[String],
    tls: Option<&tonic::transport::ClientTlsConfig>,
    auth: Option<AsciiMetadataValue>,
    timeout: Duration,
    format: Format,
) -> Result<(), CliError> {
    let mut channels = Vec::new();
    for server in servers {
        channels.push((
            server.clone(),
            crate::session::endpoint(server, tls)?.connect_lazy(),
        ));
    }
    let mut checks = tokio::task::JoinSet::new();
    for (index, (server, channel)) in channels.into_iter().enumerate() {
        let auth = auth.clone();
        checks.spawn(async move { (index, check(server, channel, auth, timeout).await) });
    }
    let mut reports: Vec<(usize, Report)> = Vec::new();
    while let Some(done) = checks.join_next().await {
        reports.push(done.map_err(|e| CliError::new(Exit::Other, e.to_string()))?);
    }
    reports.sort_by_key(|(index, _)| *index);
    let reports: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
    println!("{}", reports.render(format));
    let failing: Vec<&str> = reports
        .iter()
        .filter(|r| !r.healthy())
        .map(|r| r.server.as_str())
        .collect();
    if failing.is_empty() {
        return Ok(());
    }
    Err(CliError::new(
        Exit::Unavailable,
        format!(
            "unavailable: {} of {} servers unreachable or not serving: {}",
            failing.len(),
            reports.len(),
            failing.join(", ")
        ),
    ))
}

/// The health of each service of `server`, then its read models' status if it serves them.
async fn check(
    server: String,
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
    timeout: Duration,
) -> Report {
    let mut report = Report {
        server,
        error: None,
        services: Vec::new(),
        read_model: None,
    };
    let mut health = HealthClient::new(channel.clone());
    for name in SERVICES {
        let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: name.to_owned(),
        });
        request.set_timeout(timeout);
        let state = match within(timeout, health.check(request)).await {
            Ok(reply) => match ServingStatus::try_from(reply.status) {
                Ok(ServingStatus::Serving) => Health::Serving,
                Ok(ServingStatus::NotServing) => Health::NotServing,
                Ok(ServingStatus::ServiceUnknown) => Health::NotServed,
                Ok(ServingStatus::Unknown) | Err(_) => Health::Unknown("UNKNOWN".to_owned()),
            },
            Err(status) if status.code() == Code::NotFound => Health::NotServed,
            Err(status) => {
                // The first check reaches the server or fails for all of them.
                if report.services.is_empty() {
                    report.error = Some(CliError::from_status(&status).message);
                    return report;
                }
                Health::Unknown(CliError::from_status(&status).message)
            }
        };
        report.services.push((name, state));
    }
    let admin = report
        .services
        .iter()
        .any(|(name, h)| *name == READ_MODEL_ADMIN && *h == Health::Serving);
    if admin {
        let mut request = tonic::Request::new(v1::StatusRequest {});
        request.set_timeout(timeout);
        if let Some(auth) = auth {
            request.metadata_mut().insert("authorization", auth);
        }
        let mut client = ReadModelAdminClient::new(channel);
        report.read_model = Some(
            within(timeout, client.status(request))
                .await
                .map_err(|status| CliError::from_status(&status).message),
        );
    }
    report
}

/// `1h 5m`, `3m 20s`, `12s`.
fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The service's name without the package.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The servers' reports, in the order the servers were named.
impl Render for [Report] {
    fn json(&self) -> Value {
        let reports = self;
        let servers: Vec<Value> = reports
            .iter()
            .map(|r| {
                let (read_model, read_model_error) = match &r.read_model {
                    Some(Ok(m)) => (read_model_json(m), Value::Null),
                    Some(Err(error)) => (Value::Null, error.as_str().into()),
                    None => (Value::Null, Value::Null),
                };
                json!({
                    "server": r.server,
                    "health": r.state(),
                    "error": r.error,
                    "services": r.services.iter().map(|(name, h)| json!({
                        "service": name,
                        "status": h.name(),
                    })).collect::<Vec<_>>(),
                    "read_model": read_model,
                    "read_model_error": read_model_error,
                })
            })
            .collect();
        json!({
            "healthy": reports.iter().all(Report::healthy),
            "servers": servers,
        })
    }

    fn text(&self) -> String {
        let reports = self;
        let dash = || "-".to_owned();
        let rows = reports
            .iter()
            .map(|r| {
                let services: Vec<String> = r
                    .services
                    .iter()
                    .filter(|(_, h)| *h != Health::NotServed)
                    .map(|(name, h)| match h {
                        Health::Serving => short(name).to_owned(),
                        other => format!("{} ({})", short(name), other.name()),
                    })
                    .collect();
                let mut row = vec![r.server.clone(), r.state().to_owned()];
                match &r.read_model {
                    Some(Ok(m)) => {
                        row.push(m.plans.to_string());
                        row.push(m.events.to_string());
                        row.push(m.position.to_string());
                        row.push(if m.lag_error.is_empty() {
                            m.lag.to_string()
                        } else {
                            "?".to_owned()
                        });
                        row.push(match (&m.snapshot_age, m.snapshot_time.is_some()) {
                            (Some(a), true) => {
                                format!("{} old (position {})", age(a.seconds), m.snapshot_position)
                            }
                            _ => dash(),
                        });
                    }
                    _ => row.extend((0..5).map(|_| dash())),
                }
                row.push(if services.is_empty() {
                    dash()
                } else {
                    services.join(", ")
                });
                row
            })
            .collect();
        let mut out = vec![table(
            &[
                "SERVER", "HEALTH", "PLANS", "EVENTS", "POSITION", "LAG", "SNAPSHOT", "SERVICES",
            ],
            rows,
        )];
        for r in reports {
            if let Some(error) = &r.error {
                out.push(format!("{}: {error}", r.server));
            }
            for (name, h) in &r.services {
                if let Health::Unknown(why) = h {
                    out.push(format!("{}: {name}: {why}", r.server));
                }
            }
            if let Some(Ok(m)) = &r.read_model
                && m.quarantined_total > 0
            {
                let latest = m.quarantined.last().map_or(String::new(), |q| {
                    let at = match (q.partition, q.offset) {
                        (Some(partition), Some(offset)) => {
                            format!("partition {partition} offset {offset}")
                        }
                        _ => format!("position {}", q.position),
                    };
                    format!("; latest at {at}: {}", q.reason)
                });
                out.push(format!(
                    "{}: {} records quarantined as unreadable{latest}",
                    r.server, m.quarantined_total
                ));
            }
            match &r.read_model {
                Some(Err(error)) => out.push(format!("{}: read models: {error}", r.server)),
                Some(Ok(m)) if !m.lag_error.is_empty() => {
                    out.push(format!("{}: lag unknown: {}", r.server, m.lag_error));
                }
                Some(Ok(m)) if !m.partitions.is_empty() => {
                    let behind: Vec<String> = m
                        .partitions
                        .iter()
                        .filter(|p| p.lag > 0)
                        .map(|p| {
                            format!(
                                "{} ({} left, offset {} of {})",
                                p.partition, p.lag, p.next_offset, p.high_watermark
                            )
                        })
                        .collect();
                    out.push(if behind.is_empty() {
                        format!(
                            "{}: {} partitions, none behind",
                            r.server,
                            m.partitions.len()
                        )
                    } else {
                        format!(
                            "{}: {} partitions, behind in {}",
                            r.server,
                            m.partitions.len(),
                            behind.join(", ")
                        )
                    });
                }
                _ => {}
            }
        }
        out.join("\n")
    }
}

fn read_model_json(m: &v1::ReadModelStatus) -> Value {
    let snapshot = match (&m.snapshot_time, &m.snapshot_age) {
        (Some(time), Some(age)) => json!({
            "time": instant(Some(time)),
            "age_seconds": age.seconds,
            "position": m.snapshot_position,
        }),
        _ => Value::Null,
    };
    json!({
        "plans": m.plans,
        "events": m.events,
        "position": m.position,
        "lag": if m.lag_error.is_empty() { Value::from(m.lag) } else { Value::Null },
        "lag_error": if m.lag_error.is_empty() { Value::Null } else { m.lag_error.as_str().into() },
        "partitions": m.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "next_offset": p.next_offset,
            "high_watermark": p.high_watermark,
            "lag": p.lag,
        })).collect::<Vec<_>>(),
        "snapshot": snapshot,
        "quarantined_total": m.quarantined_total,
        "quarantined": m.quarantined.iter().map(|q| json!({
            "partition": q.partition,
            "offset": q.offset,
            "position": q.position,
            "reason": q.reason,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(200), "3m 20s");
        assert_eq!(age(3_900), "1h 5m");
        assert_eq!(age(90_000), "1d 1h");
        assert_eq!(age(-5), "0s");
    }

    #[test]
    fn a_server_is_healthy_when_it_serves_something_and_all_it_serves() {
        let report = |services: Vec<Health>, error: Option<&str>| Report {
            server: "http://127.0.0.1:1".into(),
            error: error.map(str::to_owned),
            services: SERVICES.into_iter().zip(services).collect(),
            read_model: None,
        };
        use Health::*;
        let serving = report(
            vec![Serving, NotServed, NotServed, NotServed, Serving],
            None,
        );
        assert!(serving.healthy());
        assert_eq!(serving.state(), "serving");
        let one_down = report(
            vec![Serving, NotServing, NotServed, NotServed, NotServed],
            None,
        );
        assert!(!one_down.healthy());
        assert_eq!(one_down.state(), "not_serving");
        let nothing = report(vec![NotServed; 5], None);
        assert!(!nothing.healthy());
        let gone = report(vec![], Some("unavailable: connection refused"));
        assert!(!gone.healthy());
        assert_eq!(gone.state(), "unreachable");
        assert!(!report(vec![Serving, Unknown("x".into())], None).healthy());
    }
}
