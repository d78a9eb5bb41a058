//! `Fields`: reads a message's fields, collecting every violation at once.

use std::collections::BTreeSet;

use alliance_domain::{
    Date, FieldViolation, ForceElementSpec, Grant, IdError, PlanRole, Side, SimulationRun,
};

use super::scalars::*;
use crate::v1;

/// Reads fields of a message, collecting a violation for each bad one so the caller sees them
/// all at once. A getter returns `None` (or a neutral value) after recording a violation.
#[derive(Default)]
pub struct Fields(pub(crate) Vec<FieldViolation>);

impl Fields {
    pub(crate) fn bad(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// `value`, or a violation of `field` when it is missing.
    pub(crate) fn required<'a, T>(&mut self, field: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.bad(field, "is required");
        }
        value
    }

    /// The `kind` a `oneof` holds, or a violation of `field` naming the `kinds` it may hold.
    pub(crate) fn one_of<'a, T>(
        &mut self,
        field: &str,
        kind: Option<&'a T>,
        kinds: &str,
    ) -> Option<&'a T> {
        if kind.is_none() {
            self.bad(field, format!("is required: {kinds}"));
        }
        kind
    }

    pub fn date(&mut self, field: &str, date: Option<&v1::Date>) -> Option<Date> {
        let d = self.required(field, date)?;
        let parsed = date_from_proto(d);
        if parsed.is_none() {
            let (year, month, day) = (d.year, d.month, d.day);
            self.bad(
                field,
                format!("{year:04}-{month:02}-{day:02} is not a calendar date"),
            );
        }
        parsed
    }

    pub fn enum_value<T>(
        &mut self,
        field: &str,
        value: i32,
        conv: fn(i32) -> Option<T>,
    ) -> Option<T> {
        let parsed = conv(value);
        if parsed.is_none() {
            self.bad(field, "must be set to a known value");
        }
        parsed
    }

    /// An optional enum: unspecified means absent; unknown values are violations.
    pub fn opt_enum<T>(
        &mut self,
        field: &str,
        value: i32,
        conv: fn(i32) -> Option<T>,
    ) -> Option<T> {
        if value == 0 {
            return None;
        }
        self.enum_value(field, value, conv)
    }

    pub fn id<T: TryFrom<String, Error = IdError>>(
        &mut self,
        field: &str,
        value: &str,
    ) -> Option<T> {
        match T::try_from(value.to_owned()) {
            Ok(id) => Some(id),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    pub fn ids<T: TryFrom<String, Error = IdError> + Ord>(
        &mut self,
        field: &str,
        values: &[String],
    ) -> BTreeSet<T> {
        values.iter().filter_map(|v| self.id(field, v)).collect()
    }

    pub fn uuid(&mut self, field: &str, value: &str) -> Option<uuid::Uuid> {
        match uuid::Uuid::parse_str(value) {
            Ok(id) => Some(id),
            Err(_) => {
                self.bad(field, format!("{value:?} is not a UUID"));
                None
            }
        }
    }

    /// A role grant: a known team id and role name.
    pub fn grant(&mut self, field: &str, grant: Option<&v1::RoleGrant>) -> Option<Grant> {
        let grant = self.required(field, grant)?;
        let team = self.id(&format!("{field}.team"), &grant.team);
        let role = match grant.role.parse::<PlanRole>() {
            Ok(role) => Some(role),
            Err(e) => {
                self.bad(&format!("{field}.role"), e);
                None
            }
        };
        Some(Grant {
            team: team?,
            role: role?,
        })
    }

    pub(crate) fn grants(&mut self, field: &str, grants: &[v1::RoleGrant]) -> Vec<Grant> {
        grants
            .iter()
            .enumerate()
            .filter_map(|(i, g)| self.grant(&format!("{field}[{i}]"), Some(g)))
            .collect()
    }

    pub(crate) fn sides(&mut self, field: &str, values: &[i32]) -> BTreeSet<Side> {
        values
            .iter()
            .filter_map(|v| self.enum_value(field, *v, side_from_proto))
            .collect()
    }

    pub(crate) fn equipment(
        &mut self,
        field: &str,
        values: &[v1::EquipmentCount],
    ) -> alliance_domain::EquipmentCounts {
        // Read into a tree, then taken in order: the vector's own insert shifts every kind
        // after the new one, which a message listing its kinds in reverse would make
        // quadratic (about 100,000 fit in the largest message a server takes).
        let mut read = std::collections::BTreeMap::new();
        for item in values {
            if read.insert(item.kind.clone(), item.count).is_some() {
                self.bad(
                    field,
                    format!("equipment kind {:?} is listed twice", item.kind),
                );
            }
        }
        read.into_iter().collect()
    }

    pub fn element(
        &mut self,
        field: &str,
        element: Option<&v1::ForceElement>,
    ) -> Option<ForceElementSpec> {
        let e = self.required(field, element)?;
        let id = self.id(&format!("{field}.element_id"), &e.element_id);
        let side = self.enum_value(&format!("{field}.side"), e.side, side_from_proto);
        let component = self.enum_value(
            &format!("{field}.component"),
            e.component,
            component_from_proto,
        );
        let kind = self.enum_value(&format!("{field}.kind"), e.kind, kind_from_proto);
        let equipment = self.equipment(&format!("{field}.equipment"), &e.equipment);
        Some(ForceElementSpec {
            id: id?,
            name: e.name.as_str().into(),
            side: side?,
            component: component?,
            kind: kind?,
            personnel: e.personnel,
            equipment,
            base: e.base.as_str().into(),
        })
    }

    /// A programme's cost in thousands of U.S. dollars, from a request naming it in thousands
    /// (`cost_kusd`) or, as clients written before thousands did, in millions (`cost_musd`),
    /// never both.
    pub fn cost_kusd(&mut self, kusd: u64, musd: u64) -> Option<u64> {
        match (kusd, musd) {
            (kusd, 0) => Some(kusd),
            (0, musd) => {
                let kusd = musd.checked_mul(1_000);
                if kusd.is_none() {
                    self.bad("cost_musd", format!("{musd} million overflows"));
                }
                kusd
            }
            _ => {
                self.bad(
                    "cost_musd",
                    "give the cost once: in cost_kusd or in cost_musd",
                );
                None
            }
        }
    }

    /// The collected violations, or `value` if there were none.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldViolation>> {
        match (self.0.is_empty(), value) {
            (true, Some(v)) => Ok(v),
            (true, None) => Err(vec![FieldViolation::new("", "incomplete message")]),
            (false, _) => Err(self.0),
        }
    }
}

