//! `alliancectl plot`: one chart of a plan over a period, one point a month. Above, U.S.
//! personnel by element kind (stacked areas); below, ROK capability level (0–100) by area
//! (lines). Both panels mark the decisions at their effective dates and highlight the wartime
//! OPCON transfer to the ROK. The same chart is drawn as SVG and as PNG; the PNG's text uses an
//! embedded font (DejaVu Sans), so no system font or font library is needed.
//!
//! The data comes from the service only: `PlanCommands/GetPlan` (name, horizon and current
//! version), `PostureQueries/GetPostureSeries` (one point a month) and
//! `PostureQueries/ListDecisions` (statuses and effective dates).

use std::collections::{BTreeMap, BTreeSet};
use std::iter::once;
use std::path::{Path, PathBuf};

use alliance_domain::{CapabilityArea, Date, DecisionStatus, ElementKind, Side};
use alliance_proto::convert::{
    area_from_proto, date_from_proto, decision_status_from_proto, kind_from_proto, side_from_proto,
};
use alliance_proto::v1;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    Draw, DrawResult, Entry, Frame, OPCON_COLOR, Panel, Swatch, YearAxis, area_color, area_label,
    beside, draw_legend, failure, mesh, nice_ceiling, opcon_style, panel, render_png, render_svg,
    text_style, thousands, ticks, whole, year_fraction,
};
use crate::cli::PlotArgs;
use crate::errors::CliError;

/// Width and height of the chart in pixels: the PNG's size and the SVG's viewport.
pub const SIZE: (u32, u32) = (1200, 900);
/// Height of the title block above the two panels.
const HEADER_HEIGHT: u32 = 64;
/// Width of the legend column right of each panel.
const LEGEND_WIDTH: u32 = 250;
/// The on-chart label of a wartime OPCON transfer.
const OPCON_LABEL: &str = "Wartime OPCON to ROK";

const DECISION_COLOR: RGBColor = RGBColor(110, 110, 110);
/// Findings: where the plan breaks its own prerequisites, conditions or constraints.
const FINDING_COLOR: RGBColor = RGBColor(200, 30, 30);

/// The period to chart: `--from`/`--to`, each defaulting to the plan's horizon.
pub(crate) fn period(
    from: Option<Date>,
    to: Option<Date>,
    plan: &v1::PlanSummary,
) -> Result<(Date, Date), CliError> {
    let horizon = |d: Option<&v1::Date>, flag: &str| {
        d.and_then(date_from_proto).ok_or_else(|| {
            CliError::invalid_input(format!("{flag}: the plan has no horizon; pass {flag}"))
        })
    };
    let (from_text, to_text) = (
        if from.is_some() {
            "--from"
        } else {
            "the plan's horizon start"
        },
        if to.is_some() {
            "--to"
        } else {
            "the plan's horizon end"
        },
    );
    let from = from.map_or_else(|| horizon(plan.horizon_start.as_ref(), "--from"), Ok)?;
    let to = to.map_or_else(|| horizon(plan.horizon_end.as_ref(), "--to"), Ok)?;
    if from > to {
        return Err(CliError::invalid_input(format!(
            "{from_text} {from} is after {to_text} {to}"
        )));
    }
    Ok((from, to))
}

/// The title lines: the plan's name, then what is shown and as of when.
pub(crate) fn header(
    plan: &v1::PlanSummary,
    args: &PlotArgs,
    (from, to): (Date, Date),
    points: &[v1::Posture],
) -> [String; 2] {
    let name = plan.head.as_ref().map_or("", |h| h.name.as_str());
    let version = points.first().map_or(0, |p| p.version);
    let mut subtitle = format!(
        "U.S. personnel and ROK capability, {from} to {to}, one point a month; plan version {version}"
    );
    if args.record_version.is_none()
        && let Some(time) = &args.record_time
    {
        let at = chrono::DateTime::from_timestamp(time.seconds, 0)
            .map_or_else(|| time.seconds.to_string(), |t| t.to_rfc3339());
        subtitle.push_str(&format!(" as recorded at {at}"));
    }
    if args.what_if {
        subtitle.push_str("; what-if: proposed decisions applied");
    }
    [name.to_owned(), subtitle]
}

// ---- the chart's data ----------------------------------------------------------------------

