//! `make bench`: command throughput and latency through gRPC on the embedded log.
//!
//! Starts the release `allianced` as its own process on a fresh data directory (durable commits:
//! SQLite WAL with `synchronous=FULL`), then drives it with 1, 16 and 64 concurrent clients,
//! each sending `RegisterForceElement` commands (one event each) as fast as answers come back.
//! Every configuration runs several times; the report gives medians.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;

mod findings;
mod flood;
mod logcopy;
mod projection;
mod signing;
mod simulation;
mod telemetry;
use tonic::transport::Channel;

#[derive(Parser, Debug)]
struct Args {
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per configuration (the report gives the median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent clients per configuration.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Plans the clients spread over (client i edits plan i mod plans).
    #[arg(long, default_value_t = 8)]
    plans: usize,
    /// Partition counts of the Kafka topics measured (one topic each).
    #[arg(long, value_delimiter = ',', default_value = "8,2")]
    kafka_partitions: Vec<u32>,
    /// Events of the generated history the read models are measured on (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    history_events: usize,
    /// Trials of the simulation benchmark on the reference plan (0: skip).
    #[arg(long, default_value_t = 10_000)]
    simulation_trials: u32,
    /// Findings queries on the reference plan, in-process and over gRPC (0: skip).
    #[arg(long, default_value_t = 2_000)]
    findings_queries: usize,
    /// Measure the read models only (no command throughput).
    #[arg(long)]
    skip_commands: bool,
    /// Skip the cost of tracing (commands without and with 10% sampled tracing).
    #[arg(long)]
    skip_telemetry: bool,
    /// Also measure on Apache Kafka at these bootstrap servers (`make bench` starts a broker).
    #[arg(long, env = "ALLIANCE_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: Option<String>,
    /// Measure only these sections (comma-separated) [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

/// A section of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Commands through gRPC on the embedded log (and on Kafka, given a broker).
    Commands,
    /// Only the Kafka part of `commands`.
    KafkaCommands,
    /// The cost of tracing.
    Telemetry,
    /// The cost of signing, and verifying a signed history.
    Signing,
    /// Authenticated calls during a flood of unauthenticated ones, and the security log's growth.
    Flood,
    /// The read models on a generated history.
    ReadModels,
    /// Findings on the reference plan.
    Findings,
    /// The simulation engine.
    Simulation,
    /// Backup and restore of the embedded log, and moving a history to Kafka and back.
    LogCopy,
}

impl Args {
    /// Whether `section` is measured in this run.
    fn wants(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
}

const KAFKA_NOTE: &str = "\nWhere the time goes: a transaction of the instance's writer goes through, one after another, the sending of its records (the first send has the client add the transaction's partitions to it, a round trip to the transaction coordinator), their acknowledgement (the produce round trip, acks=all), the group's offsets (two round trips: AddOffsetsToTxn, TxnOffsetCommit), then, on the committing thread while the next transaction is produced, the commit (EndTxn). Timed with a probe in the writer during one run on 8 partitions (not part of this benchmark): 3.4–4.4 ms from the first send to the last acknowledgement, 0.7–0.9 ms for the offsets, 0.35–0.5 ms for the commit, at 64 and 256 clients. At 64 clients on 8 partitions the machine was about half idle (the broker 56% of a core, allianced 44%, the clients 12%): the writer waits on the broker's round trips, whose work grows with the partitions in a transaction (a marker each). The raw producer needs no transaction at all. A single command's floor is about 3.5 ms (begin, produce with acks=all, commit).\n";

const READ_MODEL_NOTE: &str = "\nWhere the time goes. A posture is read from the posture index: each element's states over valid time and each shaping decision's steps, at the version asked for, so no event is folded and no element copied (states are shared); the index keeps each view's element timelines and decision parts as logs of changes in version order, which a query reads up to its version in one pass over contiguous memory, and its elements and decisions in id order as plain lists, built by a plan's first query after a new element or decision (in the in-process row, a fifth of the queries are a plan's first: 5,000 queries over 1,000 plans); what remains is touching each present element's states (two scattered reads an element, 150 elements), cold in memory for a random plan among 1,000, and assembling the totals: the same query run twice took about 24 µs cold and 5 µs warm before those lists, so the time is the memory it waits for. A series reads those parts once and assembles each month. Over gRPC the posture is converted to protobuf and encoded, and the client decodes it (a posture of 150 elements is about 10 KB). The rebuild decodes records in batches on the blocking pool (lean: the envelope's ids and event type, which the row's columns carry, are checked but not kept) while it folds the batch before into each plan's state and posture index, and wakes the model's waiters once a batch. Its CPU time is the row above; at 1,000,000 events/s two cores allow 2 µs an event. By a profile of the rebuild alone (perf, 999 Hz), 43% of that time is the kernel's first touch of the memory the read models keep: the process took as many page faults during the rebuild as its resident memory grew by pages (195,863 for 765 MiB), each about 7 µs of CPU on this virtual machine, most of it zeroing the page. The memory an event takes is therefore also its rebuild time. The rest: keeping the posture index about 17% (its element timelines about 14), decoding 16%, reading SQLite 10%, the domain's fold 8%. A plan's events are kept in blocks that never move (one vector copied whole as it grew had taken about a tenth of the rebuild); reading and decoding on a task of their own, so they never wait for the fold to ask, kept both cores busier (1.6 rather than 1.5) but took more CPU an event, and was not kept. The memory per event, by allocation: the events as recorded about 210 B (168 B in place: the envelope's fields; the command, its UUID id and SHA-256 digest as bytes under one tag; the seal, its own hash in place and the previous one dropped, since the record before holds it; the event packed as its payload's protobuf bytes, 31 B on average, its type read from the payload's field number; where the decoded event had taken 168 B in place whatever its kind, plus its strings, and the command its own allocation with its id and digest as text: 0.89 KiB/event of resident memory on this history before), the plans' states about 100 B (a decision about 390 B: its sides a byte each, what few decisions have held apart, its one step in room for one, where it took 930 B), the posture index about 150 B (its changes' versions and slots in 32 bits, within a plan's bound of versions; its logs grown by an eighth at a time, where a doubling vector held up to as much again spare). Verifying plan by plan reads each plan's records in batches that double from 256 to 1024, three started together, so the reads and the hashing overlap from a plan's first record; both verifications read only the columns a chain check needs (position, plan, version, the record's bytes): the event's id and type and the command's id, two strings allocated per record, had taken about a fifth of the time (plan by plan 850,076 and 917,052 events/s before, 1,121,456 and 1,158,369 after, in alternating runs; in one pass 1,124,601 and 1,138,234 before, 1,560,535 and 1,715,695 after). The rebuild from Kafka decodes the CloudEvents headers as well (in one pass over them), where the raw consumer does nothing with its records; during the rebuild, its three threads (the topic's reader, the decoding, the fold) kept both cores busy; the rebuild's reader fetches a partition again 10 ms after the client's queue for it was full (by default the client waits a second, and a reader slower than the fetches sat idle for most of it).\n";

/// The label of the no-op server's rows.
const NOOP: &str = "no-op";

const TOKEN: &str = "Bearer dev-us-force-planning";
/// Plans are created by the approvers (their admin role); the planners then edit them.
const CREATOR: &str = "Bearer dev-alliance-approvers";

struct Server {
    child: Child,
    addr: String,
    /// What the server reports of its log's commits, when it exports its metrics here.
    commits: Option<telemetry::Commits>,
    /// Removed once the server has stopped (a field is dropped after `drop` has run).
    data_dir: Option<projection::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server process's resident memory (`VmRSS`), in MiB.
    fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

fn start_server(extra: &[String]) -> anyhow::Result<Server> {
    start_server_with(extra, &[])
}

/// A binary built beside this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .context("no parent directory of the bench binary")?
        .join(name))
}

/// [`start_server`] with `env` set for the server (and no other `OTEL_*` variable).
fn start_server_with(extra: &[String], env: &[(String, String)]) -> anyhow::Result<Server> {
    let dir = projection::TempDir::new()?;
    let mut command = Command::new(sibling("allianced")?);
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("OTEL_")) {
        command.env_remove(key);
    }
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--skip-reference-plan",
            "--data-dir",
        ])
        .arg(&dir.0)
        .args(extra)
        .env("RUST_LOG", "warn")
        .envs(env.iter().cloned());
    let mut server = spawn_listening(command)?;
    server.data_dir = Some(dir);
    Ok(server)
}

