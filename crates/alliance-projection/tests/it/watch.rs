//! `WatchPosture` over gRPC on a loopback port: the posture on one date as it stands, then
//! again each time an edit changes it, and nothing for edits that leave it as it was.

use std::time::Duration;

use alliance_domain::{Command, Side};
use alliance_projection::Projection;
use alliance_proto::v1;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_tests::requests;
use tonic::Code;

use crate::harness::{Env, US, date, element, serve};

/// The dev token of the auditors' team (read-only).
const AUDITOR_TOKEN: &str = "dev-auditors";

fn request(
    token: &str,
    plan_id: &str,
    valid_on: Option<v1::Date>,
) -> tonic::Request<v1::WatchPostureRequest> {
    requests::authed(
        token,
        v1::WatchPostureRequest {
            plan_id: plan_id.to_owned(),
            valid_on,
            include_proposed: false,
            min_version: 0,
        },
    )
}

fn on_2025() -> Option<v1::Date> {
    Some(v1::Date {
        year: 2025,
        month: 1,
        day: 1,
    })
}

async fn register(
    env: &Env,
    plan: alliance_domain::PlanId,
    name: &str,
    personnel: u32,
    from: i32,
) -> u64 {
    env.exec(
        US,
        plan,
        Command::RegisterForceElement {
            element: element(name, Side::Us, personnel),
            present_from: date(from, 1, 1),
        },
    )
    .await
    .plan_version
}

async fn next(postures: &mut tonic::Streaming<v1::Posture>) -> v1::Posture {
    tokio::time::timeout(Duration::from_secs(10), postures.message())
        .await
        .expect("no posture within 10 s")
        .unwrap()
        .expect("the stream ended")
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_posture_sends_the_posture_then_each_change_of_it() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let projection = Projection::new();
    tokio::spawn(projection.clone().follow(env.log.clone()));
    let address = serve(&env, projection).await;
    let mut client = PostureQueriesClient::connect(address).await.unwrap();

    let mut postures = client
        .watch_posture(request(AUDITOR_TOKEN, &plan.to_string(), on_2025()))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut postures).await;
    assert_eq!(first.version, 1);
    assert_eq!(first.us_personnel, 0);

    let v2 = register(&env, plan, "brigade", 500, 2024).await;
    let second = next(&mut postures).await;
    assert_eq!((second.version, second.us_personnel), (v2, 500));

    // Present only from 2030: the posture on 1 January 2025 does not change, nothing is sent.
    register(&env, plan, "later", 900, 2030).await;
    let v4 = register(&env, plan, "battalion", 300, 2024).await;
    let third = next(&mut postures).await;
    assert_eq!((third.version, third.us_personnel), (v4, 800));
    assert_eq!(third.elements.len(), 2);
}

#[tokio::test]
async fn watch_posture_refuses_bad_requests() {
    let env = Env::open().await;
    let plan = env.create_plan().await;
    let address = env.serve_caught_up().await;
    let mut client = PostureQueriesClient::connect(address).await.unwrap();
    let code = |result: Result<_, tonic::Status>| result.err().map(|s| s.code());

    let plan_id = plan.to_string();
    let unauthenticated = client
        .watch_posture(request("no-such-token", &plan_id, on_2025()))
        .await;
    assert_eq!(code(unauthenticated), Some(Code::Unauthenticated));
    let no_date = client
        .watch_posture(request(AUDITOR_TOKEN, &plan_id, None))
        .await;
    assert_eq!(code(no_date), Some(Code::InvalidArgument));
    let bad_plan = client
        .watch_posture(request(AUDITOR_TOKEN, "not-a-plan", on_2025()))
        .await;
    assert_eq!(code(bad_plan), Some(Code::InvalidArgument));
    let unknown = client
        .watch_posture(request(
            AUDITOR_TOKEN,
            &uuid::Uuid::now_v7().to_string(),
            on_2025(),
        ))
        .await;
    assert_eq!(code(unknown), Some(Code::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_history_carries_actor_record_time_and_payload_of_every_event_as_recorded() {
    use alliance_proto::v1::audit_log_client::AuditLogClient;
    let env = Env::open().await;
    let (plan, _) = env.load_reference().await;
    let address = env.serve_caught_up().await;
    let mut client = AuditLogClient::connect(address).await.unwrap();

    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = requests::authed(
            AUDITOR_TOKEN,
            v1::ListEventsRequest {
                plan_id: plan.to_string(),
                page_size: 37,
                page_token: page_token.clone(),
                ..Default::default()
            },
        );
        let page = client.list_events(request).await.unwrap().into_inner();
        listed.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let stored = env.plan_events(plan).await;
    assert_eq!(listed.len(), stored.len());
    let mut types = std::collections::BTreeSet::new();
    let mut sides = std::collections::BTreeSet::new();
    for (shown, stored) in listed.iter().zip(&stored) {
        let recorded = alliance_record::decode_event(stored).unwrap().envelope;
        types.insert(recorded.event_type.clone());
        assert_eq!(shown.plan_version, recorded.plan_version);
        assert_eq!(shown.event_id, recorded.event_id);
        assert_eq!(shown.event_type, recorded.event_type);
        assert_eq!(
            shown.record_time, recorded.record_time,
            "v{}",
            shown.plan_version
        );
        assert_eq!(
            shown.valid_date, recorded.valid_date,
            "v{}",
            shown.plan_version
        );
        assert_eq!(shown.command_id, recorded.command_id);
        assert_eq!(shown.payload, recorded.payload, "v{}", shown.plan_version);
        assert_eq!(shown.actor, recorded.actor, "v{}", shown.plan_version);
        sides.insert(shown.actor.as_ref().unwrap().side);
    }
    // Both sides and the alliance-level teams (no side) are among the actors.
    assert_eq!(
        sides,
        [0, v1::Side::Us as i32, v1::Side::Rok as i32].into(),
        "{sides:?}"
    );
    // The reference plan exercises most kinds of events, rationale-bearing ones included.
    assert!(types.len() >= 10, "{types:?}");
    assert!(types.contains("DecisionProposed"), "{types:?}");
}
