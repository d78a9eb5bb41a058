//! The projection service on its own beside the command service on one Kafka topic: each
//! replica reads every partition and answers every plan, read-your-writes through
//! `--min-version`; a replica stopped cleanly restarts from its snapshot and reads only the
//! tail, one killed reads the whole topic again, and both end with the same read models.

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use alliance_tests::argv::{self, ElementRegister};
use serde_json::Value;

use crate::support::{AUDITOR, Server, entry, fresh_topic, on_topic};

const US: &str = "dev-us-force-planning";
const ROK: &str = "dev-rok-jcs";
const APPROVERS: &str = "dev-alliance-approvers";
const PROJECTION: &str = "alliance-projection";

/// A topic no other test (or earlier run on the same broker) has used.
fn partition(plan: &str) -> i32 {
    alliance_eventlog_kafka::partition_of(plan.parse().unwrap(), 8)
}

/// One command service writing `topic`, and the data directories of the replicas reading it.
struct Topic {
    name: String,
    /// Stopped before its data directory is deleted.
    writer: Server,
    data: tempfile::TempDir,
    /// Plans created and events written so far.
    written: Cell<(u64, u64)>,
}

impl Topic {
    fn start(name: &str) -> Self {
        let name = fresh_topic(&format!("projection-{name}"));
        let data = tempfile::tempdir().unwrap();
        let writer = Server::start(
            &data.path().join("writer"),
            &on_topic(
                &alliance_eventlog_kafka::local_broker().unwrap(),
                &name,
                &["--skip-reference-plan"],
            ),
        );
        writer.assert_banner(|l| l.contains("writing partitions [0, 1, 2, 3, 4, 5, 6, 7]"));
        Self {
            name,
            writer,
            data,
            written: Cell::default(),
        }
    }

    /// How many plans the topic holds.
    fn plans(&self) -> u64 {
        self.written.get().0
    }

    /// How many events the topic holds.
    fn events(&self) -> u64 {
        self.written.get().1
    }

    /// Notes `plans` plans and `events` events written.
    fn wrote(&self, plans: u64, events: u64) {
        let (p, e) = self.written.get();
        self.written.set((p + plans, e + events));
    }

    fn replica_dir(&self, replica: &str) -> PathBuf {
        self.data.path().join(replica)
    }

    /// Starts a projection replica on the topic with its own data directory.
    fn replica(&self, replica: &str) -> Server {
        let server = Server::start_binary(
            PROJECTION,
            &self.replica_dir(replica),
            &on_topic(
                &alliance_eventlog_kafka::local_broker().unwrap(),
                &self.name,
                &[],
            ),
            "warn,alliance_projection=info,rdkafka::client=off",
        );
        server.assert_banner(|l| l.starts_with("alliance-projection: ") && l.contains(&self.name));
        server
    }

    /// Creates a plan through the command service.
    fn create_plan(&self, name: &str) -> Plan {
        let created = self.writer.json(APPROVERS, &argv::plan_create(name));
        let mut plan = Plan {
            id: created["plan_id"].as_str().unwrap().to_owned(),
            events: Vec::new(),
        };
        plan.note(&created);
        self.wrote(1, plan.version());
        plan
    }

    /// Two plans on different partitions of the topic.
    fn two_plans(&self) -> (Plan, Plan) {
        let first = self.create_plan("first");
        for n in 0..20 {
            let other = self.create_plan(&format!("second {n}"));
            if partition(&other.id) != partition(&first.id) {
                return (first, other);
            }
        }
        panic!("twenty plans all on partition {}", partition(&first.id));
    }

    /// Runs an edit of `plan` through the command service as `token`; returns the new version.
    fn edit(&self, token: &str, plan: &mut Plan, args: &[&str]) -> u64 {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--plan", &plan.id]);
        let result = self.writer.json(token, &all);
        let before = plan.version();
        plan.note(&result);
        self.wrote(0, plan.version() - before);
        plan.version()
    }

    /// Registers a U.S. element of `personnel` on `plan`, present from 2024.
    fn register(&self, plan: &mut Plan, element: &str, personnel: u32) -> u64 {
        let personnel = personnel.to_string();
        let register = ElementRegister {
            personnel: &personnel,
            ..ElementRegister::unit(element)
        };
        self.edit(US, plan, &register.argv())
    }