impl Fields {
    /// A simulation run record; every field is checked.
    pub fn simulation_run(
        &mut self,
        field: &str,
        run: Option<&v1::SimulationRunRecord>,
    ) -> Option<SimulationRun> {
        let run = self.required(field, run)?;
        let run_id = self.uuid(&format!("{field}.run_id"), &run.run_id);
        let start = self.date(&format!("{field}.start"), run.start.as_ref());
        let likely_by = match &run.conditions_likely_by {
            None => Some(None),
            Some(d) => self
                .date(&format!("{field}.conditions_likely_by"), Some(d))
                .map(Some),
        };
        Some(SimulationRun {
            run_id: run_id?,
            plan_version: run.plan_version,
            what_if: run.what_if,
            inputs_digest: run.inputs_digest.clone(),
            results_digest: run.results_digest.clone(),
            seed: run.seed,
            trials: run.trials,
            start: start?,
            months: run.months,
            model_version: run.model_version.clone(),
            shortfall_permille: run.shortfall_permille,
            conditions_at_transfer_permille: run.conditions_at_transfer_permille,
            conditions_likely_by: likely_by?,
            sequencing_risks: run.sequencing_risks,
            headline: run.headline.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(kind: String, count: u32) -> v1::EquipmentCount {
        v1::EquipmentCount { kind, count }
    }

    /// Counts are read in kind order, and each kind listed again is named, in the order the
    /// message lists them.
    #[test]
    fn equipment_is_read_in_kind_order_and_a_repeated_kind_is_named() {
        let mut fields = Fields::default();
        let read = fields.equipment(
            "equipment",
            &[
                count("M2A3".into(), 1),
                count("M1A2".into(), 2),
                count("M2A3".into(), 3),
                count("K9".into(), 4),
                count("M1A2".into(), 5),
            ],
        );
        assert!(read.iter().map(|(k, v)| (k.as_str(), *v)).eq([
            ("K9", 4),
            ("M1A2", 5),
            ("M2A3", 3)
        ]));
        let named: Vec<&str> = fields.0.iter().map(|v| v.description.as_str()).collect();
        assert_eq!(
            named,
            [
                "equipment kind \"M2A3\" is listed twice",
                "equipment kind \"M1A2\" is listed twice"
            ]
        );
    }
}
