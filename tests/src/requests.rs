//! `alliance.v1` requests and their parts, as tests send them.

use alliance_proto::v1;

/// A date on the plan's timeline.
pub fn date(year: i32, month: i32, day: i32) -> Option<v1::Date> {
    Some(v1::Date { year, month, day })
}

/// A command's meta: a fresh command id (UUID v7), `plan_id`, based on `based_on`.
pub fn meta(plan_id: &str, based_on: Option<u64>) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id: uuid::Uuid::now_v7().to_string(),
        plan_id: plan_id.to_owned(),
        based_on_version: based_on,
        correlation_id: String::new(),
        causation_id: String::new(),
    })
}

/// A U.S. Army ground combat brigade `id` named `name`, of `personnel`, with no equipment, at
/// Camp Humphreys.
pub fn brigade(id: &str, name: &str, personnel: u32) -> Option<v1::ForceElement> {
    Some(v1::ForceElement {
        element_id: id.to_owned(),
        name: name.to_owned(),
        side: v1::Side::Us as i32,
        component: v1::Component::Army as i32,
        kind: v1::ElementKind::GroundCombatBrigade as i32,
        personnel,
        equipment: Vec::new(),
        base: "Camp Humphreys".into(),
    })
}

/// Creates a plan named `name` (the server mints its id) from `horizon_start` to 2035-12-31.
pub fn create_plan(name: &str, horizon_start: Option<v1::Date>) -> v1::CreatePlanRequest {
    v1::CreatePlanRequest {
        meta: meta("", None),
        name: name.to_owned(),
        description: String::new(),
        horizon_start,
        horizon_end: date(2035, 12, 31),
    }
}

/// Registers `element` on `plan_id` as a baseline element present from 2024-01-01, based on
/// `based_on`.
pub fn register(
    plan_id: &str,
    element: Option<v1::ForceElement>,
    based_on: Option<u64>,
) -> v1::RegisterForceElementRequest {
    v1::RegisterForceElementRequest {
        meta: meta(plan_id, based_on),
        element,
        present_from: date(2024, 1, 1),
    }
}

/// `message` as the holder of `token` sends it (a bearer token).
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The fields an `INVALID_ARGUMENT` names in its `BadRequest`, in order.
#[track_caller]
pub fn violated(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    fields(status)
}

/// The fields a refusal names in its `BadRequest`, in order (it must have one).
#[track_caller]
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

/// A simulation run's record as a recorder sends it: one trial of one month from 2027-01-01 of
/// the plan at version 1, under the model data `model_version`.
pub fn run_record(model_version: &str) -> v1::SimulationRunRecord {
    v1::SimulationRunRecord {
        run_id: uuid::Uuid::now_v7().to_string(),
        plan_version: 1,
        inputs_digest: "a".repeat(64),
        results_digest: "b".repeat(64),
        seed: 1,
        trials: 1,
        start: date(2027, 1, 1),
        months: 1,
        model_version: model_version.into(),
        ..Default::default()
    }
}
