//! Writing simulated scenarios as a text table, CSV or a self-contained HTML page (the
//! report's charts and style). Several scenarios (`--compare`, `--vary`) are compared side by
//! side over the whole period first, then shown interval by interval.

use std::fmt::Write as _;
use std::io::{self, Write};

use cdr::report::charts::{self, Bar, Point, Series, TimeRange};
use cdr::report::Interval;
use time::OffsetDateTime;

use super::erlang_a::Prediction;
use super::statistics::Estimate;
use super::summary::{Row, Summary, ALL_QUEUES};

/// What heads the output.
#[derive(Debug, Clone)]
pub struct Header {
    /// Period start (Unix seconds).
    pub from_unix: i64,
    /// Period end.
    pub to_unix: i64,
    /// Row length.
    pub interval: Interval,
    /// Seed used.
    pub seed: u64,
    /// Where calls, talk times and patience came from.
    pub source: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text.
    Table,
    /// One CSV row per scenario, section, interval and queue.
    Csv,
    /// HTML page with charts.
    Html,
}

fn time_label(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| unix.to_string())
}

fn count(e: Option<Estimate>) -> String {
    match e {
        Some(Estimate {
            mean,
            half_width: Some(h),
            ..
        }) => format!("{mean:.1}±{h:.1}"),
        Some(e) => format!("{:.1}", e.mean),
        None => String::new(),
    }
}

fn percent(e: Option<Estimate>) -> String {
    match e {
        Some(Estimate {
            mean,
            half_width: Some(h),
            ..
        }) => format!("{:.1}±{:.1} %", mean * 100.0, h * 100.0),
        Some(e) => format!("{:.1} %", e.mean * 100.0),
        None => String::new(),
    }
}

fn plain_percent(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{:.1} %", v * 100.0))
}

fn plain_seconds(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:.1}"))
}

const TABLE_HEADINGS: [&str; 15] = [
    "scenario",
    "interval",
    "queue",
    "offered",
    "answered",
    "abandoned",
    "service level",
    "ASA s",
    "abandon rate",
    "occupancy",
    "agents",
    "Erlang C SL",
    "Erlang C ASA",
    "Erlang A SL",
    "Erlang A ASA / aband.",
];

fn table_cells(scenario: &str, label: &str, row: &Row) -> Vec<String> {
    let f = &row.figures;
    let c = f.erlang_c;
    let a = f.erlang_a;
    vec![
        scenario.to_owned(),
        label.to_owned(),
        row.group.clone(),
        count(f.offered),
        count(f.answered),
        count(f.abandoned),
        percent(f.service_level),
        count(f.asa_s),
        percent(f.abandon_rate),
        percent(f.occupancy),
        f.agents.map_or_else(String::new, |n| format!("{n:.1}")),
        plain_percent(c.map(|p| p.service_level)),
        plain_seconds(c.map(|p| p.asa_s)),
        plain_percent(a.map(|p| p.service_level)),
        a.map_or_else(String::new, |p: Prediction| {
            format!("{:.1} / {:.1} %", p.asa_s, p.abandon_rate * 100.0)
        }),
    ]
}

fn write_aligned(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    let columns = TABLE_HEADINGS.len();
    let mut widths = vec![0usize; columns];
    let headings: Vec<String> = TABLE_HEADINGS.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&headings).chain(rows) {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in std::iter::once(&headings).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i < 3 {
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn describe(header: &Header, summaries: &[Summary]) -> String {
    format!(
        "{} to {}, {} runs per scenario, seed {}; ± is the 95 % confidence half-width; {}",
        time_label(header.from_unix),
        time_label(header.to_unix),
        summaries.first().map_or(0, |s| s.runs),
        header.seed,
        header.source
    )
}

/// Writes `summaries` in `format`.
pub fn write(
    format: Format,
    header: &Header,
    summaries: &[Summary],
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => write_table(header, summaries, out),
        Format::Csv => write_csv(summaries, out),
        Format::Html => write_html(header, summaries, out),
    }
}

fn write_table(header: &Header, summaries: &[Summary], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Switchboard simulation: {}",
        describe(header, summaries)
    )?;
    writeln!(out)?;
    writeln!(out, "Whole period")?;
    let whole: Vec<Vec<String>> = summaries
        .iter()
        .flat_map(|s| {
            s.overall
                .iter()
                .map(move |row| table_cells(&s.name, "whole period", row))
        })
        .collect();
    write_aligned(out, &whole)?;
    for summary in summaries {
        writeln!(out)?;
        writeln!(out, "By interval: {}", summary.name)?;
        let rows: Vec<Vec<String>> = summary
            .rows
            .iter()
            .map(|row| table_cells(&summary.name, &time_label(row.start_unix), row))
            .collect();
        write_aligned(out, &rows)?;
    }
    Ok(())
}

fn raw(e: Option<Estimate>) -> [String; 2] {
    match e {
        Some(e) => [
            format!("{:.6}", e.mean),
            e.half_width.map_or_else(String::new, |h| format!("{h:.6}")),
        ],
        None => [String::new(), String::new()],
    }
}

fn raw_value(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v:.6}"))
}

