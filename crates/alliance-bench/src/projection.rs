//! The read models at scale: a generated history written to the embedded log, rebuilt into a
//! projection (events/s), then posture queries at random (valid, record) pairs in-process and
//! over gRPC, 120-month series, and resident memory.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use alliance_domain::{
    Actor, CapabilityArea, Component, ConditionId, ConditionStatus, Date, DecisionId, ElementId,
    ElementKind, Event, ForceElementSpec, PlanId, Side, Step, TeamId,
};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_projection::{Projection, RecordPoint};
use hdrhistogram::Histogram;

/// Events per generated plan: a plan about the size of a real one, several times the reference.
const EVENTS_PER_PLAN: usize = 1_000;

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// A small deterministic generator (xorshift), so every run writes the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const KINDS: [ElementKind; 6] = [
    ElementKind::GroundCombatBrigade,
    ElementKind::CombatAviation,
    ElementKind::FieldArtillery,
    ElementKind::AirDefense,
    ElementKind::FighterSquadron,
    ElementKind::Logistics,
];
const AREAS: [CapabilityArea; 5] = [
    CapabilityArea::GroundCombat,
    CapabilityArea::CombatSupport,
    CapabilityArea::MissileDefense,
    CapabilityArea::Isr,
    CapabilityArea::Munitions,
];

fn id<T: TryFrom<String>>(s: String) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(s).expect("generated ids are valid")
}

/// One plan's events: elements, capability levels, conditions and their assessments, then
/// decisions (proposed, one dated step, endorsed by both sides, adopted), in that mix.
fn plan_events(plan_id: PlanId, rng: &mut Rng) -> Vec<Event> {
    let mut events = vec![Event::PlanCreated {
        plan_id,
        name: format!("generated {plan_id}"),
        description: String::new(),
        horizon_start: date(2020, 1, 1),
        horizon_end: date(2035, 12, 31),
        grants: Vec::new(),
    }];
    let elements = 150;
    for e in 0..elements {
        events.push(Event::ForceElementRegistered {
            element: ForceElementSpec {
                id: id::<ElementId>(format!("e{e}")),
                name: format!("unit {e}").into(),
                side: Side::Us,
                component: Component::Army,
                kind: KINDS[e % KINDS.len()],
                personnel: 500 + (rng.below(40) as u32) * 100,
                equipment: [("vehicles".to_owned(), 40)].into_iter().collect(),
                base: "Camp Humphreys".into(),
            },
            present_from: date(2020, 1, 1),
        });
    }
    for n in 0..30 {
        events.push(Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: AREAS[n % AREAS.len()],
            level: 30 + rng.below(40) as u32,
            as_of: date(2020 + (n / 5) as i32, 1, 1),
        });
    }
    for c in 0..10 {
        let condition_id = id::<ConditionId>(format!("c{c}"));
        events.push(Event::ConditionDefined {
            condition_id: condition_id.clone(),
            title: format!("condition {c}"),
            description: String::new(),
            area: Some(AREAS[c % AREAS.len()]),
            threshold: Some(70),
        });
        events.push(Event::ConditionAssessed {
            condition_id,
            assessed_on: date(2026, 1 + (c % 12) as u32, 1),
            status: ConditionStatus::PartiallyMet,
            value: Some(50),
            note: String::new(),
        });
    }
    let team = id::<TeamId>("us-force-planning".into());
    // The first 40 elements may leave (once each); the others move between bases.
    let leaving = 40;
    let mut next_to_leave = 0;
    let mut d = 0;
    while events.len() + 5 <= EVENTS_PER_PLAN {
        let decision_id = id::<DecisionId>(format!("d{d}"));
        let on = date(2026 + rng.below(9) as i32, 1 + rng.below(12) as u32, 1);
        let step = if next_to_leave < leaving && rng.below(4) == 0 {
            next_to_leave += 1;
            Step::WithdrawElement {
                element_id: id::<ElementId>(format!("e{}", next_to_leave - 1)),
                on,
            }
        } else {
            let element = leaving + rng.below((elements - leaving) as u64) as usize;
            Step::RelocateElement {
                element_id: id::<ElementId>(format!("e{element}")),
                to_base: if d % 2 == 0 { "Osan" } else { "Camp Humphreys" }.into(),
                on,
            }
        };
        events.push(Event::DecisionProposed {
            decision_id: decision_id.clone(),
            title: format!("decision {d}"),
            rationale: "generated".into(),
            owner_team: team.clone(),
            effective_date: on,
            required_sides: BTreeSet::from([Side::Us, Side::Rok]),
            supersedes: BTreeSet::new(),
        });
        events.push(Event::StepPlanned {
            decision_id: decision_id.clone(),
            step,
        });
        events.push(Event::DecisionEndorsed {
            decision_id: decision_id.clone(),
            side: Side::Us,
        });
        events.push(Event::DecisionEndorsed {
            decision_id: decision_id.clone(),
            side: Side::Rok,
        });
        events.push(Event::DecisionAdopted { decision_id });
        d += 1;
    }
    events
}

