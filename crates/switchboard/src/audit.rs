//! The audit log: who changed state or read personal data, from where, when, what and with
//! which result — one JSON object a line in `<cdr.dir>/audit-YYYY-MM-DD.jsonl` (UTC dates).
//!
//! Append-only and fsynced per record: a record the API waited for is on disk before the API
//! answers, so it survives `kill -9` and a power cut. The volume is a few records a minute, so
//! one `fsync` each is cheap; the writes happen on a dedicated thread so neither the API nor
//! call control ever blocks on the disk. With `[cdr] postgres_url`, each record on disk is
//! also handed to [`crate::audit_shipping`].

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use time::{Date, OffsetDateTime};

/// Who acted: the API token (name, role, and the agent an agent token belongs to), or for a
/// feature code dialled from a phone, the agent alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// The `[[http.token]]` name.
    pub token: Option<String>,
    /// `admin`, `supervisor`, `analyst`, `agent`, or `system` for the node itself.
    pub role: Option<String>,
    /// The agent id, for agent tokens and feature codes.
    pub agent: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, RFC 3339 in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub who: Who,
    /// The source address (IP, or IP:port for SIP), when the action came over the network.
    pub from: Option<String>,
    /// What, as a stable token: `agent-state`, `emergency-set`, `emergency-clear`,
    /// `ban-lift`, `call-hold`, `call-resume`, `call-transfer`, `calls-read`, `audit-read`,
    /// `certificates-reload`.
    pub action: String,
    /// What it was done to (agent id, DID, address, call id) and the requested value.
    pub target: Option<String>,
    /// `ok`, or the error code the caller got.
    pub result: String,
}

impl AuditRecord {
    /// A record stamped now.
    pub fn now(
        who: Who,
        from: Option<String>,
        action: &str,
        target: Option<String>,
        result: &str,
    ) -> Self {
        Self {
            at: OffsetDateTime::now_utc(),
            who,
            from,
            action: action.to_owned(),
            target,
            result: result.to_owned(),
        }
    }
}

struct Job {
    record: AuditRecord,
    done: Option<tokio::sync::oneshot::Sender<io::Result<()>>>,
}

/// The handle to the writer thread; cheap to clone. The thread ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct AuditLog {
    dir: PathBuf,
    jobs: Option<mpsc::Sender<Job>>,
    errors: Option<prometheus::IntCounter>,
    shipper: Option<mpsc::Sender<crate::audit_shipping::ShipJob>>,
}

/// Where records go besides the files.
pub struct Shipping {
    /// The `audit` table of the CDR database.
    pub table: cdr::audit_table::AuditTable,
    /// Counts failed inserts.
    pub failures: prometheus::IntCounter,
}

impl AuditLog {
    /// Starts the writer for `dir` (created if missing), and the PostgreSQL shipper when
    /// `shipping` is given; failed writes count into `errors`.
    pub fn start(
        dir: &Path,
        errors: prometheus::IntCounter,
        shipping: Option<Shipping>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let shipper = match shipping {
            Some(Shipping { table, failures }) => {
                Some(crate::audit_shipping::start(dir, table, failures)?)
            }
            None => None,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut writer = DailyFile {
            dir: dir.to_owned(),
            open: None,
        };
        let counter = errors.clone();
        let ship_to = shipper.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                for job in queue {
                    let outcome = writer.append(&job.record);
                    match &outcome {
                        Ok((day, line)) => {
                            if let Some(shipper) = &ship_to {
                                let row = crate::audit_shipping::row(*day, *line, &job.record);
                                // The shipper only stops with the process.
                                let _ = shipper.send(crate::audit_shipping::ShipJob::Row(row));
                            }
                        }
                        Err(error) => {
                            counter.inc();
                            tracing::error!(%error, action = %job.record.action, "audit record not written");
                        }
                    }
                    if let Some(done) = job.done {
                        let _ = done.send(outcome.map(|_| ()));
                    }
                }
            })?;
        Ok(Self {
            dir: dir.to_owned(),
            jobs: Some(jobs),
            errors: Some(errors),
            shipper,
        })
    }

    /// A log that writes nothing (unit tests of call control).
    pub fn disabled() -> Self {
        Self {
            dir: PathBuf::new(),
            jobs: None,
            errors: None,
            shipper: None,
        }
    }

    /// Whether every record written so far is in PostgreSQL (true without shipping). Waits
    /// for one attempt to send what is pending.
    pub async fn flush_shipping(&self) -> bool {
        let Some(shipper) = &self.shipper else {
            return true;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if shipper
            .send(crate::audit_shipping::ShipJob::Flush(reply))
            .is_err()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// The directory the daily files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `record` without waiting (call control, which must not block).
    pub fn record(&self, record: AuditRecord) {
        if let Some(jobs) = &self.jobs {
            if jobs.send(Job { record, done: None }).is_err() {
                self.writer_gone();
            }
        }
    }

    /// Writes `record` and waits until it is on disk.
    pub async fn write(&self, record: AuditRecord) -> io::Result<()> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        let (done, written) = tokio::sync::oneshot::channel();
        let gone = || io::Error::other("the audit writer has stopped");
        if jobs
            .send(Job {
                record,
                done: Some(done),
            })
            .is_err()
        {
            self.writer_gone();
            return Err(gone());
        }
        written.await.map_err(|_| gone())?
    }

    fn writer_gone(&self) {
        if let Some(errors) = &self.errors {
            errors.inc();
        }
        tracing::error!("audit record not written: the audit writer has stopped");
    }
}

