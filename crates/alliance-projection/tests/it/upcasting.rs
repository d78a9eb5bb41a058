//! A history written under an older schema version, committed as the bytes that build stored
//! (`crates/alliance-record/fixtures/schema-1`), is read by every reader of this build through
//! the upcasters: it verifies as stored, folds to the plan its commands make today, serves the
//! same posture from the read models, and the command service continues it.

use std::path::PathBuf;
use std::sync::Arc;

use alliance_commands::reference::ReferencePlan;
use alliance_domain::{CapabilityArea, Command, Event, Plan, SCHEMA_VERSION, Side, Step};
use alliance_eventlog::{EventLog, NewEvent, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_projection::{RecordPoint, verify_plan};
use alliance_proto::v1;
use alliance_proto::v1::event_envelope::Payload;
use alliance_record::decode_event;
use alliance_record::signing::{TrustedKey, TrustedKeys, public_key_from_pem};
use prost::Message;

use crate::harness::{Env, ROK, date};

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../alliance-record/fixtures/schema-1")
        .join(file)
}

/// One line of a fixture: a record as the log stored it.
#[derive(serde::Deserialize)]
struct Line {
    version: u64,
    event_id: uuid::Uuid,
    command_id: String,
    event_type: String,
    record_time_micros: i64,
    record: String,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn lines() -> Vec<Line> {
    std::fs::read_to_string(fixture("reference-plan.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The fixture's records appended to a fresh embedded log as they are, one command at a time.
async fn log_of(lines: &[Line]) -> (tempfile::TempDir, SqliteLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
    let plan_id = v1::EventEnvelope::decode(unhex(&lines[0].record).as_slice())
        .unwrap()
        .plan_id
        .parse()
        .unwrap();
    let mut at = 0;
    while at < lines.len() {
        let end = at
            + lines[at..]
                .iter()
                .take_while(|l| l.command_id == lines[at].command_id)
                .count();
        let batch = lines[at..end]
            .iter()
            .map(|l| NewEvent {
                event_id: l.event_id,
                command_id: l.command_id.clone(),
                event_type: l.event_type.clone(),
                record_time_micros: l.record_time_micros,
                payload: unhex(&l.record),
            })
            .collect();
        log.append(plan_id, lines[at].version - 1, batch)
            .await
            .unwrap();
        at = end;
    }
    (dir, log)
}

fn fixture_writer() -> TrustedKey {
    let pem = std::fs::read_to_string(fixture("writer.pub.pem")).unwrap();
    TrustedKey::always(public_key_from_pem(&pem, "writer.pub.pem").unwrap())
}

#[tokio::test]
async fn a_schema_1_history_replays_to_the_plan_its_commands_make_today_and_verifies() {
    let lines = lines();
    let (_dir, log) = log_of(&lines).await;
    let env = Env::on(log.clone()).await;
    let reference = ReferencePlan::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/reference-plan.json"),
    )
    .unwrap();
    let plan_id = reference.plan_id;
    let stored: Vec<StoredEvent> = log.read_plan(plan_id, 1, usize::MAX).await.unwrap();
    assert_eq!(stored.len(), lines.len());

    // Stored as that build wrote them: schema version 1, costs in whole millions.
    let mut costs = 0;
    for (record, line) in stored.iter().zip(&lines) {
        assert_eq!(record.payload, unhex(&line.record), "stored bytes changed");
        let raw = v1::EventEnvelope::decode(record.payload.as_slice()).unwrap();
        assert_eq!(raw.schema_version, 1);
        let decoded = decode_event(record).unwrap();
        assert_eq!(decoded.written_schema, 1);
        assert_eq!(decoded.envelope.schema_version, SCHEMA_VERSION);
        // The upcast view: the cost in thousands, what the millions meant.
        if let Some(Payload::CapabilityInvestmentPlanned(old)) = &raw.payload {
            assert!(old.cost_musd > 0 && old.cost_kusd == 0, "{old:?}");
            let Event::StepPlanned {
                step: Step::InvestCapability { cost_kusd, .. },
                ..
            } = decoded.event
            else {
                panic!("{} decoded as {:?}", raw.event_type, decoded.event)
            };
            assert_eq!(cost_kusd, old.cost_musd * 1_000);
            costs += 1;
        }
    }
    assert_eq!(costs, 18, "the reference plan's investments");

    // Folded, it is the plan the reference plan's commands make with this build.
    let events: Vec<Event> = stored
        .iter()
        .map(|s| decode_event(s).unwrap().event)
        .collect();
    let replayed = alliance_domain::fold(Plan::default(), &events);
    let expected = reference.fold(&env.auth).unwrap();
    assert!(
        replayed == expected,
        "the replayed plan differs from today's"
    );

    // The read models answer the same posture.
    let projection = env.caught_up().await;
    for year in [2026, 2029, 2031, 2035] {
        let on = date(year, 1, 1);
        assert_eq!(
            projection
                .posture(plan_id, on, RecordPoint::Latest, false)
                .unwrap(),
            alliance_domain::posture(&expected, on, false),
            "posture on {on}"
        );
    }

    // The chain and every signature verify over the bytes as stored.
    let trusted = Arc::new(TrustedKeys::new([fixture_writer()]));
    let verified = verify_plan(&log, plan_id, &trusted).await.unwrap().unwrap();
    assert!(verified.first_break.is_none(), "{:?}", verified.first_break);
    assert_eq!(verified.head.events, lines.len() as u64);
    assert_eq!(verified.head.unsigned_through, 0);

    // The command service continues the history: a record of the current version chained to
    // the old ones, the whole verifying under the old writer's key and the new one's.
    let outcome = env
        .exec(
            ROK,
            plan_id,
            Command::RecordCapabilityLevel {
                side: Side::Rok,
                area: CapabilityArea::MissileDefense,
                level: 55,
                as_of: date(2027, 1, 1),
            },
        )
        .await;
    assert_eq!(outcome.plan_version, lines.len() as u64 + 1);
    let last = log
        .read_plan(plan_id, outcome.plan_version, 1)
        .await
        .unwrap();
    assert_eq!(
        decode_event(&last[0]).unwrap().written_schema,
        SCHEMA_VERSION
    );
    let both = Arc::new(TrustedKeys::new([
        fixture_writer(),
        TrustedKey::always(env.signer.verifying_key()),
    ]));
    let verified = verify_plan(&log, plan_id, &both).await.unwrap().unwrap();
    assert!(verified.first_break.is_none(), "{:?}", verified.first_break);
    assert_eq!(verified.head.events, outcome.plan_version);
}
