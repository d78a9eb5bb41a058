#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Traces and metrics end to end on Apache Kafka, with OpenTelemetry's in-memory exporters
//! installed as this process's telemetry (a test binary of its own: the telemetry is global).

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alliance_commands::PlanCommandsApi;
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader};
use alliance_projection::Projection;
use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_stdx::lock;
use futures::StreamExt;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use tokio::sync::watch;

use harness::{Env, US, date, element};

/// Keeps every ended span and counts them, so a test can wait for the spans it expects.
#[derive(Debug, Clone)]
struct Spans {
    ended: Arc<Mutex<Vec<SpanData>>>,
    count: watch::Sender<usize>,
}

impl SpanProcessor for Spans {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let mut ended = lock(&self.ended);
        ended.push(span);
        self.count.send_replace(ended.len());
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl Spans {
    /// The spans of `trace` once `done` holds for them (waiting for each span to end).
    async fn of_trace(&self, trace: TraceId, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
        let mut count = self.count.subscribe();
        let wait = async {
            loop {
                let spans: Vec<SpanData> = lock(&self.ended)
                    .iter()
                    .filter(|s| s.span_context.trace_id() == trace)
                    .cloned()
                    .collect();
                if done(&spans) {
                    return spans;
                }
                count.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| {
                let names: Vec<String> = lock(&self.ended)
                    .iter()
                    .filter(|s| s.span_context.trace_id() == trace)
                    .map(|s| s.name.to_string())
                    .collect();
                panic!("the trace's spans never all ended; ended: {names:?}")
            })
    }
}

struct Telemetry {
    spans: Spans,
    metrics: InMemoryMetricExporter,
    meter: SdkMeterProvider,
    _installed: alliance_telemetry::Telemetry,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let spans = Spans {
            ended: Arc::default(),
            count: watch::Sender::new(0),
        };
        let tracer = SdkTracerProvider::builder()
            .with_span_processor(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        // Collected only when a test asks (force_flush).
        let reader = PeriodicReader::builder(metrics.clone())
            .with_interval(Duration::from_secs(24 * 3600))
            .build();
        let meter = SdkMeterProvider::builder().with_reader(reader).build();
        let installed = alliance_telemetry::install(
            alliance_telemetry::LogFormat::Text,
            Some(tracer),
            Some(meter.clone()),
        )
        .unwrap();
        Telemetry {
            spans,
            metrics,
            meter,
            _installed: installed,
        }
    })
}

fn config() -> KafkaLogConfig {
    let topic = format!("alliance-telemetry-test-{}", uuid::Uuid::now_v7());
    let mut config = KafkaLogConfig::new(alliance_eventlog_kafka::local_broker().unwrap(), &topic);
    config.partitions = 2;
    config.owned = Some(vec![0, 1]);
    config.transactional_prefix = topic;
    config
}

/// A topic of its own: its settings, the test log on it and a reader of it.
async fn topic() -> (KafkaLogConfig, Env<KafkaLog>, TopicReader) {
    let config = config();
    let env = Env::on(KafkaLog::open(config.clone()).await.unwrap()).await;
    let reader = TopicReader::new(config.clone());
    (config, env, reader)
}

/// The command service and the read models of one topic, on one loopback server; the read
/// models follow the topic through a reader of their own.
async fn serve(env: &Env<KafkaLog>, reader: &TopicReader) -> (String, Arc<Projection>) {
    let projection = Projection::new();
    projection.catch_up(reader).await.unwrap();
    tokio::spawn(projection.clone().follow(reader.clone()));
    let (listener, address) = alliance_tests::server::loopback().await;
    let auth = Arc::new(env.auth.clone());
    let api = PlanCommandsApi::new(env.service.clone(), auth.clone(), address.clone());
    let (routes, health) = alliance_commands::server::routes(api).await.unwrap();
    let routes = alliance_projection::add_routes(
        routes,
        &health,
        projection.clone(),
        reader.clone(),
        auth,
        None,
        env.trusted.clone(),
    )
    .await;
    alliance_tests::server::spawn_serving(listener, routes, None);
    (address, projection)
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    alliance_tests::requests::authed(alliance_tests::server::tokens::APPROVER, message)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> &'a Value {
    &span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .unwrap_or_else(|| panic!("span {} has no attribute {key}", span.name))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_one_trace_from_the_rpc_through_the_topic_to_the_subscriber() {
    let telemetry = telemetry();
    let (config, env, reader) = topic().await;
    let (address, _projection) = serve(&env, &reader).await;

    // The plan, and a subscriber of what is recorded next (a plan is shown only once the read
    // model holds it, to those with a role on it).
    let plan_id = uuid::Uuid::now_v7();
    let mut commands = PlanCommandsClient::connect(address.clone()).await.unwrap();
    commands
        .create_plan(authorized(v1::CreatePlanRequest {
            meta: Some(v1::CommandMeta {
                command_id: uuid::Uuid::now_v7().to_string(),
                plan_id: plan_id.to_string(),
                ..Default::default()
            }),
            name: "traced plan".into(),
            description: String::new(),
            horizon_start: alliance_tests::requests::date(2026, 1, 1),
            horizon_end: alliance_tests::requests::date(2031, 12, 31),
        }))
        .await
        .unwrap();
    let mut watch = PostureQueriesClient::connect(address.clone())
        .await
        .unwrap()
        .watch_plan(authorized(v1::WatchPlanRequest {
            plan_id: plan_id.to_string(),
            from_version: 2,
            min_version: 1,
        }))
        .await
        .unwrap()
        .into_inner();

    // The caller's own trace context comes in through the metadata.
    let trace = TraceId::from_hex(&uuid::Uuid::now_v7().simple().to_string()).unwrap();
    let caller_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let mut request = authorized(v1::RegisterForceElementRequest {
        meta: Some(v1::CommandMeta {
            command_id: uuid::Uuid::now_v7().to_string(),
            plan_id: plan_id.to_string(),
            ..Default::default()
        }),
        element: alliance_tests::requests::brigade("2id-abct", "rotational armored brigade", 4500),
        present_from: alliance_tests::requests::date(2026, 1, 1),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01").parse().unwrap(),
    );
    commands.register_force_element(request).await.unwrap();
    let pushed = watch.next().await.unwrap().unwrap();
    assert_eq!(pushed.plan_version, 2);

    let topic = &config.topic;
    let rpc_name = "alliance.v1.PlanCommands/RegisterForceElement";
    let send_name = format!("send {topic}");
    let process_name = format!("process {topic}");
    let push_name = "push alliance.v1.PostureQueries/WatchPlan";
    let spans = telemetry
        .spans
        .of_trace(trace, |spans| {
            let have = names(spans);
            [
                rpc_name,
                "decide",
                &send_name,
                &process_name,
                "update read model",
                push_name,
            ]
            .iter()
            .all(|name| have.contains(name))
        })
        .await;

    // The command service: the RPC continues the caller's span; decide and the append are in it.
    let rpc = named(&spans, rpc_name);
    assert_eq!(rpc.span_kind, SpanKind::Server);
    assert_eq!(rpc.parent_span_id, caller_span);
    assert!(rpc.parent_span_is_remote);
    assert_eq!(attribute(rpc, "rpc.system"), &Value::from("grpc"));
    assert_eq!(
        attribute(rpc, "rpc.service"),
        &Value::from("alliance.v1.PlanCommands")
    );
    assert_eq!(
        attribute(rpc, "rpc.method"),
        &Value::from("RegisterForceElement")
    );
    assert_eq!(attribute(rpc, "rpc.grpc.status_code"), &Value::I64(0));
    let decide = named(&spans, "decide");
    assert_eq!(decide.parent_span_id, rpc.span_context.span_id());
    let send = named(&spans, &send_name);
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(send.parent_span_id, rpc.span_context.span_id());
    assert_eq!(attribute(send, "messaging.system"), &Value::from("kafka"));
    assert_eq!(
        attribute(send, "messaging.destination.name"),
        &Value::from(topic.clone())
    );
    // It ends once the transaction is committed: after decide, before the consumer sees it.
    assert!(send.start_time >= decide.end_time);

    // The read models: the consumer continues the producer's span from the record's
    // `traceparent` header, and links to it.
    let process = named(&spans, &process_name);
    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert!(process.parent_span_is_remote);
    assert!(
        process.links.iter().any(
            |link| link.span_context.span_id() == send.span_context.span_id()
                && link.span_context.trace_id() == trace
        ),
        "the consumer span links to the producer span"
    );
    assert_eq!(
        attribute(process, "messaging.operation.type"),
        &Value::from("process")
    );
    let update = named(&spans, "update read model");
    assert_eq!(update.parent_span_id, process.span_context.span_id());
    let push = named(&spans, push_name);
    assert_eq!(push.parent_span_id, update.span_context.span_id());
    assert!(process.start_time >= send.start_time);
}

/// The last collected value of gauge `name` for the points whose attributes include `with`.
fn gauge(metrics: &InMemoryMetricExporter, name: &str, with: &opentelemetry::KeyValue) -> Vec<u64> {
    let exported = metrics.get_finished_metrics().unwrap();
    let last = exported.last().expect("nothing collected");
    let metric = last
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .find(|metric| metric.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    let AggregatedMetrics::U64(MetricData::Gauge(gauge)) = metric.data() else {
        panic!("{name} is not a u64 gauge")
    };
    gauge
        .data_points()
        .filter(|point| point.attributes().any(|kv| kv == with))
        .map(|point| point.value())
        .collect()
}

async fn collect(telemetry: &'static Telemetry) {
    // The gauges ask the log, on the reader's thread, through this runtime.
    tokio::task::spawn_blocking(|| telemetry.meter.force_flush().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_metrics_grow_while_the_read_model_is_paused_and_fall_back_when_it_resumes() {
    let telemetry = telemetry();
    let (config, env, reader) = topic().await;
    let plan = env.create_plan().await;
    let (_address, projection) = serve(&env, &reader).await;
    projection
        .wait_for(plan, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let ours = opentelemetry::KeyValue::new("alliance.log", config.topic.clone());

    collect(telemetry).await;
    assert_eq!(
        gauge(&telemetry.metrics, "alliance.projection.lag", &ours),
        [0]
    );
    let partitions = gauge(&telemetry.metrics, "alliance.consumer.lag", &ours);
    assert_eq!(partitions.len(), 2, "one point per partition");
    assert_eq!(partitions.iter().sum::<u64>(), 0);

    let paused = projection.pause().await;
    let mut version = 1;
    for n in 0..3 {
        version = env
            .exec(
                US,
                plan,
                alliance_domain::Command::RegisterForceElement {
                    element: element(&format!("unit-{n}"), alliance_domain::Side::Us, 100),
                    present_from: date(2026, 1, 1),
                },
            )
            .await
            .plan_version;
    }
    collect(telemetry).await;
    assert_eq!(
        gauge(&telemetry.metrics, "alliance.projection.lag", &ours),
        [3]
    );
    let partitions = gauge(&telemetry.metrics, "alliance.consumer.lag", &ours);
    assert_eq!(partitions.iter().sum::<u64>(), 3, "{partitions:?}");
    assert_eq!(projection.plan_version(plan), 1, "paused");

    drop(paused);
    projection
        .wait_for(plan, version, Duration::from_secs(30))
        .await
        .unwrap();
    collect(telemetry).await;
    assert_eq!(
        gauge(&telemetry.metrics, "alliance.projection.lag", &ours),
        [0]
    );
    let partitions = gauge(&telemetry.metrics, "alliance.consumer.lag", &ours);
    assert_eq!(partitions.iter().sum::<u64>(), 0);
}