/// The no-op gRPC server (`noop-server`): the floor under the command benchmark.
fn start_noop_server() -> anyhow::Result<Server> {
    spawn_listening(Command::new(sibling("noop-server")?))
}

/// Starts `command` and waits for the line naming the address it listens on.
fn spawn_listening(mut command: Command) -> anyhow::Result<Server> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?} (run `make bench`)"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(rest) = line.split(" listening on ").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .context("no address")?
                .to_owned();
            return Ok(Server {
                child,
                addr,
                commits: None,
                data_dir: None,
            });
        }
    }
    bail!("{command:?} exited before listening")
}

fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = TOKEN.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn meta(plan_id: &str) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id: uuid::Uuid::now_v7().to_string(),
        plan_id: plan_id.to_owned(),
        ..Default::default()
    })
}

fn date(year: i32, month: i32, day: i32) -> Option<v1::Date> {
    Some(v1::Date { year, month, day })
}

async fn create_plan(client: &mut PlanCommandsClient<Channel>, n: usize) -> anyhow::Result<String> {
    let mut request = authed(v1::CreatePlanRequest {
        meta: meta(""),
        name: format!("bench plan {n}"),
        description: String::new(),
        horizon_start: date(2020, 1, 1),
        horizon_end: date(2035, 12, 31),
    });
    request
        .metadata_mut()
        .insert("authorization", CREATOR.parse()?);
    let result = client.create_plan(request).await?.into_inner();
    Ok(result.plan_id)
}

