//! The services on the broker's SASL_SSL listener (PLAIN over TLS), set up as an operator would:
//! `[kafka.client]` in `allianced`'s configuration file, a file of client settings for the
//! projection replica. What one writes over TLS the other reads over TLS.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{AUDITOR, OwnBroker, Server, fresh_topic, on_topic};

/// A client's `settings` but the bootstrap servers.
fn client_settings(
    settings: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    settings
        .iter()
        .filter(|(key, _)| *key != "bootstrap.servers")
}

/// `allianced` in `dir/writer`, configured as an operator would in `dir/allianced.toml`: the
/// broker at `bootstrap`, `topic`, and the client `settings` as `[kafka.client]`.
fn start_writer(
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    settings: &BTreeMap<String, String>,
) -> Server {
    let mut config =
        format!("[kafka]\nbootstrap = \"{bootstrap}\"\ntopic = \"{topic}\"\n\n[kafka.client]\n");
    for (key, value) in client_settings(settings) {
        config.push_str(&format!("{key:?} = {value:?}\n"));
    }
    let config_path = dir.join("allianced.toml");
    std::fs::write(&config_path, config).unwrap();
    Server::start(
        &dir.join("writer"),
        &[
            "--config".to_owned(),
            config_path.display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--skip-reference-plan".to_owned(),
        ],
    )
}

#[test]
fn the_services_reach_kafka_over_sasl_ssl_from_their_settings() {
    let settings = alliance_eventlog_kafka::local_secure_client().unwrap();
    let bootstrap = settings["bootstrap.servers"].clone();
    let topic = fresh_topic("sasl-ssl");
    let dir = tempfile::tempdir().unwrap();

    let mut file = String::from("# the broker's SASL_SSL listener\n");
    for (key, value) in client_settings(&settings) {
        file.push_str(&format!("{key}={value}\n"));
    }
    let client_file = dir.path().join("kafka-client.properties");
    std::fs::write(&client_file, file).unwrap();

    let writer = start_writer(dir.path(), &bootstrap, &topic, &settings);
    writer.assert_banner(|l| l.contains(&topic));
    let plan = writer.create_plan("Written over TLS");

    let replica = replica_reads_what_was_written(
        &dir.path().join("replica"),
        (&bootstrap, &topic, &client_file),
        &writer,
        &plan,
    );
    // The password is in neither server's output.
    writer.assert_never_printed(&settings["sasl.password"]);
    replica.assert_never_printed(&settings["sasl.password"]);
}

/// The ACLs docs/configuration.md gives a replica (the topic: Describe, Read; its readers' group,
/// `alliance-commands.<topic>-readers`, literal: Read) let the replica's principal read what the
/// writers wrote, and do not let it join the writers' group (`alliance-commands.<topic>`), where
/// a member would claim partitions. On a broker of the test's own, started with the project's
/// configuration (StandardAuthorizer; the SASL user "replica" has no other ACL).
#[test]
fn a_replica_s_principal_reads_the_topic_but_cannot_join_the_writers_group() {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let broker = OwnBroker {
        dir: tempfile::tempdir().unwrap(),
    };
    broker.kafka(&["up"]);
    let state = broker.dir.path();
    let writer_settings =
        alliance_eventlog_kafka::client_settings_file(&state.join("secure-client.properties"))
            .unwrap();
    let replica_file = state.join("replica-client.properties");
    let replica_settings = alliance_eventlog_kafka::client_settings_file(&replica_file).unwrap();
    let bootstrap = writer_settings["bootstrap.servers"].clone();
    let topic = format!("alliance-acl-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();

    // The writer, as the broker's super user "alliance".
    let writer = start_writer(dir.path(), &bootstrap, &topic, &writer_settings);
    let plan = writer.create_plan("Read by a replica");

    // The replica's ACLs, as docs/configuration.md gives them.
    let allow_replica = |acl: &[&str]| {
        broker.kafka(
            &[
                &["acl", "--add", "--allow-principal", "User:replica"][..],
                acl,
            ]
            .concat(),
        );
    };
    allow_replica(&[
        "--operation",
        "Describe",
        "--operation",
        "Read",
        "--topic",
        &topic,
    ]);
    allow_replica(&[
        "--operation",
        "Read",
        "--group",
        &format!("alliance-commands.{topic}-readers"),
    ]);

    // As a member of the writers' group, the replica's principal is refused by the broker.
    let mut member = rdkafka::ClientConfig::new();
    for (key, value) in &replica_settings {
        member.set(key, value);
    }
    let member: BaseConsumer = member
        .set("group.id", format!("alliance-commands.{topic}"))
        .set("client.id", "x@127.0.0.1:1")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let refusal = (0..120)
        .find_map(
            |_| match member.poll(std::time::Duration::from_millis(250)) {
                Some(Err(error)) => Some(error),
                _ => None,
            },
        )
        .expect("the replica's principal joined the writers' group");
    assert_eq!(
        refusal.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed),
        "{refusal}"
    );
    assert!(member.assignment().unwrap().count() == 0);

    // With the same ACLs the replica reads what the writer wrote.
    replica_reads_what_was_written(
        &dir.path().join("replica"),
        (&bootstrap, &topic, &replica_file),
        &writer,
        &plan,
    );
}

/// Starts a read-model replica in `dir` on `topic` with the client settings of `client_file`,
/// and checks that it reads `plan` as `writer` last wrote it.
fn replica_reads_what_was_written(
    dir: &std::path::Path,
    (bootstrap, topic, client_file): (&str, &str, &std::path::Path),
    writer: &Server,
    plan: &str,
) -> Server {
    let replica = Server::start_binary(
        "alliance-projection",
        dir,
        &on_topic(
            bootstrap,
            topic,
            &["--kafka-client-file", &client_file.display().to_string()],
        ),
        "warn,rdkafka::client=off",
    );
    let written = writer.json(AUDITOR, &["plan", "show", "--plan", plan]);
    let version = written["version"].as_u64().unwrap();
    let read = replica.json(
        AUDITOR,
        &[
            "posture",
            "--plan",
            plan,
            "--on",
            "2026-01-01",
            "--min-version",
            &version.to_string(),
        ],
    );
    assert_eq!(read["version"].as_u64(), Some(version), "{read}");
    replica
}
