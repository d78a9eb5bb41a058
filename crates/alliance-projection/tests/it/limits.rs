//! A server's connection limits over gRPC on a loopback port: one connection holds at most so
//! many calls in progress (the rest wait their turn), a call that outlives the server's request
//! timeout is answered rather than left hanging, and a stream outlives that timeout.

use std::sync::Arc;
use std::time::Duration;

use alliance_domain::PlanId;
use alliance_projection::Projection;
use alliance_proto::v1;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_server::serve::{ConnectionLimits, Guard};
use tonic::Code;

use crate::harness::{Env, US, registration, serve_guarded};

/// Serves the read models of `projection` on a loopback port, `per_connection` calls in
/// progress on a connection at most, each answered within `request_timeout`.
async fn serve_with(
    env: &Env,
    projection: Arc<Projection>,
    per_connection: usize,
    request_timeout: Duration,
) -> String {
    let limits = ConnectionLimits {
        per_connection,
        request_timeout,
    };
    let guard = Guard {
        limits,
        ..Guard::default()
    };
    serve_guarded(env, projection, guard).await
}

/// A plan on a fresh log, its read models caught up with it (and then not following the log)
/// and their address, served as [`serve_with`] does.
async fn served(
    per_connection: usize,
    request_timeout: Duration,
) -> (Env, PlanId, Arc<Projection>, String) {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let model = env.caught_up().await;
    let address = serve_with(&env, model.clone(), per_connection, request_timeout).await;
    (env, plan, model, address)
}

/// A posture request for a version the read model does not hold: the server waits for it
/// until `patience` (the caller's deadline) runs out.
fn waiting(
    plan_id: &str,
    min_version: u64,
    deadline: Duration,
) -> tonic::Request<v1::GetPostureRequest> {
    let mut request = crate::harness::posture_request(plan_id, min_version);
    request.set_timeout(deadline);
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_holds_at_most_its_limit_of_calls_in_progress() {
    // Not following the log: a wait for version 2 lasts the whole deadline.
    let (_env, plan, _, address) = served(1, Duration::from_secs(60)).await;
    // One connection: the channel's clones share it.
    let channel = alliance_tests::server::channel(&address).await;

    // Three calls that each wait 90% of their deadline on the server before it answers that
    // the version did not come. On one connection they go in turn: the first holds the only
    // place until 0.9 of its deadline, and those after it cannot be answered before theirs
    // (their callers give up). At once, the server would answer all three.
    let deadline = Duration::from_secs(2);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let mut client = PostureQueriesClient::new(channel.clone());
            let plan = plan.to_string();
            tokio::spawn(async move { client.get_posture(waiting(&plan, 2, deadline)).await })
        })
        .collect();
    let mut answered = 0;
    for call in calls {
        let refused = call.await.unwrap().unwrap_err();
        match refused.code() {
            // The server's answer: the version did not come within the wait.
            Code::Unavailable => answered += 1,
            // The caller's own deadline, waiting for a place.
            Code::Cancelled | Code::DeadlineExceeded => {}
            _ => panic!("{refused:?}"),
        }
    }
    assert_eq!(
        answered, 1,
        "{answered} calls were in progress at once on a connection limited to one"
    );

    // Another connection is not held up by that one's calls.
    let other = alliance_tests::server::channel(&address).await;
    let mut blocked = PostureQueriesClient::new(channel.clone());
    let plan_id = plan.to_string();
    let waiting_call =
        tokio::spawn(async move { blocked.get_posture(waiting(&plan_id, 2, deadline)).await });
    let posture = PostureQueriesClient::new(other)
        .get_posture(waiting(&plan.to_string(), 1, Duration::from_secs(30)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posture.version, 1);
    let refused = waiting_call.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_outlives_the_request_timeout_is_answered_deadline_exceeded() {
    let (_env, plan, _, address) = served(8, Duration::from_millis(400)).await;
    let mut client = PostureQueriesClient::connect(address).await.unwrap();

    // The caller would wait 30 s (and without a deadline 5 s): the server answers at its own
    // timeout, saying which.
    for deadline in [Some(Duration::from_secs(30)), None] {
        let mut request = waiting(&plan.to_string(), 2, Duration::from_secs(30));
        if deadline.is_none() {
            request.metadata_mut().remove("grpc-timeout");
        }
        let refused = tokio::time::timeout(Duration::from_secs(20), client.get_posture(request))
            .await
            .expect("the call hung past the server's request timeout")
            .unwrap_err();
        assert_eq!(refused.code(), Code::DeadlineExceeded, "{refused:?}");
        assert!(
            refused.message().contains("request timeout") && refused.message().contains("400ms"),
            "{refused:?}"
        );
    }

    // A call answered within it is untouched.
    let posture = client
        .get_posture(waiting(&plan.to_string(), 1, Duration::from_secs(30)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posture.version, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_outlives_the_request_timeout() {
    let timeout = Duration::from_millis(300);
    let (env, plan, model, address) = served(8, timeout).await;
    let mut client = PostureQueriesClient::connect(address).await.unwrap();
    let mut request = tonic::Request::new(v1::WatchPlanRequest {
        plan_id: plan.to_string(),
        from_version: 1,
        min_version: 0,
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer dev-auditors".parse().unwrap());
    let mut events = client.watch_plan(request).await.unwrap().into_inner();
    let first = events
        .message()
        .await
        .unwrap()
        .expect("the plan's creation");
    assert_eq!(first.plan_version, 1);

    // Well past the request timeout, the stream still carries the next event.
    tokio::time::sleep(timeout * 3).await;
    env.exec(US, plan, registration("after-the-timeout", 10))
        .await;
    model.catch_up(&env.log).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .expect("no event within 10 s")
        .expect("the stream was cut")
        .expect("the stream ended");
    assert_eq!(next.plan_version, 2);
}