/// The file of the current UTC day, opened for appending, and how many lines it has.
struct DailyFile {
    dir: PathBuf,
    open: Option<(Date, File, i64)>,
}

impl DailyFile {
    /// Appends `record`; returns its day and line (from 1) in that day's file.
    fn append(&mut self, record: &AuditRecord) -> io::Result<(Date, i64)> {
        let date = record.at.to_offset(time::UtcOffset::UTC).date();
        let (file, lines) = match &mut self.open {
            Some((open_date, file, lines)) if *open_date == date => (file, lines),
            _ => {
                let path = self.dir.join(file_name(date));
                let created = !path.exists();
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&path)?;
                if created {
                    // The new directory entry must be durable too, or a crash loses the file.
                    File::open(&self.dir)?.sync_all()?;
                } else if ends_torn(&mut file)? {
                    // A crash cut the last record short: end that line, or the next record
                    // would be glued to it and unreadable too.
                    file.write_all(b"\n")?;
                }
                let lines = count_lines(&path)?;
                let (_, file, lines) = self.open.insert((date, file, lines));
                (file, lines)
            }
        };
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        // One write call a record: appends from this single thread never interleave.
        file.write_all(&line)?;
        file.sync_data()?;
        *lines += 1;
        Ok((date, *lines))
    }
}

/// Whether `file` is non-empty and does not end with a newline.
fn ends_torn(file: &mut File) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

fn count_lines(path: &Path) -> io::Result<i64> {
    let mut count = 0;
    for line in io::BufReader::new(File::open(path)?).split(b'\n') {
        line?;
        count += 1;
    }
    Ok(count)
}

/// Every readable record of the file of `day` with its line number (from 1), for shipping.
pub(crate) fn read_file_rows(dir: &Path, day: Date) -> io::Result<Vec<cdr::audit_table::AuditRow>> {
    let file = File::open(dir.join(file_name(day)))?;
    let mut rows = Vec::new();
    for (index, line) in io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if let Ok(record) = serde_json::from_slice::<AuditRecord>(&line) {
            let number = i64::try_from(index + 1).unwrap_or(i64::MAX);
            rows.push(crate::audit_shipping::row(day, number, &record));
        }
    }
    Ok(rows)
}

fn file_name(date: Date) -> String {
    format!("audit-{date}.jsonl")
}

/// `audit-YYYY-MM-DD.jsonl` → the date.
fn file_date(name: &str) -> Option<Date> {
    let date = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(date, &format).ok()
}

