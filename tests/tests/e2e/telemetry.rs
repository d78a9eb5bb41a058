//! Telemetry of the real `allianced`: spans and metrics exported over OTLP/gRPC to a receiver
//! on a loopback port, JSON log lines carrying the trace id, and nothing exported when no
//! `OTEL_*` variable asks for it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use alliance_stdx::{lock, wait_timeout};
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
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::support::Server;

/// What the receiver was sent: spans with their resource's `service.name`, and metric names.
#[derive(Default)]
struct Received {
    spans: Vec<(String, Span)>,
    metrics: Vec<String>,
}

/// An OTLP/gRPC receiver (traces and metrics), as a collector would run it.
#[derive(Clone, Default)]
struct Receiver(Arc<(Mutex<Received>, Condvar)>);

impl Receiver {
    /// Waits (up to a minute) until `done` holds of what was received.
    fn wait_until<T>(&self, what: &str, done: impl Fn(&Received) -> Option<T>) -> T {
        let (received, changed) = &*self.0;
        let mut guard = lock(received);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = done(&guard) {
                return found;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "never received {what}");
            guard = wait_timeout(changed, guard, left).0;
        }
    }

    fn update(&self, change: impl FnOnce(&mut Received)) {
        let (received, changed) = &*self.0;
        change(&mut lock(received));
        changed.notify_all();
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.update(|received| {
            for resource in request.into_inner().resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|value| match value {
                        Value::StringValue(name) => name.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        received.spans.push((service.clone(), span));
                    }
                }
            }
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.update(|received| {
            for resource in request.into_inner().resource_metrics {
                for scope in resource.scope_metrics {
                    received
                        .metrics
                        .extend(scope.metrics.into_iter().map(|m| m.name));
                }
            }
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts a receiver on a loopback port of a runtime of its own; returns its endpoint.
fn receiver() -> (Receiver, String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = Receiver::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream_of(listener)),
    );
    (receiver, endpoint, runtime)
}

fn tokio_stream_of(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
}

fn any_port() -> Vec<String> {
    vec!["--listen".into(), "127.0.0.1:0".into()]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn allianced_exports_spans_and_metrics_over_otlp_and_logs_json_lines_with_the_trace_id() {
    let (receiver, endpoint, _runtime) = receiver();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        "allianced",
        data.path(),
        &any_port(),
        // The access log on: a line for each request, refused or not.
        "info,alliance::access=debug",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_SERVICE_NAME", "allianced-e2e".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
            ("ALLIANCE_LOG_FORMAT", "json".into()),
        ],
    );
    server.create_plan("traced over OTLP");

    // The request's server span, exported under the configured service name …
    let rpc = receiver.wait_until("the CreatePlan span", |received| {
        received
            .spans
            .iter()
            .find(|(service, span)| {
                service == "allianced-e2e" && span.name == "alliance.v1.PlanCommands/CreatePlan"
            })
            .map(|(_, span)| span.clone())
    });
    // … with decide and the append to the embedded log in the same trace, under it.
    let children = receiver.wait_until("decide and the append", |received| {
        let of_rpc: Vec<String> = received
            .spans
            .iter()
            .filter(|(_, span)| span.trace_id == rpc.trace_id && span.parent_span_id == rpc.span_id)
            .map(|(_, span)| span.name.clone())
            .collect();
        (of_rpc.iter().any(|n| n == "decide") && of_rpc.iter().any(|n| n == "INSERT events"))
            .then_some(of_rpc)
    });
    assert!(children.len() >= 2, "{children:?}");
    // The read model's lag, the commits and the requests, as metrics.
    receiver.wait_until("the metrics", |received| {
        [
            "rpc.server.call.duration",
            "alliance.log.commit.events",
            "alliance.log.commit.duration",
            "alliance.projection.lag",
        ]
        .iter()
        .all(|name| received.metrics.iter().any(|m| m == name))
        .then_some(())
    });

    // The request's log line is JSON and names the exported trace.
    let trace_id = hex(&rpc.trace_id);
    let line =
        server.wait_for_line(|line| line.contains("\"request\"") && line.contains(&trace_id));
    let logged: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(logged["message"], "request");
    assert_eq!(logged["code"], "OK");
    let spans = logged["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|span| span["trace_id"] == trace_id.as_str()
                && span["span_id"] == hex(&rpc.span_id).as_str()
                && span["rpc.method"] == "CreatePlan"),
        "{line}"
    );
    // No line carries the caller's token.
    server.assert_never_printed("dev-alliance-approvers");
}

#[test]
fn without_otel_variables_nothing_is_exported_and_allianced_serves() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with_env("allianced", data.path(), &any_port(), "info", &[]);
    server.wait_for_line(|line| {
        line.contains("telemetry export disabled") && line.contains("traces=false")
    });
    let plan = server.create_plan("untraced");
    assert_eq!(plan.len(), 36);
    // At the default level, a refusal is logged, one line, and a request answered OK is not.
    let refused = server.ctl("not-a-token", &["plan", "show", "--plan", &plan]);
    assert!(!refused.status.success(), "{refused:?}");
    let line = server.wait_for_line(|line| {
        line.contains("request") && line.contains("code=\"UNAUTHENTICATED\"")
    });
    // It names the method, in the request's span (the only span a log line carries).
    assert!(line.contains("rpc{rpc.service="), "{line}");
    assert!(line.contains(" rpc.method="), "{line}");
    server.assert_never_printed("code=\"OK\"");
}
