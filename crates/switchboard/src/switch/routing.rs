//! Which `[[number]]` an inbound call matches, and the priority and label it queues with.
//!
//! Pure functions over the configuration and what the trunk sent, so every rule documented in
//! docs/configuration.md ("Numbers: matching, priority and label") is unit-tested here:
//!
//! - **Matching**: among the entries for the dialled DID, one restricted to the calling trunk
//!   (`trunk = "..."`) wins over an unrestricted one, whatever their order in the file.
//! - **Priority**, one rule, first that applies: a valid `priority_header` value (an integer in
//!   -1000000..=1000000) *sets* the priority, lower or higher than the base; else the matching
//!   `[[number.caller_priority]]` list sets it; else the number's base `priority`.
//! - **Label**: the `label` of the caller's `[[number.caller_priority]]` list, whether or not
//!   a header set the priority (the label says who the caller is, not how urgent the call is).

use crate::config::{CallerPriority, NumberConfig};

/// Largest priority magnitude the configuration and the header accept (ACD aging adds to it,
/// so it stays far from `i32` limits).
pub(super) const PRIORITY_LIMIT: i32 = 1_000_000;

/// The `[[number]]` entry for a call to `did` from `trunk`: the one restricted to `trunk` if
/// there is one, else the unrestricted one.
pub(super) fn match_number<'c>(
    numbers: &'c [NumberConfig],
    did: &str,
    trunk: &str,
) -> Option<&'c NumberConfig> {
    pick_number(numbers.iter().filter(|n| n.did == did), trunk)
}

/// Among `candidates` (the entries of one DID, in file order), the one for a call from
/// `trunk`: the one restricted to `trunk` if there is one, else the first unrestricted one.
pub(super) fn pick_number<'c>(
    candidates: impl Iterator<Item = &'c NumberConfig>,
    trunk: &str,
) -> Option<&'c NumberConfig> {
    let mut unrestricted = None;
    for number in candidates {
        match number.trunk.as_deref() {
            Some(only) if only == trunk => return Some(number),
            Some(_) => {}
            None => unrestricted = unrestricted.or(Some(number)),
        }
    }
    unrestricted
}

/// How a call ranks in its queue and how agents and CDRs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CallClass {
    /// ACD priority, higher first.
    pub priority: i32,
    /// Tag from the caller's priority list, sent to agents and written to the CDR.
    pub label: Option<String>,
}

/// The priority and label of a call from `caller` to `number`; `header` is the value of the
/// number's `priority_header` in the INVITE, if the number names one and the INVITE has it.
pub(super) fn classify(number: &NumberConfig, caller: &str, header: Option<&str>) -> CallClass {
    let list = caller_list(number, caller);
    let from_header = header.and_then(header_priority);
    let priority = from_header
        .or(list.map(|l| l.priority))
        .unwrap_or(number.priority);
    CallClass {
        priority,
        label: list.and_then(|l| l.label.clone()),
    }
}

/// The first `[[number.caller_priority]]` list naming `caller` (a caller may appear in only
/// one, the configuration checks that).
fn caller_list<'n>(number: &'n NumberConfig, caller: &str) -> Option<&'n CallerPriority> {
    number
        .caller_priorities
        .iter()
        .find(|list| list.callers.iter().any(|c| c == caller))
}

