//! Field-level checks of every command, collected at once (every violation in one refusal), and
//! the documented bounds of every number a command carries.

use std::collections::BTreeMap;

use crate::command::Command;
use crate::conditions::{ConstraintRule, Prerequisite};
use crate::error::{DomainError, FieldViolation};
use crate::model::{Date, ForceElementSpec, Step};
use crate::state::Plan;

const MAX_NAME: usize = 200;
/// Roles granted when a plan is created, at most.
const MAX_GRANTS: usize = 200;
const MAX_TEXT: usize = 4000;
/// Items of one list field (equipment kinds, superseded decisions, named conditions), at most.
const MAX_ITEMS: usize = 100;
/// Capability levels and thresholds are on a 0–100 scale.
const MAX_LEVEL: u32 = 100;
/// Personnel of one force element, and of one reduction: the largest formation a plan names
/// (a field army, a whole service component) is well under a million.
pub const MAX_PERSONNEL: u32 = 1_000_000;
/// Count of one equipment kind of one element, and of one reduction.
pub const MAX_EQUIPMENT: u32 = 100_000;
/// Cost of one capability investment, in thousands of U.S. dollars ($10 trillion).
pub const MAX_COST_KUSD: u64 = 10_000_000_000;
/// Trials of one recorded simulation run (the simulation service's own cap).
pub const MAX_SIMULATION_TRIALS: u32 = 200_000;
/// The lag a prerequisite asks for after another decision, at most (50 years).
pub const MAX_LAG_MONTHS: u32 = 600;
/// A personnel floor or ceiling, at most: every element of a plan at its largest.
pub const MAX_PERSONNEL_BOUND: u64 = 100_000_000;
/// Months of one recorded simulation run (50 years; the simulation service's own cap).
pub const MAX_SIMULATION_MONTHS: u32 = 600;

/// Collects field violations so a caller sees every problem of a command at once.
#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
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

    fn date(&mut self, plan: &Plan, field: &str, date: Date) {
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

    fn level(&mut self, field: &str, level: u32) {
        if level > MAX_LEVEL {
            self.0.push(FieldViolation::new(
                field,
                format!("must be between 0 and {MAX_LEVEL}, got {level}"),
            ));
        }
    }

    fn at_most<N: PartialOrd + std::fmt::Display>(&mut self, field: &str, value: N, max: N) {
        if value > max {
            self.0.push(FieldViolation::new(
                field,
                format!("must be at most {max}, got {value}"),
            ));
        }
    }

    fn equipment(&mut self, field: &str, equipment: &BTreeMap<String, u32>) {
        self.items(field, equipment.len());
        for (kind, count) in equipment {
            self.text(field, kind, true, MAX_NAME);
            self.at_most(field, *count, MAX_EQUIPMENT);
        }
    }

    fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.0.push(FieldViolation::new(field, description));
        }
    }

    fn items(&mut self, field: &str, count: usize) {
        if count > MAX_ITEMS {
            self.0.push(FieldViolation::new(
                field,
                format!("at most {MAX_ITEMS} items, not {count}"),
            ));
        }
    }

    fn element(&mut self, prefix: &str, element: &ForceElementSpec) {
        self.text(&format!("{prefix}.name"), &element.name, true, MAX_NAME);
        self.text(&format!("{prefix}.base"), &element.base, true, MAX_NAME);
        self.at_most(
            &format!("{prefix}.personnel"),
            element.personnel,
            MAX_PERSONNEL,
        );
        self.equipment(&format!("{prefix}.equipment"), &element.equipment);
    }

    fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(self.0))
        }
    }
}

