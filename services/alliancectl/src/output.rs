//! Rendering replies and errors as short text for people or one JSON object for scripts.

use alliance_domain::Date;
use alliance_proto::convert::{
    agreement_from_proto, area_from_proto, clause_status_from_proto, component_from_proto,
    condition_status_from_proto, date_from_proto, decision_status_from_proto, event_from_payload,
    kind_from_proto, side_from_proto,
};
use alliance_proto::v1;
use serde::Serialize;
use serde_json::{Value, json};

use crate::errors::{CliError, Detail, grpc_name};
use crate::parse::enum_name;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[value(alias = "table")]
    Text,
    Json,
}

/// What a subcommand got back.
pub enum Reply {
    Command {
        result: v1::CommandResult,
        command_id: String,
    },
    Plans(v1::ListPlansResponse),
    Plan(v1::PlanSummary),
    Posture(v1::Posture),
    Series(v1::PostureSeries),
    Diff(v1::PlanDiff),
    Decisions(v1::ListDecisionsResponse),
    /// Already printed as it arrived (`watch`).
    Streamed,
    Rebuilt(v1::RebuildReply),
    Verified(v1::VerifyPlanReply),
}

pub fn render(reply: &Reply, format: Format) -> String {
    match (format, reply) {
        (Format::Json, Reply::Command { result, command_id }) => {
            let mut json = command_json(result);
            json["command_id"] = command_id.as_str().into();
            json.to_string()
        }
        (Format::Json, Reply::Plans(r)) => {
            json!({ "plans": r.plans.iter().map(head_json).collect::<Vec<_>>() }).to_string()
        }
        (Format::Json, Reply::Plan(p)) => plan_json(p).to_string(),
        (Format::Json, Reply::Posture(p)) => posture_json(p).to_string(),
        (Format::Json, Reply::Series(r)) => {
            json!({ "points": r.points.iter().map(posture_json).collect::<Vec<_>>() }).to_string()
        }
        (Format::Json, Reply::Diff(d)) => diff_json(d).to_string(),
        (Format::Json, Reply::Decisions(r)) => json!({
            "decisions": r.decisions.iter().map(decision_view_json).collect::<Vec<_>>()
        })
        .to_string(),
        (Format::Text, Reply::Command { result, .. }) => command_text(result),
        (Format::Text, Reply::Plans(r)) => plans_text(r),
        (Format::Text, Reply::Plan(p)) => plan_text(p),
        (Format::Text, Reply::Posture(p)) => posture_text(p),
        (Format::Text, Reply::Series(r)) => series_text(r),
        (Format::Text, Reply::Diff(d)) => diff_text(d),
        (Format::Text, Reply::Decisions(r)) => decisions_text(r),
        (Format::Json, Reply::Rebuilt(r)) => json!({
            "events": r.events,
            "plans": r.plans,
            "position": r.position,
            "digest": r.digest,
            "elapsed_ms": r.elapsed_ms,
        })
        .to_string(),
        (Format::Text, Reply::Rebuilt(r)) => format!(
            "ok rebuilt read models: {} events of {} plans up to position {} in {} ms; digest {}",
            r.events, r.plans, r.position, r.elapsed_ms, r.digest
        ),
        (Format::Json, Reply::Verified(r)) => verified_json(r).to_string(),
        (Format::Text, Reply::Verified(r)) => verified_text(r),
        (_, Reply::Streamed) => String::new(),
    }
}

fn verified_json(r: &v1::VerifyPlanReply) -> Value {
    json!({
        "plan_id": r.plan_id,
        "ok": r.ok,
        "events": r.events,
        "head_hash": r.head_hash,
        "unsigned_through": r.unsigned_through,
        "unsigned_covered_by": r.unsigned_covered_by,
        "vouched": r.vouched.iter().map(vouched_json).collect::<Vec<_>>(),
        "first_break": r.first_break.as_ref().map(|b| json!({
            "kind": b.kind,
            "version": b.version,
            "position": b.position,
            "partition": b.partition,
            "offset": b.offset,
            "detail": b.detail,
        })),
    })
}

/// A vouched head as JSON (`audit verify --output json`).
pub fn vouched_json(v: &v1::VouchedHead) -> Value {
    json!({
        "recorded_at": v.recorded_at,
        "version": v.version,
        "head_hash": v.head_hash,
        "by": v.by,
        "key_id": v.key_id,
        "side": v.side,
        "actor": v.actor,
        "verified": v.verified,
    })
}

/// The heads vouched for, as a clause of a verification's line (empty without any): which side
/// witnessed which version, and where the writer signed a head.
pub fn vouched_text(vouched: &[v1::VouchedHead]) -> String {
    let each: Vec<String> = vouched
        .iter()
        .map(|v| {
            let who = match (v.by.as_str(), v.side.as_str()) {
                ("writer", _) => format!("signed by the writer (key {})", v.key_id),
                (_, "us") => format!("witnessed by the U.S. (key {})", v.key_id),
                (_, "rok") => format!("witnessed by the ROK (key {})", v.key_id),
                _ => format!("witnessed by key {} (not checked)", v.key_id),
            };
            format!(
                "version {} {who}, recorded at version {} by {}",
                v.version, v.recorded_at, v.actor
            )
        })
        .collect();
    if each.is_empty() {
        String::new()
    } else {
        format!("; heads vouched for: {}", each.join("; "))
    }
}

