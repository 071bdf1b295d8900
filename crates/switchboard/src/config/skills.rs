//! Skill maps such as `skills = { support = 5, billing = 2 }`: skill name to level 1..=10.

use std::collections::BTreeMap;

use super::diagnostics::Diagnostics;
use super::reader::Field;

/// Reads a skill map; every bad name or level is reported. `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<BTreeMap<String, u8>> {
    let entries = field.map(d, |d, entry| {
        let name_is_valid = entry
            .path()
            .last_key()
            .is_some_and(|name| !name.is_empty() && !name.chars().any(char::is_whitespace));
        let level = entry.skill_level(d);
        if !name_is_valid {
            d.error(
                entry.path(),
                "skill names must be non-empty and without spaces",
            );
            return None;
        }
        level
    })?;
    Some(entries.into_iter().collect())
}