fn register(plan_id: &str, element_id: String) -> v1::RegisterForceElementRequest {
    v1::RegisterForceElementRequest {
        meta: meta(plan_id),
        element: Some(v1::ForceElement {
            element_id,
            name: "benchmark element".into(),
            side: v1::Side::Us as i32,
            component: v1::Component::Army as i32,
            kind: v1::ElementKind::Logistics as i32,
            personnel: 100,
            equipment: vec![],
            base: "Camp Humphreys".into(),
        }),
        present_from: date(2024, 1, 1),
    }
}

struct RunResult {
    commands: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run_once(
    channels: &[Channel],
    plans: &[String],
    clients: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<RunResult> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut client = PlanCommandsClient::new(channels[i % channels.len()].clone());
        let plan_id = plans[i % plans.len()].clone();
        let tag = format!("{tag}-c{i}");
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                client
                    .register_force_element(authed(register(&plan_id, format!("{tag}-{n}"))))
                    .await?;
                histogram.record(sent.elapsed().as_micros() as u64)?;
                n += 1;
            }
            anyhow::Ok(histogram)
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    for task in tasks {
        total.add(task.await??)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(RunResult {
        commands: total.len(),
        seconds,
        p50_ms: total.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: total.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// The median: the middle value, or the mean of the two middle ones.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let half = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[half - 1] + values[half]) / 2.0
    } else {
        values[half]
    }
}

struct Row {
    clients: usize,
    rate: f64,
    low: f64,
    high: f64,
    p50: f64,
    p99: f64,
    /// The server's resident memory (MiB) before the row's first run and after its last.
    rss: (f64, f64),
    /// Commands answered over the row's runs.
    commands: u64,
    /// Appends per commit over the row's runs, when the server reports its commits.
    per_commit: Option<f64>,
}

/// Medians (and the range of throughput) over `values`.
fn summarize(values: &[f64]) -> (f64, f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    (median(values.to_vec()), low, high)
}

/// Eight connections to `server` and `plans` new plans on it.
async fn suite_clients(
    server: &Server,
    plans: usize,
) -> anyhow::Result<(Vec<Channel>, Vec<String>)> {
    suite_channels(&server.addr, plans).await
}

/// Eight connections to the server at `addr`.
async fn connect_channels(addr: &str) -> anyhow::Result<Vec<Channel>> {
    let endpoint = format!("http://{addr}");
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            alliance_auth::endpoint(&endpoint, None)?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

/// Eight connections to the server at `addr` and `plans` new plans on it.
async fn suite_channels(addr: &str, plans: usize) -> anyhow::Result<(Vec<Channel>, Vec<String>)> {
    let channels = connect_channels(addr).await?;
    let mut setup = PlanCommandsClient::new(channels[0].clone());
    let mut created = Vec::new();
    for n in 0..plans.max(1) {
        created.push(create_plan(&mut setup, n).await?);
    }
    Ok((channels, created))
}

/// Commands through gRPC into `server` at each client count: `allianced`, or the no-op server
/// (which keeps no plans: the clients name plan ids it never sees).
async fn command_suite(args: &Args, server: &Server, label: &str) -> anyhow::Result<Vec<Row>> {
    let (channels, plans) = if label == NOOP {
        let plans = (0..args.plans.max(1))
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        (connect_channels(&server.addr).await?, plans)
    } else {
        suite_clients(server, args.plans).await?
    };
    // Warm up connections, caches and the log.
    run_once(&channels, &plans, 16, Duration::from_secs(1), "warmup").await?;

    let mut rows = Vec::new();
    for &clients in &args.clients {
        let (mut throughput, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
        let rss_start = server.rss_mib();
        let commits_start = match &server.commits {
            Some(commits) => Some(commits.now().await?),
            None => None,
        };
        let mut commands = 0;
        for run in 0..args.runs {
            let tag = format!("c{clients}-r{run}");
            let seconds = Duration::from_secs(args.seconds);
            let r = run_once(&channels, &plans, clients, seconds, &tag).await?;
            let rate = r.commands as f64 / r.seconds;
            eprintln!(
                "{label}: clients={clients:>3} run={run}: {rate:>8.0} commands/s, p50 {:.2} ms, p99 {:.2} ms",
                r.p50_ms, r.p99_ms
            );
            throughput.push(rate);
            p50.push(r.p50_ms);
            p99.push(r.p99_ms);
            commands += r.commands;
        }
        let (rate, low, high) = summarize(&throughput);
        let per_commit = match (&server.commits, commits_start) {
            (Some(commits), Some((appends, count))) => {
                let (appends_end, count_end) = commits.now().await?;
                Some((appends_end - appends) / (count_end - count).max(1) as f64)
            }
            _ => None,
        };
        rows.push(Row {
            clients,
            rate,
            low,
            high,
            p50: median(p50),
            p99: median(p99),
            rss: (rss_start, server.rss_mib()),
            commands,
            per_commit,
        });
    }
    Ok(rows)
}

/// Commands the embedded server has answered when its memory is judged against the events'.
const SUSTAINED_COMMANDS: u64 = 1_000_000;

/// The server's memory over every command it answered.
struct Sustained {
    commands: u64,
    /// Resident memory (MiB) at the first row's start and at the end.
    rss: (f64, f64),
}

impl Sustained {
    /// Bytes of resident memory the server grew by per command.
    fn growth(&self) -> f64 {
        (self.rss.1 - self.rss.0) * 1024.0 * 1024.0 / self.commands.max(1) as f64
    }
}

/// After the `rows` run on `server`, runs 64 clients until it has answered `total` commands.
async fn sustain(
    args: &Args,
    server: &Server,
    rows: &[Row],
    total: u64,
) -> anyhow::Result<Sustained> {
    let start = rows.first().map_or_else(|| server.rss_mib(), |r| r.rss.0);
    let mut commands: u64 = rows.iter().map(|r| r.commands).sum();
    let (channels, plans) = suite_clients(server, args.plans).await?;
    let mut run = 0;
    while commands < total {
        let seconds = Duration::from_secs(args.seconds);
        let r = run_once(&channels, &plans, 64, seconds, &format!("sustain-{run}")).await?;
        anyhow::ensure!(r.commands > 0, "no command answered in a sustained run");
        commands += r.commands;
        run += 1;
    }
    let rss = (start, server.rss_mib());
    eprintln!(
        "embedded: {commands} commands, resident memory {:.0} → {:.0} MiB",
        rss.0, rss.1
    );
    Ok(Sustained { commands, rss })
}

/// The limit: a plain rdkafka producer (acks=all, idempotent) sending `size`-byte records to a
/// topic of the same shape as fast as the broker takes them, a window of records in flight.
async fn raw_kafka(args: &Args, bootstrap: &str, size: usize) -> anyhow::Result<(f64, f64, f64)> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let topic = format!("alliance-bench-raw-{}", uuid::Uuid::now_v7());
    let mut config = alliance_eventlog_kafka::KafkaLogConfig::new(bootstrap, &topic);
    config.partitions = 8;
    alliance_eventlog_kafka::create_topic(&config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let payload = vec![7u8; size];
    let mut rates = Vec::new();
    for run in 0..args.runs {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(args.seconds);
        let mut in_flight = std::collections::VecDeque::new();
        let mut sent = 0u64;
        while Instant::now() < deadline {
            let key = format!("plan-{}", sent % 64);
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push_back(delivery);
                    sent += 1;
                }
                Err((e, _)) => anyhow::bail!("raw producer: {e}"),
            }
            if in_flight.len() >= 10_000
                && let Some(delivery) = in_flight.pop_front()
            {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
        for delivery in in_flight {
            delivery.await?.map_err(|(e, _)| e)?;
        }
        let rate = sent as f64 / start.elapsed().as_secs_f64();
        eprintln!("raw kafka producer run={run}: {rate:>8.0} records/s");
        rates.push(rate);
    }
    Ok(summarize(&rates))
}

fn table(rows: &[Row]) -> String {
    let commits = rows.iter().any(|r| r.per_commit.is_some());
    let mut table = String::from(
        "| clients | commands/s (= events/s), median | range over runs | p50 latency | p99 latency | server resident memory, row start → end | growth per command |",
    );
    table.push_str(if commits {
        " commands per transaction |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    } else {
        "\n|---:|---:|---:|---:|---:|---:|---:|\n"
    });
    for r in rows {
        let growth = (r.rss.1 - r.rss.0) * 1024.0 * 1024.0 / r.commands.max(1) as f64;
        table.push_str(&format!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} ms | {:.2} ms | {:.0} → {:.0} MiB | {growth:.0} B |",
            r.clients, r.rate, r.low, r.high, r.p50, r.p99, r.rss.0, r.rss.1
        ));
        if commits {
            table.push_str(&format!(" {:.1} |", r.per_commit.unwrap_or(0.0)));
        }
        table.push('\n');
    }
    table
}

/// The servers run on mimalloc; so do the read models measured in this process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut report = String::from("# Benchmarks\n");
    if !args.skip_commands && args.wants(Section::Commands) {
        report = commands_report(&args, cores).await?;
    } else if args.only.contains(&Section::KafkaCommands)
        && let Some(bootstrap) = &args.kafka_bootstrap
    {
        report.push_str(&kafka_commands_report(&args, bootstrap).await?);
    }
    if !args.skip_telemetry && args.wants(Section::Telemetry) {
        report.push_str(&telemetry::report(&args).await?);
    }
    if args.wants(Section::Signing) {
        report.push_str(&signing::report(&args).await?);
    }
    if args.wants(Section::Flood) {
        report.push_str(&flood::report(&args).await?);
    }
    if args.history_events > 0 && args.wants(Section::ReadModels) {
        report.push_str(&projection_report(&args).await?);
    }
    if args.findings_queries > 0 && args.wants(Section::Findings) {
        report.push_str(&findings_report(&args).await?);
    }
    if args.simulation_trials > 0 && args.wants(Section::Simulation) {
        report.push_str(&simulation_report(&args)?);
    }
    if args.history_events > 0 && args.wants(Section::LogCopy) {
        report.push_str(&logcopy::report(&args).await?);
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &report)?;
    println!("{report}");
    Ok(())
}

/// Commands/s through gRPC on the embedded log beside the no-op server, and on Kafka beside the
/// raw producers.
async fn commands_report(args: &Args, cores: usize) -> anyhow::Result<String> {
    let noop = command_suite(args, &start_noop_server()?, NOOP).await?;
    let mut server = start_server(&[])?;
    let embedded = command_suite(args, &server, "embedded").await?;
    let sustained = sustain(args, &server, &embedded, SUSTAINED_COMMANDS).await?;
    let data_dir = server
        .data_dir
        .take()
        .context("allianced has a data directory")?;
    drop(server);
    let (events, need) = projection::read_model_cost(&data_dir.0.join("alliance.db")).await?;
    drop(data_dir);
    let at = |rows: &[Row], clients: usize| {
        rows.iter()
            .find(|r| r.clients == clients)
            .map(|r| (r.rate, r.p99))
    };
    let (noop_64, _) = at(&noop, 64).unwrap_or_default();
    let (embedded_64, embedded_p99) = at(&embedded, 64).unwrap_or_default();
    let mut report = format!(
        "# Benchmarks\n\nReproduce with `make bench` (starts the project's Kafka broker, then runs \
         `cargo run --release -p alliance-bench -- --out docs/benchmarks.md`). Machine: {cores} cores, \
         shared by the servers, the broker and the load generator. Each row is the median of {} runs of {} s.\n\n\
         ## Commands through gRPC on the embedded log, beside a no-op server\n\n\
         Each client sends `RegisterForceElement` (one event per command) and waits for the answer before the next; \
         clients spread over {} plans and share 8 connections. One command appends one event, so events/s equals commands/s. \
         The server's resident memory is read from `/proc` before a row's first run and after its last.\n\n\
         (a) The floor: `noop-server` (crates/alliance-bench/src/bin/noop-server.rs), a release tonic server on the same \
         runtime and allocator that decodes each `RegisterForceElement` and answers an empty `CommandResult`, driven by the same \
         client code.\n\n{}\n\
         (b) `allianced` (release, `RUST_LOG=warn`) as its own process on a fresh data directory: SQLite in WAL mode with \
         `synchronous=FULL`, so every acknowledged command is on disk; concurrent appends share a group commit; its read \
         models follow the log in the same process.\n\n{}\n\
         Ratio b/a at 64 clients: **{:.2}** (p99 {:.2} ms). What the events themselves need: the server's read models keep every \
         event in memory; read models rebuilt in this process from the server's log afterwards ({events} events) take **{need:.0} B \
         per event**, beside the server's growth per command above. Targets ([G5]): at least 0.7 × the no-op server at 64 clients, \
         p99 at most 10 ms; the server's resident memory growing by at most 1.2 × what the events need.\n\n\
         After {} commands (the rows above, then 64 clients until the server had answered that many): resident memory \
         {:.0} → {:.0} MiB from the first row's start, **{:.0} B per command**, **{:.2} ×** what the events need \
         (target: at most 1.2 × after 1M commands).\n",
        args.runs,
        args.seconds,
        args.plans,
        table(&noop),
        table(&embedded),
        embedded_64 / noop_64.max(1.0),
        embedded_p99,
        sustained.commands,
        sustained.rss.0,
        sustained.rss.1,
        sustained.growth(),
        sustained.growth() / need.max(1.0),
    );
    if let Some(bootstrap) = &args.kafka_bootstrap {
        report.push_str(&kafka_commands_report(args, bootstrap).await?);
    }
    Ok(report)
}

/// Commands through gRPC on Kafka, beside the raw producer and the raw transactional producer.
async fn kafka_commands_report(args: &Args, bootstrap: &str) -> anyhow::Result<String> {
    let mut report = String::new();
    // An envelope of RegisterForceElement with its CloudEvents headers is about 600 bytes.
    let size = 600;
    let (raw, raw_low, raw_high) = raw_kafka(args, bootstrap, size).await?;
    report.push_str(&format!(
        "\n## Commands through gRPC on Apache Kafka, beside the raw producer\n\n\
         Same broker, same run: the project's single-node KRaft broker (Kafka 4.1.1, 512 MB heap) on loopback.\n\n\
         (a) Raw rdkafka producer, acks=all, idempotent, {size}-byte records, 10,000 in flight: \
         **{raw:.0} records/s** (range {raw_low:.0}–{raw_high:.0}).\n"
    ));
    for &partitions in &args.kafka_partitions {
        let topic = format!("alliance-bench-{}", uuid::Uuid::now_v7());
        let server_args = vec![
            "--kafka-bootstrap".to_owned(),
            bootstrap.to_owned(),
            "--kafka-topic".to_owned(),
            topic,
            "--kafka-partitions".to_owned(),
            partitions.to_string(),
        ];
        let (commits, env) = telemetry::Commits::receiver().await?;
        let mut server = start_server_with(&server_args, &env)?;
        server.commits = Some(commits);
        let kafka = command_suite(args, &server, "kafka").await?;
        drop(server);
        // The raw producer at the batches the service's transactions carried.
        let mut limits = String::new();
        for clients in [64, 256] {
            let Some(row) = kafka.iter().find(|r| r.clients == clients) else {
                continue;
            };
            let batch = row.per_commit.unwrap_or(1.0).round().max(1.0) as usize;
            let (tx, tx_low, tx_high) =
                raw_kafka_transactions(args, bootstrap, size, partitions, batch).await?;
            limits.push_str(&format!(
                "- at {clients} clients the service's transactions carried {:.1} commands: \
                 the raw producer committing transactions of {batch} records: **{tx:.0} records/s** \
                 (range {tx_low:.0}–{tx_high:.0}); d/c **{:.2}**, d/a **{:.3}**.\n",
                row.per_commit.unwrap_or(0.0),
                row.rate / tx.max(1.0),
                row.rate / raw.max(1.0)
            ));
        }
        report.push_str(&format!(
            "\n### {partitions} partitions\n\n\
             (d) `allianced --kafka-bootstrap … --kafka-partitions {partitions}`: one transactional \
             writer for the instance's partitions; the commands queued at the instance share one \
             transaction, which also commits the written partitions' offsets through the writers' \
             group (the group's generation fences a writer it has dropped); the next transaction is \
             produced while the last one commits. Commands per transaction as the server reports \
             them (`alliance.log.commit.appends`, its metrics exported every 200 ms to this process, \
             no traces).\n\n{}\n\
             (c) Raw transactional producers, as the service has them (one pair used in turn, a \
             transaction's records acknowledged before its commit), committing transactions of the \
             service's size spread over the {partitions} partitions, {size}-byte records, one after \
             another:\n\n{limits}\n\
             Targets ([G5]): at least 20,000 commands/s with p99 at most 50 ms at some client count up \
             to 256, and at least 0.8 × the raw transactional producer at the same batch size.\n",
            table(&kafka),
        ));
    }
    report.push_str(KAFKA_NOTE);
    Ok(report)
}

/// The limit under the service's transactions on a topic of `partitions` partitions, with
/// transactional producers as the service has them: one pair for the instance used in turn (the
/// broker refuses a `transactional.id`'s next transaction until it has written the last one's
/// markers), each transaction's records acknowledged before its commit. Transactions of `batch`
/// records of `size` bytes, spread over every partition, one after another. Records committed
/// per second.
async fn raw_kafka_transactions(
    args: &Args,
    bootstrap: &str,
    size: usize,
    partitions: u32,
    batch: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let topic = format!("alliance-bench-raw-tx-{}", uuid::Uuid::now_v7());
    let mut config = alliance_eventlog_kafka::KafkaLogConfig::new(bootstrap, &topic);
    config.partitions = partitions;
    alliance_eventlog_kafka::create_topic(&config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let timeout = Duration::from_secs(30);
    let producer = |id: String| {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", id)
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()?;
        producer.init_transactions(timeout)?;
        anyhow::Ok(producer)
    };
    let pair = [
        producer(format!("{topic}-0"))?,
        producer(format!("{topic}-1"))?,
    ];
    let payload = vec![7u8; size];
    let partitions = i32::try_from(partitions)?;
    let seconds = Duration::from_secs(args.seconds);
    let mut rates = Vec::new();
    for run in 0..args.runs {
        let start = Instant::now();
        let deadline = start + seconds;
        let committed = tokio::task::block_in_place(|| {
            let mut records = 0u64;
            for turn in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                let producer: &FutureProducer = &pair[turn % 2];
                producer.begin_transaction()?;
                let mut deliveries = Vec::with_capacity(batch);
                for (_, partition) in (0..batch).zip((0..partitions).cycle()) {
                    let record = FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&payload);
                    deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
                }
                for delivery in deliveries {
                    futures::executor::block_on(delivery)?.map_err(|(e, _)| e)?;
                }
                // As the service does: commit only once the producer's thread has handled
                // every delivery report (else the commit's flush sleeps).
                while producer.in_flight_count() > 0 {
                    std::thread::yield_now();
                }
                producer.commit_transaction(timeout)?;
                records += batch as u64;
            }
            anyhow::Ok(records)
        })?;
        let rate = committed as f64 / start.elapsed().as_secs_f64();
        eprintln!(
            "raw kafka transactions ({partitions} partitions, batch {batch}) run={run}: {rate:>8.0} records/s"
        );
        rates.push(rate);
    }
    Ok(summarize(&rates))
}

