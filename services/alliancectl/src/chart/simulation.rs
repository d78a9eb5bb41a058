//! The chart of a simulation run (`simulate --plot`, `simulation get --plot`): one small panel
//! per capability area with the combined (U.S. + ROK) coverage's P10–P90 band, its P50, the
//! required level's P50 and the ROK level's P50, month by month; U.S. personnel (the drawdown)
//! in a panel of its own; the wartime OPCON transfer marked and labelled in every panel. In a
//! comparison the right-hand run's combined P50 (and personnel P50) is drawn over the left's.
//!
//! Drawn as SVG or PNG by the file's extension, with the same embedded font as `plot`.

use std::iter::once;
use std::path::Path;

use alliance_domain::{CapabilityArea, Date};
use alliance_proto::convert::area_from_proto;
use alliance_proto::v1;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    Draw, DrawResult, Entry, Frame, OPCON_COLOR, Panel, Swatch, YearAxis, area_label, beside,
    draw_legend, failure, mesh, nice_ceiling, opcon_style, panel, render_png, render_svg,
    text_style, thousands, whole, year_fraction,
};
use crate::errors::CliError;
use crate::output::date;
use crate::output::simulation::area_order;

/// Width and height of the chart in pixels.
pub const SIZE: (u32, u32) = (1500, 1300);
/// Height of the title block.
const HEADER_HEIGHT: u32 = 92;
/// The label of the OPCON transfer marker.
pub const OPCON_LABEL: &str = "Wartime OPCON transfer";

const BAND_COLOR: RGBColor = RGBColor(70, 120, 180);
const REQUIRED_COLOR: RGBColor = RGBColor(30, 30, 30);
const ROK_COLOR: RGBColor = RGBColor(46, 139, 87);
const OTHER_COLOR: RGBColor = RGBColor(150, 60, 170);
const PERSONNEL_COLOR: RGBColor = RGBColor(110, 110, 130);

/// The frame of an area's panel; the personnel panel's is wider for its labels.
const FRAME: Frame = Frame {
    margin: 4,
    margin_left: 6,
    margin_right: 16,
    caption: 15,
    x_label_area: 26,
    y_label_area: 40,
};

/// The output format, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Svg,
    Png,
}

fn kind(path: &Path) -> Option<Kind> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "svg" => Some(Kind::Svg),
        "png" => Some(Kind::Png),
        _ => None,
    }
}

/// A usage error unless `path` names an .svg or .png file.
pub fn check_path(path: &Path) -> Result<(), CliError> {
    match kind(path) {
        Some(_) => Ok(()),
        None => Err(CliError::invalid_input(format!(
            "--plot {}: expected a file name ending in .svg or .png",
            path.display()
        ))),
    }
}

/// Draws the chart of `run` (and `other`'s P50 lines, in a comparison) into `path`.
pub fn write(
    path: &Path,
    run: &v1::SimulationResult,
    other: Option<&v1::SimulationResult>,
) -> Result<(), CliError> {
    check_path(path)?;
    let chart = Chart::new(run, other);
    let bytes = match kind(path) {
        Some(Kind::Svg) => render_svg(&chart, SIZE)?.into_bytes(),
        _ => render_png(&chart, SIZE)?,
    };
    std::fs::write(path, bytes)
        .map_err(|e| failure(format!("cannot write {}: {e}", path.display())))
}

// ---- the chart's data ----------------------------------------------------------------------

/// One month of an area.
struct AreaPoint {
    x: f64,
    /// The combined (U.S. + ROK) level's P10, P50 and P90.
    p10: f64,
    p50: f64,
    p90: f64,
    /// The required level's P50.
    required: f64,
    /// The ROK level's P50.
    rok: f64,
}

/// One area's series, one point a month.
struct AreaSeries {
    area: CapabilityArea,
    points: Vec<AreaPoint>,
    /// The other run's combined P50.
    other: Vec<(f64, f64)>,
    top: f64,
}

struct Chart {
    header: [String; 3],
    axis: YearAxis,
    areas: Vec<AreaSeries>,
    /// (x, P10, P50, P90) of U.S. personnel.
    personnel: Vec<(f64, f64, f64, f64)>,
    other_personnel: Vec<(f64, f64)>,
    personnel_top: f64,
    /// The transfer's date and decision, when scheduled within the window.
    transfer: Option<(Date, String)>,
    /// The other run's transfer, when it differs.
    other_transfer: Option<Date>,
    /// How the other run is named in the legend.
    other_name: Option<String>,
}

fn month_x(m: &v1::SimulatedMonth) -> Option<f64> {
    date(m.month.as_ref()).map(year_fraction)
}