/// How a decision is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MarkerKind {
    /// Wartime OPCON passes to the ROK: highlighted and labelled.
    OpconTransfer,
    /// An adopted decision's effective date.
    Adopted,
    /// A proposed decision's effective date (what-if charts only).
    Proposed,
}

/// A vertical line on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Marker {
    date: Date,
    kind: MarkerKind,
    /// The decision behind it, when known.
    decision: Option<String>,
    /// Whether `date` is the exact date (not the first monthly point that shows the change).
    exact: bool,
}

/// What the chart shows, taken from the replies.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chart {
    header: [String; 2],
    dates: Vec<Date>,
    /// U.S. personnel per element kind, one value per point; only kinds present at some point.
    personnel: BTreeMap<ElementKind, Vec<u32>>,
    /// ROK capability level per area, one value per point (`None` before the first record).
    capability: BTreeMap<CapabilityArea, Vec<Option<u32>>>,
    markers: Vec<Marker>,
    /// Where the plan breaks its own rules: (first date, end if known, finding id).
    findings: Vec<(Date, Option<Date>, String)>,
    /// Decisions a transfer-conditions finding names: their transfer is drawn dashed.
    unmet_transfers: BTreeSet<String>,
    /// The required level per area at the start of the simulation window (model data), drawn
    /// beside the ROK levels.
    required: BTreeMap<CapabilityArea, f64>,
}

impl Chart {
    pub(crate) fn new(
        header: [String; 2],
        points: &[v1::Posture],
        decisions: &[v1::DecisionView],
        findings: &[v1::Finding],
        what_if: bool,
    ) -> Chart {
        let dates: Vec<Date> = points
            .iter()
            .filter_map(|p| p.valid_on.as_ref().and_then(date_from_proto))
            .collect();
        let mut personnel: BTreeMap<ElementKind, Vec<u32>> = BTreeMap::new();
        let mut capability: BTreeMap<CapabilityArea, Vec<Option<u32>>> = BTreeMap::new();
        for (i, point) in points.iter().enumerate() {
            for count in &point.personnel {
                if side_from_proto(count.side) == Some(Side::Us)
                    && let Some(kind) = kind_from_proto(count.kind)
                {
                    let total = &mut personnel
                        .entry(kind)
                        .or_insert_with(|| vec![0; points.len()])[i];
                    *total = total.saturating_add(count.personnel);
                }
            }
            for level in &point.capability {
                if side_from_proto(level.side) == Some(Side::Rok)
                    && let Some(area) = area_from_proto(level.area)
                {
                    capability
                        .entry(area)
                        .or_insert_with(|| vec![None; points.len()])[i] = Some(level.level);
                }
            }
        }
        personnel.retain(|_, values| values.iter().any(|v| *v > 0));
        let period = (dates.first().copied(), dates.last().copied());
        let markers = match period {
            (Some(from), Some(to)) => markers(points, decisions, (from, to), what_if),
            _ => Vec::new(),
        };
        let unmet_transfers = findings
            .iter()
            .filter(|f| f.kind == v1::FindingKind::TransferConditions as i32)
            .flat_map(|f| f.decision_ids.iter().cloned())
            .collect();
        let findings = findings
            .iter()
            .filter_map(|f| {
                let from = f.from.as_ref().and_then(date_from_proto)?;
                let until = f.until.as_ref().and_then(date_from_proto);
                Some((from, until, f.id.clone()))
            })
            .collect();
        Chart {
            header,
            dates,
            personnel,
            capability,
            markers,
            findings,
            unmet_transfers,
            required: BTreeMap::new(),
        }
    }

    /// The required level of each area, drawn dotted in the area's colour.
    pub(crate) fn with_required(mut self, required: BTreeMap<CapabilityArea, f64>) -> Chart {
        self.required = required;
        self
    }

    /// The highest U.S. total at any point.
    fn max_personnel(&self) -> u32 {
        (0..self.dates.len())
            .map(|i| {
                self.personnel
                    .values()
                    .map(|v| v[i])
                    .fold(0, u32::saturating_add)
            })
            .max()
            .unwrap_or(0)
    }

    /// The x coordinate of each point.
    fn xs(&self) -> Vec<f64> {
        self.dates.iter().map(|d| year_fraction(*d)).collect()
    }

