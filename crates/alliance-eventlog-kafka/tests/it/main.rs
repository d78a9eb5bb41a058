//! The Kafka event log against the project's real broker (`make test` starts it; without
//! `ALLIANCE_KAFKA_BOOTSTRAP` the tests start it with `deploy/kafka/kafka.sh up`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use alliance_eventlog::{Appended, EventLog, LogError, NewEvent, PlanId};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, partition_of};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn bootstrap() -> String {
    alliance_eventlog_kafka::local_broker().unwrap()
}

fn config(topic: &str) -> KafkaLogConfig {
    let mut config = KafkaLogConfig::new(bootstrap(), topic);
    config.partitions = 3;
    config.transactional_prefix = topic.to_owned();
    config
}

fn topic() -> String {
    format!("alliance-log-test-{}", uuid::Uuid::now_v7())
}

/// A log on `config` whose one plan holds the two events of command `c1`, and their append.
async fn with_one_command(config: KafkaLogConfig) -> (KafkaLog, PlanId, Appended) {
    let log = KafkaLog::open(config).await.unwrap();
    let plan = uuid::Uuid::now_v7();
    let appended = log
        .append(plan, 0, vec![event("c1"), event("c1")])
        .await
        .unwrap();
    (log, plan, appended)
}

fn event(command: &str) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        command_id: command.to_owned(),
        event_type: "DecisionProposed".into(),
        record_time_micros: 1_790_000_000_000_000,
        payload: vec![1, 2, 3],
    }
}

/// Every committed record of `topic`, as a plain consumer of another system would read it.
fn consume_committed(topic: &str, partitions: i32) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut eof = 0;
    let mut messages = Vec::new();
    while eof < partitions {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => messages.push(m.detach()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            Some(Err(e)) => panic!("{e}"),
            None => panic!("no message and no end of partition within 10 s"),
        }
    }
    messages
}

