//! Two command-service processes on one Kafka topic, each writing half of the partitions: teams
//! edit many plans through either; a command for a plan the other instance writes is refused
//! with the owner's address and lands once there; versions stay gapless.

use std::sync::Arc;

use crate::support::Server;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command at `servers[first]`, following "served by ADDR" to the owner. Returns the
/// stdout of the instance that took it.
fn at_owner(servers: &[Arc<Server>], first: usize, token: &str, args: &[&str]) -> String {
    let mut server = &servers[first];
    for _ in 0..2 {
        let out = server.ctl(token, args);
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap();
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        let owner = stderr
            .split("served by ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no owner named: {stderr}"));
        server = servers
            .iter()
            .find(|s| s.addr == owner)
            .unwrap_or_else(|| panic!("unknown owner {owner}"));
    }
    panic!("{args:?} was not taken by its owner");
}

#[test]
fn two_instances_split_the_partitions_and_send_callers_to_the_owner() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let topic = format!("alliance-cluster-{}", std::process::id());
    let ports = [free_port(), free_port()];
    let halves = ["0,1,2,3", "4,5,6,7"];
    let data = tempfile::tempdir().unwrap();
    let servers: Vec<Arc<Server>> = (0..2)
        .map(|i| {
            let other = 1 - i;
            let owners: Vec<String> = halves[other]
                .split(',')
                .map(|p| format!("{p}=127.0.0.1:{}", ports[other]))
                .collect();
            let args = vec![
                "--listen".to_owned(),
                format!("127.0.0.1:{}", ports[i]),
                "--kafka-bootstrap".to_owned(),
                bootstrap.clone(),
                "--kafka-topic".to_owned(),
                topic.clone(),
                "--kafka-owned-partitions".to_owned(),
                halves[i].to_owned(),
                "--kafka-owner".to_owned(),
                owners.join(","),
            ];
            Arc::new(Server::start(&data.path().join(i.to_string()), &args))
        })
        .collect();
    // Exactly one instance loads the reference plan: the one that writes it.
    let loaded = servers
        .iter()
        .filter(|s| s.banner.iter().any(|l| l.contains("entries loaded now")))
        .count();
    assert_eq!(loaded, 1);

    // Four teams at once, each creating plans and registering elements through either instance.
    let teams: Vec<_> = (0..4)
        .map(|team| {
            let servers = servers.clone();
            std::thread::spawn(move || {
                let mut plans = Vec::new();
                for n in 0..4 {
                    let out = at_owner(
                        &servers,
                        (team + n) % 2,
                        "dev-alliance-approvers",
                        &[
                            "--output",
                            "json",
                            "plan",
                            "create",
                            "--name",
                            &format!("team {team} plan {n}"),
                            "--horizon-start",
                            "2020-01-01",
                            "--horizon-end",
                            "2035-12-31",
                        ],
                    );
                    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
                    let plan = created["plan_id"].as_str().unwrap().to_owned();
                    for e in 0..3 {
                        at_owner(
                            &servers,
                            (team + n + e) % 2,
                            "dev-us-force-planning",
                            &[
                                "element",
                                "register",
                                "--plan",
                                &plan,
                                "--id",
                                &format!("e{e}"),
                                "--name",
                                "unit",
                                "--side",
                                "us",
                                "--component",
                                "army",
                                "--kind",
                                "logistics",
                                "--personnel",
                                "100",
                                "--base",
                                "Camp Humphreys",
                                "--present-from",
                                "2024-01-01",
                            ],
                        );
                    }
                    plans.push(plan);
                }
                plans
            })
        })
        .collect();
    let plans: Vec<String> = teams.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(plans.len(), 16);

    // Each plan: exactly its four events, at versions 1..=4, wherever it lives.
    let mut owners_used = std::collections::BTreeSet::new();
    for plan in &plans {
        let out = at_owner(
            &servers,
            0,
            "dev-auditors",
            &["--output", "json", "plan", "show", "--plan", plan],
        );
        let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(shown["version"].as_u64(), Some(4), "{shown}");
        assert_eq!(shown["elements"].as_array().unwrap().len(), 3);
        owners_used.insert(
            servers
                .iter()
                .position(|s| {
                    s.ctl("dev-auditors", &["plan", "show", "--plan", plan])
                        .status
                        .success()
                })
                .unwrap(),
        );
    }
    assert_eq!(owners_used.len(), 2, "both instances own some of the plans");
}

