//! What a flood of unauthenticated calls costs the callers who are authenticated: the release
//! `allianced` (its own process, the embedded log, the security log in its data directory)
//! answers one authenticated client calling `PlanCommands/GetPlan` back to back, alone and
//! then while 64 other clients, each on a connection of its own, send 10,000 calls without
//! credentials; the report gives the authenticated calls' p99 in both phases and what the
//! flood added to the security log (bytes on disk, rows).

use std::path::Path;
use std::time::{Duration, Instant};

use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use anyhow::Context;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::{Args, create_plan, median, start_server};

/// Clients of the flood, each on a connection of its own.
const FLOODERS: usize = 64;
/// Unauthenticated calls per flood, over all its clients.
const FLOOD_CALLS: usize = 10_000;
/// Authenticated calls measured alone, before each flood.
const ALONE_CALLS: usize = 2_000;

/// One flood and the authenticated calls beside it.
struct Run {
    /// p99 of the authenticated calls alone, and during the flood (µs).
    alone_p99: f64,
    flood_p99: f64,
    /// Authenticated calls answered during the flood, and how long the flood lasted.
    beside: u64,
    flood_seconds: f64,
    /// Refusals answered to the flood (every one of its calls must be refused).
    refused: usize,
    /// What the flood added to the security log: bytes of its files, rows, refusals counted.
    bytes: i64,
    rows: i64,
    counted: u64,
}

pub async fn report(args: &Args) -> anyhow::Result<String> {
    let server = start_server(&[])?;
    let endpoint = format!("http://{}", server.addr);
    let connect = || async {
        anyhow::Ok(
            alliance_auth::endpoint(&endpoint, None)?
                .tcp_nodelay(true)
                .connect()
                .await?,
        )
    };
    let authenticated = connect().await?;
    let plan = create_plan(&mut PlanCommandsClient::new(authenticated.clone()), 0).await?;
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        flooders.push(connect().await?);
    }
    let security = server
        .data_dir
        .as_ref()
        .context("allianced has a data directory")?
        .0
        .join("security.db");
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(run_once(&authenticated, &flooders, &plan, &security).await?);
    }
    let alone = median(runs.iter().map(|r| r.alone_p99).collect());
    let during = median(runs.iter().map(|r| r.flood_p99).collect());
    let ratios = median(runs.iter().map(|r| r.flood_p99 / r.alone_p99).collect());
    let beside = median(runs.iter().map(|r| r.beside as f64).collect());
    let seconds = median(runs.iter().map(|r| r.flood_seconds).collect());
    let bytes = median(runs.iter().map(|r| r.bytes as f64).collect());
    let rows = median(runs.iter().map(|r| r.rows as f64).collect());
    let most_bytes = runs.iter().map(|r| r.bytes).max().unwrap_or(0);
    let most_rows = runs.iter().map(|r| r.rows).max().unwrap_or(0);
    let refused = runs.iter().map(|r| r.refused).min().unwrap_or(0);
    let counted = runs.iter().map(|r| r.counted).min().unwrap_or(0);
    let total = file_bytes(&security);
    Ok(format!(
        "\n## A flood of unauthenticated calls\n\n\
         The release `allianced` runs as its own process (the embedded log, the security log in its \
         data directory, the default limits: 64 calls in progress per connection, 60 s request \
         timeout). One authenticated client calls `PlanCommands/GetPlan` back to back: {ALONE_CALLS} \
         calls alone, then for as long as {FLOODERS} other clients, each on a connection of its own, \
         send {FLOOD_CALLS} calls of the same method without credentials (each refused \
         `UNAUTHENTICATED` and recorded in the security log). Each figure is the median of {} runs \
         (one server, the security log growing from run to run).\n\n\
         | authenticated `GetPlan` | p99 |\n\
         |---|---:|\n\
         | alone | {:.2} ms |\n\
         | during the flood ({:.0} calls answered over {:.1} s) | {:.2} ms |\n\
         | during / alone (median of the runs' ratios) | **{:.2}** |\n\n\
         The flood was refused in full (at least {refused} of {FLOOD_CALLS} calls UNAUTHENTICATED in \
         every run; the security log counted at least {counted}). What one flood of {FLOOD_CALLS} \
         calls added to the security log: {:.0} rows and {:.1} KiB of its SQLite files (median; at \
         most {most_rows} row(s) and {:.1} KiB), {:.1} KiB in all after the {} runs: refusals are \
         counted per caller (an unauthenticated one by its address), method, code, reason and \
         minute, and written in batches, so the rows grow with the callers and the minutes, not \
         with the calls.\n",
        args.runs,
        alone / 1000.0,
        beside,
        seconds,
        during / 1000.0,
        ratios,
        rows,
        bytes / 1024.0,
        most_bytes as f64 / 1024.0,
        total as f64 / 1024.0,
        args.runs,
    ))
}

