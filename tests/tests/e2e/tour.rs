//! The README's tour, checked: the reference plan is served; teams edit it, conflict, endorse,
//! adopt and branch; a SIGKILLed server restarts with nothing acknowledged lost.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const REFERENCE_PLAN: &str = "019a0000-0000-7000-8000-000000000001";

/// Where cargo put this workspace's binaries (`make test` builds them first).
fn bin(name: &str) -> PathBuf {
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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Server {
    child: Child,
    addr: String,
    banner: Vec<String>,
}

impl Server {
    /// Starts `allianced` on `data` and waits for the line saying where it listens.
    fn start(data: &Path) -> Self {
        let mut child = Command::new(bin("allianced"))
            .current_dir(repo())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push(line.clone());
            if let Some(rest) = line.split(" listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_owned();
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Self {
                    child,
                    addr,
                    banner,
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("allianced exited before listening: {banner:?}");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Runs `alliancectl` as `token` against this server, on the reference plan.
    fn ctl(&self, token: &str, args: &[&str]) -> Output {
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

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.ctl(token, args);
        assert!(
            out.status.success(),
            "alliancectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, token: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(token, &all)).unwrap()
    }

    fn version(&self) -> u64 {
        let plan = self.json(AUDITOR, &["plan", "show"]);
        plan["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("no version in {plan}"))
    }

    fn decision_status(&self, id: &str) -> String {
        let plan = self.json(AUDITOR, &["plan", "show"]);
        plan["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["decision_id"] == id)
            .unwrap_or_else(|| panic!("no decision {id} in {plan}"))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const US: &str = "dev-us-force-planning";
const ROK: &str = "dev-rok-jcs";
const APPROVERS: &str = "dev-alliance-approvers";
const AUDITOR: &str = "dev-auditors";

#[test]
fn the_tour_runs_and_a_killed_server_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(REFERENCE_PLAN) && l.contains("0 already present")),
        "{:?}",
        server.banner
    );

    // The reference plan is there, with its history adopted and the paper's proposals open.
    let list = server.ok(AUDITOR, &["plan", "list"]);
    assert!(list.contains(REFERENCE_PLAN), "{list}");
    assert_eq!(
        server.decision_status("hist-1994-peacetime-opcon"),
        "adopted"
    );
    assert_eq!(server.decision_status("opcon-wartime-transfer"), "proposed");
    let base = server.version();

    // The U.S. cell proposes keeping a Patriot battalion and plans a reduction on it.
    let proposed = server.json(
        US,
        &[
            "decision",
            "propose",
            "--id",
            "keep-patriot-bn",
            "--title",
            "Keep one Patriot battalion after 2029",
            "--rationale",
            "limited air defense stays, as the paper proposes",
            "--effective",
            "2029-01-01",
            "--sides",
            "us,rok",
        ],
    );
    let at = proposed["plan_version"].as_u64().unwrap();
    assert_eq!(at, base + 1);
    let at_str = at.to_string();
    server.ok(
        US,
        &[
            "element",
            "reduce",
            "--decision",
            "keep-patriot-bn",
            "--element",
            "35ada-bde",
            "--personnel",
            "900",
            "--equipment",
            "Patriot launcher=24",
            "--on",
            "2029-06-01",
            "--based-on",
            &at_str,
        ],
    );

    // A second planner edits the same element from the same version: a conflict naming the edit.
    let conflict = server.ctl(
        US,
        &[
            "element",
            "relocate",
            "--decision",
            "keep-patriot-bn",
            "--element",
            "35ada-bde",
            "--to-base",
            "Camp Humphreys",
            "--on",
            "2029-06-01",
            "--based-on",
            &at_str,
        ],
    );
    assert_eq!(conflict.status.code(), Some(3));
    let message = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        message.contains("ForceElementReductionPlanned") && message.contains("element/35ada-bde"),
        "{message}"
    );
    // An edit of another part of the plan from that same version goes through.
    server.ok(
        ROK,
        &[
            "condition",
            "assess",
            "--condition",
            "rok-missile-defense-70",
            "--on",
            "2026-11-01",
            "--status",
            "partially_met",
            "--value",
            "55",
            "--based-on",
            &at_str,
        ],
    );

    // Adoption needs both sides; the ROK endorsement completes it.
    server.ok(US, &["decision", "endorse", "keep-patriot-bn"]);
    let early = server.ctl(APPROVERS, &["decision", "adopt", "keep-patriot-bn"]);
    assert_eq!(early.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&early.stderr).contains("ROK"));
    server.ok(ROK, &["decision", "endorse", "keep-patriot-bn"]);
    server.ok(APPROVERS, &["decision", "adopt", "keep-patriot-bn"]);
    assert_eq!(server.decision_status("keep-patriot-bn"), "adopted");

    // A scenario branch starts from the plan and leaves it untouched.
    let branch = server.json(US, &["plan", "branch", "--name", "Faster drawdown"]);
    assert_eq!(branch["plan_version"].as_u64(), Some(1));
    let before_kill = server.version();

    // Invalid input and an unknown token change nothing.
    let invalid = server.ctl(
        US,
        &[
            "decision",
            "propose",
            "--id",
            "x",
            "--title",
            "",
            "--rationale",
            "r",
            "--effective",
            "2099-01-01",
            "--sides",
            "us",
        ],
    );
    assert_eq!(invalid.status.code(), Some(2));
    assert_eq!(
        server.ctl("nobody", &["plan", "list"]).status.code(),
        Some(4)
    );
    assert_eq!(server.version(), before_kill);

    // SIGKILL, then restart on the same data: everything acknowledged is there, nothing reloads twice.
    server.kill();
    let server = Server::start(data.path());
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("(0 entries loaded now")),
        "{:?}",
        server.banner
    );
    assert_eq!(server.version(), before_kill);
    assert_eq!(server.decision_status("keep-patriot-bn"), "adopted");
    let list = server.ok(AUDITOR, &["plan", "list"]);
    assert!(list.contains("Faster drawdown"), "{list}");
}
