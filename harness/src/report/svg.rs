//! Hand-written SVG charts: line charts with linear or log axes, shaded phase bands, legends,
//! and grouped bar charts. No scripts, no external fonts: the page must open offline.

use std::fmt::Write as _;

use super::html::escape;
use super::table::group_thousands;

/// Chart canvas size in SVG user units; the page scales it to its column width (about 1150 px
/// at a 1200 px window), so text stays at roughly its nominal size.
const CHART_WIDTH: f64 = 1100.0;
const CHART_HEIGHT: f64 = 360.0;
const MARGIN_LEFT: f64 = 84.0;
const MARGIN_RIGHT: f64 = 28.0;
const MARGIN_BOTTOM: f64 = 58.0;
/// Height of the title line; the legend rows follow it.
const TITLE_HEIGHT: f64 = 30.0;
const LEGEND_ROW_HEIGHT: f64 = 20.0;
const FONT_SIZE: f64 = 13.0;
/// Average glyph width of a sans-serif face relative to its size, for layout estimates.
const GLYPH_WIDTH_RATIO: f64 = 0.58;
/// Most series one chart draws; past that a legend is unreadable.
pub(crate) const SERIES_MAX: usize = 24;
/// Most points one series draws; a timeline is one point per second, so this is 2.7 hours.
pub(crate) const POINTS_MAX: usize = 10_000;
/// Most decades a log axis spans (1 ns .. 1000 s is 12).
const DECADES_MAX: i32 = 12;

/// Distinct colours that stay apart for colour-blind readers (after Okabe-Ito) plus extras.
pub(crate) const PALETTE: [&str; 10] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D", "#3F3F3F",
    "#A6761D", "#E7298A",
];

/// Colour number `index`, cycling through [`PALETTE`].
pub(crate) fn color(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Linear,
    Log10,
}

/// One axis: its range, how values map onto it, and the labelled ticks.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub label: String,
    pub scale: Scale,
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Position of `value` along the axis in 0..=1, or None when a log axis gets a value <= 0.
    fn fraction(&self, value: f64) -> Option<f64> {
        match self.scale {
            Scale::Linear => Some((value - self.min) / (self.max - self.min)),
            Scale::Log10 if value > 0.0 => {
                Some((value.log10() - self.min.log10()) / (self.max.log10() - self.min.log10()))
            }
            Scale::Log10 => None,
        }
    }

    /// A linear axis from `min` to a round number at or above `data_max`, about six ticks,
    /// labelled by `format`.
    pub fn linear(label: &str, min: f64, data_max: f64, format: fn(f64) -> String) -> Axis {
        let span = if data_max > min { data_max - min } else { 1.0 };
        let step = nice_step(span / 6.0);
        let max = min + (span / step).ceil() * step;
        let ticks = (0..=((max - min) / step).round() as usize)
            .map(|i| min + step * i as f64)
            .map(|v| (v, format(v)))
            .collect();
        Axis {
            label: label.to_string(),
            scale: Scale::Linear,
            min,
            max,
            ticks,
        }
    }

    /// A log axis for latencies in microseconds covering `data_min..=data_max` in whole decades,
    /// ticks at 1-2-5 when the span is short and at decades otherwise.
    pub fn log_latency_us(label: &str, data_min: f64, data_max: f64) -> Axis {
        Axis::log(label, data_min, data_max, format_latency)
    }

    /// A log axis covering `data_min..=data_max` in whole decades, labelled by `format`.
    pub fn log(label: &str, data_min: f64, data_max: f64, format: fn(f64) -> String) -> Axis {
        let low = if data_min > 0.0 { data_min } else { 0.1 };
        let high = data_max.max(low * 10.0);
        let mut low_exp = low.log10().floor() as i32;
        let high_exp = (high.log10().ceil() as i32).clamp(low_exp + 1, low_exp + DECADES_MAX);
        low_exp = low_exp.max(high_exp - DECADES_MAX);
        let mut ticks = Vec::new();
        let multipliers: &[f64] = if high_exp - low_exp <= 3 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        for exp in low_exp..=high_exp {
            for m in multipliers {
                let value = m * 10f64.powi(exp);
                if value <= 10f64.powi(high_exp) * 1.0001 {
                    ticks.push((value, format(value)));
                }
            }
        }
        Axis {
            label: label.to_string(),
            scale: Scale::Log10,
            min: 10f64.powi(low_exp),
            max: 10f64.powi(high_exp),
            ticks,
        }
    }
}

