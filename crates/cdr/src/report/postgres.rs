//! Reports from the `cdr_calls` table: the calls of the range are streamed node by node in
//! `seq` order (the order each node journaled them, the order of the lines in its CDR files) and fed
//! to the same [`ReportBuilder`] the file reader uses, so both sources give the same figures
//! for the same records, down to the last bit of the floating-point sums.

use std::io;

use futures_util::TryStreamExt;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::Deserialize;
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::figures::CallFacts;
use super::{Report, ReportBuilder, ReportError, ReportProgress, ReportQuery, SourceStats};
use crate::model::Disposition;
use crate::postgres::{PostgresConfig, Session};

/// Progress is reported after this many rows (and at the start and the end).
const PROGRESS_EVERY_ROWS: u64 = 10_000;

/// One query, streamed: rows arrive as the server produces them and are counted one at a
/// time, so memory stays constant however long the range. The filters are optional
/// (`NULL` means any).
const SELECT_CALLS: &str = "\
SELECT floor(extract(epoch FROM counted_at))::int8 AS at_s, queue, agent, disposition,
    wait_s, talk_s, hold_s, wrap_up_s, service_level_threshold_s, transfer_count, survey_score
FROM cdr_calls
WHERE counted_at >= $1 AND counted_at < $2
    AND ($3::text IS NULL OR queue = $3)
    AND ($4::text IS NULL OR agent = $4)
ORDER BY node, seq";

/// Builds a report from the calls stored by the PostgreSQL sink.
///
/// Opens its own connection (the schema is not migrated: a report never writes). `progress`
/// is called every 10 000 rows with `records_read`; the byte counts stay 0 (a database has
/// no file sizes to show). A server that sends nothing for the configured operation timeout
/// fails the report.
pub fn build_report_from_postgres(
    config: &PostgresConfig,
    query: &ReportQuery,
    progress: &mut dyn FnMut(&ReportProgress),
) -> Result<Report, ReportError> {
    query.validate()?;
    let mut session = Session::new(config, false)?;
    // The builder counts a call by its whole second, so the same whole-second bounds select
    // exactly the calls it keeps; it still checks every call, as for files.
    let from = whole_second(query.from);
    let to = whole_second(query.to);
    let idle_timeout = session.operation_timeout();
    let mut builder = ReportBuilder::new(query.clone());
    let mut stats = SourceStats::default();
    let mut done = ReportProgress::default();
    progress(&done);
    session.run_streaming("read calls for a report", async |connection| {
        let mut rows = sqlx::query(SELECT_CALLS)
            .bind(from)
            .bind(to)
            .bind(query.queue.as_deref())
            .bind(query.agent.as_deref())
            .fetch(&mut *connection);
        loop {
            let next = tokio::time::timeout(idle_timeout, rows.try_next())
                .await
                .map_err(|_| {
                    sqlx::Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no row from the server for {idle_timeout:?}"),
                    ))
                })?;
            let Some(row) = next? else {
                break;
            };
            stats.lines_read += 1;
            match call_facts(&row) {
                Ok(facts) if builder.add(&facts) => stats.calls_counted += 1,
                Ok(_) => stats.calls_filtered_out += 1,
                Err(BadRow) => stats.malformed_lines += 1,
            }
            done.records_read += 1;
            if done.records_read % PROGRESS_EVERY_ROWS == 0 {
                progress(&done);
            }
        }
        Ok(())
    })?;
    progress(&done);
    Ok(builder.finish(stats))
}

/// The query bounds are documented as whole seconds; drop any fraction the caller passed
/// (the same floor as `unix_timestamp`, which the builder uses).
fn whole_second(at: OffsetDateTime) -> OffsetDateTime {
    // Replacing the nanosecond with 0 is always in range.
    at.replace_nanosecond(0).unwrap_or(at)
}

/// A stored row that cannot be counted (an unknown disposition, a non-finite duration, a
/// column of an unexpected type); counted like a malformed file line.
#[derive(Debug)]
struct BadRow;

fn call_facts(row: &PgRow) -> Result<CallFacts<'_>, BadRow> {
    let disposition: &str = row.try_get("disposition").map_err(|_| BadRow)?;
    let disposition = parse_disposition(disposition).ok_or(BadRow)?;
    let get_f64 = |name: &str| row.try_get::<f64, _>(name).map_err(|_| BadRow);
    let wait_s = get_f64("wait_s")?;
    let talk_s = get_f64("talk_s")?;
    let hold_s = get_f64("hold_s")?;
    let wrap_up_s = get_f64("wrap_up_s")?;
    let threshold_s = get_f64("service_level_threshold_s")?;
    if [wait_s, talk_s, hold_s, wrap_up_s, threshold_s]
        .iter()
        .any(|d| !d.is_finite())
    {
        return Err(BadRow);
    }
    let transfer_count: i32 = row.try_get("transfer_count").map_err(|_| BadRow)?;
    let survey_score: Option<i16> = row.try_get("survey_score").map_err(|_| BadRow)?;
    Ok(CallFacts {
        at_unix_s: row.try_get("at_s").map_err(|_| BadRow)?,
        queue: row.try_get("queue").map_err(|_| BadRow)?,
        agent: row.try_get("agent").map_err(|_| BadRow)?,
        disposition,
        wait_s,
        // Same sum in the same order as the file reader, so the f64 results are identical.
        handle_s: talk_s + hold_s + wrap_up_s,
        threshold_s,
        transferred: transfer_count > 0,
        survey_score: survey_score.and_then(|s| u8::try_from(s).ok()),
    })
}

/// The stored kebab-case spelling back to the enum, via serde so the two never disagree.
fn parse_disposition(text: &str) -> Option<Disposition> {
    Disposition::deserialize(StrDeserializer::<ValueError>::new(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_parse_back_from_their_spelling() {
        for disposition in [
            Disposition::Answered,
            Disposition::AbandonedShort,
            Disposition::CallbackRequested,
            Disposition::IvrCompleted,
            Disposition::Rejected,
        ] {
            assert_eq!(parse_disposition(disposition.as_str()), Some(disposition));
        }
        assert_eq!(parse_disposition("hung-up"), None);
        assert_eq!(parse_disposition(""), None);
    }

    #[test]
    fn bounds_drop_fractions_of_a_second() {
        let at = time::macros::datetime!(2025-03-01 10:00:00.75 UTC);
        assert_eq!(
            whole_second(at),
            time::macros::datetime!(2025-03-01 10:00:00 UTC)
        );
    }

    #[test]
    fn an_invalid_query_is_refused_before_connecting() {
        let at = time::macros::datetime!(2025-03-01 10:00 UTC);
        let query = ReportQuery::new(at, at, super::super::Interval::Hour);
        // Port 1: a connection attempt would fail differently.
        let config = PostgresConfig::new("postgres://cdr@127.0.0.1:1/cdr");
        let error = build_report_from_postgres(&config, &query, &mut |_| {}).unwrap_err();
        assert!(matches!(error, ReportError::EmptyRange { .. }), "{error}");
    }

    #[test]
    fn an_unreachable_database_is_a_database_error() {
        let query = ReportQuery::new(
            time::macros::datetime!(2025-03-01 0:00 UTC),
            time::macros::datetime!(2025-03-02 0:00 UTC),
            super::super::Interval::Hour,
        );
        let config = PostgresConfig::new("postgres://cdr@127.0.0.1:1/cdr");
        let error = build_report_from_postgres(&config, &query, &mut |_| {}).unwrap_err();
        assert!(matches!(error, ReportError::Database(_)), "{error}");
    }
}
