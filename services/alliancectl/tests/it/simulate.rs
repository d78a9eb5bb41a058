//! End to end: `alliancectl simulate` and `alliancectl simulation get` against the real
//! services, composed as `allianced` composes them: the command service over a fresh
//! `SqliteLog` in a temp dir with the reference plan (`deploy/reference-plan.json`) loaded, the
//! read models following the log, and `alliance.v1.Simulation` (the shipped model data, its run
//! store in the same data dir) recording completed runs through the command service. Served on
//! an ephemeral loopback port with the development token file; the binary runs on the blocking
//! pool so the server keeps serving meanwhile. Each run waits for its own result; nothing
//! sleeps.

use crate::support::{Run, Server, Services, decode_png, repo};
use alliance_commands::reference::ReferencePlan;
use alliance_tests::server::tokens::{AUDITOR, ROK, US};
use serde_json::{Value, json};

const PLAN: &str = "019a0000-0000-7000-8000-000000000001";
/// The size `--plot` renders at.
const WIDTH: u32 = 1500;
const HEIGHT: u32 = 1300;

/// The planning services with the reference plan loaded and the simulation service beside
/// them, on an ephemeral loopback port.
async fn start() -> Server {
    let plan = ReferencePlan::read(&repo().join("deploy/reference-plan.json")).unwrap();
    assert_eq!(plan.plan_id.to_string(), PLAN);
    Server::start(Services {
        plan: Some(plan),
        simulation: true,
        ..Services::default()
    })
    .await
}

/// `simulate PLAN ARGS`.
fn simulate_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    [&["simulate", PLAN][..], args].concat()
}

impl Server {
    /// `simulate PLAN ARGS --output json`.
    async fn simulate_json(&self, token: &str, args: &[&str]) -> Run {
        let args = [&simulate_args(args)[..], &["--output", "json"]].concat();
        self.ctl(token, &args).await
    }

    /// `simulate PLAN ARGS --output json`, which must succeed: the result, and the run (with
    /// the progress on stderr).
    async fn simulate(&self, token: &str, args: &[&str]) -> (Value, Run) {
        let run = self.simulate_json(token, args).await;
        let result = serde_json::from_str(run.succeeded())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", run.stdout));
        (result, run)
    }

    /// The JSON error of `simulate PLAN ARGS --output json`, which must fail with `code`.
    async fn simulate_refused(&self, token: &str, args: &[&str], code: i32) -> Value {
        self.simulate_json(token, args).await.refused_json(code)
    }

    /// `simulate PLAN ARGS` as text, which must succeed: what it printed.
    async fn simulate_text(&self, token: &str, args: &[&str]) -> String {
        let run = self.ctl(token, &simulate_args(args)).await;
        run.succeeded().to_owned()
    }

