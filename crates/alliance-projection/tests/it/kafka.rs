//! The read models on Apache Kafka: built by reading every partition of the topic, restored
//! from a snapshot that names each partition's offset, and following the topic live.

use std::time::Duration;

use alliance_domain::{Command, PlanId, Side};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader};
use alliance_projection::Projection;

use crate::harness::{Env, US, assert_chain_holds, date, element};

fn config() -> KafkaLogConfig {
    let topic = format!("alliance-projection-test-{}", uuid::Uuid::now_v7());
    let mut config = KafkaLogConfig::new(alliance_eventlog_kafka::local_broker().unwrap(), &topic);
    config.partitions = 3;
    config.owned = Some(vec![0, 1, 2]);
    config.transactional_prefix = topic;
    config
}

async fn env(config: &KafkaLogConfig) -> Env<KafkaLog> {
    Env::on(KafkaLog::open(config.clone()).await.unwrap()).await
}

/// Registers the element `name` in `plan` and waits until `model` has read it: the version
/// that did.
async fn registered(env: &Env<KafkaLog>, model: &Projection, plan: PlanId, name: &str) -> u64 {
    let version = env.register(plan, name).await;
    model
        .wait_for(plan, version, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(model.plan_version(plan), version);
    version
}

/// Writes `record` as the event at `version` of `plan` straight onto the topic, behind the
/// writer's back: where it landed, its partition and offset.
async fn produce_behind(
    config: &KafkaLogConfig,
    plan: PlanId,
    version: u64,
    record: &alliance_eventlog::NewEvent,
) -> (i32, i64) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap)
        .create()
        .unwrap();
    let key = plan.to_string();
    let headers =
        alliance_eventlog_kafka::record_headers(plan, version, record, None, config.partitions);
    let delivery = producer
        .send(
            FutureRecord::to(&config.topic)
                .key(&key)
                .payload(&record.payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    (delivery.partition, delivery.offset)
}

/// A fresh topic with one plan, and a read model caught up with it and following it.
struct Followed {
    config: KafkaLogConfig,
    env: Env<KafkaLog>,
    plan: PlanId,
    reader: TopicReader,
    model: std::sync::Arc<Projection>,
}

async fn followed() -> Followed {
    let config = config();
    let env = env(&config).await;
    let plan = env.create_plan().await;
    let reader = TopicReader::new(config.clone());
    let model = Projection::new();
    model.catch_up(&reader).await.unwrap();
    tokio::spawn(model.clone().follow(reader.clone()));
    Followed {
        config,
        env,
        plan,
        reader,
        model,
    }
}

#[tokio::test]
async fn snapshot_plus_the_topic_s_tail_equals_a_full_read_and_a_foreign_topic_is_refused() {
    let config = config();
    let env = env(&config).await;
    let (reference, entries) = env.load_reference().await;
    let mut plans = vec![reference];
    for _ in 0..4 {
        plans.push(env.create_plan().await);
    }
    let partitions: std::collections::BTreeSet<i32> = plans
        .iter()
        .map(|p| alliance_eventlog_kafka::partition_of(*p, 3))
        .collect();
    assert!(partitions.len() > 1, "the plans span several partitions");
    for (n, plan) in plans.iter().enumerate() {
        env.register(*plan, &format!("before-{n}")).await;
    }
    let reader = TopicReader::new(config.clone());

    let first = Projection::new();
    let read = first.catch_up(&reader).await.unwrap();
    let written: u64 = plans.iter().map(|p| first.plan_version(*p)).sum();
    assert_eq!(read, written);
    assert!(first.plan_version(reference) > entries as u64);
    let checkpoint = first.checkpoint();
    assert_eq!(
        checkpoint.partitions.keys().copied().collect::<Vec<_>>(),
        partitions.iter().copied().collect::<Vec<_>>(),
        "the checkpoint names each partition read"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-model.snapshot");
    first.write_snapshot(&path).unwrap();

    // The topic grows after the snapshot, in every partition.
    for (n, plan) in plans.iter().enumerate() {
        env.register(*plan, &format!("after-{n}")).await;
    }

    let restored = Projection::restore(&path, &reader).await.unwrap();
    assert_eq!(restored.digest(), first.digest());
    assert_eq!(restored.checkpoint(), checkpoint);
    let tail = restored.catch_up(&reader).await.unwrap();
    assert_eq!(tail, plans.len() as u64, "only the tail is read");
    let full = Projection::new();
    full.catch_up(&reader).await.unwrap();
    assert_eq!(restored.digest(), full.digest());
    assert_ne!(full.digest(), first.digest());

    // A snapshot of this topic is refused on another one.
    let other = another_topic().await;
    let refused = Projection::restore(&path, &TopicReader::new(other)).await;
    assert!(refused.is_err(), "a snapshot of another topic was accepted");
}

/// Another topic, with a plan of its own.
async fn another_topic() -> KafkaLogConfig {
    let other = config();
    env(&other).await.create_plan().await;
    other
}

#[tokio::test]
async fn a_model_following_the_topic_sees_each_commit_and_keeps_following_after_a_rebuild() {
    let Followed {
        env,
        plan,
        reader,
        model,
        ..
    } = followed().await;

    let version = registered(&env, &model, plan, "live-1").await;

    let rebuilt = model.rebuild(&reader, &mut |_| {}).await.unwrap();
    assert_eq!(rebuilt.events, version);
    let other = env.create_plan().await;
    let next = env.register(plan, "live-2").await;
    let other_version = env.register(other, "live-3").await;
    model
        .wait_for(plan, next, Duration::from_secs(20))
        .await
        .unwrap();
    model
        .wait_for(other, other_version, Duration::from_secs(20))
        .await
        .unwrap();
    let full = Projection::new();
    full.catch_up(&reader).await.unwrap();
    assert_eq!(model.digest(), full.digest());
}

#[tokio::test]
async fn the_chain_verifies_over_the_topic_and_a_record_forged_onto_it_is_found() {
    use alliance_projection::verify_plan;
    use alliance_record::chain::{self, BreakKind};
    use prost::Message;

    let config = config();
    let env = env(&config).await;
    let (reference, _) = env.load_reference().await;
    let reader = TopicReader::new(config.clone());
    let verified = verify_plan(&reader, reference, &env.trusted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.first_break, None);
    assert_eq!(
        verified.head.events,
        alliance_eventlog::EventLog::plan_version(&env.log, reference)
            .await
            .unwrap()
    );

    // A valid-looking record produced straight onto the topic: version 3 again, with another
    // command id, decodable and carrying a hash that matches its own content.
    let stored = alliance_eventlog::EventLog::read_plan(&env.log, reference, 3, 1)
        .await
        .unwrap()
        .remove(0);
    let mut envelope =
        alliance_proto::v1::EventEnvelope::decode(stored.payload.as_slice()).unwrap();
    envelope.command_id = "forged".into();
    let prev: chain::Hash = envelope.prev_hash.as_slice().try_into().unwrap();
    envelope.hash.clear();
    let (payload, _) = chain::seal(envelope, &prev);
    let forged = alliance_eventlog::NewEvent {
        event_id: uuid::Uuid::now_v7(),
        command_id: "forged".into(),
        event_type: stored.event_type.clone(),
        record_time_micros: stored.record_time_micros,
        payload,
    };
    let (partition, offset) = produce_behind(&config, reference, 3, &forged).await;

    // A long history verifies too: 600 more commands, in transactions of many.
    let long = env.create_plan().await;
    let appends = (0..600).map(|n| {
        env.exec(
            US,
            long,
            Command::RegisterForceElement {
                element: element(&format!("long-{n}"), Side::Us, 100),
                present_from: date(2024, 1, 1),
            },
        )
    });
    futures::future::join_all(appends).await;
    assert_chain_holds(&reader, long, &env.trusted, 601).await;

    let found = verify_plan(&reader, reference, &env.trusted)
        .await
        .unwrap()
        .unwrap();
    let (at, origin) = found.first_break.expect("the forged record is found");
    assert_eq!((at.kind, at.version), (BreakKind::OutOfPlace, 3));
    let origin = origin.unwrap();
    assert_eq!((origin.partition, origin.offset), (partition, offset));
    assert_eq!(found.head, verified.head, "everything before it verified");
}

/// On Kafka the lag is per partition: the offset read against the high watermark. A reader
/// that has read every record is 0 behind, although each transaction's commit marker keeps it
/// one offset short of the watermark; new records are counted one by one.
#[tokio::test]
async fn the_lag_is_0_after_a_full_read_and_counts_each_record_not_read() {
    use alliance_eventlog::LogReader;

    let config = config();
    let env = env(&config).await;
    let plans = [env.create_plan().await, env.create_plan().await];
    for (n, plan) in plans.iter().enumerate() {
        env.register(*plan, &format!("lag-{n}")).await;
    }
    let reader = TopicReader::new(config.clone());
    let model = Projection::new();
    model.catch_up(&reader).await.unwrap();

    let lag = reader.lag(&model.checkpoint()).await.unwrap();
    assert_eq!(lag.remaining, 0, "{lag:?}");
    assert_eq!(
        lag.partitions
            .iter()
            .map(|p| p.partition)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for p in &lag.partitions {
        assert_eq!(p.remaining, 0, "{p:?}");
        assert!(p.next_offset <= p.high_watermark, "{p:?}");
    }
    assert!(
        lag.partitions
            .iter()
            .any(|p| p.next_offset < p.high_watermark),
        "commit markers after the last records read: {lag:?}"
    );

    // Three more records, not read.
    env.register(plans[0], "lag-2").await;
    env.register(plans[0], "lag-3").await;
    env.register(plans[1], "lag-4").await;
    let behind = reader.lag(&model.checkpoint()).await.unwrap();
    assert_eq!(behind.remaining, 3, "{behind:?}");
    let of = |plan| alliance_eventlog_kafka::partition_of(plan, 3);
    let on = |partition| {
        behind
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .unwrap()
            .remaining
    };
    if of(plans[0]) == of(plans[1]) {
        assert_eq!(on(of(plans[0])), 3);
    } else {
        assert_eq!((on(of(plans[0])), on(of(plans[1]))), (2, 1));
    }
    model.catch_up(&reader).await.unwrap();
    assert_eq!(reader.lag(&model.checkpoint()).await.unwrap().remaining, 0);
}

/// A poison record on the topic (one that is not a record of ours at all, one whose headers
/// are fine but whose envelope does not decode) is quarantined: reported with where it is, and
/// the records after it are read and applied.
#[tokio::test]
async fn a_poison_record_is_quarantined_while_later_records_are_processed() {
    use alliance_eventlog::LogReader;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let Followed {
        config,
        env,
        plan,
        reader,
        model,
    } = followed().await;

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap)
        .create()
        .unwrap();
    let key = plan.to_string();
    let send = |record: FutureRecord<'_, String, [u8]>| {
        let delivered = producer.send_result(record).map_err(|(e, _)| e).unwrap();
        async move {
            let delivery = delivered.await.unwrap().unwrap();
            (delivery.partition, delivery.offset)
        }
    };
    // In the plan's own partition, as its writer places its records, so that they come before
    // the record registered below. (The client's default partitioner would place them by its
    // own hash, possibly in another partition, read in no fixed order against this one.)
    let partition = alliance_eventlog_kafka::partition_of(plan, config.partitions);
    let garbage: &[u8] = b"\x00\xffnot a record of this topic";
    let no_headers = send(
        FutureRecord::to(&config.topic)
            .key(&key)
            .partition(partition)
            .payload(garbage),
    )
    .await;
    let undecodable = alliance_eventlog::NewEvent {
        event_id: uuid::Uuid::now_v7(),
        command_id: "poison".into(),
        event_type: "ForceElementRegistered".into(),
        record_time_micros: 1,
        payload: b"\x0a\xff\xff\xff\xff".to_vec(),
    };
    let bad_envelope = send(
        FutureRecord::to(&config.topic)
            .key(&key)
            .partition(partition)
            .payload(undecodable.payload.as_slice())
            .headers(alliance_eventlog_kafka::record_headers(
                plan,
                2,
                &undecodable,
                None,
                config.partitions,
            )),
    )
    .await;

    // The records after them are read and applied.
    registered(&env, &model, plan, "after-the-poison").await;

    let (total, records) = model.quarantined(&reader);
    assert_eq!(total, 2, "{records:?}");
    let at = |place| quarantined_at(&records, place);
    assert!(
        at(no_headers).reason.contains("header"),
        "{:?}",
        at(no_headers)
    );
    assert!(
        at(bad_envelope).reason.contains("envelope"),
        "{:?}",
        at(bad_envelope)
    );
    // Read again (a rebuild), they are not counted twice.
    let again = Projection::new();
    again.catch_up(&reader).await.unwrap();
    assert_eq!(reader.quarantined().0, 1);
}

/// Forgeries lose: records produced straight onto the topic, correctly chained after the plan's
/// last event, but unsigned, signed by a key nobody trusts, or claiming the writer's key with a
/// signature that does not verify, arrive before the genuine record at that version. A read
/// model that trusts the writers' keys quarantines each, naming where it is and why, and
/// applies the genuine record.
#[tokio::test]
async fn forged_records_ahead_of_the_genuine_one_are_quarantined_and_the_genuine_one_stands() {
    use alliance_domain::{Actor, Event, TeamId};
    use alliance_eventlog::{EventLog, LogReader};
    use alliance_record::chain;
    use alliance_record::signing::Signer;
    use prost::Message;

    let config = config();
    let env = env(&config).await;
    let plan = env.create_plan().await;
    let version = env.register(plan, "before").await;
    let reader = TopicReader::new(config.clone());
    let model = Projection::trusting(env.trusted.clone());
    model.catch_up(&reader).await.unwrap();
    tokio::spawn(model.clone().follow(reader.clone()));

    // The next version, as a forger with Write on the topic makes it: chained to the plan's
    // last record, under a ROK actor.
    let last = env.log.read_plan(plan, version, 1).await.unwrap().remove(0);
    let prev = chain::carried_hash(&last.payload).unwrap();
    let rok = Actor {
        team: TeamId::parse(crate::harness::ROK).unwrap(),
        user: "forger".into(),
        side: Some(Side::Rok),
    };
    let forge = |command_id: &str| {
        let event = Event::ForceElementRegistered {
            element: element("forged", Side::Rok, 9_000),
            present_from: date(2024, 1, 1),
        };
        let micros = chrono::Utc::now().timestamp_micros();
        alliance_record::envelope::encode_event(
            plan,
            version + 1,
            &event,
            &rok,
            command_id,
            micros,
            &prev,
        )
        .0
    };
    let unsigned = forge("forged-unsigned");
    let stranger = Signer::generate().unwrap();
    let mut unknown_key = forge("forged-unknown-key");
    let envelope =
        alliance_proto::v1::EventEnvelope::decode(unknown_key.payload.as_slice()).unwrap();
    unknown_key.payload = chain::seal_signed(envelope, &prev, Some(&stranger)).0;
    // Claims the writer's key; the signature is the stranger's.
    let mut bad_signature = forge("forged-bad-signature");
    let envelope =
        alliance_proto::v1::EventEnvelope::decode(bad_signature.payload.as_slice()).unwrap();
    bad_signature.payload = chain::seal_signed(envelope, &prev, Some(&stranger)).0;
    let at = bad_signature.payload.len() - 64 - 3 - 8;
    bad_signature.payload[at..at + 8].copy_from_slice(&env.signer.id().0);

    let mut offsets = Vec::new();
    for forged in [&unsigned, &unknown_key, &bad_signature] {
        offsets.push(produce_behind(&config, plan, version + 1, forged).await);
    }

    // The genuine record at that version, after them.
    let genuine_version = env.register(plan, "genuine").await;
    assert_eq!(genuine_version, version + 1);
    let genuine = env
        .log
        .read_plan(plan, genuine_version, 1)
        .await
        .unwrap()
        .remove(0);
    model
        .wait_for(plan, genuine_version, Duration::from_secs(20))
        .await
        .unwrap();
    let (applied, elements) = model
        .with_plan(plan, |h| {
            let state = h.latest();
            (
                h.events[genuine_version as usize - 1].clone(),
                state
                    .elements
                    .keys()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
            )
        })
        .unwrap();
    assert_eq!(applied.event_id, genuine.event_id, "{applied:?}");
    assert_eq!(applied.command.command_id(), genuine.command_id);
    assert!(
        elements.contains(&"genuine".to_owned()) && !elements.contains(&"forged".to_owned()),
        "{elements:?}"
    );

    // Each forgery is quarantined, named where it is and why.
    let (total, records) = model.quarantined(&reader);
    assert_eq!(total, 3, "{records:?}");
    let reason = |place| quarantined_at(&records, place).reason.clone();
    let unsigned_reason = reason(offsets[0]);
    assert!(
        unsigned_reason.contains("unsigned")
            && unsigned_reason.contains(&unsigned.event_id.to_string()),
        "{unsigned_reason}"
    );
    assert!(
        reason(offsets[1]).contains("not trusted"),
        "{}",
        reason(offsets[1])
    );
    assert!(
        reason(offsets[2]).contains("does not verify"),
        "{}",
        reason(offsets[2])
    );
    // The reader itself set nothing aside: these are the read model's findings.
    assert_eq!(reader.quarantined().0, 0);
}

/// `ReadModelAdmin/Status` on a topic answers from lag figures taken at most once per
/// [`alliance_projection::LAG_REFRESH`], whoever calls and however many at once, says when
/// they were taken, and takes them again once they are that old.
#[tokio::test(flavor = "multi_thread")]
async fn status_takes_the_topic_s_lag_at_most_once_per_refresh_whoever_asks() {
    use alliance_proto::v1;
    use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;

    let config = config();
    let env = env(&config).await;
    let plans = [env.create_plan().await, env.create_plan().await];
    let address = crate::harness::serve_log(
        TopicReader::new(config.clone()),
        &env.auth,
        env.trusted.clone(),
    )
    .await;
    let channel = alliance_tests::server::channel(&address).await;
    let status = |channel: tonic::transport::Channel| async move {
        let mut request = tonic::Request::new(v1::StatusRequest {});
        request
            .metadata_mut()
            .insert("authorization", "Bearer dev-auditors".parse().unwrap());
        request.set_timeout(Duration::from_secs(20));
        ReadModelAdminClient::new(channel)
            .status(request)
            .await
            .unwrap()
            .into_inner()
    };
    let taken = |reply: &v1::ReadModelStatus| {
        let at = reply.lag_time.expect("when the lag was taken");
        (at.seconds, at.nanos)
    };

    // Many at once: the figures are taken once per refresh, not once per call.
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..48)
        .map(|_| tokio::spawn(status(channel.clone())))
        .collect();
    let mut times = std::collections::BTreeSet::new();
    for call in calls {
        let reply = call.await.unwrap();
        assert_eq!(reply.lag, 0, "{reply:?}");
        assert_eq!(reply.lag_error, "");
        let age = reply.lag_age.expect("how old the lag is");
        assert!(age.seconds < 60, "{age:?}");
        times.insert(taken(&reply));
    }
    let refreshes =
        started.elapsed().as_secs_f64() / alliance_projection::LAG_REFRESH.as_secs_f64();
    assert!(
        times.len() as f64 <= 1.0 + refreshes.ceil(),
        "48 calls over {refreshes:.1} refresh periods took the lag {} times",
        times.len()
    );

    // Three more records: once the figures are older than the write, they count them.
    let written = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    env.register(plans[0], "status-lag-1").await;
    env.register(plans[0], "status-lag-2").await;
    env.register(plans[1], "status-lag-3").await;
    let mut after = None;
    for _ in 0..200 {
        let reply = status(channel.clone()).await;
        let (seconds, nanos) = taken(&reply);
        if Duration::new(seconds as u64, nanos as u32) > written {
            after = Some(reply);
            break;
        }
        // The figures are at most a refresh old: asked again a little later.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("the lag was never taken again");
    assert_eq!(after.lag, 3, "{after:?}");
    assert_eq!(after.partitions.iter().map(|p| p.lag).sum::<u64>(), 3);
}

/// The quarantined record that was read at `partition`/`offset`.
#[track_caller]
fn quarantined_at(
    records: &[alliance_eventlog::Quarantined],
    (partition, offset): (i32, i64),
) -> &alliance_eventlog::Quarantined {
    records
        .iter()
        .find(|r| r.origin == Some(alliance_eventlog::TopicOffset { partition, offset }))
        .unwrap_or_else(|| panic!("{partition}/{offset} not quarantined: {records:?}"))
}
