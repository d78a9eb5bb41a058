//! End to end: `alliancectl status` against the real services, composed as `allianced`
//! composes them (the command service, the read models following the log, the simulation
//! service) on an ephemeral loopback port, beside a port nobody listens on.

use crate::support::{Server, Services, ctl_with_plan, each, repo};
use alliance_commands::reference::ReferencePlan;
use serde_json::Value;

const SERVICES: [&str; 5] = [
    "alliance.v1.PlanCommands",
    "alliance.v1.PostureQueries",
    "alliance.v1.ReadModelAdmin",
    "alliance.v1.AuditLog",
    "alliance.v1.Simulation",
];

async fn start() -> (Server, usize) {
    let plan = ReferencePlan::read(&repo().join("deploy/reference-plan.json")).unwrap();
    let entries = plan.entries.len();
    let server = Server::start(Services {
        plan: Some(plan),
        simulation: true,
        ..Services::default()
    })
    .await;
    (server, entries)
}

/// A loopback address nobody listens on (bound, then released).
fn nobody() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_each_service_serving_and_the_read_models_caught_up() {
    let (server, entries) = start().await;
    let version = server.version("019a0000-0000-7000-8000-000000000001").await;
    assert!(version >= entries as u64);

    let reply = server
        .ctl("dev-auditors", &["status", "--output", "json"])
        .await
        .json();
    assert_eq!(reply["healthy"], true, "{reply}");
    let servers = reply["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    let one = &servers[0];
    assert_eq!(one["server"], server.url.as_str());
    assert_eq!(one["health"], "serving");
    assert_eq!(one["error"], Value::Null);
    let services: Vec<(&str, &str)> = each(&one["services"], |s| {
        (
            s["service"].as_str().unwrap(),
            s["status"].as_str().unwrap(),
        )
    });
    assert_eq!(
        services,
        SERVICES.iter().map(|s| (*s, "serving")).collect::<Vec<_>>()
    );
    let model = &one["read_model"];
    assert_eq!(model["plans"], 1, "{model}");
    assert_eq!(model["events"], version, "{model}");
    assert_eq!(
        model["position"], version,
        "one plan: positions are its versions"
    );
    assert_eq!(model["lag"], 0, "{model}");
    assert_eq!(model["lag_error"], Value::Null);
    assert_eq!(
        model["partitions"],
        serde_json::json!([]),
        "no partitions on SQLite"
    );
    assert_eq!(model["snapshot"], Value::Null);
    assert_eq!(one["read_model_error"], Value::Null);

    // The table: a header, then one row per server.
    let table = server.ctl("dev-auditors", &["status"]).await;
    let text = table.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SERVER"), "{text}");
    for column in ["HEALTH", "PLANS", "EVENTS", "LAG", "SNAPSHOT", "SERVICES"] {
        assert!(lines[0].contains(column), "{text}");
    }
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..7],
        [
            server.url.as_str(),
            "serving",
            "1",
            &version.to_string(),
            &version.to_string(),
            "0",
            "-"
        ],
        "{text}"
    );
    assert!(
        lines[1].ends_with("PlanCommands, PostureQueries, ReadModelAdmin, AuditLog, Simulation"),
        "{text}"
    );

    // Without a token the health is still known; the read models say who may ask.
    let anonymous = ctl_with_plan(&server.url, None, None, &["status", "--output", "json"]).await;
    let reply = anonymous.json();
    assert_eq!(reply["healthy"], true);
    assert_eq!(reply["servers"][0]["read_model"], Value::Null);
    let why = reply["servers"][0]["read_model_error"].as_str().unwrap();
    assert!(why.contains("not authenticated"), "{why}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_be_reached_makes_status_exit_5_and_the_others_are_still_shown() {
    let (server, _) = start().await;
    let gone = nobody();
    let args = [
        "status",
        "--server",
        server.url.as_str(),
        "--server",
        gone.as_str(),
        "--timeout",
        "10",
    ];
    let run = server.ctl("dev-auditors", &args).await;
    assert_eq!(run.code, Some(5), "{}\n{}", run.stdout, run.stderr);
    let text = run.stdout.trim_end();
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[1].starts_with(&format!("{}  serving", server.url)),
        "{text}"
    );
    assert!(
        rows[2].starts_with(&format!("{gone}  unreachable")),
        "{text}"
    );
    assert!(text.contains(&format!("{gone}: unavailable")), "{text}");
    let error = run.stderr.trim_end();
    assert_eq!(
        error,
        format!("error: unavailable: 1 of 2 servers unreachable or not serving: {gone}")
    );

    let mut json_args = args.to_vec();
    json_args.extend(["--output", "json"]);
    let run = server.ctl("dev-auditors", &json_args).await;
    assert_eq!(run.code, Some(5));
    let reply: Value = serde_json::from_str(run.stdout.trim_end()).unwrap();
    assert_eq!(reply["healthy"], false);
    assert_eq!(reply["servers"][0]["health"], "serving");
    assert_eq!(reply["servers"][1]["server"], gone.as_str());
    assert_eq!(reply["servers"][1]["health"], "unreachable");
    assert!(reply["servers"][1]["error"].is_string(), "{reply}");
    assert_eq!(reply["servers"][1]["services"], serde_json::json!([]));
    let error: Value = serde_json::from_str(run.stderr.trim_end()).unwrap();
    assert_eq!(error["error"]["exit_code"], 5);
    assert_eq!(error["error"]["code"], "unavailable");

    // Only the unreachable one: exit 5 too.
    let run = ctl_with_plan(&gone, Some("dev-auditors"), None, &["status"]).await;
    assert_eq!(run.code, Some(5), "{}\n{}", run.stdout, run.stderr);
    server.stop().await;
}
