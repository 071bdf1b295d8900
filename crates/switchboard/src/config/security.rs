//! The `[security]` section: brute-force bans, the per-user tarpit, the per-source request
//! rate, the security log's throttle, and the stream connection limits and timeouts.

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::reader::{TableReader, ONE_DAY_S};

const KEYS: &[&str] = &[
    "max_auth_failures",
    "failure_window_s",
    "ban_time_s",
    "max_ban_time_s",
    "user_max_failures",
    "tarpit_ms",
    "rate",
    "burst",
    "max_tracked_sources",
    "log_interval_s",
    "log_max_lines",
    "max_connections",
    "max_connections_per_source",
    "idle_timeout_s",
    "header_timeout_s",
    "body_timeout_s",
];

/// Settings of `[security]`; every one has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Failed authentications from one address within `failure_window` that ban it.
    pub max_auth_failures: u32,
    /// The window failures are counted in.
    pub failure_window: Duration,
    /// The first ban's length (doubling on each repeat within a day).
    pub ban_time: Duration,
    /// The longest a repeated ban grows to.
    pub max_ban_time: Duration,
    /// Failures for one user name from any address within the window that start its tarpit.
    pub user_max_failures: u32,
    /// How long a tarpitted user's challenge is held back.
    pub tarpit: Duration,
    /// Requests per second an untrusted source may send (token bucket rate).
    pub rate: u32,
    /// The bucket's size: requests an untrusted source may send at once.
    pub burst: u32,
    /// Cap on tracked sources (failure counters, buckets, bans each).
    pub max_tracked_sources: usize,
    /// The security log's throttle interval.
    pub log_interval: Duration,
    /// Security log lines per interval before events are only counted.
    pub log_max_lines: u32,
    /// Open SIP stream connections (TCP) in all; `None` = derived from RLIMIT_NOFILE.
    pub max_connections: Option<usize>,
    /// Open SIP stream connections from one IP address.
    pub max_connections_per_source: usize,
    /// A stream connection with no traffic for this long is closed (unless a registration
    /// binding lives on it: then it is kept until the binding expires).
    pub idle_timeout: Duration,
    /// A message's header must arrive completely within this time of its first byte.
    pub header_timeout: Duration,
    /// A message's body must arrive within this time of its header.
    pub body_timeout: Duration,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            max_auth_failures: 10,
            failure_window: Duration::from_secs(60),
            ban_time: Duration::from_secs(600),
            max_ban_time: Duration::from_secs(86_400),
            user_max_failures: 20,
            tarpit: Duration::from_millis(2000),
            rate: 50,
            burst: 100,
            max_tracked_sources: 65_536,
            log_interval: Duration::from_secs(10),
            log_max_lines: 100,
            max_connections: None,
            max_connections_per_source: 64,
            idle_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Reads `[security]`. `None` means an error was recorded.
