//! `switchboard report`: service-level, answer/abandon, ASA and AHT reports from the CDR files,
//! as a table, CSV or an HTML page with charts and Erlang-C staffing advice.

use anyhow::{bail, Context};
use cdr::report::{
    build_report_from_dir, build_report_from_postgres, Interval, ReportFormat, ReportProgress,
    ReportQuery,
};
use cdr::PostgresConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// What `switchboard report` was asked for.
pub struct ReportRequest {
    /// CDR directory.
    pub dir: PathBuf,
    /// Start (inclusive): `YYYY-MM-DD` (UTC midnight) or RFC 3339.
    pub from: String,
    /// End (exclusive), same forms.
    pub to: String,
    /// `15m`, `hour`, `day`, `week` or `month`.
    pub interval: String,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// `table`, `csv` or `html`.
    pub format: String,
    /// Write here instead of standard output.
    pub output: Option<PathBuf>,
    /// Read the CDRs from this PostgreSQL database instead of the files.
    pub postgres_url: Option<String>,
    /// List the calls whose survey score is this or less instead of the report.
    pub low_scores: Option<u8>,
}

/// Parses `YYYY-MM-DD` as UTC midnight, or a full RFC 3339 timestamp.
pub fn parse_time(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format)
        .with_context(|| format!("{text:?} is neither YYYY-MM-DD nor an RFC 3339 timestamp"))?;
    Ok(date.midnight().assume_utc())
}

fn parse_format(text: &str) -> anyhow::Result<ReportFormat> {
    Ok(match text {
        "table" => ReportFormat::Table,
        "csv" => ReportFormat::Csv,
        "html" => ReportFormat::Html,
        other => bail!("unknown format {other:?}: expected table, csv or html"),
    })
}

/// Builds and writes the report; progress goes to standard error at most once a second.
pub fn run(request: ReportRequest) -> anyhow::Result<()> {
    let from = parse_time(&request.from)?;
    let to = parse_time(&request.to)?;
    let interval: Interval = request
        .interval
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = parse_format(&request.format)?;
    let mut query = ReportQuery::new(from, to, interval);
    query.queue = request.queue.clone();
    query.agent = request.agent.clone();
    if request.postgres_url.is_none() && !Path::new(&request.dir).is_dir() {
        bail!("CDR directory {} does not exist", request.dir.display());
    }
    if let Some(max_score) = request.low_scores {
        return write_low_scores(&request, &query, max_score, format);
    }
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let mut show = |p: &ReportProgress| {
        if last_shown.elapsed() >= Duration::from_secs(1) {
            last_shown = Instant::now();
            let percent = (p.bytes_read * 100).checked_div(p.bytes_total).unwrap_or(0);
            eprintln!("report: {} records read ({percent}%)", p.records_read);
        }
    };
    let mut report = match &request.postgres_url {
        Some(url) => {
            build_report_from_postgres(&PostgresConfig::new(url.as_str()), &query, &mut show)?
        }
        None => build_report_from_dir(&request.dir, &query, &mut show)?,
    };
    if request.postgres_url.is_none() {
        let figures = whole_call_figures(&request, &query)?;
        report.agent_transfers = figures.transfers.into_iter().collect();
        report.campaigns = figures.campaigns;
    }
    if started.elapsed() >= Duration::from_secs(1) {
        eprintln!("report: done in {:.1} s", started.elapsed().as_secs_f64());
    }
    match &request.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            report.write(format, &mut file)?;
            write_call_sections(&request, format, &query, &report, &mut file)?;
            file.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            report.write(format, &mut out)?;
            write_call_sections(&request, format, &query, &report, &mut out)?;
        }
    }
    Ok(())
}

/// The sections after the table that read whole call records from the CDR files (wrap-up
/// dispositions, transfers by agent, callbacks, campaigns); none for PostgreSQL, which carries
/// the calls' figures only. CSV and HTML carry the transfers and the campaigns in the report
/// itself (`agent_transfers`, `campaigns`).
fn write_call_sections(
    request: &ReportRequest,
    format: ReportFormat,
    query: &ReportQuery,
    report: &cdr::report::Report,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if format != ReportFormat::Table || request.postgres_url.is_some() {
        return Ok(());
    }
    write_wrap_ups(request, query, out)?;
    write_transfers(&report.agent_transfers, out)?;
    write_callbacks(request, query, out)?;
    crate::campaign_report::write(&report.campaigns, out)?;
    Ok(())
}