/// 1, 2 or 5 times a power of ten, the smallest at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let nice = if normalized <= 1.0 {
        1.0
    } else if normalized <= 2.0 {
        2.0
    } else if normalized <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A latency given in microseconds, in the unit that reads best: "500 ns", "20 µs", "5 ms".
pub(crate) fn format_latency(value_us: f64) -> String {
    let (value, unit) = if value_us < 1.0 {
        (value_us * 1000.0, "ns")
    } else if value_us < 1000.0 {
        (value_us, "µs")
    } else if value_us < 1_000_000.0 {
        (value_us / 1000.0, "ms")
    } else {
        (value_us / 1_000_000.0, "s")
    };
    if value >= 10.0 || (value - value.round()).abs() < 1e-9 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// A count with k/M suffixes for tick labels: 0, 500, 20k, 1.5M.
pub(crate) fn format_count(value: f64) -> String {
    if value >= 1_000_000.0 {
        trim_float(value / 1_000_000.0) + "M"
    } else if value >= 1000.0 {
        trim_float(value / 1000.0) + "k"
    } else {
        trim_float(value)
    }
}

/// Seconds for tick labels: "0 s", "15 s", "2.5 s".
pub(crate) fn format_seconds(value: f64) -> String {
    format!("{} s", trim_float(value))
}

/// A number without trailing zeros, at most two decimals.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if let Some((whole, fraction)) = text.split_once('.') {
        format!("{}.{fraction}", group_thousands(whole))
    } else {
        group_thousands(text)
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    pub color: &'static str,
    pub dashed: bool,
    /// Draw a dot at each point (for sparse series such as percentile spectra).
    pub markers: bool,
    pub points: Vec<(f64, f64)>,
}

/// A shaded stretch of the x axis (a phase), labelled at the top of the plot.
#[derive(Debug, Clone)]
pub(crate) struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: String,
}

/// A line chart.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
}

fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * GLYPH_WIDTH_RATIO
}

/// Plot rectangle inside the canvas.
#[derive(Debug, Clone, Copy)]
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Plot {
    fn bottom(&self) -> f64 {
        self.top + self.height
    }
    fn right(&self) -> f64 {
        self.left + self.width
    }
}

/// Legend entries laid out in rows; returns (x, y, name, colour, dashed) per entry and the
/// number of rows used.
fn legend_layout(series: &[Series]) -> (Vec<(f64, f64, usize)>, usize) {
    let mut placed = Vec::new();
    let (mut x, mut row) = (MARGIN_LEFT, 0usize);
    for (i, s) in series.iter().enumerate() {
        let width = 34.0 + text_width(&s.name, FONT_SIZE) + 18.0;
        if x + width > CHART_WIDTH - MARGIN_RIGHT && x > MARGIN_LEFT {
            row += 1;
            x = MARGIN_LEFT;
        }
        placed.push((x, TITLE_HEIGHT + 14.0 + row as f64 * LEGEND_ROW_HEIGHT, i));
        x += width;
    }
    let rows = if series.is_empty() { 0 } else { row + 1 };
    (placed, rows)
}

fn svg_open(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_WIDTH} {height}\" \
         class=\"chart\" role=\"img\" aria-label=\"{t}\" font-family=\"system-ui, -apple-system, \
         'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif\" font-size=\"{FONT_SIZE}\">\
         <title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{CHART_WIDTH}\" height=\"{height}\" fill=\"#fff\"/>\
         <text x=\"{MARGIN_LEFT}\" y=\"20\" font-size=\"15\" font-weight=\"600\" \
         fill=\"#111\">{t}</text>",
        t = escape(title)
    );
}

fn draw_legend(out: &mut String, series: &[Series]) -> f64 {
    let (placed, rows) = legend_layout(series);
    for (x, y, i) in placed {
        let s = &series[i];
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" \
             stroke-width=\"3\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text>",
            x + 26.0,
            s.color,
            x + 32.0,
            y + 4.5,
            escape(&s.name)
        );
    }
    TITLE_HEIGHT + rows as f64 * LEGEND_ROW_HEIGHT + 14.0
}

