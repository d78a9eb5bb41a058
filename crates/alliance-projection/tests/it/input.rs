//! Bad input to the queries over gRPC: every refusal names its field in a
//! `google.rpc.BadRequest`; a record version past the plan's head is OUT_OF_RANGE naming the
//! head; a huge `grpc-timeout` is clamped, never a panic.

use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_tests::requests;
use alliance_tests::server::tokens::AUDITOR;
use tonic::Code;

use crate::harness::{Env, US, registration};

fn authed<T>(message: T) -> tonic::Request<T> {
    requests::authed(AUDITOR, message)
}

/// Asserts that `result` is a refusal with `code` naming `field` alone in its `BadRequest`:
/// its message.
#[track_caller]
fn assert_refused(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    field: &str,
) -> String {
    let status = result.expect_err("refused");
    let fields = requests::fields(&status);
    assert_eq!(
        (status.code(), fields),
        (code, vec![field.to_owned()]),
        "{status:?}"
    );
    status.message().to_owned()
}

fn at(point: v1::record_point::Point) -> Option<v1::RecordPoint> {
    Some(v1::RecordPoint { point: Some(point) })
}

fn instant(nanos: i32) -> v1::record_point::Point {
    v1::record_point::Point::Time(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_query_input_names_the_field_and_a_version_past_the_head_is_out_of_range() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    env.exec(US, plan, registration("abct", 4500)).await;
    let address = env.serve_caught_up().await;
    let mut queries = PostureQueriesClient::connect(address.clone())
        .await
        .unwrap();
    let mut audit = AuditLogClient::connect(address).await.unwrap();
    let posture = |record: Option<v1::RecordPoint>| v1::GetPostureRequest {
        plan_id: plan.to_string(),
        valid_on: Some(v1::Date {
            year: 2025,
            month: 1,
            day: 1,
        }),
        record,
        include_proposed: false,
        min_version: 0,
    };

    let not_a_uuid = v1::GetPostureRequest {
        plan_id: "not-a-uuid".into(),
        ..posture(None)
    };
    let no_date = v1::GetPostureRequest {
        valid_on: None,
        ..posture(None)
    };
    for (request, field) in [
        (not_a_uuid, "plan_id"),
        (no_date, "valid_on"),
        (posture(at(instant(1_000_000_000))), "record.time"),
        (posture(at(instant(-1))), "record.time"),
    ] {
        let answer = queries.get_posture(authed(request)).await;
        assert_refused(answer, Code::InvalidArgument, field);
    }

    // The plan is at version 2: version 3 is not clamped to it, it is refused.
    let version = |v| at(v1::record_point::Point::Version(v));
    let answer = queries.get_posture(authed(posture(version(3)))).await;
    let message = assert_refused(answer, Code::OutOfRange, "record.version");
    assert!(message.contains("at version 2"), "{message}");
    queries
        .get_posture(authed(posture(version(2))))
        .await
        .unwrap();
    let beyond = v1::DiffPlanRequest {
        plan_id: plan.to_string(),
        from: version(1),
        to: version(99),
        min_version: 0,
    };
    let answer = queries.diff_plan(authed(beyond)).await;
    assert_refused(answer, Code::OutOfRange, "to.version");

    let past_the_page_limit = v1::ListEventsRequest {
        plan_id: plan.to_string(),
        page_size: 5_000,
        ..Default::default()
    };
    let bad_instant = v1::ListEventsRequest {
        plan_id: plan.to_string(),
        recorded_from: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: 2_000_000_000,
        }),
        ..Default::default()
    };
    for (request, field) in [
        (past_the_page_limit, "page_size"),
        (bad_instant, "recorded_from"),
    ] {
        let answer = audit.list_events(authed(request)).await;
        assert_refused(answer, Code::InvalidArgument, field);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_grpc_timeout_is_clamped() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let address = env.serve_caught_up().await;
    let mut queries = PostureQueriesClient::connect(address).await.unwrap();
    for timeout in [
        "18446744073709551615H",
        "18446744073709551615S",
        "99999999H",
    ] {
        let mut request = crate::harness::posture_request(&plan.to_string(), 1);
        request
            .metadata_mut()
            .insert("grpc-timeout", timeout.parse().unwrap());
        let posture = queries.get_posture(request).await;
        assert_eq!(
            posture.map(|p| p.into_inner().version).ok(),
            Some(1),
            "{timeout}"
        );
    }
}
