//! The `[lookup]` section: the CRM asked about each arriving caller (see `caller_lookup`).

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::reader::TableReader;

const KEYS: &[&str] = &["url", "method", "timeout_ms", "cache_s", "cache_entries"];
/// Longest a lookup may take: ten seconds (a caller's routing cannot wait longer than that).
const MAX_TIMEOUT_MS: i64 = 10_000;
/// Longest an answer is reused: a day.
const MAX_CACHE_S: i64 = 86_400;
/// Most answers kept.
const MAX_CACHE_ENTRIES: i64 = 1_000_000;

/// How the CRM is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupMethod {
    /// `GET url?caller=...&did=...`.
    Get,
    /// `POST url` with `{"caller": ..., "did": ...}`.
    Post,
}

/// `[lookup]`: an HTTP endpoint asked about each caller on arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    /// `http://host[:port]/path`.
    pub url: String,
    /// `GET` (default) or `POST`.
    pub method: LookupMethod,
    /// The answer must arrive within this (`timeout_ms`, 10..=10000, default 300).
    pub timeout: Duration,
    /// A caller's answer is reused this long (`cache_s`, 0..=86400, default 60; 0 = no cache).
    pub cache_for: Duration,
    /// At most this many answers are kept (`cache_entries`, 0..=1000000, default 10000).
    pub cache_entries: usize,
}

/// Reads `[lookup]`: `Some(None)` when the section is absent (no lookups). The outer `None`
/// means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> Option<Option<LookupConfig>> {
    if root.get("lookup").is_none() {
        return Some(None);
    }
    let lookup = TableReader::section(d, root, "lookup", KEYS);
    let url = lookup.required(d, "url", |d, field| {
        let url = field.string(d)?;
        let host = url.strip_prefix("http://").unwrap_or_default();
        if host.is_empty() || host.starts_with('/') {
            d.error(
                field.path(),
                "must be an http:// URL with a host, e.g. \"http://crm.internal:8080/caller\" \
                 (https is not supported: run the CRM's TLS proxy on the same host)",
            );
            return None;
        }
        Some(url)
    });
    let method = lookup.or(d, "method", LookupMethod::Get, |d, field| {
        match field.string(d)?.as_str() {
            "GET" => Some(LookupMethod::Get),
            "POST" => Some(LookupMethod::Post),
            other => {
                d.error(
                    field.path(),
                    format!("unknown method {other:?}: expected \"GET\" or \"POST\""),
                );
                None
            }
        }
    });
    let timeout = lookup.or(d, "timeout_ms", Duration::from_millis(300), |d, field| {
        field.millis(d, 10..=MAX_TIMEOUT_MS)
    });
    let cache_for = lookup.or(d, "cache_s", Duration::from_secs(60), |d, field| {
        field.seconds(d, 0..=MAX_CACHE_S)
    });
    let cache_entries = lookup.or(d, "cache_entries", 10_000, |d, field| {
        field.integer(d, 0..=MAX_CACHE_ENTRIES)
    });
    Some(Some(LookupConfig {
        url: url?,
        method: method?,
        timeout: timeout?,
        cache_for: cache_for?,
        cache_entries: cache_entries?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{error_lines, valid};

    #[test]
    fn absent_section_means_no_lookups_and_defaults_fill_the_rest() {
        assert_eq!(valid("").lookup, None);
        let lookup = valid("[lookup]\nurl = \"http://127.0.0.1:9/caller\"\n")
            .lookup
            .expect("section present");
        assert_eq!(
            lookup,
            LookupConfig {
                url: "http://127.0.0.1:9/caller".into(),
                method: LookupMethod::Get,
                timeout: Duration::from_millis(300),
                cache_for: Duration::from_secs(60),
                cache_entries: 10_000,
            }
        );
        let lookup = valid(
            "[lookup]\nurl = \"http://crm/x\"\nmethod = \"POST\"\ntimeout_ms = 50\ncache_s = 0\ncache_entries = 3\n",
        )
        .lookup
        .expect("section present");
        assert_eq!(lookup.method, LookupMethod::Post);
        assert_eq!(lookup.timeout, Duration::from_millis(50));
        assert_eq!(lookup.cache_for, Duration::ZERO);
        assert_eq!(lookup.cache_entries, 3);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            error_lines("[lookup]\nmethod = \"GET\"\n"),
            vec!["t.toml:1:1: lookup.url: missing required key `url`"]
        );
        let https = error_lines("[lookup]\nurl = \"https://crm/x\"\n");
        assert_eq!(https.len(), 1, "{https:?}");
        assert!(
            https[0].starts_with("t.toml:2:7: lookup.url: must be an http:// URL with a host"),
            "{https:?}"
        );
        assert_eq!(
            error_lines("[lookup]\nurl = \"http://crm/x\"\nmethod = \"PUT\"\n"),
            vec![
                "t.toml:3:10: lookup.method: unknown method \"PUT\": expected \"GET\" or \"POST\""
            ]
        );
        assert_eq!(
            error_lines("[lookup]\nurl = \"http://crm/x\"\ntimeout_ms = 5\n"),
            vec!["t.toml:3:14: lookup.timeout_ms: 5 out of range 10..=10000"]
        );
        assert_eq!(
            error_lines("[lookup]\nurl = \"http://crm/x\"\ncache_s = 86401\n"),
            vec!["t.toml:3:11: lookup.cache_s: 86401 out of range 0..=86400"]
        );
        assert_eq!(
            error_lines("[lookup]\nurl = \"http://crm/x\"\ncache_entries = -1\n"),
            vec!["t.toml:3:17: lookup.cache_entries: -1 out of range 0..=1000000"]
        );
    }
}
