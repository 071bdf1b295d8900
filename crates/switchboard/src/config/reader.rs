//! Typed, error-collecting access to the parsed TOML tree.
//!
//! serde stops at the first problem in a struct; a config check must report all of them. So the
//! schema reads the span-preserving `toml_edit` tree through these accessors: each one records a
//! located error in [`Diagnostics`] and returns `None` instead of failing, and the caller carries
//! on with the next field.

use std::fmt::Display;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml_edit::{InlineTable, Item, Key, Table, Value};

use super::diagnostics::Diagnostics;
use super::path::{FieldPath, Segment};

/// Upper bound for settings in seconds: generous, and keeps `Instant + duration` far from overflow.
pub(super) const ONE_DAY_S: i64 = 86_400;

/// A node of the TOML tree; the three variants exist because `toml_edit` stores table
/// entries, array elements and array-of-tables elements as different types.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    fn value(self) -> Option<&'a Value> {
        match self {
            Node::Item(Item::Value(value)) | Node::Value(value) => Some(value),
            _ => None,
        }
    }

    fn table(self) -> Option<TableRef<'a>> {
        match self {
            Node::Item(Item::Table(table)) | Node::Table(table) => Some(TableRef::Block(table)),
            Node::Item(Item::Value(Value::InlineTable(table)))
            | Node::Value(Value::InlineTable(table)) => Some(TableRef::Inline(table)),
            _ => None,
        }
    }

    /// Byte range of this node in the source text, when the parser recorded one
    /// (implicit tables such as `a` in `a.b = 1` have none).
    pub(super) fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }

    /// The child named by `segment`, with the span of its key if it has one.
    pub(super) fn child(self, segment: &Segment) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match segment {
            Segment::Key(key) => {
                let (key, item) = self.table()?.entry(key)?;
                Some((Node::Item(item), key.span()))
            }
            Segment::Index(index) => match self {
                Node::Item(Item::ArrayOfTables(tables)) => {
                    tables.get(*index).map(|table| (Node::Table(table), None))
                }
                _ => self
                    .value()?
                    .as_array()?
                    .get(*index)
                    .map(|value| (Node::Value(value), None)),
            },
        }
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    fn kind(self) -> &'static str {
        match self {
            Node::Item(Item::ArrayOfTables(_)) => "an array of tables",
            Node::Item(Item::Table(_)) | Node::Table(_) => "a table",
            Node::Item(Item::None) => "nothing",
            Node::Item(Item::Value(value)) | Node::Value(value) => match value {
                Value::String(_) => "a string",
                Value::Integer(_) => "an integer",
                Value::Float(_) => "a float",
                Value::Boolean(_) => "a boolean",
                Value::Datetime(_) => "a date-time",
                Value::Array(_) => "an array",
                Value::InlineTable(_) => "a table",
            },
        }
    }
}

/// A `[table]` or an `{ inline = "table" }`, which TOML treats alike.
#[derive(Debug, Clone, Copy)]
pub(super) enum TableRef<'a> {
    Block(&'a Table),
    Inline(&'a InlineTable),
}

impl<'a> TableRef<'a> {
    fn entry(self, key: &str) -> Option<(&'a Key, &'a Item)> {
        match self {
            TableRef::Block(table) => table.get_key_value(key),
            TableRef::Inline(table) => table.get_key_value(key),
        }
    }

    fn keys(self) -> Vec<&'a str> {
        match self {
            TableRef::Block(table) => table.iter().map(|(key, _)| key).collect(),
            TableRef::Inline(table) => table.iter().map(|(key, _)| key).collect(),
        }
    }
}

/// A value found in the document together with its path, read through typed accessors.
#[derive(Debug, Clone)]
pub(super) struct Field<'a> {
    node: Node<'a>,
    path: FieldPath,
}

impl<'a> Field<'a> {
    /// The path of this value, for errors reported after it was read.
    pub(super) fn path(&self) -> &FieldPath {
        &self.path
    }

    fn mismatch(&self, diagnostics: &mut Diagnostics<'_>, expected: &str) {
        diagnostics.error(
            &self.path,
            format!("expected {expected}, found {}", self.node.kind()),
        );
    }

    /// A string value.
    pub(super) fn string(&self, diagnostics: &mut Diagnostics<'_>) -> Option<String> {
        match self.node.value().and_then(Value::as_str) {
            Some(text) => Some(text.to_owned()),
            None => {
                self.mismatch(diagnostics, "a string");
                None
            }
        }
    }

