//! The field checks every family of commands shares: a collector of violations (every violation
//! of a command in one refusal) and the bounds of the numbers more than one family carries. Each
//! family's own bounds stand beside its rules.

use crate::EquipmentCounts;

use crate::error::{DomainError, FieldViolation};
use crate::model::{Date, ForceElementSpec};
use crate::state::Plan;

/// A name or title, at most (characters).
pub(super) const MAX_NAME: usize = 200;
/// A description, rationale, reason or note, at most (characters).
pub(super) const MAX_TEXT: usize = 4000;
/// Items of one list field (equipment kinds, superseded decisions, named conditions), at most.
const MAX_ITEMS: usize = 100;
/// Capability levels and thresholds are on a 0–100 scale.
pub(super) const MAX_LEVEL: u32 = 100;
/// Personnel of one force element, and of one reduction: the largest formation a plan names
/// (a field army, a whole service component) is well under a million.
pub const MAX_PERSONNEL: u32 = 1_000_000;
/// Count of one equipment kind of one element, and of one reduction.
pub const MAX_EQUIPMENT: u32 = 100_000;

/// Collects field violations so a caller sees every problem of a command at once.
#[derive(Default)]
pub(super) struct Violations(pub(super) Vec<FieldViolation>);

impl Violations {
    pub(super) fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
        if required && value.trim().is_empty() {
            self.0.push(FieldViolation::new(field, "must not be empty"));
        }
        let len = value.chars().count();
        if len > max {
            self.0.push(FieldViolation::new(
                field,
                format!("must be at most {max} characters, got {len}"),
            ));
        }
    }

    pub(super) fn date(&mut self, plan: &Plan, field: &str, date: Date) {
        if plan.exists() && !plan.in_horizon(date) {
            self.0.push(FieldViolation::new(
                field,
                format!(
                    "{date} is outside the plan horizon {} to {}",
                    plan.horizon_start, plan.horizon_end
                ),
            ));
        }
    }

    pub(super) fn level(&mut self, field: &str, level: u32) {
        if level > MAX_LEVEL {
            self.0.push(FieldViolation::new(
                field,
                format!("must be between 0 and {MAX_LEVEL}, got {level}"),
            ));
        }
    }

    pub(super) fn at_most<N: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: N,
        max: N,
    ) {
        if value > max {
            self.0.push(FieldViolation::new(
                field,
                format!("must be at most {max}, got {value}"),
            ));
        }
    }

    pub(super) fn equipment(&mut self, field: &str, equipment: &EquipmentCounts) {
        self.items(field, equipment.len());
        for (kind, count) in equipment {
            self.text(field, kind, true, MAX_NAME);
            self.at_most(field, *count, MAX_EQUIPMENT);
        }
    }

    pub(super) fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.0.push(FieldViolation::new(field, description));
        }
    }

    pub(super) fn items(&mut self, field: &str, count: usize) {
        if count > MAX_ITEMS {
            self.0.push(FieldViolation::new(
                field,
                format!("at most {MAX_ITEMS} items, not {count}"),
            ));
        }
    }

    pub(super) fn element(&mut self, prefix: &str, element: &ForceElementSpec) {
        self.text(&format!("{prefix}.name"), &element.name, true, MAX_NAME);
        self.text(&format!("{prefix}.base"), &element.base, true, MAX_NAME);
        self.at_most(
            &format!("{prefix}.personnel"),
            element.personnel,
            MAX_PERSONNEL,
        );
        self.equipment(&format!("{prefix}.equipment"), &element.equipment);
    }

    /// Every violation found, as one refusal.
    fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.0))
        }
    }

    /// Refuses a command whose fields are invalid, then one that edits a plan that does not
    /// exist.
    pub(super) fn edits(self, plan: &Plan) -> Result<(), DomainError> {
        self.finish()?;
        if !plan.exists() {
            return Err(DomainError::rule(
                "plan_missing",
                "the plan does not exist; create it first",
            ));
        }
        Ok(())
    }

    /// Refuses a command whose fields are invalid, then one that creates a plan that exists.
    pub(super) fn creates(self, plan: &Plan, plan_id: impl ToString) -> Result<(), DomainError> {
        self.finish()?;
        if plan.exists() {
            return Err(DomainError::already_exists("plan", plan_id));
        }
        Ok(())
    }
}
