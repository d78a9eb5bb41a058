//! Copies of a log: an online backup of the embedded log and its restore, and moving a history
//! to a Kafka topic and back, each beside a plain read of its source.

use std::time::Instant;

use alliance_eventlog::{Checkpoint, LogReader, SqliteLog, SqliteLogConfig};
use alliance_eventlog_kafka::{KafkaLog, KafkaLogConfig, TopicReader};
use alliance_logcopy::{Migration, migrate};
use futures::StreamExt;

use crate::Args;
use crate::projection::{TempDir, write_history};

/// Events/s of reading `log` to its end, doing nothing with the records.
async fn raw_read<R: LogReader>(log: &R) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut records = log.read_after(&Checkpoint::default(), false);
    let mut n = 0u64;
    while let Some(record) = records.next().await {
        record?;
        n += 1;
    }
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

pub async fn report(args: &Args) -> anyhow::Result<String> {
    let events = args.history_events;
    let dir = TempDir::new()?;
    let data = dir.0.join("data");
    let source = SqliteLog::open(SqliteLogConfig::new(data.join("alliance.db")))?;
    let (_, written) = write_history(&source, events, None).await?;
    let size = std::fs::metadata(data.join("alliance.db"))?.len() as f64 / (1 << 20) as f64;
    let (_, sqlite_raw) = raw_read(&source).await?;
    eprintln!("logcopy: {written} events, {size:.0} MiB; raw read {sqlite_raw:.0}/s");

    let started = Instant::now();
    let backup = alliance_logcopy::backup(&data, &dir.0.join("backup")).await?;
    let backup_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        backup.inventory.events == written,
        "the backup holds {} events",
        backup.inventory.events
    );
    let started = Instant::now();
    alliance_logcopy::restore(&dir.0.join("backup"), &dir.0.join("restored")).await?;
    let restore_s = started.elapsed().as_secs_f64();
    eprintln!("logcopy: backup {backup_s:.1} s, restore {restore_s:.1} s");

    let mut report = format!(
        "\n## Copies of a log: backup, restore, moving to Kafka\n\n\
         Reproduce with `cargo run --release -p alliance-bench -- --only log-copy`. A generated history of \
         {written} events ({} plans, {size:.0} MiB of SQLite) on the embedded log.\n\n\
         | operation | time | events/s |\n|---|---:|---:|\n\
         | plain read of the embedded log (`read_after`, records counted) | {:.1} s | {sqlite_raw:.0} |\n\
         | `allianced backup`: the online backup (SQLite backup API), then every chain verified on the copy and each head checked in the log | {backup_s:.1} s | {:.0} |\n\
         | `allianced restore`: the copy into a new data directory, then every chain, head and the count checked against the manifest | {restore_s:.1} s | {:.0} |\n",
        backup.inventory.plans.len(),
        written as f64 / sqlite_raw,
        written as f64 / backup_s,
        written as f64 / restore_s,
    );

    if let Some(bootstrap) = &args.kafka_bootstrap {
        let topic = format!("alliance-bench-migration-{}", uuid::Uuid::now_v7());
        let mut config = KafkaLogConfig::new(bootstrap, &topic);
        config.partitions = 8;
        config.owned = Some((0..8).collect());
        config.transactional_prefix = topic.clone();
        let kafka = KafkaLog::open(config.clone()).await?;
        let reader = TopicReader::new(config);
        let started = Instant::now();
        let to_kafka = migrate(&source, &kafka, &reader, &Migration::default()).await?;
        let to_kafka_s = started.elapsed().as_secs_f64();
        anyhow::ensure!(to_kafka.complete && to_kafka.copied == written);
        let (_, kafka_raw) = raw_read(&reader).await?;
        let back = SqliteLog::open(SqliteLogConfig::new(dir.0.join("back/alliance.db")))?;
        let started = Instant::now();
        let from_kafka = migrate(&reader, &back, &back, &Migration::default()).await?;
        let from_kafka_s = started.elapsed().as_secs_f64();
        anyhow::ensure!(from_kafka.complete && from_kafka.copied == written);
        eprintln!(
            "logcopy: to kafka {to_kafka_s:.1} s, raw topic read {kafka_raw:.0}/s, back {from_kafka_s:.1} s"
        );
        report.push_str(&format!(
            "| `allianced migrate to-kafka` (8 partitions): the source read and verified, the copy, the topic read back and verified | {to_kafka_s:.1} s | {:.0} |\n\
             | plain read of the topic (`TopicReader`, `read_committed`, records counted) | {:.1} s | {kafka_raw:.0} |\n\
             | `allianced migrate from-kafka` into a new embedded log, same three passes | {from_kafka_s:.1} s | {:.0} |\n",
            written as f64 / to_kafka_s,
            written as f64 / kafka_raw,
            written as f64 / from_kafka_s,
        ));
    }
    report.push_str(
        "\nWhere the time goes: a migration reads its source twice (once to verify every chain and judge the target before writing anything, once to copy) and reads the target back to verify it, so it is bounded below by three reads and one write; the copy to Kafka is one transaction per partition batch of queued appends, each command one append. A backup is one pass of the SQLite backup API (page copies, no decoding) and one verifying read of the copy.\n",
    );
    Ok(report)
}
