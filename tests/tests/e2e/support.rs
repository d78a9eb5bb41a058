//! Starting the real binaries.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use alliance_stdx::lock;
use alliance_tests::argv::{self, ElementRegister};

pub const REFERENCE_PLAN: &str = "019a0000-0000-7000-8000-000000000001";
pub const AUDITOR: &str = "dev-auditors";

/// A command running one of this workspace's binaries from the repository root.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(bin(name));
    command.current_dir(repo());
    command
}

/// Where cargo put this workspace's binaries (`make test` builds them first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`make test` does)",
        path.display()
    );
    path
}

pub use alliance_tests::server::repo;

/// Asserts that `output` exited with `code` and that its stderr names each of `names`.
#[track_caller]
pub fn assert_refused(output: &Output, code: i32, names: &[&str]) {
    assert_eq!(output.status.code(), Some(code));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(names.iter().all(|name| message.contains(name)), "{message}");
}

/// A topic no other test uses: `what`, this process and the time.
pub fn fresh_topic(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("alliance-{what}-{}-{nanos}", std::process::id())
}

/// The flags of a server on `topic` of the broker at `bootstrap`, listening on an ephemeral
/// loopback port, then `extra`.
pub fn on_topic(bootstrap: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
        "--kafka-bootstrap",
        bootstrap,
        "--kafka-topic",
        topic,
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect()
}