fn write_csv(summaries: &[Summary], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "scenario,section,interval_start,interval_end,queue,offered,offered_ci,answered,answered_ci,\
         abandoned,abandoned_ci,service_level,service_level_ci,asa_s,asa_s_ci,abandon_rate,\
         abandon_rate_ci,occupancy,occupancy_ci,agents,erlang_c_service_level,erlang_c_asa_s,\
         erlang_a_service_level,erlang_a_asa_s,erlang_a_abandon_rate"
    )?;
    let quote = |text: &str| {
        if text.contains([',', '"', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    };
    for summary in summaries {
        let sections = [("period", &summary.overall), ("interval", &summary.rows)];
        for (section, rows) in sections {
            for row in rows {
                let f = &row.figures;
                let mut cells = vec![
                    quote(&summary.name),
                    section.to_owned(),
                    time_label(row.start_unix),
                    time_label(row.end_unix),
                    quote(&row.group),
                ];
                for e in [
                    f.offered,
                    f.answered,
                    f.abandoned,
                    f.service_level,
                    f.asa_s,
                    f.abandon_rate,
                    f.occupancy,
                ] {
                    cells.extend(raw(e));
                }
                cells.push(raw_value(f.agents));
                cells.push(raw_value(f.erlang_c.map(|p| p.service_level)));
                cells.push(raw_value(f.erlang_c.map(|p| p.asa_s)));
                cells.push(raw_value(f.erlang_a.map(|p| p.service_level)));
                cells.push(raw_value(f.erlang_a.map(|p| p.asa_s)));
                cells.push(raw_value(f.erlang_a.map(|p| p.abandon_rate)));
                writeln!(out, "{}", cells.join(","))?;
            }
        }
    }
    Ok(())
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn html_table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    writeln!(out, "<table><tr>")?;
    for heading in TABLE_HEADINGS {
        write!(out, "<th>{}</th>", charts::escape(heading))?;
    }
    writeln!(out, "</tr>")?;
    for row in rows {
        write!(out, "<tr>")?;
        for (i, cell) in row.iter().enumerate() {
            let class = if i >= 3 { " class=\"n\"" } else { "" };
            write!(out, "<td{class}>{}</td>", charts::escape(cell))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")
}

fn write_html(header: &Header, summaries: &[Summary], out: &mut dyn Write) -> io::Result<()> {
    let meta = describe(header, summaries);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>Switchboard simulation</title>\n\
         <style>{}</style>\n</head>\n<body>\n<h1>Switchboard simulation</h1>\n\
         <p class=\"meta\">{}</p>\n",
        charts::STYLE,
        charts::escape(&meta)
    )?;
    writeln!(out, "<h2>Whole period</h2>")?;
    let whole: Vec<Vec<String>> = summaries
        .iter()
        .flat_map(|s| {
            s.overall
                .iter()
                .map(move |row| table_cells(&s.name, "whole period", row))
        })
        .collect();
    html_table(out, &whole)?;
    let range = TimeRange {
        from_s: header.from_unix,
        to_s: header.to_unix,
    };
    for summary in summaries {
        writeln!(out, "<h2>{}</h2>", charts::escape(&summary.name))?;
        let queues: Vec<&str> = summary
            .overall
            .iter()
            .map(|r| r.group.as_str())
            .filter(|g| *g != ALL_QUEUES)
            .collect();
        let mut names = Vec::new();
        let mut lines = Vec::new();
        for queue in &queues {
            let rows: Vec<&Row> = summary.rows.iter().filter(|r| r.group == *queue).collect();
            let middle = |r: &Row| r.start_unix + (r.end_unix - r.start_unix) / 2;
            names.push(format!("{queue} simulated"));
            lines.push(
                rows.iter()
                    .map(|r| Point {
                        at_s: middle(r),
                        value: r.figures.service_level.map(|e| e.mean),
                    })
                    .collect::<Vec<_>>(),
            );
            names.push(format!("{queue} Erlang A"));
            lines.push(
                rows.iter()
                    .map(|r| Point {
                        at_s: middle(r),
                        value: r.figures.erlang_a.map(|p| p.service_level),
                    })
                    .collect(),
            );
        }
        let series: Vec<Series<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name,
                color: COLOURS[(i / 2 * 2 + i % 2) % COLOURS.len()],
            })
            .collect();
        out.write_all(
            charts::rate_lines(
                "Service level by interval",
                range,
                &series,
                &lines,
                Some((0.8, "80 %")),
                Some(1.0),
            )
            .as_bytes(),
        )?;
        let offered_series: Vec<Series<'_>> = queues
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name,
                color: COLOURS[i % COLOURS.len()],
            })
            .collect();
        let mut bars = Vec::new();
        for row in summary.rows.iter().filter(|r| r.group == ALL_QUEUES) {
            let values = queues
                .iter()
                .map(|queue| {
                    summary
                        .rows
                        .iter()
                        .find(|r| r.start_unix == row.start_unix && r.group == *queue)
                        .and_then(|r| r.figures.offered)
                        .map_or(0.0, |e| e.mean)
                })
                .collect();
            bars.push(Bar {
                start_s: row.start_unix,
                end_s: row.end_unix,
                values,
            });
        }
        out.write_all(
            charts::stacked_bars(
                "Calls offered (mean of runs)",
                range,
                &offered_series,
                &bars,
            )
            .as_bytes(),
        )?;
        let rows: Vec<Vec<String>> = summary
            .rows
            .iter()
            .map(|row| table_cells(&summary.name, &time_label(row.start_unix), row))
            .collect();
        html_table(out, &rows)?;
    }
    writeln!(out, "</body>\n</html>")
}
