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
use alliance_proto::convert::{area_from_proto, date_from_proto};
use alliance_proto::v1;
use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::errors::CliError;
use crate::plot::{
    DrawResult, Entry, OPCON_COLOR, Swatch, YearAxis, area_label, draw_failed, draw_legend,
    encode_png, failure, font, nice_ceiling, register_fonts, text_style, thousands, tick_label,
    year_fraction,
};

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

type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<YearAxis, RangedCoordf64>>;

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
        Some(Kind::Svg) => render_svg(&chart)?.into_bytes(),
        _ => render_png(&chart)?,
    };
    std::fs::write(path, bytes)
        .map_err(|e| failure(format!("cannot write {}: {e}", path.display())))
}

// ---- the chart's data ----------------------------------------------------------------------

fn day(d: Option<&v1::Date>) -> Option<Date> {
    d.and_then(date_from_proto)
}

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
    day(m.month.as_ref()).map(year_fraction)
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

        let mut order: Vec<i32> = Vec::new();
        for m in &run.monthly {
            for a in &m.areas {
                if !order.contains(&a.area) {
                    order.push(a.area);
                }
            }
        }
        let areas = order
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

        let transfer = day(run.transfer_on.as_ref())
            .filter(|d| within(*d))
            .map(|d| (d, run.transfer_decision_id.clone()));
        let other_transfer = other
            .and_then(|o| day(o.transfer_on.as_ref()))
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
    let first = run.monthly.first().and_then(|m| day(m.month.as_ref()));
    let last = run.monthly.last().and_then(|m| day(m.month.as_ref()));
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

fn render_svg(chart: &Chart) -> Result<String, CliError> {
    register_fonts()?;
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        chart,
    )
    .map_err(draw_failed)?;
    Ok(svg)
}

fn render_png(chart: &Chart) -> Result<Vec<u8>, CliError> {
    register_fonts()?;
    let mut rgb = vec![0; SIZE.0 as usize * SIZE.1 as usize * 3];
    let bitmap =
        BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut rgb, SIZE).map_err(draw_failed)?;
    draw(bitmap.into_drawing_area(), chart).map_err(draw_failed)?;
    encode_png(&rgb, SIZE)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_HEIGHT);
    draw_header(&header, chart)?;
    let rows = 4;
    let row_height = body.dim_in_pixel().1 / rows;
    let (grid, last_row) = body.split_vertically(row_height * (rows - 1));
    let cells = grid.split_evenly(((rows - 1) as usize, 3));
    for (cell, series) in cells.iter().zip(&chart.areas) {
        draw_area(cell, chart, series)?;
    }
    let (personnel, legend) = last_row.split_horizontally(SIZE.0 * 2 / 3);
    draw_personnel(&personnel, chart)?;
    draw_legend(&legend, "Legend", &legend_entries(chart))?;
    root.present()
}

fn draw_header<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    let [title, subtitle, headline] = &chart.header;
    area.draw(&Text::new(title.as_str(), (16, 10), text_style(22, true)))?;
    area.draw(&Text::new(
        subtitle.as_str(),
        (16, 40),
        text_style(14, false),
    ))?;
    area.draw(&Text::new(
        headline.as_str(),
        (16, 64),
        text_style(14, true),
    ))
}

fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    chart: &Chart,
    caption: &str,
    top: f64,
    y_label_width: u32,
) -> Result<Panel<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(area)
        .margin_top(4)
        .margin_left(6)
        .margin_right(16)
        .margin_bottom(4)
        .caption(caption, text_style(15, true))
        .x_label_area_size(26)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(chart.axis.clone(), 0.0..top)
}

fn draw_area<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    series: &AreaSeries,
) -> DrawResult<DB> {
    let top = series.top;
    let mut c = panel(area, chart, area_label(series.area), top, 40)?;
    c.configure_mesh()
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(5)
        .x_labels(6)
        .label_style(text_style(11, false))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let p = &series.points;
    if p.is_empty() {
        return draw_transfer(&mut c, chart, top, false);
    }
    let band: Vec<(f64, f64)> = p
        .iter()
        .map(|q| (q.x, q.p90))
        .chain(p.iter().rev().map(|q| (q.x, q.p10)))
        .collect();
    c.draw_series(once(Polygon::new(band, BAND_COLOR.mix(0.25).filled())))?;
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
    if !series.other.is_empty() {
        c.draw_series(DashedLineSeries::new(
            series.other.clone(),
            4,
            3,
            OTHER_COLOR.stroke_width(2),
        ))?;
    }
    draw_transfer(&mut c, chart, top, false)
}

fn draw_personnel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> DrawResult<DB> {
    let top = chart.personnel_top;
    let mut c = panel(
        area,
        chart,
        "U.S. personnel in Korea (P10-P90 and P50): the drawdown",
        top,
        70,
    )?;
    c.configure_mesh()
        .x_label_formatter(&tick_label)
        .y_label_formatter(&thousands)
        .y_labels(5)
        .label_style(text_style(12, false))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()?;
    let p = &chart.personnel;
    if !p.is_empty() {
        let band: Vec<(f64, f64)> = p
            .iter()
            .map(|q| (q.0, q.3))
            .chain(p.iter().rev().map(|q| (q.0, q.1)))
            .collect();
        c.draw_series(once(Polygon::new(band, PERSONNEL_COLOR.mix(0.25).filled())))?;
        c.draw_series(once(PathElement::new(
            p.iter().map(|q| (q.0, q.2)).collect::<Vec<_>>(),
            PERSONNEL_COLOR.stroke_width(2),
        )))?;
    }
    if !chart.other_personnel.is_empty() {
        c.draw_series(DashedLineSeries::new(
            chart.other_personnel.clone(),
            4,
            3,
            OTHER_COLOR.stroke_width(2),
        ))?;
    }
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
    let (x0, x1) = (c.x_range().start, c.x_range().end);
    let right_side = (x - x0) / (x1 - x0) < 0.7;
    let (dx, h) = if right_side {
        (5, HPos::Left)
    } else {
        (-5, HPos::Right)
    };
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
    let size = if full { 14 } else { 11 };
    let style = font(size, true)
        .color(&OPCON_COLOR)
        .pos(Pos::new(h, VPos::Top));
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
    use crate::simulate::tests::sample;

    #[test]
    fn every_panel_marks_the_transfer_and_both_formats_render() {
        let run = sample();
        let chart = Chart::new(&run, None);
        assert_eq!(chart.areas.len(), 2);
        assert_eq!(chart.areas[0].area, CapabilityArea::MissileDefense);
        assert_eq!(chart.areas[0].points.len(), 3);
        assert!(chart.transfer.is_some());
        let svg = render_svg(&chart).unwrap();
        assert!(svg.contains(OPCON_LABEL), "{svg}");
        assert!(svg.contains("Missile defense"));
        assert!(svg.contains("Ground combat"));
        // The short label in each area panel.
        assert_eq!(svg.matches("OPCON transfer").count(), 2 + 2, "{svg}");
        let png = render_png(&chart).unwrap();
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
        let svg = render_svg(&chart).unwrap();
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
