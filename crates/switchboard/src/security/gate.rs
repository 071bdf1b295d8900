//! The source gate the transports consult for every datagram, stream message and new
//! connection before parsing it: trunk addresses always pass; banned sources and sources over
//! their token bucket are dropped unread, counted, and logged (throttled). Call control shares
//! the same ban table and security log.

use super::{
    AuthFailureConfig, AuthFailures, RateLimitConfig, RateLimiter, SecurityEvent,
    SecurityEventKind, SecurityLog,
};
use crate::config::Config;
use ipnet::IpNet;
use prometheus::IntCounterVec;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Locks a mutex; a panic elsewhere while it was held leaves the table usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The ban table, shared by the gate, call control and the HTTP API (`/api/bans`).
#[derive(Clone, Debug)]
pub struct SharedBans(Arc<Mutex<AuthFailures>>);

impl SharedBans {
    /// A table with these limits.
    pub fn new(config: AuthFailureConfig) -> Self {
        Self(Arc::new(Mutex::new(AuthFailures::new(config))))
    }

    /// The table.
    pub fn lock(&self) -> MutexGuard<'_, AuthFailures> {
        lock(&self.0)
    }
}

/// Every trunk's source networks.
fn trusted_networks(config: &Config) -> Vec<IpNet> {
    config
        .trunks
        .iter()
        .flat_map(|trunk| trunk.allow.iter().copied())
        .collect()
}

/// Bans, the per-source rate and the security log, shared across tasks.
pub struct Gate {
    /// The trunks' ACLs; a reload replaces them.
    trusted: std::sync::RwLock<Vec<IpNet>>,
    bans: SharedBans,
    limiter: Mutex<RateLimiter>,
    log: Mutex<SecurityLog>,
    events: IntCounterVec,
}

impl Gate {
    /// A gate for `config`'s trunks and `[security]` limits, counting into `events`
    /// (`switchboard_security_events_total`).
    pub fn new(config: &Config, events: IntCounterVec) -> Self {
        let security = &config.security;
        Self {
            trusted: std::sync::RwLock::new(trusted_networks(config)),
            bans: SharedBans::new(AuthFailureConfig {
                max_failures: security.max_auth_failures,
                window: security.failure_window,
                ban_time: security.ban_time,
                max_ban_time: security.max_ban_time,
                user_max_failures: security.user_max_failures,
                tarpit_delay: security.tarpit,
                max_tracked: security.max_tracked_sources,
            }),
            limiter: Mutex::new(RateLimiter::new(RateLimitConfig {
                rate: f64::from(security.rate),
                burst: f64::from(security.burst),
                max_tracked: security.max_tracked_sources,
            })),
            log: Mutex::new(SecurityLog::new(
                security.log_interval,
                security.log_max_lines,
            )),
            events,
        }
    }

    /// Whether `ip` is in some trunk's ACL (never banned, never rate-limited).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        match self.trusted.read() {
            Ok(trusted) => trusted.iter().any(|net| net.contains(&ip)),
            Err(poisoned) => poisoned.into_inner().iter().any(|net| net.contains(&ip)),
        }
    }

    /// Takes the trunks' ACLs of a reloaded configuration.
    pub fn set_trusted(&self, config: &Config) {
        let networks = trusted_networks(config);
        match self.trusted.write() {
            Ok(mut trusted) => *trusted = networks,
            Err(poisoned) => *poisoned.into_inner() = networks,
        }
    }

    /// The ban table.
    pub fn bans(&self) -> &SharedBans {
        &self.bans
    }

    /// Whether a message from `source` may go on, at `now`.
    pub fn admit_at(&self, now: Instant, source: SocketAddr, transport: &str) -> bool {
        let ip = source.ip();
        if self.is_trusted(ip) {
            return true;
        }
        let (kind, reason) = if self.bans.lock().is_banned(ip, now) {
            (SecurityEventKind::Banned, "banned")
        } else if !lock(&self.limiter).allow(ip, now) {
            (SecurityEventKind::OverRate, "over-rate")
        } else {
            return true;
        };
        self.record(
            now,
            &SecurityEvent {
                kind,
                source,
                transport,
                method: None,
                user: None,
                reason,
            },
        );
        false
    }

    /// Counts and logs (throttled) one security event.
    pub fn record(&self, now: Instant, event: &SecurityEvent<'_>) {
        self.events.with_label_values(&[event.kind.token()]).inc();
        for line in lock(&self.log).record(now, event) {
            tracing::warn!("{line}");
        }
    }

    /// Writes the log summaries due at `now`.
    pub fn roll_log(&self, now: Instant) {
        for line in lock(&self.log).roll(now) {
            tracing::warn!("{line}");
        }
    }

    /// When a log summary is due, if one is pending.
    pub fn next_log_summary(&self) -> Option<Instant> {
        lock(&self.log).next_summary()
    }
}