    /// Proposes `decision` (both sides to endorse) with one step: `element` loses `cut`
    /// personnel on 2029-06-01.
    fn propose_reduction(&self, plan: &mut Plan, decision: &str, element: &str, cut: u32) -> u64 {
        self.edit(
            US,
            plan,
            &argv::decision_propose(
                decision,
                "Reduce the unit",
                "the ROK side takes over the mission",
                "2029-01-01",
                "us,rok",
            ),
        );
        self.edit(
            US,
            plan,
            &[
                "element",
                "reduce",
                "--decision",
                decision,
                "--element",
                element,
                "--personnel",
                &cut.to_string(),
                "--on",
                "2029-06-01",
            ],
        )
    }

    /// Both sides endorse `decision`, then the approvers adopt it.
    fn adopt(&self, plan: &mut Plan, decision: &str) -> u64 {
        self.edit(US, plan, &["decision", "endorse", decision]);
        self.edit(ROK, plan, &["decision", "endorse", decision]);
        self.edit(APPROVERS, plan, &["decision", "adopt", decision])
    }
}

/// A plan and the ids of its events, in version order, as the command service returned them.
struct Plan {
    id: String,
    events: Vec<String>,
}

impl Plan {
    fn version(&self) -> u64 {
        self.events.len() as u64
    }

    /// Notes the events a command result says were appended.
    fn note(&mut self, result: &Value) {
        assert_eq!(result["replayed"], false, "{result}");
        assert_eq!(result["plan_id"], self.id.as_str(), "{result}");
        assert_eq!(
            result["first_version"].as_u64(),
            Some(self.version() + 1),
            "{result}"
        );
        for id in result["event_ids"].as_array().unwrap() {
            self.events.push(id.as_str().unwrap().to_owned());
        }
        assert_eq!(
            result["plan_version"].as_u64(),
            Some(self.version()),
            "{result}"
        );
    }
}

/// A query of `plan` on `server` that must reflect the plan's latest version (as the command
/// service returned it): the server waits until its read model holds it.
fn query(server: &Server, plan: &Plan, args: &[&str]) -> Value {
    let version = plan.version().to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--plan", &plan.id, "--min-version", &version]);
    server.json(AUDITOR, &all)
}

fn posture(server: &Server, plan: &Plan, on: &str) -> Value {
    let posture = query(server, plan, &["posture", "--on", on]);
    assert_eq!(
        posture["version"].as_u64(),
        Some(plan.version()),
        "{posture}"
    );
    posture
}

fn decisions(server: &Server, plan: &Plan) -> Value {
    query(server, plan, &["decisions"])
}

fn decision<'a>(decisions: &'a Value, id: &str) -> &'a Value {
    entry(decisions, "decisions", "decision_id", id)
}

fn personnel_of(posture: &Value, element: &str) -> u64 {
    entry(posture, "elements", "element_id", element)["personnel"]
        .as_u64()
        .unwrap()
}

/// `watch` of `plan` from `from` for `count` events, in JSON, once the server holds the plan as
/// created (read your writes).
fn watch_args(plan: &Plan, from: u64, count: u64) -> [String; 11] {
    [
        "--output",
        "json",
        "watch",
        "--plan",
        &plan.id,
        "--from-version",
        &from.to_string(),
        "--min-version",
        "1",
        "--count",
        &count.to_string(),
    ]
    .map(str::to_owned)
}