    /// A boolean value.
    pub(super) fn boolean(&self, diagnostics: &mut Diagnostics<'_>) -> Option<bool> {
        match self.node.value().and_then(Value::as_bool) {
            Some(value) => Some(value),
            None => {
                self.mismatch(diagnostics, "true or false");
                None
            }
        }
    }

    /// A string that must not be empty or contain whitespace: ids, names used as references, numbers.
    pub(super) fn identifier(&self, diagnostics: &mut Diagnostics<'_>) -> Option<String> {
        let text = self.string(diagnostics)?;
        if text.is_empty() {
            diagnostics.error(&self.path, "must not be empty");
            return None;
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            diagnostics.error(
                &self.path,
                format!("{text:?} must not contain spaces or control characters"),
            );
            return None;
        }
        Some(text)
    }

    /// A string converted by `parse`, whose error text becomes the message.
    pub(super) fn parsed<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(diagnostics)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                diagnostics.error(&self.path, message);
                None
            }
        }
    }

    /// An integer within `range`, converted to `T` (the range must fit in `T`).
    pub(super) fn integer<T: TryFrom<i64>>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let Some(number) = self.node.value().and_then(Value::as_integer) else {
            self.mismatch(diagnostics, "an integer");
            return None;
        };
        let converted = if range.contains(&number) {
            T::try_from(number).ok()
        } else {
            None
        };
        if converted.is_none() {
            diagnostics.error(&self.path, out_of_range("", number, &range));
        }
        converted
    }

    /// Whole seconds within `range`.
    pub(super) fn seconds(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        range: RangeInclusive<i64>,
    ) -> Option<Duration> {
        self.integer(diagnostics, range).map(Duration::from_secs)
    }

    /// Whole milliseconds within `range`.
    pub(super) fn millis(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        range: RangeInclusive<i64>,
    ) -> Option<Duration> {
        self.integer(diagnostics, range).map(Duration::from_millis)
    }

    /// A skill level, 1..=10.
    pub(super) fn skill_level(&self, diagnostics: &mut Diagnostics<'_>) -> Option<u8> {
        const LEVELS: RangeInclusive<i64> = 1..=10;
        let Some(level) = self.node.value().and_then(Value::as_integer) else {
            self.mismatch(diagnostics, "an integer skill level 1..=10");
            return None;
        };
        match u8::try_from(level) {
            Ok(level) if LEVELS.contains(&i64::from(level)) => Some(level),
            _ => {
                diagnostics.error(&self.path, out_of_range("level ", level, &LEVELS));
                None
            }
        }
    }

    /// The elements of an array, or of an array of tables.
    pub(super) fn elements(&self, diagnostics: &mut Diagnostics<'_>) -> Option<Vec<Field<'a>>> {
        let nodes: Vec<Node<'a>> = match self.node {
            Node::Item(Item::ArrayOfTables(tables)) => tables.iter().map(Node::Table).collect(),
            node => match node.value().and_then(Value::as_array) {
                Some(array) => array.iter().map(Node::Value).collect(),
                // `[agent]` written for `[[agent]]` is an easy slip: say how to fix it.
                None if node.table().is_some() => {
                    let key = self.path.last_key().unwrap_or("entry");
                    self.mismatch(
                        diagnostics,
                        &format!("an array (write [[{key}]] for each entry)"),
                    );
                    return None;
                }
                None => {
                    self.mismatch(diagnostics, "an array");
                    return None;
                }
            },
        };
        Some(
            nodes
                .into_iter()
                .enumerate()
                .map(|(index, node)| Field {
                    node,
                    path: self.path.index(index),
                })
                .collect(),
        )
    }

    /// An array whose elements are each read by `read`; `None` if any element was bad.
    pub(super) fn list<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        mut read: impl FnMut(&mut Diagnostics<'_>, &Field<'a>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let elements = self.elements(diagnostics)?;
        // Read every element before giving up, so each bad one is reported.
        let values: Vec<Option<T>> = elements
            .iter()
            .map(|element| read(diagnostics, element))
            .collect();
        values.into_iter().collect()
    }

    /// A table with a fixed set of keys; unknown keys are reported.
    pub(super) fn table(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        known: &'static [&'static str],
    ) -> Option<TableReader<'a>> {
        match self.node.table() {
            Some(table) => Some(TableReader::new(
                diagnostics,
                table,
                self.path.clone(),
                known,
            )),
            None => {
                self.mismatch(diagnostics, "a table");
                None
            }
        }
    }

    /// A table whose keys are free-form names (such as skills), each value read by `read`.
    /// `None` if any entry was bad.
    pub(super) fn map<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        mut read: impl FnMut(&mut Diagnostics<'_>, &Field<'a>) -> Option<T>,
    ) -> Option<Vec<(String, T)>> {
        let Some(table) = self.node.table() else {
            self.mismatch(diagnostics, "a table");
            return None;
        };
        let mut entries = Vec::new();
        let mut all_good = true;
        for key in table.keys() {
            let Some((_, item)) = table.entry(key) else {
                continue;
            };
            let field = Field {
                node: Node::Item(item),
                path: self.path.key(key),
            };
            match read(diagnostics, &field) {
                Some(value) => entries.push((key.to_owned(), value)),
                None => all_good = false,
            }
        }
        all_good.then_some(entries)
    }
}

