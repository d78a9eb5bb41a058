//! End to end: the built binary against an in-process fake `PlanCommands` service. The fake
//! answers by bearer token, so each test picks the outcome it wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use alliance_proto::v1;
use alliance_proto::v1::plan_commands_server::{PlanCommands, PlanCommandsServer};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

const PLAN: &str = "019a0000-0000-7000-8000-000000000001";

struct Fake;

/// The reply to every command, chosen by the caller's token.
async fn answer(
    token: Option<&str>,
    meta: Option<v1::CommandMeta>,
) -> Result<Response<v1::CommandResult>, Status> {
    let meta = meta.unwrap_or_default();
    match token {
        Some("Bearer dev-us-force-planning") => Ok(Response::new(v1::CommandResult {
            plan_id: meta.plan_id,
            first_version: 43,
            plan_version: 43,
            // echoes what the client sent, for the test to check
            event_ids: vec![meta.command_id, format!("{:?}", meta.based_on_version)],
            replayed: false,
        })),
        Some("Bearer conflict") => {
            let metadata = HashMap::from([("based_on_version".to_owned(), "12".to_owned())]);
            let mut details =
                ErrorDetails::with_error_info("PLAN_VERSION_CONFLICT", "alliance.v1", metadata);
            details.add_precondition_failure_violation(
                "CONFLICTING_EVENT",
                "v13 DecisionEndorsed e13",
                "decision/opcon-transfer",
            );
            Err(Status::with_error_details(
                Code::Aborted,
                "plan changed",
                details,
            ))
        }
        Some("Bearer invalid") => {
            let mut details = ErrorDetails::new();
            details.add_bad_request_violation("name", "must not be empty");
            Err(Status::with_error_details(
                Code::InvalidArgument,
                "invalid command",
                details,
            ))
        }
        Some("Bearer rule") => Err(Status::failed_precondition("not every side endorsed it")),
        Some("Bearer missing") => Err(Status::not_found("decision d9 not found")),
        Some("Bearer slow") => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Err(Status::internal("too late"))
        }
        _ => Err(Status::unauthenticated("unknown token")),
    }
}

macro_rules! fake_service {
    ($($rpc:ident: $request:ident),* $(,)?) => {
        #[tonic::async_trait]
        impl PlanCommands for Fake {
            $(
                async fn $rpc(
                    &self,
                    request: Request<v1::$request>,
                ) -> Result<Response<v1::CommandResult>, Status> {
                    let token = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
                    answer(token, request.get_ref().meta.clone()).await
                }
            )*

            async fn list_plans(
                &self,
                _: Request<v1::ListPlansRequest>,
            ) -> Result<Response<v1::ListPlansResponse>, Status> {
                Ok(Response::new(v1::ListPlansResponse {
                    plans: vec![v1::PlanHead {
                        plan_id: PLAN.into(),
                        name: "Alliance modernization 2027-2031".into(),
                        version: 42,
                        ..Default::default()
                    }],
                }))
            }

            async fn get_plan(
                &self,
                _: Request<v1::GetPlanRequest>,
            ) -> Result<Response<v1::PlanSummary>, Status> {
                Err(Status::not_found("plan not found"))
            }
        }
    };
}

fake_service!(
    create_plan: CreatePlanRequest,
    branch_plan: BranchPlanRequest,
    register_force_element: RegisterForceElementRequest,
    record_capability_level: RecordCapabilityLevelRequest,
    define_agreement_clause: DefineAgreementClauseRequest,
    define_condition: DefineConditionRequest,
    assess_condition: AssessConditionRequest,
    propose_decision: ProposeDecisionRequest,
    add_force_element: AddForceElementRequest,
    withdraw_force_element: WithdrawForceElementRequest,
    reduce_force_element: ReduceForceElementRequest,
    relocate_force_element: RelocateForceElementRequest,
    schedule_opcon_transfer: ScheduleOpconTransferRequest,
    change_command_arrangement: ChangeCommandArrangementRequest,
    amend_agreement_clause: AmendAgreementClauseRequest,
    plan_capability_investment: PlanCapabilityInvestmentRequest,
    endorse_decision: EndorseDecisionRequest,
    adopt_decision: AdoptDecisionRequest,
    reject_decision: RejectDecisionRequest,
    withdraw_decision: WithdrawDecisionRequest,
);