async fn run_once(
    authenticated: &Channel,
    flooders: &[Channel],
    plan: &str,
    security: &Path,
) -> anyhow::Result<Run> {
    let (rows_before, counted_before) = denials(authenticated).await?;
    let bytes_before = file_bytes(security);

    // Alone.
    let mut client = PlanCommandsClient::new(authenticated.clone());
    let mut alone = Histogram::<u64>::new(3)?;
    for _ in 0..ALONE_CALLS {
        alone.record(get_plan(&mut client, plan, true).await?)?;
    }

    // During the flood.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let beside = {
        let flooding = flooding.clone();
        let mut client = client.clone();
        let plan = plan.to_owned();
        tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3)?;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                histogram.record(get_plan(&mut client, &plan, true).await?)?;
            }
            anyhow::Ok(histogram)
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, channel) in flooders.iter().enumerate() {
        let calls = FLOOD_CALLS / flooders.len() + usize::from(i < FLOOD_CALLS % flooders.len());
        let mut client = PlanCommandsClient::new(channel.clone());
        let plan = plan.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..calls {
                if get_plan(&mut client, &plan, false).await.is_err() {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await?;
    }
    let flood_seconds = started.elapsed().as_secs_f64();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let during = beside.await??;

    let (rows_after, counted) = denials(authenticated).await?;
    Ok(Run {
        alone_p99: alone.value_at_quantile(0.99) as f64,
        flood_p99: during.value_at_quantile(0.99) as f64,
        beside: during.len(),
        flood_seconds,
        refused,
        bytes: file_bytes(security) as i64 - bytes_before as i64,
        rows: rows_after as i64 - rows_before as i64,
        counted: counted.saturating_sub(counted_before),
    })
}

/// One `GetPlan`, with the development token or without credentials: its latency in µs, or
/// an error when it was refused.
async fn get_plan(
    client: &mut PlanCommandsClient<Channel>,
    plan: &str,
    token: bool,
) -> anyhow::Result<u64> {
    let mut request = tonic::Request::new(v1::GetPlanRequest {
        plan_id: plan.to_owned(),
    });
    if token {
        request
            .metadata_mut()
            .insert("authorization", crate::TOKEN.parse()?);
    }
    let started = Instant::now();
    client.get_plan(request).await?;
    Ok(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// The security log's rows, and the refusals they count, as the auditors read them.
async fn denials(channel: &Channel) -> anyhow::Result<(usize, u64)> {
    let mut request = tonic::Request::new(v1::ListDenialsRequest {
        since: None,
        limit: 1000,
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer dev-auditors".parse()?);
    let mut client = AuditLogClient::new(channel.clone());
    let listed = tokio::time::timeout(Duration::from_secs(30), client.list_denials(request))
        .await??
        .into_inner()
        .denials;
    Ok((listed.len(), listed.iter().map(|d| d.count).sum()))
}

/// Bytes of the security log's SQLite files (the database, its write-ahead log and index).
fn file_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).ok()
        })
        .map(|m| m.len())
        .sum()
}