impl LineChart {
    /// Renders the chart as one `<svg>` element.
    pub fn render(&self) -> String {
        assert!(
            self.series.len() <= SERIES_MAX,
            "too many series for one chart"
        );
        assert!(
            self.x.max > self.x.min && self.y.max > self.y.min,
            "axes need a range"
        );
        let (_, legend_rows) = legend_layout(&self.series);
        let top = TITLE_HEIGHT + legend_rows as f64 * LEGEND_ROW_HEIGHT + 22.0;
        let height = CHART_HEIGHT + legend_rows as f64 * LEGEND_ROW_HEIGHT;
        let plot = Plot {
            left: MARGIN_LEFT,
            top,
            width: CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
            height: height - top - MARGIN_BOTTOM,
        };
        let mut out = String::new();
        svg_open(&mut out, height, &self.title);
        draw_legend(&mut out, &self.series);
        self.draw_bands(&mut out, plot);
        self.draw_grid(&mut out, plot);
        for series in self.series.iter() {
            self.draw_series(&mut out, plot, series);
        }
        draw_frame(&mut out, plot, &self.x.label, &self.y.label);
        out.push_str("</svg>");
        out
    }

    fn map(&self, plot: Plot, x: f64, y: f64) -> Option<(f64, f64)> {
        let fx = self.x.fraction(x)?.clamp(0.0, 1.0);
        let fy = self.y.fraction(y)?.clamp(0.0, 1.0);
        Some((
            plot.left + fx * plot.width,
            plot.bottom() - fy * plot.height,
        ))
    }

    fn draw_bands(&self, out: &mut String, plot: Plot) {
        for (i, band) in self.bands.iter().enumerate() {
            let (Some(f0), Some(f1)) = (self.x.fraction(band.x0), self.x.fraction(band.x1)) else {
                continue;
            };
            let x0 = plot.left + f0.clamp(0.0, 1.0) * plot.width;
            let x1 = plot.left + f1.clamp(0.0, 1.0) * plot.width;
            let fill = if i % 2 == 0 { "#eef3fa" } else { "#f7f7f2" };
            let _ = write!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>",
                plot.top,
                (x1 - x0).max(0.0),
                plot.height
            );
            if i > 0 {
                let _ = write!(
                    out,
                    "<line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{x0:.1}\" y2=\"{:.1}\" \
                     stroke=\"#8a94a6\" stroke-dasharray=\"3 3\"/>",
                    plot.top,
                    plot.bottom()
                );
            }
            // Label only when it fits inside its band, so neighbours never overlap.
            if text_width(&band.label, 12.0) + 8.0 <= x1 - x0 {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#4a5568\">{}</text>",
                    x0 + 4.0,
                    plot.top + 14.0,
                    escape(&band.label)
                );
            }
        }
    }

    fn draw_grid(&self, out: &mut String, plot: Plot) {
        let mut last_label_right = f64::MIN;
        for (value, label) in &self.x.ticks {
            let Some((x, _)) = self.map(plot, *value, self.y.min.max(f64::MIN_POSITIVE)) else {
                continue;
            };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e2e5ea\"/>",
                plot.top,
                plot.bottom()
            );
            let half = text_width(label, FONT_SIZE) / 2.0;
            if x - half > last_label_right + 6.0 {
                let _ = write!(
                    out,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                    plot.bottom() + 18.0,
                    escape(label)
                );
                last_label_right = x + half;
            }
        }
        let mut last_label_y = f64::MAX;
        for (value, label) in &self.y.ticks {
            let Some(fy) = self.y.fraction(*value) else {
                continue;
            };
            let y = plot.bottom() - fy.clamp(0.0, 1.0) * plot.height;
            let _ = write!(
                out,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e2e5ea\"/>",
                plot.left,
                plot.right()
            );
            if last_label_y - y >= FONT_SIZE + 2.0 {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                    plot.left - 8.0,
                    y + 4.5,
                    escape(label)
                );
                last_label_y = y;
            }
        }
    }

    /// Draws a series as polylines, broken where a log axis cannot show a point (value <= 0).
    fn draw_series(&self, out: &mut String, plot: Plot, series: &Series) {
        let dash = if series.dashed {
            " stroke-dasharray=\"7 4\""
        } else {
            ""
        };
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, y) in series.points.iter().take(POINTS_MAX) {
            match self.map(plot, *x, *y) {
                Some(point) => segments.last_mut().into_iter().for_each(|s| s.push(point)),
                None => segments.push(Vec::new()),
            }
        }
        for segment in segments.iter().filter(|s| !s.is_empty()) {
            let points: Vec<String> = segment
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2.2\" \
                 stroke-linejoin=\"round\"{dash} points=\"{}\"/>",
                series.color,
                points.join(" ")
            );
            if series.markers || segment.len() == 1 {
                for (x, y) in segment {
                    let _ = write!(
                        out,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.2\" fill=\"{}\"/>",
                        series.color
                    );
                }
            }
        }
    }
}

