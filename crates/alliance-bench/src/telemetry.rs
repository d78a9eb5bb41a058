//! The cost of tracing: the command benchmark against two `allianced` side by side, one with no
//! telemetry configured and one exporting spans sampled at 10% (and its metrics) over OTLP to a
//! receiver in this process that counts and drops them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::{Args, Server, median, run_once, start_server_with, suite_clients};

/// Counts what it is sent and keeps nothing.
#[derive(Clone, Default)]
struct Sink {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

const CLIENTS: usize = 64;

/// Commands/s at 64 clients without and with tracing, runs alternating between the two servers.
pub async fn report(args: &Args) -> anyhow::Result<String> {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .add_service(MetricsServiceServer::new(sink.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let traced_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        (
            "OTEL_TRACES_SAMPLER".to_owned(),
            "parentbased_traceidratio".to_owned(),
        ),
        ("OTEL_TRACES_SAMPLER_ARG".to_owned(), "0.1".to_owned()),
        ("OTEL_SERVICE_NAME".to_owned(), "allianced-bench".to_owned()),
    ];
    let mut logs = vec![("embedded", false)];
    if args.kafka_bootstrap.is_some() {
        logs.push(("Kafka, 8 partitions", true));
    }
    // Each server on a topic of its own.
    let log_args = |kafka: bool| match &args.kafka_bootstrap {
        Some(bootstrap) if kafka => kafka_args(bootstrap),
        _ => Vec::new(),
    };
    let mut out = format!(
        "\n## The cost of tracing ([F7])\n\n\
         The command benchmark at 64 clients against `allianced` (release) servers side by side on the same log kind: \
         two with no `OTEL_*` variable (nothing exported), two with `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, \
         `OTEL_TRACES_SAMPLER_ARG=0.1` and `OTEL_EXPORTER_OTLP_ENDPOINT` set to an OTLP/gRPC receiver in the benchmark \
         process that counts the spans and drops them (metrics are exported too, every 60 s). {METHOD}\n\n\
         | log | no telemetry (commands/s) | 10% traced (commands/s) | traced / untraced | spans exported per command |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for (label, kafka) in logs {
        let (plain, traced) = start_two_each(
            || start_server_with(&log_args(kafka), &[]),
            || start_server_with(&log_args(kafka), &traced_env),
        )?;
        let mut spans_before = 0;
        let warm = || spans_before = sink.spans.load(Ordering::Relaxed);
        let measured = alternate(args, &plain, &traced, label, warm).await?;
        drop(traced);
        // Stopping the server flushes what its batch processor still holds.
        let spans = sink.spans.load(Ordering::Relaxed) - spans_before;
        let per_command = spans as f64 / measured.b_commands.max(1) as f64;
        let (off, on, ratio) = measured.medians();
        out.push_str(&format!(
            "| {label} | {off:.0} | {on:.0} | **{ratio:.3}** | {per_command:.2} |\n"
        ));
    }
    out.push_str(
        "\nTarget ([F7]): traced at most 10% below untraced (a ratio of at least 0.9). A sampled command makes \
         five spans (the request, decide, the append, the read model's consume and update), so about 0.5 spans \
         per command are expected at 10%; an unsampled one makes only the request's span, with neither name nor \
         attributes, and the read model makes none.\n",
    );
    out.push_str(&logging_report(args).await?);
    Ok(out)
}

/// Commands/s at 64 clients with the default logging (`info`: refusals and errors, one line
/// each; a request answered OK at `debug`) beside `RUST_LOG=warn`, on the embedded log.
async fn logging_report(args: &Args) -> anyhow::Result<String> {
    let (quiet, default) = start_two_each(
        || start_server_with(&[], &[]),
        || start_server_with(&[], &[("RUST_LOG".to_owned(), "info".to_owned())]),
    )?;
    let (quiet, default, ratio) = alternate(args, &quiet, &default, "logging", || ())
        .await?
        .medians();
    Ok(format!(
        "\n### The cost of the default logging ([G5])\n\n\
         The same alternating runs at 64 clients on the embedded log, between `allianced` servers with `RUST_LOG=warn` and \
         servers with the default filter (`info`: the access log writes a line for each refusal or error, and a request \
         answered OK only at `debug`).\n\n\
         | `RUST_LOG=warn` (commands/s) | default, `info` (commands/s) | default / warn |\n|---:|---:|---:|\n\
         | {quiet:.0} | {default:.0} | **{ratio:.3}** |\n\n\
         Target ([G5]): the default logging costs at most 3% (a ratio of at least 0.97).\n"
    ))
}

/// How [`alternate`] measures, for the report.
const METHOD: &str = "Two servers of each kind run at once, started in the order A, B, B, A (a server started \
    later measured a few percent slower than its twin in runs of two identical servers). Runs go in pairs, one on a \
    server of each kind; the pairs take the two servers of each kind in turn, and which kind goes first alternates \
    every two pairs. Each rate is the median of its kind's runs; the ratio is the median of the pairs' ratios (a \
    pair shares the machine's load of the moment, which drifts by more than the difference measured).";

/// Two servers of each kind, started in the order a, b, b, a.
fn start_two_each(
    a: impl Fn() -> anyhow::Result<Server>,
    b: impl Fn() -> anyhow::Result<Server>,
) -> anyhow::Result<([Server; 2], [Server; 2])> {
    let a0 = a()?;
    let b0 = b()?;
    let b1 = b()?;
    let a1 = a()?;
    Ok(([a0, a1], [b0, b1]))
}

/// What [`alternate`] measured: commands/s of each run of `a` and of `b`, and the commands `b`
/// answered.
struct Alternated {
    a: Vec<f64>,
    b: Vec<f64>,
    b_commands: u64,
}

impl Alternated {
    /// The median of each kind's runs, and the median of the ratios `b / a` of each pair.
    fn medians(self) -> (f64, f64, f64) {
        let ratios = self
            .a
            .iter()
            .zip(&self.b)
            .map(|(a, b)| b / a.max(1.0))
            .collect();
        (median(self.a), median(self.b), median(ratios))
    }
}

/// Pairs of runs of 64 clients, one on a server of `a` and one on a server of `b` (fresh plans
/// on each): twice as many pairs as `args.runs`, each run half as long. Pair `i` takes the
/// servers `i % 2`; `a` goes first in pairs 0, 1, 4, 5, …, `b` in pairs 2, 3, 6, 7, …: a
/// server is still settling its last run (its read models, its log's checkpoint) when the next
/// starts. `warm` is called once all four are warmed up, before the first measured run.
async fn alternate(
    args: &Args,
    a: &[Server; 2],
    b: &[Server; 2],
    label: &str,
    warm: impl FnOnce(),
) -> anyhow::Result<Alternated> {
    let mut clients = Vec::new();
    for server in [&a[0], &a[1], &b[0], &b[1]] {
        clients.push(suite_clients(server, args.plans).await?);
    }
    for (channels, plans) in &clients {
        run_once(channels, plans, 16, Duration::from_secs(1), "warmup").await?;
    }
    warm();
    let seconds = Duration::from_secs_f64(args.seconds as f64 / 2.0);
    let mut measured = Alternated {
        a: Vec::new(),
        b: Vec::new(),
        b_commands: 0,
    };
    for run in 0..args.runs * 2 {
        let twin = run % 2;
        let order = if (run / 2) % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for is_b in order {
            let (channels, plans) = &clients[if is_b { 2 + twin } else { twin }];
            let name = format!("{}{twin}-{run}", if is_b { "b" } else { "a" });
            let r = run_once(channels, plans, CLIENTS, seconds, &name).await?;
            let rate = r.commands as f64 / r.seconds;
            if is_b {
                measured.b.push(rate);
                measured.b_commands += r.commands;
            } else {
                measured.a.push(rate);
            }
        }
        eprintln!(
            "{label}: pair {run}: {:.0} commands/s, and {:.0}",
            measured.a[run], measured.b[run]
        );
    }
    Ok(measured)
}

fn kafka_args(bootstrap: &str) -> Vec<String> {
    vec![
        "--kafka-bootstrap".to_owned(),
        bootstrap.to_owned(),
        "--kafka-topic".to_owned(),
        format!("alliance-bench-{}", uuid::Uuid::now_v7()),
        "--kafka-partitions".to_owned(),
        "8".to_owned(),
    ]
}

/// Appends and commits an `allianced` reports of its log's writer (`alliance.log.commit.appends`,
/// cumulative), as of its last metrics export.
#[derive(Clone)]
pub struct Commits {
    /// `(appends, commits)` as last exported; the version counts exports.
    last: Arc<tokio::sync::watch::Sender<(f64, u64)>>,
}

#[tonic::async_trait]
impl MetricsService for Commits {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let points = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter(|m| m.name == "alliance.log.commit.appends")
            .filter_map(|m| match &m.data {
                Some(Data::Histogram(h)) => Some(&h.data_points),
                _ => None,
            })
            .flatten();
        let (appends, commits) = points.fold((0.0, 0), |(appends, commits), point| {
            (appends + point.sum.unwrap_or(0.0), commits + point.count)
        });
        self.last.send_replace((appends, commits));
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Commits {
    /// A receiver of OTLP metrics on loopback, and the environment that has an `allianced`
    /// export its metrics there every 200 ms (and no traces).
    pub async fn receiver() -> anyhow::Result<(Self, Vec<(String, String)>)> {
        let commits = Self {
            last: Arc::new(tokio::sync::watch::channel((0.0, 0)).0),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(MetricsServiceServer::new(commits.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let env = vec![
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT".to_owned(), endpoint),
            ("OTEL_TRACES_EXPORTER".to_owned(), "none".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL".to_owned(), "200".to_owned()),
            ("OTEL_SERVICE_NAME".to_owned(), "allianced-bench".to_owned()),
        ];
        Ok((commits, env))
    }

    /// `(appends, commits)` as of an export made after this call (the second one seen, so
    /// that it was taken after the call).
    pub async fn now(&self) -> anyhow::Result<(f64, u64)> {
        let mut exports = self.last.subscribe();
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), exports.changed())
                .await
                .map_err(|_| anyhow::anyhow!("allianced exported no metrics within 10 s"))??;
        }
        Ok(*exports.borrow())
    }
}