/// Field-level checks that need no state beyond the horizon.
pub(super) fn validate(plan: &Plan, command: &Command) -> Result<(), DomainError> {
    let mut v = Violations::default();
    match command {
        Command::CreatePlan {
            plan_id,
            name,
            description,
            horizon_start,
            horizon_end,
            grants,
        } => {
            v.check(!plan_id.is_nil(), "plan_id", "must not be the nil uuid");
            v.check(grants.len() <= MAX_GRANTS, "grants", "at most 200 grants");
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            v.check(
                horizon_start < horizon_end,
                "horizon_end",
                "must be after horizon_start",
            );
        }
        Command::BranchPlan {
            new_plan_id,
            name,
            description,
            ..
        } => {
            v.check(
                !new_plan_id.is_nil(),
                "new_plan_id",
                "must not be the nil uuid",
            );
            v.text("name", name, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
        }
        Command::RegisterForceElement {
            element,
            present_from,
        } => {
            v.element("element", element);
            v.date(plan, "present_from", *present_from);
        }
        Command::RecordCapabilityLevel { level, as_of, .. } => {
            v.level("level", *level);
            v.date(plan, "as_of", *as_of);
        }
        Command::DefineAgreementClause { title, since, .. } => {
            v.text("title", title, true, MAX_NAME);
            v.date(plan, "since", *since);
        }
        Command::DefineCondition {
            title,
            description,
            threshold,
            ..
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("description", description, false, MAX_TEXT);
            if let Some(t) = threshold {
                v.level("threshold", *t);
            }
        }
        Command::AssessCondition {
            assessed_on,
            value,
            note,
            ..
        } => {
            v.date(plan, "assessed_on", *assessed_on);
            if let Some(value) = value {
                v.level("value", *value);
            }
            v.text("note", note, false, MAX_TEXT);
        }
        Command::ProposeDecision {
            title,
            rationale,
            effective_date,
            required_sides,
            supersedes,
            ..
        } => {
            v.text("title", title, true, MAX_NAME);
            v.text("rationale", rationale, true, MAX_TEXT);
            v.items("supersedes", supersedes.len());
            v.date(plan, "effective_date", *effective_date);
            v.check(
                !required_sides.is_empty(),
                "required_sides",
                "must name at least one side (U.S., ROK or both)",
            );
        }
        Command::PlanStep { step, .. } => {
            v.date(plan, step_date_field(step), step.date());
            match step {
                Step::AddElement { element, .. } => v.element("element", element),
                Step::ReduceElement {
                    personnel,
                    equipment,
                    ..
                } => {
                    v.check(
                        *personnel > 0 || equipment.values().any(|c| *c > 0),
                        "personnel",
                        "a reduction must remove personnel or equipment",
                    );
                    v.at_most("personnel", *personnel, MAX_PERSONNEL);
                    v.equipment("equipment", equipment);
                }
                Step::RelocateElement { to_base, .. } => {
                    v.text("to_base", to_base, true, MAX_NAME);
                }
                Step::TransferOpcon { conditions, .. } => {
                    v.items("conditions", conditions.len());
                    v.check(
                        !conditions.is_empty(),
                        "conditions",
                        "the OPCON transfer can be scheduled only with its conditions named",
                    );
                }
                Step::ChangeCommandArrangement {
                    peacetime_opcon,
                    wartime_opcon,
                    cfc_commander,
                    ..
                } => v.check(
                    peacetime_opcon.is_some() || wartime_opcon.is_some() || cfc_commander.is_some(),
                    "peacetime_opcon",
                    "a change of command arrangement must change at least one of peacetime OPCON, wartime OPCON or the CFC commander",
                ),
                Step::InvestCapability {
                    description,
                    level_gain,
                    cost_kusd,
                    ..
                } => {
                    v.at_most("cost_kusd", *cost_kusd, MAX_COST_KUSD);
                    v.text("description", description, true, MAX_TEXT);
                    v.check(
                        (1..=MAX_LEVEL).contains(level_gain),
                        "level_gain",
                        "must be between 1 and 100",
                    );
                }
                Step::AssignMission {
                    lead, supporting, ..
                } => v.check(
                    *supporting != Some(*lead),
                    "supporting",
                    "the supporting side must be the other side, or none",
                ),
                Step::WithdrawElement { .. } | Step::AmendClause { .. } => {}
            }
        }
        Command::AdoptDecision {
            acknowledged_findings,
            ..
        } => {
            v.items("acknowledged_findings", acknowledged_findings.len());
            for id in acknowledged_findings {
                v.text("acknowledged_findings", id, true, MAX_NAME);
            }
        }
        Command::RequirePrerequisite { prerequisite, .. } => match prerequisite {
            Prerequisite::AfterDecision { lag_months, .. } => {
                v.at_most("prerequisite.lag_months", *lag_months, MAX_LAG_MONTHS);
            }
            Prerequisite::ConditionsMet { conditions } => {
                v.check(
                    !conditions.is_empty(),
                    "prerequisite.conditions",
                    "name at least one condition",
                );
                v.items("prerequisite.conditions", conditions.len());
            }
            Prerequisite::CapabilityReached { level, .. } => {
                v.level("prerequisite.level", *level);
            }
        },
        Command::DefineConstraint {
            title,
            rule,
            authority,
            since,
            ..
        } => {
            if let Some(since) = since {
                v.date(plan, "since", *since);
            }
            v.text("title", title, true, MAX_NAME);
            v.text("authority", authority, true, MAX_TEXT);
            match rule {
                ConstraintRule::Personnel { min, max, .. } => {
                    v.check(
                        min.is_some() || max.is_some(),
                        "rule.min",
                        "a personnel constraint needs a floor, a ceiling or both",
                    );
                    for (field, bound) in [("rule.min", min), ("rule.max", max)] {
                        if let Some(bound) = bound {
                            v.at_most(field, *bound, MAX_PERSONNEL_BOUND);
                        }
                    }
                    if let (Some(min), Some(max)) = (min, max) {
                        v.check(min <= max, "rule.max", "must not be below the floor");
                    }
                }
                ConstraintRule::CombinedCapability { min, .. } => {
                    // U.S. and ROK levels are each 0–100.
                    v.at_most("rule.min", *min, 2 * MAX_LEVEL);
                }
            }
        }
        Command::WaiveConstraint {
            from,
            authority,
            note,
            ..
        } => {
            v.date(plan, "from", *from);
            v.text("authority", authority, true, MAX_TEXT);
            v.text("note", note, false, MAX_TEXT);
        }
        Command::EndorseDecision { .. }
        | Command::GrantRole { .. }
        | Command::RevokeRole { .. } => {}
        Command::RejectDecision { reason, .. } | Command::WithdrawDecision { reason, .. } => {
            v.text("reason", reason, true, MAX_TEXT);
        }
        Command::RecordSimulationRun { run } => {
            v.check(
                !run.run_id.is_nil(),
                "run.run_id",
                "must not be the nil uuid",
            );
            v.check(is_digest(&run.inputs_digest), "run.inputs_digest", DIGEST);
            v.check(is_digest(&run.results_digest), "run.results_digest", DIGEST);
            v.check(run.trials > 0, "run.trials", "must be at least 1");
            v.at_most("run.trials", run.trials, MAX_SIMULATION_TRIALS);
            v.check(run.months > 0, "run.months", "must be at least 1");
            v.at_most("run.months", run.months, MAX_SIMULATION_MONTHS);
            if plan.exists() && run.plan_version > plan.version {
                v.0.push(FieldViolation::new(
                    "run.plan_version",
                    format!(
                        "the plan is at version {}, not {}",
                        plan.version, run.plan_version
                    ),
                ));
            }
            v.date(plan, "run.start", run.start);
            v.text("run.model_version", &run.model_version, true, MAX_NAME);
            v.text("run.headline", &run.headline, false, MAX_TEXT);
            for (field, permille) in [
                ("run.shortfall_permille", Some(run.shortfall_permille)),
                (
                    "run.conditions_at_transfer_permille",
                    run.conditions_at_transfer_permille,
                ),
            ] {
                v.check(
                    permille.is_none_or(|p| p <= 1000),
                    field,
                    "must be at most 1000",
                );
            }
        }
        Command::WitnessHead { .. } | Command::SignHead { .. } => {
            v.0.extend(crate::witness::violations(plan, command));
        }
    }
    v.finish()
}

const DIGEST: &str = "must be a SHA-256 digest in lowercase hex";

fn is_digest(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn step_date_field(step: &Step) -> &'static str {
    match step {
        Step::InvestCapability { .. } => "delivery",
        _ => "on",
    }
}
