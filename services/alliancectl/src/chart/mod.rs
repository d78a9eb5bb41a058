//! The chart kit both charts draw with: a time axis in fractional years, panels and their
//! grids, legends, the embedded font and its text styles, and drawing one chart as SVG or PNG.

use alliance_domain::{CapabilityArea, Date};
use chrono::Datelike;
use plotters::backend::RGBPixel;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::errors::{CliError, Exit};

pub(crate) mod posture;
pub(crate) mod simulation;

/// The font family of every text; the embedded font is registered under this name.
pub(crate) const FONT: &str = "sans-serif";

pub(crate) const OPCON_COLOR: RGBColor = RGBColor(192, 40, 40);

pub(crate) const TEXT_COLOR: RGBColor = RGBColor(30, 30, 30);

/// A time axis in fractional years with fixed ticks (see [`ticks`]).
#[derive(Clone, Debug)]
pub(crate) struct YearAxis {
    start: f64,
    end: f64,
    ticks: Vec<f64>,
}

impl YearAxis {
    /// From `start` to `end` (fractional years), ticked as [`ticks`] chooses.
    pub(crate) fn over(start: f64, end: f64) -> YearAxis {
        let end = end.max(start + 1.0 / 12.0);
        YearAxis {
            start,
            end,
            ticks: ticks(start, end),
        }
    }
}

impl Ranged for YearAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (low, high): (i32, i32)) -> i32 {
        let share = (value - self.start) / (self.end - self.start);
        low + (share * f64::from(high - low)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.start..self.end
    }
}

/// A date as a fractional year, e.g. 2028-07-02 is about 2028.5.
pub(crate) fn year_fraction(d: Date) -> f64 {
    let days = if d.leap_year() { 366.0 } else { 365.0 };
    f64::from(d.year()) + f64::from(d.ordinal0()) / days
}

/// Tick positions: whole years (every 1, 2, 5, 10 or 20 years so that there are at most about
/// 16), or months for a period shorter than two years.
pub(crate) fn ticks(start: f64, end: f64) -> Vec<f64> {
    let span = end - start;
    if span < 2.0 {
        let step = if span < 0.75 { 1.0 } else { 3.0 };
        let first = (start * 12.0).ceil() as i64;
        let last = (end * 12.0).floor() as i64;
        return (first..=last)
            .filter(|m| (m % 12) as f64 % step == 0.0)
            .map(|m| m as f64 / 12.0)
            .collect();
    }
    let step = [1, 2, 5, 10, 20, 50]
        .into_iter()
        .find(|s| span / *s as f64 <= 16.0)
        .unwrap_or(100);
    let first = start.ceil() as i64;
    let last = end.floor() as i64;
    (first..=last)
        .filter(|y| y % step == 0)
        .map(|y| y as f64)
        .collect()
}

/// A tick's label: the year, or year and month off a whole year.
pub(crate) fn tick_label(x: &f64) -> String {
    let months = (x * 12.0).round() as i64;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    if month == 1 {
        year.to_string()
    } else {
        format!("{year}-{month:02}")
    }
}

/// `12345` as `12,345`.
pub(crate) fn thousands(v: &f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if *v < 0.0 { format!("-{out}") } else { out }
}

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above `v`.
pub(crate) fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1000.0;
    }
    let scale = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * scale)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * scale)
}

pub(crate) fn area_label(area: CapabilityArea) -> &'static str {
    match area {
        CapabilityArea::GroundCombat => "Ground combat",
        CapabilityArea::CombatSupport => "Combat support",
        CapabilityArea::AirSuperiority => "Air superiority",
        CapabilityArea::MissileDefense => "Missile defense",
        CapabilityArea::Isr => "ISR",
        CapabilityArea::Logistics => "Logistics",
        CapabilityArea::CommandAndControl => "Command and control",
        CapabilityArea::Munitions => "Munitions",
        CapabilityArea::ExtendedDeterrence => "Extended deterrence",
    }
}

