//! What signing costs: commands/s at 64 clients against two command services side by side, one
//! signing every record it seals and one not; and verifying a history of signed events from
//! the embedded log, as `AuditLog/VerifyPlan` does (the signatures that cover the others) and
//! checking every signature (one at a time, and in batches).
//!
//! `allianced` always signs: the unsigned writer is built here, from the library, and served
//! the way `allianced` serves its command service (the read models following the same log).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_domain::PlanId;
use alliance_eventlog::{LogReader, SqliteLog, SqliteLogConfig, StoredEvent};
use alliance_record::chain::{self, Verifier};
use alliance_record::signing::{RECORD_CONTEXT, Signer, TrustedKey, TrustedKeys};
use alliance_server::{Authenticator, TokenFile};
use futures::StreamExt;

use crate::projection::{TempDir, write_history};
use crate::{Args, create_plan, median, run_once, suite_channels};

const CLIENTS: usize = 64;
/// Signatures per `verify_batch` call.
const BATCH: usize = 256;

/// A command service with its read models, served over gRPC on loopback from a runtime of its
/// own (two workers, as `allianced` has on this machine), on a fresh embedded log.
struct InProcess {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

impl InProcess {
    fn start(signer: Option<Signer>) -> anyhow::Result<Self> {
        let dir = TempDir::new()?;
        let db = dir.0.join("alliance.db");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let served = async {
                    let log = SqliteLog::open(SqliteLogConfig::new(&db))?;
                    let tokens =
                        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-tokens.toml");
                    let auth =
                        Arc::new(Authenticator::from_token_file(&TokenFile::load(&tokens)?)?);
                    let mut service = CommandService::open(log.clone())
                        .await?
                        .with_default_grants(auth.default_grants());
                    if let Some(signer) = signer {
                        service = service.with_signer(signer);
                    }
                    let service = Arc::new(service);
                    let projection = alliance_projection::Projection::new();
                    projection.catch_up(&log).await?;
                    tokio::spawn(projection.clone().follow(log.clone()));
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?.to_string();
                    let api = PlanCommandsApi::new(service, auth, &addr);
                    let (routes, _health) = alliance_commands::server::routes(api).await?;
                    anyhow::Ok((listener, routes, addr))
                };
                let (listener, routes, addr) = match served.await {
                    Ok(served) => served,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                        return Err(error);
                    }
                };
                let _ = ready_tx.send(Ok(addr));
                alliance_server::serve::serve_routes(listener, routes, None, async {
                    let _ = stopped.await;
                })
                .await?;
                Ok(())
            })
        });
        let addr = ready_rx
            .recv()?
            .map_err(|e| anyhow::anyhow!("the in-process server did not start: {e}"))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What verifying a signed history found.
struct Verified {
    events: u64,
    plans: usize,
    write_rate: f64,
    /// Events/s of `verify_plan` (the chain, and the signatures covering the others).
    covering: f64,
    /// Events measured checking every signature, and the rates one at a time and in batches.
    sampled: u64,
    every: f64,
    batched: f64,
    /// Bytes of resident memory per event a fresh read model took to rebuild this history.
    read_model: f64,
}

