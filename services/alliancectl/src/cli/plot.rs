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
use crate::session::{Session, within};

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
    let plan = get_plan(s, args).await?;
    let period = period(args.from, args.to, &plan)?;
    // Read your writes: the read model answers once it reflects the plan version just read.
    let min_version = plan.head.as_ref().map_or(0, |h| h.version);
    let points = get_series(s, args, period, min_version).await?;
    let decisions = get_decisions(s, args, min_version).await?;
    let findings = get_findings(s, args, period, min_version).await?;
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

async fn get_plan(s: &mut Session, args: &PlotArgs) -> Result<v1::PlanSummary, CliError> {
    let request = s.request(v1::GetPlanRequest {
        plan_id: args.plan_id.to_string(),
    });
    within(s.timeout, s.client.get_plan(request))
        .await
        .map_err(|status| s.failure(&status, None))
}

/// The posture once a month over the period, on the day of the month of `from`.
async fn get_series(
    s: &mut Session,
    args: &PlotArgs,
    (from, to): (Date, Date),
    min_version: u64,
) -> Result<Vec<v1::Posture>, CliError> {
    let request = s.request(v1::GetPostureSeriesRequest {
        plan_id: args.plan_id.to_string(),
        from: Some(date_to_proto(from)),
        to: Some(date_to_proto(to)),
        step: v1::SeriesStep::Month as i32,
        record: record_point(args.record_version, args.record_time.as_ref()),
        include_proposed: args.what_if,
        min_version,
    });
    within(s.timeout, s.queries.get_posture_series(request))
        .await
        .map(|series| series.points)
        .map_err(|status| s.failure(&status, None))
}

/// Every decision of the plan, whatever its status.
async fn get_decisions(
    s: &mut Session,
    args: &PlotArgs,
    min_version: u64,
) -> Result<Vec<v1::DecisionView>, CliError> {
    let request = s.request(v1::ListDecisionsRequest {
        plan_id: args.plan_id.to_string(),
        record: record_point(args.record_version, args.record_time.as_ref()),
        min_version,
        ..Default::default()
    });
    within(s.timeout, s.queries.list_decisions(request))
        .await
        .map(|reply| reply.decisions)
        .map_err(|status| s.failure(&status, None))
}

/// The plan's findings over the period, as the chart views it.
async fn get_findings(
    s: &mut Session,
    args: &PlotArgs,
    (from, to): (Date, Date),
    min_version: u64,
) -> Result<Vec<v1::Finding>, CliError> {
    let request = s.request(v1::GetFindingsRequest {
        plan_id: args.plan_id.to_string(),
        from: Some(date_to_proto(from)),
        to: Some(date_to_proto(to)),
        record: record_point(args.record_version, args.record_time.as_ref()),
        include_proposed: args.what_if,
        min_version,
    });
    within(s.timeout, s.queries.get_findings(request))
        .await
        .map(|report| report.findings)
        .map_err(|status| s.failure(&status, None))
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
