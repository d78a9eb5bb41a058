//! Hostile input against a real server on a loopback port: oversized messages, long strings,
//! long lists, huge pages and too many streams are refused with a clear error, and nothing is
//! appended.

use crate::support::{Server, Services, assert_refused, head_version};
use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_server::limits::{MAX_MESSAGE_BYTES, MAX_STREAMS_PER_CALLER};
use alliance_tests::requests::{self, authed};
use tonic::Code;
use tonic::transport::Channel;

const PLAN: &str = "019a0000-0000-7000-8000-000000000001";

fn meta() -> Option<v1::CommandMeta> {
    requests::meta(PLAN, None)
}

fn proposal(title: String, supersedes: Vec<String>) -> v1::ProposeDecisionRequest {
    v1::ProposeDecisionRequest {
        meta: meta(),
        decision_id: format!("d-{}", uuid::Uuid::now_v7().simple()),
        title,
        rationale: "why".into(),
        effective_date: Some(v1::Date {
            year: 2029,
            month: 1,
            day: 1,
        }),
        required_sides: vec![1],
        supersedes,
    }
}

/// Asserts that a proposal of `token`'s over the message limit is refused before it is decoded.
async fn assert_huge_refused(commands: &mut PlanCommandsClient<Channel>, token: &str) {
    let huge = proposal("x".repeat(MAX_MESSAGE_BYTES + 1), Vec::new());
    let refused = commands
        .propose_decision(authed(token, huge))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::OutOfRange, "too large");
}

