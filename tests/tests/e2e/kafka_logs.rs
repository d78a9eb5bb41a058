//! What an instance on Kafka logs at ERROR is what should page an operator: reaching the end of
//! a partition (librdkafka's `PartitionEOF`, "No more messages") when a writer takes a partition
//! over is the normal end of its catch-up read, not an error.

use crate::support::{Server, fresh_topic, on_topic};

#[test]
fn taking_a_partition_over_logs_no_error_at_its_end() {
    let broker = alliance_eventlog_kafka::local_broker().unwrap();
    let topic = fresh_topic("logs");
    let data = tempfile::tempdir().unwrap();
    let start = |dir: &str| {
        Server::start_binary(
            "allianced",
            &data.path().join(dir),
            &on_topic(&broker, &topic, &["--kafka-partitions", "1"]),
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
    next.assert_banner(|l| l.contains("writing partitions [0]"));
    assert_eq!(next.version(), loaded);
    next.assert_never_printed("No more messages");
    next.assert_never_printed("PartitionEOF");
}