async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PlanCommandsServer::new(Fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

/// Runs the binary with `args` against `addr`, as the holder of `token`.
async fn ctl(addr: SocketAddr, token: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_alliancectl"));
    command
        .args(args)
        .env("ALLIANCE_SERVER", format!("http://{addr}"))
        .env("ALLIANCE_TOKEN", token)
        .env("ALLIANCE_PLAN", PLAN);
    tokio::task::spawn_blocking(move || command.output().expect("run alliancectl"))
        .await
        .expect("join")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn command_succeeds_with_bearer_token_and_meta() {
    let addr = serve().await;
    let args = [
        "decision",
        "endorse",
        "opcon-transfer",
        "--based-on",
        "42",
        "--command-id",
        "retry-7",
    ];
    let out = ctl(addr, "dev-us-force-planning", &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("ok plan {PLAN} now at version 43 (appended 2 events)")
    );

    let out = ctl(
        addr,
        "dev-us-force-planning",
        &[&args[..], &["--output", "json"]].concat(),
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["plan_version"], 43);
    assert_eq!(json["command_id"], "retry-7");
    assert_eq!(json["event_ids"][0], "retry-7");
    assert_eq!(json["event_ids"][1], "Some(42)");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_print_one_line_and_exit_with_their_code() {
    let addr = serve().await;
    let endorse = ["decision", "endorse", "opcon-transfer"];
    let cases = [
        (
            "invalid",
            2,
            "error: invalid input: name: must not be empty",
        ),
        (
            "conflict",
            3,
            "error: conflict: plan changed since version 12: v13 DecisionEndorsed e13 (decision/opcon-transfer)",
        ),
        (
            "nobody",
            4,
            "error: permission: not authenticated: unknown token (check --token or ALLIANCE_TOKEN)",
        ),
        ("missing", 6, "error: not found: decision d9 not found"),
        ("rule", 7, "error: refused: not every side endorsed it"),
    ];
    for (token, code, line) in cases {
        let out = ctl(addr, token, &endorse).await;
        assert_eq!(out.status.code(), Some(code), "{token}");
        assert_eq!(stderr(&out), line, "{token}");
        assert!(stdout(&out).is_empty());
    }

    let out = ctl(
        addr,
        "conflict",
        &[&endorse[..], &["--output", "json"]].concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_str(&stderr(&out)).unwrap();
    assert_eq!(json["error"]["code"], "conflict");
    assert_eq!(json["error"]["grpc_status"], "ABORTED");
    let details = json["error"]["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["subject"] == "v13 DecisionEndorsed e13")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_or_absent_server_is_unavailable() {
    let addr = serve().await;
    let out = ctl(
        addr,
        "slow",
        &[
            "--timeout",
            "1",
            "decision",
            "adopt",
            "d1",
            "--command-id",
            "c-1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("deadline exceeded"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).ends_with("retry safely with --command-id c-1"),
        "{}",
        stderr(&out)
    );

    // a port nobody listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = ctl(closed, "dev-auditors", &["plan", "list"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_render_plans() {
    let addr = serve().await;
    let out = ctl(addr, "dev-auditors", &["plan", "list"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("PLAN "), "{text}");
    assert!(
        text.contains(&format!(
            "{PLAN}  42       -              Alliance modernization"
        )),
        "{text}"
    );
    let out = ctl(addr, "dev-auditors", &["plan", "show"]).await;
    assert_eq!(out.status.code(), Some(6));
}
