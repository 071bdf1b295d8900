//! The write-ahead journal: a CDR is on disk here before the call's state may be dropped.
//!
//! Records are appended to an in-memory batch and written with one `write` + `fdatasync` per
//! batch (at most `max_batch_records` records or `max_batch_delay` old), which is what makes
//! tens of thousands of durable CDRs a second affordable. Each record gets a sequence number;
//! a caller drops a call's state only once [`Journal::durable_seq`] has reached it.
//!
//! On disk a journal directory holds `journal-<first seq>.jsonl` segments (one JSON [`Record`]
//! per line, see [`crate::model`]) and a `checkpoint` file naming the highest sequence every
//! sink has received (see [`crate::forwarder`]). After a crash, [`replay`] yields the records
//! above the checkpoint.
//!
//! Single writer: one `Journal` per directory. Errors are returned, never retried silently:
//! the binary counts them, keeps call state (bounded) and tries again.

mod checkpoint;
mod reader;
mod segment;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::{InvalidRecord, Record};

pub use checkpoint::{checkpoint_path, read_checkpoint, write_checkpoint};
pub use reader::{replay, Replay, SkippedLines};
pub(crate) use reader::{JournalCursor, PartialTail};
pub(crate) use segment::{list_segments, segment_path};

/// Errors from the journal and from reading it back.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file-system operation failed (disk full, permissions, I/O error).
    #[error("journal: cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("journal: cannot encode record: {0}")]
    Serialize(serde_json::Error),
    /// The record was refused before being buffered.
    #[error("journal: record refused: {0}")]
    InvalidRecord(#[from] InvalidRecord),
    /// The checkpoint file exists but cannot be read as a checkpoint.
    #[error("journal: checkpoint {} is damaged ({reason}); fix or remove it to re-forward from the start", path.display())]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why it could not be parsed.
        reason: String,
    },
    /// Too many records are waiting for a successful sync (the disk has been failing).
    #[error("journal: {pending} records already wait for the disk; record refused")]
    BacklogFull {
        /// Records buffered and not yet durable.
        pending: usize,
    },
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Batching and sizing of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// A batch is due for sync once it holds this many records (default 256).
    pub max_batch_records: usize,
    /// A batch is due for sync once its first record is this old (default 100 ms).
    pub max_batch_delay: Duration,
    /// A new segment is started once the current one would grow past this (default 64 MiB),
    /// so forwarded data can be deleted a segment at a time.
    pub max_segment_bytes: u64,
    /// `append` refuses records once this many are waiting for a successful sync
    /// (default 100 000), so a dead disk cannot exhaust memory.
    pub max_pending_records: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            max_batch_records: 256,
            max_batch_delay: Duration::from_millis(100),
            max_segment_bytes: 64 * 1024 * 1024,
            max_pending_records: 100_000,
        }
    }
}

/// The writing end of a journal directory.
pub struct Journal {
    dir: PathBuf,
    config: JournalConfig,
    segment: File,
    segment_path: PathBuf,
    segment_first_seq: u64,
    /// Bytes of the segment known to be fully written; a failed write is cut back to this.
    segment_len: u64,
    /// A failed write could not be cut back; the segment must not be appended to again.
    segment_damaged: bool,
    /// Encoded, newline-terminated records not yet written.
    batch: Vec<u8>,
    batch_records: usize,
    batch_first_seq: u64,
    /// When `flush_due` first saw the current batch (the clock is the caller's).
    batch_started: Option<Instant>,
    next_seq: u64,
    durable_seq: u64,
}