    /// The x axis: the period in fractional years, with ticks on whole years (or months).
    fn x_axis(&self) -> YearAxis {
        let xs = self.xs();
        let start = xs.first().copied().unwrap_or(2000.0);
        let end = xs.last().copied().unwrap_or(start).max(start + 1.0 / 12.0);
        YearAxis {
            start,
            end,
            ticks: ticks(start, end),
        }
    }
}

fn wartime_opcon(point: &v1::Posture) -> Option<Side> {
    point
        .command
        .as_ref()
        .and_then(|c| side_from_proto(c.wartime_opcon))
}

/// The decisions to mark: each time wartime OPCON passes to the ROK between two points, and
/// the effective date of every other decision that shapes the chart (adopted ones, and the
/// proposed ones of a what-if chart) within the period.
fn markers(
    points: &[v1::Posture],
    decisions: &[v1::DecisionView],
    (from, to): (Date, Date),
    what_if: bool,
) -> Vec<Marker> {
    let effective: BTreeMap<&str, Date> = decisions
        .iter()
        .filter_map(|d| {
            let date = d.effective_date.as_ref().and_then(date_from_proto)?;
            Some((d.decision_id.as_str(), date))
        })
        .collect();
    let mut out = Vec::new();
    let mut transfers = BTreeSet::new();
    for pair in points.windows(2) {
        let [before, after] = pair else { continue };
        if wartime_opcon(before) == Some(Side::Rok) || wartime_opcon(after) != Some(Side::Rok) {
            continue;
        }
        let (Some(previous), Some(on)) = (
            before.valid_on.as_ref().and_then(date_from_proto),
            after.valid_on.as_ref().and_then(date_from_proto),
        ) else {
            continue;
        };
        // The decisions whose first step took effect since the previous point; the transfer is
        // one of them, most likely the one that also takes effect in that month.
        let new: Vec<&str> = after
            .decision_ids
            .iter()
            .filter(|id| !before.decision_ids.contains(id))
            .map(String::as_str)
            .collect();
        let in_month = |id: &str| {
            effective
                .get(id)
                .copied()
                .filter(|d| previous < *d && *d <= on)
        };
        let decision = new
            .iter()
            .copied()
            .find(|id| in_month(id).is_some())
            .or(new.first().copied());
        let exact = decision.and_then(in_month);
        transfers.extend(decision);
        out.push(Marker {
            date: exact.unwrap_or(on),
            kind: MarkerKind::OpconTransfer,
            decision: decision.map(str::to_owned),
            exact: exact.is_some(),
        });
    }
    for d in decisions {
        let kind = match decision_status_from_proto(d.status) {
            Some(DecisionStatus::Adopted) => MarkerKind::Adopted,
            Some(DecisionStatus::Proposed) if what_if => MarkerKind::Proposed,
            _ => continue,
        };
        let Some(&date) = effective.get(d.decision_id.as_str()) else {
            continue;
        };
        if from <= date && date <= to && !transfers.contains(d.decision_id.as_str()) {
            out.push(Marker {
                date,
                kind,
                decision: Some(d.decision_id.clone()),
                exact: true,
            });
        }
    }
    out.sort_by_key(|m| (m.date, m.kind == MarkerKind::OpconTransfer));
    out
}

fn kind_label(kind: ElementKind) -> &'static str {
    match kind {
        ElementKind::GroundCombatBrigade => "Ground combat brigades",
        ElementKind::CombatAviation => "Combat aviation",
        ElementKind::FieldArtillery => "Field artillery",
        ElementKind::AirDefense => "Air defense",
        ElementKind::Thaad => "THAAD",
        ElementKind::FighterSquadron => "Fighter squadrons",
        ElementKind::Isr => "ISR",
        ElementKind::Logistics => "Logistics",
        ElementKind::Medical => "Medical",
        ElementKind::SignalC2 => "Signal and C2",
        ElementKind::Headquarters => "Headquarters",
        ElementKind::StrategicEnabler => "Strategic enablers",
    }
}

