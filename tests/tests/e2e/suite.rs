//! The whole system as `make up` runs it, on one Kafka topic: two command instances, two
//! projection replicas and a simulation service. Three teams edit the reference plan at once
//! through different instances; disjoint edits all land, overlapping ones conflict with details,
//! and the bilateral endorse/adopt flow completes. A replica reads its writes, a simulation run is
//! recorded and shows in the audit history; then the instance writing the plan and one replica
//! are killed (SIGKILL) and the suite goes on with nothing lost.

use std::collections::BTreeSet;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{AUDITOR, Server, fresh_topic, on_topic, partitions};

const REFERENCE_PLAN: &str = "019a0000-0000-7000-8000-000000000001";
const US: &str = "dev-us-force-planning";
const ROK: &str = "dev-rok-jcs";
const NUCLEAR: &str = "dev-nuclear-policy";
const APPROVERS: &str = "dev-alliance-approvers";

/// A team's token, the instance it works through, and its commands in order.
type Team = (&'static str, Arc<Server>, Vec<Vec<&'static str>>);

fn kafka(topic: &str, extra: &[&str]) -> Vec<String> {
    on_topic(
        &alliance_eventlog_kafka::local_broker().unwrap(),
        topic,
        extra,
    )
}

/// Runs `alliancectl` with `args` (a fixed command id makes it safe to repeat) until it stops
/// answering UNAVAILABLE (exit 5), as clients must while a partition moves; returns the output.
fn retrying(server: &Server, token: &str, args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = server.ctl(token, args);
        if out.status.code() != Some(5) || Instant::now() > deadline {
            return out;
        }
    }
}

fn json_ok(server: &Server, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = retrying(server, token, &all);
    assert!(
        out.status.success(),
        "alliancectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn version_of(result: &Value) -> u64 {
    result["plan_version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no plan_version in {result}"))
}