/// The command id of every committed record of `topic`, in each partition's order.
fn committed_commands(topic: &str, partitions: i32) -> Vec<String> {
    consume_committed(topic, partitions)
        .iter()
        .map(|m| {
            let headers = m.headers().unwrap();
            let h = headers.iter().find(|h| h.key == "ce_commandid").unwrap();
            String::from_utf8(h.value.unwrap().to_vec()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_keyed_by_plan_and_carry_cloudevents_headers() {
    let topic = topic();
    let (_log, plan, appended) = with_one_command(config(&topic)).await;
    assert_eq!((appended.first_version, appended.last_version), (1, 2));

    let messages = consume_committed(&topic, 3);
    assert_eq!(messages.len(), 2);
    for (message, version) in messages.iter().zip(1..) {
        assert_eq!(message.key(), Some(plan.to_string().as_bytes()));
        assert_eq!(message.partition(), partition_of(plan, 3));
        let headers = message.headers().unwrap();
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
                .unwrap_or_else(|| panic!("no header {name}"))
        };
        assert_eq!(header("ce_specversion"), "1.0");
        assert_eq!(header("ce_type"), "alliance.v1.DecisionProposed");
        assert_eq!(header("ce_source"), format!("/alliance/plans/{plan}"));
        assert_eq!(header("content-type"), "application/protobuf");
        assert_eq!(header("ce_planversion"), version.to_string());
        assert_eq!(header("ce_time"), "2026-09-21T14:13:20.000000Z");
        // Nothing traced the appends here (no telemetry is installed): no trace context is
        // made up. A traced append's `traceparent` is checked where spans are exported.
        assert!(headers.iter().all(|h| h.key != "traceparent"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_fences_the_stale_writer_whose_writes_never_become_visible() {
    let topic = topic();
    // Fixed ownership: both claim every partition, as a stale owner does.
    let all = |topic: &str| {
        let mut config = config(topic);
        config.owned = Some(vec![0, 1, 2]);
        config
    };
    let stale = KafkaLog::open(all(&topic)).await.unwrap();
    let plan = uuid::Uuid::now_v7();
    stale.append(plan, 0, vec![event("first")]).await.unwrap();

    // Another instance takes every partition over: the stale one is fenced.
    let owner = KafkaLog::open(all(&topic)).await.unwrap();
    assert_eq!(owner.plan_version(plan).await.unwrap(), 1);
    match stale.append(plan, 1, vec![event("stale")]).await {
        Err(LogError::Unavailable(message)) => assert!(message.contains("partition"), "{message}"),
        other => panic!("a fenced writer must fail, got {other:?}"),
    }
    owner.append(plan, 1, vec![event("second")]).await.unwrap();

    // Read-committed readers (and any later owner) see exactly the owners' writes.
    let commands = committed_commands(&topic, 3);
    assert_eq!(commands, vec!["first", "second"]);
    drop(owner);
    let later = KafkaLog::open(config(&topic)).await.unwrap();
    let events = later.read_plan(plan, 1, 10).await.unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(events[1].command_id, "second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stay_gapless_under_concurrent_appends_across_partitions() {
    let topic = topic();
    let log = KafkaLog::open(config(&topic)).await.unwrap();
    let plans: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for (i, plan) in plans.iter().copied().enumerate() {
        for worker in 0..4 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                let mut expected = log.plan_version(plan).await.unwrap();
                while done < 10 {
                    let command = format!("p{i}-w{worker}-{done}");
                    match log.append(plan, expected, vec![event(&command)]).await {
                        Ok(appended) => {
                            done += 1;
                            expected = appended.last_version;
                        }
                        Err(LogError::VersionConflict { actual, .. }) => expected = actual,
                        Err(other) => panic!("{other}"),
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    drop(log);
    let reopened = KafkaLog::open(config(&topic)).await.unwrap();
    for plan in plans {
        let versions: Vec<u64> = reopened
            .read_plan(plan, 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    }
}

/// `partition`'s last stable offset (below it every transaction has ended) and high watermark.
fn stable_and_high(topic: &str, partition: i32) -> (i64, i64) {
    let watermark = |isolation: &str| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        high
    };
    (watermark("read_committed"), watermark("read_uncommitted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_a_stopped_writer_left_open_across_partitions_is_ended_by_the_next_owner() {
    use rdkafka::message::Header;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let topic = topic();
    // A first instance writes one plan on each partition, then leaves.
    let first = KafkaLog::open(config(&topic)).await.unwrap();
    let mut plans = std::collections::BTreeMap::new();
    while plans.len() < 3 {
        let plan = uuid::Uuid::now_v7();
        plans.entry(partition_of(plan, 3)).or_insert(plan);
    }
    for (partition, plan) in &plans {
        let command = format!("first-{partition}");
        first.append(*plan, 0, vec![event(&command)]).await.unwrap();
    }
    drop(first);

    // A writer of the instance's kind stops (killed, or stalled and dropped by the group) with
    // one transaction open on every partition: version 2 of each plan produced and
    // acknowledged, never committed. The broker would end it only after 5 minutes.
    let stalled_id = format!("{topic}-i-stalled-0");
    let stalled: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("transactional.id", &stalled_id)
        .set("transaction.timeout.ms", "300000")
        .create()
        .unwrap();
    stalled.init_transactions(Duration::from_secs(30)).unwrap();
    stalled.begin_transaction().unwrap();
    for (&partition, plan) in &plans {
        let key = plan.to_string();
        let headers = alliance_eventlog_kafka::record_headers(*plan, 2, &event("stalled"), None, 3)
            .insert(Header {
                key: "alliance_writer",
                value: Some(stalled_id.as_bytes()),
            });
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key(&key)
            .payload(&[1u8, 2, 3][..])
            .headers(headers);
        stalled
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    for partition in 0..3 {
        let (stable, high) = stable_and_high(&topic, partition);
        assert!(stable < high, "partition {partition}: {stable} / {high}");
    }

    // The next owner takes every partition over without waiting for the broker: every
    // read_committed reader of the partitions reads past the transaction at once.
    let started = std::time::Instant::now();
    let owner = KafkaLog::open(config(&topic)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    for partition in 0..3 {
        let (stable, high) = stable_and_high(&topic, partition);
        assert_eq!(stable, high, "partition {partition}");
    }
    // The stopped writer, resumed, cannot commit; nothing it wrote is visible, and the plans
    // continue from what was committed.
    assert!(stalled.commit_transaction(Duration::from_secs(10)).is_err());
    for (partition, plan) in &plans {
        assert_eq!(owner.plan_version(*plan).await.unwrap(), 1);
        let command = format!("owner-{partition}");
        owner.append(*plan, 1, vec![event(&command)]).await.unwrap();
    }
    let commands = committed_commands(&topic, 3);
    assert_eq!(commands.len(), 6, "{commands:?}");
    assert!(commands.iter().all(|c| c != "stalled"), "{commands:?}");
}

/// Waits (bounded) until `log`'s ownership satisfies `done`; the group rebalances in the
/// background.
async fn until(log: &KafkaLog, done: impl FnMut(&alliance_eventlog_kafka::Ownership) -> bool) {
    let mut ownership = log.ownership();
    tokio::time::timeout(Duration::from_secs(60), ownership.wait_for(done))
        .await
        .expect("ownership never settled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_group_divides_the_partitions_and_moves_them_when_an_instance_leaves() {
    let topic = topic();
    let join = |address: &str| {
        let mut config = config(&topic);
        config.advertised = Some(address.to_owned());
        KafkaLog::open(config)
    };
    let first = join("127.0.0.1:1001").await.unwrap();
    assert_eq!(first.owned_partitions(), vec![0, 1, 2]);
    let plans: Vec<uuid::Uuid> = (0..12).map(|_| uuid::Uuid::now_v7()).collect();
    for plan in &plans {
        first
            .append(*plan, 0, vec![event(&format!("{plan}-1"))])
            .await
            .unwrap();
    }

    // A second instance joins: the partitions are divided, each written by exactly one.
    let second = join("127.0.0.1:1002").await.unwrap();
    until(&second, |o| !o.owned.is_empty()).await;
    until(&first, |o| {
        o.owned.len() + second.owned_partitions().len() == 3
    })
    .await;
    let (a, b) = (first.owned_partitions(), second.owned_partitions());
    assert!(a.iter().all(|p| !b.contains(p)), "{a:?} and {b:?} overlap");
    // Each names the other as the writer of the plans it does not write, once it has read the
    // group's description.
    for plan in &plans {
        let (writer, other, address) = match first.route(*plan) {
            alliance_eventlog::Route::Local => (&first, &second, "127.0.0.1:1001"),
            alliance_eventlog::Route::Remote { .. } => (&second, &first, "127.0.0.1:1002"),
        };
        assert_eq!(writer.route(*plan), alliance_eventlog::Route::Local);
        // The new writer indexed what the first one wrote before it took the partition over.
        assert_eq!(writer.plan_version(*plan).await.unwrap(), 1);
        let partition = partition_of(*plan, 3);
        until(other, |o| {
            o.owners.get(&partition).map(String::as_str) == Some(address)
        })
        .await;
        assert!(matches!(
            other.route(*plan),
            alliance_eventlog::Route::Remote { owner: Some(owner), .. } if owner == address
        ));
        writer
            .append(*plan, 1, vec![event(&format!("{plan}-2"))])
            .await
            .unwrap();
    }

    // The second leaves: its partitions come back to the first, which continues every plan
    // from the versions the second wrote.
    drop(second);
    until(&first, |o| o.owned == [0, 1, 2]).await;
    for plan in &plans {
        assert_eq!(first.plan_version(*plan).await.unwrap(), 2);
        first
            .append(*plan, 2, vec![event(&format!("{plan}-3"))])
            .await
            .unwrap();
    }
    assert_eq!(consume_committed(&topic, 3).len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_with_the_broker_down_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = KafkaLogConfig::new(format!("127.0.0.1:{port}"), "nowhere");
    config.timeout = Duration::from_secs(3);
    match KafkaLog::open(config).await {
        Err(LogError::Unavailable(message)) => assert!(!message.is_empty()),
        Err(other) => panic!("expected unavailable, got {other}"),
        Ok(_) => panic!("no broker listens there"),
    }
}

/// [`config`] on the local broker's SASL_SSL listener (PLAIN over TLS).
fn secure_config(topic: &str) -> KafkaLogConfig {
    let mut client = alliance_eventlog_kafka::local_secure_client().unwrap();
    let bootstrap = client.remove("bootstrap.servers").unwrap();
    assert_eq!(client["security.protocol"], "SASL_SSL");
    let mut config = config(topic);
    config.bootstrap = bootstrap;
    config.client = client;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_works_over_sasl_ssl() {
    let topic = topic();
    let (log, plan, _) = with_one_command(secure_config(&topic)).await;
    let appended = log.append(plan, 2, vec![event("c2")]).await.unwrap();
    assert_eq!(appended.last_version, 3);

    let read = log.read_plan(plan, 1, 10).await.unwrap();
    let commands: Vec<_> = read.iter().map(|e| e.command_id.as_str()).collect();
    assert_eq!(commands, ["c1", "c1", "c2"]);
    // The same topic, as a client of the plaintext listener sees it.
    assert_eq!(consume_committed(&topic, 3).len(), 3);
}

/// Opens the log on the SASL_SSL listener with `change` made to its client settings, which
/// must make it fail: the error is returned.
async fn refused(change: impl FnOnce(&mut KafkaLogConfig)) -> String {
    let topic = topic();
    let mut config = secure_config(&topic);
    config.timeout = Duration::from_secs(10);
    change(&mut config);
    match KafkaLog::open(config).await {
        Err(LogError::Unavailable(message)) => message,
        Err(other) => panic!("expected unavailable, got {other}"),
        Ok(_) => panic!("the broker accepted the client"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_the_error_says_why() {
    let message = refused(|config| {
        config
            .client
            .insert("sasl.password".into(), "not-the-password".into());
    })
    .await;
    assert!(message.contains("Authentication failed"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_is_refused_and_the_error_says_why() {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other_ca.pem()).unwrap();
    let message = refused(|config| {
        config
            .client
            .insert("ssl.ca.location".into(), ca.display().to_string());
    })
    .await;
    assert!(message.contains("certificate verify failed"), "{message}");
}

#[test]
fn a_client_settings_file_is_read_and_a_bad_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("client.properties");
    std::fs::write(
        &good,
        "# the listener\nsecurity.protocol = SASL_SSL\n\nsasl.password=a=b\n",
    )
    .unwrap();
    let settings = alliance_eventlog_kafka::client_settings_file(&good).unwrap();
    assert_eq!(settings.len(), 2);
    assert_eq!(settings["security.protocol"], "SASL_SSL");
    assert_eq!(settings["sasl.password"], "a=b");

    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, "security.protocol=SASL_SSL\nsasl.password\n").unwrap();
    let error = alliance_eventlog_kafka::client_settings_file(&bad).unwrap_err();
    assert!(error.contains("line 2"), "{error}");
    let missing = alliance_eventlog_kafka::client_settings_file(&dir.path().join("none"));
    assert!(missing.unwrap_err().contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_with_a_wrong_password_says_why() {
    use alliance_eventlog::{Checkpoint, LogReader};
    let mut config = secure_config(&topic());
    config.timeout = Duration::from_secs(10);
    config
        .client
        .insert("sasl.password".into(), "not-the-password".into());
    let reader = alliance_eventlog_kafka::TopicReader::new(config);
    match reader.remaining(&Checkpoint::default()).await {
        Err(LogError::Unavailable(message)) => {
            assert!(message.contains("Authentication failed"), "{message}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn a_config_shown_for_debugging_hides_its_secrets() {
    let mut config = KafkaLogConfig::new("kafka:9093", "alliance.events");
    for (key, value) in [
        ("security.protocol", "sasl_ssl"),
        ("sasl.username", "alliance"),
        ("sasl.password", "hunter2-sasl"),
        ("ssl.key.password", "hunter2-key"),
        ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----hunter2"),
        ("sasl.oauthbearer.client.secret", "hunter2-oidc"),
    ] {
        config.client.insert(key.into(), value.into());
    }
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("sasl_ssl") && shown.contains("alliance"),
        "{shown}"
    );
}

/// Runs the project's `deploy/kafka/kafka.sh` with `args` (against the broker at `broker`,
/// given one), fails the test unless it succeeds, and returns what it printed.
fn kafka_script(args: &[&str], broker: Option<String>) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kafka/kafka.sh");
    let mut command = std::process::Command::new("bash");
    command.arg(script).args(args);
    if let Some(broker) = broker {
        command.env("ALLIANCE_KAFKA_BOOTSTRAP", broker);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Grows `topic` to `count` partitions with the broker's own tool (`kafka-topics.sh --alter`).
fn add_partitions(topic: &str, count: u32) {
    kafka_script(
        &["add-partitions", topic, &count.to_string()],
        Some(bootstrap()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_partitions_stops_the_writes_instead_of_moving_plans() {
    let topic = topic();
    let fixed = |owned: Vec<i32>| {
        let mut config = config(&topic);
        config.owned = Some(owned);
        config
    };
    let running = KafkaLog::open(fixed(vec![0, 1, 2])).await.unwrap();
    // Plans in every partition.
    let plans: Vec<uuid::Uuid> = (0..12).map(|_| uuid::Uuid::now_v7()).collect();
    for (i, plan) in plans.iter().enumerate() {
        let command = format!("create-{i}");
        running
            .append(*plan, 0, vec![event(&command)])
            .await
            .unwrap();
    }
    // One of them would map elsewhere with 4 partitions.
    let moved = *plans
        .iter()
        .find(|p| partition_of(**p, 3) != partition_of(**p, 4))
        .expect("a plan that moves with a fourth partition");

    add_partitions(&topic, 4);

    // The running instance notices and refuses to write, naming the change.
    let refusal = running.check_partitions().unwrap_err().to_string();
    for needed in [&topic, "4 partitions", "3"] {
        assert!(refusal.contains(needed), "{refusal}");
    }
    match running.append(moved, 1, vec![event("second")]).await {
        Err(LogError::Unavailable(message)) => {
            assert!(message.contains("4 partitions"), "{message}")
        }
        other => panic!("a write after the partitions changed must be refused, got {other:?}"),
    }

    // A new instance (which sees 4 partitions) refuses to start on records written with 3.
    match KafkaLog::open(fixed(vec![0, 1, 2, 3])).await {
        Err(LogError::Unavailable(message)) => {
            assert!(message.contains("written with 3 partitions"), "{message}");
        }
        Ok(_) => panic!("an instance started after the partitions changed must refuse to write"),
        Err(other) => panic!("{other}"),
    }
    // Nothing was written after the change.
    assert_eq!(consume_committed(&topic, 4).len(), plans.len());
}

/// The broker's storage is formatted with a new cluster id each time the script starts it from
/// nothing; the storage tool takes an id starting with '-' for an option and refuses to format,
/// which one id in 64 used to do.
#[test]
fn no_new_cluster_id_is_taken_for_an_option() {
    let ids: Vec<String> = kafka_script(&["cluster-id", "2000"], None)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 2000);
    for id in &ids {
        // 16 random bytes in URL-safe base64, unpadded.
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert!(!id.starts_with('-'), "{id}");
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
}