fn kind_color(kind: ElementKind) -> RGBColor {
    match kind {
        ElementKind::GroundCombatBrigade => RGBColor(78, 121, 167),
        ElementKind::CombatAviation => RGBColor(160, 203, 232),
        ElementKind::FieldArtillery => RGBColor(242, 142, 43),
        ElementKind::AirDefense => RGBColor(255, 190, 125),
        ElementKind::Thaad => RGBColor(89, 161, 79),
        ElementKind::FighterSquadron => RGBColor(140, 209, 125),
        ElementKind::Isr => RGBColor(182, 153, 45),
        ElementKind::Logistics => RGBColor(241, 206, 99),
        ElementKind::Medical => RGBColor(73, 152, 148),
        ElementKind::SignalC2 => RGBColor(134, 188, 182),
        ElementKind::Headquarters => RGBColor(211, 114, 149),
        ElementKind::StrategicEnabler => RGBColor(157, 118, 96),
    }
}

// ---- drawing -------------------------------------------------------------------------------

/// Draws the chart as an SVG document and as PNG bytes, [`SIZE`] pixels each.
pub(crate) fn render(chart: &Chart) -> Result<(String, Vec<u8>), CliError> {
    Ok((render_svg(chart, SIZE)?, render_png(chart, SIZE)?))
}

impl Draw for Chart {
    const HEADER_HEIGHT: u32 = HEADER_HEIGHT;

    fn header(&self) -> Vec<(&str, i32, TextStyle<'static>)> {
        let [title, subtitle] = &self.header;
        vec![
            (title, 10, text_style(24, true)),
            (subtitle, 40, text_style(15, false)),
        ]
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let top_height = body.dim_in_pixel().1 * 11 / 20;
        let (top, bottom) = body.split_vertically(top_height);
        let (top_plot, top_legend) = top.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let (bottom_plot, bottom_legend) = bottom.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        draw_personnel(&top_plot, self)?;
        draw_capability(&bottom_plot, self)?;
        // Listed top to bottom as they are stacked.
        let kinds: Vec<Entry> = self
            .personnel
            .keys()
            .rev()
            .map(|k| Entry::new(kind_label(*k), Swatch::Fill(kind_color(*k))))
            .collect();
        draw_legend(&top_legend, "U.S. element kinds", &kinds)?;
        let mut areas: Vec<Entry> = self
            .capability
            .keys()
            .map(|a| Entry::new(area_label(*a), Swatch::Line(area_color(*a), 2)))
            .collect();
        if !self.required.is_empty() {
            areas.push(Entry::new(
                "Required level (model), dotted",
                Swatch::Dashed(DECISION_COLOR),
            ));
        }
        let mut decisions = marker_entries(&self.markers);
        decisions.extend(finding_entries(self));
        if !decisions.is_empty() {
            areas.push(Entry::new("Decisions", Swatch::Heading));
            areas.extend(decisions);
        }
        draw_legend(&bottom_legend, "ROK capability areas", &areas)
    }
}

/// The frame of this chart's two panels.
const FRAME: Frame = Frame {
    margin: 6,
    margin_left: 10,
    margin_right: 20,
    caption: 17,
    x_label_area: 40,
    y_label_area: 80,
};

fn draw_personnel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> DrawResult<DB> {
    // Headroom above the highest total for the OPCON label.
    let top = nice_ceiling(f64::from(chart.max_personnel()) * 1.2);
    let caption = "U.S. personnel by element kind (stacked)";
    let mut c = panel(area, &FRAME, chart.x_axis(), caption, top)?;
    mesh(&mut c, &thousands, 6, 14)
        .y_desc("Personnel")
        .axis_desc_style(text_style(15, false))
        .draw()?;
    let xs = chart.xs();
    let mut lower = vec![0.0; xs.len()];
    for (kind, values) in &chart.personnel {
        let upper: Vec<f64> = lower
            .iter()
            .zip(values)
            .map(|(l, v)| l + f64::from(*v))
            .collect();
        let color = kind_color(*kind);
        let edge: Vec<(f64, f64)> = xs.iter().copied().zip(upper.iter().copied()).collect();
        let band: Vec<(f64, f64)> = edge
            .iter()
            .copied()
            .chain(xs.iter().copied().zip(lower.iter().copied()).rev())
            .collect();
        c.draw_series(once(Polygon::new(band, color.mix(0.9).filled())))?;
        c.draw_series(once(PathElement::new(edge, WHITE.stroke_width(1))))?;
        lower = upper;
    }
    if chart.personnel.is_empty() {
        note(&c, "No U.S. force elements in this period", top)?;
    }
    draw_findings(&mut c, chart, top)?;
    draw_markers(&mut c, chart, top, true)
}