/// `watch` from `from` for `count` events, on a server whose read model already holds them.
fn watched(server: &Server, plan: &Plan, from: u64, count: u64) -> Vec<Value> {
    let out = server.ok(
        AUDITOR,
        &watch_args(plan, from, count).each_ref().map(String::as_str),
    );
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts that `events` are versions `first..` of `plan`, in order, with the ids the command
/// service returned.
fn assert_events(plan: &Plan, events: &[Value], first: u64) {
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (first..first + events.len() as u64).collect();
    assert_eq!(versions, expected);
    for event in events {
        let version = event["version"].as_u64().unwrap();
        assert_eq!(event["plan_id"], plan.id.as_str(), "{event}");
        assert_eq!(
            event["event_id"],
            plan.events[usize::try_from(version).unwrap() - 1].as_str(),
            "{event}"
        );
    }
}

/// Everything a server answers about `plan` at its latest version: its events, its decisions
/// and its posture before and after the 2029 steps.
fn everything(server: &Server, plan: &Plan) -> Value {
    serde_json::json!({
        "posture_2025": posture(server, plan, "2025-01-01"),
        "posture_2030": posture(server, plan, "2030-01-01"),
        "decisions": decisions(server, plan),
        "events": watched(server, plan, 0, plan.version()),
    })
}

/// What `alliancectl rebuild` printed (JSON). These logs are far shorter than the 100,000
/// events between two progress reports, so nothing else is printed.
fn rebuild(server: &Server) -> Value {
    let out = server.ctl(APPROVERS, &["--output", "json", "rebuild"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rebuild failed: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `alliancectl watch` left running, killed on drop.
struct Watcher {
    child: Child,
    lines: Receiver<String>,
}

impl Watcher {
    fn start(server: &Server, plan: &Plan, count: u64) -> Self {
        let mut child = crate::support::command("alliancectl")
            .args([
                "--server",
                &format!("http://{}", server.addr),
                "--token",
                AUDITOR,
            ])
            .args(watch_args(plan, 0, count))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sink, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sink.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Every line it prints until it exits (within a minute); asserts it exited cleanly.
    fn finish(mut self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => events.push(serde_json::from_str(&line).unwrap()),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("watch still running: {events:?}"),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch exited with {status}");
        events
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn snapshot(dir: &Path) -> PathBuf {
    dir.join("read-model.snapshot")
}

/// How a replica's read models were made ready: the position of the snapshot it restored (0:
/// none) and how many events of the topic it read after it.
fn opened(replica: &Server) -> (u64, u64) {
    let ready = replica.wait_for_line(|l| l.contains("read models ready"));
    let field = |name: &str| -> u64 {
        ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {ready:?}"))
            .parse()
            .unwrap()
    };
    (field("snapshot_position"), field("tail"))
}

#[test]
fn projection_replicas_on_kafka_answer_every_plan_with_read_your_writes() {
    let topic = Topic::start("replicas");
    let replicas = [topic.replica("a"), topic.replica("b")];
    let (mut cut, mut kept) = topic.two_plans();
    // Started before the plan's edits: what the replica holds, then each event as it arrives.
    let live = Watcher::start(&replicas[1], &cut, 7);

    // One plan: an element, then a decision reducing it by 40 from mid-2029, adopted.
    topic.register(&mut cut, "unit-1", 100);
    topic.propose_reduction(&mut cut, "reduce-unit-1", "unit-1", 40);
    assert_eq!(topic.adopt(&mut cut, "reduce-unit-1"), 7);
    // The other: an element and a proposal left open.
    topic.register(&mut kept, "unit-2", 250);
    topic.propose_reduction(&mut kept, "reduce-unit-2", "unit-2", 50);
    assert_eq!(kept.version(), 4);

    for replica in &replicas {
        // Asked right after the commands returned, each replica answers at their versions.
        let after = posture(replica, &cut, "2030-01-01");
        assert_eq!(personnel_of(&after, "unit-1"), 60, "{after}");
        assert_eq!(after["us_personnel"].as_u64(), Some(60), "{after}");
        assert_eq!(after["decision_ids"], serde_json::json!(["reduce-unit-1"]));
        let before = posture(replica, &cut, "2028-01-01");
        assert_eq!(personnel_of(&before, "unit-1"), 100, "{before}");

        let adopted = decisions(replica, &cut);
        let adopted = decision(&adopted, "reduce-unit-1");
        assert_eq!(adopted["status"], "adopted", "{adopted}");
        assert_eq!(adopted["endorsements"], serde_json::json!(["us", "rok"]));
        assert_eq!(adopted["step_count"].as_u64(), Some(1), "{adopted}");
        let history: Vec<u64> = adopted["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["version"].as_u64().unwrap())
            .collect();
        assert_eq!(history, [3, 4, 5, 6, 7]);

        // The plan on the other partition: the element counts, the proposal does not yet
        // (unless asked what if).
        let open = posture(replica, &kept, "2030-01-01");
        assert_eq!(personnel_of(&open, "unit-2"), 250, "{open}");
        let what_if = query(
            replica,
            &kept,
            &["posture", "--on", "2030-01-01", "--what-if"],
        );
        assert_eq!(personnel_of(&what_if, "unit-2"), 200, "{what_if}");
        let proposed = decisions(replica, &kept);
        assert_eq!(
            decision(&proposed, "reduce-unit-2")["status"],
            "proposed",
            "{proposed}"
        );

        // Every event, in version order, with the ids the commands returned.
        let events = watched(replica, &cut, 0, 7);
        assert_events(&cut, &events, 1);
        let types: Vec<&str> = events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "PlanCreated",
                "ForceElementRegistered",
                "DecisionProposed",
                "ForceElementReductionPlanned",
                "DecisionEndorsed",
                "DecisionEndorsed",
                "DecisionAdopted"
            ]
        );
        assert_events(&cut, &watched(replica, &cut, 5, 3), 5);
        assert_events(&kept, &watched(replica, &kept, 0, 4), 1);

        // The replicas answer exactly what the command service's own read models answer.
        for plan in [&cut, &kept] {
            assert_eq!(everything(replica, plan), everything(&topic.writer, plan));
        }
    }
    assert_events(&cut, &live.finish(), 1);
}

#[test]
fn a_replica_restarts_from_its_snapshot_and_reads_the_tail_and_a_killed_one_rebuilds() {
    let topic = Topic::start("restart");
    let stopped = topic.replica("a");
    let killed = topic.replica("b");
    let (mut first, mut second) = topic.two_plans();
    topic.register(&mut first, "unit-1", 100);
    topic.register(&mut second, "unit-2", 250);
    topic.propose_reduction(&mut first, "reduce-unit-1", "unit-1", 40);
    for replica in [&stopped, &killed] {
        for plan in [&first, &second] {
            posture(replica, plan, "2030-01-01");
        }
    }
    let written = topic.events();

    // Stopped cleanly: it writes a snapshot of everything it read.
    stopped.signal("TERM");
    let line = stopped.wait_for_line(|l| l.contains("read-model snapshot at position"));
    assert_eq!(
        line,
        format!("alliance-projection: read-model snapshot at position {written} written")
    );
    stopped.wait_for_line(|l| l == "alliance-projection: stopped");
    drop(stopped);
    assert!(snapshot(&topic.replica_dir("a")).exists());

    // Edits of both plans (both partitions) while it is down.
    topic.adopt(&mut first, "reduce-unit-1");
    topic.register(&mut second, "unit-3", 30);
    topic.propose_reduction(&mut second, "reduce-unit-2", "unit-2", 50);

    // Restarted on its data: it holds them (the tail after its snapshot) and whatever follows.
    let plans = format!(", {} plans read)", topic.plans());
    let restarted = topic.replica("a");
    restarted.assert_banner(|l| l.contains(&plans));
    let down = topic.events() - written;
    assert_eq!(opened(&restarted), (written, down));
    let after = posture(&restarted, &first, "2030-01-01");
    assert_eq!(personnel_of(&after, "unit-1"), 60, "{after}");
    let open = decisions(&restarted, &second);
    assert_eq!(decision(&open, "reduce-unit-2")["status"], "proposed");
    topic.adopt(&mut second, "reduce-unit-2");
    let adopted = posture(&restarted, &second, "2030-01-01");
    assert_eq!(personnel_of(&adopted, "unit-2"), 200, "{adopted}");
    assert_eq!(personnel_of(&adopted, "unit-3"), 30, "{adopted}");

    // Its read models (snapshot + tail) answer exactly as those of the replica that read the
    // whole topic live.
    let answers: Vec<Value> = [&first, &second]
        .iter()
        .map(|plan| everything(&restarted, plan))
        .collect();
    for (plan, answer) in [&first, &second].iter().zip(&answers) {
        assert_events(plan, answer["events"].as_array().unwrap(), 1);
        assert_eq!(&everything(&killed, plan), answer);
    }

    // Rebuilt from the whole topic, both replicas and the command service hold the same models,
    // and the restarted replica's answers do not change.
    let total = topic.events();
    let rebuilt = rebuild(&restarted);
    assert_eq!(rebuilt["events"].as_u64(), Some(total), "{rebuilt}");
    assert_eq!(rebuilt["plans"].as_u64(), Some(topic.plans()), "{rebuilt}");
    assert_eq!(rebuilt["position"].as_u64(), Some(total), "{rebuilt}");
    let digest = rebuilt["digest"].as_str().unwrap().to_owned();
    assert_eq!(rebuild(&killed)["digest"], digest.as_str());
    assert_eq!(rebuild(&topic.writer)["digest"], digest.as_str());
    for (plan, answer) in [&first, &second].iter().zip(&answers) {
        assert_eq!(&everything(&restarted, plan), answer);
    }

    // Killed: no snapshot; started again on its data it reads the whole topic.
    killed.kill();
    assert!(!snapshot(&topic.replica_dir("b")).exists());
    let again = topic.replica("b");
    again.assert_banner(|l| l.contains(&plans));
    assert_eq!(opened(&again), (0, total));
    for (plan, answer) in [&first, &second].iter().zip(&answers) {
        assert_eq!(&everything(&again, plan), answer);
    }
    assert_eq!(rebuild(&again)["digest"], digest.as_str());
}

#[test]
fn a_query_for_a_version_the_replica_does_not_reach_is_unavailable_and_says_how_far_behind() {
    let topic = Topic::start("behind");
    let replica = topic.replica("a");
    let mut plan = topic.create_plan("behind");
    topic.register(&mut plan, "unit-1", 100);
    posture(&replica, &plan, "2030-01-01");

    // A version 1000 past the plan's: refused once the deadline passes, saying how far behind.
    let started = Instant::now();
    let out = replica.ctl(
        AUDITOR,
        &[
            "--timeout",
            "2",
            "posture",
            "--plan",
            &plan.id,
            "--on",
            "2030-01-01",
            "--min-version",
            "1002",
        ],
    );
    let elapsed = started.elapsed();
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{message}");
    assert!(
        message.contains("is at version 2, 1000 behind the version 1002 asked for"),
        "{message}"
    );
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");

    // The same in JSON, for scripts.
    let out = replica.ctl(
        AUDITOR,
        &[
            "--output",
            "json",
            "--timeout",
            "1",
            "decisions",
            "--plan",
            &plan.id,
            "--min-version",
            "5",
        ],
    );
    assert_eq!(out.status.code(), Some(5));
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["code"], "unavailable", "{error}");
    assert_eq!(error["error"]["grpc_status"], "UNAVAILABLE", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is at version 2, 3 behind the version 5"),
        "{error}"
    );

    // A plan the replica has not seen yet, once the wait is over, is not found: standing is
    // judged on the plan as the replica holds it, and a plan nobody may read there looks the same
    // whether or not it exists elsewhere (its creation may still be on its way: retry).
    let unseen = "019a0000-0000-7000-8000-0000000000ff";
    let out = replica.ctl(
        AUDITOR,
        &[
            "--timeout",
            "1",
            "posture",
            "--plan",
            unseen,
            "--on",
            "2030-01-01",
            "--min-version",
            "1",
        ],
    );
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{message}");
    assert!(
        message.contains(&format!("plan {unseen} not found")),
        "{message}"
    );

    // A query waiting for the next version is answered once the edit is read.
    let waiting = {
        let (addr, id) = (replica.addr.clone(), plan.id.clone());
        std::thread::spawn(move || {
            crate::support::command("alliancectl")
                .args([
                    "--server",
                    &format!("http://{addr}"),
                    "--token",
                    AUDITOR,
                    "--output",
                    "json",
                    "posture",
                    "--plan",
                    &id,
                    "--on",
                    "2030-01-01",
                    "--min-version",
                    "3",
                ])
                .output()
                .unwrap()
        })
    };
    topic.register(&mut plan, "unit-2", 20);
    let out = waiting.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answered["version"].as_u64(), Some(3), "{answered}");
    assert_eq!(personnel_of(&answered, "unit-2"), 20, "{answered}");
}