/// The partitions in an "allianced: writing partitions [..]" line.
pub fn partitions(line: &str) -> BTreeSet<i32> {
    line.rsplit('[')
        .next()
        .unwrap()
        .trim_end_matches([']', ')'])
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

pub struct Server {
    child: Child,
    pub addr: String,
    pub banner: Vec<String>,
    /// Every line the server printed, banner included.
    output: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Server {
    /// Asserts that a line of the banner is one `said` accepts.
    #[track_caller]
    pub fn assert_banner(&self, said: impl Fn(&str) -> bool) {
        assert!(self.banner.iter().any(|l| said(l)), "{:?}", self.banner);
    }

    /// Starts `allianced` on `data` (with `extra` flags) and waits for the line saying where it
    /// listens.
    pub fn start(data: &Path, extra: &[String]) -> Self {
        Self::launch("allianced", data, extra, None)
    }

    /// Starts the server binary `name` (e.g. `alliance-projection`) on `data` (with `extra`
    /// flags) and waits for the line saying where it listens. Its log, filtered by `log` (a
    /// `RUST_LOG` filter), is read with what it prints, for [`Server::wait_for_line`].
    pub fn start_binary(name: &str, data: &Path, extra: &[String], log: &str) -> Self {
        Self::launch(name, data, extra, Some(log))
    }

    /// [`Server::start_binary`] with `env` set for it (and no other `OTEL_*` variable).
    pub fn start_with_env(
        name: &str,
        data: &Path,
        extra: &[String],
        log: &str,
        env: &[(&str, String)],
    ) -> Self {
        Self::spawn(name, data, extra, Some(log), env)
    }

    fn launch(name: &str, data: &Path, extra: &[String], log: Option<&str>) -> Self {
        Self::spawn(name, data, extra, log, &[])
    }

    fn spawn(
        name: &str,
        data: &Path,
        extra: &[String],
        log: Option<&str>,
        env: &[(&str, String)],
    ) -> Self {
        let mut command = Command::new(bin(name));
        // Telemetry is exported only where a test asks for it.
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().map(|(key, value)| (key, value)));
        command
            .current_dir(repo())
            .args(["--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped());
        match log {
            Some(filter) => {
                command
                    .env("RUST_LOG", filter)
                    .env("NO_COLOR", "1")
                    .stderr(Stdio::piped());
            }
            None => {
                command.env("RUST_LOG", "warn,rdkafka::client=off");
            }
        }
        let mut child = command.spawn().unwrap();
        let output: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        if let Some(stderr) = child.stderr.take() {
            collect(BufReader::new(stderr).lines(), output.clone());
        }
        Self::listening(child, output.clone()).unwrap_or_else(|mut child| {
            let _ = child.kill();
            let _ = child.wait();
            let printed = lock(&output.0).clone();
            panic!("{name} exited before listening: {printed:?}");
        })
    }

    /// Reads `child`'s standard output, each line kept in `output`, up to the line saying where
    /// it listens, then goes on reading it on a thread of its own (so the server never blocks on
    /// a full pipe). `Err` with the child when its output ends first.
    #[allow(clippy::result_large_err)]
    fn listening(
        mut child: Child,
        output: Arc<(Mutex<Vec<String>>, Condvar)>,
    ) -> Result<Self, Child> {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push(line.clone());
            lock(&output.0).push(line.clone());
            if let Some(rest) = line.split(" listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_owned();
                collect(lines, output.clone());
                return Ok(Self {
                    child,
                    addr,
                    banner,
                    output,
                });
            }
        }
        Err(child)
    }

    /// Starts the server binary `name` with `args` in `dir`, with only `env` (and `PATH`,
    /// `HOME`) in its environment, as a container would run it, and waits for the line saying
    /// where it listens. When it exits first: everything it printed, the reason last.
    pub fn start_as_configured(
        name: &str,
        args: &[String],
        env: &[(String, String)],
        dir: &Path,
    ) -> Result<Self, Vec<String>> {
        let mut command = Command::new(bin(name));
        command
            .env_clear()
            .envs(
                ["PATH", "HOME"]
                    .into_iter()
                    .filter_map(|key| Some((key, std::env::var(key).ok()?))),
            )
            .envs(env.iter().map(|(key, value)| (key, value)))
            .env("NO_COLOR", "1")
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let output: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let stderr = collect(
            BufReader::new(child.stderr.take().unwrap()).lines(),
            output.clone(),
        );
        let mut child = match Self::listening(child, output.clone()) {
            Ok(server) => return Ok(server),
            Err(child) => child,
        };
        // stdout closed: the process is exiting; its stderr ends with it.
        let status = child.wait().unwrap();
        stderr.join().unwrap();
        let mut printed = lock(&output.0).clone();
        printed.push(format!("{name} exited before listening: {status}"));
        Err(printed)
    }

    /// Waits (up to a minute) for a printed line that satisfies `matches`.
    pub fn wait_for_line(&self, matches: impl Fn(&str) -> bool) -> String {
        let (lines, printed) = &*self.output;
        let lines = lock(lines);
        let (lines, timeout) = printed
            .wait_timeout_while(lines, Duration::from_secs(60), |lines| {
                !lines.iter().any(|l| matches(l))
            })
            .unwrap();
        assert!(!timeout.timed_out(), "no such line in {:?}", *lines);
        lines.iter().find(|l| matches(l)).unwrap().clone()
    }

    /// Fails if any line printed so far contains `text`.
    pub fn assert_never_printed(&self, text: &str) {
        let lines = lock(&self.output.0);
        let found: Vec<&String> = lines.iter().filter(|l| l.contains(text)).collect();
        assert!(found.is_empty(), "printed {text:?}: {found:?}");
    }

    /// Creates a plan (2020–2035) as the alliance approvers and returns its id.
    pub fn create_plan(&self, name: &str) -> String {
        let created = self.json("dev-alliance-approvers", &argv::plan_create(name));
        created["plan_id"].as_str().unwrap().to_owned()
    }

    /// Registers a small U.S. logistics unit `element` on `plan` as the U.S. cell; `extra`
    /// flags go before the subcommand (e.g. `--output json`) or after it (e.g. `--command-id`).
    pub fn register(&self, plan: &str, element: &str, global: &[&str], extra: &[&str]) -> Output {
        let mut args = global.to_vec();
        args.extend(ElementRegister::unit(element).on(plan).argv());
        args.extend_from_slice(extra);
        self.ctl("dev-us-force-planning", &args)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Runs `alliancectl` as `token` against this server, on the reference plan.
    pub fn ctl(&self, token: &str, args: &[&str]) -> Output {
        Command::new(bin("alliancectl"))
            .args([
                "--server",
                &format!("http://{}", self.addr),
                "--token",
                token,
            ])
            .args(args)
            .env("ALLIANCE_PLAN", REFERENCE_PLAN)
            .output()
            .unwrap()
    }

    pub fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.ctl(token, args);
        assert!(
            out.status.success(),
            "alliancectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, token: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(token, &all)).unwrap()
    }

    pub fn version(&self) -> u64 {
        let plan = self.json(AUDITOR, &["plan", "show"]);
        plan["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no version in {plan}"))
    }

    pub fn decision_status(&self, id: &str) -> String {
        let plan = self.json(AUDITOR, &["plan", "show"]);
        entry(&plan, "decisions", "decision_id", id)["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The entry of the JSON array `value[list]` whose `key` is `id`.
pub fn entry<'a>(
    value: &'a serde_json::Value,
    list: &str,
    key: &str,
    id: &str,
) -> &'a serde_json::Value {
    value[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {value}"))
        .iter()
        .find(|e| e[key] == id)
        .unwrap_or_else(|| panic!("no {key} {id} in {value}"))
}

/// Appends each line of `lines` to `output` (on a thread of its own) and wakes its waiters.
fn collect(
    lines: impl Iterator<Item = std::io::Result<String>> + Send + 'static,
    output: Arc<(Mutex<Vec<String>>, Condvar)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            lock(&output.0).push(line);
            output.1.notify_all();
        }
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker of a test's own (so restarting it, or its configuration as started now, disturbs
/// no other test), stopped on drop.
pub struct OwnBroker {
    pub dir: tempfile::TempDir,
}

impl OwnBroker {
    /// Runs `deploy/kafka/kafka.sh` on this broker; its standard output.
    pub fn kafka(&self, args: &[&str]) -> String {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kafka/kafka.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(args)
            .env("ALLIANCE_KAFKA_DIR", self.dir.path())
            // Not the shared broker's address, which the test's environment may carry.
            .env_remove("ALLIANCE_KAFKA_BOOTSTRAP")
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