/// Each finding as a translucent band over the dates it holds, named at its top.
fn draw_findings<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    chart: &Chart,
    top: f64,
) -> DrawResult<DB> {
    let (x0, x1) = (c.x_range().start, c.x_range().end);
    for (row, (from, until, id)) in chart.findings.iter().enumerate() {
        let start = year_fraction(*from).max(x0);
        let end = until.map_or(x1, year_fraction).min(x1);
        if start >= end {
            continue;
        }
        c.draw_series(once(Rectangle::new(
            [(start, 0.0), (end, top)],
            FINDING_COLOR.mix(0.12).filled(),
        )))?;
        let y = top * (0.97 - 0.05 * (row % 4) as f64);
        let style = text_style(12, false)
            .color(&FINDING_COLOR)
            .pos(Pos::new(HPos::Left, VPos::Top));
        c.draw_series(once(Text::new(id.clone(), (start, y), style)))?;
    }
    Ok(())
}

fn draw_capability<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> DrawResult<DB> {
    let top = 100.0;
    let caption = "ROK capability level (0-100) by area";
    let mut c = panel(area, &FRAME, chart.x_axis(), caption, top)?;
    mesh(&mut c, &whole, 6, 14)
        .x_desc("Year")
        .y_desc("Capability level")
        .axis_desc_style(text_style(15, false))
        .draw()?;
    let xs = chart.xs();
    for (area, values) in &chart.capability {
        let style = area_color(*area).stroke_width(2);
        // One line per stretch of recorded values.
        let mut run: Vec<(f64, f64)> = Vec::new();
        for (x, v) in xs.iter().zip(values) {
            match v {
                Some(v) => run.push((*x, f64::from(*v))),
                None if !run.is_empty() => {
                    c.draw_series(once(PathElement::new(std::mem::take(&mut run), style)))?;
                }
                None => {}
            }
        }
        if !run.is_empty() {
            c.draw_series(once(PathElement::new(run, style)))?;
        }
    }
    let (x0, x1) = (c.x_range().start, c.x_range().end);
    for (area, level) in &chart.required {
        if chart.capability.contains_key(area) {
            let style = area_color(*area).mix(0.8).stroke_width(1);
            c.draw_series(DashedLineSeries::new(
                vec![(x0, *level), (x1, *level)],
                2,
                4,
                style,
            ))?;
        }
    }
    if chart.capability.is_empty() {
        note(&c, "No ROK capability recorded in this period", top)?;
    }
    draw_markers(&mut c, chart, top, false)
}

/// A line of text in the middle of an empty panel.
fn note<DB: DrawingBackend>(c: &Panel<'_, DB>, text: &str, top: f64) -> DrawResult<DB> {
    let (x0, x1) = (c.x_range().start, c.x_range().end);
    let style = text_style(15, false).pos(Pos::new(HPos::Center, VPos::Center));
    c.plotting_area()
        .draw(&Text::new(text, ((x0 + x1) / 2.0, top / 2.0), style))
}

/// The decision markers, the OPCON transfer last (on top); labelled in the upper panel.
fn draw_markers<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    chart: &Chart,
    top: f64,
    labelled: bool,
) -> DrawResult<DB> {
    let mut markers: Vec<&Marker> = chart.markers.iter().collect();
    markers.sort_by_key(|m| (m.kind == MarkerKind::OpconTransfer, m.date));
    // Decisions effective on the same date share one line.
    markers.dedup_by_key(|m| (m.kind, m.date));
    for m in markers {
        let x = year_fraction(m.date);
        let line = vec![(x, 0.0), (x, top)];
        match m.kind {
            MarkerKind::Adopted => {
                c.draw_series(once(PathElement::new(line, DECISION_COLOR.mix(0.55))))?;
            }
            MarkerKind::Proposed => {
                let style = DECISION_COLOR.mix(0.55).stroke_width(1);
                c.draw_series(DashedLineSeries::new(line, 6, 4, style))?;
                if labelled {
                    proposal_label(c, chart, m, (x, top))?;
                }
            }
            MarkerKind::OpconTransfer => {
                let unmet = m
                    .decision
                    .as_ref()
                    .is_some_and(|d| chart.unmet_transfers.contains(d));
                if unmet {
                    let style = OPCON_COLOR.stroke_width(3);
                    c.draw_series(DashedLineSeries::new(line, 10, 6, style))?;
                } else {
                    c.draw_series(once(PathElement::new(line, OPCON_COLOR.stroke_width(3))))?;
                }
                if labelled {
                    opcon_label(c, m, (x, top))?;
                }
            }
        }
    }
    Ok(())
}

