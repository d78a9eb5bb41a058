//! `plot`: chart a plan's posture month by month (drawn by `chart::posture`).

use alliance_domain::Date;
use alliance_proto::convert::date_to_proto;
use alliance_proto::v1;
use clap::Args;
use serde_json::json;
use uuid::Uuid;

use super::flags::record_point;
use crate::chart::posture::{Chart, header, period, render, write};
use crate::errors::CliError;
use crate::output::{Format, Reply};
use crate::parse;
use crate::session::{Session, ask};

#[derive(Args)]
pub(crate) struct PlotArgs {
    /// The plan to chart.
    #[arg(long, alias = "plan", env = "ALLIANCE_PLAN")]
    pub(crate) plan_id: Uuid,
    /// The first date (YYYY-MM-DD), then one point a month (default: the start of the plan's
    /// horizon).
    #[arg(long, value_parser = parse::date)]
    pub(crate) from: Option<Date>,
    /// The last date (YYYY-MM-DD; default: the end of the plan's horizon).
    #[arg(long, value_parser = parse::date)]
    pub(crate) to: Option<Date>,
    /// Chart the plan as it stood at this version.
    #[arg(
        long,
        value_name = "VERSION",
        alias = "as-of-version",
        conflicts_with = "record_time"
    )]
    pub(crate) record_version: Option<u64>,
    /// Chart the plan as recorded at this instant (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", alias = "as-recorded", value_parser = parse::instant)]
    pub(crate) record_time: Option<prost_types::Timestamp>,
    /// Also apply the proposed (not yet adopted) decisions, and mark them.
    #[arg(long)]
    pub(crate) what_if: bool,
    /// Where to write the chart: STEM.svg and STEM.png.
    #[arg(long, value_name = "PATH_STEM", default_value = "posture")]
    pub(crate) out: std::path::PathBuf,
    /// Simulation model data (e.g. deploy/simulation-model.toml): draw each area's required
    /// level beside the ROK levels.
    #[arg(long, value_name = "FILE")]
    pub(crate) model: Option<std::path::PathBuf>,
}

/// Runs `alliancectl plot`: reads the plan, its monthly posture and its decisions, draws the
/// chart, writes `STEM.svg` and `STEM.png` and prints their paths. Nothing is written unless
/// every read and the drawing succeeded.
pub(super) async fn run(
    s: &mut Session,
    args: &PlotArgs,
    format: Format,
) -> Result<Reply, CliError> {
    check_args(args)?;
    let plan_id = args.plan_id.to_string();
    let request = v1::GetPlanRequest {
        plan_id: plan_id.clone(),
    };
    let plan = ask!(s, client.get_plan, request)?;
    let period = period(args.from, args.to, &plan)?;
    // Read your writes: the read model answers once it reflects the plan version just read.
    let min_version = plan.head.as_ref().map_or(0, |h| h.version);
    let record = record_point(args.record_version, args.record_time.as_ref());
    // The posture once a month over the period, on the day of the month of its start.
    let (from, to) = (Some(date_to_proto(period.0)), Some(date_to_proto(period.1)));
    let series = v1::GetPostureSeriesRequest {
        plan_id: plan_id.clone(),
        from,
        to,
        step: v1::SeriesStep::Month as i32,
        record,
        include_proposed: args.what_if,
        min_version,
    };
    let points = ask!(s, queries.get_posture_series, series)?.points;
    // Every decision of the plan, whatever its status.
    let decisions = v1::ListDecisionsRequest {
        plan_id: plan_id.clone(),
        record,
        min_version,
        ..Default::default()
    };
    let decisions = ask!(s, queries.list_decisions, decisions)?.decisions;
    // The plan's findings over the period, as the chart views it.
    let findings = v1::GetFindingsRequest {
        plan_id,
        from,
        to,
        record,
        include_proposed: args.what_if,
        min_version,
    };
    let findings = ask!(s, queries.get_findings, findings)?.findings;
    let chart = Chart::new(
        header(&plan, args, period, &points),
        &points,
        &decisions,
        &findings,
        args.what_if,
    )
    .with_required(required_levels(args.model.as_deref())?);
    let (svg, png) = render(&chart)?;
    let (svg_path, png_path) = write(&args.out, &svg, &png)?;
    let (svg_path, png_path) = (svg_path.display(), png_path.display());
    match format {
        Format::Text => println!("{svg_path}\n{png_path}"),
        Format::Json => println!(
            "{}",
            json!({ "svg": svg_path.to_string(), "png": png_path.to_string() })
        ),
    }
    Ok(Reply::Streamed)
}

/// Usage errors caught before anything is sent.
fn check_args(args: &PlotArgs) -> Result<(), CliError> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        return Err(CliError::invalid_input(format!(
            "--from {from} is after --to {to}"
        )));
    }
    if args.out.file_name().is_none() || args.out.as_os_str().to_string_lossy().ends_with('/') {
        return Err(CliError::invalid_input(format!(
            "--out {:?}: expected a path stem such as docs/posture (.svg and .png are added)",
            args.out
        )));
    }
    Ok(())
}

/// The required level of each area in a simulation model file (`[areas.NAME] required`).
fn required_levels(
    model: Option<&std::path::Path>,
) -> Result<std::collections::BTreeMap<alliance_domain::CapabilityArea, f64>, CliError> {
    #[derive(serde::Deserialize)]
    struct Area {
        required: f64,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        areas: std::collections::BTreeMap<alliance_domain::CapabilityArea, Area>,
    }
    let Some(path) = model else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::invalid_input(format!("--model: cannot read {}: {e}", path.display()))
    })?;
    let model: Model = toml::from_str(&text)
        .map_err(|e| CliError::invalid_input(format!("--model: {}: {e}", path.display())))?;
    Ok(model
        .areas
        .into_iter()
        .map(|(area, a)| (area, a.required))
        .collect())
}
