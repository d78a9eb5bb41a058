//! End to end: the built `alliancectl` binary against the real command and query services.
//!
//! Each test starts `alliance_commands::CommandService` over a fresh `alliance_eventlog::SqliteLog`
//! in a temp dir, and beside it `alliance.v1.PostureQueries` over an `alliance_projection` read
//! model that follows the same log, served on an ephemeral loopback port in this process with the
//! development token file (`deploy/dev-tokens.toml`). Every reply and every refusal comes from
//! the real server; the binary runs on the blocking pool so the server keeps serving on the test
//! runtime meanwhile. Reads after writes pass `--min-version`, never sleep.

use crate::support::{Run, Server, Services, ctl_with_plan, each};
use alliance_eventlog::EventLog;
use alliance_tests::argv::{self, ElementRegister};
use serde_json::{Value, json};
use uuid::Uuid;

use alliance_tests::server::tokens::{APPROVER, AUDITOR, NUCLEAR, ROK, US};

// ---- the server ------------------------------------------------------------------------------

/// The command service on a fresh SQLite log and an ephemeral loopback port, refused requests
/// recorded in its security log.
async fn start() -> Server {
    Server::start(Services {
        security: true,
        ..Services::default()
    })
    .await
}

impl Server {
    /// The key the server signs its records with (in its data dir).
    fn writer(&self) -> alliance_record::signing::Signer {
        alliance_record::signing::Signer::load(
            &self.path(alliance_server::signing::DEFAULT_KEY_FILE),
        )
        .unwrap()
    }

    /// Creates a plan (horizon 2020–2035) with `plan create --output json`; returns its id.
    async fn create_plan(&self) -> String {
        let created = self
            .ctl(
                APPROVER,
                &[
                    &argv::plan_create("Alliance modernization 2027-2031")[..],
                    &[
                        "--description",
                        "Phased retrenchment of U.S. ground forces",
                        "--output",
                        "json",
                    ],
                ]
                .concat(),
            )
            .await
            .json();
        assert_eq!(created["plan_version"], 1, "{created}");
        created["plan_id"].as_str().unwrap().to_owned()
    }

    /// Registers a U.S. Army brigade as a baseline element.
    async fn register(&self, plan: &str, element: &str, extra: &[&str]) -> Value {
        let args = [
            &ElementRegister::abct(element).on(plan).argv()[..],
            &["--output", "json"],
            extra,
        ]
        .concat();
        self.ctl(US, &args).await.json()
    }

    /// Proposes decision `id` as the holder of `token`, to be endorsed by `sides` (e.g. `us,rok`).
    async fn propose(&self, token: &str, plan: &str, id: &str, sides: &str) -> Value {
        self.ctl(
            token,
            &[
                "decision",
                "propose",
                "--plan",
                plan,
                "--id",
                id,
                "--title",
                &format!("Decision {id}"),
                "--rationale",
                "the paper's phased retrenchment",
                "--effective",
                "2027-09-01",
                "--sides",
                sides,
                "--output",
                "json",
            ],
        )
        .await
        .json()
    }

    /// A plan with a U.S. brigade present from 2024-01-01 (version 2) and a ROK missile-defense
    /// level of 40 as of 2024-06-01 (version 3); returns its id.
    async fn posture_plan(&self) -> String {
        let plan = self.create_plan().await;
        assert_eq!(
            self.register(&plan, "2id-abct", &[]).await["plan_version"],
            2
        );
        let recorded = self
            .ctl(
                ROK,
                &[
                    "capability",
                    "record",
                    "--plan",
                    &plan,
                    "--side",
                    "rok",
                    "--area",
                    "missile_defense",
                    "--level",
                    "40",
                    "--as-of",
                    "2024-06-01",
                    "--output",
                    "json",
                ],
            )
            .await
            .json();
        assert_eq!(recorded["plan_version"], 3, "{recorded}");
        plan
    }

    async fn endorse(&self, token: &str, plan: &str, decision: &str) -> Value {
        self.ctl(
            token,
            &[
                "decision", "endorse", decision, "--plan", plan, "--output", "json",
            ],
        )
        .await
        .json()
    }
}

// ---- running the binary ----------------------------------------------------------------------

/// Runs the binary with `args` against `server`, as the holder of `token` (none: no token).
async fn ctl(server: &str, token: Option<&str>, args: &[&str]) -> Run {
    ctl_with_plan(server, token, None, args).await
}

/// The cells of a text table row (cells with spaces come out as several words).
fn row<'a>(text: &'a str, first_cell: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(first_cell))
        .unwrap_or_else(|| panic!("no row {first_cell:?} in:\n{text}"))
        .split_whitespace()
        .collect()
}

/// A port nothing listens on: bound once by the OS, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---- success ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_command_with_a_bearer_token_succeeds_in_text_and_json() {
    let server = start().await;

    // Text: one line naming the plan the server minted and its new version.
    let create = [
        "plan",
        "create",
        "--name",
        "Alliance modernization 2027-2031",
        "--horizon-start",
        "2020-01-01",
        "--horizon-end",
        "2035-12-31",
    ];
    let out = server.ctl(APPROVER, &create).await;
    let line = out.ok();
    let minted = line
        .strip_prefix("ok plan ")
        .and_then(|rest| rest.strip_suffix(" now at version 1 (appended 1 event)"))
        .unwrap_or_else(|| panic!("{line}"));
    // Name-based: derived from the command id, so a retry names the same plan.
    assert_eq!(Uuid::parse_str(minted).unwrap().get_version_num(), 5);

    // JSON: a plan with the caller's id and command id.
    let chosen = Uuid::now_v7().to_string();
    let args = [
        &create[..],
        &[
            "--id",
            &chosen,
            "--command-id",
            "create-chosen",
            "--output",
            "json",
        ],
    ]
    .concat();
    let created = server.ctl(APPROVER, &args).await.json();
    assert_eq!(created["plan_id"], chosen.as_str(), "{created}");
    assert_eq!(created["first_version"], 1);
    assert_eq!(created["plan_version"], 1);
    assert_eq!(created["replayed"], false);
    assert_eq!(created["command_id"], "create-chosen");
    assert_eq!(created["event_ids"].as_array().unwrap().len(), 1);

    // An edit based on the current version, checked against what the log holds.
    let registered = server
        .register(
            &chosen,
            "2id-abct",
            &["--based-on", "1", "--command-id", "reg-1"],
        )
        .await;
    assert_eq!(registered["plan_id"], chosen.as_str(), "{registered}");
    assert_eq!(registered["first_version"], 2);
    assert_eq!(registered["plan_version"], 2);
    assert_eq!(registered["replayed"], false);
    let events = server.events().await;
    assert_eq!(events.len(), 3);
    let last = events.last().unwrap();
    assert_eq!(last.plan_id.to_string(), chosen);
    assert_eq!(last.version, 2);
    assert_eq!(last.command_id, "reg-1");
    assert!(
        last.event_type.ends_with("ForceElementRegistered"),
        "{last:?}"
    );
    assert_eq!(registered["event_ids"], json!([last.event_id.to_string()]));
    server.stop().await;
}

