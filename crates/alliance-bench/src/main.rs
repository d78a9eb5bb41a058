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
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Plans the clients spread over (client i edits plan i mod plans).
    #[arg(long, default_value_t = 8)]
    plans: usize,
}

const TOKEN: &str = "Bearer dev-us-force-planning";

struct Server {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("no parent directory of the bench binary")?
        .join("allianced");
    let dir = std::env::temp_dir().join(format!("alliance-bench-{}", uuid::Uuid::now_v7()));
    let mut child = Command::new(&bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--skip-reference-plan",
            "--data-dir",
        ])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {} (run `make bench`)", bin.display()))?;
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
                _dir: dir,
            });
        }
    }
    bail!("allianced exited before listening")
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
    let result = client
        .create_plan(authed(v1::CreatePlanRequest {
            meta: meta(""),
            name: format!("bench plan {n}"),
            description: String::new(),
            horizon_start: date(2020, 1, 1),
            horizon_end: date(2035, 12, 31),
        }))
        .await?
        .into_inner();
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = start_server()?;
    let endpoint = format!("http://{}", server.addr);
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            Channel::from_shared(endpoint.clone())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let mut setup = PlanCommandsClient::new(channels[0].clone());
    let mut plans = Vec::new();
    for n in 0..args.plans.max(1) {
        plans.push(create_plan(&mut setup, n).await?);
    }
    // Warm up connections, caches and the log.
    run_once(&channels, &plans, 16, Duration::from_secs(1), "warmup").await?;

    let mut rows = Vec::new();
    for &clients in &args.clients {
        let mut throughput = Vec::new();
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for run in 0..args.runs {
            let tag = format!("c{clients}-r{run}");
            let r = run_once(
                &channels,
                &plans,
                clients,
                Duration::from_secs(args.seconds),
                &tag,
            )
            .await?;
            let rate = r.commands as f64 / r.seconds;
            eprintln!(
                "clients={clients:>3} run={run}: {rate:>8.0} commands/s, p50 {:.2} ms, p99 {:.2} ms",
                r.p50_ms, r.p99_ms
            );
            throughput.push(rate);
            p50.push(r.p50_ms);
            p99.push(r.p99_ms);
        }
        let low = throughput.iter().copied().fold(f64::INFINITY, f64::min);
        let high = throughput.iter().copied().fold(0.0, f64::max);
        rows.push((
            clients,
            median(throughput),
            low,
            high,
            median(p50),
            median(p99),
        ));
    }
    drop(server);

    let mut report = String::new();
    report.push_str(&format!(
        "# Benchmarks\n\nReproduce with `make bench` (runs `cargo run --release -p alliance-bench -- --out docs/benchmarks.md`).\n\n\
         ## Commands through gRPC on the embedded log\n\n\
         `allianced` (release) runs as its own process on a fresh data directory: SQLite in WAL mode with \
         `synchronous=FULL`, so every acknowledged command is on disk; concurrent appends share a group commit. \
         Each client sends `RegisterForceElement` (one event per command) and waits for the answer before the next; \
         clients spread over {} plans. Each row is the median of {} runs of {} s on this machine \
         ({} cores, shared with the clients). One command appends one event, so events/s equals commands/s.\n\n\
         | clients | commands/s (= events/s), median | range over runs | p50 latency | p99 latency |\n|---:|---:|---:|---:|---:|\n",
        args.plans, args.runs, args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    for (clients, rate, low, high, p50, p99) in &rows {
        report.push_str(&format!(
            "| {clients} | {rate:.0} | {low:.0}–{high:.0} | {p50:.2} ms | {p99:.2} ms |\n"
        ));
    }
    report.push_str(
        "\nTarget ([F1]): at least 10,000 commands/s at 64 clients with durable commits, p99 at most 20 ms.\n",
    );
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &report)?;
    println!("{report}");
    Ok(())
}
