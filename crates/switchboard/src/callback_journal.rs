//! Callers' pending callbacks kept across restarts: call control hands over the list whenever
//! it changes, and this edge writes it to `<[cdr] dir>/callbacks.json` (see
//! [`crate::snapshot_file`]); at start the list is read back and the callbacks booked again.

use std::path::{Path, PathBuf};

use crate::switch::callback::book::PendingCallback;

/// Where the journal lives.
pub fn path(cdr_dir: &Path) -> PathBuf {
    cdr_dir.join("callbacks.json")
}

/// Reads the list; none when there is no file (see [`crate::snapshot_file::load`]).
pub fn load(path: &Path) -> Vec<PendingCallback> {
    crate::snapshot_file::load(path, "pending callbacks")
}

/// The task that writes every new list (see [`crate::snapshot_file::spawn_writer`]).
pub fn spawn_writer(path: PathBuf) -> tokio::sync::watch::Sender<Vec<PendingCallback>> {
    crate::snapshot_file::spawn_writer(path, "pending callbacks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_list_reads_back_and_no_file_or_garbage_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        assert!(load(&file).is_empty(), "no file yet");
        let pending = vec![PendingCallback {
            number: "2000".into(),
            queue: "support".into(),
            requested_by: "sb-1-4".into(),
            requested_unix: 1_773_014_400,
            waited_s: 42,
            caller_id: "100".into(),
            attempts: Vec::new(),
        }];
        crate::snapshot_file::save(&file, &pending).expect("saved");
        assert_eq!(load(&file), pending);
        std::fs::write(&file, b"not json").expect("write");
        assert!(load(&file).is_empty());
    }
}
