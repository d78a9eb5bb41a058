//! Rendering replies and errors as short text for people or one JSON object for scripts.

use alliance_domain::Date;
use alliance_proto::convert::{
    agreement_from_proto, clause_status_from_proto, component_from_proto,
    condition_status_from_proto, date_from_proto, decision_status_from_proto, kind_from_proto,
    side_from_proto,
};
use alliance_proto::v1;
use serde::Serialize;
use serde_json::{Value, json};

use crate::errors::{CliError, Detail, grpc_name};
use crate::parse::enum_name;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
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
        (Format::Text, Reply::Command { result, .. }) => command_text(result),
        (Format::Text, Reply::Plans(r)) => plans_text(r),
        (Format::Text, Reply::Plan(p)) => plan_text(p),
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

fn date(d: Option<&v1::Date>) -> Option<Date> {
    d.and_then(date_from_proto)
}

fn date_text(d: Option<&v1::Date>) -> String {
    date(d).map_or_else(|| "-".to_owned(), |d| d.to_string())
}

fn date_json(d: Option<&v1::Date>) -> Value {
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
            let el = e.element.clone().unwrap_or_default();
            json!({
                "element_id": el.element_id,
                "name": el.name,
                "side": name(el.side, side_from_proto),
                "component": name(el.component, component_from_proto),
                "kind": name(el.kind, kind_from_proto),
                "personnel": el.personnel,
                "equipment": el.equipment.iter().map(|q| (q.kind.clone(), Value::from(q.count))).collect::<serde_json::Map<_, _>>(),
                "base": el.base,
                "present_from": date_json(e.present_from.as_ref()),
                "withdrawn_on": date_json(e.withdrawn_on.as_ref()),
                "added_by": (!e.added_by.is_empty()).then_some(&e.added_by),
            })
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
                or_dash(&sides(&d.required_sides).join(",")),
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
    out.join("\n")
}

fn section(out: &mut Vec<String>, title: &str, headers: &[&str], rows: Vec<Vec<String>>) {
    out.push(String::new());
    if rows.is_empty() {
        out.push(format!("{title}: none"));
    } else {
        out.push(format!("{title} ({}):", rows.len()));
        out.push(table(headers, rows));
    }
}

/// Plain columns separated by two spaces, each as wide as its widest cell.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
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
