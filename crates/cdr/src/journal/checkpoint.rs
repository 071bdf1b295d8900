//! The checkpoint: the highest sequence number every sink has durably received.
//!
//! Written atomically (temp file, fsync, rename, fsync the directory) so that after a crash it
//! holds either the old or the new value, never a torn one.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::segment::sync_dir;
use super::JournalError;

const FILE_NAME: &str = "checkpoint";
const TEMP_NAME: &str = "checkpoint.tmp";

#[derive(Serialize, Deserialize)]
struct CheckpointFile {
    /// Every record with `seq <= forwarded_seq` has reached every sink.
    forwarded_seq: u64,
}

/// Path of the checkpoint file in a journal directory.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the checkpoint of a journal directory; 0 (nothing forwarded) if there is none yet.
pub fn read_checkpoint(dir: &Path) -> Result<u64, JournalError> {
    let path = checkpoint_path(dir);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(JournalError::io("read checkpoint", &path, e)),
    };
    // A damaged checkpoint is reported, not guessed at: treating it as 0 would re-send the
    // whole journal, which the operator should decide on.
    serde_json::from_slice::<CheckpointFile>(&text)
        .map(|file| file.forwarded_seq)
        .map_err(|e| JournalError::CorruptCheckpoint {
            path,
            reason: e.to_string(),
        })
}

/// Atomically replaces the checkpoint of a journal directory with `forwarded_seq`.
pub fn write_checkpoint(dir: &Path, forwarded_seq: u64) -> Result<(), JournalError> {
    let temp = dir.join(TEMP_NAME);
    let mut body =
        serde_json::to_vec(&CheckpointFile { forwarded_seq }).map_err(JournalError::Serialize)?;
    body.push(b'\n');
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(&body)?;
        file.sync_all()
    };
    write().map_err(|e| JournalError::io("write checkpoint", &temp, e))?;
    let path = checkpoint_path(dir);
    fs::rename(&temp, &path).map_err(|e| JournalError::io("rename checkpoint", &path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_checkpoint_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), 0);
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), 41).unwrap();
        write_checkpoint(dir.path(), 42).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), 42);
        assert!(!dir.path().join(TEMP_NAME).exists());
    }

    #[test]
    fn leftover_temp_file_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), 5).unwrap();
        fs::write(dir.path().join(TEMP_NAME), b"{\"forwarded_s").unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), 5);
        write_checkpoint(dir.path(), 6).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), 6);
    }

    #[test]
    fn damaged_checkpoint_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(checkpoint_path(dir.path()), b"garbage").unwrap();
        match read_checkpoint(dir.path()) {
            Err(JournalError::CorruptCheckpoint { path, .. }) => {
                assert_eq!(path, checkpoint_path(dir.path()))
            }
            other => panic!("expected CorruptCheckpoint, got {other:?}"),
        }
    }
}