/// Callbacks asked for and how they ended, per queue; nothing when none was asked for.
fn write_callbacks(
    request: &ReportRequest,
    query: &ReportQuery,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let scan = cdr::report::CallScan {
        from: query.from,
        to: query.to,
        queue: query.queue.as_deref(),
        agent: query.agent.as_deref(),
    };
    let mut by_queue = std::collections::BTreeMap::new();
    scan.each_call(&request.dir, &mut |call| {
        crate::callback_report::count(call, &mut by_queue)
    })
    .map_err(|e| anyhow::anyhow!("reading callbacks: {e}"))?;
    crate::callback_report::write(&by_queue, out)?;
    Ok(())
}

/// The wrap-up codes the agents filed for the report's calls (`<dir>/wrap-up.jsonl`, joined by
/// CDR id); nothing when none were filed.
fn write_wrap_ups(
    request: &ReportRequest,
    query: &ReportQuery,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let counts = crate::web::wrap_up::dispositions_in_range(
        &request.dir,
        query.from,
        query.to,
        query.queue.as_deref(),
        query.agent.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("reading wrap-ups: {e}"))?;
    if counts.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nWrap-up dispositions")?;
    let width = counts
        .iter()
        .map(|(code, _)| code.len())
        .max()
        .unwrap_or(0)
        .max("DISPOSITION".len());
    writeln!(out, "{:<width$}  CALLS", "DISPOSITION")?;
    for (code, calls) in counts {
        writeln!(out, "{code:<width$}  {calls}")?;
    }
    Ok(())
}

/// Transfers made (out) and taken over (in) per agent for the report's calls, and the
/// campaigns (attempts from the CDR files, contacts from the campaign list next to them), in
/// one pass over the CDR files.
fn whole_call_figures(
    request: &ReportRequest,
    query: &ReportQuery,
) -> anyhow::Result<WholeCallFigures> {
    let scan = cdr::report::CallScan {
        from: query.from,
        to: query.to,
        queue: query.queue.as_deref(),
        agent: query.agent.as_deref(),
    };
    let mut by_agent = std::collections::BTreeMap::new();
    let mut by_campaign = std::collections::BTreeMap::new();
    scan.each_call(&request.dir, &mut |call| {
        cdr::report::count_transfers(call, &mut by_agent);
        cdr::report::count_campaign_attempts(call, &mut by_campaign);
    })
    .map_err(|e| anyhow::anyhow!("reading transfers and campaigns: {e}"))?;
    // With an agent filter, only the campaigns that agent dialled.
    let campaigns = crate::campaign_report::gather(
        by_campaign,
        &crate::campaign_report::load(&request.dir),
        query.queue.as_deref(),
        query.agent.is_some(),
    );
    Ok(WholeCallFigures {
        transfers: by_agent,
        campaigns,
    })
}

/// What the report takes from whole call records besides the figures.
struct WholeCallFigures {
    transfers: std::collections::BTreeMap<String, cdr::report::AgentTransfers>,
    campaigns: Vec<(String, cdr::report::CampaignFigures)>,
}

/// The transfers section of the text report; nothing when no call was transferred.
fn write_transfers(
    by_agent: &[(String, cdr::report::AgentTransfers)],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if by_agent.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nTransfers by agent")?;
    let width = by_agent
        .iter()
        .map(|(agent, _)| agent.len())
        .max()
        .unwrap_or(0)
        .max("AGENT".len());
    writeln!(out, "{:<width$}  OUT  IN", "AGENT")?;
    for (agent, counts) in by_agent {
        writeln!(
            out,
            "{agent:<width$}  {:>3}  {:>2}",
            counts.out, counts.received
        )?;
    }
    Ok(())
}

/// `--low-scores N`: the calls scored N or less, instead of the report.
fn write_low_scores(
    request: &ReportRequest,
    query: &ReportQuery,
    max_score: u8,
    format: ReportFormat,
) -> anyhow::Result<()> {
    if request.postgres_url.is_some() {
        bail!("--low-scores reads the CDR files: use --dir (or --config) instead of --postgres");
    }
    let csv = match format {
        ReportFormat::Table => false,
        ReportFormat::Csv => true,
        ReportFormat::Html => bail!("--low-scores writes a table or csv, not html"),
    };
    let scores = crate::survey_followup::low_scores(
        &request.dir,
        &crate::survey_followup::LowScoreQuery {
            from: query.from,
            to: query.to,
            max_score,
            queue: query.queue.as_deref(),
            agent: query.agent.as_deref(),
        },
    )?;
    match &request.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            crate::survey_followup::write(&scores, csv, &mut file)?;
            file.flush()?;
        }
        None => crate::survey_followup::write(&scores, csv, &mut std::io::stdout().lock())?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms() {
        assert_eq!(
            parse_time("2026-11-01").expect("date").unix_timestamp(),
            1_793_491_200
        );
        assert_eq!(
            parse_time("2026-11-01T08:00:00Z")
                .expect("rfc3339")
                .unix_timestamp(),
            1_793_491_200 + 8 * 3600
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_format("pdf").is_err());
    }
}