fn out_of_range(noun: &str, value: impl Display, range: &RangeInclusive<i64>) -> String {
    format!(
        "{noun}{value} out of range {}..={}",
        range.start(),
        range.end()
    )
}

/// Reads one table whose keys are fixed by the schema.
///
/// A table missing from the file is read as an empty one, so every key takes its default.
#[derive(Debug, Clone)]
pub(super) struct TableReader<'a> {
    table: Option<TableRef<'a>>,
    path: FieldPath,
    known: &'static [&'static str],
}

impl<'a> TableReader<'a> {
    /// The document root.
    pub(super) fn root(
        diagnostics: &mut Diagnostics<'_>,
        root: &'a Table,
        known: &'static [&'static str],
    ) -> Self {
        Self::new(diagnostics, TableRef::Block(root), FieldPath::root(), known)
    }

    /// Reports every key of `table` not in `known` right away, so unknown keys are caught
    /// however the caller's reads branch afterwards.
    fn new(
        diagnostics: &mut Diagnostics<'_>,
        table: TableRef<'a>,
        path: FieldPath,
        known: &'static [&'static str],
    ) -> Self {
        for key in table.keys() {
            if !known.contains(&key) {
                diagnostics.error_at_key(
                    &path.key(key),
                    format!("unknown key `{key}`; expected one of: {}", known.join(", ")),
                );
            }
        }
        TableReader {
            table: Some(table),
            path,
            known,
        }
    }

    /// The table at `path` in `parent`, or an empty table if it is absent or not a table
    /// (the latter is reported).
    pub(super) fn section(
        diagnostics: &mut Diagnostics<'_>,
        parent: &TableReader<'a>,
        key: &'static str,
        known: &'static [&'static str],
    ) -> Self {
        parent
            .get(key)
            .and_then(|field| field.table(diagnostics, known))
            .unwrap_or_else(|| TableReader {
                table: None,
                path: parent.path.key(key),
                known,
            })
    }

    /// The path of this table.
    pub(super) fn path(&self) -> &FieldPath {
        &self.path
    }

    /// The value of `key`, if present.
    pub(super) fn get(&self, key: &'static str) -> Option<Field<'a>> {
        debug_assert!(
            self.known.contains(&key),
            "schema reads `{key}` but does not list it as known in {}",
            self.path
        );
        let (_, item) = self.table?.entry(key)?;
        Some(Field {
            node: Node::Item(item),
            path: self.path.key(key),
        })
    }

    /// `key` read by `read`; its absence is reported.
    /// `None` means an error was recorded.
    pub(super) fn required<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        key: &'static str,
        read: impl FnOnce(&mut Diagnostics<'_>, &Field<'a>) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(field) => read(diagnostics, &field),
            None => {
                diagnostics.error(&self.path.key(key), format!("missing required key `{key}`"));
                None
            }
        }
    }

    /// `key` read by `read`, or `default` when absent.
    /// `None` means an error was recorded.
    pub(super) fn or<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        key: &'static str,
        default: T,
        read: impl FnOnce(&mut Diagnostics<'_>, &Field<'a>) -> Option<T>,
    ) -> Option<T> {
        match self.get(key) {
            Some(field) => read(diagnostics, &field),
            None => Some(default),
        }
    }

    /// `key` read by `read`, or `Some(None)` when absent.
    /// The outer `None` means an error was recorded.
    pub(super) fn optional<T>(
        &self,
        diagnostics: &mut Diagnostics<'_>,
        key: &'static str,
        read: impl FnOnce(&mut Diagnostics<'_>, &Field<'a>) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.get(key) {
            Some(field) => read(diagnostics, &field).map(Some),
            None => Some(None),
        }
    }
}
