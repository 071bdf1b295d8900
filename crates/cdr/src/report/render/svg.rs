//! Small hand-written SVG charts over a time axis (no dependencies, no script).
//!
//! Intervals are placed by their real time, so gaps without calls show as gaps.

use std::fmt::Write;

use time::OffsetDateTime;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// The time span on the x axis (Unix seconds, `[from, to)`).
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    /// First second shown.
    pub from_s: i64,
    /// End of the axis (exclusive).
    pub to_s: i64,
}

impl TimeRange {
    fn x(&self, at_s: i64) -> f64 {
        let span = (self.to_s - self.from_s).max(1) as f64;
        let clamped = at_s.clamp(self.from_s, self.to_s);
        LEFT + (clamped - self.from_s) as f64 / span * PLOT_W
    }
}

/// A named, coloured data series.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
}

/// One interval's stacked values, in series order.
pub struct Bar {
    /// Interval start (Unix seconds).
    pub start_s: i64,
    /// Interval end.
    pub end_s: i64,
    /// One value per series, stacked.
    pub values: Vec<f64>,
}

/// One point of a rate line: the middle of an interval and a fraction (or a gap).
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Where on the time axis (Unix seconds).
    pub at_s: i64,
    /// The fraction, or `None` for a gap.
    pub value: Option<f64>,
}

/// How the y axis of a chart is labelled.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Count,
    Percent,
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Rounds up to 1, 2 or 5 × a power of ten, so gridlines fall on round numbers.
fn nice_ceiling(value: f64) -> f64 {
    if !(value.is_finite() && value > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

/// A stacked bar chart of counts per interval.
pub fn stacked_bars(title: &str, range: TimeRange, series: &[Series<'_>], bars: &[Bar]) -> String {
    let highest = bars
        .iter()
        .map(|bar| bar.values.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let y_max = nice_ceiling(highest);
    let mut svg = open_chart(title, range, series, y_max, Scale::Count);
    let y = |v: f64| TOP + PLOT_H - v / y_max * PLOT_H;
    for bar in bars {
        let x0 = range.x(bar.start_s);
        let x1 = range.x(bar.end_s);
        // A small gap between bars, but never thinner than a hairline.
        let width = ((x1 - x0) * 0.85).max(0.6);
        let mut base = 0.0;
        for (value, s) in bar.values.iter().zip(series) {
            if *value <= 0.0 {
                continue;
            }
            let top = y(base + value);
            let height = y(base) - top;
            let _ = write!(
                svg,
                r#"<rect x="{x0:.2}" y="{top:.2}" width="{width:.2}" height="{height:.2}" fill="{}"><title>{}: {}</title></rect>"#,
                s.color,
                escape(s.name),
                value
            );
            base += value;
        }
    }
    if bars.is_empty() {
        no_data(&mut svg);
    }
    svg.push_str("</svg>\n");
    svg
}

/// A line chart of rates (fractions shown as percentages), with an optional target line.
pub fn rate_lines(
    title: &str,
    range: TimeRange,
    series: &[Series<'_>],
    lines: &[Vec<Point>],
    target: Option<(f64, &str)>,
    fixed_max: Option<f64>,
) -> String {
    let highest = lines
        .iter()
        .flatten()
        .filter_map(|p| p.value)
        .chain(target.map(|(t, _)| t))
        .fold(0.0, f64::max);
    let y_max = fixed_max.unwrap_or_else(|| nice_ceiling(highest * 100.0).max(1.0) / 100.0);
    let mut svg = open_chart(title, range, series, y_max, Scale::Percent);
    let y = |v: f64| TOP + PLOT_H - (v / y_max).min(1.0) * PLOT_H;
    if let Some((target, label)) = target {
        let ty = y(target);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.2}" y1="{ty:.2}" y2="{ty:.2}" stroke="#888" stroke-dasharray="6 4"/><text x="{:.2}" y="{:.2}" text-anchor="end" class="note">{}</text>"##,
            LEFT + PLOT_W,
            LEFT + PLOT_W - 4.0,
            ty - 4.0,
            escape(label)
        );
    }
    let mut any_point = false;
    // Thousands of 15-minute points in 900 pixels: a thick line would be a solid band.
    let stroke_width = if lines.iter().map(Vec::len).max().unwrap_or(0) > 300 {
        0.8
    } else {
        1.8
    };
    for (points, s) in lines.iter().zip(series) {
        let mut path = String::new();
        let mut pen_down = false;
        let dots = points.len() <= 120;
        for point in points {
            let Some(value) = point.value else {
                pen_down = false;
                continue;
            };
            any_point = true;
            let (px, py) = (range.x(point.at_s), y(value));
            let _ = write!(path, "{}{px:.2} {py:.2} ", if pen_down { "L" } else { "M" });
            pen_down = true;
            if dots {
                let _ = write!(
                    svg,
                    r#"<circle cx="{px:.2}" cy="{py:.2}" r="2.5" fill="{}"><title>{}: {:.1} %</title></circle>"#,
                    s.color,
                    escape(s.name),
                    value * 100.0
                );
            }
        }
        if !path.is_empty() {
            let _ = write!(
                svg,
                r#"<path d="{}" fill="none" stroke="{}" stroke-width="{stroke_width}"/>"#,
                path.trim_end(),
                s.color
            );
        }
    }
    if !any_point {
        no_data(&mut svg);
    }
    svg.push_str("</svg>\n");
    svg
}

fn open_chart(
    title: &str,
    range: TimeRange,
    series: &[Series<'_>],
    y_max: f64,
    scale: Scale,
) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="22" class="chart-title">{t}</text>"#,
        t = escape(title)
    );
    // Horizontal gridlines with y labels.
    for i in 0..=4 {
        let value = y_max * f64::from(i) / 4.0;
        let gy = TOP + PLOT_H - PLOT_H * f64::from(i) / 4.0;
        let label = match scale {
            Scale::Count => format_count(value),
            Scale::Percent => format!("{:.0} %", value * 100.0),
        };
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.2}" y1="{gy:.2}" y2="{gy:.2}" stroke="#e3e3e3"/><text x="{:.2}" y="{:.2}" text-anchor="end" class="axis">{label}</text>"##,
            LEFT + PLOT_W,
            LEFT - 6.0,
            gy + 4.0
        );
    }
    // Time ticks.
    let span = range.to_s - range.from_s;
    let ticks = 6;
    for i in 0..=ticks {
        let at_s = range.from_s + span * i / ticks;
        let tx = range.x(at_s);
        let anchor = match i {
            0 => "start",
            i if i == ticks => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r##"<line x1="{tx:.2}" x2="{tx:.2}" y1="{:.2}" y2="{:.2}" stroke="#999"/><text x="{tx:.2}" y="{:.2}" text-anchor="{anchor}" class="axis">{}</text>"##,
            TOP + PLOT_H,
            TOP + PLOT_H + 4.0,
            TOP + PLOT_H + 18.0,
            time_label(at_s, span)
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.2}" y1="{:.2}" y2="{:.2}" stroke="#999"/>"##,
        LEFT + PLOT_W,
        TOP + PLOT_H,
        TOP + PLOT_H
    );
    // Legend, right-aligned above the plot.
    let mut lx = WIDTH - RIGHT;
    for s in series.iter().rev() {
        let text_width = 7.0 * s.name.chars().count() as f64;
        lx -= text_width + 22.0;
        let _ = write!(
            svg,
            r#"<rect x="{lx:.2}" y="12" width="12" height="12" fill="{}"/><text x="{:.2}" y="22" class="axis">{}</text>"#,
            s.color,
            lx + 16.0,
            escape(s.name)
        );
    }
    svg
}

