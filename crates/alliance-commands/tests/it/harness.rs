//! The command service alone on the test kit's server (a real log, SQLite file or Kafka topic,
//! and a loopback port), and the requests the contract tests send again and again.

use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_tests::requests;
pub use alliance_tests::requests::{authed, date, meta, violated};
pub use alliance_tests::server::tokens::{APPROVER, AUDITOR, ROK, US};
pub use alliance_tests::server::{Backend, Server, Services, Store, TestLog};
use tonic::transport::Channel;

/// The command service alone on a fresh log of `backend`.
pub async fn start(backend: Backend) -> Server {
    start_on(Store::new(backend)).await
}

/// The command service alone over the log in `store` (so a test can restart on the same data).
pub async fn start_on(store: Store) -> Server {
    Server::start_on(store, Services::commands()).await
}

/// Creates a plan (horizon 2020–2035) and returns its id.
pub async fn create_plan(client: &mut PlanCommandsClient<Channel>) -> String {
    let result = client
        .create_plan(authed(
            APPROVER,
            requests::create_plan("Alliance modernization 2027–2031", date(2020, 1, 1)),
        ))
        .await
        .unwrap()
        .into_inner();
    result.plan_id
}

/// A U.S. brigade `id` of `personnel`, named after its id.
pub fn element(id: &str, personnel: u32) -> Option<v1::ForceElement> {
    requests::brigade(id, &format!("element {id}"), personnel)
}

pub async fn register(
    client: &mut PlanCommandsClient<Channel>,
    plan_id: &str,
    id: &str,
    based_on: Option<u64>,
) -> Result<v1::CommandResult, tonic::Status> {
    client
        .register_force_element(authed(
            US,
            requests::register(plan_id, element(id, 4500), based_on),
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn propose(
    client: &mut PlanCommandsClient<Channel>,
    token: &str,
    plan_id: &str,
    decision_id: &str,
) -> v1::CommandResult {
    client
        .propose_decision(authed(
            token,
            v1::ProposeDecisionRequest {
                meta: meta(plan_id, None),
                decision_id: decision_id.into(),
                title: format!("decision {decision_id}"),
                rationale: "the paper's phased retrenchment".into(),
                effective_date: date(2027, 6, 1),
                required_sides: vec![v1::Side::Us as i32, v1::Side::Rok as i32],
                supersedes: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
}
