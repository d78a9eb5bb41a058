//! `alliancectl simulate` and `alliancectl simulation get`: Monte Carlo runs of a plan
//! (`alliance.v1.Simulation`), printed risks first as tables or as one JSON object, and
//! optionally charted (see [`crate::chart::simulation`]).
//!
//! A run streams progress (shown as a bar on stderr when stderr is a terminal, then one line
//! saying how many trials were done) and then its result. `--timeout` bounds the wait for each
//! update, not the whole run, so a long run keeps going while it reports progress.

use std::io::Write;
use std::path::{Path, PathBuf};

use alliance_domain::{Command, Date};
use alliance_proto::convert::{date_to_proto, overlay_to_proto};
use alliance_proto::v1;
use alliance_proto::v1::simulation_client::SimulationClient;
use alliance_proto::v1::simulation_update::Update;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use uuid::Uuid;

use crate::errors::{CliError, Exit};
use crate::output::simulation::Outcome;
use crate::output::{Format, Render, Reply};
use crate::parse;
use crate::session::{Session, next_within, within};

#[derive(Args)]
pub struct SimulateArgs {
    /// The plan to simulate.
    #[arg(value_name = "PLAN_ID", env = "ALLIANCE_PLAN")]
    pub plan: Uuid,
    /// Simulate the plan as it stood at this point of its history: a version (e.g. 42) or an
    /// RFC 3339 instant (e.g. 2025-01-01T00:00:00Z) [default: the latest version].
    #[arg(long, value_name = "VERSION|RFC3339", value_parser = parse::record_at)]
    pub at: Option<v1::RecordPoint>,
    /// Also apply the plan's proposed (not yet adopted) decisions: a what-if run.
    #[arg(long)]
    pub what_if: bool,
    /// Unsaved proposed decisions applied to a copy of the plan: a JSON array of commands as in
    /// the reference plan (`{"command":"propose_decision",...}`, then its
    /// `{"command":"plan_step",...}`; entries of the form `{"as":...,"command":{...}}` are
    /// accepted too). A run with an overlay is never recorded in the plan.
    #[arg(long, value_name = "FILE")]
    pub overlay: Option<PathBuf>,
    /// Number of trials [default: the model's; at most 200,000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub trials: Option<u32>,
    /// Seed of the random draws [default: a random seed, reported in the result].
    #[arg(long)]
    pub seed: Option<u64>,
    /// First month simulated (YYYY-MM-DD, moved to the first of its month) [default: the
    /// model's].
    #[arg(long, value_parser = parse::date)]
    pub start: Option<Date>,
    /// Number of months simulated [default: the model's; at most 600].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub months: Option<u32>,
    /// Wait until the plan reaches this version before running (read your writes).
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    pub min_version: u64,
    /// Also chart the result (coverage bands per capability area, U.S. personnel, the OPCON
    /// transfer) to this file: .svg or .png.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub compare: CompareArgs,
}

/// The right-hand run of a comparison: given any of these, both runs are made side by side
/// with the same seed, trials and window (`Compare`), so differences come from the plans.
#[derive(Args)]
#[command(next_help_heading = "Comparison")]
pub struct CompareArgs {
    /// Compare with this plan or branch [default: the same plan, when another --compare-*
    /// flag is given].
    #[arg(long, value_name = "PLAN_ID")]
    pub compare_with: Option<Uuid>,
    /// The right-hand plan as it stood at this version or RFC 3339 instant [default: latest].
    #[arg(long, value_name = "VERSION|RFC3339", value_parser = parse::record_at)]
    pub compare_at: Option<v1::RecordPoint>,
    /// Apply the right-hand plan's proposed decisions too.
    #[arg(long)]
    pub compare_what_if: bool,
    /// An overlay (same format as --overlay) for the right-hand run.
    #[arg(long, value_name = "FILE")]
    pub compare_overlay: Option<PathBuf>,
}

impl CompareArgs {
    fn requested(&self) -> bool {
        self.compare_with.is_some()
            || self.compare_at.is_some()
            || self.compare_what_if
            || self.compare_overlay.is_some()
    }
}

