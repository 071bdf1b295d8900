//! Collects configuration errors and turns field paths into file positions.

use std::ops::Range;

use toml_edit::Table;

use super::error::{ConfigError, Position};
use super::path::FieldPath;
use super::reader::Node;

/// Which part of a `key = value` pair an error points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// The value: for wrong types, bad addresses, out-of-range numbers.
    Value,
    /// The key: for unknown keys, where the value is irrelevant.
    Key,
}

/// Every error found so far in one document, each located by the path of its field.
///
/// Errors are reported by path rather than by span so that checks running after the tree was
/// read (duplicates, references between sections) locate their errors the same way.
pub(super) struct Diagnostics<'a> {
    file: &'a str,
    text: &'a str,
    root: &'a Table,
    errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    /// Starts collecting errors for `text` (named `file`), parsed into `root`.
    pub(super) fn new(file: &'a str, text: &'a str, root: &'a Table) -> Self {
        Diagnostics {
            file,
            text,
            root,
            errors: Vec::new(),
        }
    }

    /// Records an error about the value at `path`.
    pub(super) fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(path, Anchor::Value, message.into());
    }

    /// Records an error about the key at `path` (e.g. an unknown key).
    pub(super) fn error_at_key(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(path, Anchor::Key, message.into());
    }

    /// Line where the value at `path` starts, to point back at an earlier definition.
    pub(super) fn line_of(&self, path: &FieldPath) -> usize {
        self.position(path, Anchor::Value).line
    }

    /// Whether any error has been recorded so far.
    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors recorded, in the order they were found.
    pub(super) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    fn push(&mut self, path: &FieldPath, anchor: Anchor, message: String) {
        let position = self.position(path, anchor);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            position: Some(position),
            field: path.to_string(),
            message,
        });
    }

    fn position(&self, path: &FieldPath, anchor: Anchor) -> Position {
        let offset = self.span(path, anchor).map_or(0, |span| span.start);
        Position::from_offset(self.text, offset)
    }

    /// The span of the deepest node along `path` that has one: a missing key is thus reported
    /// at its table's header, and a key of an implicit table at the key itself.
    fn span(&self, path: &FieldPath, anchor: Anchor) -> Option<Range<usize>> {
        let mut node = Node::Table(self.root);
        let mut best = None;
        let segments = path.segments();
        for (depth, segment) in segments.iter().enumerate() {
            let Some((child, key_span)) = node.child(segment) else {
                break;
            };
            let is_target = depth + 1 == segments.len();
            let span = if is_target && anchor == Anchor::Key {
                key_span.or_else(|| child.span())
            } else {
                child.span().or(key_span)
            };
            best = span.or(best);
            node = child;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use toml_edit::ImDocument;

    use super::*;

    fn position_of(text: &str, path: &FieldPath, anchor: Anchor) -> (usize, usize) {
        let document = ImDocument::parse(text).expect("test TOML is valid");
        let diagnostics = Diagnostics::new("t.toml", text, document.as_table());
        let position = diagnostics.position(path, anchor);
        (position.line, position.column)
    }

    #[test]
    fn locates_values_keys_and_missing_keys() {
        let text = "[sip]\nrealm = \"x\"\n\n[[agent]]\nid = \"1\"\nskills = { a = 3 }\n";
        let root = FieldPath::root();
        let realm = root.key("sip").key("realm");
        assert_eq!(position_of(text, &realm, Anchor::Value), (2, 9));
        assert_eq!(position_of(text, &realm, Anchor::Key), (2, 1));
        let skill = root.key("agent").index(0).key("skills").key("a");
        assert_eq!(position_of(text, &skill, Anchor::Value), (6, 16));
        // A key that is not there points at its table's header.
        let missing = root.key("agent").index(0).key("name");
        assert_eq!(position_of(text, &missing, Anchor::Value), (4, 1));
    }

    #[test]
    fn dotted_keys_without_table_spans_fall_back_to_the_key() {
        let text = "x = 1\nsip.realm = 5\n";
        let path = FieldPath::root().key("sip").key("nope");
        assert_eq!(position_of(text, &path, Anchor::Value), (2, 1));
    }
}
