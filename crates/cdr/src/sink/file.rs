//! The embedded default sink: daily JSON-lines (and optionally CSV) files.
//!
//! Files are named by the UTC date of each record's end time, so a day's file holds exactly
//! the calls and agent-state periods that ended that day:
//!
//! - `cdr-YYYY-MM-DD.jsonl`: every record, one JSON [`Record`] per line (the exact copy);
//! - `cdr-YYYY-MM-DD.csv`: calls, with a header row (when CSV is on);
//! - `agent-state-YYYY-MM-DD.csv`: agent-state periods, with a header row (when CSV is on).
//!
//! Files are only ever appended to and are fdatasynced once per batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::{Date, UtcOffset};

use super::csv_row::{
    header_line, write_agent_state_row, write_call_row, AGENT_STATE_HEADER, CALL_HEADER,
};
use super::day_file::{DayFile, LineFormat};
use super::{Sink, SinkError};
use crate::model::Record;

/// Options of the file sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// Also write CSV files next to the JSON-lines files.
    pub csv: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    JsonLines,
    CallsCsv,
    AgentStatesCsv,
}

impl FileKind {
    fn file_name(self, date: Date) -> String {
        let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
        match self {
            FileKind::JsonLines => format!("cdr-{year:04}-{month:02}-{day:02}.jsonl"),
            FileKind::CallsCsv => format!("cdr-{year:04}-{month:02}-{day:02}.csv"),
            FileKind::AgentStatesCsv => format!("agent-state-{year:04}-{month:02}-{day:02}.csv"),
        }
    }

    fn format(self) -> LineFormat {
        match self {
            FileKind::JsonLines => LineFormat::JsonLines,
            FileKind::CallsCsv | FileKind::AgentStatesCsv => LineFormat::Csv,
        }
    }

    fn header(self) -> Option<Vec<u8>> {
        match self {
            FileKind::JsonLines => None,
            FileKind::CallsCsv => Some(header_line(CALL_HEADER)),
            FileKind::AgentStatesCsv => Some(header_line(AGENT_STATE_HEADER)),
        }
    }
}

/// Writes records to daily files in one directory.
pub struct FileSink {
    dir: PathBuf,
    config: FileSinkConfig,
    /// Open files; days older than the newest day written minus one are closed after each
    /// batch (late records for old days simply reopen their file).
    open: BTreeMap<(Date, FileKind), DayFile>,
}

