//! What a subscriber or an auditor receives is what the log holds: `WatchPlan` and
//! `ListEvents` send each event's envelope exactly as it was written (actor, causation,
//! correlation, command digest, the hash chain and the signature), from live read models and
//! from read models restored from a snapshot.

use std::time::Duration;

use alliance_commands::CommandMeta;
use alliance_domain::{Command, Side};
use alliance_projection::Projection;
use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_tests::requests;
use alliance_tests::server::tokens::AUDITOR;
use prost::Message;

use crate::harness::{Env, US, date, element, serve};

fn authed<T>(message: T) -> tonic::Request<T> {
    requests::authed(AUDITOR, message)
}

/// Every envelope `WatchPlan` and `ListEvents` send for `plan` from the server at `address`.
async fn served(
    address: &str,
    plan: &str,
    count: usize,
) -> (Vec<v1::EventEnvelope>, Vec<v1::EventEnvelope>) {
    let mut queries = PostureQueriesClient::connect(address.to_owned())
        .await
        .unwrap();
    let mut stream = queries
        .watch_plan(authed(v1::WatchPlanRequest {
            plan_id: plan.to_owned(),
            from_version: 1,
            min_version: count as u64,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut watched = Vec::new();
    while watched.len() < count {
        let envelope = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("no event within 10 s")
            .unwrap()
            .expect("the stream ended");
        watched.push(envelope);
    }
    let mut audit = AuditLogClient::connect(address.to_owned()).await.unwrap();
    let listed = audit
        .list_events(authed(v1::ListEventsRequest {
            plan_id: plan.to_owned(),
            page_size: 1000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    (watched, listed)
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_and_auditors_receive_each_envelope_as_the_log_holds_it() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    for (n, name) in ["a", "b"].into_iter().enumerate() {
        let meta = CommandMeta {
            command_id: format!("register-{name}"),
            plan_id: Some(plan),
            correlation_id: "planning-round-7".into(),
            causation_id: format!("cause-{n}"),
            ..CommandMeta::default()
        };
        let command = Command::RegisterForceElement {
            element: element(name, Side::Us, 100),
            present_from: date(2024, 1, 1),
        };
        env.service
            .execute(&env.caller(US), meta, command)
            .await
            .unwrap();
    }
    let stored: Vec<v1::EventEnvelope> = env
        .plan_events(plan)
        .await
        .iter()
        .map(|record| v1::EventEnvelope::decode(record.payload.as_slice()).unwrap())
        .collect();
    assert_eq!(stored.len(), 3);
    // What would be lost if the read model kept less than the log.
    let last = stored.last().unwrap();
    assert_eq!(last.causation_id, "cause-1");
    assert_eq!(last.correlation_id, "planning-round-7");
    assert_eq!(last.prev_hash, stored[1].hash);
    assert!(!last.hash.is_empty() && !last.signature.is_empty() && !last.command_digest.is_empty());
    assert_eq!(last.actor.as_ref().unwrap().side, v1::Side::Us as i32);

    let projection = Projection::new();
    tokio::spawn(projection.clone().follow(env.log.clone()));
    let address = serve(&env, projection.clone()).await;
    let (watched, listed) = served(&address, &plan.to_string(), stored.len()).await;
    assert_eq!(watched, stored, "WatchPlan");
    assert_eq!(listed, stored, "ListEvents");

    // A read model restored from a snapshot holds the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-model.snapshot");
    projection.write_snapshot(&path).unwrap();
    let restored = std::sync::Arc::new(Projection::from_snapshot(&path).unwrap());
    assert_eq!(restored.digest(), projection.digest());
    let address = serve(&env, restored).await;
    let (watched, listed) = served(&address, &plan.to_string(), stored.len()).await;
    assert_eq!(watched, stored, "WatchPlan after a restore");
    assert_eq!(listed, stored, "ListEvents after a restore");
}
