//! Callers' pending callbacks kept across restarts: call control hands over the list whenever
//! it changes, and this edge writes it to `<[cdr] dir>/callbacks.json` (a whole new file
//! renamed over the old one, so a crash leaves the old list or the new one); at start the list
//! is read back and the callbacks booked again.

use std::path::{Path, PathBuf};

use crate::switch::callback::book::PendingCallback;

/// Where the journal lives.
pub fn path(cdr_dir: &Path) -> PathBuf {
    cdr_dir.join("callbacks.json")
}

/// Writes the list (replacing the previous one).
pub fn save(path: &Path, pending: &[PendingCallback]) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(pending).map_err(std::io::Error::other)?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// Reads the list; none when there is no file. A file that cannot be read is logged and
/// treated as empty (the callbacks are then lost, as before the journal existed).
pub fn load(path: &Path) -> Vec<PendingCallback> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "pending callbacks not read");
            return Vec::new();
        }
    };
    serde_json::from_slice(&text).unwrap_or_else(|error| {
        tracing::error!(path = %path.display(), %error, "pending callbacks file is not a callback list");
        Vec::new()
    })
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
        save(&file, &pending).expect("saved");
        assert_eq!(load(&file), pending);
        std::fs::write(&file, b"not json").expect("write");
        assert!(load(&file).is_empty());
    }
}