impl FileSink {
    /// A sink writing into `dir` (created if missing).
    pub fn open(dir: impl AsRef<Path>, config: FileSinkConfig) -> Result<FileSink, SinkError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| SinkError::io("create", &dir, e))?;
        Ok(FileSink {
            dir,
            config,
            open: BTreeMap::new(),
        })
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&mut self, date: Date, kind: FileKind) -> Result<&mut DayFile, SinkError> {
        use std::collections::btree_map::Entry;
        match self.open.entry((date, kind)) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let path = self.dir.join(kind.file_name(date));
                let header = kind.header();
                let file = DayFile::open(&path, kind.format(), header.as_deref())?;
                Ok(entry.insert(file))
            }
        }
    }

    fn encode(&mut self, seq: u64, record: &Record) -> Result<(), SinkError> {
        let date = record.ended().to_offset(UtcOffset::UTC).date();
        let mut stamped;
        // The journal stamps `seq` into the record; a caller handing records straight to
        // the sink may not have, and the pair's `seq` is the authority.
        let record = if record.seq() == seq {
            record
        } else {
            stamped = record.clone();
            stamped.set_seq(seq);
            &stamped
        };
        let json = self.file(date, FileKind::JsonLines)?;
        if json.wants(seq) {
            let out = json.line_buffer(seq);
            serde_json::to_writer(&mut *out, record).map_err(|e| SinkError::Encode {
                seq,
                reason: e.to_string(),
            })?;
            out.push(b'\n');
        }
        if !self.config.csv {
            return Ok(());
        }
        match record {
            Record::Call(call) => {
                let csv = self.file(date, FileKind::CallsCsv)?;
                if csv.wants(seq) {
                    write_call_row(csv.line_buffer(seq), call)?;
                }
            }
            Record::AgentState(state) => {
                let csv = self.file(date, FileKind::AgentStatesCsv)?;
                if csv.wants(seq) {
                    write_agent_state_row(csv.line_buffer(seq), state)?;
                }
            }
        }
        Ok(())
    }

    fn commit_all(&mut self) -> Result<(), SinkError> {
        let mut first_error = None;
        let mut broken = Vec::new();
        for (key, file) in self.open.iter_mut() {
            if first_error.is_some() {
                file.discard_pending();
                continue;
            }
            if let Err((error, is_broken)) = file.commit() {
                first_error = Some(error);
                if is_broken {
                    broken.push(*key);
                }
            }
        }
        // A file that could not be cut back is reopened next time, which cuts its torn tail.
        for key in broken {
            self.open.remove(&key);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn close_old_days(&mut self) {
        if let Some(&(newest, _)) = self.open.keys().next_back() {
            let keep_from = newest.previous_day().unwrap_or(newest);
            self.open.retain(|&(date, _), _| date >= keep_from);
        }
    }
}

impl Sink for FileSink {
    fn write_batch(&mut self, records: &[(u64, Record)]) -> Result<(), SinkError> {
        for (seq, record) in records {
            if let Err(e) = self.encode(*seq, record) {
                self.open.values_mut().for_each(DayFile::discard_pending);
                return Err(e);
            }
        }
        let result = self.commit_all();
        self.close_old_days();
        result
    }

    fn name(&self) -> &str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{answered_call, not_ready_period};
    use crate::model::{CallRecord, Record};
    use time::macros::datetime;

    fn call(seq: u64, ended: time::OffsetDateTime) -> (u64, Record) {
        let mut call: CallRecord = answered_call();
        call.seq = seq;
        call.id = format!("sb-{seq}");
        call.ended = ended;
        (seq, Record::Call(call))
    }

    fn read_records(path: &Path) -> Vec<Record> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn records_go_to_the_file_of_their_utc_end_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(dir.path(), FileSinkConfig { csv: true }).unwrap();
        let batch = vec![
            call(1, datetime!(2025-03-03 23:59:59.9 UTC)),
            // 00:30 at +02:00 is still the 3rd in UTC.
            call(2, datetime!(2025-03-04 00:30:00 +02:00)),
            call(3, datetime!(2025-03-04 00:00:00 UTC)),
            (4, Record::AgentState(not_ready_period())),
        ];
        sink.write_batch(&batch).unwrap();

        let day3 = read_records(&dir.path().join("cdr-2025-03-03.jsonl"));
        let seqs: Vec<u64> = day3.iter().map(Record::seq).collect();
        assert_eq!(seqs, vec![1, 2, 4]);
        let day4 = read_records(&dir.path().join("cdr-2025-03-04.jsonl"));
        assert_eq!(day4.iter().map(Record::seq).collect::<Vec<_>>(), vec![3]);

        let csv3 = std::fs::read_to_string(dir.path().join("cdr-2025-03-03.csv")).unwrap();
        let lines: Vec<&str> = csv3.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("seq,id,trunk_call_id,"));
        assert!(lines[1].starts_with("1,sb-1,"));
        let states =
            std::fs::read_to_string(dir.path().join("agent-state-2025-03-03.csv")).unwrap();
        assert_eq!(states.lines().count(), 2);
        assert!(states
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("4,alice,not-ready,break,"));
    }

    #[test]
    fn resending_after_restart_does_not_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let day = datetime!(2025-03-03 12:00:00 UTC);
        let batch: Vec<_> = (1..=5).map(|seq| call(seq, day)).collect();
        let mut sink = FileSink::open(dir.path(), FileSinkConfig { csv: true }).unwrap();
        sink.write_batch(&batch[..3]).unwrap();
        drop(sink);

        // After a crash the forwarder re-sends from its older checkpoint.
        let mut sink = FileSink::open(dir.path(), FileSinkConfig { csv: true }).unwrap();
        sink.write_batch(&batch).unwrap();
        sink.write_batch(&batch[4..]).unwrap();
        let seqs: Vec<u64> = read_records(&dir.path().join("cdr-2025-03-03.jsonl"))
            .iter()
            .map(Record::seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        let csv = std::fs::read_to_string(dir.path().join("cdr-2025-03-03.csv")).unwrap();
        assert_eq!(csv.lines().count(), 6);
    }

    #[test]
    fn pair_seq_is_stamped_into_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(dir.path(), FileSinkConfig::default()).unwrap();
        let (_, record) = call(0, datetime!(2025-03-03 12:00:00 UTC));
        sink.write_batch(&[(77, record)]).unwrap();
        let records = read_records(&dir.path().join("cdr-2025-03-03.jsonl"));
        assert_eq!(records[0].seq(), 77);
        assert!(!dir.path().join("cdr-2025-03-03.csv").exists());
    }

    #[test]
    fn old_days_are_closed_and_reopened_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(dir.path(), FileSinkConfig::default()).unwrap();
        sink.write_batch(&[call(1, datetime!(2025-03-01 12:00:00 UTC))])
            .unwrap();
        sink.write_batch(&[call(2, datetime!(2025-03-05 12:00:00 UTC))])
            .unwrap();
        assert_eq!(sink.open.len(), 1);
        // A late record for an old day (a very long call) reopens its file.
        sink.write_batch(&[call(3, datetime!(2025-03-01 13:00:00 UTC))])
            .unwrap();
        let seqs: Vec<u64> = read_records(&dir.path().join("cdr-2025-03-01.jsonl"))
            .iter()
            .map(Record::seq)
            .collect();
        assert_eq!(seqs, vec![1, 3]);
    }
}
