//! Reading journal segments back: crash replay and the forwarder's tail of the live journal.
//!
//! One cursor serves both so that records forwarded live and records recovered after a crash
//! go through the same code. It walks segments in sequence order and yields each record with a
//! sequence number above the one it started after, exactly once:
//!
//! - a line that does not parse is skipped and counted (`malformed_lines`);
//! - a final line with no newline is a write torn by a crash: skipped and counted
//!   (`torn_lines`) once a newer segment exists or in one-shot replay; while tailing the live
//!   segment it is instead left alone, because the writer may still be completing it;
//! - a record whose sequence is not above the last one yielded is a copy left by a retried
//!   write and is skipped (`duplicate_records`).

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::checkpoint::read_checkpoint;
use super::segment::{list_segments, Segment};
use super::JournalError;
use crate::model::Record;

/// Lines the reader skipped, by cause. Never fatal; reported so operators can alert on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkippedLines {
    /// Final lines without a newline: writes interrupted by a crash.
    pub torn_lines: u64,
    /// Complete lines that are not a valid record.
    pub malformed_lines: u64,
    /// Records whose sequence number was already read (left behind by a retried write).
    pub duplicate_records: u64,
}

/// What to do with an unterminated last line of the newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartialTail {
    /// The journal is live: the line may still be being written; leave it for the next call.
    Wait,
    /// One-shot replay after a crash: the line will never complete; skip and count it.
    Skip,
}

struct OpenSegment {
    first_seq: u64,
    path: PathBuf,
    reader: BufReader<File>,
    /// Byte offset of the start of the next unread line.
    offset: u64,
}

/// A position in the journal, yielding records in sequence order.
pub(crate) struct JournalCursor {
    dir: PathBuf,
    /// Records at or below this were handled before the cursor started (checkpoint).
    start_after: u64,
    /// Highest sequence yielded (or `start_after`).
    after_seq: u64,
    current: Option<OpenSegment>,
    /// A record read past the caller's `up_to`, kept for the next call.
    peeked: Option<Record>,
    line: Vec<u8>,
    skipped: SkippedLines,
}

enum LineRead {
    Complete,
    Partial,
    End,
}

impl JournalCursor {
    /// A cursor that yields records with a sequence number above `after_seq`.
    pub(crate) fn new(dir: &Path, after_seq: u64) -> Self {
        JournalCursor {
            dir: dir.to_path_buf(),
            start_after: after_seq,
            after_seq,
            current: None,
            peeked: None,
            line: Vec::with_capacity(2048),
            skipped: SkippedLines::default(),
        }
    }

    /// Lines skipped so far.
    pub(crate) fn skipped(&self) -> SkippedLines {
        self.skipped
    }

    /// The highest sequence yielded (or the one the cursor started after).
    pub(crate) fn after_seq(&self) -> u64 {
        self.after_seq
    }

    /// Moves the cursor to just after `seq`, which the caller has from elsewhere (the
    /// forwarder's in-memory copy): the next read starts over in the segment that may hold
    /// `seq + 1`, and the records up to `seq` read again there are not counted as duplicates.
    pub(crate) fn restart_after(&mut self, seq: u64) {
        self.start_after = seq;
        self.after_seq = seq;
        self.current = None;
        self.peeked = None;
    }

    /// The next record with `seq <= up_to`, or `None` if there is none (yet).
    pub(crate) fn next_record(
        &mut self,
        up_to: u64,
        tail: PartialTail,
    ) -> Result<Option<Record>, JournalError> {
        if let Some(record) = self.peeked.take() {
            if record.seq() > up_to {
                self.peeked = Some(record);
                return Ok(None);
            }
            self.after_seq = record.seq();
            return Ok(Some(record));
        }
        loop {
            if self.current.is_none() && !self.open_next_segment()? {
                return Ok(None);
            }
            let first_read = self.read_line()?;
            if !matches!(first_read, LineRead::Complete) {
                let Some(newer) = self.newer_segment()? else {
                    if matches!(first_read, LineRead::Partial) && tail == PartialTail::Skip {
                        self.skipped.torn_lines += 1;
                        self.consume_line()?;
                        continue;
                    }
                    // Live tail: the writer may still be adding to this segment.
                    return Ok(None);
                };
                // The journal starts a segment only after its last write to the previous
                // one returned, so this segment is now final; but it may have grown since the
                // read above, so read again before moving on or calling the line torn.
                match self.read_line()? {
                    LineRead::Complete => {}
                    LineRead::Partial => {
                        self.skipped.torn_lines += 1;
                        self.consume_line()?;
                        continue;
                    }
                    LineRead::End => {
                        self.open(&newer)?;
                        continue;
                    }
                }
            }
            self.consume_line()?;
            let record = match Record::from_json(&self.line) {
                Ok(record) => record,
                Err(_) => {
                    self.skipped.malformed_lines += 1;
                    continue;
                }
            };
            let seq = record.seq();
            if seq <= self.after_seq {
                if seq > self.start_after {
                    self.skipped.duplicate_records += 1;
                }
                continue;
            }
            if seq > up_to {
                self.peeked = Some(record);
                return Ok(None);
            }
            self.after_seq = seq;
            return Ok(Some(record));
        }
    }