/// The decisions proposed for one date, named down their dashed line.
fn proposal_label<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    chart: &Chart,
    m: &Marker,
    at: (f64, f64),
) -> DrawResult<DB> {
    let ids: Vec<&str> = chart
        .markers
        .iter()
        .filter(|o| o.kind == MarkerKind::Proposed && o.date == m.date)
        .filter_map(|o| o.decision.as_deref())
        .collect();
    let style = text_style(11, false)
        .color(&DECISION_COLOR)
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    c.draw_series(once(Text::new(ids.join(", "), (at.0, at.1 * 0.55), style)))?;
    Ok(())
}

/// The label of an OPCON transfer beside its marker at `at`: what, then when and by which
/// decision; right of the line, or left of it near the end of the period.
fn opcon_label<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    m: &Marker,
    at: (f64, f64),
) -> DrawResult<DB> {
    let (dx, h) = beside(c, at.0, 7);
    let when = if m.exact {
        m.date.to_string()
    } else {
        format!("by {}", m.date)
    };
    let detail = match &m.decision {
        Some(id) => format!("{when} ({id})"),
        None => when,
    };
    let label = EmptyElement::at(at)
        + Text::new(OPCON_LABEL.to_owned(), (dx, 6), opcon_style(15, h))
        + Text::new(
            detail,
            (dx, 26),
            text_style(13, false).pos(Pos::new(h, VPos::Top)),
        );
    c.draw_series(once(label))?;
    Ok(())
}

/// The legend rows of the kinds of markers on the chart.
fn marker_entries(markers: &[Marker]) -> Vec<Entry> {
    let has = |kind| markers.iter().any(|m| m.kind == kind);
    let mut entries = Vec::new();
    if has(MarkerKind::OpconTransfer) {
        entries.push(Entry::new(OPCON_LABEL, Swatch::Line(OPCON_COLOR, 3)));
    }
    if has(MarkerKind::Adopted) {
        entries.push(Entry::new(
            "Adopted decision",
            Swatch::Line(DECISION_COLOR, 1),
        ));
    }
    if has(MarkerKind::Proposed) {
        entries.push(Entry::new(
            "Proposed decision",
            Swatch::Dashed(DECISION_COLOR),
        ));
    }
    entries
}

/// The legend rows of the findings, if any.
fn finding_entries(chart: &Chart) -> Vec<Entry> {
    let mut entries = Vec::new();
    if !chart.findings.is_empty() {
        entries.push(Entry::new(
            "Finding (alliancectl findings)",
            Swatch::Fill(FINDING_COLOR),
        ));
    }
    if !chart.unmet_transfers.is_empty() {
        entries.push(Entry::new(
            "Transfer before its conditions",
            Swatch::Dashed(OPCON_COLOR),
        ));
    }
    entries
}

// ---- files ---------------------------------------------------------------------------------

/// `stem` with `.extension` appended (not replacing any dot already in it).
fn with_extension(stem: &Path, extension: &str) -> PathBuf {
    let mut path = stem.as_os_str().to_owned();
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}

/// Writes both files; on failure neither is left behind.
pub(crate) fn write(stem: &Path, svg: &str, png: &[u8]) -> Result<(PathBuf, PathBuf), CliError> {
    let svg_path = with_extension(stem, "svg");
    let png_path = with_extension(stem, "png");
    let cannot =
        |path: &Path, e: std::io::Error| failure(format!("cannot write {}: {e}", path.display()));
    std::fs::write(&svg_path, svg).map_err(|e| cannot(&svg_path, e))?;
    if let Err(e) = std::fs::write(&png_path, png) {
        let _ = std::fs::remove_file(&svg_path);
        return Err(cannot(&png_path, e));
    }
    Ok((svg_path, png_path))
}

#[cfg(test)]
mod tests {
    use alliance_proto::convert::date_to_proto;

    use super::*;
    use crate::errors::Exit;