#[derive(Subcommand)]
pub enum SimulationCmd {
    /// The full results of a run, by id: kept by the server, or reproduced from the plan's
    /// history (same inputs and seed, checked against the recorded digests).
    Get {
        /// The run's id, as `simulate` printed it.
        #[arg(value_name = "RUN_ID")]
        run_id: Uuid,
        /// Also chart the result to this file: .svg or .png.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
}

// ---- running -------------------------------------------------------------------------------

/// Runs `alliancectl simulate`.
pub async fn simulate(
    s: &mut Session,
    args: &SimulateArgs,
    format: Format,
) -> Result<Reply, CliError> {
    if let Some(path) = &args.plot {
        crate::chart::simulation::check_path(path)?;
    }
    let overlay = match &args.overlay {
        Some(path) => read_overlay(path, "--overlay")?,
        None => Vec::new(),
    };
    let left = v1::SimulationSpec {
        plan_id: args.plan.to_string(),
        record: args.at,
        include_proposed: args.what_if,
        overlay,
        trials: args.trials.unwrap_or(0),
        seed: args.seed,
        start: args.start.map(date_to_proto),
        months: args.months.unwrap_or(0),
        min_version: args.min_version,
    };
    let mut client = SimulationClient::new(s.channel.clone());
    let mut progress = Progress::default();
    let outcome = if args.compare.requested() {
        let c = &args.compare;
        let right_plan = c.compare_with.unwrap_or(args.plan);
        let overlay = match &c.compare_overlay {
            Some(path) => read_overlay(path, "--compare-overlay")?,
            None => Vec::new(),
        };
        // Trials, seed and window default to the left's on the server.
        let right = v1::SimulationSpec {
            plan_id: right_plan.to_string(),
            record: c.compare_at,
            include_proposed: c.compare_what_if,
            overlay,
            min_version: if right_plan == args.plan {
                args.min_version
            } else {
                0
            },
            ..Default::default()
        };
        let request = s.open_request(v1::CompareSimulationsRequest {
            left: Some(left),
            right: Some(right),
        });
        let updates = within(s.timeout, client.compare(request))
            .await
            .map_err(|status| s.failure(&status, None))?;
        follow(s, updates, &mut progress).await
    } else {
        let request = s.open_request(v1::RunSimulationRequest { spec: Some(left) });
        let updates = within(s.timeout, client.run(request))
            .await
            .map_err(|status| s.failure(&status, None))?;
        follow(s, updates, &mut progress).await
    };
    let outcome = match outcome {
        Ok(outcome) => {
            progress.finish(outcome.trials());
            outcome
        }
        Err(err) => {
            progress.clear();
            return Err(err);
        }
    };
    print(&outcome, args.plot.as_deref(), format)
}

/// Runs `alliancectl simulation get`.
pub async fn get(s: &mut Session, cmd: &SimulationCmd, format: Format) -> Result<Reply, CliError> {
    let SimulationCmd::Get { run_id, plot } = cmd;
    if let Some(path) = plot {
        crate::chart::simulation::check_path(path)?;
    }
    let mut client = SimulationClient::new(s.channel.clone());
    let request = s.request(v1::GetRunRequest {
        run_id: run_id.to_string(),
    });
    let result = within(s.timeout, client.get_run(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    let outcome = Outcome {
        left: result,
        right: None,
    };
    print(&outcome, plot.as_deref(), format)
}

/// Prints the outcome on stdout and writes its chart, if asked for.
fn print(outcome: &Outcome, plot: Option<&Path>, format: Format) -> Result<Reply, CliError> {
    let left = &outcome.left;
    if let Some(path) = plot {
        crate::chart::simulation::write(path, left, outcome.right.as_ref())?;
    }
    let mut text = outcome.render(format);
    if let (Some(path), Format::Text) = (plot, format) {
        text.push_str(&format!("\n\nchart written to {}", path.display()));
    }
    // A closed stdout (e.g. `| head`) is not an error of the run.
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(Reply::Streamed)
}

/// Reads the stream: progress to the bar, then the result (or the comparison).
async fn follow(
    s: &Session,
    mut updates: tonic::Streaming<v1::SimulationUpdate>,
    progress: &mut Progress,
) -> Result<Outcome, CliError> {
    loop {
        let next = next_within(s.timeout, &mut updates, " (raise --timeout)").await;
        match next {
            Ok(Some(v1::SimulationUpdate {
                update: Some(update),
            })) => match update {
                Update::Progress(p) => progress.update(&p),
                Update::Result(result) => {
                    return Ok(Outcome {
                        left: result,
                        right: None,
                    });
                }
                Update::Comparison(v1::SimulationComparison {
                    left: Some(left),
                    right: Some(right),
                }) => {
                    return Ok(Outcome {
                        left,
                        right: Some(right),
                    });
                }
                Update::Comparison(_) => {
                    return Err(CliError::new(
                        Exit::Other,
                        "the server sent a comparison without both results",
                    ));
                }
            },
            // An update of a kind this client does not know.
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(s.failure(
                    &tonic::Status::unavailable("the server ended the run without a result"),
                    None,
                ));
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
}

/// The progress bar on stderr: drawn only when stderr is a terminal.
#[derive(Default)]
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn update(&mut self, p: &v1::SimulationProgress) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(
                Some(u64::from(p.trials)),
                ProgressDrawTarget::stderr(),
            );
            let style = ProgressStyle::with_template(
                "simulating [{bar:40}] {pos}/{len} trials ({percent}%, {eta} left)",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        bar.set_length(u64::from(p.trials));
        bar.set_position(u64::from(p.trials_done));
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn finish(&mut self, trials: u64) {
        self.clear();
        eprintln!("{trials} trials done");
    }
}

// ---- the overlay ---------------------------------------------------------------------------

/// The overlay in `path`: proposed decisions and their steps, as the reference plan writes
/// commands (a bare array, entries with `as`, or a whole `{"entries": [...]}` file).
pub fn read_overlay(path: &Path, flag: &str) -> Result<Vec<v1::OverlayDecision>, CliError> {
    let bad = |why: String| CliError::invalid_input(format!("{flag} {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let commands = overlay_commands(value).map_err(bad)?;
    if commands.is_empty() {
        return Err(bad("the overlay holds no decisions".to_owned()));
    }
    overlay_to_proto(&commands).map_err(bad)
}

/// The commands of an overlay document.
fn overlay_commands(value: Value) -> Result<Vec<Command>, String> {
    let entries = match value {
        Value::Array(entries) => entries,
        Value::Object(mut doc) => match doc.remove("entries") {
            Some(Value::Array(entries)) => entries,
            _ => return Err("expected a JSON array of commands".to_owned()),
        },
        _ => return Err("expected a JSON array of commands".to_owned()),
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut entry)| {
            // The reference plan's form: {"as": TEAM, "command": {...}}.
            if entry.get("command").is_some_and(Value::is_object)
                && let Some(inner) = entry.get_mut("command").map(Value::take)
            {
                entry = inner;
            }
            serde_json::from_value(entry).map_err(|e| format!("entry {i}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn overlays_read_bare_commands_and_reference_entries() {
        let bare = json!([
            { "command": "propose_decision", "decision_id": "cut", "title": "Cut",
              "rationale": "r", "effective_date": "2028-01-01", "required_sides": ["us"] },
            { "command": "plan_step", "decision_id": "cut", "step": "withdraw_element",
              "element_id": "2cab", "on": "2028-01-01" },
        ]);
        let entries = json!({ "entries": [
            { "as": "us-force-planning", "command": bare[0] },
            { "as": "us-force-planning", "command": bare[1] },
        ]});
        let a = overlay_commands(bare).unwrap();
        let b = overlay_commands(entries).unwrap();
        assert_eq!(a, b);
        let overlay = overlay_to_proto(&a).unwrap();
        assert_eq!(overlay.len(), 1);
        assert_eq!(overlay[0].steps.len(), 1);
        assert!(overlay_commands(json!({ "command": "x" })).is_err());
        let err = overlay_commands(json!([{ "command": "plan_step" }])).unwrap_err();
        assert!(err.starts_with("entry 0:"), "{err}");
    }

    #[test]
    fn the_example_overlay_is_sent_as_step_messages() {
        use v1::overlay_step::Step as S;
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/simulation-overlay-example.json");
        let overlay = read_overlay(&example, "--overlay").unwrap();
        assert_eq!(overlay.len(), 1);
        let steps: Vec<&S> = overlay[0]
            .steps
            .iter()
            .map(|s| s.step.as_ref().unwrap())
            .collect();
        assert!(
            matches!(
                steps[..],
                [S::AddForceElement(_), S::AssignMission(mission)]
                    if mission.lead == v1::Side::Rok as i32
                        && mission.supporting == v1::Side::Us as i32
            ),
            "{steps:?}"
        );
    }

    #[test]
    fn simulate_arguments_parse() {
        use clap::Parser;
        let parse = |line: &str| {
            crate::cli::Cli::try_parse_from(
                ["alliancectl"].into_iter().chain(line.split_whitespace()),
            )
        };
        let plan = "019a0000-0000-7000-8000-000000000001";
        let cli = parse(&format!(
            "simulate {plan} --at 12 --what-if --trials 500 --seed 7 --start 2027-01-01 \
             --months 24 --compare-at 2025-01-01T00:00:00Z --output table"
        ))
        .unwrap();
        let crate::cli::Cmd::Simulate(a) = &cli.command else {
            panic!("not simulate");
        };
        assert_eq!(cli.output, Format::Text);
        assert_eq!(
            a.at.and_then(|r| r.point),
            Some(v1::record_point::Point::Version(12))
        );
        assert!(a.what_if && a.compare.requested());
        assert_eq!((a.trials, a.seed, a.months), (Some(500), Some(7), Some(24)));
        let cli = parse(&format!("simulate {plan}")).unwrap();
        let crate::cli::Cmd::Simulate(a) = &cli.command else {
            panic!("not simulate");
        };
        assert!(!a.compare.requested());
        for bad in [
            format!("simulate {plan} --trials 0"),
            format!("simulate {plan} --at yesterday"),
            format!("simulate {plan} --start 2027-02-30"),
            "simulate opcon".to_owned(),
            "simulation get not-a-uuid".to_owned(),
        ] {
            assert_eq!(parse(&bad).err().map(|e| e.exit_code()), Some(2), "{bad}");
        }
    }
}
