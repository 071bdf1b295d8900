//! Moves journaled records to the sinks, then advances the checkpoint and deletes segments.
//!
//! Records come from two places. The journal's writer hands over the records a sync has just
//! made durable ([`Forwarder::hand_over`]), and while they continue exactly where forwarding
//! stands they are forwarded from memory. Everything else is read back from the segment
//! files: what a crash left behind (startup replay), and whatever the in-memory copy does not
//! cover — the oldest records once more than `max_handed_records` wait (a sink down for a
//! while), or a sequence number the writer skipped. Either way the sinks get the same records:
//! the journal line is the JSON of the very record handed over, and it reads back equal.
//! Reading every record back had cost 5 % of the CPU of a call (issue 12, docs/scaling.md).
//!
//! Typical use from the binary's forwarder thread:
//!
//! ```text
//! at start:      forwarder.forward(journal.durable_seq())   // replay what a crash left behind
//! after a sync:  forwarder.hand_over(records_just_made_durable);
//!                // the hand-over may arrive before the journal's mark is seen to move
//!                let durable = journal.durable_seq().max(forwarder.handed_seq());
//!                if forwarder.forward_due(durable, now) {
//!                    forwarder.forward(durable)
//!                }
//! at shutdown:   forwarder.forward(journal.durable_seq()); forwarder.save_checkpoint()
//! ```
//!
//! Records are already safe in the journal, so sinks are fed in larger, less frequent
//! batches (`max_lag_records`, `max_lag`): each sink batch costs an fdatasync per file.
//!
//! A sink that fails keeps its batch pending and the call returns the error; the next call
//! retries that sink only, so healthy sinks are not sent duplicates and a dead sink never
//! blocks the journal (which keeps accepting records, bounded by its segment files on disk).
//! The checkpoint is the highest sequence *every* sink has stored.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::journal::{
    list_segments, read_checkpoint, write_checkpoint, JournalCursor, JournalError, PartialTail,
    SkippedLines,
};
use crate::model::Record;
use crate::sink::{Sink, SinkError};

/// Errors from forwarding.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Reading the journal or writing the checkpoint failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A sink refused a batch; it will be offered again on the next call.
    #[error("sink {sink}: {source}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What it reported.
        source: SinkError,
    },
    /// The forwarder was given no sinks.
    #[error("a forwarder needs at least one sink")]
    NoSinks,
}

/// Forwarding limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// Most records handed to a sink in one `write_batch` (default 4096).
    pub max_batch_records: usize,
    /// The checkpoint file is rewritten after at least this many records (default 16 384),
    /// and whenever a segment can be deleted. Rewriting it costs three fsyncs, and a stale
    /// checkpoint only means sinks skip a few already-stored records after a crash.
    pub checkpoint_every_records: u64,
    /// `forward_due` says yes once this many durable records wait (default 4096).
    pub max_lag_records: u64,
    /// `forward_due` says yes once a durable record has waited this long (default 1 s).
    pub max_lag: Duration,
    /// Most handed-over records kept in memory (default 16 384); past it the oldest are
    /// dropped and read back from the journal files when their turn comes, so a sink that
    /// is down for long costs disk reads later, not unbounded memory now.
    pub max_handed_records: usize,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            max_batch_records: 4096,
            checkpoint_every_records: 16_384,
            max_lag_records: 4096,
            max_lag: Duration::from_secs(1),
            max_handed_records: 16_384,
        }
    }
}

/// What one `forward` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardProgress {
    /// Records that reached every sink during this call.
    pub forwarded_records: u64,
    /// Highest sequence every sink has stored (may be ahead of the saved checkpoint).
    pub forwarded_seq: u64,
    /// Journal segments deleted during this call.
    pub deleted_segments: usize,
}

struct SinkSlot {
    sink: Box<dyn Sink>,
    /// Highest sequence this sink has stored.
    stored_seq: u64,
}

/// Forwards a journal directory to a set of sinks.
pub struct Forwarder {
    dir: PathBuf,
    config: ForwarderConfig,
    sinks: Vec<SinkSlot>,
    cursor: JournalCursor,
    /// Durable records handed over by the journal's writer, in sequence order.
    handed: VecDeque<Record>,
    /// Highest sequence ever handed over: durable, since only durable records are.
    handed_seq: u64,
    /// Highest sequence moved into `batch`, from memory or from the files.
    read_seq: u64,
    /// Records read back from the journal files.
    read_back: u64,
    /// Read but not yet stored by every sink.
    batch: Vec<(u64, Record)>,
    /// Highest sequence every sink has stored.
    forwarded_seq: u64,
    /// The value last written to the checkpoint file.
    saved_checkpoint: u64,
    /// When `forward_due` first saw durable records waiting (the clock is the caller's).
    lag_started: Option<Instant>,
}

