//! The simulation service on its own beside the command service on one Kafka topic: it reads
//! the reference plan from the topic, records a completed run through the command service as
//! the caller, and another instance that did not keep the run reproduces it from the record.

use serde_json::Value;

use crate::support::{AUDITOR, Server, fresh_topic, on_topic};

const US: &str = "dev-us-force-planning";

#[test]
fn a_run_on_the_simulation_service_is_recorded_and_reproduced_elsewhere() {
    let topic = fresh_topic("simulation");
    let broker = alliance_eventlog_kafka::local_broker().unwrap();
    let data = tempfile::tempdir().unwrap();
    // The command service loads the reference plan onto the topic.
    let writer = Server::start(&data.path().join("writer"), &on_topic(&broker, &topic, &[]));
    let loaded = writer.version();
    assert!(loaded > 100, "the reference plan has {loaded} versions");

    let simulation = Server::start_binary(
        "alliance-simulation",
        &data.path().join("simulation"),
        &on_topic(
            &broker,
            &topic,
            &["--commands", &format!("http://{}", writer.addr)],
        ),
        "warn,rdkafka::client=off",
    );
    simulation.assert_banner(|l| l.starts_with("alliance-simulation: ") && l.contains(&topic));

    let run: Value = simulation.json(
        US,
        &[
            "simulate",
            "--what-if",
            "--trials",
            "300",
            "--seed",
            "5",
            "--min-version",
            &loaded.to_string(),
        ],
    );
    assert_eq!(run["plan_version"], loaded);
    assert_eq!(run["recorded_version"], loaded + 1);
    assert_eq!(run["actor"]["team"], "us-force-planning");
    assert_eq!(run["monthly"].as_array().unwrap().len(), 96);
    assert_eq!(writer.version(), loaded + 1);

    // The command service's history names the run, its inputs and results (read once its read
    // model holds the run's record).
    let recorded_version = (loaded + 1).to_string();
    let history = writer.ok(
        AUDITOR,
        &[
            "audit",
            "history",
            "--min-version",
            &recorded_version,
            "--type",
            "SimulationRunRecorded",
            "--output",
            "json",
        ],
    );
    let recorded: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recorded.len(), 1, "{history}");
    let text = recorded[0].to_string();
    for field in ["run_id", "inputs_digest", "results_digest"] {
        let value = run[field].as_str().unwrap();
        assert!(text.contains(value), "{field} {value} not in {text}");
    }

    // allianced's own simulation service never kept the run: it reproduces it from the record.
    let reproduced: Value = writer.json(
        AUDITOR,
        &["simulation", "get", run["run_id"].as_str().unwrap()],
    );
    assert_eq!(reproduced["results_digest"], run["results_digest"]);
    assert_eq!(reproduced["monthly"], run["monthly"]);
    assert_eq!(reproduced["recorded_version"], run["recorded_version"]);
}