/// Findings over 120 months of the reference plan.
async fn findings_report(args: &Args) -> anyhow::Result<String> {
    let f = findings::measure(args.findings_queries).await?;
    Ok(format!(
        "\n## Findings ([G4])\n\n\
         `GetFindings` over 120 months (2027-01 to 2036-12) of the reference plan, what-if (its \
         proposals included: every prerequisite, the transfer's conditions and the U.S. personnel \
         floor judged on every date the posture changes), {} queries one after another; {} findings \
         (the plan passes its own check).\n\n\
         | measure | p50 | p99 | target |\n|---|---:|---:|---:|\n\
         | in-process (`alliance_domain::findings`) | {:.0} µs | {:.0} µs | |\n\
         | over gRPC (loopback, one client, read model of the embedded log) | {:.0} µs | {:.0} µs | p99 ≤ 5 ms |\n",
        f.queries, f.found, f.in_process.0, f.in_process.1, f.grpc.0, f.grpc.1
    ))
}

/// The simulation engine on the reference plan, with 1 and 2 threads.
fn simulation_report(args: &Args) -> anyhow::Result<String> {
    let runs = args.runs.max(5);
    let f = simulation::measure(args.simulation_trials, runs)?;
    let mut rows = String::new();
    for (threads, median, low, high) in &f.by_threads {
        rows.push_str(&format!(
            "| {threads} | {:.0} ms | {:.0}–{:.0} ms | {:.0} trials/s |\n",
            median * 1000.0,
            low * 1000.0,
            high * 1000.0,
            f64::from(f.trials) / median
        ));
    }
    let speedup = match f.by_threads.as_slice() {
        [(_, one, _, _), (_, two, _, _)] => one / two,
        _ => 0.0,
    };
    Ok(format!(
        "\n## Simulation ([F5])\n\n\
         {} trials x {} months of the reference plan (what-if: its proposals included), in-process, \
         median of {runs} runs per row; each run draws every trial, walks every month and computes the \
         percentiles, risks and sensitivity ranking.\n\n\
         | threads | wall time (median) | range | trials/s |\n|---:|---:|---:|---:|\n{rows}\n\
         Speed-up with 2 threads: **{speedup:.2}x**. Target ([F5]): 10,000 trials x 60 months in at most 1 s on this machine.\n\n\
         What the run found: {}.\n",
        f.trials, f.months, f.headline
    ))
}

