//! The `[acd]` section: not-ready reasons and what happens after a missed or failed offer.

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::model::AcdSettings;
use super::names::Declared;
use super::reader::TableReader;

const KEYS: &[&str] = &[
    "not_ready_reasons",
    "missed_call_reason",
    "offer_retry_s",
    "dispositions",
    "sticky_max_age_days",
    "sticky_max_entries",
];
/// Wrap-up codes when `dispositions` is not set.
const DEFAULT_DISPOSITIONS: [&str; 4] = ["resolved", "follow-up", "escalated", "wrong-number"];
/// Longest memory of a caller's last agent: ten years (longer than any CDR retention).
const MAX_STICKY_AGE_DAYS: i64 = 3650;
/// Most callers remembered: ten million entries is about a gigabyte of index.
const MAX_STICKY_ENTRIES: i64 = 10_000_000;
/// Longest `offer_retry_s`: an hour (a call that may not go back to a phone for longer has
/// waited far past any sensible max wait).
const MAX_OFFER_RETRY_S: i64 = 3600;
const DEFAULT_REASONS: [&str; 5] = ["break", "lunch", "training", "meeting", "missed"];

/// Reads `[acd]`; absent keys take their defaults. `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, root: &TableReader<'_>) -> Option<AcdSettings> {
    let acd = TableReader::section(d, root, "acd", KEYS);
    let mut declared = Declared::new("not-ready reason");
    let default_reasons = DEFAULT_REASONS.map(str::to_owned).to_vec();
    let reasons = acd.or(d, "not_ready_reasons", default_reasons, |d, field| {
        let reasons = field.list(d, |d, element| {
            let reason = element.identifier(d)?;
            declared.declare(d, reason.clone(), &reason, element.path());
            Some(reason)
        })?;
        if reasons.is_empty() {
            d.error(field.path(), "list at least one not-ready reason");
            return None;
        }
        Some(reasons)
    });
    let missed_call_reason = acd.optional(d, "missed_call_reason", |d, field| {
        let reason = field.identifier(d)?;
        let listed = match &reasons {
            Some(reasons) => reasons.contains(&reason),
            // The list itself is invalid and already reported; don't pile on.
            None => true,
        };
        if !listed {
            d.error(
                field.path(),
                format!("missed_call_reason {reason:?} is not one of not_ready_reasons"),
            );
            return None;
        }
        Some(reason)
    });
    let offer_retry_after: Option<Duration> = acd.or(
        d,
        "offer_retry_s",
        acd::DEFAULT_OFFER_RETRY_AFTER,
        |d, field| field.seconds(d, 1..=MAX_OFFER_RETRY_S),
    );
    let mut declared_codes = Declared::new("disposition");
    let default_codes = DEFAULT_DISPOSITIONS.map(str::to_owned).to_vec();
    let dispositions = acd.or(d, "dispositions", default_codes, |d, field| {
        let codes = field.list(d, |d, element| {
            let code = element.identifier(d)?;
            declared_codes.declare(d, code.clone(), &code, element.path());
            Some(code)
        })?;
        if codes.is_empty() {
            d.error(field.path(), "list at least one disposition code");
            return None;
        }
        Some(codes)
    });
    let sticky_max_age_days = acd.or(d, "sticky_max_age_days", 30, |d, field| {
        field.integer(d, 1..=MAX_STICKY_AGE_DAYS)
    });
    let sticky_max_entries = acd.or(d, "sticky_max_entries", 100_000, |d, field| {
        field.integer(d, 0..=MAX_STICKY_ENTRIES)
    });
    Some(AcdSettings {
        dispositions: dispositions?,
        not_ready_reasons: reasons?,
        missed_call_reason: missed_call_reason?,
        offer_retry_after: offer_retry_after?,
        sticky_max_age_days: sticky_max_age_days?,
        sticky_max_entries: sticky_max_entries?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{error_lines, valid};

    #[test]
    fn dispositions_default_and_are_unique() {
        assert_eq!(
            valid("").acd.dispositions,
            vec!["resolved", "follow-up", "escalated", "wrong-number"]
        );
        assert_eq!(
            valid("[acd]\ndispositions = [\"sale\", \"no-sale\"]\n")
                .acd
                .dispositions,
            vec!["sale", "no-sale"]
        );
        assert_eq!(
            error_lines("[acd]\ndispositions = [\"sale\", \"sale\"]\n"),
            vec!["t.toml:2:25: acd.dispositions[1]: duplicate disposition `sale` (first defined at acd.dispositions[0], line 2)"]
        );
        assert_eq!(
            error_lines("[acd]\ndispositions = []\n"),
            vec!["t.toml:2:16: acd.dispositions: list at least one disposition code"]
        );
    }

    #[test]
    fn offer_retry_is_whole_seconds_from_1_to_3600_default_5() {
        assert_eq!(
            valid("[acd]\n").acd.offer_retry_after,
            Duration::from_secs(5)
        );
        assert_eq!(
            valid("[acd]\noffer_retry_s = 3600\n").acd.offer_retry_after,
            Duration::from_secs(3600)
        );
        assert_eq!(
            error_lines("[acd]\noffer_retry_s = 0\n"),
            vec!["t.toml:2:17: acd.offer_retry_s: 0 out of range 1..=3600"]
        );
        assert_eq!(
            error_lines("[acd]\nnot_ready_reasons = [\"break\"]\noffer_retry_s = 3601\n"),
            vec!["t.toml:3:17: acd.offer_retry_s: 3601 out of range 1..=3600"]
        );
        assert_eq!(
            error_lines("[acd]\noffer_retry_s = \"5s\"\n"),
            vec!["t.toml:2:17: acd.offer_retry_s: expected an integer, found a string"]
        );
    }

    #[test]
    fn missed_call_reason_must_be_a_listed_reason() {
        assert_eq!(
            error_lines("[acd]\nnot_ready_reasons = [\"break\"]\nmissed_call_reason = \"missed\"\n"),
            vec!["t.toml:3:22: acd.missed_call_reason: missed_call_reason \"missed\" is not one of not_ready_reasons"]
        );
        // The default list contains "missed".
        let config = valid("[acd]\nmissed_call_reason = \"missed\"\n");
        assert_eq!(config.acd.missed_call_reason.as_deref(), Some("missed"));
    }

    #[test]
    fn sticky_bounds_default_to_30_days_and_100000_callers_and_are_range_checked() {
        let config = valid("[acd]\n");
        assert_eq!(config.acd.sticky_max_age_days, 30);
        assert_eq!(config.acd.sticky_max_entries, 100_000);
        let config = valid("[acd]\nsticky_max_age_days = 7\nsticky_max_entries = 0\n");
        assert_eq!(config.acd.sticky_max_age_days, 7);
        assert_eq!(config.acd.sticky_max_entries, 0);
        assert_eq!(
            error_lines("[acd]\nsticky_max_age_days = 0\n"),
            vec!["t.toml:2:23: acd.sticky_max_age_days: 0 out of range 1..=3650"]
        );
        assert_eq!(
            error_lines("[acd]\nsticky_max_entries = -1\n"),
            vec!["t.toml:2:22: acd.sticky_max_entries: -1 out of range 0..=10000000"]
        );
    }

    #[test]
    fn reasons_are_unique_and_not_empty() {
        assert_eq!(
            error_lines("[acd]\nnot_ready_reasons = [\"break\", \"break\"]\n"),
            vec!["t.toml:2:31: acd.not_ready_reasons[1]: duplicate not-ready reason `break` (first defined at acd.not_ready_reasons[0], line 2)"]
        );
        assert_eq!(
            error_lines("[acd]\nnot_ready_reasons = []\n"),
            vec!["t.toml:2:21: acd.not_ready_reasons: list at least one not-ready reason"]
        );
    }
}