fn draw_frame(out: &mut String, plot: Plot, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" \
         stroke=\"#9aa3b2\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#111\">{}</text>\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\" \
         fill=\"#111\">{}</text>",
        plot.left,
        plot.top,
        plot.width,
        plot.height,
        plot.left + plot.width / 2.0,
        plot.bottom() + 44.0,
        escape(x_label),
        plot.top + plot.height / 2.0,
        escape(y_label)
    );
}

/// A grouped bar chart: one group per category (phase), one bar per series (engine).
#[derive(Debug, Clone)]
pub(crate) struct BarChart {
    pub title: String,
    pub y_label: String,
    pub groups: Vec<String>,
    pub series: Vec<String>,
    /// `values[group][series]`.
    pub values: Vec<Vec<f64>>,
    pub format: fn(f64) -> String,
}

impl BarChart {
    /// Renders the chart as one `<svg>` element.
    pub fn render(&self) -> String {
        assert_eq!(
            self.values.len(),
            self.groups.len(),
            "one value row per group"
        );
        assert!(
            self.series.len() <= SERIES_MAX,
            "too many series for one chart"
        );
        let legend: Vec<Series> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: name.clone(),
                color: color(i),
                dashed: false,
                markers: false,
                points: Vec::new(),
            })
            .collect();
        let (_, legend_rows) = legend_layout(&legend);
        let top = TITLE_HEIGHT + legend_rows as f64 * LEGEND_ROW_HEIGHT + 22.0;
        let height = CHART_HEIGHT + legend_rows as f64 * LEGEND_ROW_HEIGHT;
        let plot = Plot {
            left: MARGIN_LEFT,
            top,
            width: CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
            height: height - top - MARGIN_BOTTOM,
        };
        let data_max = self.values.iter().flatten().cloned().fold(0.0, f64::max);
        let y = Axis::linear(&self.y_label, 0.0, data_max, self.format);
        let mut out = String::new();
        svg_open(&mut out, height, &self.title);
        draw_legend(&mut out, &legend);
        for (value, label) in &y.ticks {
            let py = plot.bottom() - (value / y.max) * plot.height;
            let _ = write!(
                out,
                "<line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e2e5ea\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                plot.left,
                plot.right(),
                plot.left - 8.0,
                py + 4.5,
                escape(label)
            );
        }
        self.draw_bars(&mut out, plot, y.max);
        draw_frame(&mut out, plot, "phase", &self.y_label);
        out.push_str("</svg>");
        out
    }

    fn draw_bars(&self, out: &mut String, plot: Plot, y_max: f64) {
        let groups = self.groups.len().max(1) as f64;
        let group_width = plot.width / groups;
        let bars = self.series.len().max(1) as f64;
        let bar_width = (group_width * 0.8 / bars).min(90.0);
        for (g, group) in self.groups.iter().enumerate() {
            let group_left = plot.left + g as f64 * group_width;
            let bars_left = group_left + (group_width - bar_width * bars) / 2.0;
            for (s, value) in self.values[g].iter().enumerate().take(self.series.len()) {
                let h = if y_max > 0.0 {
                    value / y_max * plot.height
                } else {
                    0.0
                };
                let x = bars_left + s as f64 * bar_width;
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
                     fill=\"{}\"><title>{}: {}</title></rect>",
                    x + 2.0,
                    plot.bottom() - h,
                    bar_width - 4.0,
                    color(s),
                    escape(&self.series[s]),
                    escape(&(self.format)(*value))
                );
                let label = (self.format)(*value);
                if text_width(&label, 11.0) <= bar_width {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" \
                         fill=\"#222\">{}</text>",
                        x + bar_width / 2.0,
                        plot.bottom() - h - 4.0,
                        escape(&label)
                    );
                }
            }
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                group_left + group_width / 2.0,
                plot.bottom() + 18.0,
                escape(group)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_labels() {
        assert_eq!(format_latency(0.5), "500 ns");
        assert_eq!(format_latency(1.0), "1 µs");
        assert_eq!(format_latency(2.5), "2.5 µs");
        assert_eq!(format_latency(5000.0), "5 ms");
        assert_eq!(format_latency(2_000_000.0), "2 s");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(37.0), 50.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn log_axis_covers_data_in_decades() {
        let axis = Axis::log_latency_us("latency", 1.7, 3400.0);
        assert_eq!(axis.min, 1.0);
        assert_eq!(axis.max, 10_000.0);
        assert_eq!(axis.fraction(-1.0), None);
        let linear = Axis::linear("ops", 0.0, 37.0, format_count);
        assert!(linear.max >= 37.0);
        assert_eq!(format_count(1_500_000.0), "1.5M");
        assert_eq!(format_count(20_000.0), "20k");
    }
}
