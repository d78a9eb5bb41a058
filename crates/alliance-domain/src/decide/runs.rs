//! Simulation runs recorded in a plan's history.

use super::fields::{MAX_NAME, MAX_TEXT, Violations};
use super::{Decided, elsewhere};
use crate::command::Command;
use crate::error::{DomainError, FieldViolation};
use crate::event::Event;
use crate::state::Plan;

/// Trials of one recorded simulation run (the simulation service's own cap).
pub const MAX_SIMULATION_TRIALS: u32 = 200_000;
/// Months of one recorded simulation run (50 years; the simulation service's own cap).
pub const MAX_SIMULATION_MONTHS: u32 = 600;

const DIGEST: &str = "must be a SHA-256 digest in lowercase hex";

pub(super) fn decide(plan: &Plan, command: &Command) -> Decided {
    let Command::RecordSimulationRun { run } = command else {
        return Err(elsewhere(command));
    };
    let mut v = Violations::default();
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
    v.edits(plan)?;
    if plan.simulation_runs.contains_key(&run.run_id) {
        return Err(DomainError::already_exists("simulation run", run.run_id));
    }
    if run.plan_version > plan.version {
        return Err(DomainError::rule(
            "version_not_reached",
            format!(
                "the run simulated version {} but the plan is at version {}",
                run.plan_version, plan.version
            ),
        ));
    }
    Ok(vec![Event::SimulationRunRecorded { run: run.clone() }])
}

fn is_digest(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