/// The records with `from <= at < to` (either bound may be open), oldest file first, in file
/// order. A line that does not parse (the torn tail of a crash) is skipped and logged.
pub fn read(
    dir: &Path,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> io::Result<Vec<AuditRecord>> {
    let utc_date = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC).date();
    let mut files: Vec<(Date, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(date) = entry.file_name().to_str().and_then(file_date) else {
            continue;
        };
        let after_start = from.is_none_or(|from| date >= utc_date(from));
        let before_end = to.is_none_or(|to| date <= utc_date(to));
        if after_start && before_end {
            files.push((date, entry.path()));
        }
    }
    files.sort();
    let mut records = Vec::new();
    for (_, path) in files {
        for line in io::BufReader::new(File::open(&path)?).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<AuditRecord>(&line) {
                Ok(record)
                    if from.is_none_or(|from| record.at >= from)
                        && to.is_none_or(|to| record.at < to) =>
                {
                    records.push(record)
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "skipping an unreadable audit line")
                }
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record(at: OffsetDateTime, action: &str) -> AuditRecord {
        AuditRecord {
            at,
            who: Who {
                token: Some("ops-desk".into()),
                role: Some("admin".into()),
                agent: None,
            },
            from: Some("127.0.0.1".into()),
            action: action.into(),
            target: Some("1001 not-ready lunch".into()),
            result: "ok".into(),
        }
    }

    fn counter() -> prometheus::IntCounter {
        prometheus::IntCounter::new("test_audit_errors", "test").expect("valid metric")
    }

    #[test]
    fn a_record_is_one_json_line_with_the_documented_fields() {
        let line =
            serde_json::to_string(&record(datetime!(2026-12-06 18:30:05 UTC), "agent-state"))
                .expect("serialises");
        assert_eq!(
            line,
            r#"{"at":"2026-12-06T18:30:05Z","who":{"token":"ops-desk","role":"admin","agent":null},"from":"127.0.0.1","action":"agent-state","target":"1001 not-ready lunch","result":"ok"}"#
        );
    }

    #[tokio::test]
    async fn records_go_to_the_file_of_their_utc_day() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = AuditLog::start(dir.path(), counter(), None).expect("starts");
        log.write(record(datetime!(2026-12-06 23:59:59 UTC), "a"))
            .await
            .expect("written");
        log.write(record(datetime!(2026-12-07 00:30:00 +01:00), "b"))
            .await
            .expect("written");
        log.write(record(datetime!(2026-12-07 00:00:00 UTC), "c"))
            .await
            .expect("written");
        let first =
            std::fs::read_to_string(dir.path().join("audit-2026-12-06.jsonl")).expect("first day");
        let second =
            std::fs::read_to_string(dir.path().join("audit-2026-12-07.jsonl")).expect("second day");
        assert_eq!(first.lines().count(), 2, "{first}");
        assert!(first.contains(r#""action":"b""#), "{first}");
        assert_eq!(second.lines().count(), 1, "{second}");
        assert!(second.contains(r#""action":"c""#), "{second}");
    }

    #[test]
    fn the_reader_keeps_records_from_inclusive_to_exclusive_and_skips_torn_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = DailyFile {
            dir: dir.path().to_owned(),
            open: None,
        };
        for (at, action) in [
            (datetime!(2026-12-05 10:00 UTC), "before"),
            (datetime!(2026-12-05 23:30 UTC), "late"),
            (datetime!(2026-12-06 00:00 UTC), "start"),
            (datetime!(2026-12-06 12:00 UTC), "middle"),
            (datetime!(2026-12-07 00:00 UTC), "end"),
        ] {
            writer.append(&record(at, action)).expect("appended");
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit-2026-12-06.jsonl"))
            .and_then(|mut f| f.write_all(b"{\"at\":\"2026-12-06T13"))
            .expect("torn tail");
        std::fs::write(dir.path().join("cdr-2026-12-06.jsonl"), "not audit\n").expect("cdr");
        let actions = |from, to| -> Vec<String> {
            read(dir.path(), from, to)
                .expect("reads")
                .into_iter()
                .map(|r| r.action)
                .collect()
        };
        assert_eq!(
            actions(
                Some(datetime!(2026-12-06 00:00 UTC)),
                Some(datetime!(2026-12-07 00:00 UTC))
            ),
            ["start", "middle"]
        );
        assert_eq!(
            // 2026-12-05 23:00 UTC: the day before's file is read too.
            actions(Some(datetime!(2026-12-06 01:00 +02:00)), None),
            ["late", "start", "middle", "end"]
        );
        assert_eq!(
            actions(None, None),
            ["before", "late", "start", "middle", "end"]
        );
    }

    #[test]
    fn a_record_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit-2026-12-06.jsonl");
        std::fs::write(&path, "{\"at\":\"2026-12-06T13").expect("torn tail");
        let mut writer = DailyFile {
            dir: dir.path().to_owned(),
            open: None,
        };
        writer
            .append(&record(datetime!(2026-12-06 14:00 UTC), "after-crash"))
            .expect("appended");
        let actions: Vec<String> = read(dir.path(), None, None)
            .expect("reads")
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["after-crash"]);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_and_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let errors = counter();
        let log = AuditLog::start(dir.path(), errors.clone(), None).expect("starts");
        // A directory where the day's file should be: the open fails.
        std::fs::create_dir(dir.path().join("audit-2026-12-06.jsonl")).expect("blocker");
        let outcome = log
            .write(record(datetime!(2026-12-06 12:00 UTC), "a"))
            .await;
        assert!(outcome.is_err());
        assert_eq!(errors.get(), 1);
    }
}