// ---- refusals: one line on stderr, one exit code per kind ------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn invalid_input_exits_2() {
    let server = start().await;
    let backwards = [
        "plan",
        "create",
        "--name",
        "Backwards",
        "--horizon-start",
        "2031-12-31",
        "--horizon-end",
        "2027-01-01",
    ];
    let out = server.ctl(APPROVER, &backwards).await;
    assert_eq!(
        out.refused(2),
        "error: invalid input: horizon_end: must be after horizon_start"
    );
    let out = server
        .ctl(APPROVER, &[&backwards[..], &["--output", "json"]].concat())
        .await;
    let error = out.refused_json(2);
    assert_eq!(error["error"]["code"], "invalid_input");
    assert_eq!(error["error"]["grpc_status"], "INVALID_ARGUMENT");
    assert_eq!(
        error["error"]["details"],
        json!([{
            "type": "field_violation",
            "field": "horizon_end",
            "description": "must be after horizon_start",
        }])
    );
    assert!(server.events().await.is_empty(), "nothing appended");

    // A version from the future.
    let plan = server.create_plan().await;
    let out = server
        .ctl(
            US,
            &[
                "decision",
                "endorse",
                "d1",
                "--plan",
                &plan,
                "--based-on",
                "9",
            ],
        )
        .await;
    assert_eq!(
        out.refused(2),
        format!("error: invalid input: meta.based_on_version: plan {plan} is only at version 1")
    );
    assert_eq!(server.version(&plan).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_enum_name_is_a_usage_error_exit_2() {
    let server = start().await;
    let plan = server.create_plan().await;
    let out = server
        .ctl(
            US,
            &ElementRegister {
                name: "NATO brigade",
                side: "nato",
                kind: "ground_combat_brigade",
                personnel: "3000",
                ..ElementRegister::unit("nato-bde")
            }
            .on(&plan)
            .argv(),
        )
        .await;
    // Caught by clap before anything is sent; clap words it (with a usage hint).
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("error: invalid value 'nato' for '--side <SIDE>'\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[possible values: us, rok]"),
        "{}",
        out.stderr
    );
    assert_eq!(server.version(&plan).await, 1, "nothing appended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_edits_of_one_element_from_one_version_conflict_exit_3() {
    let server = start().await;
    let plan = server.create_plan().await;
    server.register(&plan, "2id-abct", &[]).await;
    server.propose(US, &plan, "retrench-ground", "us").await;
    let base = server.propose(US, &plan, "trim-ground", "us").await["plan_version"]
        .as_u64()
        .unwrap();
    let base_arg = base.to_string();

    // Two planners edit the same element, by different decisions, both from version `base`.
    let withdrawn = server
        .ctl(
            US,
            &[
                "element",
                "withdraw",
                "--plan",
                &plan,
                "--based-on",
                &base_arg,
                "--decision",
                "retrench-ground",
                "--element",
                "2id-abct",
                "--on",
                "2027-09-01",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    assert_eq!(withdrawn["plan_version"], base + 1);
    let withdrawal = withdrawn["event_ids"][0].as_str().unwrap();
    let before = server.events().await.len();

    let reduce = [
        "element",
        "reduce",
        "--plan",
        &plan,
        "--based-on",
        &base_arg,
        "--decision",
        "trim-ground",
        "--element",
        "2id-abct",
        "--personnel",
        "1000",
        "--on",
        "2027-03-01",
    ];
    let out = server.ctl(US, &reduce).await;
    assert_eq!(
        out.refused(3),
        format!(
            "error: conflict: plan changed since version {base}: v{v} ForceElementWithdrawalPlanned \
             {withdrawal} (ForceElementWithdrawalPlanned by us-force-planning changed element/2id-abct)",
            v = base + 1
        )
    );

    let out = server
        .ctl(
            US,
            &[
                &reduce[..],
                &["--command-id", "reduce-1", "--output", "json"],
            ]
            .concat(),
        )
        .await;
    let error = out.refused_json(3);
    assert_eq!(error["error"]["code"], "conflict");
    assert_eq!(error["error"]["grpc_status"], "ABORTED");
    assert_eq!(error["error"]["command_id"], "reduce-1");
    let details = error["error"]["details"].as_array().unwrap();
    let info = details
        .iter()
        .find(|d| d["type"] == "error_info")
        .unwrap_or_else(|| panic!("{error}"));
    assert_eq!(info["reason"], "PLAN_VERSION_CONFLICT");
    assert_eq!(info["metadata"]["based_on_version"], base_arg);
    assert_eq!(info["metadata"]["current_version"], (base + 1).to_string());
    assert!(
        details.iter().any(|d| d["type"] == "precondition_violation"
            && d["kind"] == "CONFLICTING_EVENT"
            && d["subject"] == format!("v{} ForceElementWithdrawalPlanned {withdrawal}", base + 1)),
        "{error}"
    );
    assert_eq!(server.events().await.len(), before, "nothing appended");
    assert_eq!(server.version(&plan).await, base + 1);

    // Another element from the same stale version does not conflict...
    let other = server
        .register(&plan, "fires-bde", &["--based-on", &base_arg])
        .await;
    assert_eq!(other["plan_version"], base + 2);
    // ...and the refused edit lands once based on the version that includes the withdrawal.
    let current = (base + 1).to_string();
    let rebased = [&reduce[..5], &[current.as_str()], &reduce[6..]].concat();
    let out = server.ctl(US, &rebased).await;
    assert!(
        out.ok()
            .ends_with(&format!("now at version {} (appended 1 event)", base + 3))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_or_missing_token_is_refused_exit_4() {
    let server = start().await;
    let create = [
        "plan",
        "create",
        "--name",
        "Unauthorised",
        "--horizon-start",
        "2027-01-01",
        "--horizon-end",
        "2031-12-31",
    ];
    let out = server.ctl("dev-nobody", &create).await;
    assert_eq!(
        out.refused(4),
        "error: permission: not authenticated: unknown token (check --token or ALLIANCE_TOKEN)"
    );

    // --token wins over ALLIANCE_TOKEN.
    let with_flag = [&create[..], &["--token", "dev-nobody", "--output", "json"]].concat();
    let out = server.ctl(APPROVER, &with_flag).await;
    let error = out.refused_json(4);
    assert_eq!(error["error"]["code"], "permission");
    assert_eq!(error["error"]["grpc_status"], "UNAUTHENTICATED");

    let out = ctl(&server.url, None, &["plan", "list"]).await;
    assert_eq!(
        out.refused(4),
        "error: permission: not authenticated: missing authorization header \
         (check --token or ALLIANCE_TOKEN)"
    );
    assert!(server.events().await.is_empty(), "nothing appended");
    assert_eq!(
        server.ctl(AUDITOR, &["plan", "list"]).await.ok(),
        "no plans"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_with_nothing_listening_is_unavailable_exit_5() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = ctl(&url, Some(AUDITOR), &["plan", "list"]).await;
    let line = out.refused(5);
    assert!(line.starts_with("error: unavailable: "), "{line}");
    assert!(line.ends_with(&format!("(server {url})")), "{line}");

    // A command says how to retry it safely.
    let plan = Uuid::now_v7().to_string();
    let adopt = [
        "decision",
        "adopt",
        "d1",
        "--plan",
        &plan,
        "--command-id",
        "adopt-1",
    ];
    let out = ctl(&url, Some(APPROVER), &adopt).await;
    let line = out.refused(5);
    assert!(
        line.ends_with(&format!(
            "(server {url}); retry safely with --command-id adopt-1"
        )),
        "{line}"
    );
    let out = ctl(
        &url,
        Some(APPROVER),
        &[&adopt[..], &["--output", "json"]].concat(),
    )
    .await;
    let error = out.refused_json(5);
    assert_eq!(error["error"]["code"], "unavailable");
    assert_eq!(error["error"]["grpc_status"], "UNAVAILABLE");
    assert_eq!(error["error"]["command_id"], "adopt-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_never_answers_times_out_as_unavailable_exit_5() {
    // A TCP peer that accepts connections (in the kernel backlog) and never answers: no fake
    // service, just a server that does not reply within --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let out = ctl(
        &url,
        Some(APPROVER),
        &[
            "--timeout",
            "1",
            "decision",
            "adopt",
            "d1",
            "--plan",
            &Uuid::now_v7().to_string(),
            "--command-id",
            "adopt-1",
        ],
    )
    .await;
    assert_eq!(
        out.refused(5),
        format!(
            "error: unavailable: deadline exceeded: no reply within 1s (server {url}); \
             retry safely with --command-id adopt-1"
        )
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_plan_or_decision_is_not_found_exit_6() {
    let server = start().await;
    let nowhere = Uuid::now_v7().to_string();
    let out = server
        .ctl(AUDITOR, &["plan", "show", "--plan", &nowhere])
        .await;
    assert_eq!(
        out.refused(6),
        format!("error: not found: plan {nowhere} not found")
    );

    let plan = server.create_plan().await;
    let endorse = ["decision", "endorse", "ghost", "--plan", &plan];
    let out = server.ctl(US, &endorse).await;
    assert_eq!(out.refused(6), "error: not found: decision ghost not found");
    let out = server
        .ctl(US, &[&endorse[..], &["--output", "json"]].concat())
        .await;
    let error = out.refused_json(6);
    assert_eq!(error["error"]["grpc_status"], "NOT_FOUND");
    assert!(
        error["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["type"] == "resource_info"
                && d["kind"] == "decision"
                && d["name"] == "ghost"),
        "{error}"
    );
    assert_eq!(server.version(&plan).await, 1, "nothing appended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_a_decision_only_one_side_endorsed_is_refused_exit_7() {
    let server = start().await;
    let plan = server.create_plan().await;
    server.propose(US, &plan, "retrench", "us,rok").await;
    let endorsed = server.endorse(US, &plan, "retrench").await;
    let version = endorsed["plan_version"].as_u64().unwrap();

    let adopt = ["decision", "adopt", "retrench", "--plan", &plan];
    let out = server.ctl(APPROVER, &adopt).await;
    assert_eq!(
        out.refused(7),
        "error: refused by planning rule ENDORSEMENT_MISSING: decision retrench cannot be \
         adopted without the endorsement of the ROK side"
    );
    let out = server
        .ctl(APPROVER, &[&adopt[..], &["--output", "json"]].concat())
        .await;
    let error = out.refused_json(7);
    assert_eq!(error["error"]["code"], "refused");
    assert_eq!(error["error"]["grpc_status"], "FAILED_PRECONDITION");
    assert!(
        error["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["type"] == "error_info" && d["reason"] == "ENDORSEMENT_MISSING"),
        "{error}"
    );
    assert_eq!(server.version(&plan).await, version, "nothing appended");

    // Once the ROK side endorses it too, the same command goes through.
    server.endorse(ROK, &plan, "retrench").await;
    let out = server.ctl(APPROVER, &adopt).await;
    assert!(
        out.ok().ends_with(&format!(
            "now at version {} (appended 1 event)",
            version + 2
        )),
        "{}",
        out.stdout
    );
    server.stop().await;
}

// ---- queries -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn plan_list_and_show_render_a_real_plan() {
    let server = start().await;
    let plan = server.create_plan().await;
    server.register(&plan, "2id-abct", &[]).await;
    // A decision the ROK side proposed and endorsed, still awaiting the U.S.
    let opcon = [
        "decision",
        "propose",
        "--plan",
        &plan,
        "--id",
        "opcon-transfer",
        "--title",
        "Transfer wartime OPCON",
        "--rationale",
        "conditions-based transition",
        "--effective",
        "2028-12-01",
        "--sides",
        "us,rok",
    ];
    server.ctl(ROK, &opcon).await.ok();
    server.endorse(ROK, &plan, "opcon-transfer").await;
    // A U.S. decision that withdraws the brigade and adds an air-defense brigade, adopted.
    server.propose(US, &plan, "retrench-ground", "us").await;
    let step = [
        "--plan",
        &plan,
        "--decision",
        "retrench-ground",
        "--on",
        "2027-09-01",
    ];
    let withdraw = [&["element", "withdraw", "--element", "2id-abct"][..], &step].concat();
    server.ctl(US, &withdraw).await.ok();
    let add = [
        &[
            "element",
            "add",
            "--id",
            "35-ada",
            "--name",
            "35th ADA Brigade",
            "--side",
            "us",
            "--component",
            "army",
            "--kind",
            "air_defense",
            "--personnel",
            "2000",
            "--equipment",
            "Patriot=6",
            "--base",
            "Osan AB",
        ][..],
        &step,
    ]
    .concat();
    server.ctl(US, &add).await.ok();
    server.endorse(US, &plan, "retrench-ground").await;
    server
        .ctl(
            APPROVER,
            &["decision", "adopt", "retrench-ground", "--plan", &plan],
        )
        .await
        .ok();
    server
        .ctl(
            NUCLEAR,
            &[
                "clause",
                "define",
                "--plan",
                &plan,
                "--id",
                "missile-range",
                "--agreement",
                "missile_guidelines",
                "--title",
                "Ballistic missile range limit",
                "--status",
                "terminated",
                "--since",
                "2021-05-21",
            ],
        )
        .await
        .ok();
    server
        .ctl(
            ROK,
            &[
                "condition",
                "define",
                "--plan",
                &plan,
                "--id",
                "rok-c2",
                "--title",
                "ROK C2 capability",
                "--area",
                "command_and_control",
                "--threshold",
                "70",
            ],
        )
        .await
        .ok();
    let assessed = server
        .ctl(
            ROK,
            &[
                "condition",
                "assess",
                "--plan",
                &plan,
                "--condition",
                "rok-c2",
                "--on",
                "2026-01-15",
                "--status",
                "partially_met",
                "--value",
                "55",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    let version = assessed["plan_version"].as_u64().unwrap();
    assert_eq!(version, 12);
    // A scenario branched at version 2.
    let branch = server
        .ctl(
            US,
            &[
                "plan",
                "branch",
                "--plan",
                &plan,
                "--at-version",
                "2",
                "--name",
                "Faster drawdown",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    let branch = branch["plan_id"].as_str().unwrap();

    // plan list
    let out = server.ctl(AUDITOR, &["plan", "list"]).await;
    let text = out.ok();
    assert_eq!(
        text.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PLAN", "VERSION", "BRANCHED", "FROM", "NAME"],
        "{text}"
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(
        row(text, &plan),
        [
            plan.as_str(),
            "12",
            "-",
            "Alliance",
            "modernization",
            "2027-2031"
        ]
    );
    let parent = format!("{plan}@v2");
    assert_eq!(
        row(text, branch),
        [branch, "1", parent.as_str(), "Faster", "drawdown"]
    );
    let listed = server
        .ctl(AUDITOR, &["plan", "list", "--output", "json"])
        .await
        .json();
    let plans = listed["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2, "{listed}");
    let head = plans.iter().find(|p| p["plan_id"] == branch).unwrap();
    assert_eq!(head["parent"], json!({ "plan_id": plan, "version": 2 }));

    // plan show: text
    let out = server
        .ctl(AUDITOR, &["plan", "show", "--plan", &plan])
        .await;
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            format!("plan {plan}  Alliance modernization 2027-2031"),
            "version 12".to_owned(),
            "horizon 2020-01-01 .. 2035-12-31".to_owned(),
            "description Phased retrenchment of U.S. ground forces".to_owned(),
        ],
        "{text}"
    );
    assert!(text.contains("\ndecisions (2):\n"), "{text}");
    assert_eq!(
        row(text, "opcon-transfer"),
        [
            "opcon-transfer",
            "proposed",
            "2028-12-01",
            "us,rok",
            "rok",
            "0",
            "rok-jcs",
            "Transfer",
            "wartime",
            "OPCON"
        ]
    );
    assert_eq!(
        row(text, "retrench-ground"),
        [
            "retrench-ground",
            "adopted",
            "2027-09-01",
            "us",
            "us",
            "2",
            "us-force-planning",
            "Decision",
            "retrench-ground"
        ]
    );
    assert!(text.contains("\nelements (2):\n"), "{text}");
    assert_eq!(
        row(text, "2id-abct"),
        [
            "2id-abct",
            "us",
            "army",
            "ground_combat_brigade",
            "4500",
            "M1A2=90,M2A3=100",
            "Camp",
            "Humphreys",
            "2024-01-01",
            "2027-09-01",
            "-",
            "2ID",
            "rotational",
            "ABCT"
        ]
    );
    assert_eq!(
        row(text, "35-ada"),
        [
            "35-ada",
            "us",
            "army",
            "air_defense",
            "2000",
            "Patriot=6",
            "Osan",
            "AB",
            "2027-09-01",
            "-",
            "retrench-ground",
            "35th",
            "ADA",
            "Brigade"
        ]
    );
    assert_eq!(
        row(text, "rok-c2"),
        [
            "rok-c2",
            "partially_met",
            "2026-01-15",
            "ROK",
            "C2",
            "capability"
        ]
    );
    assert_eq!(
        row(text, "missile-range"),
        [
            "missile-range",
            "missile_guidelines",
            "terminated",
            "2021-05-21",
            "Ballistic",
            "missile",
            "range",
            "limit"
        ]
    );

    // plan show: JSON
    let shown = server
        .ctl(
            AUDITOR,
            &["plan", "show", "--plan", &plan, "--output", "json"],
        )
        .await
        .json();
    assert_eq!(shown["plan_id"], plan.as_str());
    assert_eq!(shown["version"], 12);
    assert_eq!(shown["parent"], Value::Null);
    assert_eq!(shown["horizon_start"], "2020-01-01");
    let decisions = shown["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["decision_id"], "opcon-transfer");
    assert_eq!(decisions[0]["status"], "proposed");
    assert_eq!(decisions[0]["owner_team"], "rok-jcs");
    assert_eq!(decisions[0]["required_sides"], json!(["us", "rok"]));
    assert_eq!(decisions[0]["endorsements"], json!(["rok"]));
    assert_eq!(decisions[1]["decision_id"], "retrench-ground");
    assert_eq!(decisions[1]["status"], "adopted");
    assert_eq!(decisions[1]["endorsements"], json!(["us"]));
    assert_eq!(decisions[1]["step_count"], 2);
    let elements = shown["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[0]["element_id"], "2id-abct");
    assert_eq!(elements[0]["kind"], "ground_combat_brigade");
    assert_eq!(elements[0]["equipment"], json!({ "M1A2": 90, "M2A3": 100 }));
    assert_eq!(elements[0]["present_from"], "2024-01-01");
    assert_eq!(elements[0]["withdrawn_on"], "2027-09-01");
    assert_eq!(elements[0]["added_by"], Value::Null);
    assert_eq!(elements[1]["element_id"], "35-ada");
    assert_eq!(elements[1]["added_by"], "retrench-ground");
    assert_eq!(
        shown["conditions"],
        json!([{
            "condition_id": "rok-c2",
            "title": "ROK C2 capability",
            "latest_status": "partially_met",
            "latest_assessed_on": "2026-01-15",
        }])
    );
    assert_eq!(shown["clauses"][0]["agreement"], "missile_guidelines");
    assert_eq!(shown["clauses"][0]["status"], "terminated");

    // The branch holds what the parent held at version 2 only.
    let branched = server
        .ctl(
            AUDITOR,
            &["plan", "show", "--plan", branch, "--output", "json"],
        )
        .await
        .json();
    assert_eq!(branched["parent"], json!({ "plan_id": plan, "version": 2 }));
    assert_eq!(branched["elements"].as_array().unwrap().len(), 1);
    assert_eq!(branched["decisions"], json!([]));
    server.stop().await;
}

// ---- the read model: posture, series, diff, decisions, watch ---------------------------------

/// The record time of version `version` of `plan`, as RFC 3339 with microseconds.
async fn recorded_at(server: &Server, plan: &str, version: u64) -> String {
    let event = server
        .events()
        .await
        .into_iter()
        .find(|e| e.plan_id.to_string() == plan && e.version == version)
        .unwrap();
    chrono::DateTime::from_timestamp_micros(event.record_time_micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn posture_shows_the_plan_on_a_date_as_it_stood_at_any_version() {
    let server = start().await;
    let plan = server.posture_plan().await;
    // --min-version 3: read what the commands wrote, whenever the read model gets there.
    let posture = |extra: &'static [&'static str]| {
        let plan = plan.clone();
        let server = &server;
        async move {
            let args = [
                &[
                    "posture",
                    "--plan",
                    &plan,
                    "--min-version",
                    "3",
                    "--output",
                    "json",
                ][..],
                extra,
            ]
            .concat();
            server.ctl(AUDITOR, &args).await.json()
        }
    };

    let shown = posture(&["--on", "2025-01-01"]).await;
    assert_eq!(shown["plan_id"], plan.as_str(), "{shown}");
    assert_eq!(shown["valid_on"], "2025-01-01");
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["what_if"], false);
    assert_eq!(shown["us_personnel"], 4500);
    assert_eq!(
        shown["elements"],
        json!([{
            "element_id": "2id-abct",
            "name": "2ID rotational ABCT",
            "side": "us",
            "component": "army",
            "kind": "ground_combat_brigade",
            "personnel": 4500,
            "equipment": { "M1A2": 90, "M2A3": 100 },
            "base": "Camp Humphreys",
        }])
    );
    assert_eq!(
        shown["personnel"],
        json!([{ "side": "us", "component": "army", "kind": "ground_combat_brigade", "personnel": 4500 }])
    );
    assert_eq!(
        shown["capability"],
        json!([{ "side": "rok", "area": "missile_defense", "level": 40 }])
    );
    assert_eq!(
        shown["command"],
        json!({ "peacetime_opcon": null, "wartime_opcon": null, "cfc_commander": null })
    );
    assert_eq!(shown["decision_ids"], json!([]));

    // Before the brigade arrived: nothing present, no capability recorded yet.
    let before = posture(&["--on", "2023-06-01"]).await;
    assert_eq!(before["elements"], json!([]), "{before}");
    assert_eq!(before["us_personnel"], 0);
    assert_eq!(before["capability"], json!([]));

    // The plan as it stood at version 1: created, nothing registered.
    let at_1 = posture(&["--on", "2025-01-01", "--as-of-version", "1"]).await;
    assert_eq!(at_1["version"], 1, "{at_1}");
    assert_eq!(at_1["elements"], json!([]));
    assert_eq!(at_1["personnel"], json!([]));
    assert_eq!(at_1["us_personnel"], 0);

    // As recorded when version 2 was written: the brigade, not yet the capability level.
    let when = recorded_at(&server, &plan, 2).await;
    let args = [
        "posture",
        "--plan",
        &plan,
        "--min-version",
        "3",
        "--on",
        "2025-01-01",
        "--as-recorded",
        &when,
        "--output",
        "json",
    ];
    let at_2 = server.ctl(AUDITOR, &args).await.json();
    assert_eq!(at_2["version"], 2, "{at_2}");
    assert_eq!(at_2["us_personnel"], 4500);
    assert_eq!(at_2["capability"], json!([]));

    // Text, with the plan from ALLIANCE_PLAN.
    let out = ctl_with_plan(
        &server.url,
        Some(AUDITOR),
        Some(&plan),
        &["posture", "--min-version", "3", "--on", "2025-01-01"],
    )
    .await;
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!("plan {plan}  valid on 2025-01-01  version 3  what-if no"),
            "command: peacetime OPCON \u{2014}  wartime OPCON \u{2014}  CFC commander \u{2014}"
                .to_owned(),
            "U.S. personnel 4500".to_owned(),
        ],
        "{text}"
    );
    assert_eq!(
        row(text, "2id-abct"),
        [
            "2id-abct",
            "us",
            "ground_combat_brigade",
            "4500",
            "Camp",
            "Humphreys",
            "2ID",
            "rotational",
            "ABCT"
        ]
    );
    assert_eq!(row(text, "rok"), ["rok", "missile_defense", "40"]);
    assert_eq!(
        row(text, "us"),
        ["us", "army", "ground_combat_brigade", "4500"]
    );
    assert!(text.contains("\nclauses: none\n"), "{text}");
    assert!(text.ends_with("\ndecisions: none"), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_the_read_model_does_not_reach_is_unavailable_exit_5() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let ahead = [
        "--timeout",
        "1",
        "posture",
        "--plan",
        &plan,
        "--on",
        "2025-01-01",
        "--min-version",
        "99",
    ];
    let out = server.ctl(AUDITOR, &ahead).await;
    let line = out.refused(5);
    assert!(line.starts_with("error: unavailable: "), "{line}");
    assert!(line.contains("asked for"), "{line}");
    assert!(
        line.ends_with(&format!("(server {})", server.url)),
        "{line}"
    );
    let out = server
        .ctl(AUDITOR, &[&ahead[..], &["--output", "json"]].concat())
        .await;
    let error = out.refused_json(5);
    assert_eq!(error["error"]["code"], "unavailable");
    assert!(
        matches!(
            error["error"]["grpc_status"].as_str(),
            Some("UNAVAILABLE" | "DEADLINE_EXCEEDED")
        ),
        "{error}"
    );

    // A plan the read model has never heard of.
    let nowhere = Uuid::now_v7().to_string();
    let out = server
        .ctl(
            AUDITOR,
            &["posture", "--plan", &nowhere, "--on", "2025-01-01"],
        )
        .await;
    assert_eq!(
        out.refused(6),
        format!("error: not found: plan {nowhere} not found")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_dates_are_usage_errors_exit_2() {
    let server = start().await;
    let plan = server.posture_plan().await;
    // Caught by clap before anything is sent.
    let out = server
        .ctl(AUDITOR, &["posture", "--plan", &plan, "--on", "2025-02-30"])
        .await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("error: invalid value '2025-02-30' for '--on <ON>'"),
        "{}",
        out.stderr
    );
    let out = server
        .ctl(
            AUDITOR,
            &["diff", "--plan", &plan, "--from-recorded", "2025-01-01"],
        )
        .await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("RFC 3339"), "{}", out.stderr);
    // Refused by the server: a period that ends before it starts.
    let out = server
        .ctl(
            AUDITOR,
            &[
                "series",
                "--plan",
                &plan,
                "--from",
                "2024-12-31",
                "--to",
                "2024-01-01",
                "--min-version",
                "3",
            ],
        )
        .await;
    assert_eq!(
        out.refused(2),
        "error: invalid input: to: 2024-01-01 is before 2024-12-31"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn series_has_one_point_per_step() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let args = [
        "series",
        "--plan",
        &plan,
        "--from",
        "2024-01-01",
        "--to",
        "2024-12-31",
        "--step",
        "quarter",
        "--min-version",
        "3",
    ];
    let series = server
        .ctl(AUDITOR, &[&args[..], &["--output", "json"]].concat())
        .await
        .json();
    let points = series["points"].as_array().unwrap();
    let dates: Vec<&str> = points
        .iter()
        .map(|p| p["valid_on"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"],
        "{series}"
    );
    assert!(points.iter().all(|p| p["us_personnel"] == 4500), "{series}");
    assert_eq!(points[1]["capability"], json!([]));
    assert_eq!(points[2]["capability"][0]["level"], 40);

    let out = server.ctl(AUDITOR, &args).await;
    let text = out.ok();
    assert_eq!(
        text.lines().next().unwrap(),
        format!("plan {plan}  version 3  what-if no  4 points"),
        "{text}"
    );
    assert_eq!(
        row(text, "DATE"),
        ["DATE", "US", "PERSONNEL", "ROK", "MISSILE_DEFENSE"]
    );
    assert_eq!(row(text, "2024-04-01"), ["2024-04-01", "4500", "-"]);
    assert_eq!(row(text, "2024-07-01"), ["2024-07-01", "4500", "40"]);
    assert_eq!(text.lines().count(), 2 + 1 + 4, "{text}");

    // Monthly by default.
    let monthly = server
        .ctl(
            AUDITOR,
            &[
                "series",
                "--plan",
                &plan,
                "--from",
                "2024-01-01",
                "--to",
                "2024-12-31",
                "--min-version",
                "3",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    assert_eq!(monthly["points"].as_array().unwrap().len(), 12);
    server.stop().await;
}

/// Proposes `a`, `b`, `c` (U.S.) and `d` (ROK, to be endorsed by both sides), withdraws `b`
/// and adopts `c`; returns the version the plan is at (12) and the one before the withdrawal.
async fn decisions_plan(server: &Server, plan: &str) -> (u64, u64) {
    for id in ["a", "b", "c"] {
        server.propose(US, plan, id, "us").await;
    }
    let before = server.propose(ROK, plan, "d", "us,rok").await["plan_version"]
        .as_u64()
        .unwrap();
    server
        .ctl(
            US,
            &[
                "decision",
                "withdraw",
                "b",
                "--plan",
                plan,
                "--reason",
                "overtaken",
            ],
        )
        .await
        .ok();
    server.endorse(US, plan, "c").await;
    let adopted = server
        .ctl(
            APPROVER,
            &["decision", "adopt", "c", "--plan", plan, "--output", "json"],
        )
        .await
        .json();
    (adopted["plan_version"].as_u64().unwrap(), before)
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_lists_the_changes_since_a_version() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let (latest, _) = decisions_plan(&server, &plan).await;
    let latest_arg = latest.to_string();
    let diff = server
        .ctl(
            AUDITOR,
            &[
                "diff",
                "--plan",
                &plan,
                "--from-version",
                "1",
                "--min-version",
                &latest_arg,
                "--output",
                "json",
            ],
        )
        .await
        .json();
    assert_eq!(diff["from_version"], 1, "{diff}");
    assert_eq!(diff["to_version"], latest);
    assert_eq!(
        diff["elements"],
        json!([{
            "element_id": "2id-abct",
            "kind": "added",
            "events": [{ "version": 2, "event_type": "ForceElementRegistered" }],
        }])
    );
    let decisions = diff["decisions"].as_array().unwrap();
    let c = decisions.iter().find(|d| d["decision_id"] == "c").unwrap();
    assert_eq!(c["before"], Value::Null, "{diff}");
    assert_eq!(c["after"], "adopted");
    let events = diff["events"].as_array().unwrap();
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (2..=latest).collect::<Vec<_>>(), "{diff}");
    assert_eq!(events[0]["actor"], "us-force-planning/us.planner");
    assert!(events[0]["record_time"].as_str().unwrap().ends_with('Z'));

    // Up to version 2 only: the brigade, no decisions.
    let out = server
        .ctl(
            AUDITOR,
            &[
                "diff",
                "--plan",
                &plan,
                "--from-version",
                "1",
                "--to-version",
                "2",
                "--min-version",
                &latest_arg,
            ],
        )
        .await;
    let text = out.ok();
    assert_eq!(
        text.lines().next().unwrap(),
        format!("plan {plan}  from version 1 to version 2"),
        "{text}"
    );
    assert!(text.contains("\ndecisions changed: none\n"), "{text}");
    assert_eq!(row(text, "2id-abct"), ["2id-abct", "added", "v2"]);
    let event = row(text, "v2");
    assert_eq!(
        event[..4],
        [
            "v2",
            "ForceElementRegistered",
            "us-force-planning/us.planner",
            event[3]
        ],
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(event[3]).is_ok(),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_filtered_by_status_side_team_and_version() {
    let server = start().await;
    let plan = server.create_plan().await;
    let (latest, before_withdrawal) = decisions_plan(&server, &plan).await;
    let latest = latest.to_string();
    let ids = |listed: &Value| -> Vec<String> {
        each(&listed["decisions"], |d| {
            d["decision_id"].as_str().unwrap().to_owned()
        })
    };
    let shared = &server;
    let list = |extra: &[&str]| {
        let args: Vec<String> = [
            &[
                "decisions",
                "--plan",
                &plan,
                "--min-version",
                &latest,
                "--output",
                "json",
            ][..],
            extra,
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            shared.ctl(AUDITOR, &args).await.json()
        }
    };

    let all = list(&[]).await;
    assert_eq!(ids(&all), ["a", "b", "c", "d"], "{all}");
    let proposed = list(&["--status", "proposed"]).await;
    assert_eq!(ids(&proposed), ["a", "d"], "{proposed}");
    let adopted = list(&["--status", "adopted"]).await;
    assert_eq!(ids(&adopted), ["c"], "{adopted}");
    let c = &adopted["decisions"][0];
    assert_eq!(c["owner_team"], "us-force-planning");
    assert_eq!(c["required_sides"], json!(["us"]));
    assert_eq!(c["endorsements"], json!(["us"]));
    assert_eq!(c["effective_date"], "2027-09-01");
    let history: Vec<&str> = each(&c["history"], |h| h["event_type"].as_str().unwrap());
    assert_eq!(
        history,
        ["DecisionProposed", "DecisionEndorsed", "DecisionAdopted"]
    );
    let withdrawn = list(&["--status", "withdrawn"]).await;
    assert_eq!(withdrawn["decisions"][0]["status_reason"], "overtaken");
    assert_eq!(ids(&list(&["--side", "rok"]).await), ["d"]);
    assert_eq!(ids(&list(&["--team", "rok-jcs"]).await), ["d"]);
    assert_eq!(
        ids(&list(&["--effective-from", "2027-09-02"]).await),
        Vec::<String>::new()
    );
    // Before the withdrawal, b was still proposed and nothing was adopted.
    let version = before_withdrawal.to_string();
    let then = list(&["--status", "proposed", "--as-of-version", &version]).await;
    assert_eq!(ids(&then), ["a", "b", "c", "d"], "{then}");

    let out = server
        .ctl(
            AUDITOR,
            &[
                "decisions",
                "--plan",
                &plan,
                "--min-version",
                &latest,
                "--status",
                "proposed",
            ],
        )
        .await;
    let text = out.ok();
    assert_eq!(text.lines().count(), 3, "{text}");
    let header = "ID STATUS OWNER EFFECTIVE REQUIRED ENDORSED HISTORY TITLE";
    assert_eq!(row(text, "ID"), header.split(' ').collect::<Vec<_>>());
    let decision = "d proposed rok-jcs 2027-09-01 us,rok - 1 Decision d";
    assert_eq!(row(text, "d"), decision.split(' ').collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_reports_the_chain_s_head_then_a_tampered_record_with_exit_8() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let stored = server
        .log
        .sqlite()
        .read_plan(plan_id, 1, 1000)
        .await
        .unwrap();
    let head = alliance_record::chain::hex(
        &alliance_record::chain::carried_hash(&stored.last().unwrap().payload).unwrap(),
    );

    let text = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    assert_eq!(
        text.ok().trim(),
        format!(
            "ok plan {plan}: hash chain of {} events holds, each record signed by a trusted key; \
             head {head}",
            stored.len()
        )
    );
    let json = server
        .ctl(
            AUDITOR,
            &["--output", "json", "audit", "verify", "--plan", &plan],
        )
        .await;
    let json: Value = serde_json::from_str(json.ok().trim()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["events"], stored.len());
    assert_eq!(json["head_hash"], head.as_str());

    // The second record's content changed in the file behind the server's back.
    let db = rusqlite::Connection::open(server.store().db()).unwrap();
    let position = stored[1].position as i64;
    let mut payload = stored[1].payload.clone();
    payload[10] ^= 0x01;
    db.execute(
        "UPDATE events SET payload = ?1 WHERE position = ?2",
        rusqlite::params![payload, position],
    )
    .unwrap();
    let broken = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    assert_eq!(broken.code, Some(8), "{}", broken.stderr);
    assert!(
        broken.stdout.starts_with(&format!(
            "BROKEN plan {plan}: altered record at version 2 (log position {position})"
        )),
        "{}",
        broken.stdout
    );
    assert!(broken.stderr.contains("tampered"), "{}", broken.stderr);

    let unknown = server
        .ctl(
            AUDITOR,
            &[
                "audit",
                "verify",
                "--plan",
                &uuid::Uuid::now_v7().to_string(),
            ],
        )
        .await;
    assert_eq!(unknown.code, Some(6), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_against_a_kept_head_finds_the_records_deleted_since() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let stored = server
        .log
        .sqlite()
        .read_plan(plan_id, 1, 1000)
        .await
        .unwrap();
    let last = stored.len();
    let dir = tempfile::tempdir().unwrap();
    let head_file = dir.path().join("head.json");
    let head_path = head_file.to_str().unwrap();

    let kept = server
        .ctl(
            AUDITOR,
            &["audit", "head", "--plan", &plan, "--out", head_path],
        )
        .await;
    assert!(
        kept.ok()
            .starts_with(&format!("ok head of plan {plan}: version {last} hash ")),
        "{}",
        kept.stdout
    );
    let head: Value = serde_json::from_str(&std::fs::read_to_string(&head_file).unwrap()).unwrap();
    assert_eq!(head["version"], last);
    assert_eq!(head["signature"].as_str().unwrap().len(), 128);
    let holds = server
        .ctl(
            AUDITOR,
            &["audit", "verify", "--plan", &plan, "--head", head_path],
        )
        .await;
    assert!(holds.ok().starts_with("ok plan"), "{}", holds.stdout);

    // Offline, without the server: an export checked against the writer's public key and the
    // kept head.
    let writer = server.writer();
    let public = dir.path().join("writer.pub.pem");
    std::fs::write(&public, writer.public_pem()).unwrap();
    let export = |name: &str| {
        let file = dir.path().join(name).to_str().unwrap().to_owned();
        let plan = plan.clone();
        let server = &server;
        async move {
            let out = server
                .ctl(
                    AUDITOR,
                    &["audit", "export", "--plan", &plan, "--out", &file],
                )
                .await;
            assert!(out.ok().starts_with("ok exported"), "{}", out.stdout);
            file
        }
    };
    let whole = export("whole.jsonl").await;
    let offline = server
        .ctl(
            AUDITOR,
            &[
                "audit",
                "verify",
                "--file",
                &whole,
                "--trusted-key",
                public.to_str().unwrap(),
                "--head",
                head_path,
            ],
        )
        .await;
    assert!(
        offline.ok().contains(&format!(
            "hash chain of {last} events holds, each record signed by a trusted key, extends the \
             kept head at version {last}"
        )),
        "{}",
        offline.stdout
    );

    // The plan's last record deleted from the file: found against the kept head only.
    let db = rusqlite::Connection::open(server.store().db()).unwrap();
    db.execute(
        "DELETE FROM events WHERE position = ?1",
        rusqlite::params![stored[last - 1].position as i64],
    )
    .unwrap();
    let alone = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    assert!(alone.ok().starts_with("ok plan"), "{}", alone.stdout);
    let cut = server
        .ctl(
            AUDITOR,
            &["audit", "verify", "--plan", &plan, "--head", head_path],
        )
        .await;
    assert_eq!(cut.code, Some(8), "{}", cut.stderr);
    assert!(
        cut.stdout.starts_with(&format!(
            "BROKEN plan {plan}: truncated record at version {last}"
        )),
        "{}",
        cut.stdout
    );
    let shorter = export("cut.jsonl").await;
    let cut_offline = server
        .ctl(
            AUDITOR,
            &["audit", "verify", "--file", &shorter, "--head", head_path],
        )
        .await;
    assert_eq!(cut_offline.code, Some(8), "{}", cut_offline.stderr);
    assert!(
        cut_offline.stderr.contains("truncated"),
        "{}",
        cut_offline.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_verifies_offline_and_a_modified_line_does_not() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let stored = server
        .log
        .sqlite()
        .read_plan(plan_id, 1, 1000)
        .await
        .unwrap();
    let online = server
        .ctl(
            AUDITOR,
            &["--output", "json", "audit", "verify", "--plan", &plan],
        )
        .await;
    let online: Value = serde_json::from_str(online.ok().trim()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    for format in ["jsonl", "csv"] {
        let path = dir.path().join(format!("export.{format}"));
        let file = path.to_str().unwrap();
        let out = server
            .ctl(
                AUDITOR,
                &[
                    "audit", "export", "--plan", &plan, "--format", format, "--out", file,
                ],
            )
            .await;
        assert_eq!(
            out.ok(),
            format!(
                "ok exported {} records of plan {plan} to {file}",
                stored.len()
            )
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let header = usize::from(format == "csv");
        assert_eq!(text.lines().count(), stored.len() + header, "{text}");

        // Offline: the same head as the server's verification.
        let offline = server
            .ctl(
                AUDITOR,
                &["--output", "json", "audit", "verify", "--file", file],
            )
            .await;
        let offline: Value = serde_json::from_str(offline.ok().trim()).unwrap();
        assert_eq!(offline["ok"], true);
        assert_eq!(offline["events"], online["events"]);
        assert_eq!(offline["head_hash"], online["head_hash"]);

        // The actor of the second record rewritten in the file.
        let modified = path.with_extension(format!("modified.{format}"));
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let second = &mut lines[header + 1];
        assert!(second.contains("us-force-planning/"), "{second}");
        *second = second.replace("us-force-planning/", "rok-jcs/");
        std::fs::write(&modified, lines.join("\n") + "\n").unwrap();
        let refused = server
            .ctl(
                AUDITOR,
                &["audit", "verify", "--file", modified.to_str().unwrap()],
            )
            .await;
        assert_eq!(refused.code, Some(8), "{}", refused.stderr);
        assert!(
            refused
                .stderr
                .contains(&format!("line {}: its actor says", header + 2)),
            "{}",
            refused.stderr
        );

        // A record dropped from the middle of the file.
        assert!(stored.len() >= 3);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.remove(header + 1);
        std::fs::write(&modified, lines.join("\n") + "\n").unwrap();
        let refused = server
            .ctl(
                AUDITOR,
                &["audit", "verify", "--file", modified.to_str().unwrap()],
            )
            .await;
        assert_eq!(refused.code, Some(8), "{}", refused.stderr);
        assert!(refused.stderr.contains("missing"), "{}", refused.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_history_tells_an_element_s_story_with_actor_rationale_and_record_time() {
    let server = start().await;
    let plan = server.posture_plan().await;
    server.propose(US, &plan, "retrench-ground", "us,rok").await;
    let withdrawn = server
        .ctl(
            US,
            &[
                "element",
                "withdraw",
                "--plan",
                &plan,
                "--decision",
                "retrench-ground",
                "--element",
                "2id-abct",
                "--on",
                "2027-09-01",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    let version = withdrawn["plan_version"].as_u64().unwrap();
    server.endorse(US, &plan, "retrench-ground").await;
    // Another element's edit, not part of the story.
    server.register(&plan, "35adar", &[]).await;

    let story = server
        .ctl(
            AUDITOR,
            &[
                "--output",
                "json",
                "audit",
                "history",
                "--plan",
                &plan,
                "--element",
                "2id-abct",
                "--page-size",
                "2",
                "--min-version",
                &version.to_string(),
            ],
        )
        .await;
    let events: Vec<Value> = story
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ForceElementRegistered",
            "DecisionProposed",
            "ForceElementWithdrawalPlanned",
            "DecisionEndorsed"
        ],
        "{events:?}"
    );
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let proposed = &events[1];
    assert_eq!(proposed["actor"]["team"], "us-force-planning", "{proposed}");
    assert!(
        proposed
            .to_string()
            .contains("the paper's phased retrenchment"),
        "{proposed}"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(proposed["record_time"].as_str().unwrap()).is_ok(),
        "{proposed}"
    );

    // By team and type.
    let rok = server
        .ctl(
            AUDITOR,
            &["audit", "history", "--plan", &plan, "--team", "rok-jcs"],
        )
        .await;
    let lines: Vec<&str> = rok.ok().lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("v3 CapabilityLevelRecorded by rok-jcs/"),
        "{}",
        lines[0]
    );

    let bad = server
        .ctl(
            AUDITOR,
            &["audit", "history", "--plan", &plan, "--page-size", "5000"],
        )
        .await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_go_to_the_security_log_never_to_the_plan_and_auditors_read_them() {
    let server = start().await;
    let plan = server.posture_plan().await;
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let before = server
        .log
        .sqlite()
        .read_plan(plan_id, 1, 1000)
        .await
        .unwrap();

    // Unauthenticated, forbidden (an auditor editing), invalid.
    let args = ElementRegister {
        name: "X",
        personnel: "10",
        base: "Osan",
        ..ElementRegister::unit("x-1")
    }
    .on(&plan)
    .argv();
    assert_eq!(server.ctl("not-a-token", &args).await.code, Some(4));
    assert_eq!(server.ctl(AUDITOR, &args).await.code, Some(4));
    let mut invalid = args.to_vec();
    invalid[7] = "";
    let invalid = server.ctl(US, &invalid).await;
    assert_eq!(invalid.code, Some(2), "{}", invalid.stderr);
    assert_eq!(
        server
            .log
            .sqlite()
            .read_plan(plan_id, 1, 1000)
            .await
            .unwrap(),
        before,
        "nothing appended"
    );

    let out = server
        .ctl(AUDITOR, &["--output", "json", "audit", "denials"])
        .await;
    let denials: Vec<Value> = out
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = denials
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["caller"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("unauthenticated", "unauthenticated"),
            ("permission_denied", "auditors/auditor"),
            ("invalid_argument", "us-force-planning/us.planner"),
        ],
        "{denials:?}"
    );
    for d in &denials {
        assert_eq!(
            d["method"], "/alliance.v1.PlanCommands/RegisterForceElement",
            "{d}"
        );
        assert!(!d["reason"].as_str().unwrap().is_empty(), "{d}");
        assert_eq!(d["count"], 1, "{d}");
        assert!(
            !d.to_string().contains("not-a-token"),
            "a token in the log: {d}"
        );
    }

    // Only the audit role reads it (and that refusal is recorded too).
    let editor = server.ctl(US, &["audit", "denials"]).await;
    assert_eq!(editor.code, Some(4), "{}", editor.stderr);
    let again = server
        .ctl(AUDITOR, &["--output", "json", "audit", "denials"])
        .await;
    assert_eq!(again.ok().lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_posture_prints_the_posture_as_posture_does_and_refuses_what_if_alone() {
    let server = start().await;
    let plan = server.posture_plan().await;
    for on in ["2024-06-01", "2030-01-01"] {
        let watched = server
            .ctl(
                AUDITOR,
                &[
                    "watch",
                    "--plan",
                    &plan,
                    "--posture-on",
                    on,
                    "--count",
                    "1",
                    "--output",
                    "json",
                ],
            )
            .await;
        let asked = server
            .ctl(
                AUDITOR,
                &["posture", "--plan", &plan, "--on", on, "--output", "json"],
            )
            .await;
        let watched: Value = serde_json::from_str(watched.ok().trim()).unwrap();
        let asked: Value = serde_json::from_str(asked.ok().trim()).unwrap();
        assert_eq!(watched, asked, "on {on}");
    }
    let refused = server
        .ctl(AUDITOR, &["watch", "--plan", &plan, "--what-if"])
        .await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_events_in_version_order_and_stops_after_count() {
    let server = start().await;
    let plan = server.posture_plan().await;

    let out = server
        .ctl(AUDITOR, &["watch", "--plan", &plan, "--count", "3"])
        .await;
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let expected = [
        ("v1", "PlanCreated", "alliance-approvers/alliance.approver"),
        (
            "v2",
            "ForceElementRegistered",
            "us-force-planning/us.planner",
        ),
        ("v3", "CapabilityLevelRecorded", "rok-jcs/rok.planner"),
    ];
    for (line, (version, kind, who)) in lines.iter().zip(expected) {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 6, "{line}");
        assert_eq!(words[..5], [version, kind, "by", who, "at"], "{line}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(words[5]).is_ok(),
            "{line}"
        );
    }

    // Started before version 4 exists: it prints it once recorded, then exits 0.
    let (url, from) = (server.url.clone(), plan.clone());
    let watcher = tokio::spawn(async move {
        let args = [
            "watch",
            "--plan",
            &from,
            "--from-version",
            "2",
            "--count",
            "3",
            "--output",
            "json",
        ];
        ctl(&url, Some(AUDITOR), &args).await
    });
    let proposed = server.propose(US, &plan, "retrench", "us").await;
    assert_eq!(proposed["plan_version"], 4);
    let out = watcher.await.unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 3, 4], "{}", out.stdout);
    let last = &events[2];
    assert_eq!(last["plan_id"], plan.as_str());
    assert_eq!(last["event_type"], "DecisionProposed");
    assert_eq!(last["actor"]["team"], "us-force-planning");
    assert_eq!(last["actor"]["user"], "us.planner");
    assert_eq!(last["event_id"], proposed["event_ids"][0]);
    assert_eq!(last["command_id"], proposed["command_id"]);
    assert_eq!(last["payload"]["decision_id"], "retrench", "{last}");
    assert_eq!(events[0]["valid_date"], "2024-01-01");
    server.stop().await;
}

// ---- idempotency -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_command_id_is_replayed_and_appends_nothing() {
    let server = start().await;
    let plan = server.create_plan().await;
    let first = server
        .register(&plan, "2id-abct", &["--command-id", "register-abct"])
        .await;
    assert_eq!(first["plan_version"], 2);
    server.propose(US, &plan, "retrench", "us").await;
    let events = server.events().await.len();

    let retry = [
        &ElementRegister::abct("2id-abct").on(&plan).argv()[..],
        &["--command-id", "register-abct"],
    ]
    .concat();
    let out = server.ctl(US, &retry).await;
    assert_eq!(
        out.ok(),
        format!(
            "ok plan {plan} at version 2 (replayed: this command id was already applied as \
             versions 2..2; nothing appended)"
        )
    );
    let replayed = server
        .ctl(US, &[&retry[..], &["--output", "json"]].concat())
        .await
        .json();
    assert_eq!(replayed["replayed"], true);
    assert_eq!(replayed["command_id"], "register-abct");
    assert_eq!(replayed["first_version"], 2);
    assert_eq!(replayed["plan_version"], 2);
    assert_eq!(replayed["event_ids"], first["event_ids"]);
    assert_eq!(server.version(&plan).await, 3, "the version did not move");
    assert_eq!(server.events().await.len(), events, "nothing appended");

    // A plan creation retried with its command id creates one plan, not two.
    let create = [
        "plan",
        "create",
        "--name",
        "Scenario",
        "--horizon-start",
        "2027-01-01",
        "--horizon-end",
        "2031-12-31",
        "--command-id",
        "create-scenario",
        "--output",
        "json",
    ];
    let a = server.ctl(APPROVER, &create).await.json();
    let b = server.ctl(APPROVER, &create).await.json();
    assert_eq!(a["replayed"], false);
    assert_eq!(b["replayed"], true);
    assert_eq!(a["plan_id"], b["plan_id"]);
    let listed = server
        .ctl(AUDITOR, &["plan", "list", "--output", "json"])
        .await
        .json();
    assert_eq!(listed["plans"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(server.events().await.len(), events + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_read_models_needs_the_admin_role() {
    let server = start().await;
    let out = server
        .ctl(
            APPROVER,
            &[
                "plan",
                "create",
                "--name",
                "rebuilt",
                "--horizon-start",
                "2020-01-01",
                "--horizon-end",
                "2035-12-31",
            ],
        )
        .await;
    out.ok();

    let rebuilt = server
        .ctl(APPROVER, &["--output", "json", "rebuild"])
        .await
        .json();
    assert_eq!(rebuilt["events"], 1, "{rebuilt}");
    assert_eq!(rebuilt["plans"], 1, "{rebuilt}");
    assert_eq!(rebuilt["digest"].as_str().unwrap().len(), 64, "{rebuilt}");

    // An editor without the admin role is refused, naming the role.
    let out = server.ctl("dev-us-force-planning", &["rebuild"]).await;
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("admin role"), "{}", out.stderr);
}

// ---- witnesses and signed heads -----------------------------------------------------------

/// Keys of the governments' auditors: each one's private key (for `audit witness --key`) and a
/// keys file listing the writer's key and theirs (for `audit verify --keys`).
struct Witnesses {
    dir: tempfile::TempDir,
    rok: alliance_record::signing::Signer,
    us: alliance_record::signing::Signer,
}

impl Witnesses {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rok = alliance_record::signing::Signer::generate().unwrap();
        let us = alliance_record::signing::Signer::generate().unwrap();
        for (name, key) in [("rok", &rok), ("us", &us)] {
            key.write(&dir.path().join(format!("{name}.pem"))).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pub.pem")), key.public_pem()).unwrap();
        }
        Self { dir, rok, us }
    }

    /// The witness keys a server checks witnesses against.
    fn keys(&self) -> alliance_record::witness::WitnessKeys {
        use alliance_domain::Side;
        use alliance_record::signing::TrustedKey;
        use alliance_record::witness::{WitnessKey, WitnessKeys};
        WitnessKeys::new([
            WitnessKey {
                key: TrustedKey::always(self.rok.verifying_key()),
                side: Side::Rok,
            },
            WitnessKey {
                key: TrustedKey::always(self.us.verifying_key()),
                side: Side::Us,
            },
        ])
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// A keys file: `server`'s writer key, and the witness keys of `sides`.
    fn keys_file(&self, server: &Server, sides: &[&str]) -> String {
        let writer = server.writer();
        std::fs::write(self.dir.path().join("writer.pub.pem"), writer.public_pem()).unwrap();
        let mut toml = String::from("[[signing_key]]\npublic_key = \"writer.pub.pem\"\n");
        for side in sides {
            toml.push_str(&format!(
                "[[witness_key]]\npublic_key = \"{side}.pub.pem\"\nside = \"{side}\"\n"
            ));
        }
        let file = format!("keys-{}.toml", sides.join("-"));
        std::fs::write(self.dir.path().join(&file), toml).unwrap();
        self.path(&file)
    }
}

async fn start_witnessed(witnesses: &Witnesses) -> Server {
    Server::start(Services {
        security: true,
        witnesses: Some(witnesses.keys()),
        ..Services::default()
    })
    .await
}

impl Server {
    /// Exports `plan` to `file`.
    async fn export_to(&self, plan: &str, file: &str) {
        let out = self
            .ctl(AUDITOR, &["audit", "export", "--plan", plan, "--out", file])
            .await;
        assert!(out.ok().starts_with("ok exported"), "{}", out.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_counter_signed_by_both_sides_verifies_offline_naming_who_witnessed_what() {
    let witnesses = Witnesses::new();
    let server = start_witnessed(&witnesses).await;
    let plan = server.posture_plan().await;
    let head_file = witnesses.path("head.json");

    // The ROK's auditors witness the head the server vouches for and keep it; the U.S.'s
    // witness the same kept head.
    let rok = server
        .ctl(
            AUDITOR,
            &[
                "--output",
                "json",
                "audit",
                "witness",
                "--plan",
                &plan,
                "--key",
                &witnesses.path("rok.pem"),
                "--out",
                &head_file,
            ],
        )
        .await
        .json();
    assert_eq!(rok["plan_version"], 4, "{rok}");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&head_file).unwrap()).unwrap();
    assert_eq!(kept["version"], 3);
    let us = server
        .ctl(
            AUDITOR,
            &[
                "--output",
                "json",
                "audit",
                "witness",
                "--plan",
                &plan,
                "--key",
                &witnesses.path("us.pem"),
                "--head",
                &head_file,
            ],
        )
        .await
        .json();
    assert_eq!(us["plan_version"], 5, "{us}");

    // On the server.
    let verified = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    let (rok_id, us_id) = (witnesses.rok.id(), witnesses.us.id());
    let expected = format!(
        "heads vouched for: version 3 witnessed by the ROK (key {rok_id}), recorded at version 4 \
         by auditors/auditor; version 3 witnessed by the U.S. (key {us_id}), recorded at version \
         5 by auditors/auditor"
    );
    assert!(verified.ok().contains(&expected), "{}", verified.stdout);

    // Offline, without the server: the export against the writer's key and both witness keys.
    let export = witnesses.path("plan.jsonl");
    server.export_to(&plan, &export).await;
    let keys = witnesses.keys_file(&server, &["rok", "us"]);
    let offline = server
        .ctl(
            AUDITOR,
            &[
                "audit", "verify", "--file", &export, "--keys", &keys, "--head", &head_file,
            ],
        )
        .await;
    assert!(
        offline.ok().contains(&format!(
            "hash chain of 5 events holds, each record signed by a trusted key, extends the kept \
             head at version 3; {expected}"
        )),
        "{}",
        offline.stdout
    );
    let json = server
        .ctl(
            AUDITOR,
            &[
                "--output", "json", "audit", "verify", "--file", &export, "--keys", &keys,
            ],
        )
        .await
        .json();
    let sides: Vec<(u64, &str, bool)> = each(&json["vouched"], |v| {
        (
            v["version"].as_u64().unwrap(),
            v["side"].as_str().unwrap(),
            v["verified"].as_bool().unwrap(),
        )
    });
    assert_eq!(sides, [(3, "rok", true), (3, "us", true)]);

    // Checked against keys that do not list the U.S. witness key, the export is refused there.
    let rok_only = witnesses.keys_file(&server, &["rok"]);
    let unknown = server
        .ctl(
            AUDITOR,
            &["audit", "verify", "--file", &export, "--keys", &rok_only],
        )
        .await;
    assert_eq!(unknown.code, Some(8), "{}", unknown.stdout);
    assert!(
        unknown.stderr.contains("line 5: unknown_witness")
            || unknown.stderr.contains("line 5: unknown witness"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains(&us_id.to_string()),
        "{}",
        unknown.stderr
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_witness_by_a_key_that_is_not_a_witness_key_or_of_another_head_is_refused() {
    let witnesses = Witnesses::new();
    let server = start_witnessed(&witnesses).await;
    let plan = server.posture_plan().await;
    let stranger = alliance_record::signing::Signer::generate().unwrap();
    let stranger_file = witnesses.path("stranger.pem");
    stranger
        .write(std::path::Path::new(&stranger_file))
        .unwrap();

    let refused = server
        .ctl(
            AUDITOR,
            &["audit", "witness", "--plan", &plan, "--key", &stranger_file],
        )
        .await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "witnesses[0].key_id: key {} is not a witness key of this deployment",
            stranger.id()
        )),
        "{}",
        refused.stderr
    );
    // A head that is not the plan's (its hash changed in the kept file) is refused too.
    let head_file = witnesses.path("head.json");
    let kept = server
        .ctl(
            AUDITOR,
            &["audit", "head", "--plan", &plan, "--out", &head_file],
        )
        .await;
    kept.ok();
    let mut head: Value =
        serde_json::from_str(&std::fs::read_to_string(&head_file).unwrap()).unwrap();
    head["head_hash"] = "ab".repeat(32).into();
    std::fs::write(&head_file, head.to_string()).unwrap();
    let other = server
        .ctl(
            AUDITOR,
            &[
                "audit",
                "witness",
                "--plan",
                &plan,
                "--key",
                &witnesses.path("rok.pem"),
                "--head",
                &head_file,
            ],
        )
        .await;
    assert_eq!(other.code, Some(7), "{}", other.stderr);
    assert!(
        other
            .stderr
            .contains("HEAD_MISMATCH: the plan's record at version 3 has hash"),
        "{}",
        other.stderr
    );
    // Nothing was appended.
    assert_eq!(server.version(&plan).await, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewrite_below_a_witnessed_head_is_named_with_its_witness_even_signed_by_the_writer() {
    use alliance_proto::v1;
    use prost::Message;

    let witnesses = Witnesses::new();
    let server = start_witnessed(&witnesses).await;
    let plan = server.posture_plan().await;
    server
        .ctl(
            AUDITOR,
            &[
                "audit",
                "witness",
                "--plan",
                &plan,
                "--key",
                &witnesses.path("rok.pem"),
            ],
        )
        .await
        .ok();
    let plan_id: Uuid = plan.parse().unwrap();
    let stored = server
        .log
        .sqlite()
        .read_plan(plan_id, 1, 1000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);

    // The holder of the writer's key rewrites version 2 and signs it and every later record
    // again, the witness's record included: every record signature holds.
    let writer = server.writer();
    let db = rusqlite::Connection::open(server.store().db()).unwrap();
    let mut prev = alliance_record::chain::carried_hash(&stored[0].payload).unwrap();
    for (i, record) in stored.iter().enumerate().skip(1) {
        let mut envelope = v1::EventEnvelope::decode(record.payload.as_slice()).unwrap();
        if i == 1 {
            envelope.actor.as_mut().unwrap().user = "someone.else".into();
        }
        let (payload, hash) = alliance_record::chain::seal_signed(envelope, &prev, Some(&writer));
        db.execute(
            "UPDATE events SET payload = ?1 WHERE position = ?2",
            rusqlite::params![payload, record.position as i64],
        )
        .unwrap();
        prev = hash;
    }

    let broken = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    assert_eq!(broken.code, Some(8), "{}", broken.stderr);
    let rok_id = witnesses.rok.id();
    assert!(
        broken.stdout.starts_with(&format!(
            "BROKEN plan {plan}: witness_diverged record at version 4 (log position {})",
            stored[3].position
        )),
        "{}",
        broken.stdout
    );
    assert!(
        broken.stdout.contains(&format!(
            "witness key {rok_id} (ROK), recorded by auditors/auditor"
        )),
        "{}",
        broken.stdout
    );
    // Offline too, on the line of the witness's record.
    let export = witnesses.path("rewritten.jsonl");
    server.export_to(&plan, &export).await;
    let keys = witnesses.keys_file(&server, &["rok"]);
    let offline = server
        .ctl(
            AUDITOR,
            &["audit", "verify", "--file", &export, "--keys", &keys],
        )
        .await;
    assert_eq!(offline.code, Some(8), "{}", offline.stderr);
    assert!(
        offline
            .stderr
            .contains("line 4: witness diverged at version 4")
            && offline.stderr.contains(&rok_id.to_string()),
        "{}",
        offline.stderr
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_history_sealed_before_signing_is_signed_from_now_on_and_reported_covered() {
    use alliance_domain::{Actor, Date, Event, Side, TeamId};

    let witnesses = Witnesses::new();
    let server = start_witnessed(&witnesses).await;
    // Two records written before writers signed: sealed, unsigned.
    let plan_id = Uuid::now_v7();
    let actor = Actor {
        team: TeamId::parse("alliance-approvers").unwrap(),
        user: "alliance.approver".into(),
        side: None,
    };
    let events = [
        Event::PlanCreated {
            plan_id,
            name: "sealed before signing".into(),
            description: String::new(),
            horizon_start: Date::from_ymd_opt(2020, 1, 1).unwrap(),
            horizon_end: Date::from_ymd_opt(2035, 12, 31).unwrap(),
            grants: Vec::new(),
        },
        Event::CapabilityLevelRecorded {
            side: Side::Rok,
            area: alliance_domain::CapabilityArea::MissileDefense,
            level: 40,
            as_of: Date::from_ymd_opt(2024, 6, 1).unwrap(),
        },
    ];
    let mut prev = alliance_record::chain::GENESIS;
    for (event, version) in events.iter().zip(1..) {
        let (record, hash) = alliance_record::encode_event(
            plan_id,
            version,
            event,
            &actor,
            &format!("unsigned-{version}"),
            chrono::Utc::now().timestamp_micros(),
            &prev,
        );
        server
            .log
            .sqlite()
            .append(plan_id, version - 1, vec![record])
            .await
            .unwrap();
        prev = hash;
    }
    let plan = plan_id.to_string();
    let before = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    assert!(
        before
            .ok()
            .contains("no record signed (sealed before writers signed"),
        "{}",
        before.stdout
    );

    let signed = server
        .ctl(
            AUDITOR,
            &["--output", "json", "audit", "sign", "--plan", &plan],
        )
        .await
        .json();
    assert_eq!(signed["plan_version"], 3, "{signed}");
    let after = server
        .ctl(AUDITOR, &["audit", "verify", "--plan", &plan])
        .await;
    let writer_id = server.writer().id();
    assert!(
        after.ok().contains(&format!(
            "hash chain of 3 events holds, unsigned up to version 2, covered by the signature of \
             version 3, each record after signed by a trusted key; heads vouched for: version 2 \
             signed by the writer (key {writer_id}), recorded at version 3 by auditors/auditor"
        )),
        "{}",
        after.stdout
    );
    // Offline, the same.
    let export = witnesses.path("signed.jsonl");
    server.export_to(&plan, &export).await;
    let keys = witnesses.keys_file(&server, &[]);
    let offline = server
        .ctl(
            AUDITOR,
            &[
                "--output", "json", "audit", "verify", "--file", &export, "--keys", &keys,
            ],
        )
        .await
        .json();
    assert_eq!(
        (
            &offline["unsigned_through"],
            &offline["unsigned_covered_by"]
        ),
        (&json!(2), &json!(3)),
        "{offline}"
    );
    server.stop().await;
}
