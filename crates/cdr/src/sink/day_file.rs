//! One append-only, line-oriented output file that knows the last sequence it holds.
//!
//! Knowing the last sequence makes writes idempotent across crashes: when the forwarder
//! re-sends records after a restart, those already in the file are skipped. Opening a file
//! also cuts off a line torn by a crash (the record is still in the journal and will be sent
//! again), so a crash never leaves a broken or duplicated line behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SinkError;

/// How the sequence number is found in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFormat {
    /// A JSON object with a `seq` field.
    JsonLines,
    /// A CSV row whose first cell is the sequence (the header row has none).
    Csv,
}

pub(crate) struct DayFile {
    path: PathBuf,
    file: File,
    /// Bytes known to be fully written.
    len: u64,
    /// Highest sequence durably in the file (0 if none).
    last_seq: u64,
    /// Encoded lines waiting for `commit`.
    pending: Vec<u8>,
    pending_last_seq: u64,
}

impl DayFile {
    /// Opens or creates the file, cutting off a torn last line; writes `header` into a new file.
    pub(crate) fn open(
        path: &Path,
        format: LineFormat,
        header: Option<&[u8]>,
    ) -> Result<DayFile, SinkError> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| SinkError::io("open", path, e))?;
        if !existed {
            if let Some(dir) = path.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| SinkError::io("sync directory", dir, e))?;
            }
        }
        let size = file
            .metadata()
            .map_err(|e| SinkError::io("stat", path, e))?
            .len();
        let (mut len, last_seq) =
            recover_tail(&mut file, size, format).map_err(|e| SinkError::io("read", path, e))?;
        if len < size {
            file.set_len(len)
                .and_then(|()| file.sync_data())
                .map_err(|e| SinkError::io("cut torn line from", path, e))?;
        }
        if len == 0 {
            if let Some(header) = header {
                file.write_all(header)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| SinkError::io("write header to", path, e))?;
                len = header.len() as u64;
            }
        }
        Ok(DayFile {
            path: path.to_path_buf(),
            file,
            len,
            last_seq,
            pending: Vec::new(),
            pending_last_seq: last_seq,
        })
    }

    /// Whether a record with this sequence still needs writing here.
    pub(crate) fn wants(&self, seq: u64) -> bool {
        seq > self.pending_last_seq
    }

    /// Buffer for the encoded line of record `seq`; call only if `wants(seq)`.
    pub(crate) fn line_buffer(&mut self, seq: u64) -> &mut Vec<u8> {
        self.pending_last_seq = seq;
        &mut self.pending
    }

    /// Writes and fdatasyncs the pending lines. On failure they are dropped (the caller
    /// re-sends) and `Err(.., broken)` tells whether the file could not be cut back to its
    /// last good length and must be reopened.
    pub(crate) fn commit(&mut self) -> Result<(), (SinkError, bool)> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += self.pending.len() as u64;
                self.last_seq = self.pending_last_seq;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                let broken = self.file.set_len(self.len).is_err();
                self.discard_pending();
                Err((SinkError::io("write", &self.path, e), broken))
            }
        }
    }

    /// Forgets lines encoded but not committed.
    pub(crate) fn discard_pending(&mut self) {
        self.pending.clear();
        self.pending_last_seq = self.last_seq;
    }
}

/// Finds the length up to the last complete line and the last sequence number in it.
fn recover_tail(file: &mut File, size: u64, format: LineFormat) -> io::Result<(u64, u64)> {
    let mut lines = BackwardLines::new(file, size);
    let valid_len = lines.skip_partial_tail()?;
    while let Some(line) = lines.previous_line()? {
        if let Some(seq) = seq_of_line(&line, format) {
            return Ok((valid_len, seq));
        }
    }
    Ok((valid_len, 0))
}

fn seq_of_line(line: &[u8], format: LineFormat) -> Option<u64> {
    match format {
        LineFormat::JsonLines => {
            #[derive(Deserialize)]
            struct SeqOnly {
                seq: u64,
            }
            serde_json::from_slice::<SeqOnly>(line).ok().map(|s| s.seq)
        }
        LineFormat::Csv => {
            let cell = line.split(|&b| b == b',').next()?;
            std::str::from_utf8(cell).ok()?.trim().parse().ok()
        }
    }
}

/// Reads a file's lines from the end, a chunk at a time, so finding the last record of a
/// large file costs one small read.
struct BackwardLines<'f> {
    file: &'f mut File,
    /// File offset of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
    /// `buf[..end]` has not been returned yet; `buf[end - 1]` is a newline (or `end == 0`).
    end: usize,
}

const CHUNK: u64 = 64 * 1024;

