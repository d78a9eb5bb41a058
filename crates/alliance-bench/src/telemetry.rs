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
    let mut logs: Vec<(&str, Vec<String>)> = vec![("embedded", Vec::new())];
    if let Some(bootstrap) = &args.kafka_bootstrap {
        logs.push(("Kafka, 8 partitions", kafka_args(bootstrap)));
    }
    let mut out = String::from(
        "\n## The cost of tracing ([F7])\n\n\
         The command benchmark at 64 clients against two `allianced` (release) side by side on the same log kind: \
         one with no `OTEL_*` variable (nothing exported), one with `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, \
         `OTEL_TRACES_SAMPLER_ARG=0.1` and `OTEL_EXPORTER_OTLP_ENDPOINT` set to an OTLP/gRPC receiver in the benchmark \
         process that counts the spans and drops them (metrics are exported too, every 60 s). The runs alternate \
         between the two servers; each figure is the median of the runs.\n\n\
         | log | no telemetry (commands/s) | 10% traced (commands/s) | traced / untraced | spans exported per command |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (label, server_args) in logs {
        let plain = start_server_with(&server_args, &[])?;
        let traced_args = match &args.kafka_bootstrap {
            Some(bootstrap) if !server_args.is_empty() => kafka_args(bootstrap),
            _ => Vec::new(),
        };
        let traced = start_server_with(&traced_args, &traced_env)?;
        let mut spans_before = 0;
        let warm = || spans_before = sink.spans.load(Ordering::Relaxed);
        let (off, on, commands) = alternate(args, &plain, &traced, label, warm).await?;
        drop(traced);
        // Stopping the server flushes what its batch processor still holds.
        let spans = sink.spans.load(Ordering::Relaxed) - spans_before;
        let (off, on) = (median(off), median(on));
        out.push_str(&format!(
            "| {label} | {off:.0} | {on:.0} | **{:.3}** | {:.2} |\n",
            on / off.max(1.0),
            spans as f64 / commands.max(1) as f64
        ));
    }
    out.push_str(
        "\nTarget ([F7]): traced at most 10% below untraced (a ratio of at least 0.9). A sampled command makes \
         five spans (the request, decide, the append, the read model's consume and update), so about 0.5 spans \
         per command are expected at 10%; an unsampled one makes the first three, recorded but not exported, \
         and the read model makes none.\n",
    );
    out.push_str(&logging_report(args).await?);
    Ok(out)
}

/// Commands/s at 64 clients with the default logging (`info`: refusals and errors, one line
/// each; a request answered OK at `debug`) beside `RUST_LOG=warn`, on the embedded log.
async fn logging_report(args: &Args) -> anyhow::Result<String> {
    let quiet = start_server_with(&[], &[])?;
    let default = start_server_with(&[], &[("RUST_LOG".to_owned(), "info".to_owned())])?;
    let (quiet, default, _) = alternate(args, &quiet, &default, "logging", || ()).await?;
    let (quiet, default) = (median(quiet), median(default));
    Ok(format!(
        "\n### The cost of the default logging ([G5])\n\n\
         The same alternating runs at 64 clients on the embedded log, between an `allianced` with `RUST_LOG=warn` and \
         one with the default filter (`info`: the access log writes a line for each refusal or error, and a request \
         answered OK only at `debug`).\n\n\
         | `RUST_LOG=warn` (commands/s) | default, `info` (commands/s) | default / warn |\n|---:|---:|---:|\n\
         | {quiet:.0} | {default:.0} | **{:.3}** |\n\n\
         Target ([G5]): the default logging costs at most 3% (a ratio of at least 0.97).\n",
        default / quiet.max(1.0)
    ))
}

/// Runs of 64 clients alternating between `a` and `b` (fresh plans on each): commands/s of each
/// run of `a`, of `b`, and the commands `b` answered. `warm` is called once both are warmed up,
/// before the first measured run.
async fn alternate(
    args: &Args,
    a: &Server,
    b: &Server,
    label: &str,
    warm: impl FnOnce(),
) -> anyhow::Result<(Vec<f64>, Vec<f64>, u64)> {
    let a_clients = suite_clients(a, args.plans).await?;
    let b_clients = suite_clients(b, args.plans).await?;
    for (channels, plans) in [&a_clients, &b_clients] {
        run_once(channels, plans, 16, Duration::from_secs(1), "warmup").await?;
    }
    warm();
    let seconds = Duration::from_secs(args.seconds);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut commands = 0;
    for run in 0..args.runs {
        let (channels, plans) = &a_clients;
        let r = run_once(channels, plans, CLIENTS, seconds, &format!("a-{run}")).await?;
        off.push(r.commands as f64 / r.seconds);
        let (channels, plans) = &b_clients;
        let r = run_once(channels, plans, CLIENTS, seconds, &format!("b-{run}")).await?;
        on.push(r.commands as f64 / r.seconds);
        commands += r.commands;
        eprintln!(
            "{label}: run {run}: {:.0} commands/s, then {:.0}",
            off[run], on[run]
        );
    }
    Ok((off, on, commands))
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
