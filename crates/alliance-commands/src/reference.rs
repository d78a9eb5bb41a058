//! The reference plan: the paper's proposals and the alliance's history, shipped as a data file
//! of commands (`deploy/reference-plan.json`) and loaded through the same path as any command.

use std::path::Path;

use alliance_domain::{Command, CommandContext, Plan, PlanId, TeamId, decide, evolve};
use alliance_eventlog::{EventLog, Route};
use serde::Deserialize;

use crate::service::{CommandMeta, CommandService};
use alliance_server::error::ServiceError;
use alliance_server::{Authenticator, Caller};

/// Where a figure or a date of the reference plan comes from.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub id: String,
    pub citation: String,
    #[serde(default)]
    pub note: String,
}

/// One command of the reference plan and the team it is issued as.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(rename = "as")]
    pub team: TeamId,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    pub command: Command,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReferencePlan {
    pub plan_id: PlanId,
    pub name: String,
    #[serde(default)]
    pub sources: Vec<Source>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot read reference plan {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("reference plan {path} is invalid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("reference plan entry {index} is issued as unknown team {team}")]
    UnknownTeam { index: usize, team: TeamId },
    #[error("reference plan entry {index} ({command}) was refused: {source}")]
    Refused {
        index: usize,
        command: &'static str,
        source: ServiceError,
    },
}

impl ReferencePlan {
    pub fn read(path: &Path) -> Result<Self, ReferenceError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReferenceError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ReferenceError::Parse {
            path: path.display().to_string(),
            source,
        })
    }
}

impl Entry {
    /// The caller entry `index` is applied as: its team, as the user `reference-plan`.
    fn caller(&self, index: usize, auth: &Authenticator) -> Result<Caller, ReferenceError> {
        auth.team_caller(&self.team, "reference-plan")
            .ok_or_else(|| ReferenceError::UnknownTeam {
                index,
                team: self.team.clone(),
            })
    }
}

impl ReferencePlan {
    /// The plan its entries make, folded in memory without any log: for benchmarks and tests
    /// of what reads plans.
    pub fn fold(&self, auth: &Authenticator) -> Result<Plan, ReferenceError> {
        let mut plan = Plan::default();
        for (index, entry) in self.entries.iter().enumerate() {
            let caller = entry.caller(index, auth)?;
            let ctx = CommandContext {
                actor: caller.actor,
            };
            let mut command = entry.command.clone();
            auth.complete_grants(&mut command);
            let events = decide(&plan, &command, &ctx).map_err(|e| ReferenceError::Refused {
                index,
                command: entry.command.name(),
                source: e.into(),
            })?;
            for event in &events {
                plan = evolve(plan, event);
            }
        }
        Ok(plan)
    }
}

/// How loading went: entries appended now, and entries found applied already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    pub applied: usize,
    pub already_present: usize,
    /// Another instance writes the reference plan (it loads it).
    pub served_elsewhere: bool,
}

/// Applies every entry not applied yet. Command ids are derived from the plan id and the entry
/// index, so loading is idempotent: a restart after a crash mid-load finishes the job.
pub async fn load<L: EventLog>(
    service: &CommandService<L>,
    auth: &Authenticator,
    plan: &ReferencePlan,
) -> Result<LoadReport, ReferenceError> {
    let mut report = LoadReport {
        applied: 0,
        already_present: 0,
        served_elsewhere: false,
    };
    if service.log().route(plan.plan_id) != Route::Local {
        report.served_elsewhere = true;
        return Ok(report);
    }
    for (index, entry) in plan.entries.iter().enumerate() {
        let caller = entry.caller(index, auth)?;
        let meta = CommandMeta {
            command_id: format!("reference:{}:{index}", plan.plan_id),
            plan_id: Some(plan.plan_id),
            based_on_version: None,
            correlation_id: format!("reference:{}", plan.plan_id),
            causation_id: String::new(),
            ..CommandMeta::default()
        };
        let outcome = service
            .execute(&caller, meta, entry.command.clone())
            .await
            .map_err(|source| ReferenceError::Refused {
                index,
                command: entry.command.name(),
                source,
            })?;
        if outcome.replayed {
            report.already_present += 1;
        } else {
            report.applied += 1;
        }
    }
    Ok(report)
}
