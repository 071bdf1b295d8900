//! Which calls out are allowed and where they go: an agent's allow-list, the first matching
//! `[[route]]`, and the number the carrier is sent (E.164 normalisation by strip/prepend).
//! Pure functions of the configuration and the dialled number.

use crate::config::{RouteConfig, RouteMatch};

/// Whether `number` is on an agent's allow-list: `"+86*"` allows every number starting with
/// `+86`, `"*"` every number, `"4000"` exactly that number.
pub fn allowed(patterns: &[String], number: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => number.starts_with(prefix),
            None => number == pattern,
        })
}

/// The first route (in configuration order) that takes `number`.
pub fn find<'r>(routes: &'r [RouteConfig], number: &str) -> Option<&'r RouteConfig> {
    routes.iter().find(|route| match &route.matches {
        RouteMatch::Prefix(prefix) => number.starts_with(prefix.as_str()),
        RouteMatch::Pattern(pattern) => pattern.is_match(number),
    })
}

/// The number the carrier is sent: `strip` leading characters removed, then `prepend` added.
pub fn normalise(route: &RouteConfig, number: &str) -> String {
    let kept: String = number.chars().skip(route.strip).collect();
    format!("{}{kept}", route.prepend)
}

/// Whether a dialled number is plausible at all (digits, with a leading `+`): anything else
/// is refused before it reaches a route or a carrier.
pub fn is_dialable(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.len() <= 32 && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<RouteConfig> {
        let text = "[[trunk]]\nname = \"a\"\ngateway = \"127.0.0.1:5070\"\n\
            [[route]]\nprefix = \"+86\"\ntrunks = [\"a\"]\nstrip = 3\nprepend = \"0086\"\n\
            [[route]]\npattern = \"4000[0-9]{3}\"\ntrunks = [\"a\"]\n\
            [[route]]\nprefix = \"+8610\"\ntrunks = [\"a\"]\n";
        crate::config::load_str("t.toml", text)
            .expect("valid routes")
            .routes
    }

    #[test]
    fn allow_lists_take_prefixes_exact_numbers_and_everything() {
        let list = vec!["+86*".to_owned(), "4000".to_owned()];
        assert!(allowed(&list, "+8613800138000"));
        assert!(allowed(&list, "4000"));
        assert!(!allowed(&list, "40001"), "4000 without * is exact");
        assert!(!allowed(&list, "+4420"));
        assert!(!allowed(&[], "+8613800138000"), "empty: may not dial out");
        assert!(allowed(&["*".to_owned()], "+4420"));
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = routes();
        let first = find(&routes, "+8610555").expect("routed");
        assert_eq!(first.prepend, "0086", "the +86 route comes before +8610");
        assert!(find(&routes, "4000123").is_some());
        assert!(
            find(&routes, "40001234").is_none(),
            "a pattern matches whole numbers only"
        );
        assert!(find(&routes, "+4420").is_none());
    }

    #[test]
    fn numbers_are_normalised_by_strip_and_prepend() {
        let routes = routes();
        assert_eq!(normalise(&routes[0], "+8613800138000"), "008613800138000");
        assert_eq!(normalise(&routes[1], "4000123"), "4000123");
    }

    #[test]
    fn only_digits_with_an_optional_plus_are_dialable() {
        assert!(is_dialable("+8613800138000"));
        assert!(is_dialable("4000"));
        assert!(!is_dialable("+"));
        assert!(!is_dialable("alice"));
        assert!(!is_dialable("12;34"));
    }
}
