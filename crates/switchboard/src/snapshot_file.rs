//! A list kept across restarts as one JSON file next to the CDRs (pending callbacks,
//! campaigns): call control hands over the whole list whenever it changes, a task off the
//! call-control loop writes it as a new file that is flushed to disk and renamed over the old
//! one (so a crash or a power loss leaves the old list or the new one, never half of either),
//! and at start the list is read back.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Writes `items` to `path`, replacing the previous list.
pub fn save<T: Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    let text = serde_json::to_vec(items).map_err(std::io::Error::other)?;
    let partial = path.with_extension("json.partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Reads the list at `path`; empty when there is no file. A file that cannot be read or is
/// not such a list is logged (naming `what`) and treated as empty: what it held is lost, the
/// CDRs of what already happened remain.
pub fn load<T: DeserializeOwned>(path: &Path, what: &str) -> Vec<T> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "{what} not read");
            return Vec::new();
        }
    };
    serde_json::from_slice(&text).unwrap_or_else(|error| {
        tracing::error!(path = %path.display(), %error, "{what}: the file is not such a list");
        Vec::new()
    })
}

/// A task that writes the latest list handed to the returned sender to `path`. Lists that
/// arrive while a write is under way are folded into the next one; writes happen in order.
pub fn spawn_writer<T>(path: PathBuf, what: &'static str) -> tokio::sync::watch::Sender<Vec<T>>
where
    T: Serialize + Clone + Send + Sync + 'static,
{
    let (sender, mut latest) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(async move {
        while latest.changed().await.is_ok() {
            let items = latest.borrow_and_update().clone();
            let path = path.clone();
            let written = tokio::task::spawn_blocking(move || save(&path, &items)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "{what} not journalled"),
                Err(error) => tracing::error!(%error, "{what} journal writer stopped"),
            }
        }
    });
    sender
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_list_reads_back_and_no_file_or_garbage_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("things.json");
        assert!(load::<String>(&file, "things").is_empty(), "no file yet");
        save(&file, &["a".to_owned(), "b".to_owned()]).expect("saved");
        assert_eq!(load::<String>(&file, "things"), vec!["a", "b"]);
        assert!(
            !file.with_extension("json.partial").exists(),
            "renamed into place"
        );
        std::fs::write(&file, b"not json").expect("write");
        assert!(load::<String>(&file, "things").is_empty());
    }

    #[tokio::test]
    async fn the_writer_ends_with_the_latest_list_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("things.json");
        let writer = spawn_writer(file.clone(), "things");
        writer.send_replace(vec![1_u32]);
        writer.send_replace(vec![1, 2]);
        // Wait (generously) for the write to land; earlier ones may have been folded into it.
        let landed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while load::<u32>(&file, "things") != [1, 2] {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(landed.is_ok(), "the latest list was not written");
    }
}