pub async fn report(args: &Args) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n## Signing ([G3])\n\n\
         Every record is signed by its writer: Ed25519, one signature per record, made with AWS-LC \
         (`aws-lc-rs`) and checked with `ed25519-dalek`.\n\n",
    );
    let m = commands(args).await?;
    out.push_str(&format!(
        "The command benchmark at {CLIENTS} clients against two command services side by side, each \
         with its read models following an embedded log of its own (SQLite, WAL, `synchronous=FULL`) \
         and served over gRPC on loopback from a runtime of two workers: one signing every record \
         it seals, one built without a key (which `allianced` never is). The runs alternate between \
         the two, each first in turn, each run on fresh plans; each figure is the median of {} \
         runs of {} s. CPU per \
         command is this process's CPU time (both servers and the clients; one server loaded at a \
         time) over the commands of the run.\n\n\
         | log | unsigned (commands/s) | signed (commands/s) | signed / unsigned | CPU per command, unsigned → signed |\n\
         |---|---:|---:|---:|---:|\n\
         | embedded | {:.0} | {:.0} | **{:.3}** | {:.0} → {:.0} µs |\n\n\
         Target ([G3]): signing costs at most 5% (a ratio of at least 0.95). Signing adds {:.0} µs \
         of CPU per command ({:.0}%): one Ed25519 signature per record. Commands/s lose less while \
         the clients wait on the disk's group commits, and on a machine shared with other work; \
         a server with cores of its own, saturated, loses about the CPU share.\n",
        runs(args),
        args.seconds,
        m.off,
        m.on,
        m.on / m.off.max(1.0),
        m.cpu_off,
        m.cpu_on,
        m.cpu_on - m.cpu_off,
        (m.cpu_on / m.cpu_off.max(1.0) - 1.0) * 100.0,
    ));
    if args.history_events > 0 {
        let v = verification(args.history_events).await?;
        out.push_str(&format!(
            "\nA generated history of {} signed events over {} plans (the read-model benchmark's), written \
             to the embedded log ({:.0} events/s), then verified one plan after another from the log (read, decode, \
             hash, link, key and its validity at the record's time, signatures).\n\n\
             | verification | figure | target |\n|---|---:|---:|\n\
             | as `AuditLog/VerifyPlan` does: the signatures covering the others (the last of each key's run, one in every {}) | {:.0} events/s | ≥ 500,000 events/s |\n\
             | checking every signature, one at a time (first {} events) | {:.0} events/s | |\n\
             | checking every signature, in batches of {BATCH} (`verify_batch`; first {} events) | {:.0} events/s | |\n\
             | resident memory of the read models rebuilt from this history (as the writers sign every record; the read models' own row is on the same history unsigned) | {:.2} KiB/event | ≤ 0.5 KiB/event ([G6]) |\n\n\
             Where the time goes: checking one Ed25519 signature costs about {:.0} µs alone and \
             {:.0} µs in a batch on this machine (the last two rows), against well under 1 µs for a \
             record's hash and link. A record's hash covers the hash of the record before it, so \
             one signature vouches for every record before it: verification checks each record's \
             hash, link and key, and the signatures that cover the others; when one of those does \
             not hold, or the chain breaks, it checks each signature since the last that held, to \
             name the first that does not. Checking every signature is what a read model that \
             trusts the writers' keys does as it applies each record.\n",
            v.events,
            v.plans,
            v.write_rate,
            chain::COVER_SPAN,
            v.covering,
            v.sampled,
            v.every,
            v.sampled,
            v.batched,
            v.read_model / 1024.0,
            1e6 / v.every.max(1.0),
            1e6 / v.batched.max(1.0),
        ));
    }
    Ok(out)
}

/// Runs of each server: a difference of a few percent needs more than the other sections.
fn runs(args: &Args) -> usize {
    args.runs.max(5)
}

/// Commands/s at 64 clients, unsigned and signed, and this process's CPU time per command
/// (servers and clients), the runs alternating, in turn first (ABBA: a trend over the runs, as
/// the plans grow, weighs on both alike).
async fn commands(args: &Args) -> anyhow::Result<Measured> {
    let unsigned = InProcess::start(None)?;
    let signed = InProcess::start(Some(Signer::generate()?))?;
    let clients = [
        suite_channels(&unsigned.addr, args.plans).await?,
        suite_channels(&signed.addr, args.plans).await?,
    ];
    for (channels, plans) in &clients {
        run_once(channels, plans, 16, Duration::from_secs(1), "warmup").await?;
    }
    let seconds = Duration::from_secs(args.seconds);
    let mut rates = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for run in 0..runs(args) {
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (channels, _) = &clients[which];
            // Fresh plans each run: a plan's state grows with its events, and so does the cost
            // of a command on it.
            let plans = fresh_plans(&channels[0], args.plans).await?;
            let plans = &plans;
            let before = cpu_seconds();
            let r = run_once(
                channels,
                plans,
                CLIENTS,
                seconds,
                &format!("s{which}-{run}"),
            )
            .await?;
            let used = cpu_seconds() - before;
            rates[which].push(r.commands as f64 / r.seconds);
            cpu[which].push(used / r.commands.max(1) as f64 * 1e6);
        }
        eprintln!(
            "signing: run {run}: {:.0} commands/s unsigned ({:.0} µs CPU each), {:.0} signed ({:.0} µs)",
            rates[0][run], cpu[0][run], rates[1][run], cpu[1][run]
        );
    }
    let [off, on] = rates.map(median);
    let [cpu_off, cpu_on] = cpu.map(median);
    Ok(Measured {
        off,
        on,
        cpu_off,
        cpu_on,
    })
}

/// `n` new plans on the server of `channel`.
async fn fresh_plans(channel: &tonic::transport::Channel, n: usize) -> anyhow::Result<Vec<String>> {
    let mut client =
        alliance_proto::v1::plan_commands_client::PlanCommandsClient::new(channel.clone());
    let mut plans = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        plans.push(create_plan(&mut client, i).await?);
    }
    Ok(plans)
}

/// Commands/s and CPU µs per command, unsigned and signed.
struct Measured {
    off: f64,
    on: f64,
    cpu_off: f64,
    cpu_on: f64,
}

