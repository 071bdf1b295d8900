//! Dotted paths naming a field in the configuration, e.g. `queue[0].skills.support`.

use std::fmt;

/// One step of a [`FieldPath`]: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value lives in the document, printed the way users write it: `agent[2].skills.sales`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    /// The document root (prints as the empty string).
    pub(super) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub(super) fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.segments.push(Segment::Key(key.to_owned()));
        path
    }

    /// This path extended by an array index.
    pub(super) fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.segments.push(Segment::Index(index));
        path
    }

    /// The final key, if the path ends in one.
    pub(super) fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The steps of the path, from the root.
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_bare_key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                // Keys that need quoting in TOML are quoted here too, so the path stays unambiguous.
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{key:?}")?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_toml_keys() {
        let path = FieldPath::root()
            .key("queue")
            .index(0)
            .key("skills")
            .key("support");
        assert_eq!(path.to_string(), "queue[0].skills.support");
        assert_eq!(FieldPath::root().to_string(), "");
        assert_eq!(
            FieldPath::root().key("a b").key("c").to_string(),
            "\"a b\".c"
        );
    }
}