impl<'f> BackwardLines<'f> {
    fn new(file: &'f mut File, size: u64) -> Self {
        BackwardLines {
            file,
            buf_start: size,
            buf: Vec::new(),
            end: 0,
        }
    }

    /// Reads the chunk before `buf`; false at the start of the file.
    fn read_earlier(&mut self) -> io::Result<bool> {
        if self.buf_start == 0 {
            return Ok(false);
        }
        let from = self.buf_start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (self.buf_start - from) as usize];
        self.file.seek(SeekFrom::Start(from))?;
        self.file.read_exact(&mut chunk)?;
        self.end += chunk.len();
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        self.buf_start = from;
        Ok(true)
    }

    /// Positions before any unterminated final line and returns the length up to it.
    fn skip_partial_tail(&mut self) -> io::Result<u64> {
        loop {
            if let Some(newline) = self.buf[..self.end].iter().rposition(|&b| b == b'\n') {
                self.end = newline + 1;
                return Ok(self.buf_start + self.end as u64);
            }
            if !self.read_earlier()? {
                self.end = 0;
                return Ok(0);
            }
        }
    }

    /// The previous complete line (without its newline), or `None` at the start of the file.
    fn previous_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.end == 0 && self.buf_start == 0 {
            return Ok(None);
        }
        loop {
            let body_end = self.end.saturating_sub(1);
            if let Some(newline) = self.buf[..body_end].iter().rposition(|&b| b == b'\n') {
                let line = self.buf[newline + 1..body_end].to_vec();
                self.end = newline + 1;
                return Ok(Some(line));
            }
            if !self.read_earlier()? {
                let line = self.buf[..body_end].to_vec();
                self.end = 0;
                return Ok(Some(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_line(seq: u64) -> String {
        format!("{{\"type\":\"call\",\"seq\":{seq},\"id\":\"c{seq}\"}}\n")
    }

    #[test]
    fn new_file_gets_header_and_no_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let file = DayFile::open(&path, LineFormat::Csv, Some(b"seq,id\n")).unwrap();
        assert_eq!(file.last_seq, 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"seq,id\n");
    }

    #[test]
    fn reopening_finds_last_seq_and_skips_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut file = DayFile::open(&path, LineFormat::JsonLines, None).unwrap();
        for seq in [3, 4, 9] {
            assert!(file.wants(seq));
            file.line_buffer(seq)
                .extend_from_slice(json_line(seq).as_bytes());
        }
        file.commit().map_err(|(e, _)| e).unwrap();
        drop(file);
        let file = DayFile::open(&path, LineFormat::JsonLines, None).unwrap();
        assert_eq!(file.last_seq, 9);
        assert!(!file.wants(9) && !file.wants(4) && file.wants(10));
    }

    #[test]
    fn torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let whole = format!("{}{}", json_line(1), json_line(2));
        std::fs::write(&path, format!("{whole}{{\"type\":\"call\",\"seq\":3,\"i")).unwrap();
        let file = DayFile::open(&path, LineFormat::JsonLines, None).unwrap();
        assert_eq!(file.last_seq, 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
    }

    #[test]
    fn csv_tail_recovery_skips_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "seq,id\n7,x\n8,\"a,b\"\n9,tor").unwrap();
        let file = DayFile::open(&path, LineFormat::Csv, Some(b"seq,id\n")).unwrap();
        assert_eq!(file.last_seq, 8);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "seq,id\n7,x\n8,\"a,b\"\n"
        );
        std::fs::write(&path, "seq,id\n").unwrap();
        let file = DayFile::open(&path, LineFormat::Csv, Some(b"seq,id\n")).unwrap();
        assert_eq!(file.last_seq, 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "seq,id\n");
    }

    #[test]
    fn long_files_are_scanned_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut text = String::new();
        for seq in 1..=3000 {
            text.push_str(&json_line(seq));
        }
        // A trailing run of unparseable lines longer than one chunk.
        let junk = format!("{}\n", "x".repeat(100_000));
        text.push_str(&junk);
        text.push_str(&"y".repeat(70_000));
        std::fs::write(&path, &text).unwrap();
        let file = DayFile::open(&path, LineFormat::JsonLines, None).unwrap();
        assert_eq!(file.last_seq, 3000);
        assert_eq!(file.len, (text.len() - 70_000) as u64);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(content in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.jsonl");
            std::fs::write(&path, &content).unwrap();
            let file = DayFile::open(&path, LineFormat::JsonLines, None).unwrap();
            let kept = std::fs::read(&path).unwrap();
            prop_assert!(kept.is_empty() || kept.ends_with(b"\n"));
            prop_assert!(content.starts_with(&kept));
            prop_assert_eq!(file.len, kept.len() as u64);
        }
    }
}
