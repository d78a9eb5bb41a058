//! Crash safety: a process killed with SIGKILL under load loses no acknowledged append.
//!
//! The parent test re-runs this test binary as a child that executes only
//! [`child_append_loop`], with [`CHILD_DB`] naming the database. The child appends from several
//! tasks and prints one `ack` line per acknowledged event; the parent kills it mid-load, then
//! reopens the database and checks every acknowledged event is there.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

use alliance_eventlog::EventLog;
use uuid::Uuid;

use crate::common::{Acked, append_retrying, assert_log_contains, events, open, read_everything};

/// Set in the child's environment: the database to load.
const CHILD_DB: &str = "ALLIANCE_EVENTLOG_CHILD_DB";
/// The full name of the child test, for `--exact`.
const CHILD_TEST: &str = "crash::child_append_loop";
/// Acknowledgements the parent waits for before killing the child.
const ACKS_BEFORE_KILL: usize = 300;
/// Bounds the child's load, in case no parent is there to kill it.
const CHILD_APPENDS_PER_TASK: usize = 20_000;

/// Kills the child if the parent test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn parse_ack(line: &str) -> Option<Acked> {
    let mut fields = line.strip_prefix("ack ")?.split(' ');
    let plan_id = fields.next()?.parse().ok()?;
    let version = fields.next()?.parse().ok()?;
    let event_id = fields.next()?.parse().ok()?;
    Some(Acked {
        plan_id,
        version,
        event_id,
    })
}

#[test]
fn sigkill_mid_load_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let exe = std::env::current_exe().unwrap();
    let mut child = KillOnDrop(
        Command::new(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();

    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("child stopped after {} acknowledgements", acked.len()))
            .unwrap();
        acked.extend(parse_ack(&line));
    }

    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was not killed: {status}"
    );
    // Lines still in the pipe were acknowledged before the kill too.
    for line in lines {
        acked.extend(parse_ack(&line.unwrap()));
    }
    assert!(acked.len() >= ACKS_BEFORE_KILL);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = open(&path);
        let stored = read_everything(&log).await;
        assert_log_contains(&stored, &acked);
        let plans: HashSet<_> = acked.iter().map(|a| a.plan_id).collect();
        assert!(plans.len() > 1);
        // The log is usable: appends continue at each plan's head.
        for plan in plans {
            let head = log.plan_version(plan).await.unwrap();
            let appended = log
                .append(plan, head, events(&format!("after-crash-{plan}"), 1))
                .await
                .unwrap();
            assert_eq!(appended.first_version, head + 1);
        }
    });
}

/// The child's load; returns at once in normal test runs (without [`CHILD_DB`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_append_loop() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let log = open(path.as_ref());
    let plans: Vec<_> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let log = log.clone();
        let plan_id = plans[task % plans.len()];
        tasks.spawn(async move {
            let mut expected = 0;
            for i in 0..CHILD_APPENDS_PER_TASK {
                let sent = events(&format!("child{task}-{i}"), 1 + i % 2);
                let appended = append_retrying(&log, plan_id, &mut expected, sent.clone()).await;
                // One line per event, written and flushed under one lock so lines never mix.
                let mut out = std::io::stdout().lock();
                for (event, version) in sent.iter().zip(appended.first_version..) {
                    writeln!(out, "ack {plan_id} {version} {}", event.event_id).unwrap();
                }
                out.flush().unwrap();
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
}
