//! What an instance on Kafka logs at ERROR is what should page an operator: reaching the end of
//! a partition (librdkafka's `PartitionEOF`, "No more messages") when a writer takes a partition
//! over is the normal end of its catch-up read, not an error.

use crate::support::Server;

#[test]
fn taking_a_partition_over_logs_no_error_at_its_end() {
    let broker = alliance_eventlog_kafka::local_broker().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("alliance-logs-{}-{nanos}", std::process::id());
    let data = tempfile::tempdir().unwrap();
    let start = |dir: &str| {
        Server::start_binary(
            "allianced",
            &data.path().join(dir),
            &[
                "--listen".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--kafka-bootstrap".to_owned(),
                broker.clone(),
                "--kafka-topic".to_owned(),
                topic.clone(),
                "--kafka-partitions".to_owned(),
                "1".to_owned(),
            ],
            "error,alliance_eventlog_kafka=info",
        )
    };
    // The first instance writes the reference plan into the partition.
    let first = start("first");
    let loaded = first.version();
    assert!(loaded > 100);
    first.kill();
    // The next one takes the partition over: it reads it to its end before it writes.
    let next = start("next");
    assert!(
        next.banner
            .iter()
            .any(|l| l.contains("writing partitions [0]")),
        "{:?}",
        next.banner
    );
    assert_eq!(next.version(), loaded);
    next.assert_never_printed("No more messages");
    next.assert_never_printed("PartitionEOF");
}
