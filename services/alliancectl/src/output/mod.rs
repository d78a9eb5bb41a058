//! Rendering replies and errors as short text for people or one JSON object for scripts: each
//! reply type implements [`Render`], its JSON and its text side by side.

mod findings;
mod history;
pub(crate) use history::{signed_text, vouched_json, vouched_text};
mod plan;
mod posture;
pub(crate) mod simulation;

use alliance_domain::Date;
use alliance_proto::convert::{
    agreement_from_proto, clause_status_from_proto, component_from_proto, date_from_proto,
    kind_from_proto, side_from_proto,
};
use alliance_proto::v1;
use serde::Serialize;
use serde_json::{Value, json};

use self::plan::Applied;
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
    Findings(v1::FindingsReport),
    /// Already printed as it arrived (`watch`).
    Streamed,
    Rebuilt(v1::RebuildReply),
    Verified(v1::VerifyPlanReply),
}

/// A reply as printed: one JSON object for scripts, or text for people.
pub trait Render {
    /// The reply as one JSON object.
    fn json(&self) -> Value;
    /// The reply as text: one line, or a few lines and tables.
    fn text(&self) -> String;

    fn render(&self, format: Format) -> String {
        match format {
            Format::Json => self.json().to_string(),
            Format::Text => self.text(),
        }
    }
}

pub fn render(reply: &Reply, format: Format) -> String {
    match reply {
        Reply::Command { result, command_id } => Applied { result, command_id }.render(format),
        Reply::Plans(r) => r.render(format),
        Reply::Plan(p) => p.render(format),
        Reply::Posture(p) => p.render(format),
        Reply::Series(r) => r.render(format),
        Reply::Diff(d) => d.render(format),
        Reply::Decisions(r) => r.render(format),
        Reply::Findings(r) => r.render(format),
        Reply::Rebuilt(r) => r.render(format),
        Reply::Verified(r) => r.render(format),
        Reply::Streamed => String::new(),
    }
}

pub fn render_error(err: &CliError, format: Format) -> String {
    err.render(format)
}

/// Refused requests of the security log: one row, its count and the peer if known.
pub fn denial_line(d: &v1::Denial, format: Format) -> String {
    d.render(format)
}

/// One event of `watch`: a text line or one JSON object.
pub fn event_line(e: &v1::EventEnvelope, format: Format) -> String {
    e.render(format)
}

impl Render for CliError {
    fn json(&self) -> Value {
        let err = self;
        json!({
            "error": {
                "code": err.exit.kind(),
                "exit_code": err.exit.code(),
                "grpc_status": err.status.map(grpc_name),
                "message": err.message,
                "details": err.details.iter().map(detail_json).collect::<Vec<_>>(),
                "command_id": err.command_id,
            }
        })
    }

    fn text(&self) -> String {
        format!("error: {}", self.message)
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

/// An agreement clause as a plan (`ClauseSummary`) and a posture (`ClauseState`) hold it: the
/// same fields in two messages.
trait Clause {
    /// Its row: id, agreement, status, since, title.
    fn row(&self) -> Vec<String>;
}

macro_rules! clause {
    ($($message:ty),*) => {$(
        impl Clause for $message {
            fn row(&self) -> Vec<String> {
                vec![
                    self.clause_id.clone(),
                    name_text(self.agreement, agreement_from_proto),
                    name_text(self.status, clause_status_from_proto),
                    date_text(self.since.as_ref()),
                    self.title.clone(),
                ]
            }
        }
    )*};
}

clause!(v1::ClauseSummary, v1::ClauseState);

/// The section of agreement `clauses`, one row each.
fn clauses_section(out: &mut Vec<String>, clauses: &[impl Clause]) {
    let headers = ["ID", "AGREEMENT", "STATUS", "SINCE", "TITLE"];
    section_of(out, "clauses", &headers, clauses, Clause::row);
}

/// A column of a table: its header, and its cell of an item.
type Column<T> = (&'static str, fn(&T) -> String);

/// [`section`] of `items`, one row each, a cell per column.
fn section_with<T>(out: &mut Vec<String>, title: &str, items: &[T], columns: &[Column<T>]) {
    let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    let rows = items
        .iter()
        .map(|item| columns.iter().map(|(_, cell)| cell(item)).collect())
        .collect();
    section(out, title, &headers, rows);
}

/// [`section`] of `items`, one row each.
fn section_of<T>(
    out: &mut Vec<String>,
    title: &str,
    headers: &[&str],
    items: &[T],
    row: impl Fn(&T) -> Vec<String>,
) {
    section(out, title, headers, items.iter().map(row).collect());
}

/// The table of `items`, one row each, or `none` when there are none.
fn table_of<T>(
    items: &[T],
    none: &str,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> String {
    if items.is_empty() {
        return none.to_owned();
    }
    table(headers, items.iter().map(row).collect())
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

    /// Asserts that `text` holds `part`.
    #[track_caller]
    fn contains(text: &str, part: &str) {
        assert!(text.contains(part), "{text}");
    }
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
            horizon_start: day(2027, 1, 1),
            horizon_end: day(2031, 12, 31),
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
                present_from: day(2027, 1, 1),
                ..Default::default()
            }],
            clauses: vec![v1::ClauseSummary {
                clause_id: "123-enrichment".into(),
                agreement: v1::AgreementKind::NuclearCooperation123 as i32,
                title: "Enrichment".into(),
                status: v1::ClauseStatus::Restricted as i32,
                since: day(2015, 6, 25),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn plan_text_has_aligned_columns() {
        let text = render(&Reply::Plan(plan()), Format::Text);
        contains(&text, "version 7");
        contains(&text, "horizon 2027-01-01 .. 2031-12-31");
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("ID  ")).unwrap();
        let row = lines[header + 1];
        assert!(row.starts_with("opcon-transfer  proposed"), "{row}");
        assert_eq!(
            lines[header].find("EFFECTIVE"),
            row.find("-  "),
            "columns line up:\n{text}"
        );
        contains(&text, "us,rok    rok");
        contains(&text, "ground_combat_brigade  4500       M1A2=90");
        contains(&text, "conditions: none");
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
        contains(&text, "rok   missile_defense  70");
        contains(&text, "rok-c2  -       -         -      ROK C2");
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
        contains(&text, "d1  -\u{2192}proposed  v3      Retrench");
        contains(&text, "2id-abct  removed  -");
        contains(&text, "2025-01-01T00:00:00.500Z");
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
