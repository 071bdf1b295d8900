//! Emergency announcements: an admin switches a prompt on for a number (DID), and every new
//! call to it hears that prompt first (e.g. "we are experiencing a service disruption").
//!
//! Call control reads the board for every incoming call, so reads are lock-free (a sharded
//! concurrent map); the HTTP API writes to it. A board opened on a file keeps the
//! announcements there (written whole, atomically, after each change), so a restart does not
//! silently switch off an announcement an admin switched on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use dashmap::DashMap;

/// The prompt played when a PUT does not name one.
pub const DEFAULT_EMERGENCY_PROMPT: &str = "emergency";

/// Which numbers have an emergency announcement switched on, and with which prompt.
#[derive(Debug, Default)]
pub struct EmergencyBoard {
    by_did: DashMap<String, String>,
    /// Where the board is kept across restarts; the lock orders concurrent saves.
    file: Option<Mutex<PathBuf>>,
}

impl EmergencyBoard {
    /// An empty board: no announcements, nothing kept across restarts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The board kept in `file` (`{"<did>": "<prompt>", …}`), with the announcements found
    /// there; a missing file is an empty board. An unreadable file stops the start, rather
    /// than an announcement being dropped without anyone noticing.
    pub fn open(file: &Path) -> anyhow::Result<Self> {
        let board = EmergencyBoard {
            by_did: DashMap::new(),
            file: Some(Mutex::new(file.to_path_buf())),
        };
        match std::fs::read(file) {
            Ok(bytes) => {
                let saved: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).with_context(|| {
                        format!("reading emergency announcements {}", file.display())
                    })?;
                for (did, prompt) in saved {
                    board.by_did.insert(did, prompt);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("reading emergency announcements {}", file.display()))
            }
        }
        Ok(board)
    }

    /// Writes the board to its file (write a temporary file, then rename: a crash leaves the
    /// old or the new board, never half of one). A board without a file has nothing to do.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let file = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let all: BTreeMap<String, String> = self.list().into_iter().collect();
        let json = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        let temporary = file.with_extension("json.tmp");
        std::fs::write(&temporary, json)?;
        std::fs::rename(&temporary, &*file)
    }

    /// The prompt to play first for calls to `did`, if one is switched on.
    pub fn get(&self, did: &str) -> Option<String> {
        self.by_did.get(did).map(|entry| entry.value().clone())
    }

    /// Switches `prompt` on for `did`, replacing any previous one.
    pub fn set(&self, did: &str, prompt: &str) {
        self.by_did.insert(did.to_owned(), prompt.to_owned());
    }

    /// Switches the announcement for `did` off; returns whether one was on.
    pub fn clear(&self, did: &str) -> bool {
        self.by_did.remove(did).is_some()
    }

    /// Every announcement switched on, as `(did, prompt)` sorted by DID.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .by_did
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_list_and_clear() {
        let board = EmergencyBoard::new();
        assert_eq!(board.get("100"), None);
        board.set("101", "storm");
        board.set("100", DEFAULT_EMERGENCY_PROMPT);
        board.set("101", "outage");
        assert_eq!(board.get("101").as_deref(), Some("outage"));
        assert_eq!(
            board.list(),
            vec![
                ("100".to_owned(), "emergency".to_owned()),
                ("101".to_owned(), "outage".to_owned())
            ]
        );
        assert!(board.clear("100"));
        assert!(!board.clear("100"));
        assert_eq!(board.get("100"), None);
        assert_eq!(board.list().len(), 1);
    }

    #[test]
    fn a_board_on_a_file_survives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("emergency.json");
        let board = EmergencyBoard::open(&file).expect("no file yet: empty");
        assert!(board.list().is_empty());
        board.set("100", "storm");
        board.set("101", "emergency");
        board.save().expect("saved");
        assert!(board.clear("101"));
        board.save().expect("saved");
        let reopened = EmergencyBoard::open(&file).expect("reads back");
        assert_eq!(
            reopened.list(),
            vec![("100".to_owned(), "storm".to_owned())]
        );
        std::fs::write(&file, b"{not json").expect("write");
        let error = EmergencyBoard::open(&file).expect_err("a broken file stops the start");
        assert!(format!("{error:#}").contains("emergency.json"), "{error:#}");
    }

    #[test]
    fn concurrent_writers_and_readers_agree() {
        let board = std::sync::Arc::new(EmergencyBoard::new());
        let writers: Vec<_> = (0..4)
            .map(|n| {
                let board = board.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        board.set(&format!("{n}-{i}"), "emergency");
                        let _ = board.get(&format!("{n}-{}", i / 2));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer thread does not panic");
        }
        assert_eq!(board.list().len(), 400);
    }
}