/// The CPU time this process used so far (user and system, every thread), in seconds.
pub(crate) fn cpu_seconds() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, after the command name in parentheses, in clock
    // ticks of 1/100 s.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Writes a signed history of about `events` events, then verifies it plan by plan.
async fn verification(events: usize) -> anyhow::Result<Verified> {
    let dir = TempDir::new()?;
    let log = SqliteLog::open(SqliteLogConfig::new(dir.0.join("alliance.db")))?;
    let writer = Signer::generate()?;
    let trusted = Arc::new(TrustedKeys::new([TrustedKey::always(
        writer.verifying_key(),
    )]));
    let started = Instant::now();
    let (plan_ids, written) = write_history(&log, events, Some(&writer)).await?;
    let write_rate = written as f64 / started.elapsed().as_secs_f64();
    eprintln!("signing: wrote {written} signed events at {write_rate:.0}/s");

    let started = Instant::now();
    let mut verified = 0;
    for plan in &plan_ids {
        let found = alliance_projection::verify_plan(&log, *plan, &trusted)
            .await?
            .ok_or_else(|| anyhow::anyhow!("plan {plan} is not in the log"))?;
        anyhow::ensure!(
            found.first_break.is_none(),
            "plan {plan}: {:?}",
            found.first_break
        );
        anyhow::ensure!(found.head.unsigned_through == 0, "plan {plan} is unsigned");
        verified += found.head.events;
    }
    anyhow::ensure!(verified == written, "verified {verified} of {written}");
    let covering = verified as f64 / started.elapsed().as_secs_f64();
    eprintln!("signing: verified {verified} events at {covering:.0}/s (covering signatures)");

    // Every signature: on the first tenth of the plans (at least one), which is enough to
    // measure and keeps the run short.
    let sample = &plan_ids[..plan_ids.len().div_ceil(10)];
    let started = Instant::now();
    let mut sampled = 0;
    for plan in sample {
        let mut verifier = Verifier::trusting(trusted.clone()).every_signature();
        let mut records = log.plan_records(*plan);
        while let Some(record) = records.next().await {
            verifier.check(&record?)?;
        }
        sampled += verifier.finish()?.events;
    }
    let every = sampled as f64 / started.elapsed().as_secs_f64();
    eprintln!("signing: verified {sampled} events at {every:.0}/s (every signature)");

    let started = Instant::now();
    let mut batched_events = 0;
    for plan in sample {
        batched_events += verify_batched(&log, *plan, &writer).await?;
    }
    let batched = batched_events as f64 / started.elapsed().as_secs_f64();
    eprintln!("signing: verified {batched_events} events at {batched:.0}/s (in batches)");
    drop(log);
    let (_, read_model) = crate::projection::read_model_cost(&dir.0.join("alliance.db")).await?;
    eprintln!(
        "signing: the read models took {:.2} KiB/event",
        read_model / 1024.0
    );
    Ok(Verified {
        events: written,
        plans: plan_ids.len(),
        write_rate,
        covering,
        sampled,
        every,
        batched,
        read_model,
    })
}

/// The chain of `plan` checked record by record, and every signature in batches of [`BATCH`].
async fn verify_batched(log: &SqliteLog, plan: PlanId, writer: &Signer) -> anyhow::Result<u64> {
    let key = writer.verifying_key();
    let mut verifier = Verifier::default();
    let mut records = log.plan_records(plan);
    let mut batch: Vec<StoredEvent> = Vec::with_capacity(BATCH);
    let check = |batch: &mut Vec<StoredEvent>| -> anyhow::Result<()> {
        let mut messages = Vec::with_capacity(batch.len());
        let mut signatures = Vec::with_capacity(batch.len());
        for record in batch.iter() {
            let sealed = chain::sealed(&record.payload)
                .ok_or_else(|| anyhow::anyhow!("an unsealed record"))?;
            let (_, signature) = sealed
                .signature
                .ok_or_else(|| anyhow::anyhow!("an unsigned record"))?;
            let mut message = RECORD_CONTEXT.to_vec();
            message.extend_from_slice(&sealed.hash);
            messages.push(message);
            signatures.push(ed25519_dalek::Signature::from_bytes(&signature));
        }
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &vec![key; messages.len()])
            .map_err(|e| anyhow::anyhow!("a batch of signatures does not verify: {e}"))?;
        batch.clear();
        Ok(())
    };
    while let Some(record) = records.next().await {
        let record = record?;
        verifier.check(&record)?;
        batch.push(record);
        if batch.len() == BATCH {
            check(&mut batch)?;
        }
    }
    if !batch.is_empty() {
        check(&mut batch)?;
    }
    Ok(verifier.finish()?.events)
}