fn area_points(run: &v1::SimulationResult, area: i32) -> Vec<(f64, &v1::AreaMonth)> {
    run.monthly
        .iter()
        .filter_map(|m| Some((month_x(m)?, m.areas.iter().find(|a| a.area == area)?)))
        .collect()
}

/// The top of a panel's y axis: above `max` by a tenth, to a multiple of ten.
fn level_top(max: f64) -> f64 {
    ((max * 1.1 / 10.0).ceil() * 10.0).max(10.0)
}

impl Chart {
    fn new(run: &v1::SimulationResult, other: Option<&v1::SimulationResult>) -> Chart {
        let xs: Vec<f64> = run.monthly.iter().filter_map(month_x).collect();
        let start = xs.first().copied().unwrap_or(2027.0);
        let end = xs.last().copied().unwrap_or(start);
        let axis = YearAxis::over(start, end);
        let within = |d: Date| {
            let x = year_fraction(d);
            (start..=end).contains(&x)
        };

        let areas = area_order(run)
            .into_iter()
            .filter_map(|code| {
                let area = area_from_proto(code)?;
                let points: Vec<_> = area_points(run, code)
                    .into_iter()
                    .map(|(x, a)| {
                        let c = a.combined.unwrap_or_default();
                        AreaPoint {
                            x,
                            p10: c.p10,
                            p50: c.p50,
                            p90: c.p90,
                            required: a.required.unwrap_or_default().p50,
                            rok: a.rok.unwrap_or_default().p50,
                        }
                    })
                    .collect();
                let other: Vec<(f64, f64)> = other
                    .map(|o| {
                        area_points(o, code)
                            .into_iter()
                            .map(|(x, a)| (x, a.combined.unwrap_or_default().p50))
                            .collect()
                    })
                    .unwrap_or_default();
                let max = points
                    .iter()
                    .flat_map(|p| [p.p90, p.required, p.rok])
                    .chain(other.iter().map(|p| p.1))
                    .fold(0.0, f64::max);
                Some(AreaSeries {
                    area,
                    points,
                    other,
                    top: level_top(max),
                })
            })
            .collect();

        let personnel: Vec<(f64, f64, f64, f64)> = run
            .monthly
            .iter()
            .filter_map(|m| {
                let b = m.us_personnel.unwrap_or_default();
                Some((month_x(m)?, b.p10, b.p50, b.p90))
            })
            .collect();
        let other_personnel: Vec<(f64, f64)> = other
            .map(|o| {
                o.monthly
                    .iter()
                    .filter_map(|m| Some((month_x(m)?, m.us_personnel.unwrap_or_default().p50)))
                    .collect()
            })
            .unwrap_or_default();
        let personnel_max = personnel
            .iter()
            .map(|p| p.3)
            .chain(other_personnel.iter().map(|p| p.1))
            .fold(0.0, f64::max);

        let transfer = date(run.transfer_on.as_ref())
            .filter(|d| within(*d))
            .map(|d| (d, run.transfer_decision_id.clone()));
        let other_transfer = other
            .and_then(|o| date(o.transfer_on.as_ref()))
            .filter(|d| within(*d) && Some(*d) != transfer.as_ref().map(|t| t.0));
        let other_name = other.map(|o| {
            let mut name = format!("right: plan version {}", o.plan_version);
            if o.plan_id != run.plan_id {
                name = format!(
                    "right: plan {}.. v{}",
                    &o.plan_id[..8.min(o.plan_id.len())],
                    o.plan_version
                );
            }
            if o.what_if {
                name.push_str(", what-if");
            }
            if !o.overlay.is_empty() {
                name.push_str(", overlay");
            }
            name
        });
        Chart {
            header: header(run, other.is_some()),
            axis,
            areas,
            personnel,
            other_personnel,
            personnel_top: nice_ceiling(personnel_max * 1.15),
            transfer,
            other_transfer,
            other_name,
        }
    }
}

fn header(run: &v1::SimulationResult, comparison: bool) -> [String; 3] {
    let mut title = format!(
        "Simulated coverage by capability area: plan {} version {}",
        run.plan_id, run.plan_version
    );
    if run.what_if {
        title.push_str(" (what-if)");
    }
    if !run.overlay.is_empty() {
        title.push_str(&format!(" with overlay {}", run.overlay.join(", ")));
    }
    if comparison {
        title.push_str(", compared");
    }
    let first = run.monthly.first().and_then(|m| date(m.month.as_ref()));
    let last = run.monthly.last().and_then(|m| date(m.month.as_ref()));
    let window = match (first, last) {
        (Some(a), Some(b)) => format!("{} to {}", a.format("%Y-%m"), b.format("%Y-%m")),
        _ => "no months".to_owned(),
    };
    let subtitle = format!(
        "{window}, {} trials, seed {}, model {}; run {}; capability on a 0-100 scale",
        run.trials, run.seed, run.model_version, run.run_id
    );
    [title, subtitle, run.headline.clone()]
}

