//! Interval reports from CDRs: per queue and per agent figures, Erlang-C staffing, and
//! text-table / CSV / HTML output.
//!
//! ```no_run
//! # use cdr::report::*;
//! # use time::macros::datetime;
//! let query = ReportQuery::new(
//!     datetime!(2025-03-01 0:00 UTC),
//!     datetime!(2025-04-01 0:00 UTC),
//!     Interval::Day,
//! );
//! let report = build_report_from_dir("/var/lib/switchboard/cdr".as_ref(), &query, &mut |p| {
//!     eprint!("\r{} CDRs read", p.records_read);
//! })?;
//! report.write(ReportFormat::Html, &mut std::io::stdout().lock())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`build_report_from_postgres`] builds the same report from the PostgreSQL sink's
//! `cdr_calls` table.
//!
//! The figures and their formulas are defined in [`figures`]; the staffing model in
//! [`erlang`].

mod aggregate;
pub mod call_scan;
pub mod campaign_figures;
pub mod erlang;
pub mod figures;
mod interval;
mod postgres;
mod reader;
mod render;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use time::OffsetDateTime;

pub use aggregate::ReportBuilder;
pub use call_scan::{count_transfers, AgentTransfers, CallScan};
pub use campaign_figures::{count_campaign_attempts, CampaignContacts, CampaignFigures};

/// The HTML report's SVG charts and page style, for other pages with the same look
/// (`switchboard simulate` uses them).
pub mod charts {
    pub use super::render::html::STYLE;
    pub use super::render::svg::{escape, rate_lines, stacked_bars, Bar, Point, Series, TimeRange};
}
pub use erlang::{agents_needed, StaffingError};
pub use figures::{CallFacts, Figures};
pub use interval::{Interval, UnknownInterval};
pub use postgres::build_report_from_postgres;
pub use reader::{files_for_range, ReportProgress, SourceStats};

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// Start of the range (inclusive, whole seconds). A call counts at its `enqueued` time,
    /// or at `arrived` if it never queued.
    pub from: OffsetDateTime,
    /// End of the range (exclusive, whole seconds).
    pub to: OffsetDateTime,
    /// Row length.
    pub interval: Interval,
    /// Only calls of this queue.
    pub queue: Option<String>,
    /// Only calls of this agent.
    pub agent: Option<String>,
    /// Service-level target used for Erlang-C staffing, as a fraction (default 0.8). The
    /// threshold comes from the CDRs (the queue's configuration at the time).
    pub target_service_level: f64,
}

impl ReportQuery {
    /// A query for `[from, to)` by `interval`, all queues and agents, 80 % target.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, interval: Interval) -> ReportQuery {
        ReportQuery {
            from,
            to,
            interval,
            queue: None,
            agent: None,
            target_service_level: 0.8,
        }
    }

    /// Checks the range and the target.
    pub fn validate(&self) -> Result<(), ReportError> {
        if self.from.unix_timestamp() >= self.to.unix_timestamp() {
            return Err(ReportError::EmptyRange {
                from: self.from,
                to: self.to,
            });
        }
        let target = self.target_service_level;
        if !(target > 0.0 && target < 1.0) {
            return Err(ReportError::InvalidTarget(target));
        }
        Ok(())
    }
}

/// One row: the figures of one interval for one group (all queues, a queue or an agent).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Start of the interval (UTC).
    pub interval_start: OffsetDateTime,
    /// End of the interval (exclusive).
    pub interval_end: OffsetDateTime,
    /// The queue or agent name, or `all queues`.
    pub group: String,
    /// The figures.
    pub figures: Figures,
}

/// Erlang-C staffing advice for one queue in one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffingRow {
    /// Start of the interval (UTC).
    pub interval_start: OffsetDateTime,
    /// The queue.
    pub queue: String,
    /// Calls to staff for: offered minus short abandons.
    pub calls: u64,
    /// AHT used: the interval's, or the queue's over the whole range if the interval had
    /// no answered call; `None` if the queue answered nothing at all.
    pub aht_s: Option<f64>,
    /// The queue's service-level threshold (seconds).
    pub threshold_s: f64,
    /// The service level actually reached, for comparison.
    pub observed_service_level: Option<f64>,
    /// Agents needed to reach the query's target at this volume and AHT (raw, before
    /// shrinkage); `None` when it cannot be computed.
    pub agents_needed: Option<u32>,
}

/// A finished report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was asked.
    pub query: ReportQuery,
    /// Per interval, all queues together.
    pub totals: Vec<ReportRow>,
    /// Per interval and queue.
    pub queues: Vec<ReportRow>,
    /// Per interval and agent.
    pub agents: Vec<ReportRow>,
    /// The whole range, all queues.
    pub overall: Figures,
    /// Per interval and queue.
    pub staffing: Vec<StaffingRow>,
    /// What reading the source found.
    pub source: SourceStats,
    /// Transfers made (out) and taken over (in) per agent over the whole range, by agent id.
    /// Filled by whoever read the whole call records (the CDR files); empty from PostgreSQL,
    /// which keeps the calls' figures only.
    pub agent_transfers: Vec<(String, AgentTransfers)>,
    /// Per campaign by name: its attempts over the range by result, and where its contacts
    /// stand. Filled, like `agent_transfers`, by whoever read the whole call records.
    pub campaigns: Vec<(String, CampaignFigures)>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Aligned plain text.
    Table,
    /// CSV, one row per interval and group, with a `section` column.
    Csv,
    /// A self-contained HTML page with SVG charts and the staffing table.
    Html,
}

/// A format name that is not `table`, `csv` or `html`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected table, csv or html")]
pub struct UnknownFormat(pub String);

impl FromStr for ReportFormat {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "table" | "text" => Ok(ReportFormat::Table),
            "csv" => Ok(ReportFormat::Csv),
            "html" => Ok(ReportFormat::Html),
            _ => Err(UnknownFormat(text.to_string())),
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportFormat::Table => "table",
            ReportFormat::Csv => "csv",
            ReportFormat::Html => "html",
        })
    }
}

impl Report {
    /// Writes the report in `format`.
    pub fn write(&self, format: ReportFormat, out: &mut dyn io::Write) -> io::Result<()> {
        match format {
            ReportFormat::Table => render::table::write(self, out),
            ReportFormat::Csv => render::csv::write(self, out),
            ReportFormat::Html => render::html::write(self, out),
        }
    }
}

/// Errors building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the CDR files failed.
    #[error("report: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `from` is not before `to`.
    #[error("report: empty range: from {from} is not before to {to}")]
    EmptyRange {
        /// Requested start.
        from: OffsetDateTime,
        /// Requested end.
        to: OffsetDateTime,
    },
    /// The staffing target is not a fraction between 0 and 1.
    #[error("report: service-level target {0} is not a fraction between 0 and 1 (exclusive)")]
    InvalidTarget(f64),
    /// Reading the calls from PostgreSQL failed.
    #[error("report: {0}")]
    Database(#[from] crate::postgres::PostgresError),
}

impl ReportError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        ReportError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Builds a report from the `cdr-YYYY-MM-DD.jsonl` files in `dir`, streaming them.
///
/// `progress` is called regularly with how much has been read (for a progress bar).
pub fn build_report_from_dir(
    dir: &Path,
    query: &ReportQuery,
    progress: &mut dyn FnMut(&ReportProgress),
) -> Result<Report, ReportError> {
    query.validate()?;
    let mut builder = ReportBuilder::new(query.clone());
    let source = reader::read_cdr_dir(dir, query, &mut |call| builder.add(call), progress)?;
    Ok(builder.finish(source))
}
