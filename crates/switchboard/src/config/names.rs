//! Names declared in the file (trunks, queues, agents ...), for duplicate and reference checks.

use std::collections::BTreeMap;

use super::diagnostics::Diagnostics;
use super::path::FieldPath;

/// The names of one kind of thing, each with where it was first declared.
///
/// A name counts as declared even when the rest of its entry is invalid, so one bad entry
/// does not also cause "unknown queue" errors everywhere it is referenced.
pub(super) struct Declared<K> {
    kind: &'static str,
    first: BTreeMap<K, FieldPath>,
}

impl<K: Ord> Declared<K> {
    /// An empty set of names of `kind` ("queue name", "agent id" ...).
    pub(super) fn new(kind: &'static str) -> Self {
        Declared {
            kind,
            first: BTreeMap::new(),
        }
    }

    /// Records `key`, shown as `shown` (empty for secrets), declared at `path`; a second
    /// declaration is reported.
    /// Returns whether the key was new.
    pub(super) fn declare(
        &mut self,
        diagnostics: &mut Diagnostics<'_>,
        key: K,
        shown: &str,
        path: &FieldPath,
    ) -> bool {
        if let Some(first) = self.first.get(&key) {
            let line = diagnostics.line_of(first);
            diagnostics.error(
                path,
                format!(
                    "duplicate {}{} (first defined at {first}, line {line})",
                    self.kind,
                    if shown.is_empty() {
                        String::new()
                    } else {
                        format!(" `{shown}`")
                    }
                ),
            );
            return false;
        }
        self.first.insert(key, path.clone());
        true
    }
}

impl Declared<String> {
    /// Whether `name` was declared.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.first.contains_key(name)
    }

    /// Reports `name` at `path` if it was never declared, listing the names that were.
    /// Returns whether the name is known.
    pub(super) fn check_reference(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        name: &str,
        path: &FieldPath,
    ) -> bool {
        if self.first.contains_key(name) {
            return true;
        }
        // Keep the line readable with hundreds of agents: name a few, count the rest.
        const SHOWN: usize = 10;
        let known: Vec<&str> = self.first.keys().take(SHOWN).map(String::as_str).collect();
        let hint = match self.first.len() {
            0 => "none are configured".to_owned(),
            count if count <= SHOWN => format!("configured: {}", known.join(", ")),
            count => format!(
                "configured: {} and {} more",
                known.join(", "),
                count - SHOWN
            ),
        };
        diagnostics.error(path, format!("unknown {} `{name}` ({hint})", self.kind));
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::error_lines;

    #[test]
    fn long_name_lists_are_cut_short() {
        let mut text = String::new();
        for id in 0..12 {
            text.push_str(&format!(
                "[[agent]]\nid = \"a{id:02}\"\nname = \"A\"\npassword = \"p\"\n"
            ));
        }
        text.push_str("[[http.token]]\ntoken = \"t\"\nrole = \"agent\"\nagent = \"zz\"\n");
        assert_eq!(
            error_lines(&text),
            vec!["t.toml:52:9: http.token[0].agent: unknown agent `zz` (configured: a00, a01, a02, a03, a04, a05, a06, a07, a08, a09 and 2 more)"]
        );
    }
}