/// A header value that is an integer in range; anything else is ignored (the call then gets
/// its caller list's or the number's priority) rather than refused, since trunks send what
/// their own configuration says.
fn header_priority(value: &str) -> Option<i32> {
    value
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| (-PRIORITY_LIMIT..=PRIORITY_LIMIT).contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NumberTarget;

    fn number(did: &str, trunk: Option<&str>, queue: &str) -> NumberConfig {
        NumberConfig {
            did: did.into(),
            target: NumberTarget::Queue(queue.into()),
            language: None,
            trunk: trunk.map(str::to_owned),
            priority: 5,
            priority_header: Some("X-Priority".into()),
            caller_priorities: vec![
                CallerPriority {
                    callers: vec!["2000".into()],
                    priority: 10,
                    label: Some("vip".into()),
                },
                CallerPriority {
                    callers: vec!["3000".into()],
                    priority: 1,
                    label: None,
                },
            ],
        }
    }

    #[test]
    fn the_entry_restricted_to_the_calling_trunk_wins_whatever_the_file_order() {
        let numbers = vec![
            number("100", None, "any"),
            number("100", Some("a"), "from-a"),
            number("200", None, "other"),
        ];
        let queue = |did, trunk| match_number(&numbers, did, trunk).and_then(|n| n.queue());
        assert_eq!(queue("100", "a"), Some("from-a"));
        assert_eq!(queue("100", "b"), Some("any"));
        assert_eq!(queue("200", "a"), Some("other"));
        assert_eq!(queue("300", "a"), None);
        let restricted_only = vec![number("100", Some("a"), "from-a")];
        assert_eq!(match_number(&restricted_only, "100", "b"), None);
    }

    #[test]
    fn a_valid_header_sets_the_priority_even_below_the_base_and_the_list() {
        let n = number("100", None, "q");
        assert_eq!(classify(&n, "9999", Some("2")).priority, 2, "below base 5");
        assert_eq!(classify(&n, "9999", Some(" -7 ")).priority, -7);
        assert_eq!(classify(&n, "2000", Some("3")).priority, 3, "below list 10");
        assert_eq!(classify(&n, "9999", Some("1000000")).priority, 1_000_000);
    }

    #[test]
    fn an_invalid_header_falls_back_to_the_list_then_the_base() {
        let n = number("100", None, "q");
        for bad in ["high", "", "1.5", "1000001", "-1000001", "99999999999"] {
            assert_eq!(classify(&n, "2000", Some(bad)).priority, 10, "{bad:?}");
            assert_eq!(classify(&n, "9999", Some(bad)).priority, 5, "{bad:?}");
        }
    }

    #[test]
    fn a_caller_list_sets_the_priority_even_below_the_base() {
        let n = number("100", None, "q");
        assert_eq!(classify(&n, "2000", None).priority, 10);
        assert_eq!(classify(&n, "3000", None).priority, 1, "below base 5");
    }

    #[test]
    fn without_header_or_list_the_base_applies() {
        let n = number("100", None, "q");
        assert_eq!(
            classify(&n, "9999", None),
            CallClass {
                priority: 5,
                label: None
            }
        );
    }

    /// The worked example of docs/configuration.md ("Priority and label"), row by row.
    #[test]
    fn the_documented_example_gives_the_documented_priorities() {
        let docs = include_str!("../../../../docs/configuration.md");
        let section = &docs[docs.find("## Priority and label").expect("the section")..];
        let start = section.find("```toml\n").expect("its example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").expect("closed")];
        let text = format!("{example}[[queue]]\nname = \"support\"\nskills = {{ s = 1 }}\n");
        let config = crate::config::load_str("example.toml", &text).expect("the example is valid");
        let number = &config.numbers[0];
        let rows = [
            ("+15550000000", None, 5, None),
            ("+15551234567", None, 10, Some("vip")),
            ("+15559999999", None, 1, None),
            ("+15551234567", Some("2"), 2, Some("vip")),
            ("+15550000000", Some("high"), 5, None),
        ];
        for (caller, header, priority, label) in rows {
            let class = classify(number, caller, header);
            assert_eq!(
                (class.priority, class.label.as_deref()),
                (priority, label),
                "{caller} {header:?}"
            );
        }
    }

    #[test]
    fn the_label_comes_from_the_callers_list_even_when_a_header_sets_the_priority() {
        let n = number("100", None, "q");
        assert_eq!(classify(&n, "2000", None).label.as_deref(), Some("vip"));
        assert_eq!(
            classify(&n, "2000", Some("0")).label.as_deref(),
            Some("vip")
        );
        assert_eq!(classify(&n, "3000", None).label, None, "list without label");
        assert_eq!(classify(&n, "9999", None).label, None);
    }
}