fn auditors<T>(message: T) -> tonic::Request<T> {
    authed("dev-auditors", message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_changes_nothing() {
    let plan = alliance_commands::reference::ReferencePlan::read(
        &crate::support::repo().join("deploy/reference-plan.json"),
    )
    .unwrap();
    let server = Server::start(Services {
        plan: Some(plan),
        ..Services::default()
    })
    .await;
    let commands = PlanCommandsClient::connect(server.url.clone())
        .await
        .unwrap();
    let version = |mut c: PlanCommandsClient<Channel>| async move {
        head_version(&mut c, "dev-auditors", PLAN).await
    };
    let before = version(commands.clone()).await;

    // A message over the limit is refused before it is decoded.
    assert_huge_refused(&mut commands.clone(), "dev-us-force-planning").await;
    // A title past its length, a list past its size: INVALID_ARGUMENT naming the field.
    let long = commands
        .clone()
        .propose_decision(authed(
            "dev-us-force-planning",
            proposal("t".repeat(201), Vec::new()),
        ))
        .await
        .unwrap_err();
    assert_refused(&long, Code::InvalidArgument, "title");
    let many = (0..101).map(|n| format!("old-{n}")).collect();
    let listed = commands
        .clone()
        .propose_decision(authed("dev-us-force-planning", proposal("t".into(), many)))
        .await
        .unwrap_err();
    assert_refused(&listed, Code::InvalidArgument, "supersedes");
    assert_eq!(version(commands.clone()).await, before, "nothing appended");

    // A page past the largest.
    let mut audit = AuditLogClient::connect(server.url.clone()).await.unwrap();
    let past_the_largest = v1::ListEventsRequest {
        plan_id: PLAN.into(),
        page_size: 1_000_000,
        ..Default::default()
    };
    let page = audit
        .list_events(auditors(past_the_largest))
        .await
        .unwrap_err();
    assert_eq!(page.code(), Code::InvalidArgument, "{page:?}");

    // Streams: a caller holds at most so many open at once; another caller is not affected;
    // closing one frees its place.
    let queries = PostureQueriesClient::connect(server.url.clone())
        .await
        .unwrap();
    let watch = |mut q: PostureQueriesClient<Channel>, token: &'static str| async move {
        q.watch_plan(authed(
            token,
            v1::WatchPlanRequest {
                plan_id: PLAN.into(),
                from_version: u64::MAX,
                min_version: 0,
            },
        ))
        .await
    };
    // As many watches of `token`'s as it may hold, each open.
    let open_all = async |token: &'static str| {
        let mut open = Vec::new();
        for _ in 0..MAX_STREAMS_PER_CALLER {
            open.push(watch(queries.clone(), token).await.unwrap().into_inner());
        }
        open
    };
    let mut open = open_all("dev-rok-jcs").await;
    let refused = watch(queries.clone(), "dev-rok-jcs").await.unwrap_err();
    assert_refused(&refused, Code::ResourceExhausted, "rok-jcs");
    watch(queries.clone(), "dev-us-force-planning")
        .await
        .unwrap();
    drop(open.pop());
    // The server frees the place once it sees the stream closed: retried, each a real call.
    let mut admitted = false;
    for _ in 0..200 {
        match watch(queries.clone(), "dev-rok-jcs").await {
            Ok(stream) => {
                open.push(stream.into_inner());
                admitted = true;
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::task::yield_now().await;
    }
    assert!(admitted, "a closed stream's place was never freed");
    // An export is a stream too: a caller holding the most streams it may is refused one, and
    // the streams it holds are not disturbed.
    let audits = AuditLogClient::connect(server.url.clone()).await.unwrap();
    let watching = open_all("dev-auditors").await;
    let export = |mut a: AuditLogClient<Channel>| async move {
        a.export_plan(auditors(v1::ExportPlanRequest {
            plan_id: PLAN.into(),
        }))
        .await
    };
    let refused = export(audits.clone()).await.unwrap_err();
    assert_refused(&refused, Code::ResourceExhausted, "auditors");
    drop(watching);
    // Once the watches are closed, the export is admitted and holds a place while it streams.
    let mut exported = None;
    for _ in 0..200 {
        match export(audits.clone()).await {
            Ok(stream) => {
                exported = Some(stream.into_inner());
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::task::yield_now().await;
    }
    let mut exported = exported.expect("an export was never admitted");
    let mut records = 0;
    while let Some(record) = exported.message().await.unwrap() {
        records += 1;
        assert_eq!(record.version, records);
    }
    assert!(records > 0, "the export streamed nothing");
    // A server stops once its streams are closed.
    drop(open);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_for_size_and_for_streams_are_in_the_security_log() {
    let plan = alliance_commands::reference::ReferencePlan::read(
        &crate::support::repo().join("deploy/reference-plan.json"),
    )
    .unwrap();
    // A caller of its own: streams are counted per caller in the whole process.
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let mut file =
        std::fs::read_to_string(crate::support::repo().join("deploy/dev-tokens.toml")).unwrap();
    file.push_str(
        "\n[[token]]\ntoken = \"quota-token\"\nteam = \"auditors\"\nuser = \"quota.tester\"\n",
    );
    std::fs::write(&tokens, file).unwrap();
    let server = Server::start(Services {
        plan: Some(plan),
        security: true,
        tokens: Some(tokens),
        ..Services::default()
    })
    .await;

    // OUT_OF_RANGE: a message over the limit.
    let mut commands = PlanCommandsClient::connect(server.url.clone())
        .await
        .unwrap();
    assert_huge_refused(&mut commands, "quota-token").await;

    // RESOURCE_EXHAUSTED: one stream past the caller's most.
    let mut queries = PostureQueriesClient::connect(server.url.clone())
        .await
        .unwrap();
    let mut open = Vec::new();
    let watch = v1::WatchPlanRequest {
        plan_id: PLAN.into(),
        from_version: u64::MAX,
        min_version: 0,
    };
    for _ in 0..MAX_STREAMS_PER_CALLER {
        open.push(
            queries
                .watch_plan(authed("quota-token", watch.clone()))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let refused = queries
        .watch_plan(authed("quota-token", watch))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::ResourceExhausted, "quota.tester");

    // Both are in the security log, with the caller and the method.
    let mut audit = AuditLogClient::connect(server.url.clone()).await.unwrap();
    let denials = audit
        .list_denials(auditors(v1::ListDenialsRequest {
            since: None,
            limit: 1000,
        }))
        .await
        .unwrap()
        .into_inner()
        .denials;
    let row = |code: &str| {
        denials
            .iter()
            .find(|d| d.code == code)
            .unwrap_or_else(|| panic!("no {code} in the security log: {denials:?}"))
    };
    let out_of_range = row("out_of_range");
    assert_eq!(
        out_of_range.method,
        "/alliance.v1.PlanCommands/ProposeDecision"
    );
    assert!(
        out_of_range.reason.contains("too large"),
        "{out_of_range:?}"
    );
    let exhausted = row("resource_exhausted");
    assert_eq!(exhausted.caller, "auditors/quota.tester");
    assert_eq!(exhausted.method, "/alliance.v1.PostureQueries/WatchPlan");
    assert_eq!(exhausted.count, 1);
    drop(open);
    server.stop().await;
}