pub(crate) fn area_color(area: CapabilityArea) -> RGBColor {
    match area {
        CapabilityArea::GroundCombat => RGBColor(78, 121, 167),
        CapabilityArea::CombatSupport => RGBColor(242, 142, 43),
        CapabilityArea::AirSuperiority => RGBColor(89, 161, 79),
        CapabilityArea::MissileDefense => RGBColor(176, 122, 161),
        CapabilityArea::Isr => RGBColor(118, 183, 178),
        CapabilityArea::Logistics => RGBColor(214, 180, 40),
        CapabilityArea::CommandAndControl => RGBColor(40, 40, 40),
        CapabilityArea::Munitions => RGBColor(156, 117, 95),
        CapabilityArea::ExtendedDeterrence => RGBColor(255, 130, 160),
    }
}

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(crate) type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<YearAxis, RangedCoordf64>>;

pub(crate) fn failure(message: String) -> CliError {
    CliError::new(Exit::Other, message)
}

fn draw_failed(error: impl std::fmt::Display) -> CliError {
    failure(format!("cannot draw the chart: {error}"))
}

/// A chart of a title block above a body, drawn the same way on any backend.
pub(crate) trait Draw {
    /// The height of the title block.
    const HEADER_HEIGHT: u32;

    /// The lines of the title block: the text, its height from the top and its style.
    fn header(&self) -> Vec<(&str, i32, TextStyle<'static>)>;

    /// Draws what is below the title block.
    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws `chart` on a white `root`, then presents it.
fn draw<C: Draw, DB: DrawingBackend>(chart: &C, root: DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(C::HEADER_HEIGHT);
    for (text, y, style) in chart.header() {
        header.draw(&Text::new(text, (16, y), style))?;
    }
    chart.draw_body(&body)?;
    root.present()
}

/// Draws `chart` as an SVG document, `size` pixels wide and high.
pub(crate) fn render_svg(chart: &impl Draw, size: (u32, u32)) -> Result<String, CliError> {
    register_fonts()?;
    let mut svg = String::new();
    draw(
        chart,
        SVGBackend::with_string(&mut svg, size).into_drawing_area(),
    )
    .map_err(draw_failed)?;
    Ok(svg)
}

/// Draws `chart` as PNG bytes, `size` pixels wide and high.
pub(crate) fn render_png(chart: &impl Draw, size: (u32, u32)) -> Result<Vec<u8>, CliError> {
    register_fonts()?;
    let mut rgb = vec![0; size.0 as usize * size.1 as usize * 3];
    let bitmap =
        BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut rgb, size).map_err(draw_failed)?;
    draw(chart, bitmap.into_drawing_area()).map_err(draw_failed)?;
    encode_png(&rgb, size)
}

/// Registers the embedded font (DejaVu Sans, regular and bold) as [`FONT`].
fn register_fonts() -> Result<(), CliError> {
    let invalid = |_| failure("the embedded font cannot be read".to_owned());
    plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(invalid)?;
    plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).map_err(invalid)
}

/// 8-bit RGB pixels, `size` pixels wide and high, as PNG bytes.
fn encode_png(rgb: &[u8], size: (u32, u32)) -> Result<Vec<u8>, CliError> {
    let failed = |e: png::EncodingError| failure(format!("cannot encode the PNG: {e}"));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(rgb).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

/// The font at `size` pixels, bold or regular (chosen when the font is created: a style set
/// later would not change the glyphs).
pub(crate) fn font(size: u32, bold: bool) -> FontDesc<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FONT.into(), f64::from(size), style)
}

pub(crate) fn text_style(size: u32, bold: bool) -> TextStyle<'static> {
    font(size, bold).color(&TEXT_COLOR)
}

/// The OPCON transfer's colour in bold at `size` pixels, hanging from its anchor at `h`.
pub(crate) fn opcon_style(size: u32, h: HPos) -> TextStyle<'static> {
    font(size, true)
        .color(&OPCON_COLOR)
        .pos(Pos::new(h, VPos::Top))
}

/// The margins and label areas of a panel, in pixels.
pub(crate) struct Frame {
    /// Above and below.
    pub(crate) margin: u32,
    pub(crate) margin_left: u32,
    pub(crate) margin_right: u32,
    /// The caption's text size.
    pub(crate) caption: u32,
    pub(crate) x_label_area: u32,
    pub(crate) y_label_area: u32,
}

/// A panel in `frame`: `axis` across, 0 to `top` up.
pub(crate) fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame,
    axis: YearAxis,
    caption: &str,
    top: f64,
) -> Result<Panel<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(area)
        .margin_top(frame.margin)
        .margin_left(frame.margin_left)
        .margin_right(frame.margin_right)
        .margin_bottom(frame.margin)
        .caption(caption, text_style(frame.caption, true))
        .x_label_area_size(frame.x_label_area)
        .y_label_area_size(frame.y_label_area)
        .build_cartesian_2d(axis, 0.0..top)
}

