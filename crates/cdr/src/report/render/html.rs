//! A self-contained HTML page: summary, SVG charts, staffing and figure tables.
//!
//! No script and no external resources (styles inline, `data:` favicon so a browser does not
//! request one), so it renders anywhere, offline, with nothing in the console.

use std::io::{self, Write};

use super::svg::{escape, rate_lines, stacked_bars, Bar, Point, Series, TimeRange};
use super::{describe_query, describe_source, staffing_lookup, Cell, COLUMNS};
use crate::report::{Report, ReportRow};

/// The page style, shared with other pages built on these charts.
pub const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
p.meta{color:#555;margin:2px 0}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:110px}
.tile b{display:block;font-size:20px}.tile span{color:#666;font-size:12px}
.chart{max-width:980px;margin:8px 0 18px}
.chart-title{font-size:14px;font-weight:600;fill:#222}
.axis{font-size:11px;fill:#555}.note{font-size:11px;fill:#777}
table{border-collapse:collapse;font-size:12px;margin-bottom:12px}
th,td{border:1px solid #ddd;padding:3px 7px;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
";

/// Writes the report as one HTML document.
pub(crate) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let title = format!("Switchboard call report, {}", describe_query(report));
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    )?;
    writeln!(out, "<h1>Switchboard call report</h1>")?;
    writeln!(
        out,
        "<p class=\"meta\">{}</p>",
        escape(&describe_query(report))
    )?;
    writeln!(
        out,
        "<p class=\"meta\">{}</p>",
        escape(&describe_source(report))
    )?;
    write_tiles(report, out)?;
    write_charts(report, out)?;
    write_staffing(report, out)?;
    write_rows(
        out,
        "All queues by interval",
        None,
        &report.totals,
        report,
        false,
    )?;
    write_rows(out, "By queue", Some("Queue"), &report.queues, report, true)?;
    write_rows(
        out,
        "By agent",
        Some("Agent"),
        &report.agents,
        report,
        false,
    )?;
    write_agent_transfers(report, out)?;
    write_campaigns(report, out)?;
    writeln!(
        out,
        "<p class=\"meta\">Answer rate, abandon rate and service level are over offered calls \
         minus calls abandoned within 5 s. AHT = talk + hold + wrap-up of answered calls. \
         Times are UTC.</p>\n</body>\n</html>"
    )
}

fn write_tiles(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let f = &report.overall;
    let tiles = [
        ("Offered", Cell::Count(f.offered)),
        ("Answered", Cell::Count(f.answered)),
        ("Answer rate", Cell::Rate(f.answer_rate())),
        ("Service level", Cell::Rate(f.service_level())),
        ("Abandon rate", Cell::Rate(f.abandon_rate())),
        ("ASA (s)", Cell::Seconds(f.asa_s())),
        ("AHT (s)", Cell::Seconds(f.aht_s())),
        ("Longest wait (s)", Cell::Seconds(f.longest_wait())),
        ("Survey avg", Cell::Score(f.survey_average())),
    ];
    writeln!(out, "<div class=\"tiles\">")?;
    for (name, cell) in tiles {
        let value = cell.display();
        let value = if value.is_empty() {
            "–".to_string()
        } else {
            value
        };
        writeln!(
            out,
            "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(name)
        )?;
    }
    writeln!(out, "</div>")
}

fn write_charts(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let range = TimeRange {
        from_s: report.query.from.unix_timestamp(),
        to_s: report.query.to.unix_timestamp(),
    };
    let volume_series = [
        Series {
            name: "answered",
            color: "#2e8b57",
        },
        Series {
            name: "abandoned",
            color: "#d9534f",
        },
        Series {
            name: "abandoned <5s",
            color: "#f0ad4e",
        },
        Series {
            name: "other (overflow, timeout, callback, voicemail)",
            color: "#9aa5b1",
        },
    ];
    let bars: Vec<Bar> = report
        .totals
        .iter()
        .map(|row| {
            let f = &row.figures;
            let other = f
                .offered
                .saturating_sub(f.answered + f.abandoned + f.abandoned_short);
            Bar {
                start_s: row.interval_start.unix_timestamp(),
                end_s: row.interval_end.unix_timestamp(),
                values: vec![
                    f.answered as f64,
                    f.abandoned as f64,
                    f.abandoned_short as f64,
                    other as f64,
                ],
            }
        })
        .collect();
    let middle = |row: &ReportRow| {
        let (start, end) = (
            row.interval_start.unix_timestamp(),
            row.interval_end.unix_timestamp(),
        );
        start + (end - start) / 2
    };
    let points = |value: fn(&ReportRow) -> Option<f64>| -> Vec<Point> {
        report
            .totals
            .iter()
            .map(|row| Point {
                at_s: middle(row),
                value: value(row),
            })
            .collect()
    };
    let target = report.query.target_service_level;
    let target_label = format!("target {:.0} %", target * 100.0);
    let charts = [
        stacked_bars("Call volume", range, &volume_series, &bars),
        rate_lines(
            "Service level",
            range,
            &[Series {
                name: "service level",
                color: "#1f6fb2",
            }],
            &[points(|row| row.figures.service_level())],
            Some((target, &target_label)),
            Some(1.0),
        ),
        rate_lines(
            "Abandon rate",
            range,
            &[
                Series {
                    name: "abandoned (≥5s)",
                    color: "#d9534f",
                },
                Series {
                    name: "all abandons / offered",
                    color: "#f0ad4e",
                },
            ],
            &[
                points(|row| row.figures.abandon_rate()),
                points(|row| {
                    let f = &row.figures;
                    (f.offered > 0)
                        .then(|| (f.abandoned + f.abandoned_short) as f64 / f.offered as f64)
                }),
            ],
            None,
            None,
        ),
    ];
    writeln!(out, "<h2>Trends</h2>")?;
    for chart in charts {
        writeln!(out, "<div class=\"chart\">{chart}</div>")?;
    }
    Ok(())
}

fn write_staffing(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "<h2>Erlang-C staffing</h2>\n<p class=\"meta\">Agents needed on the phones (before \
         shrinkage) to answer {:.0} % of calls within each queue's threshold, at the observed \
         volume and AHT of the interval.</p>",
        report.query.target_service_level * 100.0
    )?;
    if report.staffing.is_empty() {
        return writeln!(out, "<p>No queued calls in this range.</p>");
    }
    writeln!(
        out,
        "<table>\n<tr><th>Interval</th><th>Queue</th><th>Calls</th><th>AHT s</th>\
         <th>Threshold s</th><th>Observed SL</th><th>Agents needed</th></tr>"
    )?;
    let interval = report.query.interval;
    for row in &report.staffing {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&interval.label(row.interval_start)),
            escape(&row.queue),
            row.calls,
            Cell::Seconds(row.aht_s).display(),
            Cell::Seconds(Some(row.threshold_s)).display(),
            escape(&Cell::Rate(row.observed_service_level).display()),
            row.agents_needed.map(|n| n.to_string()).unwrap_or_default()
        )?;
    }
    writeln!(out, "</table>")
}