pub(super) fn read(d: &mut Diagnostics<'_>, root: &TableReader<'_>) -> Option<SecurityConfig> {
    let table = TableReader::section(d, root, "security", KEYS);
    let defaults = SecurityConfig::default();
    let max_auth_failures = table.or(
        d,
        "max_auth_failures",
        defaults.max_auth_failures,
        |d, f| f.integer(d, 1..=1_000_000),
    );
    let failure_window = table.or(d, "failure_window_s", defaults.failure_window, |d, f| {
        f.seconds(d, 1..=ONE_DAY_S)
    });
    let ban_time = table.or(d, "ban_time_s", defaults.ban_time, |d, f| {
        f.seconds(d, 1..=30 * ONE_DAY_S)
    });
    let max_ban_time = table.or(d, "max_ban_time_s", defaults.max_ban_time, |d, f| {
        f.seconds(d, 1..=365 * ONE_DAY_S)
    });
    let user_max_failures = table.or(
        d,
        "user_max_failures",
        defaults.user_max_failures,
        |d, f| f.integer(d, 1..=1_000_000),
    );
    let tarpit = table.or(d, "tarpit_ms", defaults.tarpit, |d, f| {
        f.millis(d, 0..=60_000)
    });
    let rate = table.or(d, "rate", defaults.rate, |d, f| f.integer(d, 1..=1_000_000));
    let burst = table.or(d, "burst", defaults.burst, |d, f| {
        f.integer(d, 1..=1_000_000)
    });
    let max_tracked_sources = table.or(
        d,
        "max_tracked_sources",
        defaults.max_tracked_sources,
        |d, f| f.integer(d, 16..=10_000_000),
    );
    let log_interval = table.or(d, "log_interval_s", defaults.log_interval, |d, f| {
        f.seconds(d, 1..=3600)
    });
    let log_max_lines = table.or(d, "log_max_lines", defaults.log_max_lines, |d, f| {
        f.integer(d, 1..=1_000_000)
    });
    let max_connections = table.or(d, "max_connections", None, |d, f| {
        f.integer(d, 1..=10_000_000).map(Some)
    });
    let max_connections_per_source = table.or(
        d,
        "max_connections_per_source",
        defaults.max_connections_per_source,
        |d, f| f.integer(d, 1..=10_000_000),
    );
    let idle_timeout = table.or(d, "idle_timeout_s", defaults.idle_timeout, |d, f| {
        f.seconds(d, 1..=ONE_DAY_S)
    });
    let header_timeout = table.or(d, "header_timeout_s", defaults.header_timeout, |d, f| {
        f.seconds(d, 1..=3600)
    });
    let body_timeout = table.or(d, "body_timeout_s", defaults.body_timeout, |d, f| {
        f.seconds(d, 1..=3600)
    });
    if let (Some(ban), Some(max)) = (ban_time, max_ban_time) {
        if ban > max {
            d.error(
                &table.path().key("ban_time_s"),
                format!(
                    "ban_time_s ({}) must not be greater than max_ban_time_s ({})",
                    ban.as_secs(),
                    max.as_secs()
                ),
            );
            return None;
        }
    }
    Some(SecurityConfig {
        max_auth_failures: max_auth_failures?,
        failure_window: failure_window?,
        ban_time: ban_time?,
        max_ban_time: max_ban_time?,
        user_max_failures: user_max_failures?,
        tarpit: tarpit?,
        rate: rate?,
        burst: burst?,
        max_tracked_sources: max_tracked_sources?,
        log_interval: log_interval?,
        log_max_lines: log_max_lines?,
        max_connections: max_connections?,
        max_connections_per_source: max_connections_per_source?,
        idle_timeout: idle_timeout?,
        header_timeout: header_timeout?,
        body_timeout: body_timeout?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::error_lines;

    #[test]
    fn absent_section_takes_the_defaults() {
        let config = crate::config::load_str("t.toml", "").expect("valid");
        assert_eq!(config.security, SecurityConfig::default());
    }

    #[test]
    fn every_key_is_read() {
        let text = "[security]\nmax_auth_failures = 3\nfailure_window_s = 30\nban_time_s = 5\n\
            max_ban_time_s = 20\nuser_max_failures = 7\ntarpit_ms = 250\nrate = 5\nburst = 9\n\
            max_tracked_sources = 100\nlog_interval_s = 2\nlog_max_lines = 4\n\
            max_connections = 50\nmax_connections_per_source = 3\nidle_timeout_s = 8\n\
            header_timeout_s = 2\nbody_timeout_s = 3\n";
        let config = crate::config::load_str("t.toml", text).expect("valid");
        assert_eq!(
            config.security,
            SecurityConfig {
                max_auth_failures: 3,
                failure_window: Duration::from_secs(30),
                ban_time: Duration::from_secs(5),
                max_ban_time: Duration::from_secs(20),
                user_max_failures: 7,
                tarpit: Duration::from_millis(250),
                rate: 5,
                burst: 9,
                max_tracked_sources: 100,
                log_interval: Duration::from_secs(2),
                log_max_lines: 4,
                max_connections: Some(50),
                max_connections_per_source: 3,
                idle_timeout: Duration::from_secs(8),
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(3),
            }
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let lines = error_lines("[security]\nrate = 0\nban_time_s = 100\nmax_ban_time_s = 10\n");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("t.toml:2:8: security.rate")),
            "{lines:?}"
        );
        let lines = error_lines("[security]\nban_time_s = 100\nmax_ban_time_s = 10\n");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("security.ban_time_s") && l.contains("max_ban_time_s (10)")),
            "{lines:?}"
        );
        let lines = error_lines("[security]\nbanned = 1\n");
        assert!(
            lines.iter().any(|l| l.contains("security.banned")),
            "{lines:?}"
        );
    }
}
