//! The services on the broker's SASL_SSL listener (PLAIN over TLS), set up as an operator would:
//! `[kafka.client]` in `allianced`'s configuration file, a file of client settings for the
//! projection replica. What one writes over TLS the other reads over TLS.

use crate::support::{AUDITOR, Server};

#[test]
fn the_services_reach_kafka_over_sasl_ssl_from_their_settings() {
    let settings = alliance_eventlog_kafka::local_secure_client().unwrap();
    let bootstrap = settings["bootstrap.servers"].clone();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let topic = format!("alliance-sasl-ssl-{}-{millis}", std::process::id());
    let dir = tempfile::tempdir().unwrap();

    let mut config =
        format!("[kafka]\nbootstrap = \"{bootstrap}\"\ntopic = \"{topic}\"\n\n[kafka.client]\n");
    let mut file = String::from("# the broker's SASL_SSL listener\n");
    for (key, value) in settings
        .iter()
        .filter(|(key, _)| *key != "bootstrap.servers")
    {
        config.push_str(&format!("{key:?} = {value:?}\n"));
        file.push_str(&format!("{key}={value}\n"));
    }
    let config_path = dir.path().join("allianced.toml");
    std::fs::write(&config_path, config).unwrap();
    let client_file = dir.path().join("kafka-client.properties");
    std::fs::write(&client_file, file).unwrap();

    let writer = Server::start(
        &dir.path().join("writer"),
        &[
            "--config".to_owned(),
            config_path.display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--skip-reference-plan".to_owned(),
        ],
    );
    assert!(
        writer.banner.iter().any(|l| l.contains(&topic)),
        "{:?}",
        writer.banner
    );
    let plan = writer.create_plan("Written over TLS");

    let replica = Server::start_binary(
        "alliance-projection",
        &dir.path().join("replica"),
        &[
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--kafka-bootstrap".to_owned(),
            bootstrap,
            "--kafka-topic".to_owned(),
            topic,
            "--kafka-client-file".to_owned(),
            client_file.display().to_string(),
        ],
        "warn,rdkafka::client=off",
    );
    let written = writer.json(AUDITOR, &["plan", "show", "--plan", &plan]);
    let version = written["version"].as_u64().unwrap();
    let read = replica.json(
        AUDITOR,
        &[
            "posture",
            "--plan",
            &plan,
            "--on",
            "2026-01-01",
            "--min-version",
            &version.to_string(),
        ],
    );
    assert_eq!(read["version"].as_u64(), Some(version), "{read}");
    // The password is in neither server's output.
    writer.assert_never_printed(&settings["sasl.password"]);
    replica.assert_never_printed(&settings["sasl.password"]);
}
