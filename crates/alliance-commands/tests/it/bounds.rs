//! Numbers past their documented bounds are refused at the edge, naming the field, so no total
//! built from them can overflow.

use alliance_proto::v1;

use crate::harness::{
    APPROVER, Backend, ROK, Server, US, authed, create_plan, date, meta, propose, violated,
};

fn element(id: &str, personnel: u32, count: u32) -> Option<v1::ForceElement> {
    let mut element = crate::harness::element(id, personnel);
    if let Some(e) = element.as_mut() {
        e.equipment = vec![v1::EquipmentCount {
            kind: "M1A2".into(),
            count,
        }];
    }
    element
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_past_their_bounds_are_refused_naming_the_field() {
    let server = crate::harness::start(Backend::Sqlite).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;

    // What a client in another language sends for -1.
    let register = |element| v1::RegisterForceElementRequest {
        meta: meta(&plan_id, None),
        element,
        present_from: date(2024, 1, 1),
    };
    let status = client
        .register_force_element(authed(US, register(element("big", u32::MAX, u32::MAX))))
        .await
        .unwrap_err();
    assert_eq!(
        violated(&status),
        ["element.personnel", "element.equipment"],
        "{status:?}"
    );
    // At the bounds is fine.
    client
        .register_force_element(authed(US, register(element("largest", 1_000_000, 100_000))))
        .await
        .unwrap();

    propose(&mut client, US, &plan_id, "cut").await;
    let status = client
        .reduce_force_element(authed(
            US,
            v1::ReduceForceElementRequest {
                meta: meta(&plan_id, None),
                decision_id: "cut".into(),
                element_id: "largest".into(),
                personnel: 1_000_001,
                equipment: vec![v1::EquipmentCount {
                    kind: "M1A2".into(),
                    count: 100_001,
                }],
                on: date(2027, 1, 1),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["personnel", "equipment"], "{status:?}");

    propose(&mut client, ROK, &plan_id, "invest").await;
    let invest = |cost_musd, cost_kusd| v1::PlanCapabilityInvestmentRequest {
        meta: meta(&plan_id, None),
        decision_id: "invest".into(),
        investment_id: "kf21".into(),
        area: v1::CapabilityArea::AirSuperiority as i32,
        description: "KF-21 block II".into(),
        level_gain: 5,
        delivery: date(2029, 1, 1),
        cost_musd,
        cost_kusd,
    };
    for (request, field) in [
        (invest(u64::MAX, 0), "cost_musd"),
        (invest(0, alliance_domain::MAX_COST_KUSD + 1), "cost_kusd"),
    ] {
        let status = client
            .plan_capability_investment(authed(ROK, request))
            .await
            .unwrap_err();
        assert_eq!(violated(&status), [field], "{status:?}");
    }

    // Version 0 is before the plan's first event: nothing to branch from.
    let status = client
        .branch_plan(authed(
            APPROVER,
            v1::BranchPlanRequest {
                meta: meta(&plan_id, None),
                new_plan_id: String::new(),
                parent_version: Some(0),
                name: "branch".into(),
                description: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated(&status), ["parent_version"], "{status:?}");

    // The plan, the element at the bounds and the two proposals.
    assert_eq!(server.events().await.len(), 4, "nothing else appended");
    server.stop().await;
}

/// `RegisterForceElementRequest` with the element's name as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRegister {
    #[prost(message, optional, tag = "1")]
    meta: Option<v1::CommandMeta>,
    #[prost(message, optional, tag = "2")]
    element: Option<RawElement>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawElement {
    #[prost(string, tag = "1")]
    element_id: String,
    #[prost(bytes = "vec", tag = "2")]
    name: Vec<u8>,
}

/// `RegisterForceElementRequest` whose `element` (a message) arrives as a fixed32.
#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(fixed32, tag = "2")]
    element: u32,
}

async fn send<M: prost::Message + Default + Send + Sync + 'static>(
    server: &Server,
    message: M,
) -> tonic::Status {
    let channel = alliance_tests::server::channel(&server.url).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        authed(US, message),
        http::uri::PathAndQuery::from_static("/alliance.v1.PlanCommands/RegisterForceElement"),
        tonic_prost::ProstCodec::<M, v1::CommandResult>::default(),
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_decode_is_invalid_argument_naming_the_field() {
    let server = crate::harness::start(Backend::Sqlite).await;
    let mut client = server.client().await;
    let plan_id = create_plan(&mut client).await;

    let status = send(
        &server,
        RawRegister {
            meta: meta(&plan_id, None),
            element: Some(RawElement {
                element_id: "abct".into(),
                name: vec![0x61, 0xff, 0xfe],
            }),
        },
    )
    .await;
    assert_eq!(violated(&status), ["element.name"], "{status:?}");
    assert!(status.message().contains("UTF-8"), "{status:?}");

    let status = send(&server, WrongWireType { element: 7 }).await;
    assert_eq!(violated(&status), ["element"], "{status:?}");

    assert_eq!(server.events().await.len(), 1, "nothing appended");
    server.stop().await;
}