impl Forwarder {
    /// A forwarder for the journal in `dir`, starting after its checkpoint.
    pub fn open(
        dir: impl AsRef<Path>,
        sinks: Vec<Box<dyn Sink>>,
        config: ForwarderConfig,
    ) -> Result<Forwarder, ForwardError> {
        if sinks.is_empty() {
            return Err(ForwardError::NoSinks);
        }
        let dir = dir.as_ref().to_path_buf();
        let checkpoint = read_checkpoint(&dir)?;
        Ok(Forwarder {
            cursor: JournalCursor::new(&dir, checkpoint),
            dir,
            config,
            sinks: sinks
                .into_iter()
                .map(|sink| SinkSlot {
                    sink,
                    stored_seq: checkpoint,
                })
                .collect(),
            handed: VecDeque::new(),
            handed_seq: checkpoint,
            read_seq: checkpoint,
            read_back: 0,
            batch: Vec::new(),
            forwarded_seq: checkpoint,
            saved_checkpoint: checkpoint,
            lag_started: None,
        })
    }

    /// Takes records the journal has made durable, in sequence order, so that they need not
    /// be read back from its files. Records already read from the files are ignored.
    pub fn hand_over(&mut self, records: impl IntoIterator<Item = Record>) {
        self.handed.extend(records);
        if let Some(last) = self.handed.back() {
            self.handed_seq = self.handed_seq.max(last.seq());
        }
        let excess = self
            .handed
            .len()
            .saturating_sub(self.config.max_handed_records);
        self.handed.drain(..excess);
    }

    /// Whether enough durable records wait, or have waited long enough, to forward now.
    ///
    /// Call it after each journal sync and on a timer; the first call that sees records
    /// waiting starts the `max_lag` clock at `now`. A pending batch after a sink error is
    /// always due (the caller paces retries).
    pub fn forward_due(&mut self, durable_seq: u64, now: Instant) -> bool {
        let waiting = durable_seq.saturating_sub(self.forwarded_seq);
        if waiting == 0 {
            self.lag_started = None;
            return false;
        }
        let started = *self.lag_started.get_or_insert(now);
        !self.batch.is_empty()
            || waiting >= self.config.max_lag_records
            || now.saturating_duration_since(started) >= self.config.max_lag
    }

    /// Sends every journaled record with `seq <= up_to` to every sink.
    ///
    /// Pass the journal's `durable_seq()` while it is live, or `u64::MAX` to drain what is on
    /// disk (startup replay). Stops at the first sink error, which is returned; what was
    /// stored before it stays stored.
    pub fn forward(&mut self, up_to: u64) -> Result<ForwardProgress, ForwardError> {
        let mut progress = ForwardProgress {
            forwarded_seq: self.forwarded_seq,
            ..ForwardProgress::default()
        };
        loop {
            if self.batch.is_empty() {
                self.fill_batch(up_to)?;
            }
            let Some(&(last_seq, _)) = self.batch.last() else {
                break;
            };
            for slot in &mut self.sinks {
                if slot.stored_seq >= last_seq {
                    continue;
                }
                let from = self
                    .batch
                    .partition_point(|(seq, _)| *seq <= slot.stored_seq);
                let pending = self.batch.get(from..).unwrap_or_default();
                slot.sink
                    .write_batch(pending)
                    .map_err(|source| ForwardError::Sink {
                        sink: slot.sink.name().to_string(),
                        source,
                    })?;
                slot.stored_seq = last_seq;
            }
            progress.forwarded_records += self.batch.len() as u64;
            self.batch.clear();
            self.forwarded_seq = last_seq;
            progress.forwarded_seq = last_seq;
            progress.deleted_segments += self.maybe_save_checkpoint()?;
        }
        // Every durable record up to `up_to` has now been read and stored, so a number below
        // it that was never found is a gap, not a record still to come: the journal skips a
        // number when a crash left an empty segment under it. Counting the gap as forwarded
        // keeps "behind" from staying true forever (which kept a stopping node from exiting).
        if up_to != u64::MAX && up_to > self.forwarded_seq {
            self.forwarded_seq = up_to;
            self.read_seq = self.read_seq.max(up_to);
            progress.forwarded_seq = up_to;
        }
        self.lag_started = None;
        Ok(progress)
    }