#[test]
fn three_teams_edit_one_plan_through_the_cluster_and_lose_nothing_when_members_die() {
    let topic = fresh_topic("suite");
    let data = tempfile::tempdir().unwrap();
    // The first command instance loads the reference plan; the second joins the writers' group
    // and takes over some partitions.
    let first = Server::start(
        &data.path().join("allianced-1"),
        &kafka(&topic, &["--kafka-session-timeout-ms", "2000"]),
    );
    first.wait_for_line(|l| l.contains("writing partitions") && partitions(l).len() == 8);
    let loaded = first.version();
    let second = Server::start(
        &data.path().join("allianced-2"),
        &kafka(
            &topic,
            &[
                "--kafka-session-timeout-ms",
                "2000",
                "--skip-reference-plan",
            ],
        ),
    );
    // The partitions are divided between the two, four each.
    let second_writes = partitions(
        &second.wait_for_line(|l| l.contains("writing partitions") && partitions(l).len() == 4),
    );
    first.wait_for_line(|l| l.contains("writing partitions") && partitions(l).len() == 4);
    let replica = |name: &str| {
        Server::start_binary(
            "alliance-projection",
            &data.path().join(name),
            &kafka(&topic, &[]),
            "warn,rdkafka::client=off",
        )
    };
    let (replica_1, replica_2) = (replica("projection-1"), replica("projection-2"));
    let simulation = Server::start_binary(
        "alliance-simulation",
        &data.path().join("simulation"),
        &kafka(&topic, &["--commands", &format!("http://{}", first.addr)]),
        "warn,rdkafka::client=off",
    );
    // The instance that writes the reference plan now, and the other.
    let reference_partition =
        alliance_eventlog_kafka::partition_of(REFERENCE_PLAN.parse().unwrap(), 8);
    let (writer, other) = if second_writes.contains(&reference_partition) {
        (second, first)
    } else {
        (first, second)
    };
    let (writer, other) = (Arc::new(writer), Arc::new(other));

    // Three teams at once, each through its own instance, on disjoint parts of the plan.
    let teams: Vec<Team> = vec![
        (
            US,
            writer.clone(),
            vec![
                vec![
                    "decision",
                    "propose",
                    "--id",
                    "suite-keep-patriot",
                    "--title",
                    "Keep one Patriot battalion after 2029",
                    "--rationale",
                    "limited air defense stays",
                    "--effective",
                    "2029-01-01",
                    "--sides",
                    "us,rok",
                    "--command-id",
                    "01a21d90-0000-7000-8000-000000000001",
                ],
                vec![
                    "element",
                    "reduce",
                    "--decision",
                    "suite-keep-patriot",
                    "--element",
                    "35ada-bde",
                    "--personnel",
                    "900",
                    "--on",
                    "2029-06-01",
                    "--command-id",
                    "01a21d90-0000-7000-8000-000000000002",
                ],
            ],
        ),
        (
            ROK,
            other.clone(),
            vec![
                vec![
                    "decision",
                    "propose",
                    "--id",
                    "suite-rok-lsam-batch2",
                    "--title",
                    "L-SAM second batch",
                    "--rationale",
                    "close the missile-defense gap",
                    "--effective",
                    "2029-01-01",
                    "--sides",
                    "rok",
                    "--command-id",
                    "01a21d90-0000-7000-8000-000000000003",
                ],
                vec![
                    "capability",
                    "invest",
                    "--decision",
                    "suite-rok-lsam-batch2",
                    "--id",
                    "md-lsam-batch2",
                    "--area",
                    "missile_defense",
                    "--description",
                    "L-SAM second batch",
                    "--level-gain",
                    "6",
                    "--delivery",
                    "2030-06-30",
                    "--command-id",
                    "01a21d90-0000-7000-8000-000000000004",
                ],
            ],
        ),
        (
            NUCLEAR,
            other.clone(),
            vec![vec![
                "condition",
                "assess",
                "--condition",
                "alliance-nk-nuclear-response",
                "--on",
                "2026-11-01",
                "--status",
                "partially_met",
                "--note",
                "NCG tabletop exercise",
                "--command-id",
                "01a21d90-0000-7000-8000-000000000005",
            ]],
        ),
    ];
    let threads: Vec<_> = teams
        .into_iter()
        .map(|(token, server, commands)| {
            std::thread::spawn(move || {
                commands
                    .iter()
                    .map(|args| version_of(&json_ok(&server, token, args)))
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let versions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    // All five landed: five new versions, each once.
    assert_eq!(versions.len(), 5);
    assert_eq!(
        versions.iter().copied().collect::<BTreeSet<_>>(),
        (loaded + 1..=loaded + 5).collect::<BTreeSet<_>>()
    );
    let after_edits = loaded + 5;

    // Two planners edit the same element from the same version, through different instances:
    // one wins, the other is refused as a conflict naming the event that won.
    let relocate = |server: &Server, id: &str, base: &str| {
        server.ctl(
            US,
            &[
                "--output",
                "json",
                "element",
                "relocate",
                "--decision",
                "suite-keep-patriot",
                "--element",
                "35ada-bde",
                "--to-base",
                base,
                "--on",
                "2029-07-01",
                "--based-on",
                &after_edits.to_string(),
                "--command-id",
                id,
            ],
        )
    };
    let won = relocate(
        &writer,
        "01a21d90-0000-7000-8000-000000000006",
        "Camp Humphreys",
    );
    assert!(
        won.status.success(),
        "{}",
        String::from_utf8_lossy(&won.stderr)
    );
    let lost = relocate(
        &other,
        "01a21d90-0000-7000-8000-000000000007",
        "Osan Air Base",
    );
    assert_eq!(
        lost.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&lost.stderr)
    );
    let refusal = String::from_utf8_lossy(&lost.stderr);
    assert!(refusal.contains("PLAN_VERSION_CONFLICT"), "{refusal}");
    assert!(
        refusal.contains(&format!("v{}", after_edits + 1)),
        "the refusal names the winning event: {refusal}"
    );

    // The bilateral flow: both sides endorse through different instances; the approvers adopt.
    json_ok(&writer, US, &["decision", "endorse", "suite-keep-patriot"]);
    json_ok(&other, ROK, &["decision", "endorse", "suite-keep-patriot"]);
    let adopted = version_of(&json_ok(
        &other,
        APPROVERS,
        &[
            "decision",
            "adopt",
            "suite-keep-patriot",
            "--acknowledge",
            "constraint:us-personnel-floor",
        ],
    ));
    assert_eq!(writer.decision_status("suite-keep-patriot"), "adopted");

    // A replica reads its writes: the adoption is in its read model as soon as it is asked.
    let decisions = json_ok(
        &replica_2,
        AUDITOR,
        &[
            "decisions",
            "--status",
            "adopted",
            "--min-version",
            &adopted.to_string(),
        ],
    );
    assert!(
        decisions.to_string().contains("suite-keep-patriot"),
        "{decisions}"
    );

    // A simulation run on the simulation service is recorded and shows in the audit history.
    let run = json_ok(
        &simulation,
        US,
        &[
            "simulate",
            "--what-if",
            "--trials",
            "200",
            "--seed",
            "3",
            "--min-version",
            &adopted.to_string(),
        ],
    );
    let recorded = run["recorded_version"].as_u64().unwrap();
    assert!(recorded > adopted, "{run}");
    let history = replica_1.ok(
        AUDITOR,
        &[
            "audit",
            "history",
            "--type",
            "SimulationRunRecorded",
            "--min-version",
            &recorded.to_string(),
            "--output",
            "json",
        ],
    );
    assert!(
        history.contains(run["inputs_digest"].as_str().unwrap()),
        "{history}"
    );

    // The instance writing the plan and one replica die. The survivor takes the plan's
    // partition over; edits sent to it land once (retried with their ids), nothing acknowledged
    // is lost, and the other replica follows.
    Arc::try_unwrap(writer).ok().unwrap().kill();
    replica_2.kill();
    // An assessment of the nuclear response condition on `on`, under the command id `id`.
    let assess = |on: &str, id: &str| {
        json_ok(
            &other,
            NUCLEAR,
            &[
                "condition",
                "assess",
                "--condition",
                "alliance-nk-nuclear-response",
                "--on",
                on,
                "--status",
                "partially_met",
                "--command-id",
                id,
            ],
        )
    };
    let mut last = recorded;
    for (n, id) in [
        "01a21d90-0000-7000-8000-000000000008",
        "01a21d90-0000-7000-8000-000000000009",
    ]
    .iter()
    .enumerate()
    {
        last = version_of(&assess(&format!("2026-12-0{}", n + 1), id));
    }
    assert_eq!(last, recorded + 2);
    // Retrying an acknowledged command appends nothing.
    let again = assess("2026-12-02", "01a21d90-0000-7000-8000-000000000009");
    assert_eq!(version_of(&again), last);
    let shown = json_ok(&other, AUDITOR, &["plan", "show"]);
    assert_eq!(shown["version"].as_u64(), Some(last), "{shown}");
    let decisions = json_ok(
        &replica_1,
        AUDITOR,
        &["decisions", "--min-version", &last.to_string()],
    );
    for id in ["suite-keep-patriot", "suite-rok-lsam-batch2"] {
        assert!(decisions.to_string().contains(id), "{id} lost: {decisions}");
    }
    let verified = json_ok(
        &replica_1,
        AUDITOR,
        &["audit", "verify", "--plan", REFERENCE_PLAN],
    );
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["events"].as_u64(), Some(last), "{verified}");
    drop(other);
}
