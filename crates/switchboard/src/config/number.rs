//! The `[[number]]` entries: inbound DIDs, the queue or IVR each routes to, and call priority rules.

use super::diagnostics::Diagnostics;
use super::ivr::plain_name;
use super::model::{CallerPriority, NumberConfig, NumberTarget};
use super::names::Declared;
use super::reader::{Field, TableReader};

const KEYS: &[&str] = &[
    "did",
    "queue",
    "ivr",
    "language",
    "trunk",
    "priority",
    "priority_header",
    "caller_priority",
];
const CALLER_PRIORITY_KEYS: &[&str] = &["callers", "priority", "label"];
/// Small enough that adding a few priorities can never overflow an `i32`.
const PRIORITY_LIMIT: i64 = 1_000_000;

/// Names the numbers may refer to.
pub(super) struct Targets<'n> {
    /// Declared trunk names, for `trunk`.
    pub(super) trunks: &'n Declared<String>,
    /// Declared queue names, for `queue`.
    pub(super) queues: &'n Declared<String>,
    /// Declared IVR names, for `ivr`.
    pub(super) ivrs: &'n Declared<String>,
}

/// Reads every `[[number]]`. `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
    targets: &Targets<'_>,
) -> Option<Vec<NumberConfig>> {
    // A DID may appear once per trunk restriction: "100 from any trunk" and "100 from trunk A"
    // can coexist, the more specific one winning.
    let mut dids: Declared<(String, Option<String>)> = Declared::new("number");
    root.or(d, "number", Vec::new(), |d, field| {
        field.list(d, |d, element| {
            let number = number(d, element, targets)?;
            let shown = match &number.trunk {
                Some(trunk) => format!("{} from trunk {trunk}", number.did),
                None => number.did.clone(),
            };
            let key = (number.did.clone(), number.trunk.clone());
            dids.declare(d, key, &shown, &element.path().key("did"));
            Some(number)
        })
    })
}

fn number(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    targets: &Targets<'_>,
) -> Option<NumberConfig> {
    let table = field.table(d, KEYS)?;
    let did = table.required(d, "did", |d, field| field.identifier(d));
    let queue = table.optional(d, "queue", |d, field| {
        let queue = field.identifier(d)?;
        targets
            .queues
            .check_reference(d, &queue, field.path())
            .then_some(NumberTarget::Queue(queue))
    });
    let ivr = table.optional(d, "ivr", |d, field| {
        let ivr = field.identifier(d)?;
        targets
            .ivrs
            .check_reference(d, &ivr, field.path())
            .then_some(NumberTarget::Ivr(ivr))
    });
    let target = match (queue, ivr) {
        (Some(Some(target)), Some(None)) | (Some(None), Some(Some(target))) => Some(target),
        (Some(Some(_)), Some(Some(_))) => {
            d.error(
                &table.path().key("ivr"),
                "set either `queue` or `ivr`, not both",
            );
            None
        }
        (Some(None), Some(None)) => {
            d.error(
                &table.path().key("queue"),
                "missing required key: set `queue` or `ivr`",
            );
            None
        }
        // An error was recorded for the one that is set.
        _ => None,
    };
    let language = table.optional(d, "language", |d, field| {
        field.parsed(d, |text| plain_name("language", text))
    });
    let trunk = table.optional(d, "trunk", |d, field| {
        let trunk = field.identifier(d)?;
        targets
            .trunks
            .check_reference(d, &trunk, field.path())
            .then_some(trunk)
    });
    let priority = table.or(d, "priority", 0, priority);
    let priority_header = table.optional(d, "priority_header", |d, field| {
        field.parsed(d, parse_header_name)
    });
    let caller_priorities = table.or(d, "caller_priority", Vec::new(), |d, field| {
        let mut callers = Declared::new("caller");
        field.list(d, |d, element| caller_priority(d, element, &mut callers))
    });
    Some(NumberConfig {
        did: did?,
        target: target?,
        language: language?,
        trunk: trunk?,
        priority: priority?,
        priority_header: priority_header?,
        caller_priorities: caller_priorities?,
    })
}

