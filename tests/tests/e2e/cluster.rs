//! Command-service processes on one Kafka topic, dividing its partitions through the writers'
//! group: teams edit many plans through any instance (a command for a plan another instance
//! writes is forwarded there); when an instance dies or stalls its partitions move, retried
//! commands keep their first results, and a stalled writer's late writes never become visible.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::support::{OwnBroker, Server, on_topic, partitions};
use alliance_stdx::lock;

fn partition(plan: &str) -> i32 {
    alliance_eventlog_kafka::partition_of(plan.parse().unwrap(), 8)
}

/// How long a silent instance keeps its partitions in these tests.
const SESSION_TIMEOUT_MS: &str = "2000";

/// Flags of an instance on `topic` of the project's broker.
fn kafka_args(topic: &str) -> Vec<String> {
    on_topic(
        &alliance_eventlog_kafka::local_broker().unwrap(),
        topic,
        &["--kafka-session-timeout-ms", SESSION_TIMEOUT_MS],
    )
}

/// Flags of an instance on a fresh topic named for `test`, without the reference plan.
fn fresh_args(test: &str) -> Vec<String> {
    let topic = format!("alliance-{test}-{}", std::process::id());
    let mut args = kafka_args(&topic);
    args.push("--skip-reference-plan".to_owned());
    args
}

/// Waits until `server` says it writes partitions satisfying `done`; returns them.
fn writes(server: &Server, done: impl Fn(&BTreeSet<i32>) -> bool) -> BTreeSet<i32> {
    partitions(&server.wait_for_line(|l| l.contains("writing partitions") && done(&partitions(l))))
}

fn plan_state(server: &Server, plan: &str) -> serde_json::Value {
    server.json("dev-auditors", &["plan", "show", "--plan", plan])
}

