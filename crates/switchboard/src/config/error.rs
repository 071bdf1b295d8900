//! Errors reported for a configuration file: each one names the file, the position and the field.

use std::fmt;

/// A 1-based line and column inside the configuration text (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Position {
    /// Converts a byte offset into `text` to a line and column.
    ///
    /// Offsets past the end clamp to the end, and an offset inside a multi-byte character counts
    /// that character, so a position is always produced without panicking.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        // Every UTF-8 character has exactly one byte that is not a continuation byte.
        let column = 1 + before[line_start..]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        Position { line, column }
    }
}

/// One problem found in a configuration file.
///
/// Displays as `file:line:col: field: message`; the position is left out when there is none
/// (the file could not be read) and the field when the problem is not about one field
/// (a TOML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or other source name) the configuration came from.
    pub file: String,
    /// Where in the file the problem is.
    pub position: Option<Position>,
    /// Dotted path of the offending field, e.g. `queue[0].skills.support`; empty if none.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order.
///
/// Never empty. Displays as one line per error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_lines(.errors))]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps the errors found, sorted by position so the report reads top to bottom.
    ///
    /// Returns `None` for an empty list, so a `ConfigErrors` always holds at least one error.
    pub fn new(mut errors: Vec<ConfigError>) -> Option<Self> {
        if errors.is_empty() {
            return None;
        }
        // Stable sort: errors at the same position keep the order they were found in.
        errors.sort_by_key(|error| error.position);
        Some(ConfigErrors { errors })
    }

    /// A single error that is not tied to a position, such as an unreadable file.
    pub fn whole_file(file: &str, message: String) -> Self {
        ConfigErrors {
            errors: vec![ConfigError {
                file: file.to_owned(),
                position: None,
                field: String::new(),
                message,
            }],
        }
    }

    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors were found.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: kept for the `len`/`is_empty` convention.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

fn render_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let text = "ab\nçd = 1\n";
        assert_eq!(
            Position::from_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::from_offset(text, 3),
            Position { line: 2, column: 1 }
        );
        // 'ç' is two bytes but one column.
        assert_eq!(
            Position::from_offset(text, 5),
            Position { line: 2, column: 2 }
        );
        // Inside the two bytes of 'ç': still a valid position, no panic.
        assert_eq!(
            Position::from_offset(text, 4),
            Position { line: 2, column: 2 }
        );
        assert_eq!(
            Position::from_offset(text, 999),
            Position { line: 3, column: 1 }
        );
    }

    #[test]
    fn display_has_one_line_per_error_in_file_order() {
        let at = |line, field: &str| ConfigError {
            file: "f.toml".into(),
            position: Some(Position { line, column: 3 }),
            field: field.into(),
            message: "bad".into(),
        };
        let errors = ConfigErrors::new(vec![at(9, "b"), at(2, "a")]).expect("two errors");
        assert_eq!(errors.to_string(), "f.toml:2:3: a: bad\nf.toml:9:3: b: bad");
        assert!(ConfigErrors::new(Vec::new()).is_none());
        assert_eq!(
            ConfigErrors::whole_file("x.toml", "cannot read".into()).to_string(),
            "x.toml: cannot read"
        );
    }
}
