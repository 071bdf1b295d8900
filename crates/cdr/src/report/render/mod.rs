//! Report output: the columns every format shares, and one module per format.

pub(super) mod csv;
pub(super) mod html;
pub(super) mod svg;
pub(super) mod table;

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{Figures, Report};

/// A value as shown in a report cell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Count(u64),
    /// A fraction 0..=1, shown as a percentage.
    Rate(Option<f64>),
    Seconds(Option<f64>),
    Score(Option<f64>),
}

impl Cell {
    /// For people: `95.2 %`, `12.3`, empty when undefined.
    fn display(self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Rate(Some(r)) => format!("{:.1} %", r * 100.0),
            Cell::Seconds(Some(s)) => format!("{s:.1}"),
            Cell::Score(Some(s)) => format!("{s:.2}"),
            Cell::Rate(None) | Cell::Seconds(None) | Cell::Score(None) => String::new(),
        }
    }

    /// For machines: rates as fractions, full precision, empty when undefined.
    fn raw(self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Rate(Some(r)) => format!("{r:.6}"),
            Cell::Seconds(Some(s)) => format!("{s:.3}"),
            Cell::Score(Some(s)) => format!("{s:.4}"),
            Cell::Rate(None) | Cell::Seconds(None) | Cell::Score(None) => String::new(),
        }
    }
}

/// One figure column: its heading for people, its CSV name, and how to get it.
struct Column {
    title: &'static str,
    csv_name: &'static str,
    value: fn(&Figures) -> Cell,
}

const COLUMNS: &[Column] = &[
    Column {
        title: "Offered",
        csv_name: "offered",
        value: |f| Cell::Count(f.offered),
    },
    Column {
        title: "Answered",
        csv_name: "answered",
        value: |f| Cell::Count(f.answered),
    },
    Column {
        title: "Abandoned",
        csv_name: "abandoned",
        value: |f| Cell::Count(f.abandoned),
    },
    Column {
        title: "Abandoned <5s",
        csv_name: "abandoned_short",
        value: |f| Cell::Count(f.abandoned_short),
    },
    Column {
        title: "Answer rate",
        csv_name: "answer_rate",
        value: |f| Cell::Rate(f.answer_rate()),
    },
    Column {
        title: "Service level",
        csv_name: "service_level",
        value: |f| Cell::Rate(f.service_level()),
    },
    Column {
        title: "ASA s",
        csv_name: "asa_s",
        value: |f| Cell::Seconds(f.asa_s()),
    },
    Column {
        title: "AHT s",
        csv_name: "aht_s",
        value: |f| Cell::Seconds(f.aht_s()),
    },
    Column {
        title: "Longest wait s",
        csv_name: "longest_wait_s",
        value: |f| Cell::Seconds(f.longest_wait()),
    },
    Column {
        title: "Transfer rate",
        csv_name: "transfer_rate",
        value: |f| Cell::Rate(f.transfer_rate()),
    },
    Column {
        title: "Survey avg",
        csv_name: "survey_average",
        value: |f| Cell::Score(f.survey_average()),
    },
];

/// Agents needed per (interval start, queue), to show next to the queue rows.
fn staffing_lookup(report: &Report) -> HashMap<(OffsetDateTime, &str), Option<u32>> {
    report
        .staffing
        .iter()
        .map(|row| ((row.interval_start, row.queue.as_str()), row.agents_needed))
        .collect()
}

/// Describes the query in one line.
fn describe_query(report: &Report) -> String {
    let query = &report.query;
    let mut text = format!(
        "{} to {} (UTC) by {}",
        iso(query.from),
        iso(query.to),
        query.interval
    );
    if let Some(queue) = &query.queue {
        text.push_str(&format!(", queue {queue}"));
    }
    if let Some(agent) = &query.agent {
        text.push_str(&format!(", agent {agent}"));
    }
    text
}

fn iso(at: OffsetDateTime) -> String {
    crate::timestamp::format_utc(at).unwrap_or_else(|_| at.to_string())
}

/// Describes the source in one line (so skipped lines are never silent).
fn describe_source(report: &Report) -> String {
    let s = &report.source;
    format!(
        "{} calls counted from {} files ({} lines; {} outside range or filter, {} agent-state, {} malformed skipped)",
        s.calls_counted,
        s.files_read,
        s.lines_read,
        s.calls_filtered_out,
        s.agent_state_lines,
        s.malformed_lines
    )
}