fn priority(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<i32> {
    field.integer(d, -PRIORITY_LIMIT..=PRIORITY_LIMIT)
}

fn caller_priority(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    seen: &mut Declared<String>,
) -> Option<CallerPriority> {
    let table = field.table(d, CALLER_PRIORITY_KEYS)?;
    let callers = table.required(d, "callers", |d, field| {
        let callers = field.list(d, |d, element| {
            let caller = element.identifier(d)?;
            // First match wins, so a caller in two lists would silently get the first priority.
            seen.declare(d, caller.clone(), &caller, element.path());
            Some(caller)
        })?;
        if callers.is_empty() {
            d.error(field.path(), "list at least one caller");
            return None;
        }
        Some(callers)
    });
    let priority = table.required(d, "priority", priority);
    let label = table.optional(d, "label", |d, field| field.identifier(d));
    Some(CallerPriority {
        callers: callers?,
        priority: priority?,
        label: label?,
    })
}

/// A SIP header name is an RFC 3261 `token`.
fn parse_header_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("invalid SIP header name {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::model::NumberTarget;
    use crate::config::testing::{error_lines, valid};

    const BASE: &str = "[[trunk]]\nname = \"a\"\nallow = [\"10.0.0.1\"]\n[[trunk]]\nname = \"b\"\nallow = [\"10.0.0.2\"]\n[[queue]]\nname = \"q\"\nskills = { s = 1 }\n";

    #[test]
    fn a_number_must_route_to_a_configured_queue_and_trunk() {
        let text = format!("{BASE}[[number]]\ndid = \"100\"\nqueue = \"sales\"\ntrunk = \"c\"\n[[number]]\ndid = \"101\"\n");
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:12:9: number[0].queue: unknown queue `sales` (configured: q)",
                "t.toml:13:9: number[0].trunk: unknown trunk `c` (configured: a, b)",
                "t.toml:14:1: number[1].queue: missing required key: set `queue` or `ivr`",
            ]
        );
    }

    #[test]
    fn a_did_is_unique_per_trunk_restriction() {
        let ok = format!("{BASE}[[number]]\ndid = \"100\"\nqueue = \"q\"\n[[number]]\ndid = \"100\"\nqueue = \"q\"\ntrunk = \"a\"\n[[number]]\ndid = \"100\"\nqueue = \"q\"\ntrunk = \"b\"\n");
        assert_eq!(valid(&ok).numbers.len(), 3);
        let text = format!("{BASE}[[number]]\ndid = \"100\"\nqueue = \"q\"\n[[number]]\ndid = \"100\"\nqueue = \"q\"\n[[number]]\ndid = \"200\"\nqueue = \"q\"\ntrunk = \"a\"\n[[number]]\ndid = \"200\"\nqueue = \"q\"\ntrunk = \"a\"\n");
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:14:7: number[1].did: duplicate number `100` (first defined at number[0].did, line 11)",
                "t.toml:21:7: number[3].did: duplicate number `200 from trunk a` (first defined at number[2].did, line 17)",
            ]
        );
    }

    #[test]
    fn priorities_are_checked() {
        let text = format!("{BASE}[[number]]\ndid = \"1\"\nqueue = \"q\"\npriority = 2000000\npriority_header = \"X Priority\"\n[[number.caller_priority]]\ncallers = [\"2000\", \"2001\"]\npriority = 5\nlabel = \"vip\"\n[[number.caller_priority]]\ncallers = [\"2001\"]\npriority = 1\n[[number.caller_priority]]\ncallers = []\n");
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:13:12: number[0].priority: 2000000 out of range -1000000..=1000000",
                "t.toml:14:19: number[0].priority_header: invalid SIP header name \"X Priority\"",
                "t.toml:20:12: number[0].caller_priority[1].callers[0]: duplicate caller `2001` (first defined at number[0].caller_priority[0].callers[1], line 16)",
                "t.toml:22:1: number[0].caller_priority[2].priority: missing required key `priority`",
                "t.toml:23:11: number[0].caller_priority[2].callers: list at least one caller",
            ]
        );
    }

    #[test]
    fn caller_priorities_are_read_in_order() {
        let text = format!("{BASE}[[number]]\ndid = \"1\"\nqueue = \"q\"\npriority = -5\npriority_header = \"X-Priority\"\ncaller_priority = [{{ callers = [\"7\"], priority = 9, label = \"complaint\" }}]\n");
        let number = &valid(&text).numbers[0];
        assert_eq!(number.priority, -5);
        assert_eq!(number.caller_priorities[0].callers, vec!["7"]);
        assert_eq!(
            number.caller_priorities[0].label.as_deref(),
            Some("complaint")
        );
    }

    #[test]
    fn a_number_routes_to_exactly_one_queue_or_ivr() {
        let ivr = "[[ivr]]\nname = \"main\"\n[[ivr.menu]]\nname = \"top\"\nprompt = \"menu\"\nkeys = { 1 = \"queue:q\" }\n";
        let ok = format!("{BASE}{ivr}[[number]]\ndid = \"1\"\nivr = \"main\"\nlanguage = \"zh\"\n[[number]]\ndid = \"2\"\nqueue = \"q\"\n");
        let config = valid(&ok);
        assert_eq!(config.numbers[0].target, NumberTarget::Ivr("main".into()));
        assert_eq!(config.numbers[0].ivr(), Some("main"));
        assert_eq!(config.numbers[0].queue(), None);
        assert_eq!(config.numbers[0].language.as_deref(), Some("zh"));
        assert_eq!(config.numbers[1].queue(), Some("q"));
        assert_eq!(config.numbers[1].language, None);
        let bad = format!("{BASE}{ivr}[[number]]\ndid = \"1\"\nivr = \"main\"\nqueue = \"q\"\n[[number]]\ndid = \"2\"\nivr = \"side\"\nlanguage = \"z h\"\n");
        assert_eq!(
            error_lines(&bad),
            vec![
                "t.toml:18:7: number[0].ivr: set either `queue` or `ivr`, not both",
                "t.toml:22:7: number[1].ivr: unknown ivr `side` (configured: main)",
                "t.toml:23:12: number[1].language: invalid language name \"z h\": use letters, digits, '-' and '_' only",
            ]
        );
    }
}
