//! Emergency announcements: an admin switches a prompt on for a number (DID), and every new
//! call to it hears that prompt first (e.g. "we are experiencing a service disruption").
//!
//! Call control reads the board for every incoming call, so reads are lock-free (a sharded
//! concurrent map); the HTTP API writes to it.

use dashmap::DashMap;

/// The prompt played when a PUT does not name one.
pub const DEFAULT_EMERGENCY_PROMPT: &str = "emergency";

/// Which numbers have an emergency announcement switched on, and with which prompt.
#[derive(Debug, Default)]
pub struct EmergencyBoard {
    by_did: DashMap<String, String>,
}

impl EmergencyBoard {
    /// An empty board: no announcements.
    pub fn new() -> Self {
        Self::default()
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
