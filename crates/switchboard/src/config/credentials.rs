//! Digest secrets shared by trunks and agents: a `password` or its `ha1`, never both.

use super::diagnostics::Diagnostics;
use super::model::DigestSecret;
use super::reader::{Field, TableReader};

/// Reads `password` / `ha1` from `table`. Setting both is reported; setting neither gives
/// `Some(None)` and is left to the caller, since trunks may do without a secret.
/// The outer `None` means an error was recorded.
pub(super) fn secret(
    d: &mut Diagnostics<'_>,
    table: &TableReader<'_>,
) -> Option<Option<DigestSecret>> {
    let password = table.optional(d, "password", password);
    let ha1 = table.optional(d, "ha1", ha1);
    // Judged on presence, not validity, so "both set" is reported along with a bad value.
    if table.get("password").is_some() && table.get("ha1").is_some() {
        d.error(
            &table.path().key("ha1"),
            "set either `password` or `ha1`, not both",
        );
        return None;
    }
    match (password?, ha1?) {
        (Some(password), _) => Some(Some(DigestSecret::Password(password))),
        (None, Some(ha1)) => Some(Some(DigestSecret::Ha1(ha1))),
        (None, None) => Some(None),
    }
}

fn password(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<String> {
    let password = field.string(d)?;
    if password.is_empty() {
        d.error(field.path(), "password must not be empty");
        return None;
    }
    Some(password)
}

/// HA1 is `md5(user:realm:password)`: 32 hex digits, stored lowercase as digest compares it.
fn ha1(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<String> {
    field.parsed(d, |text| {
        const EXPECTED: &str = "ha1 must be 32 hex digits (md5 of user:realm:password)";
        if text.chars().count() != 32 {
            Err(format!(
                "{EXPECTED}, got {} characters",
                text.chars().count()
            ))
        } else if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Err(format!("{EXPECTED}, got a non-hex character"))
        } else {
            Ok(text.to_ascii_lowercase())
        }
    })
}