#[test]
fn a_killed_instance_restarts_and_retried_commands_keep_their_first_results() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let topic = format!("alliance-restart-{}", std::process::id());
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--kafka-bootstrap".to_owned(),
        bootstrap,
        "--kafka-topic".to_owned(),
        topic,
        "--skip-reference-plan".to_owned(),
    ];
    let server = Server::start(data.path(), &args);
    let plan = server.create_plan("restart");
    let register = |server: &Server, n: usize| {
        let command_id = format!("01a21c46-0000-7000-8000-{n:012}");
        let out = server.register(
            &plan,
            &format!("e{n}"),
            &["--output", "json"],
            &["--command-id", &command_id],
        );
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    };
    // Half the commands are acknowledged, then the instance is killed without warning.
    let first: Vec<serde_json::Value> = (0..10).map(|n| register(&server, n).unwrap()).collect();
    server.kill();

    // Restarted on the same topic, it rebuilds its partitions; every command is retried with
    // its id: the acknowledged ones return their first results, the rest are applied once.
    let server = Server::start(data.path(), &args);
    for n in 0..20 {
        let result = register(&server, n).unwrap();
        if let Some(original) = first.get(n) {
            assert_eq!(result["event_ids"], original["event_ids"], "command {n}");
            assert_eq!(result["replayed"], true);
        }
    }
    let shown: serde_json::Value = serde_json::from_str(&server.ok(
        "dev-auditors",
        &["--output", "json", "plan", "show", "--plan", &plan],
    ))
    .unwrap();
    assert_eq!(shown["version"].as_u64(), Some(21), "{shown}");
    assert_eq!(shown["elements"].as_array().unwrap().len(), 20);
}

#[test]
fn a_stale_owner_resumed_after_its_partitions_were_taken_over_cannot_write() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let topic = format!("alliance-stale-{}", std::process::id());
    let data = tempfile::tempdir().unwrap();
    let args = |port: u16| {
        vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--kafka-bootstrap".to_owned(),
            bootstrap.clone(),
            "--kafka-topic".to_owned(),
            topic.clone(),
            "--skip-reference-plan".to_owned(),
        ]
    };
    let stale = Server::start(&data.path().join("a"), &args(free_port()));
    let plan = stale.create_plan("stale");
    let register = |server: &Server, element: &str| server.register(&plan, element, &[], &[]);
    assert!(register(&stale, "before").status.success());

    // The owner stalls (SIGSTOP); a new instance takes every partition over, fencing it.
    stale.signal("STOP");
    let owner = Server::start(&data.path().join("b"), &args(free_port()));
    assert!(register(&owner, "by-new-owner").status.success());

    // Resumed, the stale owner still believes it owns the plan: its write is refused.
    stale.signal("CONT");
    let refused = register(&stale, "by-stale-owner");
    assert_eq!(refused.status.code(), Some(5), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("taken over"), "{message}");

    // Read-committed, the plan holds exactly the owners' writes, gapless.
    drop(owner);
    let reader = Server::start(&data.path().join("c"), &args(free_port()));
    let shown: serde_json::Value = serde_json::from_str(&reader.ok(
        "dev-auditors",
        &["--output", "json", "plan", "show", "--plan", &plan],
    ))
    .unwrap();
    assert_eq!(shown["version"].as_u64(), Some(3), "{shown}");
    let mut elements: Vec<&str> = shown["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["element_id"].as_str().unwrap())
        .collect();
    elements.sort_unstable();
    assert_eq!(elements, vec!["before", "by-new-owner"]);
}

/// A broker of this test's own (so restarting it disturbs no other test), stopped on drop.
struct OwnBroker {
    dir: tempfile::TempDir,
}

impl OwnBroker {
    fn kafka(&self, args: &[&str]) -> String {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kafka/kafka.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(args)
            .env("ALLIANCE_KAFKA_DIR", self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kafka.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.kafka(&["down"]));
    }
}

#[test]
fn the_service_recovers_from_a_broker_restart_without_losing_acknowledged_commands() {
    let broker = OwnBroker {
        dir: tempfile::tempdir().unwrap(),
    };
    let up = broker.kafka(&["up"]);
    let bootstrap = up.trim().rsplit(' ').next().unwrap().to_owned();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &[
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--kafka-bootstrap".to_owned(),
            bootstrap,
            "--skip-reference-plan".to_owned(),
        ],
    );
    let plan = server.create_plan("restart");
    // Retries the same command (same id) while the service reports itself unavailable.
    let register = |n: usize| {
        let command_id = format!("01a21c5b-0000-7000-8000-{n:012}");
        let element = format!("e{n}");
        for _ in 0..30 {
            let out = server.register(
                &plan,
                &element,
                &[],
                &["--command-id", &command_id, "--timeout", "10"],
            );
            match out.status.code() {
                Some(0) => return,
                Some(5) => continue,
                _ => panic!("{}", String::from_utf8_lossy(&out.stderr)),
            }
        }
        panic!("command {n} never went through");
    };
    (0..5).for_each(register);
    broker.kafka(&["down", "--keep"]);
    broker.kafka(&["up"]);
    (5..10).for_each(register);

    let shown: serde_json::Value = serde_json::from_str(&server.ok(
        "dev-auditors",
        &["--output", "json", "plan", "show", "--plan", &plan],
    ))
    .unwrap();
    assert_eq!(shown["version"].as_u64(), Some(11), "{shown}");
    assert_eq!(shown["elements"].as_array().unwrap().len(), 10);
}