fn no_data(svg: &mut String) {
    let _ = write!(
        svg,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="middle" class="note">no calls in this range</text>"#,
        LEFT + PLOT_W / 2.0,
        TOP + PLOT_H / 2.0
    );
}

fn format_count(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn time_label(at_s: i64, span_s: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(at_s) else {
        return String::new();
    };
    let (m, d) = (u8::from(at.month()), at.day());
    if span_s <= 2 * 86_400 {
        format!("{m:02}-{d:02} {:02}:{:02}", at.hour(), at.minute())
    } else {
        format!("{:04}-{m:02}-{d:02}", at.year())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(200.0), 200.0);
        assert_eq!(nice_ceiling(201.0), 500.0);
        assert!((nice_ceiling(0.031) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn gaps_break_lines() {
        let range = TimeRange {
            from_s: 0,
            to_s: 400,
        };
        let points = vec![
            Point {
                at_s: 50,
                value: Some(0.5),
            },
            Point {
                at_s: 150,
                value: None,
            },
            Point {
                at_s: 250,
                value: Some(0.7),
            },
            Point {
                at_s: 350,
                value: Some(0.9),
            },
        ];
        let svg = rate_lines(
            "SL",
            range,
            &[Series {
                name: "sl",
                color: "#000",
            }],
            &[points],
            Some((0.8, "target")),
            Some(1.0),
        );
        let path = svg.split("<path d=\"").nth(1).unwrap();
        let d = path.split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
