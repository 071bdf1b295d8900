//! Calls out: the `[[route]]` entries (which dialled numbers go to which trunks) and the
//! `[outbound]` toll-fraud guards.

use super::diagnostics::Diagnostics;
use super::model::{OutboundLimits, RouteConfig, RouteMatch, TrunkConfig};
use super::names::Declared;
use super::reader::{Field, TableReader};

const ROUTE_KEYS: &[&str] = &[
    "prefix",
    "pattern",
    "trunks",
    "strip",
    "prepend",
    "caller_id",
];

const LIMIT_KEYS: &[&str] = &[
    "max_concurrent",
    "max_per_agent",
    "daily_limit_per_agent",
    "dnc_file",
];

/// Reads every `[[route]]`; each trunk named must exist and have a `gateway`.
/// `None` means an error was recorded.
pub(super) fn read_routes(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
    trunk_names: &Declared<String>,
    trunks: Option<&[TrunkConfig]>,
) -> Option<Vec<RouteConfig>> {
    root.or(d, "route", Vec::new(), |d, field| {
        field.list(d, |d, element| route(d, element, trunk_names, trunks))
    })
}

fn route(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    trunk_names: &Declared<String>,
    trunks: Option<&[TrunkConfig]>,
) -> Option<RouteConfig> {
    let table = field.table(d, ROUTE_KEYS)?;
    let prefix = table.optional(d, "prefix", |d, field| field.identifier(d));
    let pattern = table.optional(d, "pattern", |d, field| {
        field.parsed(d, |text| {
            // The whole number must match, not a piece of it.
            regex::Regex::new(&format!("^(?:{text})$")).map_err(|error| {
                // regex's messages draw a caret over several lines; one error, one line.
                let detail = error
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .rfind(|line| !line.is_empty() && !line.starts_with('^'))
                    .unwrap_or("invalid")
                    .to_owned();
                format!("invalid regular expression {text:?}: {detail}")
            })
        })
    });
    let listed = table.required(d, "trunks", |d, field| {
        let names = field.list(d, |d, element| {
            let name = element.identifier(d)?;
            if !trunk_names.check_reference(d, &name, element.path()) {
                return None;
            }
            let has_gateway = trunks
                .and_then(|all| all.iter().find(|t| t.name == name))
                .is_none_or(|t| t.gateway.is_some());
            if !has_gateway {
                d.error(
                    element.path(),
                    format!("trunk `{name}` has no `gateway`: calls out cannot be sent through it"),
                );
                return None;
            }
            Some(name)
        })?;
        if names.is_empty() {
            d.error(field.path(), "must name at least one trunk");
            return None;
        }
        Some(names)
    });
    let strip = table.or(d, "strip", 0, |d, field| field.integer(d, 0..=32));
    let prepend = table.or(d, "prepend", String::new(), |d, field| {
        field.parsed(d, |text| {
            if text.chars().all(|c| c.is_ascii_digit() || c == '+') {
                Ok(text.to_owned())
            } else {
                Err(format!("invalid prepend {text:?}: digits and + only"))
            }
        })
    });
    let caller_id = table.optional(d, "caller_id", |d, field| field.identifier(d));
    let matches = match (prefix?, pattern?) {
        (Some(prefix), None) => RouteMatch::Prefix(prefix),
        (None, Some(pattern)) => RouteMatch::Pattern(pattern),
        (Some(_), Some(_)) => {
            d.error(
                &table.path().key("pattern"),
                "set either `prefix` or `pattern`, not both",
            );
            return None;
        }
        (None, None) => {
            d.error(
                &table.path().key("prefix"),
                "missing `prefix` or `pattern` (which dialled numbers take this route)",
            );
            return None;
        }
    };
    Some(RouteConfig {
        matches,
        trunks: listed?,
        strip: strip?,
        prepend: prepend?,
        caller_id: caller_id?,
    })
}

