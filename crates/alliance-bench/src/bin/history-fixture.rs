//! Writes a history fixture: the reference plan loaded through the command service, signed by a
//! fresh writer key, onto an embedded log in a temporary directory, then dumped record by record
//! as stored (one JSON object a line: version, event id, command id, event type, record time and
//! the record's bytes in hex) beside the writer's public key.
//!
//! A fixture keeps the bytes one build wrote so that every later build is tested against them
//! (`crates/alliance-record/fixtures/`): run it once when a schema version is current,
//! `cargo run -p alliance-bench --bin history-fixture -- DIR`, and commit what it writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use alliance_commands::CommandService;
use alliance_commands::reference::{self, ReferencePlan};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_record::chain::hex;
use alliance_record::signing::Signer;
use alliance_server::{Authenticator, TokenFile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or_else(|| anyhow::anyhow!("usage: history-fixture DIR"))?,
    );
    std::fs::create_dir_all(&out)?;
    let dir = tempfile::tempdir()?;
    let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db")))?;
    let signer = Signer::generate()?;
    let service = CommandService::open(log.clone())
        .await?
        .with_signer(signer.clone());
    let auth =
        Authenticator::from_token_file(&TokenFile::load(Path::new("deploy/dev-tokens.toml"))?)?;
    let plan = ReferencePlan::read(Path::new("deploy/reference-plan.json"))?;
    reference::load(&service, &auth, &plan).await?;

    let records = log.read_plan(plan.plan_id, 1, usize::MAX).await?;
    let mut lines =
        std::io::BufWriter::new(std::fs::File::create(out.join("reference-plan.jsonl"))?);
    for r in &records {
        writeln!(
            lines,
            "{{\"version\":{},\"event_id\":\"{}\",\"command_id\":\"{}\",\"event_type\":\"{}\",\"record_time_micros\":{},\"record\":\"{}\"}}",
            r.version,
            r.event_id,
            r.command_id,
            r.event_type,
            r.record_time_micros,
            hex(&r.payload)
        )?;
    }
    lines.flush()?;
    std::fs::write(out.join("writer.pub.pem"), signer.public_pem())?;
    println!(
        "{} records of plan {} written to {}",
        records.len(),
        plan.plan_id,
        out.display()
    );
    Ok(())
}
