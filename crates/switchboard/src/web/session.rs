//! Web sessions: who is logged in to the agent desktop or the wallboard.
//!
//! A login hands out a random 256-bit session id in a cookie (HttpOnly, SameSite=Strict,
//! Secure over HTTPS). A session unused for `[http] session_idle_s` is over; it is kept long
//! enough to tell the browser "your session expired" rather than "who are you". Failed
//! logins are counted per source address: past [`MAX_FAILURES`] in [`FAILURE_WINDOW`] the
//! source must wait (429), so a password cannot be guessed at argon2's speed from one place.
//! Time is passed in, so all of this is tested without sleeping.

use crate::config::ApiRole;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie carrying the session id.
pub const COOKIE: &str = "sb_session";
/// Failed logins allowed per source in [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failed logins are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// A logged-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The agent id or the `[[http.user]]` name.
    pub login: String,
    /// What they may do.
    pub role: ApiRole,
    last_seen: Instant,
}

/// Why a session id was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Never issued, or logged out.
    Unknown,
    /// Unused for longer than the idle limit.
    Expired,
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Every live session and the failed-login counts.
pub struct Sessions {
    idle: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Sessions {
    /// No sessions; each expires after `idle` without use.
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The idle limit (the cookie's Max-Age follows it).
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Starts a session and returns its id.
    pub fn start(&self, now: Instant, login: &str, role: ApiRole) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let Ok(mut sessions) = self.sessions.lock() else {
            return id;
        };
        // Forget sessions long past expiry so the map does not grow with every login.
        let forget_after = self.idle * 2;
        sessions.retain(|_, s| now.saturating_duration_since(s.last_seen) < forget_after);
        sessions.insert(
            id.clone(),
            Session {
                login: login.to_owned(),
                role,
                last_seen: now,
            },
        );
        id
    }

    /// The session `id` belongs to, marked as used now.
    pub fn touch(&self, now: Instant, id: &str) -> Result<Session, SessionError> {
        let mut sessions = self.sessions.lock().map_err(|_| SessionError::Unknown)?;
        let session = sessions.get_mut(id).ok_or(SessionError::Unknown)?;
        if now.saturating_duration_since(session.last_seen) >= self.idle {
            return Err(SessionError::Expired);
        }
        session.last_seen = now;
        Ok(session.clone())
    }

    /// Ends the session `id` (logout).
    pub fn end(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// Whether `source` may try to log in now; `Err` holds how long it must wait.
    pub fn may_try(&self, now: Instant, source: IpAddr) -> Result<(), Duration> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(&source) {
            Some(f) if f.count >= MAX_FAILURES => {
                let elapsed = now.saturating_duration_since(f.since);
                if elapsed < FAILURE_WINDOW {
                    Err(FAILURE_WINDOW - elapsed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login from `source`.
    pub fn failed(&self, now: Instant, source: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        failures.retain(|_, f| now.saturating_duration_since(f.since) < FAILURE_WINDOW);
        let entry = failures.entry(source).or_insert(Failures {
            count: 0,
            since: now,
        });
        entry.count += 1;
    }

    /// Forgets the failures of `source` after a good login.
    pub fn succeeded(&self, source: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&source);
        }
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that stores session `id`; `secure` over HTTPS.
pub fn set_cookie(id: &str, idle: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        idle.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_while_it_is_used() {
        let start = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(600));
        let id = sessions.start(start, "1001", ApiRole::Agent("1001".into()));
        assert_eq!(id.len(), 64);
        let later = start + Duration::from_secs(599);
        assert_eq!(
            sessions.touch(later, &id).map(|s| s.login),
            Ok("1001".to_owned())
        );
        // Used at 599 s, so it lasts until 1199 s.
        assert!(sessions
            .touch(start + Duration::from_secs(1198), &id)
            .is_ok());
        assert_eq!(
            sessions.touch(start + Duration::from_secs(1798), &id),
            Err(SessionError::Expired)
        );
        assert_eq!(sessions.touch(start, "nope"), Err(SessionError::Unknown));
    }

    #[test]
    fn logout_ends_the_session() {
        let now = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(600));
        let id = sessions.start(now, "sup", ApiRole::Supervisor);
        sessions.end(&id);
        assert_eq!(sessions.touch(now, &id), Err(SessionError::Unknown));
    }

    #[test]
    fn repeated_failures_make_a_source_wait() {
        let start = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(600));
        let here: IpAddr = "127.0.0.9".parse().expect("ip");
        let there: IpAddr = "127.0.0.10".parse().expect("ip");
        for _ in 0..MAX_FAILURES {
            assert_eq!(sessions.may_try(start, here), Ok(()));
            sessions.failed(start, here);
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(sessions.may_try(later, here), Err(Duration::from_secs(50)));
        assert_eq!(sessions.may_try(later, there), Ok(()));
        assert_eq!(sessions.may_try(start + FAILURE_WINDOW, here), Ok(()));
        sessions.succeeded(here);
        assert_eq!(sessions.may_try(later, here), Ok(()));
    }

    #[test]
    fn cookies_are_strict_and_secure_over_https() {
        let cookie = set_cookie("abc", Duration::from_secs(900), true);
        assert_eq!(
            cookie,
            "sb_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=900; Secure"
        );
        assert!(!set_cookie("abc", Duration::from_secs(900), false).contains("Secure"));
        assert_eq!(cookie_value("a=1; sb_session=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_value("a=1"), None);
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
