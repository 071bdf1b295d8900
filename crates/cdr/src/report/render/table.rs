//! Aligned plain-text output, for a terminal.

use std::io::{self, Write};

use super::{describe_query, describe_source, staffing_lookup, COLUMNS};
use crate::report::{Report, ReportRow};

/// Writes the report as aligned text sections: totals, queues, agents.
pub(crate) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Switchboard call report: {}", describe_query(report))?;
    writeln!(out, "{}", describe_source(report))?;
    let staffing = staffing_lookup(report);
    let interval = report.query.interval;

    let sections: [(&str, &str, &[ReportRow], bool); 3] = [
        ("All queues", "", &report.totals, false),
        ("By queue", "Queue", &report.queues, true),
        ("By agent", "Agent", &report.agents, false),
    ];
    for (title, group_title, rows, with_staffing) in sections {
        writeln!(out)?;
        writeln!(out, "{title}")?;
        let mut header: Vec<String> = vec!["Interval".into()];
        if !group_title.is_empty() {
            header.push(group_title.into());
        }
        header.extend(COLUMNS.iter().map(|c| c.title.to_string()));
        if with_staffing {
            header.push("Agents needed".into());
        }
        let text_columns = header.len() - COLUMNS.len() - usize::from(with_staffing);
        let mut lines = vec![header];
        for row in rows {
            let mut line = vec![interval.label(row.interval_start)];
            if !group_title.is_empty() {
                line.push(row.group.clone());
            }
            line.extend(COLUMNS.iter().map(|c| (c.value)(&row.figures).display()));
            if with_staffing {
                let needed = staffing
                    .get(&(row.interval_start, row.group.as_str()))
                    .copied()
                    .flatten();
                line.push(needed.map(|n| n.to_string()).unwrap_or_default());
            }
            lines.push(line);
        }
        if rows.is_empty() {
            writeln!(out, "  (no calls)")?;
            continue;
        }
        write_aligned(out, &lines, text_columns)?;
    }
    writeln!(out)?;
    write_overall(report, out)
}

fn write_overall(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Whole range, all queues")?;
    let width = COLUMNS.iter().map(|c| c.title.len()).max().unwrap_or(0);
    for column in COLUMNS {
        let value = (column.value)(&report.overall).display();
        writeln!(out, "  {:<width$}  {}", column.title, value)?;
    }
    Ok(())
}

/// Left-aligns the first `text_columns` columns and right-aligns the numbers.
fn write_aligned(
    out: &mut dyn Write,
    lines: &[Vec<String>],
    text_columns: usize,
) -> io::Result<()> {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .filter_map(|line| line.get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in lines {
        let mut text = String::from("  ");
        for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = width.saturating_sub(cell.chars().count());
            if i < text_columns {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            } else {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}