/// Resident memory of this process, in MiB.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub struct ProjectionFigures {
    pub events: u64,
    pub plans: usize,
    pub write_rate: f64,
    pub rebuild_rate: f64,
    /// The CPU time the rebuild took (every thread), in µs an event.
    pub rebuild_cpu_micros: f64,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub posture_in_process: (f64, f64),
    pub posture_grpc: (f64, f64),
    /// Queries/s and p99 (µs) of the same queries from 64 concurrent clients.
    pub posture_grpc_64: (f64, f64),
    pub series_in_process: (f64, f64),
    /// Rows/s of reading every event's row from the log's database in one sequential scan:
    /// the floor under a rebuild from the embedded log.
    pub raw_read_rate: f64,
    /// Events/s of verifying every plan's hash chain from the log (read, decode, hash, link).
    pub verify_rate: f64,
    /// Events/s of verifying every chain in one pass over the log, in log order.
    pub log_verify_rate: f64,
    /// Records/s of the hashing alone, on records already in memory.
    pub hash_rate: f64,
    /// Records/s of exporting every plan, and the resident memory it added (MiB).
    pub export_rate: f64,
    pub export_growth: f64,
}

/// Verifies every plan's chain from the log, then hashes every record again from memory.
async fn verify_all(
    log: &SqliteLog,
    plan_ids: &[PlanId],
    written: u64,
) -> anyhow::Result<Verified> {
    let started = Instant::now();
    let mut verified = 0;
    for plan in plan_ids {
        let found = alliance_projection::verify_plan(log, *plan, &Default::default())
            .await?
            .ok_or_else(|| anyhow::anyhow!("plan {plan} is not in the log"))?;
        anyhow::ensure!(
            found.first_break.is_none(),
            "plan {plan}: {:?}",
            found.first_break
        );
        verified += found.head.events;
    }
    anyhow::ensure!(
        verified == written,
        "verified {verified} of {written} events"
    );
    let verify_rate = verified as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let inventory = alliance_logcopy::inventory(log).await?;
    anyhow::ensure!(
        inventory.events == written && inventory.plans.len() == plan_ids.len(),
        "one pass verified {} events of {} plans",
        inventory.events,
        inventory.plans.len()
    );
    let log_verify_rate = written as f64 / started.elapsed().as_secs_f64();
    let (export_rate, export_growth) = export_all(log, plan_ids).await?;
    let mut records = Vec::new();
    let mut position = 1;
    loop {
        let batch = log.read_all(position, 65_536).await?;
        let Some(last) = batch.last() else { break };
        position = last.position + 1;
        records.extend(batch.into_iter().map(|e| e.payload));
    }
    let started = Instant::now();
    let intact = records
        .iter()
        .filter(|r| alliance_record::chain::intact(r).is_some())
        .count();
    let hash_rate = intact as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        intact == records.len(),
        "{} records do not hash",
        records.len() - intact
    );
    eprintln!(
        "projection: verified {verified} events at {verify_rate:.0}/s plan by plan, {log_verify_rate:.0}/s in one pass, hashing {hash_rate:.0}/s"
    );
    Ok(Verified {
        verify_rate,
        log_verify_rate,
        hash_rate,
        export_rate,
        export_growth,
    })
}

