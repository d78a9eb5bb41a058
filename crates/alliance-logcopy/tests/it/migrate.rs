//! A history moved from the embedded log to a Kafka topic and back, record for record, on the
//! project's broker; each leg cut short and resumed; a target holding anything else refused.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use alliance_commands::CommandService;
use alliance_commands::reference::{self, ReferencePlan};
use alliance_domain::testing::date;
use alliance_domain::{
    Actor, Component, ElementId, ElementKind, Event, ForceElementSpec, Side, TeamId,
};
use alliance_eventlog::{EventLog, PlanId, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader, local_broker};
use alliance_logcopy::{CopyError, Migration, inventory, migrate};
use alliance_record::chain::{self, Verifier};
use alliance_record::encode_event;
use alliance_record::signing::{Signer, TrustedKey, TrustedKeys};
use alliance_server::{Authenticator, TokenFile};

/// The generated part of the history: 100,000 events over 20 plans.
const GENERATED: u64 = 100_000;
const PLANS: u64 = 20;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn sqlite(dir: &tempfile::TempDir, name: &str) -> SqliteLog {
    SqliteLog::open(SqliteLogConfig::new(dir.path().join(name))).unwrap()
}

fn topic() -> KafkaLogConfig {
    let topic = format!("logcopy-{}", uuid::Uuid::now_v7());
    let mut config = KafkaLogConfig::new(local_broker().unwrap(), &topic);
    config.partitions = 4;
    config.transactional_prefix = topic;
    config.owned = Some(vec![0, 1, 2, 3]);
    config
}

/// Writes `events` events over `plans` plans (ids from `seed`), unsigned; every tenth command
/// records three events, the rest one.
async fn generate(log: &SqliteLog, seed: u128, plans: u64, events: u64) {
    let actor = Actor {
        team: TeamId::parse("us-force-planning").unwrap(),
        user: "generator".into(),
        side: Some(Side::Us),
    };
    let per_plan = events / plans;
    for p in 0..plans {
        let plan_id = PlanId::from_u128(seed << 64 | u128::from(p));
        let mut head = chain::GENESIS;
        let mut appends = Vec::new();
        let mut version = 0;
        let mut command = 0;
        while version < per_plan {
            command += 1;
            let size = if command % 10 == 0 {
                3.min(per_plan - version)
            } else {
                1
            };
            let command_id = format!("gen-{seed}-{p}-{command}");
            let mut records = Vec::new();
            for _ in 0..size {
                version += 1;
                let event = Event::ForceElementRegistered {
                    element: ForceElementSpec {
                        id: ElementId::parse(&format!("element-{version}")).unwrap(),
                        name: format!("element {version}").into(),
                        side: Side::Us,
                        component: Component::Army,
                        kind: ElementKind::GroundCombatBrigade,
                        personnel: 500,
                        equipment: Default::default(),
                        base: "Camp Humphreys".into(),
                    },
                    present_from: date(2024, 1, 1),
                };
                let micros = 1_780_000_000_000_000 + i64::try_from(version).unwrap() * 1_000;
                let (record, hash) =
                    encode_event(plan_id, version, &event, &actor, &command_id, micros, &head);
                head = hash;
                records.push(record);
            }
            appends.push(log.append(plan_id, version - size, records));
        }
        for append in appends {
            append.await.unwrap();
        }
    }
}

/// The reference plan through the command service, signed by `signer`.
async fn load_reference(log: &SqliteLog, signer: &Signer) -> PlanId {
    let service = CommandService::open(log.clone())
        .await
        .unwrap()
        .with_signer(signer.clone());
    let auth =
        Authenticator::from_token_file(&TokenFile::load(&deploy("dev-tokens.toml")).unwrap())
            .unwrap();
    let plan = ReferencePlan::read(&deploy("reference-plan.json")).unwrap();
    reference::load(&service, &auth, &plan).await.unwrap();
    plan.plan_id
}

/// A migration that stops after copying `records` records.
fn stopping_after(records: u64) -> Migration {
    Migration {
        stop_after: Some(records),
        ..Migration::default()
    }
}