    /// Writes the checkpoint now (e.g. at shutdown) and deletes fully forwarded segments.
    pub fn save_checkpoint(&mut self) -> Result<usize, ForwardError> {
        if self.forwarded_seq > self.saved_checkpoint {
            write_checkpoint(&self.dir, self.forwarded_seq)?;
            self.saved_checkpoint = self.forwarded_seq;
        }
        self.delete_forwarded_segments()
    }

    /// Highest sequence every sink has stored.
    pub fn forwarded_seq(&self) -> u64 {
        self.forwarded_seq
    }

    /// Records read but not yet stored by every sink (non-zero after a sink error).
    pub fn pending_records(&self) -> usize {
        self.batch.len()
    }

    /// Journal lines skipped so far (torn, malformed, duplicate).
    pub fn skipped(&self) -> SkippedLines {
        self.cursor.skipped()
    }

    /// The highest sequence handed over so far: a caller that learns what is durable from
    /// elsewhere too takes the larger of the two, since a hand-over may arrive first.
    pub fn handed_seq(&self) -> u64 {
        self.handed_seq
    }

    /// Records read back from the journal files rather than taken from memory.
    pub fn read_back_records(&self) -> u64 {
        self.read_back
    }

    fn fill_batch(&mut self, up_to: u64) -> Result<(), ForwardError> {
        while self.batch.len() < self.config.max_batch_records.max(1) {
            if let Some(record) = self.next_handed(up_to) {
                self.read_seq = record.seq();
                // The cursor lets go of the segment it had open (from the replay at start):
                // held open, a segment deleted once forwarded would keep its disk space.
                self.cursor.restart_after(self.read_seq);
                self.batch.push((self.read_seq, record));
                continue;
            }
            if self.read_seq >= up_to {
                break;
            }
            // The next record is not in memory: read it from the files, from where memory
            // left off (after memory, a pass over its segment from the start, so only when
            // memory falls short).
            if self.cursor.after_seq() != self.read_seq {
                self.cursor.restart_after(self.read_seq);
            }
            match self.cursor.next_record(up_to, PartialTail::Wait)? {
                Some(record) => {
                    self.read_seq = record.seq();
                    self.read_back += 1;
                    self.batch.push((self.read_seq, record));
                }
                None => break,
            }
        }
        Ok(())
    }

    /// The handed-over record that comes right after `read_seq`, if memory has it; drops the
    /// ones already read from the files.
    fn next_handed(&mut self, up_to: u64) -> Option<Record> {
        while let Some(seq) = self.handed.front().map(Record::seq) {
            if seq <= self.read_seq {
                self.handed.pop_front();
            } else if seq == self.read_seq.saturating_add(1) && seq <= up_to {
                return self.handed.pop_front();
            } else {
                return None;
            }
        }
        None
    }

    fn maybe_save_checkpoint(&mut self) -> Result<usize, ForwardError> {
        let unsaved = self.forwarded_seq - self.saved_checkpoint;
        if unsaved >= self.config.checkpoint_every_records || self.has_deletable_segment()? {
            return self.save_checkpoint();
        }
        Ok(0)
    }

    /// Segment k holds sequences below the first sequence of segment k + 1, so it is fully
    /// forwarded once that first sequence is at most `forwarded_seq + 1`. The newest segment
    /// is never deleted: the journal may still be writing to it.
    fn deletable_segments(&self, up_to: u64) -> Result<Vec<PathBuf>, ForwardError> {
        let segments = list_segments(&self.dir)?;
        Ok(segments
            .windows(2)
            .filter_map(|pair| match pair {
                [older, newer] if newer.first_seq <= up_to.saturating_add(1) => {
                    Some(older.path.clone())
                }
                _ => None,
            })
            .collect())
    }

    fn has_deletable_segment(&self) -> Result<bool, ForwardError> {
        Ok(!self.deletable_segments(self.forwarded_seq)?.is_empty())
    }

    fn delete_forwarded_segments(&mut self) -> Result<usize, ForwardError> {
        // Only what the saved checkpoint covers: after a crash, replay starts from it.
        let doomed = self.deletable_segments(self.saved_checkpoint)?;
        for path in &doomed {
            std::fs::remove_file(path).map_err(|e| JournalError::io("delete segment", path, e))?;
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests;