pub struct Verified {
    pub verify_rate: f64,
    pub log_verify_rate: f64,
    pub hash_rate: f64,
    pub export_rate: f64,
    /// Resident memory added while exporting everything, MiB.
    pub export_growth: f64,
}

/// Streams every plan's records, as the export does, into JSON lines written nowhere: records/s
/// and how much resident memory grew meanwhile (sampled every 10,000 records).
async fn export_all(log: &SqliteLog, plan_ids: &[PlanId]) -> anyhow::Result<(f64, f64)> {
    use futures::StreamExt;
    use std::io::Write;
    let before = resident_mib();
    let mut peak = before;
    let mut sink = std::io::BufWriter::new(std::io::sink());
    let started = Instant::now();
    let mut exported = 0u64;
    for plan in plan_ids {
        let mut records = alliance_eventlog::LogReader::plan_records(log, *plan);
        while let Some(record) = records.next().await {
            let record = record?;
            let hex = alliance_record::chain::hex(&record.payload);
            writeln!(
                sink,
                "{{\"version\":{},\"position\":{},\"event_id\":\"{}\",\"record\":\"{hex}\"}}",
                record.version, record.position, record.event_id
            )?;
            exported += 1;
            if exported.is_multiple_of(10_000) {
                peak = peak.max(resident_mib());
            }
        }
    }
    sink.flush()?;
    let rate = exported as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "projection: exported {exported} records at {rate:.0}/s, memory {before:.0} → peak {peak:.0} MiB"
    );
    Ok((rate, peak - before))
}

fn micros_pair(h: &Histogram<u64>) -> (f64, f64) {
    (
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.99) as f64,
    )
}

/// Writes the generated history of about `total_events` events to `log`: one plan after another,
/// each plan's appends pipelined, each record signed by `signer` when given. Returns the plans'
/// ids and the events written.
pub async fn write_history<L: EventLog>(
    log: &L,
    total_events: usize,
    signer: Option<&alliance_record::signing::Signer>,
) -> anyhow::Result<(Vec<PlanId>, u64)> {
    let actor = Actor {
        team: id::<TeamId>("us-force-planning".into()),
        user: "bench".into(),
        side: Some(Side::Us),
    };
    let plans = total_events.div_ceil(EVENTS_PER_PLAN);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Apart from the plans' own draws, so the plans are the same whatever the commands carry.
    let mut digests = Rng(0x5851_f42d_4c95_7f2d);
    let mut plan_ids = Vec::with_capacity(plans);
    let mut written = 0u64;
    for p in 0..plans {
        let plan_id = PlanId::from_u128(0x019a_0000_0000_7000_8000_0000_0000_0000 | p as u128);
        plan_ids.push(plan_id);
        let events = plan_events(plan_id, &mut rng);
        let mut pending = Vec::with_capacity(events.len());
        let mut head = alliance_record::chain::GENESIS;
        for (i, event) in events.iter().enumerate() {
            let version = i as u64 + 1;
            // As the command service records a command: a UUID for its id, and the SHA-256 (in
            // hex) that judges a retry.
            let command_id = uuid::Uuid::from_u128(
                0x019b_0000_0000_7000_8000_0000_0000_0000 | ((p as u128) << 20) | i as u128,
            )
            .to_string();
            let digest: String = (0..4).map(|_| format!("{:016x}", digests.next())).collect();
            let ctx = alliance_record::envelope::EnvelopeContext {
                plan_id,
                actor: &actor,
                command_id: &command_id,
                correlation_id: &command_id,
                causation_id: &command_id,
                command_digest: &digest,
                record_time_micros: 1_780_000_000_000_000
                    + (p * EVENTS_PER_PLAN + i) as i64 * 1_000,
                signer,
            };
            let (record, hash) = alliance_record::envelope::encode(&ctx, version, event, &head);
            head = hash;
            pending.push(log.append(plan_id, version - 1, vec![record]));
        }
        for append in pending {
            append.await?;
        }
        written += events.len() as u64;
    }
    Ok((plan_ids, written))
}

