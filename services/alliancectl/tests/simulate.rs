#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end: `alliancectl simulate` and `alliancectl simulation get` against the real
//! services, composed as `allianced` composes them: the command service over a fresh
//! `SqliteLog` in a temp dir with the reference plan (`deploy/reference-plan.json`) loaded, the
//! read models following the log, and `alliance.v1.Simulation` (the shipped model data, its run
//! store in the same data dir) recording completed runs through the command service. Served on
//! an ephemeral loopback port with the development token file; the binary runs on the blocking
//! pool so the server keeps serving meanwhile. Each run waits for its own result; nothing
//! sleeps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{Authenticator, CommandService, PlanCommandsApi, TokenFile};
use alliance_eventlog::{SqliteLog, SqliteLogConfig};
use alliance_projection::Projection;
use alliance_simulation::Recorder;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const PLAN: &str = "019a0000-0000-7000-8000-000000000001";
const ROK: &str = "dev-rok-jcs";
const US: &str = "dev-us-force-planning";
const AUDITOR: &str = "dev-auditors";
/// The size `--plot` renders at.
const WIDTH: u32 = 1500;
const HEIGHT: u32 = 1300;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The planning services with the reference plan loaded and the simulation service beside
/// them, on an ephemeral loopback port.
struct Server {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
        let tokens = repo().join("deploy/dev-tokens.toml");
        let auth = Authenticator::from_token_file(&TokenFile::load(&tokens).unwrap()).unwrap();
        let service = Arc::new(CommandService::open(log.clone()).await.unwrap());
        let plan = ReferencePlan::read(&repo().join("deploy/reference-plan.json")).unwrap();
        assert_eq!(plan.plan_id.to_string(), PLAN);
        let report = reference::load(&service, &auth, &plan).await.unwrap();
        assert_eq!(report.applied, plan.entries.len());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let url = format!("http://{address}");
        let projection = Projection::new();
        projection.catch_up(&log).await.unwrap();
        tokio::spawn(projection.clone().follow(log.clone()));
        let auth = Arc::new(auth);
        let api = PlanCommandsApi::new(service.clone(), auth.clone(), &address);
        let (routes, health) = alliance_commands::server::routes(api).await.unwrap();
        let recorder = Recorder::Local(Arc::new(PlanCommandsApi::new(
            service,
            auth.clone(),
            &address,
        )));
        let model = alliance_simulation::load_model(Path::new("")).unwrap();
        let (routes, _) = alliance_simulation::add_routes(
            routes,
            &health,
            projection.clone(),
            auth.clone(),
            model,
            dir.path(),
            recorder,
        )
        .await
        .unwrap();
        let routes =
            alliance_projection::add_routes(routes, &health, projection, log, auth, None).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            alliance_commands::server::serve_routes(listener, routes, None, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            stop,
            task,
            dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }

    /// A file in the server's temp dir.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the binary with `args` as the holder of `token`.
    async fn ctl(&self, token: &str, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_alliancectl"));
        command
            .args(args)
            .env("ALLIANCE_SERVER", &self.url)
            .env("ALLIANCE_TOKEN", token)
            .env_remove("ALLIANCE_PLAN");
        let out = tokio::task::spawn_blocking(move || command.output().expect("run alliancectl"))
            .await
            .expect("join");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// `simulate PLAN ARGS --output json`, which must succeed.
    async fn simulate(&self, token: &str, args: &[&str]) -> (Value, Run) {
        let all = [&["simulate", PLAN][..], args, &["--output", "json"]].concat();
        let run = self.ctl(token, &all).await;
        (run.json(), run)
    }

    /// The plan's current version.
    async fn version(&self) -> u64 {
        let shown = self
            .ctl(
                AUDITOR,
                &["plan", "show", "--plan", PLAN, "--output", "json"],
            )
            .await
            .json();
        shown["version"].as_u64().unwrap()
    }

    /// The plan's `SimulationRunRecorded` events, as `audit history --output json` prints them.
    async fn recorded_runs(&self) -> Vec<Value> {
        let run = self
            .ctl(
                AUDITOR,
                &[
                    "audit",
                    "history",
                    "--plan",
                    PLAN,
                    "--type",
                    "SimulationRunRecorded",
                    "--output",
                    "json",
                ],
            )
            .await;
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        run.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Writes `commands` as an overlay file named `name`; returns its path.
    fn overlay(&self, name: &str, commands: &Value) -> String {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_string_pretty(commands).unwrap()).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The one JSON object a successful run printed.
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        serde_json::from_str(self.stdout.trim_end())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", self.stdout))
    }

    /// The JSON error of a run that failed with `code` and printed nothing on stdout.
    fn refused(&self, code: i32) -> Value {
        assert_eq!(self.code, Some(code), "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let last = self.stderr.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stderr))
    }
}

/// A proposed decision withdrawing the Patriot brigade early, in the reference plan's form.
fn withdrawal(element: &str) -> Value {
    json!([
        { "as": "us-force-planning", "command": {
            "command": "propose_decision", "decision_id": "early-patriot-withdrawal",
            "title": "Withdraw the Patriot brigade in 2027", "rationale": "what if",
            "effective_date": "2027-06-30", "required_sides": ["us"] } },
        { "as": "us-force-planning", "command": {
            "command": "plan_step", "decision_id": "early-patriot-withdrawal",
            "step": "withdraw_element", "element_id": element, "on": "2027-06-30" } },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_runs_are_reproducible_recorded_and_kept() {
    let server = Server::start().await;
    let version = server.version().await;
    // Pinned to this version: recording a run makes a new one, which a second run would
    // otherwise simulate (with other inputs).
    let at = version.to_string();
    let args = ["--what-if", "--trials", "500", "--seed", "7", "--at", &at];
    let (first, run) = server.simulate(ROK, &args).await;
    // No terminal: no bar, only the final line.
    assert_eq!(run.stderr, "500 trials done\n");
    let monthly = first["monthly"].as_array().unwrap();
    assert_eq!(monthly.len(), 60);
    assert_eq!(first["months"], 60);
    assert!(
        monthly
            .iter()
            .all(|m| m["areas"].as_array().unwrap().len() == 9),
        "{first}"
    );
    assert_eq!(monthly[0]["month"], "2027-01-01");
    assert_eq!(
        (first["trials"].as_u64(), first["seed"].as_u64()),
        (Some(500), Some(7))
    );
    assert_eq!(first["what_if"], true);
    assert_eq!(first["plan_id"], PLAN);
    assert_eq!(first["plan_version"].as_u64(), Some(version));
    assert_eq!(first["transfer_decision_id"], "opcon-wartime-transfer");
    assert_eq!(first["transfer_on"], "2028-12-01");
    assert_eq!(first["actor"]["team"], "rok-jcs");
    let recorded = first["recorded_version"].as_u64().unwrap();
    assert_eq!(recorded, version + 1, "{first}");
    assert_eq!(recorded, server.version().await);

    // The same seed: the same results, a new run id, recorded again.
    let (second, _) = server.simulate(ROK, &args).await;
    assert_eq!(second["monthly"], first["monthly"]);
    assert_eq!(second["risks"], first["risks"]);
    assert_eq!(second["inputs_digest"], first["inputs_digest"]);
    assert_eq!(second["results_digest"], first["results_digest"]);
    assert_ne!(second["run_id"], first["run_id"]);
    assert_eq!(second["plan_version"].as_u64(), Some(version));
    assert_eq!(second["recorded_version"].as_u64(), Some(recorded + 1));

    // Unpinned, the latest version (with the two records) is simulated: other inputs.
    let (latest, _) = server
        .simulate(ROK, &["--what-if", "--trials", "500", "--seed", "7"])
        .await;
    assert_eq!(latest["plan_version"].as_u64(), Some(recorded + 1));
    assert_ne!(latest["inputs_digest"], first["inputs_digest"]);

    // Both runs are in the plan's history, with their inputs.
    let events = server.recorded_runs().await;
    assert_eq!(events.len(), 3, "{events:?}");
    for (event, run) in events.iter().zip([&first, &second, &latest]) {
        assert_eq!(event["event_type"], "SimulationRunRecorded");
        assert_eq!(event["version"], run["recorded_version"]);
        let recorded = &event["payload"]["run"];
        assert_eq!(recorded["run_id"], run["run_id"]);
        assert_eq!(recorded["inputs_digest"], run["inputs_digest"]);
        assert_eq!(recorded["results_digest"], run["results_digest"]);
        assert_eq!(recorded["seed"], 7);
    }

    // The run by id: the same result as printed, in JSON and as a table.
    let run_id = first["run_id"].as_str().unwrap();
    let got = server
        .ctl(AUDITOR, &["simulation", "get", run_id, "--output", "json"])
        .await
        .json();
    assert_eq!(got, first);
    let table = server.ctl(AUDITOR, &["simulation", "get", run_id]).await;
    assert_eq!(table.code, Some(0), "stderr: {}", table.stderr);
    let text = &table.stdout;
    let order: Vec<usize> = [
        "Sequencing risks (",
        "OPCON conditions (",
        "all conditions: P at transfer",
        "Top sensitivity (",
        "Shortfall by area (9):",
        &format!("run {run_id}"),
    ]
    .iter()
    .map(|heading| {
        text.find(heading)
            .unwrap_or_else(|| panic!("{heading}: {text}"))
    })
    .collect();
    assert!(order.is_sorted(), "{text}");
    assert!(
        text.contains(&format!("recorded: plan version {recorded}")),
        "{text}"
    );
    assert!(text.contains("seed 7  trials 500"), "{text}");

    // A run nobody made.
    let unknown = server
        .ctl(
            AUDITOR,
            &[
                "simulation",
                "get",
                "019a0000-0000-7000-8000-0000000000ff",
                "--output",
                "json",
            ],
        )
        .await
        .refused(6);
    assert_eq!(unknown["error"]["grpc_status"], "NOT_FOUND");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_runs_leave_the_plan_alone() {
    let server = Server::start().await;
    let before = server.version().await;

    let overlay = server.overlay("overlay.json", &withdrawal("35ada-bde"));
    let (result, _) = server
        .simulate(
            US,
            &["--overlay", &overlay, "--trials", "300", "--seed", "3"],
        )
        .await;
    assert_eq!(result["recorded_version"], 0);
    assert_eq!(result["overlay"], json!(["early-patriot-withdrawal"]));
    assert_eq!(result["plan_version"].as_u64(), Some(before));
    // The withdrawal in 2027 comes before any ROK replacement: a sequencing risk.
    let risks = result["risks"].as_array().unwrap();
    assert!(
        risks.iter().any(|r| r["element_id"] == "35ada-bde"
            && r["decision_id"] == "early-patriot-withdrawal"
            && r["on"] == "2027-06-30"),
        "{risks:?}"
    );
    let table = server
        .ctl(
            US,
            &[
                "simulate",
                PLAN,
                "--overlay",
                &overlay,
                "--trials",
                "300",
                "--seed",
                "3",
            ],
        )
        .await;
    assert_eq!(table.code, Some(0), "stderr: {}", table.stderr);
    assert!(
        table.stdout.contains("recorded: not recorded (overlay)"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("overlay early-patriot-withdrawal"));
    // The run is kept by id all the same.
    let kept = server
        .ctl(
            AUDITOR,
            &[
                "simulation",
                "get",
                result["run_id"].as_str().unwrap(),
                "--output",
                "json",
            ],
        )
        .await
        .json();
    assert_eq!(kept, result);

    // Bad overlays are refused with the server's status, and nothing is run or recorded.
    let unknown = server.overlay("unknown.json", &withdrawal("no-such-element"));
    let err = server
        .ctl(
            US,
            &[
                "simulate",
                PLAN,
                "--overlay",
                &unknown,
                "--trials",
                "300",
                "--output",
                "json",
            ],
        )
        .await
        .refused(6);
    assert_eq!(err["error"]["grpc_status"], "NOT_FOUND");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-element"),
        "{err}"
    );
    let mut early = withdrawal("35ada-bde");
    early[1]["command"]["on"] = json!("2020-06-30");
    let early = server.overlay("early.json", &early);
    let err = server
        .ctl(
            US,
            &[
                "simulate",
                PLAN,
                "--overlay",
                &early,
                "--trials",
                "300",
                "--output",
                "json",
            ],
        )
        .await
        .refused(7);
    assert_eq!(err["error"]["grpc_status"], "FAILED_PRECONDITION");
    let duplicate = server.overlay(
        "duplicate.json",
        &json!([{ "command": "propose_decision", "decision_id": "opcon-wartime-transfer",
                  "title": "again", "rationale": "r", "effective_date": "2027-01-01",
                  "required_sides": ["us"] }]),
    );
    let err = server
        .ctl(
            US,
            &[
                "simulate",
                PLAN,
                "--overlay",
                &duplicate,
                "--output",
                "json",
            ],
        )
        .await
        .refused(7);
    assert_eq!(err["error"]["grpc_status"], "ALREADY_EXISTS");
    // Caught before anything is sent: not an overlay at all, a step of no decision.
    let not_commands = server.overlay("not.json", &json!({ "decision": "x" }));
    let orphan = server.overlay("orphan.json", &json!([withdrawal("35ada-bde")[1]]));
    for file in [&not_commands, &orphan] {
        let err = server
            .ctl(
                US,
                &["simulate", PLAN, "--overlay", file, "--output", "json"],
            )
            .await
            .refused(2);
        assert_eq!(err["error"]["grpc_status"], Value::Null, "{err}");
    }
    let missing = server.path("missing.json");
    server
        .ctl(
            US,
            &[
                "simulate",
                PLAN,
                "--overlay",
                missing.to_str().unwrap(),
                "--output",
                "json",
            ],
        )
        .await
        .refused(2);

    assert_eq!(server.version().await, before);
    assert!(server.recorded_runs().await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_are_written_as_png_and_svg() {
    let server = Server::start().await;
    let png_path = server.path("run.png");
    let (result, _) = server
        .simulate(
            ROK,
            &[
                "--what-if",
                "--trials",
                "200",
                "--seed",
                "5",
                "--plot",
                png_path.to_str().unwrap(),
            ],
        )
        .await;
    let bytes = std::fs::read(&png_path).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes[..]))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    // Something is drawn: not a blank page.
    let pixels = &buf[..frame.buffer_size()];
    let white = pixels
        .chunks_exact(3)
        .filter(|p| *p == [255, 255, 255])
        .count();
    let total = pixels.len() / 3;
    assert!(white < total * 95 / 100, "{white} of {total} pixels white");

    // The same run's chart by id, as SVG.
    let svg_path = server.path("run.svg");
    let text = server
        .ctl(
            AUDITOR,
            &[
                "simulation",
                "get",
                result["run_id"].as_str().unwrap(),
                "--plot",
                svg_path.to_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(text.code, Some(0), "stderr: {}", text.stderr);
    assert!(
        text.stdout
            .contains(&format!("chart written to {}", svg_path.display())),
        "{}",
        text.stdout
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(
        svg.contains(&format!("width=\"{WIDTH}\"")),
        "{}",
        &svg[..200]
    );
    assert!(svg.contains("Wartime OPCON transfer 2028-12-01"));
    // The short marker label in each of the nine area panels.
    assert!(svg.matches(">\nOPCON transfer\n</text>").count() >= 9);
    for area in ["Missile defense", "Command and control", "Munitions"] {
        assert!(svg.contains(area), "{area}");
    }
    assert!(svg.contains("U.S. personnel"));

    // Only .svg and .png, refused before anything runs.
    let before = server.version().await;
    let bad = server.path("run.pdf");
    server
        .ctl(
            ROK,
            &[
                "simulate",
                PLAN,
                "--plot",
                bad.to_str().unwrap(),
                "--output",
                "json",
            ],
        )
        .await
        .refused(2);
    assert!(!bad.exists());
    assert_eq!(server.version().await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparisons_use_the_same_draws_and_errors_map_to_exit_codes() {
    let server = Server::start().await;
    let (both, run) = server
        .simulate(
            ROK,
            &["--trials", "200", "--seed", "9", "--compare-what-if"],
        )
        .await;
    // Both runs' trials.
    assert_eq!(run.stderr, "400 trials done\n");
    let (left, right) = (&both["left"], &both["right"]);
    assert_eq!(
        (left["what_if"].as_bool(), right["what_if"].as_bool()),
        (Some(false), Some(true))
    );
    for side in [left, right] {
        assert_eq!(side["seed"], 9);
        assert_eq!(side["trials"], 200);
        assert_eq!(side["monthly"].as_array().unwrap().len(), 60);
        assert!(side["recorded_version"].as_u64().unwrap() > 0);
    }
    assert_ne!(left["inputs_digest"], right["inputs_digest"]);
    // Without the proposed decisions nothing is withdrawn and no transfer is scheduled.
    assert_eq!(left["risks"], json!([]));
    assert_eq!(left["transfer_decision_id"], Value::Null);
    assert_eq!(right["transfer_decision_id"], "opcon-wartime-transfer");
    let text = server
        .ctl(
            ROK,
            &[
                "simulate",
                PLAN,
                "--trials",
                "200",
                "--seed",
                "9",
                "--compare-what-if",
            ],
        )
        .await;
    assert_eq!(text.code, Some(0), "stderr: {}", text.stderr);
    assert!(
        text.stdout
            .contains("comparison, same seed 9 and 200 trials"),
        "{}",
        text.stdout
    );

    // A plan that does not exist; too many trials; a record point past the plan's end.
    let missing = server
        .ctl(
            ROK,
            &[
                "simulate",
                "019a0000-0000-7000-8000-0000000000ff",
                "--trials",
                "100",
                "--output",
                "json",
            ],
        )
        .await
        .refused(6);
    assert_eq!(missing["error"]["grpc_status"], "NOT_FOUND");
    let many = server
        .ctl(
            ROK,
            &["simulate", PLAN, "--trials", "300000", "--output", "json"],
        )
        .await
        .refused(2);
    assert_eq!(many["error"]["grpc_status"], "INVALID_ARGUMENT");
    let late = server
        .ctl(
            ROK,
            &[
                "simulate", PLAN, "--at", "999999", "--trials", "100", "--output", "json",
            ],
        )
        .await
        .refused(2);
    assert_eq!(late["error"]["grpc_status"], "OUT_OF_RANGE");
    let unauthenticated = server
        .ctl(
            "not-a-token",
            &["simulate", PLAN, "--trials", "100", "--output", "json"],
        )
        .await
        .refused(4);
    assert_eq!(unauthenticated["error"]["grpc_status"], "UNAUTHENTICATED");
    server.stop().await;
}