/// What a record is, apart from where a log put it.
fn as_stored(records: Vec<StoredEvent>) -> Vec<(u64, uuid::Uuid, String, String, i64, Vec<u8>)> {
    records
        .into_iter()
        .map(|r| {
            (
                r.version,
                r.event_id,
                r.command_id,
                r.event_type,
                r.record_time_micros,
                r.payload,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_history_moves_to_kafka_and_back_record_for_record_resuming_where_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db");
    let signer = Signer::generate().unwrap();
    let reference = load_reference(&source, &signer).await;
    generate(&source, 0x1, PLANS, GENERATED).await;
    let total = source.read_all(1, usize::MAX).await.unwrap().len() as u64;
    assert!(total > GENERATED);

    // The embedded log to a topic, cut short, then resumed.
    let config = topic();
    let kafka = KafkaLog::open(config.clone()).await.unwrap();
    let reader = TopicReader::new(config.clone());
    let cut = migrate(&source, &kafka, &reader, &stopping_after(40_000))
        .await
        .unwrap();
    assert!(!cut.complete);
    assert!((40_000..40_010).contains(&cut.copied), "{cut:?}");
    let resumed = migrate(&source, &kafka, &reader, &Migration::default())
        .await
        .unwrap();
    assert!(resumed.complete);
    assert_eq!(resumed.already_present, cut.copied);
    assert_eq!(resumed.copied + resumed.already_present, total);
    // No record twice: as many as the source, each event id once.
    let on_topic = inventory(&TopicReader::new(config.clone())).await.unwrap();
    assert_eq!(on_topic, resumed.source);
    assert_eq!(on_topic.events, total);

    // The topic back to a new embedded log, cut short and resumed too.
    let back = sqlite(&dir, "back.db");
    let cut = migrate(&reader, &back, &back, &stopping_after(30_000))
        .await
        .unwrap();
    assert!(!cut.complete);
    let resumed = migrate(&reader, &back, &back, &Migration::default())
        .await
        .unwrap();
    assert!(resumed.complete);
    assert_eq!(resumed.copied + resumed.already_present, total);
    assert_eq!(
        inventory(&back).await.unwrap(),
        inventory(&source).await.unwrap()
    );
    let ids: BTreeSet<_> = back
        .read_all(1, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ids.len() as u64, total);

    // Every plan's records byte for byte: ids, versions, commands, types, record times, and
    // the records themselves (actors, seals, signatures).
    for plan in inventory(&source).await.unwrap().plans.keys() {
        assert_eq!(
            as_stored(back.read_plan(*plan, 1, usize::MAX).await.unwrap()),
            as_stored(source.read_plan(*plan, 1, usize::MAX).await.unwrap()),
            "plan {plan}"
        );
    }
    // The reference plan's signatures still hold, every one.
    let trusted = Arc::new(TrustedKeys::new([TrustedKey::always(
        signer.verifying_key(),
    )]));
    let mut verifier = Verifier::trusting(trusted).every_signature();
    let records = back.read_plan(reference, 1, usize::MAX).await.unwrap();
    for record in &records {
        verifier.check(record).unwrap();
    }
    let head = verifier.finish().unwrap();
    assert_eq!(head.events, records.len() as u64);
    assert_eq!(head.unsigned_through, 0);
}

#[tokio::test]
async fn a_target_holding_other_data_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db");
    generate(&source, 0x2, 2, 100).await;

    for (file, seed, refusal) in [
        // Another plan altogether.
        ("other.db", 0x3, "not one of those copied"),
        // The same plan with another history (other event ids, so other records).
        ("diverged.db", 0x2, "is not the source's record"),
    ] {
        let target = sqlite(&dir, file);
        generate(&target, seed, 1, 10).await;
        let error = migrate(&source, &target, &target, &Migration::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CopyError::TargetHoldsOther(found) if found[0].contains(refusal)),
            "{file}: {error}"
        );
        assert_eq!(target.read_all(1, usize::MAX).await.unwrap().len(), 10);
    }
}