/// The resident memory read models take per event: the events of the log at `path` rebuilt in
/// this process into a fresh read model. Returns the events and the bytes per event.
pub async fn read_model_cost(path: &std::path::Path) -> anyhow::Result<(u64, f64)> {
    let log = SqliteLog::open(SqliteLogConfig::new(path))?;
    let before = resident_mib();
    let projection = Projection::new();
    let events = projection.catch_up(&log).await?;
    let bytes = (resident_mib() - before) * 1024.0 * 1024.0 / events.max(1) as f64;
    drop(projection);
    Ok((events, bytes))
}

pub async fn run(total_events: usize) -> anyhow::Result<ProjectionFigures> {
    let dir = TempDir::new()?;
    let log = SqliteLog::open(SqliteLogConfig::new(dir.0.join("alliance.db")))?;
    let started = Instant::now();
    let (plan_ids, written) = write_history(&log, total_events, None).await?;
    let plans = plan_ids.len();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let write_rate = written as f64 / started.elapsed().as_secs_f64();
    eprintln!("projection: wrote {written} events over {plans} plans at {write_rate:.0}/s");

    let raw_read_rate = raw_read(&dir.0.join("alliance.db"))?;
    let rss_before_mib = resident_mib();
    let projection = Projection::new();
    let started = Instant::now();
    let cpu_before = crate::signing::cpu_seconds();
    let rebuilt = projection.catch_up(&log).await?;
    let rebuild_rate = rebuilt as f64 / started.elapsed().as_secs_f64();
    let rebuild_cpu_micros =
        (crate::signing::cpu_seconds() - cpu_before) * 1e6 / rebuilt.max(1) as f64;
    let rss_after_mib = resident_mib();
    eprintln!(
        "projection: rebuilt {rebuilt} events at {rebuild_rate:.0}/s ({rebuild_cpu_micros:.2} µs of CPU an event), RSS {rss_before_mib:.0} → {rss_after_mib:.0} MiB"
    );

    // Random (valid, record) pairs.
    let queries: Vec<(PlanId, Date, u64)> = (0..5_000)
        .map(|_| {
            let plan = plan_ids[rng.below(plan_ids.len() as u64) as usize];
            let valid = date(2020 + rng.below(16) as i32, 1 + rng.below(12) as u32, 1);
            // A version the plan has (a record point past its head is refused).
            let version = 1 + rng.below(projection.plan_version(plan).max(1));
            (plan, valid, version)
        })
        .collect();
    let mut in_process = Histogram::<u64>::new(3)?;
    for (plan, valid, version) in &queries {
        let t = Instant::now();
        let posture = projection.posture(*plan, *valid, RecordPoint::Version(*version), false)?;
        in_process.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(posture);
    }
    let mut series = Histogram::<u64>::new(3)?;
    for (plan, _, version) in queries.iter().take(200) {
        let t = Instant::now();
        let points = projection.series(
            *plan,
            date(2026, 1, 1),
            date(2035, 12, 1),
            alliance_projection::SeriesStep::Month,
            RecordPoint::Version(*version),
            false,
        )?;
        series.record(t.elapsed().as_micros() as u64)?;
        anyhow::ensure!(
            points.len() == 120,
            "a 120-month series has {}",
            points.len()
        );
    }
    let (posture_grpc, posture_grpc_64) = grpc_postures(projection.clone(), &queries).await?;
    // Freed here, before the verification is timed.
    anyhow::ensure!(
        Arc::into_inner(projection).is_some(),
        "the read model is still held after its server stopped"
    );
    let verified = verify_all(&log, &plan_ids, written).await?;
    Ok(ProjectionFigures {
        verify_rate: verified.verify_rate,
        log_verify_rate: verified.log_verify_rate,
        hash_rate: verified.hash_rate,
        export_rate: verified.export_rate,
        export_growth: verified.export_growth,
        events: rebuilt,
        plans,
        write_rate,
        rebuild_rate,
        rebuild_cpu_micros,
        rss_before_mib,
        rss_after_mib,
        posture_in_process: {
            let (p50, p99) = micros_pair(&in_process);
            (p50 / 1000.0, p99 / 1000.0)
        },
        posture_grpc,
        posture_grpc_64,
        raw_read_rate,
        series_in_process: micros_pair(&series),
    })
}