// ---- drawing -------------------------------------------------------------------------------

impl Draw for Chart {
    const HEADER_HEIGHT: u32 = HEADER_HEIGHT;

    fn header(&self) -> Vec<(&str, i32, TextStyle<'static>)> {
        let [title, subtitle, headline] = &self.header;
        vec![
            (title, 10, text_style(22, true)),
            (subtitle, 40, text_style(14, false)),
            (headline, 64, text_style(14, true)),
        ]
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let rows = 4;
        let row_height = body.dim_in_pixel().1 / rows;
        let (grid, last_row) = body.split_vertically(row_height * (rows - 1));
        let cells = grid.split_evenly(((rows - 1) as usize, 3));
        for (cell, series) in cells.iter().zip(&self.areas) {
            draw_area(cell, self, series)?;
        }
        let (personnel, legend) = last_row.split_horizontally(SIZE.0 * 2 / 3);
        draw_personnel(&personnel, self)?;
        draw_legend(&legend, "Legend", &legend_entries(self))
    }
}

/// The P10-P90 band of `points` (x, P10, P90), filled in `color` at a quarter's opacity.
fn draw_band<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    points: &[(f64, f64, f64)],
    color: RGBColor,
) -> DrawResult<DB> {
    let band: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.0, p.2))
        .chain(points.iter().rev().map(|p| (p.0, p.1)))
        .collect();
    c.draw_series(once(Polygon::new(band, color.mix(0.25).filled())))?;
    Ok(())
}

/// The other run's P50, dashed, in a comparison.
fn draw_other<DB: DrawingBackend>(c: &mut Panel<'_, DB>, other: &[(f64, f64)]) -> DrawResult<DB> {
    if !other.is_empty() {
        c.draw_series(DashedLineSeries::new(
            other.to_vec(),
            4,
            3,
            OTHER_COLOR.stroke_width(2),
        ))?;
    }
    Ok(())
}

fn draw_area<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    series: &AreaSeries,
) -> DrawResult<DB> {
    let top = series.top;
    let caption = area_label(series.area);
    let mut c = panel(area, &FRAME, chart.axis.clone(), caption, top)?;
    mesh(&mut c, &whole, 5, 11).x_labels(6).draw()?;
    let p = &series.points;
    if p.is_empty() {
        return draw_transfer(&mut c, chart, top, false);
    }
    let band: Vec<_> = p.iter().map(|q| (q.x, q.p10, q.p90)).collect();
    draw_band(&mut c, &band, BAND_COLOR)?;
    let line =
        |f: fn(&AreaPoint) -> f64| -> Vec<(f64, f64)> { p.iter().map(|q| (q.x, f(q))).collect() };
    c.draw_series(once(PathElement::new(
        line(|q| q.rok),
        ROK_COLOR.stroke_width(1),
    )))?;
    c.draw_series(DashedLineSeries::new(
        line(|q| q.required),
        6,
        4,
        REQUIRED_COLOR.stroke_width(2),
    ))?;
    c.draw_series(once(PathElement::new(
        line(|q| q.p50),
        BAND_COLOR.stroke_width(2),
    )))?;
    draw_other(&mut c, &series.other)?;
    draw_transfer(&mut c, chart, top, false)
}

fn draw_personnel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> DrawResult<DB> {
    let top = chart.personnel_top;
    let frame = Frame {
        y_label_area: 70,
        ..FRAME
    };
    let caption = "U.S. personnel in Korea (P10-P90 and P50): the drawdown";
    let mut c = panel(area, &frame, chart.axis.clone(), caption, top)?;
    mesh(&mut c, &thousands, 5, 12).draw()?;
    let p = &chart.personnel;
    if !p.is_empty() {
        let band: Vec<_> = p.iter().map(|q| (q.0, q.1, q.3)).collect();
        draw_band(&mut c, &band, PERSONNEL_COLOR)?;
        c.draw_series(once(PathElement::new(
            p.iter().map(|q| (q.0, q.2)).collect::<Vec<_>>(),
            PERSONNEL_COLOR.stroke_width(2),
        )))?;
    }
    draw_other(&mut c, &chart.other_personnel)?;
    draw_transfer(&mut c, chart, top, true)
}