/// Transfers out and in per agent over the range, when the report read whole call records.
fn write_agent_transfers(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.agent_transfers.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Transfers by agent</h2>")?;
    writeln!(
        out,
        "<table>\n<tr><th>Agent</th><th>Transfers out</th><th>Transfers in</th></tr>"
    )?;
    for (agent, transfers) in &report.agent_transfers {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(agent),
            transfers.out,
            transfers.received
        )?;
    }
    writeln!(out, "</table>")
}

/// Per campaign: attempts over the range by result, and where the contacts stand now.
fn write_campaigns(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    if report.campaigns.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Campaigns</h2>")?;
    writeln!(
        out,
        "<table>\n<tr><th>Campaign</th><th>Attempts</th><th>Answered</th><th>No answer</th>\
         <th>Busy</th><th>Wrong number</th><th>Failed</th><th>Contacts</th><th>Finished</th>\
         <th>Remaining</th><th>Do not call</th><th>Dispositions</th></tr>"
    )?;
    for (campaign, f) in &report.campaigns {
        write!(out, "<tr><td>{}</td>", escape(campaign))?;
        for n in [
            f.attempts,
            f.answered,
            f.no_answer,
            f.busy,
            f.wrong_number,
            f.failed,
        ] {
            write!(out, "<td class=\"n\">{n}</td>")?;
        }
        match &f.contacts {
            Some(c) => {
                for n in [c.total, c.finished, c.remaining, c.do_not_call] {
                    write!(out, "<td class=\"n\">{n}</td>")?;
                }
                let dispositions: Vec<String> = c
                    .dispositions
                    .iter()
                    .map(|(code, n)| format!("{} {n}", escape(code)))
                    .collect();
                writeln!(out, "<td>{}</td></tr>", dispositions.join(", "))?;
            }
            None => writeln!(out, "<td colspan=\"5\">list not found</td></tr>")?,
        }
    }
    writeln!(
        out,
        "</table>\n<p class=\"meta\">Attempts are those of the report's range; contacts and \
         dispositions are the campaign lists as they stand now.</p>"
    )
}

fn write_rows(
    out: &mut dyn Write,
    title: &str,
    group_title: Option<&str>,
    rows: &[ReportRow],
    report: &Report,
    with_staffing: bool,
) -> io::Result<()> {
    writeln!(out, "<h2>{}</h2>", escape(title))?;
    if rows.is_empty() {
        return writeln!(out, "<p>No calls.</p>");
    }
    write!(out, "<table>\n<tr><th>Interval</th>")?;
    if let Some(group_title) = group_title {
        write!(out, "<th>{}</th>", escape(group_title))?;
    }
    for column in COLUMNS {
        write!(out, "<th>{}</th>", escape(column.title))?;
    }
    if with_staffing {
        write!(out, "<th>Agents needed</th>")?;
    }
    writeln!(out, "</tr>")?;
    let staffing = staffing_lookup(report);
    let interval = report.query.interval;
    for row in rows {
        write!(
            out,
            "<tr><td>{}</td>",
            escape(&interval.label(row.interval_start))
        )?;
        if group_title.is_some() {
            write!(out, "<td>{}</td>", escape(&row.group))?;
        }
        for column in COLUMNS {
            let text = (column.value)(&row.figures).display();
            write!(out, "<td class=\"n\">{}</td>", escape(&text))?;
        }
        if with_staffing {
            let needed = staffing
                .get(&(row.interval_start, row.group.as_str()))
                .copied()
                .flatten();
            write!(
                out,
                "<td class=\"n\">{}</td>",
                needed.map(|n| n.to_string()).unwrap_or_default()
            )?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")
}