/// A panel's grid: years across, `y_labels` values up written by `y_label`, labels at
/// `label_size` pixels, faint lines at the labelled values only. Draw it after any more
/// settings.
pub(crate) fn mesh<'a, 'b, DB: DrawingBackend>(
    c: &'b mut Panel<'a, DB>,
    y_label: &'b dyn Fn(&f64) -> String,
    y_labels: usize,
    label_size: u32,
) -> MeshStyle<'a, 'b, YearAxis, RangedCoordf64, DB> {
    let mut mesh = c.configure_mesh();
    mesh.x_label_formatter(&tick_label)
        .y_label_formatter(y_label)
        .y_labels(y_labels)
        .label_style(text_style(label_size, false))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT);
    mesh
}

/// A level as a whole number.
pub(crate) fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

/// Where a label beside the vertical line at `x` goes: `gap` pixels right of it, or left of
/// it near the end of the panel; with the side of the text that the anchor holds.
pub(crate) fn beside<DB: DrawingBackend>(c: &Panel<'_, DB>, x: f64, gap: i32) -> (i32, HPos) {
    let (x0, x1) = (c.x_range().start, c.x_range().end);
    if (x - x0) / (x1 - x0) < 0.7 {
        (gap, HPos::Left)
    } else {
        (-gap, HPos::Right)
    }
}

/// One row of a legend.
pub(crate) struct Entry {
    label: String,
    swatch: Swatch,
}

impl Entry {
    pub(crate) fn new(label: impl Into<String>, swatch: Swatch) -> Entry {
        Entry {
            label: label.into(),
            swatch,
        }
    }
}

pub(crate) enum Swatch {
    /// A heading row, in bold, with no swatch.
    Heading,
    Fill(RGBColor),
    Line(RGBColor, u32),
    Dashed(RGBColor),
}

pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[Entry],
) -> DrawResult<DB> {
    area.draw(&Text::new(title, (6, 40), text_style(15, true)))?;
    let label_style = text_style(14, false).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 72;
    for entry in entries {
        match entry.swatch {
            Swatch::Heading => {
                y += 12;
                let style = text_style(15, true).pos(Pos::new(HPos::Left, VPos::Center));
                area.draw(&Text::new(entry.label.as_str(), (6, y), style))?;
                y += 26;
                continue;
            }
            Swatch::Fill(color) => {
                area.draw(&Rectangle::new([(8, y - 7), (30, y + 7)], color.filled()))?;
            }
            Swatch::Line(color, width) => {
                area.draw(&PathElement::new(
                    vec![(8, y), (30, y)],
                    color.stroke_width(width),
                ))?;
            }
            Swatch::Dashed(color) => {
                for (a, b) in [(8, 14), (18, 24), (28, 30)] {
                    area.draw(&PathElement::new(
                        vec![(a, y), (b, y)],
                        color.stroke_width(1),
                    ))?;
                }
            }
        }
        area.draw(&Text::new(
            entry.label.as_str(),
            (38, y),
            label_style.clone(),
        ))?;
        y += 22;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alliance_domain::Date;

    use super::*;

    fn d(s: &str) -> Date {
        crate::parse::date(s).unwrap()
    }

    #[test]
    fn axis_ticks_and_labels() {
        let x = year_fraction;
        assert_eq!(ticks(x(d("2024-01-01")), x(d("2031-12-31"))).len(), 8);
        assert_eq!(
            ticks(x(d("1950-01-01")), x(d("2040-12-31"))),
            (1950..=2040).step_by(10).map(f64::from).collect::<Vec<_>>()
        );
        let months = ticks(x(d("2028-01-01")), x(d("2028-12-01")));
        let labels: Vec<String> = months.iter().map(tick_label).collect();
        assert_eq!(labels, ["2028", "2028-04", "2028-07", "2028-10"]);
        assert_eq!(thousands(&28_500.0), "28,500");
        assert_eq!(thousands(&999.0), "999");
        assert_eq!(nice_ceiling(34_200.0), 40_000.0);
        assert_eq!(nice_ceiling(9_120.0), 10_000.0);
    }
}