/// The read models on a generated history.
async fn projection_report(args: &Args) -> anyhow::Result<String> {
    let mut report = String::new();
    let f = projection::run(args.history_events).await?;
    report.push_str(&format!(
            "\n## Read models ([F3])\n\n\
             A generated history of {} events over {} plans of 1,000 events each (150 U.S. elements, \
             30 capability levels, 10 conditions, and decisions proposed, planned, endorsed by both \
             sides and adopted), each by a command of its own carrying a UUID for its id and a \
             SHA-256 digest, as the command service records them; written to the embedded log \
             ({:.0} events/s), then rebuilt in-process into a fresh read model.\n\n\
             | measure | figure | target |\n|---|---:|---:|\n\
             | rebuild from the embedded log | {:.0} events/s ({:.2}× the raw read) | ≥ 1,000,000 events/s |\n\
             | the rebuild's CPU time, every thread (two cores give 2 µs an event at 1,000,000 events/s) | {:.2} µs an event | |\n\
             | reading every event's row from the log's database in one sequential scan (the floor under the rebuild) | {:.0} rows/s | |\n\
             | resident memory before → after the rebuild | {:.0} → {:.0} MiB, {:.2} KiB/event | ≤ 0.5 KiB/event |\n\
             | posture at a random (valid, record) pair, in-process | p50 {:.1} µs, p99 {:.1} µs | p99 ≤ 20 µs |\n\
             | the same over gRPC (loopback, one client) | p50 {:.0} µs, p99 {:.0} µs | p99 ≤ 1 ms |\n\
             | the same over gRPC, 64 clients at once (20,000 queries) | {:.0} queries/s, p99 {:.1} ms | ≥ 20,000 queries/s |\n\
             | 120-month series, in-process | p50 {:.2} ms, p99 {:.2} ms | p99 ≤ 2 ms |\n\
             | verifying every plan's hash chain from the embedded log, plan by plan (read, hash, link; as `AuditLog/VerifyPlan` does for one) | {:.0} events/s | ≥ 1,000,000 events/s |\n\
             | verifying every chain in one pass over the embedded log, in log order (as `allianced backup`, `restore` and `migrate` do) | {:.0} events/s | ≥ 1,000,000 events/s |\n\
             | the hashing alone (SHA-256 of each record in memory) | {:.0} events/s | ≥ 1,000,000 events/s ([F4]) |\n\
             | exporting every plan's records (streamed, as JSON lines) | {:.0} records/s, resident memory +{:.0} MiB | flat ([F4]) |\n",
            f.events,
            f.plans,
            f.write_rate,
            f.rebuild_rate,
            f.rebuild_rate / f.raw_read_rate.max(1.0),
            f.rebuild_cpu_micros,
            f.raw_read_rate,
            f.rss_before_mib,
            f.rss_after_mib,
            (f.rss_after_mib - f.rss_before_mib) * 1024.0 / (f.events.max(1) as f64),
            f.posture_in_process.0,
            f.posture_in_process.1,
            f.posture_grpc.0,
            f.posture_grpc.1,
            f.posture_grpc_64.0,
            f.posture_grpc_64.1 / 1000.0,
            f.series_in_process.0 / 1000.0,
            f.series_in_process.1 / 1000.0,
            f.verify_rate,
            f.log_verify_rate,
            f.hash_rate,
            f.export_rate,
            f.export_growth,
        ));
    if let Some(bootstrap) = &args.kafka_bootstrap {
        let k = projection::kafka(bootstrap, args.history_events, 8, args.runs).await?;
        let (raw, raw_low, raw_high) = summarize(&k.raw);
        let (rebuild, low, high) = summarize(&k.rebuild);
        report.push_str(&format!(
            "\nThe same history on a Kafka topic of {} partitions ({} events), read in the same run, \
             {} times in turn: (a) a plain rdkafka consumer reading every partition `read_committed` to its \
             end and doing nothing with the records; (b) a fresh read model built from the topic \
             (`TopicReader`, the reader of `alliance-projection` and `allianced` on Kafka).\n\n\
             | reader | median | range |\n|---|---:|---:|\n\
             | (a) raw consume | {raw:.0} records/s | {raw_low:.0}–{raw_high:.0} |\n\
             | (b) read-model rebuild | {rebuild:.0} events/s | {low:.0}–{high:.0} |\n\n\
             Ratio b/a: **{:.2}**. Target ([F3]): at least 0.7.\n",
            k.partitions,
            k.events,
            k.raw.len(),
            rebuild / raw.max(1.0)
        ));
    }
    report.push_str(READ_MODEL_NOTE);
    Ok(report)
}