fn element_ids(shown: &serde_json::Value) -> BTreeSet<String> {
    shown["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["element_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_instances_divide_the_partitions_and_forward_commands_to_the_writer() {
    let topic = format!("alliance-cluster-{}", std::process::id());
    let data = tempfile::tempdir().unwrap();
    let first = Arc::new(Server::start(&data.path().join("a"), &kafka_args(&topic)));
    let second = Arc::new(Server::start(&data.path().join("b"), &kafka_args(&topic)));
    // The second joins: the partitions are divided between the two, four each.
    let b = writes(&second, |p| p.len() == 4);
    let a = writes(&first, |p| p.len() == 4);
    assert!(a.is_disjoint(&b), "{a:?} and {b:?} overlap");
    // The reference plan was loaded once, by whichever instance wrote it first.
    let loaded: usize = [&first, &second]
        .iter()
        .flat_map(|s| s.banner.iter())
        .filter_map(|l| {
            l.split(" entries loaded now")
                .next()?
                .rsplit('(')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(loaded, reference_entries());

    // Four teams at once, each creating plans and registering elements through either instance,
    // never told where a plan is written.
    let servers = [first.clone(), second.clone()];
    let teams: Vec<_> = (0..4)
        .map(|team| {
            let servers = servers.clone();
            std::thread::spawn(move || {
                let mut plans = Vec::new();
                for n in 0..4 {
                    let server = &servers[(team + n) % 2];
                    let plan = server.create_plan(&format!("team {team} plan {n}"));
                    for e in 0..3 {
                        let out =
                            servers[(team + n + e) % 2].register(&plan, &format!("e{e}"), &[], &[]);
                        assert!(
                            out.status.success(),
                            "{}",
                            String::from_utf8_lossy(&out.stderr)
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

    // Each plan: exactly its four events, at versions 1..=4, read through either instance.
    let mut partitions_used = BTreeSet::new();
    for plan in &plans {
        for server in &servers {
            let shown = plan_state(server, plan);
            assert_eq!(shown["version"].as_u64(), Some(4), "{shown}");
            assert_eq!(element_ids(&shown).len(), 3);
        }
        partitions_used.insert(partition(plan));
    }
    assert!(
        partitions_used.iter().any(|p| a.contains(p))
            && partitions_used.iter().any(|p| b.contains(p)),
        "both instances write some of the plans: {partitions_used:?} over {a:?} / {b:?}"
    );
}

#[test]
fn a_killed_instance_s_partitions_move_and_retried_commands_keep_their_first_results() {
    let data = tempfile::tempdir().unwrap();
    let args = fresh_args("kill");
    let survivor = Arc::new(Server::start(&data.path().join("a"), &args));
    let victim = Arc::new(Server::start(&data.path().join("b"), &args));
    let victims = writes(&victim, |p| p.len() == 4);
    writes(&survivor, |p| p.len() == 4);

    // Plans on both sides: three written by each instance.
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    while theirs.len() < 3 || ours.len() < 3 {
        let plan = survivor.create_plan("load");
        let side = if victims.contains(&partition(&plan)) {
            &mut theirs
        } else {
            &mut ours
        };
        if side.len() < 3 {
            side.push(plan);
        }
    }

    // One client per plan registers 15 elements, each command with its own id, through either
    // instance, retrying (same id) while the answer is UNAVAILABLE.
    let acked: Arc<Mutex<BTreeMap<String, serde_json::Value>>> = Arc::default();
    let (progress, acks) = std::sync::mpsc::channel();
    let clients: Vec<_> = theirs
        .iter()
        .chain(&ours)
        .cloned()
        .enumerate()
        .map(|(c, plan)| {
            let servers = [survivor.clone(), victim.clone()];
            let acked = acked.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                for n in 0..15 {
                    let command_id = format!("01a21d00-0000-7000-8000-{c:04}{n:08}");
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
                    for attempt in 0.. {
                        let out = servers[(n + attempt) % 2].register(
                            &plan,
                            &format!("e{n}"),
                            &["--output", "json"],
                            &["--command-id", &command_id, "--timeout", "10"],
                        );
                        match out.status.code() {
                            Some(0) => {
                                let result = serde_json::from_slice(&out.stdout).unwrap();
                                lock(&acked).insert(command_id.clone(), result);
                                let _ = progress.send(());
                                break;
                            }
                            Some(5) if std::time::Instant::now() < deadline => {}
                            _ => panic!("{command_id}: {}", String::from_utf8_lossy(&out.stderr)),
                        }
                    }
                }
                plan
            })
        })
        .collect();
    drop(progress);
    // Killed without warning in the middle of the load.
    for _ in 0..30 {
        acks.recv().unwrap();
    }
    victim.signal("KILL");
    let plans: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    // The survivor writes every partition now; every plan holds each command exactly once.
    writes(&survivor, |p| p.len() == 8);
    for plan in &plans {
        let shown = plan_state(&survivor, plan);
        assert_eq!(shown["version"].as_u64(), Some(16), "{shown}");
        assert_eq!(element_ids(&shown).len(), 15);
    }
    // Retried once more, every acknowledged command returns its first result.
    let acked = lock(&acked);
    assert_eq!(acked.len(), 90);
    for (command_id, first) in acked.iter() {
        let plan = first["plan_id"].as_str().unwrap();
        let n: usize = command_id[command_id.len() - 8..].parse().unwrap();
        let out = survivor.register(
            plan,
            &format!("e{n}"),
            &["--output", "json"],
            &["--command-id", command_id],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(again["event_ids"], first["event_ids"], "{command_id}");
        assert_eq!(again["replayed"], true);
    }
}

/// `partition`'s last stable offset (below it every transaction has ended: what a
/// `read_committed` reader can read up to) and high watermark, on the project's broker.
fn stable_and_high(topic: &str, partition: i32) -> (i64, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let watermark = |isolation: &str| {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set(
                "bootstrap.servers",
                alliance_eventlog_kafka::local_broker().unwrap(),
            )
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, std::time::Duration::from_secs(10))
            .unwrap();
        high
    };
    (watermark("read_committed"), watermark("read_uncommitted"))
}

/// An instance killed in the middle of a transaction that spans several of its partitions
/// holds back every `read_committed` reader of them (the read models among them) only until
/// another instance has taken them over: seconds, not the transaction's timeout (60 s).
#[test]
fn a_writer_killed_inside_a_transaction_holds_the_readers_back_only_until_the_take_over() {
    let data = tempfile::tempdir().unwrap();
    let test = "killed-in-transaction";
    let topic = format!("alliance-{test}-{}", std::process::id());
    let args = fresh_args(test);
    // The victim first: the survivor's first partitions are four, so that it is seen taking
    // all eight only after the kill.
    let victim = Arc::new(Server::start(&data.path().join("b"), &args));
    let survivor = Server::start(&data.path().join("a"), &args);
    let victims = writes(&victim, |p| p.len() == 4);
    writes(&survivor, |p| p.len() == 4);
    // Two plans on each of the victim's partitions, each edited by a client of its own.
    let mut plans: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    while plans.values().map(Vec::len).sum::<usize>() < 8 {
        let plan = victim.create_plan("killed");
        let on = plans.entry(partition(&plan)).or_default();
        if victims.contains(&partition(&plan)) && on.len() < 2 {
            on.push(plan);
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (progress, acks) = std::sync::mpsc::channel();
    let clients: Vec<_> = plans
        .values()
        .flatten()
        .cloned()
        .map(|plan| {
            let (victim, stop, progress) = (victim.clone(), stop.clone(), progress.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let out = victim.register(&plan, &format!("e{n}"), &[], &["--timeout", "5"]);
                    if out.status.success() {
                        let _ = progress.send(());
                    }
                }
            })
        })
        .collect();
    drop(progress);

    // Stopped, then killed, once stopped while a transaction is open on two of its partitions
    // or more (its records written, its commit not).
    let mut open = Vec::new();
    for _ in 0..300 {
        acks.recv().unwrap();
        victim.signal("STOP");
        open = victims
            .iter()
            .map(|&p| (p, stable_and_high(&topic, p)))
            .filter(|(_, (stable, high))| stable < high)
            .collect();
        if open.len() >= 2 {
            break;
        }
        victim.signal("CONT");
    }
    assert!(
        open.len() >= 2,
        "never stopped inside a transaction over two partitions"
    );
    victim.signal("KILL");
    let killed = std::time::Instant::now();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    // The survivor takes every partition over, ending the killed writer's transaction: the
    // readers read past it well before the broker would have aborted it.
    writes(&survivor, |p| p.len() == 8);
    let deadline = killed + std::time::Duration::from_secs(20);
    for (partition, (_, high)) in &open {
        loop {
            let (stable, _) = stable_and_high(&topic, *partition);
            if stable >= *high {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "partition {partition}: readers still held at {stable} of {high}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let recovered = killed.elapsed();
    eprintln!("readers read past the killed writer's transaction {recovered:?} after the kill");
    for client in clients {
        client.join().unwrap();
    }
    // The plans continue through the survivor.
    for plan in plans.values().flatten() {
        let after = survivor.register(plan, "after", &[], &[]);
        assert!(
            after.status.success(),
            "{}",
            String::from_utf8_lossy(&after.stderr)
        );
    }
}

#[test]
fn a_stalled_writer_whose_partitions_moved_makes_no_late_write_visible() {
    let data = tempfile::tempdir().unwrap();
    let args = fresh_args("stale");
    let stale = Arc::new(Server::start(&data.path().join("a"), &args));
    let plan = stale.create_plan("stale");
    assert!(stale.register(&plan, "before", &[], &[]).status.success());

    // The writer stalls (SIGSTOP); commands keep arriving for it.
    stale.signal("STOP");
    let late: Vec<_> = (0..3)
        .map(|n| {
            let (stale, plan) = (stale.clone(), plan.clone());
            std::thread::spawn(move || {
                let element = format!("late-{n}");
                let out = stale.register(&plan, &element, &[], &["--timeout", "60"]);
                (element, out)
            })
        })
        .collect();

    // Its session expires: a new instance is given every partition and fences it.
    let owner = Server::start(&data.path().join("b"), &args);
    writes(&owner, |p| p.len() == 8);
    assert!(
        owner
            .register(&plan, "by-new-owner", &[], &[])
            .status
            .success()
    );

    // Resumed, the stalled writer answers what it had queued: each command either lands through
    // the new owner or is refused; none of its own writes after the fencing is visible.
    stale.signal("CONT");
    let mut expected: BTreeSet<String> = ["before", "by-new-owner"].map(str::to_owned).into();
    for thread in late {
        let (element, out) = thread.join().unwrap();
        match out.status.code() {
            Some(0) => {
                expected.insert(element);
            }
            Some(5) => {}
            _ => panic!("{element}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    let shown = plan_state(&owner, &plan);
    assert_eq!(element_ids(&shown), expected);
    assert_eq!(
        shown["version"].as_u64(),
        Some(expected.len() as u64 + 1),
        "{shown}"
    );
}

/// A writer fenced by another (two instances told to write the same partitions: the second
/// takes them over) stops serving them at its first refused commit, although nothing revokes
/// them: it no longer answers with what it last knew of a plan the other has written since.
#[test]
fn a_fenced_writer_stops_serving_its_partitions_at_its_first_refused_commit() {
    let data = tempfile::tempdir().unwrap();
    let mut args = fresh_args("fenced");
    args.extend([
        "--kafka-owned-partitions".to_owned(),
        "0,1,2,3,4,5,6,7".to_owned(),
    ]);
    let first = Server::start(&data.path().join("a"), &args);
    let plan = first.create_plan("fenced");
    assert!(first.register(&plan, "before", &[], &[]).status.success());
    assert_eq!(
        element_ids(&plan_state(&first, &plan)),
        ["before".to_owned()].into()
    );

    // The second takes every partition over, fencing the first, and writes the plan.
    let second = Server::start(&data.path().join("b"), &args);
    assert!(
        second
            .register(&plan, "by-second", &[], &[])
            .status
            .success()
    );

    // The first learns it is fenced from its next commit, which is refused.
    let late = first.register(&plan, "late", &[], &[]);
    assert_eq!(
        late.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
    // From then on it does not answer from what it last knew (without "by-second").
    let stale = first.ctl("dev-auditors", &["plan", "show", "--plan", &plan]);
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(
        stale.status.code(),
        Some(5),
        "{}{stderr}",
        String::from_utf8_lossy(&stale.stdout)
    );
    assert!(stderr.contains(&plan), "{stderr}");
    let written = plan_state(&second, &plan);
    assert_eq!(
        element_ids(&written),
        ["before", "by-second"].map(str::to_owned).into()
    );
}

/// A command forwarded to a writer that then stalls does not wait on it until the caller's
/// deadline: once the forwarding instance has taken the stalled writer's partitions over, the
/// command is answered UNAVAILABLE saying the plan moved, and its retry with the same command
/// id is applied once.
#[test]
fn a_command_forwarded_to_a_stalled_writer_is_answered_once_its_partition_moves() {
    let data = tempfile::tempdir().unwrap();
    let args = fresh_args("stalled-owner");
    let first = Server::start(&data.path().join("a"), &args);
    let second = Server::start(&data.path().join("b"), &args);
    let written_by_second = writes(&second, |p| p.len() == 4);
    writes(&first, |p| p.len() == 4);
    let plan = (0..40)
        .map(|n| second.create_plan(&format!("stalled owner {n}")))
        .find(|plan| written_by_second.contains(&partition(plan)))
        .expect("forty plans, none in the second's partitions");

    // The second stalls; a command for its plan reaches the first, which forwards it there.
    // The caller's deadline is far past the session timeout.
    second.signal("STOP");
    let command = ["--command-id", "during-the-stall", "--timeout", "40"];
    let out = first.register(&plan, "during-stall", &[], &command);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("moved") && !stderr.contains("deadline exceeded"),
        "{stderr}"
    );

    // The first writes the plan now; the retry is applied, once.
    writes(&first, |p| p.len() == 8);
    let retry = first.register(&plan, "during-stall", &[], &command);
    assert!(
        retry.status.success(),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let again = first.register(&plan, "during-stall", &[], &command);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let shown = plan_state(&first, &plan);
    assert_eq!(element_ids(&shown), ["during-stall".to_owned()].into());
    assert_eq!(shown["version"].as_u64(), Some(2), "{shown}");
    second.signal("CONT");
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
    let server = Arc::new(server);
    let plan = server.create_plan("restart");
    // Three clients register elements, each command retried with its id while the service
    // reports itself unavailable; the broker restarts while they do.
    let (progress, acks) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (server, plan, progress) = (server.clone(), plan.clone(), progress.clone());
            std::thread::spawn(move || {
                for n in 0..8 {
                    let command_id = format!("01a21c5b-0000-7000-8000-{c:04}{n:08}");
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
                    loop {
                        let out = server.register(
                            &plan,
                            &format!("e{c}-{n}"),
                            &[],
                            &["--command-id", &command_id, "--timeout", "10"],
                        );
                        match out.status.code() {
                            Some(0) => break,
                            Some(5) if std::time::Instant::now() < deadline => {}
                            _ => panic!("{}", String::from_utf8_lossy(&out.stderr)),
                        }
                    }
                    let _ = progress.send(());
                }
            })
        })
        .collect();
    drop(progress);
    for _ in 0..6 {
        acks.recv().unwrap();
    }
    broker.kafka(&["down", "--keep"]);
    broker.kafka(&["up"]);
    for client in clients {
        client.join().unwrap();
    }

    // The writers' group may rebalance once more after the broker is back; while the plan's
    // partition moves, the service answers UNAVAILABLE (exit 5), and clients retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let shown: serde_json::Value = loop {
        let out = server.ctl(
            "dev-auditors",
            &["--output", "json", "plan", "show", "--plan", &plan],
        );
        match out.status.code() {
            Some(0) => break serde_json::from_slice(&out.stdout).unwrap(),
            Some(5) if std::time::Instant::now() < deadline => {}
            _ => panic!("{}", String::from_utf8_lossy(&out.stderr)),
        }
    };
    assert_eq!(shown["version"].as_u64(), Some(25), "{shown}");
    assert_eq!(shown["elements"].as_array().unwrap().len(), 24);
}

#[test]
fn started_while_the_broker_is_down_the_service_retries_with_backoff_and_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let mut child = crate::support::command("allianced")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--skip-reference-plan",
            "--data-dir",
        ])
        .arg(data.path())
        .args(["--kafka-bootstrap", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A clear error, then another attempt: it waits and retries rather than giving up.
    let mut errors = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("cannot open the Kafka log"));
    let first = errors.next().expect("no error reported");
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");
    assert!(first.contains("retry_in"), "{first}");
    errors.next().expect("no second attempt");
    assert!(child.try_wait().unwrap().is_none(), "it gave up");

    // Asked to stop while waiting, it exits with the reason, not a panic.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = errors.collect();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{rest:?}");
}

/// Plans are listed whichever instance writes them, and after partitions moved: an instance that
/// wrote every partition alone, then gave half of them to a second one, still lists every plan.
#[test]
fn plans_are_listed_whichever_instance_writes_them_after_partitions_moved() {
    let data = tempfile::tempdir().unwrap();
    let args = fresh_args("list");
    let first = Server::start(&data.path().join("a"), &args);
    writes(&first, |p| p.len() == 8);
    // Plans in every partition, all written by the first instance.
    let mut plans = BTreeSet::new();
    let mut spread = BTreeSet::new();
    while spread.len() < 8 {
        let plan = first.create_plan("listed");
        spread.insert(partition(&plan));
        plans.insert(plan);
    }
    let second = Server::start(&data.path().join("b"), &args);
    writes(&second, |p| p.len() == 4);
    writes(&first, |p| p.len() == 4);
    for server in [&first, &second] {
        // Once this instance's read models hold every plan written.
        for plan in &plans {
            server.ok(
                "dev-alliance-approvers",
                &[
                    "posture",
                    "--plan",
                    plan,
                    "--on",
                    "2030-01-01",
                    "--min-version",
                    "1",
                ],
            );
        }
        let listed = server.json("dev-alliance-approvers", &["plan", "list"]);
        let ids: BTreeSet<String> = listed["plans"]
            .as_array()
            .unwrap_or_else(|| panic!("{listed}"))
            .iter()
            .map(|p| p["plan_id"].as_str().unwrap().to_owned())
            .collect();
        assert!(plans.is_subset(&ids), "{} of {}", ids.len(), plans.len());
    }
}

/// The entries of `deploy/reference-plan.json`.
fn reference_entries() -> usize {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/reference-plan.json");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plan["entries"].as_array().expect("entries").len()
}