/// Every event's row read from the log's database in one sequential scan (rows/s), each
/// column taken as the log's reader takes it.
fn raw_read(path: &std::path::Path) -> anyhow::Result<f64> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let started = Instant::now();
    let mut stmt = conn.prepare(
        "SELECT position, plan_id, version, event_id, command_id, command_seq, event_type, \
         record_time, payload, trace_context FROM events ORDER BY position",
    )?;
    let mut rows = stmt.query([])?;
    let (mut count, mut bytes) = (0u64, 0usize);
    while let Some(row) = rows.next()? {
        let payload = row.get_ref(8)?.as_blob()?;
        let command = row.get_ref(4)?.as_str()?;
        bytes += payload.len() + command.len();
        count += 1;
    }
    std::hint::black_box(bytes);
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Posture queries over gRPC on loopback: one client, one at a time (p50, p99 in µs); then
/// 64 clients on connections of their own, all at once (queries/s, p99 in µs).
async fn grpc_postures(
    projection: Arc<Projection>,
    queries: &[(PlanId, Date, u64)],
) -> anyhow::Result<((f64, f64), (f64, f64))> {
    use alliance_proto::v1;
    let tokens =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-tokens.toml");
    let auth = alliance_server::Authenticator::from_token_file(&alliance_server::TokenFile::load(
        &tokens,
    )?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let api = alliance_projection::PostureQueriesApi::new(projection, Arc::new(auth));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(api.into_server())
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let connect = || async {
        let channel = alliance_auth::endpoint(&format!("http://{addr}"), None)?
            .tcp_nodelay(true)
            .connect()
            .await?;
        anyhow::Ok(v1::posture_queries_client::PostureQueriesClient::new(
            channel,
        ))
    };
    let one = query_postures(connect().await?, queries.to_vec()).await?;
    let clients = 64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for k in 0..clients {
        let client = connect().await?;
        // 20,000 queries in all, each client its share of the same random pairs.
        let mine: Vec<_> = queries
            .iter()
            .cycle()
            .skip(k)
            .step_by(clients)
            .take(20_000 / clients)
            .copied()
            .collect();
        tasks.push(tokio::spawn(query_postures(client, mine)));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    // Stopped gracefully: once every connection is closed, the server lets go of the read
    // model, which the caller then drops before the next measure starts (else freeing it would
    // run on a worker beside that measure).
    let _ = stop.send(());
    server.await??;
    Ok((
        micros_pair(&one),
        (rate, all.value_at_quantile(0.99) as f64),
    ))
}

/// Asks `client` for each posture in turn; the latency of each (µs).
async fn query_postures(
    mut client: alliance_proto::v1::posture_queries_client::PostureQueriesClient<
        tonic::transport::Channel,
    >,
    queries: Vec<(PlanId, Date, u64)>,
) -> anyhow::Result<Histogram<u64>> {
    use alliance_proto::v1;
    let mut histogram = Histogram::<u64>::new(3)?;
    for (plan, valid, version) in queries {
        let mut request = tonic::Request::new(v1::GetPostureRequest {
            plan_id: plan.to_string(),
            valid_on: Some(alliance_proto::convert::date_to_proto(valid)),
            record: Some(v1::RecordPoint {
                point: Some(v1::record_point::Point::Version(version)),
            }),
            include_proposed: false,
            min_version: 0,
        });
        request
            .metadata_mut()
            .insert("authorization", "Bearer dev-auditors".parse()?);
        let t = Instant::now();
        let reply = client.get_posture(request).await?;
        histogram.record(t.elapsed().as_micros() as u64)?;
        std::hint::black_box(reply);
    }
    Ok(histogram)
}

/// A directory of its own for the generated log, removed when dropped (on errors too).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("alliance-bench-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rebuilding from Kafka beside the raw consume rate of the same topic, in the same run.
pub struct KafkaRebuild {
    pub events: u64,
    pub partitions: u32,
    pub raw: Vec<f64>,
    pub rebuild: Vec<f64>,
}

/// Writes the generated history to a fresh topic, then, `runs` times in turn, reads the whole
/// topic with a plain `read_committed` consumer (records/s) and rebuilds a read model from it
/// (events/s).
pub async fn kafka(
    bootstrap: &str,
    total_events: usize,
    partitions: u32,
    runs: usize,
) -> anyhow::Result<KafkaRebuild> {
    let topic = format!("alliance-bench-history-{}", uuid::Uuid::now_v7());
    let mut config = alliance_eventlog_kafka::KafkaLogConfig::new(bootstrap, &topic);
    config.partitions = partitions;
    config.owned = Some((0..partitions as i32).collect());
    config.transactional_prefix = topic.clone();
    let events = {
        let log = alliance_eventlog_kafka::KafkaLog::open(config.clone()).await?;
        let started = Instant::now();
        let (_, written) = write_history(&log, total_events, None).await?;
        eprintln!(
            "projection on kafka: wrote {written} events at {:.0}/s",
            written as f64 / started.elapsed().as_secs_f64()
        );
        written
    };
    let reader = alliance_eventlog_kafka::TopicReader::new(config.clone());
    let mut figures = KafkaRebuild {
        events,
        partitions,
        raw: Vec::new(),
        rebuild: Vec::new(),
    };
    for run in 0..runs {
        let raw = raw_consume(&config, events).await?;
        let projection = Projection::new();
        let started = Instant::now();
        let read = projection.catch_up(&reader).await?;
        anyhow::ensure!(read == events, "the rebuild read {read} of {events} events");
        let rebuild = read as f64 / started.elapsed().as_secs_f64();
        eprintln!(
            "projection on kafka run={run}: raw {raw:.0} records/s, rebuild {rebuild:.0} events/s"
        );
        figures.raw.push(raw);
        figures.rebuild.push(rebuild);
    }
    Ok(figures)
}

/// Records/s of a plain consumer reading every partition of the topic, `read_committed`, to
/// its end, doing nothing with the records.
async fn raw_consume(
    config: &alliance_eventlog_kafka::KafkaLogConfig,
    expected: u64,
) -> anyhow::Result<f64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("{}-raw", config.topic))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for partition in 0..config.partitions as i32 {
            assignment.add_partition_offset(
                &config.topic,
                partition,
                rdkafka::Offset::Beginning,
            )?;
        }
        let started = Instant::now();
        consumer.assign(&assignment)?;
        let mut pending: std::collections::HashSet<i32> = (0..config.partitions as i32).collect();
        let mut records = 0u64;
        while !pending.is_empty() {
            match consumer.poll(std::time::Duration::from_secs(10)) {
                Some(Ok(message)) => {
                    std::hint::black_box(rdkafka::Message::payload(&message));
                    records += 1;
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    pending.remove(&p);
                }
                Some(Err(error)) => anyhow::bail!("raw consumer: {error}"),
                None => anyhow::bail!("raw consumer: nothing within 10 s"),
            }
        }
        anyhow::ensure!(records == expected, "read {records} of {expected} records");
        Ok(records as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}