fn verified_text(r: &v1::VerifyPlanReply) -> String {
    match &r.first_break {
        None => format!(
            "ok plan {}: hash chain of {} events holds, {}{}; head {}",
            r.plan_id,
            r.events,
            signed_text(r.unsigned_through, r.unsigned_covered_by, r.events),
            vouched_text(&r.vouched),
            r.head_hash
        ),
        Some(b) => {
            let kafka = match (b.partition, b.offset) {
                (Some(partition), Some(offset)) => {
                    format!(", partition {partition} offset {offset}")
                }
                _ => String::new(),
            };
            format!(
                "BROKEN plan {}: {} record at version {} (log position {}{kafka}): {}; the {} events before it verify, head {}",
                r.plan_id, b.kind, b.version, b.position, b.detail, r.events, r.head_hash
            )
        }
    }
}

/// How much of a verified chain is signed, and which signed record covers the unsigned ones
/// before it (`covered_by`, 0: none).
pub fn signed_text(unsigned_through: u64, covered_by: u64, events: u64) -> String {
    match unsigned_through {
        0 => "each record signed by a trusted key".into(),
        n if n >= events => format!(
            "no record signed (sealed before writers signed; `alliancectl audit sign` signs \
             versions 1..{n} from now on)"
        ),
        n if covered_by > 0 => format!(
            "unsigned up to version {n}, covered by the signature of version {covered_by}, each \
             record after signed by a trusted key"
        ),
        n => format!("unsigned up to version {n}, each record after signed by a trusted key"),
    }
}

pub fn render_error(err: &CliError, format: Format) -> String {
    match format {
        Format::Text => format!("error: {}", err.message),
        Format::Json => json!({
            "error": {
                "code": err.exit.kind(),
                "exit_code": err.exit.code(),
                "grpc_status": err.status.map(grpc_name),
                "message": err.message,
                "details": err.details.iter().map(detail_json).collect::<Vec<_>>(),
                "command_id": err.command_id,
            }
        })
        .to_string(),
    }
}

fn detail_json(detail: &Detail) -> Value {
    match detail {
        Detail::Field { field, description } => {
            json!({ "type": "field_violation", "field": field, "description": description })
        }
        Detail::Precondition {
            kind,
            subject,
            description,
        } => json!({
            "type": "precondition_violation",
            "kind": kind,
            "subject": subject,
            "description": description,
        }),
        Detail::Info {
            reason,
            domain,
            metadata,
        } => {
            json!({ "type": "error_info", "reason": reason, "domain": domain, "metadata": metadata })
        }
        Detail::Resource {
            kind,
            name,
            description,
        } => json!({
            "type": "resource_info",
            "kind": kind,
            "name": name,
            "description": description,
        }),
    }
}

// ---- values --------------------------------------------------------------------------------

pub(crate) fn date(d: Option<&v1::Date>) -> Option<Date> {
    d.and_then(date_from_proto)
}

pub(crate) fn date_text(d: Option<&v1::Date>) -> String {
    date(d).map_or_else(|| "-".to_owned(), |d| d.to_string())
}

pub(crate) fn date_json(d: Option<&v1::Date>) -> Value {
    date(d).map_or(Value::Null, |d| Value::String(d.to_string()))
}

/// The snake_case name of a proto enum value; `None` when unspecified or unknown.
fn name<T: Serialize>(value: i32, from_proto: fn(i32) -> Option<T>) -> Option<String> {
    from_proto(value).map(enum_name)
}

fn name_text<T: Serialize>(value: i32, from_proto: fn(i32) -> Option<T>) -> String {
    name(value, from_proto).unwrap_or_else(|| "-".to_owned())
}

fn sides(values: &[i32]) -> Vec<String> {
    values
        .iter()
        .map(|s| name_text(*s, side_from_proto))
        .collect()
}

