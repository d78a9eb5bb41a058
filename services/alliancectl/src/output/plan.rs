//! Command results and plans: the list of plans and one plan's summary.

use alliance_proto::convert::{
    agreement_from_proto, clause_status_from_proto, component_from_proto,
    condition_status_from_proto, decision_status_from_proto, kind_from_proto, side_from_proto,
};
use alliance_proto::v1;
use serde_json::{Value, json};

use super::{
    Column, Render, clauses_section, date_json, date_text, element_json, equipment_text, name,
    name_text, needed_sides, or_dash, section_of, section_with, sides, table_of,
};

/// A command's result with the command id it was sent under.
pub(crate) struct Applied<'a> {
    pub(crate) result: &'a v1::CommandResult,
    pub(crate) command_id: &'a str,
}

impl Render for Applied<'_> {
    fn json(&self) -> Value {
        let r = self.result;
        let mut json = json!({
            "plan_id": r.plan_id,
            "first_version": r.first_version,
            "plan_version": r.plan_version,
            "event_ids": r.event_ids,
            "replayed": r.replayed,
        });
        json["command_id"] = self.command_id.into();
        json
    }

    fn text(&self) -> String {
        let r = self.result;
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
}

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

impl Render for v1::ListPlansResponse {
    fn json(&self) -> Value {
        json!({ "plans": self.plans.iter().map(head_json).collect::<Vec<_>>() })
    }

    fn text(&self) -> String {
        let headers = ["PLAN", "VERSION", "BRANCHED FROM", "NAME"];
        table_of(&self.plans, "no plans", &headers, |h| {
            let version = h.version.to_string();
            vec![h.plan_id.clone(), version, parent_text(h), h.name.clone()]
        })
    }
}

/// The columns of a plan's conditions and roles.
const CONDITIONS: &[Column<v1::ConditionSummary>] = &[
    ("ID", |c| c.condition_id.clone()),
    ("STATUS", |c| {
        name_text(c.latest_status, condition_status_from_proto)
    }),
    ("ASSESSED", |c| date_text(c.latest_assessed_on.as_ref())),
    ("TITLE", |c| c.title.clone()),
];

const ROLES: &[Column<v1::RoleGrant>] =
    &[("TEAM", |g| g.team.clone()), ("ROLE", |g| g.role.clone())];

impl Render for v1::PlanSummary {
    fn json(&self) -> Value {
        let p = self;
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

    fn text(&self) -> String {
        let p = self;
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

        section_of(
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
            &p.decisions,
            |d| {
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
            },
        );

        section_of(
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
            &p.elements,
            |e| {
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
            },
        );

        section_with(&mut out, "conditions", &p.conditions, CONDITIONS);
        clauses_section(&mut out, &p.clauses);
        section_with(&mut out, "roles", &p.grants, ROLES);
        out.join("\n")
    }
}