impl transport::SourceGate for Gate {
    fn admit(&self, source: SocketAddr, transport: sip::Transport) -> bool {
        self.admit_at(Instant::now(), source, transport.via_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate() -> Gate {
        let config = crate::config::load_str(
            "t.toml",
            "[security]\nrate = 5\nburst = 20\nmax_auth_failures = 1\n\
             [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.1/32\"]\n",
        )
        .expect("valid");
        let events =
            IntCounterVec::new(prometheus::Opts::new("e", "e"), &["event"]).expect("metric");
        Gate::new(&config, events)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("addr")
    }

    #[test]
    fn a_source_over_its_rate_is_dropped_and_a_trunk_never_is() {
        let gate = gate();
        let now = Instant::now();
        let passed = (0..100)
            .filter(|_| gate.admit_at(now, addr("127.0.0.2:5060"), "UDP"))
            .count();
        assert_eq!(passed, 20, "the burst, then nothing");
        assert_eq!(gate.events.with_label_values(&["over-rate"]).get(), 80);
        assert!(gate.admit_at(
            now + Duration::from_millis(200),
            addr("127.0.0.2:5060"),
            "UDP"
        ));
        assert!((0..1000).all(|_| gate.admit_at(now, addr("127.0.0.1:5060"), "UDP")));
    }

    #[test]
    fn a_banned_source_is_dropped_until_the_ban_ends() {
        let gate = gate();
        let now = Instant::now();
        gate.bans
            .lock()
            .record_failure(now, addr("127.0.0.3:1").ip(), None);
        assert!(!gate.admit_at(now, addr("127.0.0.3:5060"), "TCP"));
        assert_eq!(gate.events.with_label_values(&["banned-drop"]).get(), 1);
        assert!(gate.admit_at(
            now + Duration::from_secs(601),
            addr("127.0.0.3:5060"),
            "TCP"
        ));
    }

    fn gate_with(security: &str) -> Gate {
        let config =
            crate::config::load_str("t.toml", &format!("[security]\n{security}")).expect("valid");
        let events =
            IntCounterVec::new(prometheus::Opts::new("e", "e"), &["event"]).expect("metric");
        Gate::new(&config, events)
    }

    #[test]
    fn failure_window_and_max_ban_time_come_from_the_config() {
        let gate = gate_with(
            "max_auth_failures = 2\nfailure_window_s = 10\nban_time_s = 5\nmax_ban_time_s = 8\n",
        );
        let ip = addr("192.0.2.1:1").ip();
        let t0 = Instant::now();
        let mut bans = gate.bans.lock();
        bans.record_failure(t0, ip, None);
        bans.record_failure(t0 + Duration::from_secs(11), ip, None);
        assert!(
            !bans.is_banned(ip, t0 + Duration::from_secs(11)),
            "outside the window"
        );
        let outcome = bans.record_failure(t0 + Duration::from_secs(12), ip, None);
        assert_eq!(
            outcome,
            crate::security::FailureOutcome::Banned {
                duration: Duration::from_secs(5)
            }
        );
        let later = t0 + Duration::from_secs(20);
        bans.record_failure(later, ip, None);
        let outcome = bans.record_failure(later, ip, None);
        assert_eq!(
            outcome,
            crate::security::FailureOutcome::Banned {
                duration: Duration::from_secs(8)
            },
            "doubled to 10 s, capped at max_ban_time_s"
        );
    }

    #[test]
    fn max_tracked_sources_caps_the_tables() {
        let gate = gate_with("max_tracked_sources = 16\nmax_auth_failures = 1000\n");
        let now = Instant::now();
        for i in 0..200u8 {
            let source = SocketAddr::from(([10, 0, 0, i], 5060));
            gate.admit_at(now, source, "UDP");
            gate.bans
                .lock()
                .record_failure(now, source.ip(), Some(&format!("u{i}")));
        }
        let (sources, users, bans) = gate.bans.lock().tracked();
        assert!(
            sources <= 16 && users <= 16 && bans <= 16,
            "{sources} {users} {bans}"
        );
        assert!(lock(&gate.limiter).tracked() <= 16);
    }

    #[test]
    fn log_max_lines_and_interval_throttle_the_security_log() {
        let gate = gate_with("log_max_lines = 2\nlog_interval_s = 7\nrate = 1\nburst = 1\n");
        let now = Instant::now();
        for _ in 0..5 {
            gate.admit_at(now, addr("192.0.2.9:5060"), "UDP");
        }
        // 4 drops: 2 written, 2 counted for the summary due one interval later.
        assert_eq!(gate.events.with_label_values(&["over-rate"]).get(), 4);
        assert_eq!(gate.next_log_summary(), Some(now + Duration::from_secs(7)));
    }
}
