//! The posture on a date and the posture series.

use alliance_proto::convert::{
    agreement_from_proto, area_from_proto, clause_status_from_proto, component_from_proto,
    condition_status_from_proto, kind_from_proto, mission_from_proto, side_from_proto,
};
use alliance_proto::v1;
use serde_json::{Value, json};

use super::{
    Column, Render, clauses_section, date_json, date_text, element_json, holder_text, name,
    name_text, or_dash, section_with, table, yes_no,
};

/// The columns of a posture's sections.
const PERSONNEL: &[Column<v1::PersonnelCount>] = &[
    ("SIDE", |c| name_text(c.side, side_from_proto)),
    ("COMPONENT", |c| {
        name_text(c.component, component_from_proto)
    }),
    ("KIND", |c| name_text(c.kind, kind_from_proto)),
    ("PERSONNEL", |c| c.personnel.to_string()),
];

const EQUIPMENT: &[Column<v1::SideEquipment>] = &[
    ("SIDE", |e| name_text(e.side, side_from_proto)),
    ("KIND", |e| e.kind.clone()),
    ("COUNT", |e| e.count.to_string()),
];

const CAPABILITY: &[Column<v1::CapabilityLevel>] = &[
    ("SIDE", |c| name_text(c.side, side_from_proto)),
    ("AREA", |c| name_text(c.area, area_from_proto)),
    ("LEVEL", |c| c.level.to_string()),
];

const MISSIONS: &[Column<v1::MissionAssignment>] = &[
    ("MISSION", |m| name_text(m.mission, mission_from_proto)),
    ("LEAD", |m| name_text(m.lead, side_from_proto)),
    ("SUPPORTING", |m| name_text(m.supporting, side_from_proto)),
    ("SINCE", |m| date_text(m.since.as_ref())),
];

const CONDITIONS: &[Column<v1::ConditionState>] = &[
    ("ID", |c| c.condition_id.clone()),
    ("STATUS", |c| {
        name_text(c.status, condition_status_from_proto)
    }),
    ("ASSESSED", |c| date_text(c.assessed_on.as_ref())),
    ("VALUE", |c| {
        c.value.map_or_else(|| "-".to_owned(), |v| v.to_string())
    }),
    ("TITLE", |c| c.title.clone()),
];

const ELEMENTS: &[Column<v1::ForceElement>] = &[
    ("ID", |e| e.element_id.clone()),
    ("SIDE", |e| name_text(e.side, side_from_proto)),
    ("KIND", |e| name_text(e.kind, kind_from_proto)),
    ("PERSONNEL", |e| e.personnel.to_string()),
    ("BASE", |e| or_dash(&e.base)),
    ("NAME", |e| e.name.clone()),
];

/// A side's capability level in an area, as JSON.
fn capability_json(c: &v1::CapabilityLevel) -> Value {
    let (side, area) = (name(c.side, side_from_proto), name(c.area, area_from_proto));
    json!({ "side": side, "area": area, "level": c.level })
}

impl Render for v1::Posture {
    fn json(&self) -> Value {
        let p = self;
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
            "capability": p.capability.iter().map(capability_json).collect::<Vec<_>>(),
            "missions": p.missions.iter().map(|m| json!({
                "mission": name(m.mission, mission_from_proto),
                "lead": name(m.lead, side_from_proto),
                "supporting": name(m.supporting, side_from_proto),
                "since": date_json(m.since.as_ref()),
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

    fn text(&self) -> String {
        let p = self;
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

        section_with(&mut out, "personnel", &p.personnel, PERSONNEL);
        section_with(&mut out, "equipment", &p.equipment, EQUIPMENT);
        section_with(&mut out, "capability", &p.capability, CAPABILITY);
        section_with(&mut out, "operational plans", &p.missions, MISSIONS);
        clauses_section(&mut out, &p.clauses);
        section_with(&mut out, "conditions", &p.conditions, CONDITIONS);
        section_with(&mut out, "elements", &p.elements, ELEMENTS);

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
}

impl Render for v1::PostureSeries {
    fn json(&self) -> Value {
        json!({ "points": self.points.iter().map(Render::json).collect::<Vec<_>>() })
    }

    fn text(&self) -> String {
        let r = self;
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
}
