//! The request span of a server that exports spans but writes no line at `info`: a test binary
//! of its own, as it installs the process's subscriber.

use alliance_telemetry::{Directives, LogFormat, RpcLayer, install_with};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use tower::{Layer, Service, ServiceExt};

const CALLER_SAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const CALLER_NOT_SAMPLED: &str = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00";

/// A sampled request's span has the RPC conventions' name and attributes, recorded after it
/// started; no attribute repeats its own ids (fields only log lines need, and none is written);
/// an unsampled request's span is not exported.
#[tokio::test]
async fn a_sampled_request_is_exported_with_its_attributes_and_no_field_only_lines_need() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        .build();
    let _telemetry = install_with(
        LogFormat::Text,
        Directives::parse("warn").unwrap(),
        Some(provider.clone()),
        None,
    )
    .unwrap();

    let mut service = RpcLayer::new().layer(tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    }));
    for traceparent in [CALLER_SAMPLED, CALLER_NOT_SAMPLED] {
        let request = http::Request::builder()
            .uri("http://localhost/alliance.v1.PlanCommands/CreatePlan")
            .header("traceparent", traceparent)
            .body(())
            .unwrap();
        service.ready().await.unwrap().call(request).await.unwrap();
    }
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.name, "alliance.v1.PlanCommands/CreatePlan");
    assert_eq!(
        format!("{:032x}", span.span_context.trace_id()),
        "0af7651916cd43dd8448eb211c80319c"
    );
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(attribute("rpc.system"), Some(Value::from("grpc")));
    assert_eq!(
        attribute("rpc.service"),
        Some(Value::from("alliance.v1.PlanCommands"))
    );
    assert_eq!(attribute("rpc.method"), Some(Value::from("CreatePlan")));
    assert_eq!(attribute("rpc.grpc.status_code"), Some(Value::I64(0)));
    assert_eq!(attribute("trace_id"), None);
    assert_eq!(attribute("span_id"), None);
}