/// The OPCON transfer's vertical line and its label: short in the small panels, with the date
/// and decision in the personnel panel.
fn draw_transfer<DB: DrawingBackend>(
    c: &mut Panel<'_, DB>,
    chart: &Chart,
    top: f64,
    full: bool,
) -> DrawResult<DB> {
    if let Some(on) = chart.other_transfer {
        let x = year_fraction(on);
        c.draw_series(DashedLineSeries::new(
            vec![(x, 0.0), (x, top)],
            5,
            4,
            OPCON_COLOR.mix(0.7).stroke_width(2),
        ))?;
    }
    let Some((on, decision)) = &chart.transfer else {
        return Ok(());
    };
    let x = year_fraction(*on);
    c.draw_series(once(PathElement::new(
        vec![(x, 0.0), (x, top)],
        OPCON_COLOR.stroke_width(2),
    )))?;
    let (dx, h) = beside(c, x, 5);
    let label = if full {
        let by = if decision.is_empty() {
            String::new()
        } else {
            format!(" ({decision})")
        };
        format!("{OPCON_LABEL} {on}{by}")
    } else {
        "OPCON transfer".to_owned()
    };
    let style = opcon_style(if full { 14 } else { 11 }, h);
    c.draw_series(once(
        EmptyElement::at((x, top)) + Text::new(label, (dx, 3), style),
    ))?;
    Ok(())
}

fn legend_entries(chart: &Chart) -> Vec<Entry> {
    let mut entries = vec![
        Entry::new(
            "Combined coverage P10-P90",
            Swatch::Fill(on_white(BAND_COLOR, 0.25)),
        ),
        Entry::new("Combined coverage P50", Swatch::Line(BAND_COLOR, 2)),
        Entry::new("Required level P50", Swatch::Dashed(REQUIRED_COLOR)),
        Entry::new("ROK level P50", Swatch::Line(ROK_COLOR, 1)),
        Entry::new("U.S. personnel P50", Swatch::Line(PERSONNEL_COLOR, 2)),
    ];
    if let Some(name) = &chart.other_name {
        entries.push(Entry::new(
            format!("P50s of the {name}"),
            Swatch::Dashed(OTHER_COLOR),
        ));
    }
    match &chart.transfer {
        Some((on, _)) => entries.push(Entry::new(
            format!("{OPCON_LABEL} {on}"),
            Swatch::Line(OPCON_COLOR, 2),
        )),
        None => entries.push(Entry::new(
            "No OPCON transfer in the window",
            Swatch::Heading,
        )),
    }
    entries
}

/// `color` at opacity `alpha` over white: the band's colour as a legend swatch.
fn on_white(color: RGBColor, alpha: f64) -> RGBColor {
    let mix = |c: u8| (f64::from(c) * alpha + 255.0 * (1.0 - alpha)).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::simulation::tests::sample;

    #[test]
    fn every_panel_marks_the_transfer_and_both_formats_render() {
        let run = sample();
        let chart = Chart::new(&run, None);
        assert_eq!(chart.areas.len(), 2);
        assert_eq!(chart.areas[0].area, CapabilityArea::MissileDefense);
        assert_eq!(chart.areas[0].points.len(), 3);
        assert!(chart.transfer.is_some());
        let svg = render_svg(&chart, SIZE).unwrap();
        assert!(svg.contains(OPCON_LABEL), "{svg}");
        assert!(svg.contains("Missile defense"));
        assert!(svg.contains("Ground combat"));
        // The short label in each area panel.
        assert_eq!(svg.matches("OPCON transfer").count(), 2 + 2, "{svg}");
        let png = render_png(&chart, SIZE).unwrap();
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(png[16..20], SIZE.0.to_be_bytes());
        assert_eq!(png[20..24], SIZE.1.to_be_bytes());
    }

    #[test]
    fn a_comparison_draws_the_other_run() {
        let left = sample();
        let right = v1::SimulationResult {
            plan_version: 170,
            ..sample()
        };
        let chart = Chart::new(&left, Some(&right));
        assert_eq!(chart.areas[0].other.len(), 3);
        assert_eq!(chart.other_personnel.len(), 3);
        let svg = render_svg(&chart, SIZE).unwrap();
        assert!(svg.contains("right: plan version 170"), "{svg}");
    }

    #[test]
    fn only_svg_and_png_files() {
        assert!(check_path(Path::new("out/run.svg")).is_ok());
        assert!(check_path(Path::new("run.PNG")).is_ok());
        assert!(check_path(Path::new("run.pdf")).is_err());
        assert!(check_path(Path::new("run")).is_err());
    }
}
