//! Journal segment files: naming, listing and the directory fsync that makes new names durable.
//!
//! A segment is named after the first sequence number it may hold:
//! `journal-00000000000000000042.jsonl` holds records 42, 43, … up to (excluding) the first
//! sequence of the next segment. Knowing a segment's range from the names alone lets the
//! forwarder delete fully forwarded segments without reading them.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::JournalError;

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".jsonl";

/// A segment file found in the journal directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The first sequence number this segment may hold.
    pub first_seq: u64,
    /// Full path of the file.
    pub path: PathBuf,
}

/// Path of the segment whose first sequence number is `first_seq`.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    // Zero padding keeps `ls` order equal to sequence order for humans; code sorts numerically.
    dir.join(format!("{PREFIX}{first_seq:020}{SUFFIX}"))
}

/// Parses `journal-<n>.jsonl`; other names (checkpoint, temp files, strays) yield `None`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// All segments in `dir`, in sequence order.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<Segment>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let name = entry.file_name();
        if let Some(first_seq) = name.to_str().and_then(parse_segment_name) {
            segments.push(Segment {
                first_seq,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// Fsyncs a directory so that files created or renamed in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| JournalError::io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strays_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [10u64, 2, 300] {
            File::create(segment_path(dir.path(), seq)).unwrap();
        }
        for stray in [
            "checkpoint",
            "checkpoint.tmp",
            "journal-.jsonl",
            "journal-12x.jsonl",
            "journal-5.json",
            "journal-+5.jsonl",
        ] {
            File::create(dir.path().join(stray)).unwrap();
        }
        let firsts: Vec<u64> = list_segments(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.first_seq)
            .collect();
        assert_eq!(firsts, vec![2, 10, 300]);
    }

    #[test]
    fn names_sort_as_text_too() {
        let a = segment_path(Path::new("/j"), 9);
        let b = segment_path(Path::new("/j"), 10);
        assert!(a < b);
    }
}