/// Every side whose endorsement adoption needs: those named by the proposer, then those derived
/// from the steps.
fn needed_sides(required: &[i32], derived: &[i32]) -> String {
    let mut all = required.to_vec();
    all.extend(derived.iter().filter(|s| !required.contains(s)));
    or_dash(&sides(&all).join(","))
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn equipment_text(equipment: &[v1::EquipmentCount]) -> String {
    let items: Vec<String> = equipment
        .iter()
        .map(|e| format!("{}={}", e.kind, e.count))
        .collect();
    or_dash(&items.join(","))
}

fn element_json(el: &v1::ForceElement) -> Value {
    json!({
        "element_id": el.element_id,
        "name": el.name,
        "side": name(el.side, side_from_proto),
        "component": name(el.component, component_from_proto),
        "kind": name(el.kind, kind_from_proto),
        "personnel": el.personnel,
        "equipment": el
            .equipment
            .iter()
            .map(|q| (q.kind.clone(), Value::from(q.count)))
            .collect::<serde_json::Map<_, _>>(),
        "base": el.base,
    })
}

/// An RFC 3339 instant (UTC), e.g. `2025-01-01T09:30:00.123456Z`.
pub(crate) fn instant(t: Option<&prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    let nanos = u32::try_from(t.nanos).ok()?;
    chrono::DateTime::from_timestamp(t.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn instant_text(t: Option<&prost_types::Timestamp>) -> String {
    instant(t).unwrap_or_else(|| "-".to_owned())
}

/// A side holding a command role; an em dash when the plan says nothing yet.
fn holder_text(side: i32) -> String {
    name(side, side_from_proto).unwrap_or_else(|| "\u{2014}".to_owned())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

// ---- command results -----------------------------------------------------------------------

fn command_json(r: &v1::CommandResult) -> Value {
    json!({
        "plan_id": r.plan_id,
        "first_version": r.first_version,
        "plan_version": r.plan_version,
        "event_ids": r.event_ids,
        "replayed": r.replayed,
    })
}

fn command_text(r: &v1::CommandResult) -> String {
    let n = r.event_ids.len();
    let events = if n == 1 { "event" } else { "events" };
    if r.replayed {
        format!(
            "ok plan {} at version {} (replayed: this command id was already applied as versions {}..{}; nothing appended)",
            r.plan_id, r.plan_version, r.first_version, r.plan_version
        )
    } else {
        format!(
            "ok plan {} now at version {} (appended {n} {events})",
            r.plan_id, r.plan_version
        )
    }
}

// ---- plans ---------------------------------------------------------------------------------

fn head_json(h: &v1::PlanHead) -> Value {
    let parent = (!h.parent_plan_id.is_empty())
        .then(|| json!({ "plan_id": h.parent_plan_id, "version": h.parent_version }));
    json!({ "plan_id": h.plan_id, "name": h.name, "version": h.version, "parent": parent })
}

fn parent_text(h: &v1::PlanHead) -> String {
    if h.parent_plan_id.is_empty() {
        "-".to_owned()
    } else {
        format!("{}@v{}", h.parent_plan_id, h.parent_version)
    }
}

fn plans_text(r: &v1::ListPlansResponse) -> String {
    if r.plans.is_empty() {
        return "no plans".to_owned();
    }
    let rows = r
        .plans
        .iter()
        .map(|h| {
            vec![
                h.plan_id.clone(),
                h.version.to_string(),
                parent_text(h),
                h.name.clone(),
            ]
        })
        .collect();
    table(&["PLAN", "VERSION", "BRANCHED FROM", "NAME"], rows)
}

fn plan_json(p: &v1::PlanSummary) -> Value {
    let decisions: Vec<Value> = p
        .decisions
        .iter()
        .map(|d| {
            json!({
                "decision_id": d.decision_id,
                "title": d.title,
                "status": name(d.status, decision_status_from_proto),
                "owner_team": d.owner_team,
                "effective_date": date_json(d.effective_date.as_ref()),
                "required_sides": sides(&d.required_sides),
                "derived_sides": sides(&d.derived_sides),
                "endorsements": sides(&d.endorsements),
                "step_count": d.step_count,
                "superseded_by": (!d.superseded_by.is_empty()).then_some(&d.superseded_by),
            })
        })
        .collect();
    let elements: Vec<Value> = p
        .elements
        .iter()
        .map(|e| {
            let mut json = element_json(&e.element.clone().unwrap_or_default());
            json["present_from"] = date_json(e.present_from.as_ref());
            json["withdrawn_on"] = date_json(e.withdrawn_on.as_ref());
            json["added_by"] = json!((!e.added_by.is_empty()).then_some(&e.added_by));
            json
        })
        .collect();
    let conditions: Vec<Value> = p
        .conditions
        .iter()
        .map(|c| {
            json!({
                "condition_id": c.condition_id,
                "title": c.title,
                "latest_status": name(c.latest_status, condition_status_from_proto),
                "latest_assessed_on": date_json(c.latest_assessed_on.as_ref()),
            })
        })
        .collect();
    let clauses: Vec<Value> = p
        .clauses
        .iter()
        .map(|c| {
            json!({
                "clause_id": c.clause_id,
                "agreement": name(c.agreement, agreement_from_proto),
                "title": c.title,
                "status": name(c.status, clause_status_from_proto),
                "since": date_json(c.since.as_ref()),
            })
        })
        .collect();
    let mut plan = p.head.as_ref().map_or_else(|| json!({}), head_json);
    if let Value::Object(fields) = &mut plan {
        fields.insert("description".into(), p.description.clone().into());
        fields.insert("horizon_start".into(), date_json(p.horizon_start.as_ref()));
        fields.insert("horizon_end".into(), date_json(p.horizon_end.as_ref()));
        fields.insert("decisions".into(), decisions.into());
        fields.insert("elements".into(), elements.into());
        fields.insert("conditions".into(), conditions.into());
        fields.insert("clauses".into(), clauses.into());
        let grants: Vec<Value> = p
            .grants
            .iter()
            .map(|g| json!({"team": g.team, "role": g.role}))
            .collect();
        fields.insert("roles".into(), grants.into());
    }
    plan
}

fn plan_text(p: &v1::PlanSummary) -> String {
    let head = p.head.clone().unwrap_or_default();
    let mut out = vec![
        format!("plan {}  {}", head.plan_id, head.name),
        format!("version {}", head.version),
    ];
    if !head.parent_plan_id.is_empty() {
        out.push(format!("branched from {}", parent_text(&head)));
    }
    out.push(format!(
        "horizon {} .. {}",
        date_text(p.horizon_start.as_ref()),
        date_text(p.horizon_end.as_ref())
    ));
    if !p.description.is_empty() {
        out.push(format!("description {}", p.description));
    }

    let decisions = p
        .decisions
        .iter()
        .map(|d| {
            let mut status = name_text(d.status, decision_status_from_proto);
            if !d.superseded_by.is_empty() {
                status = format!("{status} by {}", d.superseded_by);
            }
            vec![
                d.decision_id.clone(),
                status,
                date_text(d.effective_date.as_ref()),
                needed_sides(&d.required_sides, &d.derived_sides),
                or_dash(&sides(&d.endorsements).join(",")),
                d.step_count.to_string(),
                or_dash(&d.owner_team),
                d.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "decisions",
        &[
            "ID",
            "STATUS",
            "EFFECTIVE",
            "REQUIRED",
            "ENDORSED",
            "STEPS",
            "OWNER",
            "TITLE",
        ],
        decisions,
    );

    let elements = p
        .elements
        .iter()
        .map(|e| {
            let el = e.element.clone().unwrap_or_default();
            vec![
                el.element_id,
                name_text(el.side, side_from_proto),
                name_text(el.component, component_from_proto),
                name_text(el.kind, kind_from_proto),
                el.personnel.to_string(),
                equipment_text(&el.equipment),
                or_dash(&el.base),
                date_text(e.present_from.as_ref()),
                date_text(e.withdrawn_on.as_ref()),
                or_dash(&e.added_by),
                el.name,
            ]
        })
        .collect();
    section(
        &mut out,
        "elements",
        &[
            "ID",
            "SIDE",
            "COMPONENT",
            "KIND",
            "PERSONNEL",
            "EQUIPMENT",
            "BASE",
            "FROM",
            "WITHDRAWN",
            "ADDED BY",
            "NAME",
        ],
        elements,
    );

    let conditions = p
        .conditions
        .iter()
        .map(|c| {
            vec![
                c.condition_id.clone(),
                name_text(c.latest_status, condition_status_from_proto),
                date_text(c.latest_assessed_on.as_ref()),
                c.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "conditions",
        &["ID", "STATUS", "ASSESSED", "TITLE"],
        conditions,
    );

    let clauses = p
        .clauses
        .iter()
        .map(|c| {
            vec![
                c.clause_id.clone(),
                name_text(c.agreement, agreement_from_proto),
                name_text(c.status, clause_status_from_proto),
                date_text(c.since.as_ref()),
                c.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "clauses",
        &["ID", "AGREEMENT", "STATUS", "SINCE", "TITLE"],
        clauses,
    );
    let grants = p
        .grants
        .iter()
        .map(|g| vec![g.team.clone(), g.role.clone()])
        .collect();
    section(&mut out, "roles", &["TEAM", "ROLE"], grants);
    out.join("\n")
}

// ---- posture -------------------------------------------------------------------------------

fn posture_json(p: &v1::Posture) -> Value {
    let command = p.command.unwrap_or_default();
    json!({
        "plan_id": p.plan_id,
        "valid_on": date_json(p.valid_on.as_ref()),
        "version": p.version,
        "what_if": p.what_if,
        "us_personnel": p.us_personnel,
        "command": {
            "peacetime_opcon": name(command.peacetime_opcon, side_from_proto),
            "wartime_opcon": name(command.wartime_opcon, side_from_proto),
            "cfc_commander": name(command.cfc_commander, side_from_proto),
        },
        "personnel": p.personnel.iter().map(|c| json!({
            "side": name(c.side, side_from_proto),
            "component": name(c.component, component_from_proto),
            "kind": name(c.kind, kind_from_proto),
            "personnel": c.personnel,
        })).collect::<Vec<_>>(),
        "equipment": p.equipment.iter().map(|e| json!({
            "side": name(e.side, side_from_proto),
            "kind": e.kind,
            "count": e.count,
        })).collect::<Vec<_>>(),
        "capability": p.capability.iter().map(|c| json!({
            "side": name(c.side, side_from_proto),
            "area": name(c.area, area_from_proto),
            "level": c.level,
        })).collect::<Vec<_>>(),
        "clauses": p.clauses.iter().map(|c| json!({
            "clause_id": c.clause_id,
            "agreement": name(c.agreement, agreement_from_proto),
            "title": c.title,
            "status": name(c.status, clause_status_from_proto),
            "since": date_json(c.since.as_ref()),
        })).collect::<Vec<_>>(),
        "conditions": p.conditions.iter().map(|c| json!({
            "condition_id": c.condition_id,
            "title": c.title,
            "assessed_on": date_json(c.assessed_on.as_ref()),
            "status": name(c.status, condition_status_from_proto),
            "value": c.value,
        })).collect::<Vec<_>>(),
        "elements": p.elements.iter().map(element_json).collect::<Vec<_>>(),
        "decision_ids": p.decision_ids,
    })
}

fn posture_text(p: &v1::Posture) -> String {
    let command = p.command.unwrap_or_default();
    let mut out = vec![
        format!(
            "plan {}  valid on {}  version {}  what-if {}",
            p.plan_id,
            date_text(p.valid_on.as_ref()),
            p.version,
            yes_no(p.what_if)
        ),
        format!(
            "command: peacetime OPCON {}  wartime OPCON {}  CFC commander {}",
            holder_text(command.peacetime_opcon),
            holder_text(command.wartime_opcon),
            holder_text(command.cfc_commander)
        ),
        format!("U.S. personnel {}", p.us_personnel),
    ];

    let personnel = p
        .personnel
        .iter()
        .map(|c| {
            vec![
                name_text(c.side, side_from_proto),
                name_text(c.component, component_from_proto),
                name_text(c.kind, kind_from_proto),
                c.personnel.to_string(),
            ]
        })
        .collect();
    section(
        &mut out,
        "personnel",
        &["SIDE", "COMPONENT", "KIND", "PERSONNEL"],
        personnel,
    );

    let equipment = p
        .equipment
        .iter()
        .map(|e| {
            vec![
                name_text(e.side, side_from_proto),
                e.kind.clone(),
                e.count.to_string(),
            ]
        })
        .collect();
    section(&mut out, "equipment", &["SIDE", "KIND", "COUNT"], equipment);

    let capability = p
        .capability
        .iter()
        .map(|c| {
            vec![
                name_text(c.side, side_from_proto),
                name_text(c.area, area_from_proto),
                c.level.to_string(),
            ]
        })
        .collect();
    section(
        &mut out,
        "capability",
        &["SIDE", "AREA", "LEVEL"],
        capability,
    );

    let clauses = p
        .clauses
        .iter()
        .map(|c| {
            vec![
                c.clause_id.clone(),
                name_text(c.agreement, agreement_from_proto),
                name_text(c.status, clause_status_from_proto),
                date_text(c.since.as_ref()),
                c.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "clauses",
        &["ID", "AGREEMENT", "STATUS", "SINCE", "TITLE"],
        clauses,
    );

    let conditions = p
        .conditions
        .iter()
        .map(|c| {
            vec![
                c.condition_id.clone(),
                name_text(c.status, condition_status_from_proto),
                date_text(c.assessed_on.as_ref()),
                c.value.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                c.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "conditions",
        &["ID", "STATUS", "ASSESSED", "VALUE", "TITLE"],
        conditions,
    );

    let elements = p
        .elements
        .iter()
        .map(|e| {
            vec![
                e.element_id.clone(),
                name_text(e.side, side_from_proto),
                name_text(e.kind, kind_from_proto),
                e.personnel.to_string(),
                or_dash(&e.base),
                e.name.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "elements",
        &["ID", "SIDE", "KIND", "PERSONNEL", "BASE", "NAME"],
        elements,
    );

    out.push(String::new());
    if p.decision_ids.is_empty() {
        out.push("decisions: none".to_owned());
    } else {
        out.push(format!(
            "decisions ({}): {}",
            p.decision_ids.len(),
            p.decision_ids.join(", ")
        ));
    }
    out.join("\n")
}

fn series_text(r: &v1::PostureSeries) -> String {
    let Some(first) = r.points.first() else {
        return "no points".to_owned();
    };
    // The ROK capability areas any point has a level for, in the contract's order.
    let rok = v1::Side::Rok as i32;
    let mut areas: Vec<i32> = r
        .points
        .iter()
        .flat_map(|p| p.capability.iter())
        .filter(|c| c.side == rok)
        .map(|c| c.area)
        .collect();
    areas.sort_unstable();
    areas.dedup();
    let area_headers: Vec<String> = areas
        .iter()
        .map(|a| format!("ROK {}", name_text(*a, area_from_proto).to_uppercase()))
        .collect();
    let mut headers = vec!["DATE", "US PERSONNEL"];
    headers.extend(area_headers.iter().map(String::as_str));
    let rows = r
        .points
        .iter()
        .map(|p| {
            let mut row = vec![date_text(p.valid_on.as_ref()), p.us_personnel.to_string()];
            row.extend(areas.iter().map(|area| {
                p.capability
                    .iter()
                    .find(|c| c.side == rok && c.area == *area)
                    .map_or_else(|| "-".to_owned(), |c| c.level.to_string())
            }));
            row
        })
        .collect();
    format!(
        "plan {}  version {}  what-if {}  {} points\n\n{}",
        first.plan_id,
        first.version,
        yes_no(first.what_if),
        r.points.len(),
        table(&headers, rows)
    )
}

// ---- diffs, decisions, events --------------------------------------------------------------

fn change_kind(kind: i32) -> Option<&'static str> {
    match v1::ElementChangeKind::try_from(kind).ok()? {
        v1::ElementChangeKind::Added => Some("added"),
        v1::ElementChangeKind::Removed => Some("removed"),
        v1::ElementChangeKind::Changed => Some("changed"),
        v1::ElementChangeKind::Unspecified => None,
    }
}

fn refs_json(events: &[v1::EventRef]) -> Vec<Value> {
    events
        .iter()
        .map(|e| json!({ "version": e.version, "event_type": e.event_type }))
        .collect()
}

fn refs_text(events: &[v1::EventRef]) -> String {
    let versions: Vec<String> = events.iter().map(|e| format!("v{}", e.version)).collect();
    or_dash(&versions.join(","))
}

fn recorded_json(e: &v1::RecordedEvent) -> Value {
    json!({
        "version": e.version,
        "event_type": e.event_type,
        "actor": e.actor,
        "record_time": instant(e.record_time.as_ref()),
    })
}

fn diff_json(d: &v1::PlanDiff) -> Value {
    json!({
        "plan_id": d.plan_id,
        "from_version": d.from_version,
        "to_version": d.to_version,
        "decisions": d.decisions.iter().map(|c| json!({
            "decision_id": c.decision_id,
            "title": c.title,
            "before": name(c.before, decision_status_from_proto),
            "after": name(c.after, decision_status_from_proto),
            "events": refs_json(&c.events),
        })).collect::<Vec<_>>(),
        "elements": d.elements.iter().map(|c| json!({
            "element_id": c.element_id,
            "kind": change_kind(c.kind),
            "events": refs_json(&c.events),
        })).collect::<Vec<_>>(),
        "events": d.events.iter().map(recorded_json).collect::<Vec<_>>(),
    })
}

fn diff_text(d: &v1::PlanDiff) -> String {
    let mut out = vec![format!(
        "plan {}  from version {} to version {}",
        d.plan_id, d.from_version, d.to_version
    )];
    let decisions = d
        .decisions
        .iter()
        .map(|c| {
            vec![
                c.decision_id.clone(),
                format!(
                    "{}\u{2192}{}",
                    name_text(c.before, decision_status_from_proto),
                    name_text(c.after, decision_status_from_proto)
                ),
                refs_text(&c.events),
                c.title.clone(),
            ]
        })
        .collect();
    section(
        &mut out,
        "decisions changed",
        &["ID", "STATUS", "EVENTS", "TITLE"],
        decisions,
    );
    let elements = d
        .elements
        .iter()
        .map(|c| {
            vec![
                c.element_id.clone(),
                change_kind(c.kind).unwrap_or("-").to_owned(),
                refs_text(&c.events),
            ]
        })
        .collect();
    section(
        &mut out,
        "elements changed",
        &["ID", "CHANGE", "EVENTS"],
        elements,
    );
    let events = d
        .events
        .iter()
        .map(|e| {
            vec![
                format!("v{}", e.version),
                e.event_type.clone(),
                or_dash(&e.actor),
                instant_text(e.record_time.as_ref()),
            ]
        })
        .collect();
    section(
        &mut out,
        "events",
        &["VERSION", "EVENT", "BY", "RECORDED"],
        events,
    );
    out.join("\n")
}

fn decision_view_json(d: &v1::DecisionView) -> Value {
    json!({
        "decision_id": d.decision_id,
        "title": d.title,
        "rationale": d.rationale,
        "owner_team": d.owner_team,
        "effective_date": date_json(d.effective_date.as_ref()),
        "required_sides": sides(&d.required_sides),
        "derived_sides": sides(&d.derived_sides),
        "status": name(d.status, decision_status_from_proto),
        "endorsements": sides(&d.endorsements),
        "status_reason": (!d.status_reason.is_empty()).then_some(&d.status_reason),
        "step_count": d.step_count,
        "history": d.history.iter().map(recorded_json).collect::<Vec<_>>(),
    })
}

fn decisions_text(r: &v1::ListDecisionsResponse) -> String {
    if r.decisions.is_empty() {
        return "no decisions".to_owned();
    }
    let rows = r
        .decisions
        .iter()
        .map(|d| {
            vec![
                d.decision_id.clone(),
                name_text(d.status, decision_status_from_proto),
                or_dash(&d.owner_team),
                date_text(d.effective_date.as_ref()),
                needed_sides(&d.required_sides, &d.derived_sides),
                or_dash(&sides(&d.endorsements).join(",")),
                d.history.len().to_string(),
                d.title.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "OWNER",
            "EFFECTIVE",
            "REQUIRED",
            "ENDORSED",
            "HISTORY",
            "TITLE",
        ],
        rows,
    )
}

/// One event of `watch`: a text line or one JSON object.
/// Refused requests of the security log: one row, its count and the peer if known.
pub fn denial_line(d: &v1::Denial, format: Format) -> String {
    match format {
        Format::Text => {
            let peer = if d.peer.is_empty() {
                String::new()
            } else {
                format!(" from {}", d.peer)
            };
            let count = if d.count > 1 {
                format!(
                    " ({} times until {})",
                    d.count,
                    instant_text(d.last_time.as_ref())
                )
            } else {
                String::new()
            };
            format!(
                "{} {} {}{peer} {}: {}{count}",
                instant_text(d.time.as_ref()),
                d.code,
                d.caller,
                d.method,
                d.reason
            )
        }
        Format::Json => json!({
            "time": instant(d.time.as_ref()),
            "last_time": instant(d.last_time.as_ref()),
            "count": d.count,
            "caller": d.caller,
            "peer": d.peer,
            "method": d.method,
            "code": d.code,
            "reason": d.reason,
        })
        .to_string(),
    }
}

pub fn event_line(e: &v1::EventEnvelope, format: Format) -> String {
    let actor = e.actor.clone().unwrap_or_default();
    match format {
        Format::Text => {
            let who = if actor.user.is_empty() {
                or_dash(&actor.team)
            } else {
                format!("{}/{}", actor.team, actor.user)
            };
            format!(
                "v{} {} by {} at {}",
                e.plan_version,
                e.event_type,
                who,
                instant_text(e.record_time.as_ref())
            )
        }
        Format::Json => {
            let payload = e
                .payload
                .as_ref()
                .and_then(|p| event_from_payload(p).ok())
                .and_then(|event| serde_json::to_value(event).ok());
            let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            json!({
                "event_id": e.event_id,
                "plan_id": e.plan_id,
                "version": e.plan_version,
                "event_type": e.event_type,
                "record_time": instant(e.record_time.as_ref()),
                "valid_date": date_json(e.valid_date.as_ref()),
                "actor": {
                    "team": actor.team,
                    "user": text(&actor.user),
                    "side": name(actor.side, side_from_proto),
                },
                "command_id": e.command_id,
                "correlation_id": text(&e.correlation_id),
                "causation_id": text(&e.causation_id),
                "schema_version": e.schema_version,
                "payload": payload,
            })
            .to_string()
        }
    }
}

/// A blank line, then `title` with the number of rows and the table of them (or "none").
pub(crate) fn section(
    out: &mut Vec<String>,
    title: &str,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) {
    out.push(String::new());
    if rows.is_empty() {
        out.push(format!("{title}: none"));
    } else {
        out.push(format!("{title} ({}):", rows.len()));
        out.push(table(headers, rows));
    }
}

/// Plain columns separated by two spaces, each as wide as its widest cell.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let all: Vec<Vec<String>> = std::iter::once(headers).chain(rows).collect();
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            all.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    all.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Exit;

    fn result(replayed: bool) -> Reply {
        let result = v1::CommandResult {
            plan_id: "019a0000-0000-7000-8000-000000000001".into(),
            first_version: 42,
            plan_version: 42,
            event_ids: vec!["e1".into()],
            replayed,
        };
        Reply::Command {
            result,
            command_id: "c1".into(),
        }
    }

    #[test]
    fn command_result_text_and_json() {
        let text = render(&result(false), Format::Text);
        assert_eq!(
            text,
            "ok plan 019a0000-0000-7000-8000-000000000001 now at version 42 (appended 1 event)"
        );
        assert!(render(&result(true), Format::Text).contains("replayed"));
        let json: Value = serde_json::from_str(&render(&result(true), Format::Json)).unwrap();
        assert_eq!(json["plan_version"], 42);
        assert_eq!(json["replayed"], true);
        assert_eq!(json["command_id"], "c1");
    }

    fn plan() -> v1::PlanSummary {
        v1::PlanSummary {
            head: Some(v1::PlanHead {
                plan_id: "p1".into(),
                name: "Alliance modernization".into(),
                version: 7,
                ..Default::default()
            }),
            horizon_start: Some(v1::Date {
                year: 2027,
                month: 1,
                day: 1,
            }),
            horizon_end: Some(v1::Date {
                year: 2031,
                month: 12,
                day: 31,
            }),
            decisions: vec![v1::DecisionSummary {
                decision_id: "opcon-transfer".into(),
                title: "Transfer wartime OPCON".into(),
                status: v1::DecisionStatus::Proposed as i32,
                required_sides: vec![v1::Side::Us as i32, v1::Side::Rok as i32],
                endorsements: vec![v1::Side::Rok as i32],
                step_count: 1,
                ..Default::default()
            }],
            elements: vec![v1::ElementSummary {
                element: Some(v1::ForceElement {
                    element_id: "2id-abct".into(),
                    name: "Armored BCT".into(),
                    side: v1::Side::Us as i32,
                    component: v1::Component::Army as i32,
                    kind: v1::ElementKind::GroundCombatBrigade as i32,
                    personnel: 4500,
                    equipment: vec![v1::EquipmentCount {
                        kind: "M1A2".into(),
                        count: 90,
                    }],
                    base: "Camp Humphreys".into(),
                }),
                present_from: Some(v1::Date {
                    year: 2027,
                    month: 1,
                    day: 1,
                }),
                ..Default::default()
            }],
            clauses: vec![v1::ClauseSummary {
                clause_id: "123-enrichment".into(),
                agreement: v1::AgreementKind::NuclearCooperation123 as i32,
                title: "Enrichment".into(),
                status: v1::ClauseStatus::Restricted as i32,
                since: Some(v1::Date {
                    year: 2015,
                    month: 6,
                    day: 25,
                }),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn plan_text_has_aligned_columns() {
        let text = render(&Reply::Plan(plan()), Format::Text);
        assert!(text.contains("version 7"), "{text}");
        assert!(text.contains("horizon 2027-01-01 .. 2031-12-31"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("ID  ")).unwrap();
        let row = lines[header + 1];
        assert!(row.starts_with("opcon-transfer  proposed"), "{row}");
        assert_eq!(
            lines[header].find("EFFECTIVE"),
            row.find("-  "),
            "columns line up:\n{text}"
        );
        assert!(text.contains("us,rok    rok"), "{text}");
        assert!(
            text.contains("ground_combat_brigade  4500       M1A2=90"),
            "{text}"
        );
        assert!(text.contains("conditions: none"), "{text}");
    }

    #[test]
    fn plan_json_uses_names_and_dates() {
        let json: Value =
            serde_json::from_str(&render(&Reply::Plan(plan()), Format::Json)).unwrap();
        assert_eq!(json["version"], 7);
        assert_eq!(json["horizon_end"], "2031-12-31");
        assert_eq!(json["decisions"][0]["status"], "proposed");
        assert_eq!(json["decisions"][0]["endorsements"][0], "rok");
        assert_eq!(json["elements"][0]["kind"], "ground_combat_brigade");
        assert_eq!(json["elements"][0]["equipment"]["M1A2"], 90);
        assert_eq!(json["elements"][0]["withdrawn_on"], Value::Null);
        assert_eq!(json["clauses"][0]["agreement"], "nuclear_cooperation123");
    }

    fn day(year: i32, month: i32, day: i32) -> Option<v1::Date> {
        Some(v1::Date { year, month, day })
    }

    fn posture() -> v1::Posture {
        v1::Posture {
            plan_id: "p1".into(),
            valid_on: day(2029, 1, 1),
            version: 9,
            what_if: true,
            elements: plan()
                .elements
                .into_iter()
                .filter_map(|e| e.element)
                .collect(),
            personnel: vec![v1::PersonnelCount {
                side: v1::Side::Us as i32,
                component: v1::Component::Army as i32,
                kind: v1::ElementKind::GroundCombatBrigade as i32,
                personnel: 4500,
            }],
            capability: vec![v1::CapabilityLevel {
                side: v1::Side::Rok as i32,
                area: v1::CapabilityArea::MissileDefense as i32,
                level: 70,
            }],
            command: Some(v1::CommandArrangementState {
                wartime_opcon: v1::Side::Rok as i32,
                ..Default::default()
            }),
            conditions: vec![v1::ConditionState {
                condition_id: "rok-c2".into(),
                title: "ROK C2".into(),
                assessed_on: None,
                status: 0,
                value: None,
            }],
            decision_ids: vec!["opcon-transfer".into()],
            us_personnel: 4500,
            ..Default::default()
        }
    }

    #[test]
    fn posture_text_and_json() {
        let text = render(&Reply::Posture(posture()), Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "plan p1  valid on 2029-01-01  version 9  what-if yes",
                "command: peacetime OPCON \u{2014}  wartime OPCON rok  CFC commander \u{2014}",
                "U.S. personnel 4500",
            ],
            "{text}"
        );
        assert!(text.contains("rok   missile_defense  70"), "{text}");
        assert!(
            text.contains("rok-c2  -       -         -      ROK C2"),
            "{text}"
        );
        assert!(text.ends_with("decisions (1): opcon-transfer"), "{text}");

        let json: Value =
            serde_json::from_str(&render(&Reply::Posture(posture()), Format::Json)).unwrap();
        assert_eq!(json["valid_on"], "2029-01-01");
        assert_eq!(json["what_if"], true);
        assert_eq!(json["command"]["wartime_opcon"], "rok");
        assert_eq!(json["command"]["peacetime_opcon"], Value::Null);
        assert_eq!(json["capability"][0]["area"], "missile_defense");
        assert_eq!(json["conditions"][0]["status"], Value::Null);
        assert_eq!(json["elements"][0]["equipment"]["M1A2"], 90);
        assert_eq!(json["decision_ids"][0], "opcon-transfer");
    }

    #[test]
    fn diff_and_events_name_their_kinds_and_times() {
        let diff = v1::PlanDiff {
            plan_id: "p1".into(),
            from_version: 1,
            to_version: 3,
            decisions: vec![v1::DecisionChange {
                decision_id: "d1".into(),
                title: "Retrench".into(),
                before: 0,
                after: v1::DecisionStatus::Proposed as i32,
                events: vec![v1::EventRef {
                    version: 3,
                    event_type: "DecisionProposed".into(),
                }],
            }],
            elements: vec![v1::ElementChange {
                element_id: "2id-abct".into(),
                kind: v1::ElementChangeKind::Removed as i32,
                events: vec![],
            }],
            events: vec![v1::RecordedEvent {
                version: 3,
                event_type: "DecisionProposed".into(),
                actor: "us-force-planning/us.planner".into(),
                record_time: Some(prost_types::Timestamp {
                    seconds: 1_735_689_600,
                    nanos: 500_000_000,
                }),
            }],
        };
        let text = render(&Reply::Diff(diff.clone()), Format::Text);
        assert!(
            text.contains("d1  -\u{2192}proposed  v3      Retrench"),
            "{text}"
        );
        assert!(text.contains("2id-abct  removed  -"), "{text}");
        assert!(text.contains("2025-01-01T00:00:00.500Z"), "{text}");
        let json: Value = serde_json::from_str(&render(&Reply::Diff(diff), Format::Json)).unwrap();
        assert_eq!(json["decisions"][0]["before"], Value::Null);
        assert_eq!(json["decisions"][0]["after"], "proposed");
        assert_eq!(json["elements"][0]["kind"], "removed");
        assert_eq!(json["events"][0]["record_time"], "2025-01-01T00:00:00.500Z");

        let event = v1::EventEnvelope {
            plan_id: "p1".into(),
            plan_version: 4,
            event_type: "DecisionProposed".into(),
            actor: Some(v1::Actor {
                team: "rok-jcs".into(),
                user: "rok.planner".into(),
                side: 0,
            }),
            record_time: Some(prost_types::Timestamp {
                seconds: 1_735_689_600,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            event_line(&event, Format::Text),
            "v4 DecisionProposed by rok-jcs/rok.planner at 2025-01-01T00:00:00Z"
        );
        let json: Value = serde_json::from_str(&event_line(&event, Format::Json)).unwrap();
        assert_eq!(json["version"], 4);
        assert_eq!(json["actor"]["user"], "rok.planner");
        assert_eq!(json["payload"], Value::Null);
    }

    #[test]
    fn error_json_has_code_message_and_details() {
        let err = CliError {
            exit: Exit::InvalidInput,
            status: Some(tonic::Code::InvalidArgument),
            message: "invalid input: name: must not be empty".into(),
            details: vec![Detail::Field {
                field: "name".into(),
                description: "must not be empty".into(),
            }],
            command_id: Some("c1".into()),
        };
        assert_eq!(
            render_error(&err, Format::Text),
            "error: invalid input: name: must not be empty"
        );
        let json: Value = serde_json::from_str(&render_error(&err, Format::Json)).unwrap();
        assert_eq!(json["error"]["code"], "invalid_input");
        assert_eq!(json["error"]["exit_code"], 2);
        assert_eq!(json["error"]["grpc_status"], "INVALID_ARGUMENT");
        assert_eq!(json["error"]["details"][0]["field"], "name");
        assert_eq!(json["error"]["command_id"], "c1");
    }
}
