//! A plan's findings.

use alliance_proto::v1;
use serde_json::{Value, json};

use super::{Render, date_json, date_text, or_dash, table_of, yes_no};

fn kind(value: i32) -> &'static str {
    match v1::FindingKind::try_from(value) {
        Ok(v1::FindingKind::Prerequisite) => "prerequisite",
        Ok(v1::FindingKind::TransferConditions) => "transfer_conditions",
        Ok(v1::FindingKind::Constraint) => "constraint",
        _ => "-",
    }
}

impl Render for v1::FindingsReport {
    fn json(&self) -> Value {
        json!({
            "plan_id": self.plan_id,
            "version": self.version,
            "what_if": self.what_if,
            "from": date_json(self.from.as_ref()),
            "to": date_json(self.to.as_ref()),
            "findings": self.findings.iter().map(|f| json!({
                "id": f.id,
                "kind": kind(f.kind),
                "from": date_json(f.from.as_ref()),
                "until": date_json(f.until.as_ref()),
                "message": f.message,
                "decision_ids": f.decision_ids,
                "constraint_id": if f.constraint_id.is_empty() { Value::Null } else { json!(f.constraint_id) },
                "acknowledged": f.acknowledged,
            })).collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        let view = if self.what_if { "what-if" } else { "adopted" };
        let head = format!(
            "plan {} at version {} ({view}), {} to {}: ",
            self.plan_id,
            self.version,
            date_text(self.from.as_ref()),
            date_text(self.to.as_ref())
        );
        let headers = [
            "ID",
            "KIND",
            "FROM",
            "UNTIL",
            "ACKNOWLEDGED",
            "DECISIONS",
            "WHAT",
        ];
        let count = match self.findings.len() {
            0 => String::new(),
            n => format!("{n} findings\n"),
        };
        let rows = table_of(&self.findings, "no findings", &headers, |f| {
            vec![
                f.id.clone(),
                kind(f.kind).to_owned(),
                date_text(f.from.as_ref()),
                date_text(f.until.as_ref()),
                yes_no(f.acknowledged).to_owned(),
                or_dash(&f.decision_ids.join(",")),
                f.message.clone(),
            ]
        });
        format!("{head}{count}{rows}")
    }
}