    /// `simulation get RUN ARGS` as an auditor.
    async fn get_run(&self, run: &str, args: &[&str]) -> Run {
        self.ctl(AUDITOR, &[&["simulation", "get", run][..], args].concat())
            .await
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
    let server = start().await;
    let version = server.version(PLAN).await;
    // Pinned to this version: recording a run makes a new one, which a second run would
    // otherwise simulate (with other inputs).
    let at = version.to_string();
    let args = ["--what-if", "--trials", "500", "--seed", "7", "--at", &at];
    let (first, run) = server.simulate(ROK, &args).await;
    // No terminal: no bar, only the final line.
    assert_eq!(run.stderr, "500 trials done\n");
    let monthly = first["monthly"].as_array().unwrap();
    assert_eq!(monthly.len(), 96);
    assert_eq!(first["months"], 96);
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
    assert_eq!(recorded, server.version(PLAN).await);

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
    let got = server.get_run(run_id, &["--output", "json"]).await.json();
    assert_eq!(got, first);
    let table = server.get_run(run_id, &[]).await;
    let text = table.ok();
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
        .get_run(
            "019a0000-0000-7000-8000-0000000000ff",
            &["--output", "json"],
        )
        .await
        .refused_json(6);
    assert_eq!(unknown["error"]["grpc_status"], "NOT_FOUND");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_runs_leave_the_plan_alone() {
    let server = start().await;
    let before = server.version(PLAN).await;

    let overlay = server.overlay("overlay.json", &withdrawal("35ada-bde"));
    let args = ["--overlay", &overlay, "--trials", "300", "--seed", "3"];
    let (result, _) = server.simulate(US, &args).await;
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
    let table = server.simulate_text(US, &args).await;
    assert!(
        table.contains("recorded: not recorded (overlay)"),
        "{table}"
    );
    assert!(table.contains("overlay early-patriot-withdrawal"));
    // The run is kept by id all the same.
    let kept = server
        .get_run(result["run_id"].as_str().unwrap(), &["--output", "json"])
        .await
        .json();
    assert_eq!(kept, result);

    // Bad overlays are refused with the server's status, and nothing is run or recorded.
    let unknown = server.overlay("unknown.json", &withdrawal("no-such-element"));
    let err = server
        .simulate_refused(US, &["--overlay", &unknown, "--trials", "300"], 6)
        .await;
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
        .simulate_refused(US, &["--overlay", &early, "--trials", "300"], 7)
        .await;
    assert_eq!(err["error"]["grpc_status"], "FAILED_PRECONDITION");
    let duplicate = server.overlay(
        "duplicate.json",
        &json!([{ "command": "propose_decision", "decision_id": "opcon-wartime-transfer",
                  "title": "again", "rationale": "r", "effective_date": "2027-01-01",
                  "required_sides": ["us"] }]),
    );
    let err = server
        .simulate_refused(US, &["--overlay", &duplicate], 7)
        .await;
    assert_eq!(err["error"]["grpc_status"], "ALREADY_EXISTS");
    // Caught before anything is sent: not an overlay at all, a step of no decision.
    let not_commands = server.overlay("not.json", &json!({ "decision": "x" }));
    let orphan = server.overlay("orphan.json", &json!([withdrawal("35ada-bde")[1]]));
    for file in [&not_commands, &orphan] {
        let err = server.simulate_refused(US, &["--overlay", file], 2).await;
        assert_eq!(err["error"]["grpc_status"], Value::Null, "{err}");
    }
    let missing = server.path("missing.json");
    server
        .simulate_refused(US, &["--overlay", missing.to_str().unwrap()], 2)
        .await;

    assert_eq!(server.version(PLAN).await, before);
    assert!(server.recorded_runs().await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_are_written_as_png_and_svg() {
    let server = start().await;
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
    let (width, height, pixels) = decode_png(&std::fs::read(&png_path).unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
    // Something is drawn: not a blank page.
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    let total = pixels.len();
    assert!(white < total * 95 / 100, "{white} of {total} pixels white");

    // The same run's chart by id, as SVG.
    let svg_path = server.path("run.svg");
    let run = server
        .get_run(
            result["run_id"].as_str().unwrap(),
            &["--plot", svg_path.to_str().unwrap()],
        )
        .await;
    let text = run.ok();
    assert!(
        text.contains(&format!("chart written to {}", svg_path.display())),
        "{text}"
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
    let before = server.version(PLAN).await;
    let bad = server.path("run.pdf");
    server
        .simulate_refused(ROK, &["--plot", bad.to_str().unwrap()], 2)
        .await;
    assert!(!bad.exists());
    assert_eq!(server.version(PLAN).await, before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparisons_use_the_same_draws_and_errors_map_to_exit_codes() {
    let server = start().await;
    let args = ["--trials", "200", "--seed", "9", "--compare-what-if"];
    let (both, run) = server.simulate(ROK, &args).await;
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
        assert_eq!(side["monthly"].as_array().unwrap().len(), 96);
        assert!(side["recorded_version"].as_u64().unwrap() > 0);
    }
    assert_ne!(left["inputs_digest"], right["inputs_digest"]);
    // Without the proposed decisions nothing is withdrawn and no transfer is scheduled.
    assert_eq!(left["risks"], json!([]));
    assert_eq!(left["transfer_decision_id"], Value::Null);
    assert_eq!(right["transfer_decision_id"], "opcon-wartime-transfer");
    let text = server.simulate_text(ROK, &args).await;
    assert!(
        text.contains("comparison, same seed 9 and 200 trials"),
        "{text}"
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
        .refused_json(6);
    assert_eq!(missing["error"]["grpc_status"], "NOT_FOUND");
    let many = server
        .simulate_refused(ROK, &["--trials", "300000"], 2)
        .await;
    assert_eq!(many["error"]["grpc_status"], "INVALID_ARGUMENT");
    let late = server
        .simulate_refused(ROK, &["--at", "999999", "--trials", "100"], 2)
        .await;
    assert_eq!(late["error"]["grpc_status"], "OUT_OF_RANGE");
    let unauthenticated = server
        .simulate_refused("not-a-token", &["--trials", "100"], 4)
        .await;
    assert_eq!(unauthenticated["error"]["grpc_status"], "UNAUTHENTICATED");
    server.stop().await;
}