/// Buffers larger than this are given back after a sync (after a backlog drained).
const RETAINED_BATCH_CAPACITY: usize = 4 * 1024 * 1024;

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and starts a new segment.
    ///
    /// Numbering continues after the highest sequence found on disk or in the checkpoint.
    /// Existing segments are never appended to, so a line torn by a crash stays the last
    /// line of its segment, where replay expects it.
    pub fn open(dir: impl AsRef<Path>, config: JournalConfig) -> Result<Journal, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("create", &dir, e))?;
        let checkpoint = read_checkpoint(&dir)?;
        let segments = list_segments(&dir)?;
        let last_on_disk = match segments.last() {
            Some(last) => highest_seq_in(&dir, last.first_seq)?,
            None => 0,
        };
        let Some(mut first_seq) = last_on_disk.max(checkpoint).checked_add(1) else {
            return Err(JournalError::CorruptCheckpoint {
                path: checkpoint_path(&dir),
                reason: "sequence numbers exhausted (u64::MAX reached)".into(),
            });
        };
        // A segment already named `first_seq` holds no valid record (else numbering would be
        // past it): leave its debris for replay to count and skip one number.
        while segment_path(&dir, first_seq).exists() {
            first_seq += 1;
        }
        let (segment, segment_path) = create_segment(&dir, first_seq)?;
        Ok(Journal {
            dir,
            config,
            segment,
            segment_path,
            segment_first_seq: first_seq,
            segment_len: 0,
            segment_damaged: false,
            batch: Vec::with_capacity(256 * 1024),
            batch_records: 0,
            batch_first_seq: first_seq,
            batch_started: None,
            next_seq: first_seq,
            durable_seq: first_seq - 1,
        })
    }

    /// Buffers a record and returns the sequence number it was given.
    ///
    /// The record is not durable until a [`sync`](Self::sync) covering it succeeds.
    pub fn append(&mut self, record: &Record) -> Result<u64, JournalError> {
        self.append_stamping(&mut record.clone())
    }

    /// Buffers a record and stamps it with the sequence number it was given (also returned),
    /// so that a caller that keeps the record holds exactly what the journal line says.
    ///
    /// On error the record keeps the sequence number it had.
    pub fn append_stamping(&mut self, record: &mut Record) -> Result<u64, JournalError> {
        if self.batch_records >= self.config.max_pending_records {
            return Err(JournalError::BacklogFull {
                pending: self.batch_records,
            });
        }
        record.validate()?;
        let seq = self.next_seq;
        let unstamped = record.seq();
        record.set_seq(seq);
        let before = self.batch.len();
        if let Err(e) = serde_json::to_writer(&mut self.batch, &*record) {
            self.batch.truncate(before);
            record.set_seq(unstamped);
            return Err(JournalError::Serialize(e));
        }
        self.batch.push(b'\n');
        if self.batch_records == 0 {
            self.batch_first_seq = seq;
        }
        self.batch_records += 1;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Whether the buffered batch should be synced now.
    ///
    /// Call it after every `append` (and when [`flush_deadline`](Self::flush_deadline)
    /// passes): the first call that sees a new batch starts its delay clock at `now`.
    pub fn flush_due(&mut self, now: Instant) -> bool {
        if self.batch_records == 0 {
            self.batch_started = None;
            return false;
        }
        let started = *self.batch_started.get_or_insert(now);
        self.batch_records >= self.config.max_batch_records
            || now.saturating_duration_since(started) >= self.config.max_batch_delay
    }

    /// When the buffered batch becomes due by age, if a batch has been seen by `flush_due`.
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.batch_started
            .map(|started| started + self.config.max_batch_delay)
    }

    /// Writes the buffered batch and fdatasyncs it; afterwards `durable_seq` covers it.
    ///
    /// On failure the batch stays buffered (call again later) and any partly written bytes
    /// are cut off again so they cannot merge with the next write into a broken line.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.batch_records == 0 {
            return Ok(());
        }
        if self.segment_damaged {
            self.repair_segment()?;
        }
        let would_be = self.segment_len + self.batch.len() as u64;
        if self.segment_len > 0 && would_be > self.config.max_segment_bytes {
            self.start_segment()?;
        }
        let result = self
            .segment
            .write_all(&self.batch)
            .and_then(|()| self.segment.sync_data());
        if let Err(e) = result {
            // After a failed fdatasync the kernel may have dropped the dirty pages, so the
            // bytes are rewritten from the buffer rather than trusted.
            self.cut_back();
            return Err(JournalError::io("write", &self.segment_path, e));
        }
        self.segment_len += self.batch.len() as u64;
        self.durable_seq = self.next_seq - 1;
        self.batch.clear();
        if self.batch.capacity() > RETAINED_BATCH_CAPACITY {
            self.batch.shrink_to(RETAINED_BATCH_CAPACITY / 4);
        }
        self.batch_records = 0;
        self.batch_started = None;
        Ok(())
    }

    /// Highest sequence number known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The sequence number the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records appended but not yet durable.
    pub fn pending_records(&self) -> usize {
        self.batch_records
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Syncs whatever is buffered; call before shutting down.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.sync()
    }

    fn cut_back(&mut self) {
        if self.segment.set_len(self.segment_len).is_err() {
            self.segment_damaged = true;
        }
    }

    /// Retries cutting a damaged segment back; if that still fails, moves to a new segment
    /// (the old one keeps a torn last line, which replay skips).
    fn repair_segment(&mut self) -> Result<(), JournalError> {
        if self.segment.set_len(self.segment_len).is_ok() {
            self.segment_damaged = false;
            return Ok(());
        }
        if self.batch_first_seq > self.segment_first_seq {
            return self.start_segment();
        }
        // The new segment would need this segment's own name: nothing durable is in it
        // yet, so the only way on is a successful truncation.
        Err(JournalError::io(
            "truncate damaged segment",
            &self.segment_path,
            io::Error::other("truncation keeps failing"),
        ))
    }

    fn start_segment(&mut self) -> Result<(), JournalError> {
        let (segment, path) = create_segment(&self.dir, self.batch_first_seq)?;
        self.segment = segment;
        self.segment_path = path;
        self.segment_first_seq = self.batch_first_seq;
        self.segment_len = 0;
        self.segment_damaged = false;
        Ok(())
    }
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, PathBuf), JournalError> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| JournalError::io("create segment", &path, e))?;
    segment::sync_dir(dir)?;
    Ok((file, path))
}

/// The highest valid sequence in the segment starting at `first_seq`, or `first_seq - 1` if
/// it holds none (it was created, then the process died before a record was written).
fn highest_seq_in(dir: &Path, first_seq: u64) -> Result<u64, JournalError> {
    let mut cursor = JournalCursor::new(dir, first_seq.saturating_sub(1));
    let mut highest = first_seq.saturating_sub(1);
    while let Some(record) = cursor.next_record(u64::MAX, PartialTail::Skip)? {
        highest = highest.max(record.seq());
    }
    Ok(highest)
}

#[cfg(test)]
mod tests;