    /// Opens the first segment that may hold a sequence above `after_seq`.
    fn open_next_segment(&mut self) -> Result<bool, JournalError> {
        let segments = list_segments_or_none(&self.dir)?;
        let wanted = self.after_seq.saturating_add(1);
        // Segment k holds [first_k, first_{k+1}); skip those that end at or below `after_seq`.
        let index = segments
            .iter()
            .enumerate()
            .find(|(i, _)| {
                segments
                    .get(i + 1)
                    .is_none_or(|next| next.first_seq > wanted)
            })
            .map(|(i, _)| i);
        match index.and_then(|i| segments.get(i)) {
            Some(segment) => {
                self.open(segment)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn open(&mut self, segment: &Segment) -> Result<(), JournalError> {
        let file = File::open(&segment.path)
            .map_err(|e| JournalError::io("open segment", &segment.path, e))?;
        self.current = Some(OpenSegment {
            first_seq: segment.first_seq,
            path: segment.path.clone(),
            reader: BufReader::with_capacity(256 * 1024, file),
            offset: 0,
        });
        Ok(())
    }

    fn newer_segment(&self) -> Result<Option<Segment>, JournalError> {
        let Some(current) = &self.current else {
            return Ok(None);
        };
        let first = current.first_seq;
        Ok(list_segments_or_none(&self.dir)?
            .into_iter()
            .find(|segment| segment.first_seq > first))
    }

    /// Reads one line into `self.line` without consuming it (see `consume_line`).
    fn read_line(&mut self) -> Result<LineRead, JournalError> {
        let Some(current) = self.current.as_mut() else {
            return Ok(LineRead::End);
        };
        self.line.clear();
        let read = current
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|e| JournalError::io("read segment", &current.path, e))?;
        if read == 0 {
            return Ok(LineRead::End);
        }
        if self.line.last() == Some(&b'\n') {
            return Ok(LineRead::Complete);
        }
        // Rewind so a line still being written is re-read whole next time.
        current
            .reader
            .seek(SeekFrom::Start(current.offset))
            .map_err(|e| JournalError::io("seek segment", &current.path, e))?;
        Ok(LineRead::Partial)
    }

    /// Marks the line in `self.line` as read.
    fn consume_line(&mut self) -> Result<(), JournalError> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        current.offset += self.line.len() as u64;
        if self.line.last() != Some(&b'\n') {
            // A skipped partial line: the reader was rewound; step over it again.
            current
                .reader
                .seek(SeekFrom::Start(current.offset))
                .map_err(|e| JournalError::io("seek segment", &current.path, e))?;
        }
        Ok(())
    }
}

fn list_segments_or_none(dir: &Path) -> Result<Vec<Segment>, JournalError> {
    match list_segments(dir) {
        Err(JournalError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Records in a journal directory that have not yet reached every sink, in sequence order.
///
/// Created by [`replay`]; yields `Err` at most once (an I/O error) and then ends.
pub struct Replay {
    cursor: JournalCursor,
    failed: bool,
}

impl Replay {
    /// Lines skipped so far (torn, malformed, duplicate).
    pub fn skipped(&self) -> SkippedLines {
        self.cursor.skipped()
    }
}

impl Iterator for Replay {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.cursor.next_record(u64::MAX, PartialTail::Skip) {
            Ok(record) => record.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Replays a journal directory after a crash: every record above the checkpoint.
///
/// A missing directory replays nothing. Damaged lines are skipped and counted in
/// [`Replay::skipped`]; only I/O errors and a damaged checkpoint are errors.
pub fn replay(dir: &Path) -> Result<Replay, JournalError> {
    let checkpoint = read_checkpoint(dir)?;
    Ok(Replay {
        cursor: JournalCursor::new(dir, checkpoint),
        failed: false,
    })
}