    fn d(s: &str) -> Date {
        crate::parse::date(s).unwrap()
    }

    /// A monthly point: its date, who holds wartime OPCON and the decisions in effect.
    fn point(on: &str, wartime: Side, decisions: &[&str]) -> v1::Posture {
        v1::Posture {
            valid_on: Some(date_to_proto(d(on))),
            command: Some(v1::CommandArrangementState {
                wartime_opcon: alliance_proto::convert::side_to_proto(wartime),
                ..Default::default()
            }),
            decision_ids: decisions.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn decision(id: &str, effective: &str, status: DecisionStatus) -> v1::DecisionView {
        v1::DecisionView {
            decision_id: id.to_owned(),
            effective_date: Some(date_to_proto(d(effective))),
            status: alliance_proto::convert::decision_status_to_proto(status),
            ..Default::default()
        }
    }

    #[test]
    fn the_opcon_transfer_is_the_decision_that_hands_wartime_opcon_to_the_rok() {
        let points = [
            point("2028-10-01", Side::Us, &["cut"]),
            point("2028-11-01", Side::Us, &["cut"]),
            // Two decisions took effect in the month; the transfer is the one dated in it.
            point("2028-12-01", Side::Rok, &["cut", "opcon", "talks"]),
            point("2029-01-01", Side::Rok, &["cut", "opcon", "talks"]),
        ];
        let decisions = [
            decision("cut", "2028-10-15", DecisionStatus::Adopted),
            decision("opcon", "2028-11-20", DecisionStatus::Adopted),
            decision("talks", "2027-01-01", DecisionStatus::Adopted),
            decision("idea", "2028-11-01", DecisionStatus::Proposed),
            decision("old", "2028-11-01", DecisionStatus::Superseded),
        ];
        let period = (d("2028-10-01"), d("2029-01-01"));
        let got = markers(&points, &decisions, period, false);
        let summary: Vec<(Date, MarkerKind, Option<&str>, bool)> = got
            .iter()
            .map(|m| (m.date, m.kind, m.decision.as_deref(), m.exact))
            .collect();
        assert_eq!(
            summary,
            [
                (d("2028-10-15"), MarkerKind::Adopted, Some("cut"), true),
                (
                    d("2028-11-20"),
                    MarkerKind::OpconTransfer,
                    Some("opcon"),
                    true
                ),
            ]
        );
        // A what-if chart marks the proposed decision too.
        let what_if = markers(&points, &decisions, period, true);
        assert!(
            what_if
                .iter()
                .any(|m| m.kind == MarkerKind::Proposed && m.decision.as_deref() == Some("idea"))
        );
    }

    #[test]
    fn an_undated_transfer_is_marked_at_the_first_point_that_shows_it() {
        let points = [
            point("2028-11-01", Side::Us, &["plan"]),
            point("2028-12-01", Side::Rok, &["plan"]),
        ];
        let decisions = [decision("plan", "2027-01-01", DecisionStatus::Adopted)];
        let got = markers(
            &points,
            &decisions,
            (d("2028-11-01"), d("2028-12-01")),
            false,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].date, d("2028-12-01"));
        assert_eq!(got[0].kind, MarkerKind::OpconTransfer);
        assert_eq!((got[0].decision.as_deref(), got[0].exact), (None, false));
    }

    #[test]
    fn the_period_defaults_to_the_horizon() {
        let plan = v1::PlanSummary {
            horizon_start: Some(date_to_proto(d("2024-01-01"))),
            horizon_end: Some(date_to_proto(d("2031-12-31"))),
            ..Default::default()
        };
        assert_eq!(
            period(None, None, &plan).ok(),
            Some((d("2024-01-01"), d("2031-12-31")))
        );
        assert_eq!(
            period(Some(d("2027-01-01")), None, &plan).ok(),
            Some((d("2027-01-01"), d("2031-12-31")))
        );
        let err = period(None, Some(d("2020-01-01")), &plan).err().unwrap();
        assert_eq!(err.exit, Exit::InvalidInput);
        assert_eq!(
            err.message,
            "invalid input: the plan's horizon start 2024-01-01 is after --to 2020-01-01"
        );
    }

    #[test]
    fn the_chart_renders_as_svg_and_png_of_the_same_size() {
        let points = [
            v1::Posture {
                personnel: vec![v1::PersonnelCount {
                    side: v1::Side::Us as i32,
                    kind: v1::ElementKind::Thaad as i32,
                    personnel: 150,
                    ..Default::default()
                }],
                ..point("2025-01-01", Side::Us, &[])
            },
            point("2025-02-01", Side::Rok, &["opcon"]),
        ];
        let decisions = [decision("opcon", "2025-01-15", DecisionStatus::Adopted)];
        let chart = Chart::new(["T".into(), "S".into()], &points, &decisions, &[], false);
        assert_eq!(chart.personnel[&ElementKind::Thaad], [150, 0]);
        let (svg, png) = render(&chart).unwrap();
        assert!(svg.contains(">\nTHAAD\n</text>"), "{svg}");
        assert!(svg.contains(OPCON_LABEL));
        assert!(svg.contains("No ROK capability recorded in this period"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(png[16..20], SIZE.0.to_be_bytes());
        assert_eq!(png[20..24], SIZE.1.to_be_bytes());
    }

    #[test]
    fn findings_are_marked_and_a_transfer_before_its_conditions_is_dashed() {
        let points = [
            point("2025-01-01", Side::Us, &[]),
            point("2025-02-01", Side::Rok, &["opcon"]),
            point("2025-03-01", Side::Rok, &["opcon", "cut"]),
        ];
        let decisions = [
            decision("opcon", "2025-01-15", DecisionStatus::Proposed),
            decision("cut", "2025-02-15", DecisionStatus::Proposed),
        ];
        let finding = |id: &str, kind: v1::FindingKind, decision: &str| v1::Finding {
            id: id.into(),
            kind: kind as i32,
            from: Some(v1::Date {
                year: 2025,
                month: 1,
                day: 15,
            }),
            decision_ids: vec![decision.into()],
            ..Default::default()
        };
        let findings = [
            finding(
                "conditions:opcon",
                v1::FindingKind::TransferConditions,
                "opcon",
            ),
            finding("constraint:us-floor", v1::FindingKind::Constraint, "cut"),
        ];
        let chart = Chart::new(
            ["T".into(), "S".into()],
            &points,
            &decisions,
            &findings,
            true,
        );
        assert_eq!(chart.unmet_transfers, BTreeSet::from(["opcon".to_owned()]));
        assert_eq!(chart.findings.len(), 2);
        let (svg, _) = render(&chart).unwrap();
        for text in [
            "conditions:opcon",
            "constraint:us-floor",
            "Transfer before its conditions",
            "Finding (alliancectl findings)",
            ">\ncut\n</text>",
        ] {
            assert!(svg.contains(text), "{text} missing from {svg}");
        }
        let without = Chart::new(["T".into(), "S".into()], &points, &decisions, &[], true);
        let (plain, _) = render(&without).unwrap();
        assert!(!plain.contains("Transfer before its conditions"));
    }

    #[test]
    fn plot_arguments_parse() {
        use clap::Parser;
        let parse = |line: &str| {
            crate::cli::Cli::try_parse_from(
                ["alliancectl", "plot"]
                    .into_iter()
                    .chain(line.split_whitespace()),
            )
        };
        let plan = "019a0000-0000-7000-8000-000000000001";
        let cli = parse(&format!("--plan {plan} --record-version 3 --what-if")).unwrap();
        let crate::cli::Cmd::Plot(args) = &cli.command else {
            panic!("not plot");
        };
        assert_eq!(args.plan_id.to_string(), plan);
        assert_eq!((args.record_version, args.what_if), (Some(3), true));
        assert_eq!(args.out, PathBuf::from("posture"));
        for bad in [
            format!("--plan-id {plan} --record-version 3 --record-time 2025-01-01T00:00:00Z"),
            format!("--plan-id {plan} --from 2025-02-30"),
            "--plan-id opcon".to_owned(),
        ] {
            assert_eq!(parse(&bad).err().map(|e| e.exit_code()), Some(2), "{bad}");
        }
    }

    #[test]
    fn files_are_named_after_the_stem() {
        assert_eq!(
            with_extension(Path::new("docs/reference-plan"), "svg"),
            PathBuf::from("docs/reference-plan.svg")
        );
        assert_eq!(
            with_extension(Path::new("out/v1.2"), "png"),
            PathBuf::from("out/v1.2.png")
        );
    }
}