/// Reads `[outbound]`; absent keys take their defaults. `None` means an error was recorded.
pub(super) fn read_limits(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> Option<OutboundLimits> {
    let section = TableReader::section(d, root, "outbound", LIMIT_KEYS);
    let defaults = OutboundLimits::default();
    let max_concurrent = section.or(d, "max_concurrent", defaults.max_concurrent, |d, field| {
        field.integer(d, 0..=100_000)
    });
    let max_per_agent = section.or(d, "max_per_agent", defaults.max_per_agent, |d, field| {
        field.integer(d, 0..=100)
    });
    let daily = section.or(d, "daily_limit_per_agent", None, |d, field| {
        field.integer(d, 0..=1_000_000).map(Some)
    });
    let dnc_file = section.optional(d, "dnc_file", |d, field| {
        field.parsed(d, |text| {
            if text.trim().is_empty() {
                Err("must name a file of numbers, one a line".to_owned())
            } else {
                Ok(std::path::PathBuf::from(text))
            }
        })
    });
    Some(OutboundLimits {
        max_concurrent: max_concurrent?,
        max_per_agent: max_per_agent?,
        daily_limit_per_agent: daily?,
        dnc_file: dnc_file?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::model::RouteMatch;
    use crate::config::testing::{error_lines, valid};

    const TRUNKS: &str = "[[trunk]]\nname = \"a\"\ngateway = \"127.0.0.1:5070\"\n[[trunk]]\nname = \"b\"\ngateway = \"127.0.0.1:5071\"\n[[trunk]]\nname = \"in\"\nallow = [\"10.0.0.1\"]\n";

    #[test]
    fn routes_are_read_in_order() {
        let config = valid(&format!(
            "{TRUNKS}[[route]]\nprefix = \"+86\"\ntrunks = [\"a\", \"b\"]\nstrip = 3\nprepend = \"0086\"\ncaller_id = \"+8610555\"\n[[route]]\npattern = \"4000[0-9]{{3}}\"\ntrunks = [\"b\"]\n"
        ));
        assert_eq!(config.routes.len(), 2);
        assert_eq!(
            config.routes[0].matches,
            RouteMatch::Prefix("+86".to_owned())
        );
        assert_eq!(config.routes[0].trunks, vec!["a", "b"]);
        assert_eq!(config.routes[0].strip, 3);
        assert_eq!(config.routes[0].prepend, "0086");
        assert_eq!(config.routes[0].caller_id.as_deref(), Some("+8610555"));
        let RouteMatch::Pattern(pattern) = &config.routes[1].matches else {
            panic!("second route is a pattern");
        };
        assert!(pattern.is_match("4000123"));
        assert!(!pattern.is_match("40001234"), "the whole number must match");
        assert_eq!(config.routes[1].strip, 0);
        assert_eq!(config.routes[1].prepend, "");
    }

    #[test]
    fn bad_routes_are_refused_where_written() {
        let lines = error_lines(&format!(
            "{TRUNKS}[[route]]\nprefix = \"1\"\npattern = \"2\"\ntrunks = [\"in\", \"nope\"]\n[[route]]\npattern = \"(\"\ntrunks = []\n[[route]]\ntrunks = [\"a\"]\nprepend = \"9x\"\nstrip = 40\n"
        ));
        assert_eq!(
            lines,
            vec![
                "t.toml:12:11: route[0].pattern: set either `prefix` or `pattern`, not both",
                "t.toml:13:11: route[0].trunks[0]: trunk `in` has no `gateway`: calls out cannot be sent through it",
                "t.toml:13:17: route[0].trunks[1]: unknown trunk `nope` (configured: a, b, in)",
                "t.toml:15:11: route[1].pattern: invalid regular expression \"(\": error: unclosed group",
                "t.toml:16:10: route[1].trunks: must name at least one trunk",
                "t.toml:17:1: route[2].prefix: missing `prefix` or `pattern` (which dialled numbers take this route)",
                "t.toml:19:11: route[2].prepend: invalid prepend \"9x\": digits and + only",
                "t.toml:20:9: route[2].strip: 40 out of range 0..=32",
            ]
        );
    }

    #[test]
    fn limits_have_defaults_and_ranges() {
        let config = valid("");
        assert_eq!(config.outbound.max_concurrent, 100);
        assert_eq!(config.outbound.max_per_agent, 1);
        assert_eq!(config.outbound.daily_limit_per_agent, None);
        let config = valid(
            "[outbound]\nmax_concurrent = 5\nmax_per_agent = 2\ndaily_limit_per_agent = 50\n",
        );
        assert_eq!(config.outbound.max_concurrent, 5);
        assert_eq!(config.outbound.max_per_agent, 2);
        assert_eq!(config.outbound.daily_limit_per_agent, Some(50));
        assert_eq!(config.outbound.dnc_file, None);
        let config = valid("[outbound]\ndnc_file = \"/etc/switchboard/dnc.txt\"\n");
        assert_eq!(
            config.outbound.dnc_file.as_deref(),
            Some(std::path::Path::new("/etc/switchboard/dnc.txt"))
        );
        assert_eq!(
            error_lines("[outbound]\ndnc_file = \"\"\n"),
            vec!["t.toml:2:12: outbound.dnc_file: must name a file of numbers, one a line"]
        );
        assert_eq!(
            error_lines("[outbound]\nmax_per_agent = -1\n"),
            vec!["t.toml:2:17: outbound.max_per_agent: -1 out of range 0..=100"]
        );
    }
}
