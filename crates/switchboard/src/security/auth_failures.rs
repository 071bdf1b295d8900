//! Counting failed authentications: a source address with too many failures in a window is
//! banned (its requests are dropped unanswered), for a time that doubles each time the same
//! address is banned again; a user name with too many failures from anywhere is tarpitted
//! (its challenges are answered only after a delay), so a distributed guesser slows down
//! while the owner can still log in.
//!
//! Memory is bounded: at most `max_tracked` source windows, `max_tracked` user windows and
//! `max_tracked` bans are kept. Failure windows evict the oldest-inserted entry (an attacker
//! cycling through spoofed sources only resets counters it could reset anyway by waiting);
//! bans evict the one that ends soonest, so a flood cannot lift a long ban early.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a ban level is remembered after the ban ends: a source banned again within this
/// time gets twice the previous ban.
const REPEAT_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Limits for [`AuthFailures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureConfig {
    /// Failures from one address within `window` that ban it.
    pub max_failures: u32,
    /// The counting window.
    pub window: Duration,
    /// The first ban's length; each repeat within a day doubles it.
    pub ban_time: Duration,
    /// The longest a ban can grow to.
    pub max_ban_time: Duration,
    /// Failures for one user name (from any address) within `window` that start its tarpit.
    pub user_max_failures: u32,
    /// How long a tarpitted user's challenges are held back.
    pub tarpit_delay: Duration,
    /// Cap on tracked sources, users and bans each.
    pub max_tracked: usize,
}

impl Default for AuthFailureConfig {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(60),
            ban_time: Duration::from_secs(600),
            max_ban_time: Duration::from_secs(24 * 3600),
            user_max_failures: 20,
            tarpit_delay: Duration::from_secs(2),
            max_tracked: 65_536,
        }
    }
}

/// What recording one failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; no ban yet.
    Counted,
    /// This failure banned the source for `duration`.
    Banned {
        /// Length of the new ban.
        duration: Duration,
    },
}

/// A ban as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// The banned address.
    pub addr: IpAddr,
    /// Time left.
    pub remaining: Duration,
    /// The ban's full length.
    pub duration: Duration,
    /// How many times this address has been banned within a day (1 = first).
    pub level: u32,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Instant,
    duration: Duration,
    level: u32,
}

/// Failure counters with oldest-first eviction under a cap.
#[derive(Debug)]
struct Windows<K: Hash + Eq + Clone> {
    entries: HashMap<K, Window>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Counts one failure for `key` and returns the count within the current window.
    fn count(&mut self, key: &K, now: Instant, window: Duration, cap: usize) -> u32 {
        if let Some(entry) = self.entries.get_mut(key) {
            if now.saturating_duration_since(entry.start) >= window {
                *entry = Window {
                    start: now,
                    count: 0,
                };
            }
            entry.count = entry.count.saturating_add(1);
            return entry.count;
        }
        while self.entries.len() >= cap.max(1) {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            key.clone(),
            Window {
                start: now,
                count: 1,
            },
        );
        self.order.push_back(key.clone());
        1
    }

    fn current(&self, key: &K, now: Instant, window: Duration) -> u32 {
        self.entries
            .get(key)
            .filter(|entry| now.saturating_duration_since(entry.start) < window)
            .map_or(0, |entry| entry.count)
    }

    fn reset(&mut self, key: &K) {
        // Zeroed rather than removed, so the order queue never holds a key twice.
        if let Some(entry) = self.entries.get_mut(key) {
            entry.count = 0;
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The failure tracker. Time is passed in.
#[derive(Debug)]
pub struct AuthFailures {
    config: AuthFailureConfig,
    sources: Windows<IpAddr>,
    users: Windows<String>,
    bans: HashMap<IpAddr, Ban>,
    /// Bans ordered by end, for eviction and expiry without a scan.
    bans_by_end: BTreeSet<(Instant, IpAddr)>,
}

impl AuthFailures {
    /// A tracker with these limits.
    pub fn new(config: AuthFailureConfig) -> Self {
        Self {
            config,
            sources: Windows::new(),
            users: Windows::new(),
            bans: HashMap::new(),
            bans_by_end: BTreeSet::new(),
        }
    }

    /// Whether requests from `addr` are to be dropped now.
    pub fn is_banned(&self, addr: IpAddr, now: Instant) -> bool {
        self.bans.get(&addr).is_some_and(|ban| ban.until > now)
    }

    /// Counts a failed authentication from `addr` for `user` (if the request named one).
    pub fn record_failure(
        &mut self,
        now: Instant,
        addr: IpAddr,
        user: Option<&str>,
    ) -> FailureOutcome {
        let cap = self.config.max_tracked;
        let window = self.config.window;
        if let Some(user) = user {
            self.users.count(&user.to_owned(), now, window, cap);
        }
        let count = self.sources.count(&addr, now, window, cap);
        if count < self.config.max_failures || self.is_banned(addr, now) {
            return FailureOutcome::Counted;
        }
        self.sources.reset(&addr);
        let level = self
            .bans
            .get(&addr)
            .filter(|ban| now < ban.until + REPEAT_MEMORY)
            .map_or(1, |ban| ban.level.saturating_add(1));
        let factor = 1u32.checked_shl(level - 1).unwrap_or(u32::MAX);
        let duration = self
            .config
            .ban_time
            .saturating_mul(factor)
            .min(self.config.max_ban_time);
        self.insert_ban(
            addr,
            Ban {
                until: now + duration,
                duration,
                level,
            },
        );
        FailureOutcome::Banned { duration }
    }

    /// A successful authentication: the source's failure count starts again (the user's
    /// does not: a guesser who also owns one account must not reset another user's tarpit).
    pub fn record_success(&mut self, addr: IpAddr) {
        self.sources.reset(&addr);
    }

    /// How long to hold back the challenge for `user`, if it is being guessed.
    pub fn tarpit_delay(&self, user: &str, now: Instant) -> Option<Duration> {
        let failures = self
            .users
            .current(&user.to_owned(), now, self.config.window);
        (failures >= self.config.user_max_failures).then_some(self.config.tarpit_delay)
    }

    /// Lifts a ban (the API's DELETE). The repeat level is forgotten too. Returns whether
    /// there was a live ban.
    pub fn unban(&mut self, addr: IpAddr, now: Instant) -> bool {
        let was_banned = self.is_banned(addr, now);
        if let Some(ban) = self.bans.remove(&addr) {
            self.bans_by_end.remove(&(ban.until, addr));
        }
        self.sources.reset(&addr);
        was_banned
    }

    /// The live bans, the longest remaining first.
    pub fn bans(&self, now: Instant) -> Vec<BanInfo> {
        self.bans_by_end
            .iter()
            .rev()
            .filter(|(until, _)| *until > now)
            .filter_map(|(until, addr)| {
                let ban = self.bans.get(addr)?;
                Some(BanInfo {
                    addr: *addr,
                    remaining: until.saturating_duration_since(now),
                    duration: ban.duration,
                    level: ban.level,
                })
            })
            .collect()
    }

    /// Forgets bans whose repeat memory has passed; call from a timer or before listing.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(until, addr)) = self.bans_by_end.first() {
            if now < until + REPEAT_MEMORY {
                break;
            }
            self.bans_by_end.pop_first();
            self.bans.remove(&addr);
        }
    }

    /// Tracked entries (sources, users, bans), for tests and a gauge.
    pub fn tracked(&self) -> (usize, usize, usize) {
        (self.sources.len(), self.users.len(), self.bans.len())
    }

    fn insert_ban(&mut self, addr: IpAddr, ban: Ban) {
        if let Some(old) = self.bans.remove(&addr) {
            self.bans_by_end.remove(&(old.until, addr));
        }
        while self.bans.len() >= self.config.max_tracked.max(1) {
            let Some((_, soonest)) = self.bans_by_end.pop_first() else {
                break;
            };
            self.bans.remove(&soonest);
        }
        self.bans_by_end.insert((ban.until, addr));
        self.bans.insert(addr, ban);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn tracker() -> AuthFailures {
        AuthFailures::new(AuthFailureConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban_time: Duration::from_secs(600),
            max_ban_time: Duration::from_secs(1500),
            user_max_failures: 5,
            tarpit_delay: Duration::from_secs(2),
            max_tracked: 4,
        })
    }

    #[test]
    fn the_nth_failure_in_the_window_bans_the_source_for_the_ban_time() {
        let t0 = Instant::now();
        let mut failures = tracker();
        assert_eq!(
            failures.record_failure(t0, ip(2), Some("1001")),
            FailureOutcome::Counted
        );
        assert_eq!(
            failures.record_failure(t0, ip(2), Some("1001")),
            FailureOutcome::Counted
        );
        assert!(!failures.is_banned(ip(2), t0));
        assert_eq!(
            failures.record_failure(t0, ip(2), None),
            FailureOutcome::Banned {
                duration: Duration::from_secs(600)
            }
        );
        assert!(failures.is_banned(ip(2), t0 + Duration::from_secs(599)));
        assert!(!failures.is_banned(ip(2), t0 + Duration::from_secs(600)));
        assert!(
            !failures.is_banned(ip(3), t0),
            "other sources are not affected"
        );
    }

    #[test]
    fn failures_spread_over_more_than_the_window_do_not_ban() {
        let t0 = Instant::now();
        let mut failures = tracker();
        for minute in 0..10 {
            let now = t0 + Duration::from_secs(61 * minute);
            assert_eq!(
                failures.record_failure(now, ip(2), None),
                FailureOutcome::Counted
            );
        }
        assert!(!failures.is_banned(ip(2), t0 + Duration::from_secs(610)));
    }

    #[test]
    fn a_repeat_ban_doubles_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut failures = tracker();
        let mut now = t0;
        let mut lengths = Vec::new();
        for _ in 0..3 {
            let outcome = (0..3)
                .map(|_| failures.record_failure(now, ip(2), None))
                .last();
            let Some(FailureOutcome::Banned { duration }) = outcome else {
                panic!("not banned: {outcome:?}");
            };
            lengths.push(duration.as_secs());
            now += duration;
        }
        assert_eq!(lengths, vec![600, 1200, 1500]);
        // A day after the last ban ended, the level is forgotten.
        now += REPEAT_MEMORY;
        failures.expire(now);
        let outcome = (0..3)
            .map(|_| failures.record_failure(now, ip(2), None))
            .last();
        assert_eq!(
            outcome,
            Some(FailureOutcome::Banned {
                duration: Duration::from_secs(600)
            })
        );
    }

    #[test]
    fn a_success_resets_the_source_count() {
        let t0 = Instant::now();
        let mut failures = tracker();
        failures.record_failure(t0, ip(2), None);
        failures.record_failure(t0, ip(2), None);
        failures.record_success(ip(2));
        assert_eq!(
            failures.record_failure(t0, ip(2), None),
            FailureOutcome::Counted
        );
    }

    #[test]
    fn a_user_guessed_from_many_addresses_is_tarpitted_until_the_window_passes() {
        let t0 = Instant::now();
        let mut failures = tracker();
        for source in 10..15 {
            assert_eq!(failures.tarpit_delay("1001", t0), None);
            failures.record_failure(t0, ip(source), Some("1001"));
        }
        assert_eq!(
            failures.tarpit_delay("1001", t0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(failures.tarpit_delay("1002", t0), None);
        assert_eq!(
            failures.tarpit_delay("1001", t0 + Duration::from_secs(60)),
            None
        );
        for source in 10..15 {
            assert!(!failures.is_banned(ip(source), t0), "one failure each");
        }
    }

    #[test]
    fn bans_are_listed_and_can_be_lifted() {
        let t0 = Instant::now();
        let mut failures = tracker();
        for _ in 0..3 {
            failures.record_failure(t0, ip(2), None);
        }
        let later = t0 + Duration::from_secs(100);
        assert_eq!(
            failures.bans(later),
            vec![BanInfo {
                addr: ip(2),
                remaining: Duration::from_secs(500),
                duration: Duration::from_secs(600),
                level: 1,
            }]
        );
        assert!(failures.unban(ip(2), later));
        assert!(!failures.is_banned(ip(2), later));
        assert!(failures.bans(later).is_empty());
        assert!(!failures.unban(ip(2), later), "nothing left to lift");
    }

    #[test]
    fn memory_stays_under_the_cap_and_floods_evict_the_soonest_ending_ban() {
        let t0 = Instant::now();
        let mut failures = tracker();
        // One long ban (level 2) first, then many short ones.
        for _ in 0..3 {
            failures.record_failure(t0, ip(1), None);
        }
        let second = t0 + Duration::from_secs(600);
        for _ in 0..3 {
            failures.record_failure(second, ip(1), Some("x"));
        }
        for source in 2..40 {
            for _ in 0..3 {
                failures.record_failure(second, ip(source), Some(&format!("u{source}")));
            }
        }
        let (sources, users, bans) = failures.tracked();
        assert!(
            sources <= 4 && users <= 4 && bans <= 4,
            "{sources} {users} {bans}"
        );
        assert!(
            failures.is_banned(ip(1), second + Duration::from_secs(900)),
            "the longest ban survives the flood"
        );
    }
}
