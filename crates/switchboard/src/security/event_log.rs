//! The security log: one `key=value` line per security event, in a format fail2ban and log
//! shippers can rely on (documented in docs/security.md), throttled so a flood cannot fill
//! the disk: past `max_lines` lines in an interval, events are only counted, and one summary
//! line per kind reports the count when the interval ends.
//!
//! ```text
//! security event=auth-failure src=203.0.113.7 port=5060 transport=UDP method=REGISTER user="1001" reason="wrong-password"
//! ```
//!
//! `src` is always a bare IP address and comes right after `event`, so a filter can anchor on
//! it; values that came from the network (`user`, `method`) are quoted with anything but
//! printable ASCII (spaces included), `"` and `\` replaced by `?`, so a crafted user name
//! cannot forge a field.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityEventKind {
    /// Credentials were refused (unknown user, wrong password, bad or replayed nonce).
    AuthFailure,
    /// A source was banned after too many failures.
    Ban,
    /// A request from a banned source was dropped.
    Banned,
    /// A request came from an address outside every trunk and without credentials.
    UnknownSource,
    /// A source sent more than its rate; the request was dropped.
    OverRate,
    /// A stream connection was refused at a cap.
    ConnectionRefused,
    /// An agent registered from an address it never used before.
    NewSource,
    /// An agent registered from outside its `allow` list.
    SourceNotAllowed,
    /// A trunk with `tls_client_name` called without the matching client certificate.
    CertificateRefused,
    /// An agent's call out was refused by its allow-list or a toll-fraud cap.
    OutboundRefused,
}

impl SecurityEventKind {
    /// The `event=` token.
    pub fn token(self) -> &'static str {
        match self {
            SecurityEventKind::AuthFailure => "auth-failure",
            SecurityEventKind::Ban => "ban",
            SecurityEventKind::Banned => "banned-drop",
            SecurityEventKind::UnknownSource => "unknown-source",
            SecurityEventKind::OverRate => "over-rate",
            SecurityEventKind::ConnectionRefused => "connection-refused",
            SecurityEventKind::NewSource => "new-source",
            SecurityEventKind::SourceNotAllowed => "source-not-allowed",
            SecurityEventKind::CertificateRefused => "certificate-refused",
            SecurityEventKind::OutboundRefused => "outbound-refused",
        }
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct SecurityEvent<'a> {
    /// What happened.
    pub kind: SecurityEventKind,
    /// Who did it.
    pub source: SocketAddr,
    /// `UDP`, `TCP`, `HTTP` …
    pub transport: &'a str,
    /// The SIP method, when a request was involved.
    pub method: Option<&'a str>,
    /// The user name the request claimed, when it named one.
    pub user: Option<&'a str>,
    /// Why, as a short token (`wrong-password`, `per-source-cap` …).
    pub reason: &'a str,
}

impl SecurityEvent<'_> {
    /// The line, without the log framework's timestamp and level.
    pub fn render(&self) -> String {
        let mut line = format!(
            "security event={} src={} port={} transport={}",
            self.kind.token(),
            self.source.ip(),
            self.source.port(),
            self.transport
        );
        if let Some(method) = self.method {
            let _ = write!(line, " method=\"{}\"", sanitized(method));
        }
        if let Some(user) = self.user {
            let _ = write!(line, " user=\"{}\"", sanitized(user));
        }
        let _ = write!(line, " reason=\"{}\"", sanitized(self.reason));
        line
    }
}

fn sanitized(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The throttle. Time is passed in; the caller writes the lines it returns.
#[derive(Debug)]
pub struct SecurityLog {
    interval: Duration,
    max_lines: u32,
    interval_start: Option<Instant>,
    written: u32,
    suppressed: BTreeMap<SecurityEventKind, u64>,
}

impl SecurityLog {
    /// At most `max_lines` event lines per `interval`.
    pub fn new(interval: Duration, max_lines: u32) -> Self {
        Self {
            interval,
            max_lines,
            interval_start: None,
            written: 0,
            suppressed: BTreeMap::new(),
        }
    }

    /// The lines to write for `event`: a summary of the previous interval if one ended, then
    /// the event's own line unless this interval is over its budget.
    pub fn record(&mut self, now: Instant, event: &SecurityEvent<'_>) -> Vec<String> {
        let mut lines = self.roll(now);
        if self.written < self.max_lines {
            self.written += 1;
            lines.push(event.render());
        } else {
            *self.suppressed.entry(event.kind).or_default() += 1;
        }
        lines
    }

    /// The summary lines due at `now` (call it from a timer so a flood that stopped is still
    /// reported).
    pub fn roll(&mut self, now: Instant) -> Vec<String> {
        let start = *self.interval_start.get_or_insert(now);
        if now.saturating_duration_since(start) < self.interval {
            return Vec::new();
        }
        self.interval_start = Some(now);
        self.written = 0;
        let seconds = self.interval.as_secs();
        std::mem::take(&mut self.suppressed)
            .into_iter()
            .map(|(kind, count)| {
                format!(
                    "security event=suppressed kind={} count={count} interval_s={seconds}",
                    kind.token()
                )
            })
            .collect()
    }

    /// When [`SecurityLog::roll`] has a summary to give, if any is pending.
    pub fn next_summary(&self) -> Option<Instant> {
        if self.suppressed.is_empty() {
            return None;
        }
        self.interval_start.map(|start| start + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: SecurityEventKind, user: Option<&str>) -> SecurityEvent<'_> {
        SecurityEvent {
            kind,
            source: "203.0.113.7:5062".parse().expect("addr"),
            transport: "UDP",
            method: Some("REGISTER"),
            user,
            reason: "wrong-password",
        }
    }

    #[test]
    fn a_line_has_the_documented_fields_in_order() {
        assert_eq!(
            event(SecurityEventKind::AuthFailure, Some("1001")).render(),
            "security event=auth-failure src=203.0.113.7 port=5062 transport=UDP \
             method=\"REGISTER\" user=\"1001\" reason=\"wrong-password\""
        );
    }

    #[test]
    fn a_crafted_user_name_cannot_forge_a_field() {
        let line = event(
            SecurityEventKind::AuthFailure,
            Some("x\" src=10.0.0.1\nevent=ban"),
        )
        .render();
        assert_eq!(line.matches("src=").count(), 2, "{line}");
        assert!(
            line.contains("user=\"x??src=10.0.0.1?event=ban\""),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_flood_is_counted_not_written_and_summarised_when_the_interval_ends() {
        let t0 = Instant::now();
        let mut log = SecurityLog::new(Duration::from_secs(10), 3);
        let mut written = 0;
        for _ in 0..1000 {
            written += log
                .record(t0, &event(SecurityEventKind::OverRate, None))
                .len();
        }
        assert_eq!(written, 3);
        assert_eq!(log.next_summary(), Some(t0 + Duration::from_secs(10)));
        assert!(log.roll(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(
            log.roll(t0 + Duration::from_secs(10)),
            vec!["security event=suppressed kind=over-rate count=997 interval_s=10".to_owned()]
        );
        assert_eq!(log.next_summary(), None);
        let next = log.record(
            t0 + Duration::from_secs(11),
            &event(SecurityEventKind::AuthFailure, None),
        );
        assert_eq!(next.len(), 1, "a new interval writes again: {next:?}");
    }
}
