//! Ships audit records to PostgreSQL (`[cdr] postgres_url`, table `audit`) on a thread of its
//! own, so a slow or dead database never delays the fsynced file writes the API waits for.
//!
//! The files stay the record of truth. A row is keyed by (node, day, line), so sending one
//! twice stores it once: after a failure the whole pending batch is simply sent again (after
//! [`RETRY_AFTER`], or with the next record), and at start the files of the last two UTC
//! days are sent again, which fills in what a previous run could not ship before it stopped.

use cdr::audit_table::{AuditRow, AuditTable};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;
use time::Date;

use crate::audit::AuditRecord;

/// How long a failed batch waits before it is tried again when no new record comes.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Rows kept for a database that stays down; older ones are left to the files (and to the
/// catch-up of the next start, within two days).
const MAX_PENDING: usize = 100_000;
/// Rows per INSERT.
const BATCH: usize = 1_000;

/// Work for the shipper.
pub enum ShipJob {
    /// A record now on disk, at `line` of the file of `day`.
    Row(AuditRow),
    /// Answers whether everything received before it is in the database (tests, shutdown).
    Flush(tokio::sync::oneshot::Sender<bool>),
}

/// The database row of `record`, the `line`-th of the file of `day`.
pub fn row(day: Date, line: i64, record: &AuditRecord) -> AuditRow {
    AuditRow {
        day,
        line,
        at: record.at,
        who_token: record.who.token.clone(),
        who_role: record.who.role.clone(),
        who_agent: record.who.agent.clone(),
        source: record.from.clone(),
        action: record.action.clone(),
        target: record.target.clone(),
        result: record.result.clone(),
    }
}

/// Starts the shipper; it first re-sends the files of yesterday and today found in `dir`.
/// Failed inserts count into `failures`.
pub fn start(
    dir: &Path,
    mut table: AuditTable,
    failures: prometheus::IntCounter,
) -> std::io::Result<mpsc::Sender<ShipJob>> {
    let (jobs, queue) = mpsc::channel::<ShipJob>();
    let dir = dir.to_owned();
    std::thread::Builder::new()
        .name("audit-shipper".into())
        .spawn(move || {
            let mut pending = recent_rows(&dir);
            let mut failing = false;
            loop {
                let first = if pending.is_empty() {
                    match queue.recv() {
                        Ok(job) => Some(job),
                        Err(_) => break,
                    }
                } else {
                    match queue.recv_timeout(RETRY_AFTER) {
                        Ok(job) => Some(job),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                };
                let mut flushes = Vec::new();
                for job in first
                    .into_iter()
                    .chain(std::iter::from_fn(|| queue.try_recv().ok()))
                {
                    match job {
                        ShipJob::Row(row) => pending.push(row),
                        ShipJob::Flush(reply) => flushes.push(reply),
                    }
                }
                ship(&mut table, &mut pending, &mut failing, &failures);
                for reply in flushes {
                    let _ = reply.send(pending.is_empty());
                }
            }
        })?;
    Ok(jobs)
}

/// Sends `pending` in batches, dropping what was stored; on failure keeps the rest (capped).
fn ship(
    table: &mut AuditTable,
    pending: &mut Vec<AuditRow>,
    failing: &mut bool,
    failures: &prometheus::IntCounter,
) {
    while !pending.is_empty() {
        let size = pending.len().min(BATCH);
        match table.insert(&pending[..size]) {
            Ok(_) => {
                pending.drain(..size);
                if *failing {
                    *failing = false;
                    tracing::info!("audit records are reaching PostgreSQL again");
                }
            }
            Err(error) => {
                failures.inc();
                if !*failing {
                    *failing = true;
                    tracing::warn!(%error, "audit records not shipped to PostgreSQL; will retry (the files have them)");
                }
                if pending.len() > MAX_PENDING {
                    let excess = pending.len() - MAX_PENDING;
                    pending.drain(..excess);
                }
                return;
            }
        }
    }
}

/// The rows of the files of yesterday and today (UTC), for the catch-up at start.
fn recent_rows(dir: &Path) -> Vec<AuditRow> {
    let today = time::OffsetDateTime::now_utc().date();
    let mut rows = Vec::new();
    for day in [today.previous_day(), Some(today)].into_iter().flatten() {
        match crate::audit::read_file_rows(dir, day) {
            Ok(found) => rows.extend(found),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, %day, "audit file not re-sent to PostgreSQL")
            }
        }
    }
    rows
}
