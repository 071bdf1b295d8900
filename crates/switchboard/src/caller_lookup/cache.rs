//! Recent CRM answers by caller and number dialled, so a caller who rings again within
//! `cache_s` is not looked up twice. Bounded by `cache_entries`; the oldest answer goes first.
//! Only usable answers are kept: a failure is retried with the next call.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::CallerInfo;

/// The cache; time is passed in.
#[derive(Debug)]
pub struct AnswerCache {
    keep_for: Duration,
    max_entries: usize,
    answers: HashMap<(String, String), (Instant, CallerInfo)>,
    /// Keys in the order they were stored (a key stored again appears twice; the stale
    /// position is skipped when it comes up).
    order: VecDeque<((String, String), Instant)>,
}

impl AnswerCache {
    /// A cache keeping answers `keep_for`, at most `max_entries` (either zero: no cache).
    pub fn new(keep_for: Duration, max_entries: usize) -> Self {
        AnswerCache {
            keep_for,
            max_entries,
            answers: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The answer stored for `caller` calling `did`, if still fresh at `now`.
    pub fn get(&self, now: Instant, caller: &str, did: &str) -> Option<&CallerInfo> {
        let (stored, info) = self.answers.get(&(caller.to_owned(), did.to_owned()))?;
        (now.saturating_duration_since(*stored) < self.keep_for).then_some(info)
    }

    /// Keeps `info` for `caller` calling `did`, stored at `now`.
    pub fn put(&mut self, now: Instant, caller: &str, did: &str, info: CallerInfo) {
        if self.keep_for.is_zero() || self.max_entries == 0 {
            return;
        }
        let key = (caller.to_owned(), did.to_owned());
        self.answers.insert(key.clone(), (now, info));
        self.order.push_back((key, now));
        self.evict(now);
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// No answer is kept.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Drops stale positions, expired answers and, past the bound, the oldest answers.
    fn evict(&mut self, now: Instant) {
        while let Some((key, stored)) = self.order.front() {
            let current = self.answers.get(key).map(|(at, _)| *at);
            let stale_position = current != Some(*stored);
            let expired = now.saturating_duration_since(*stored) >= self.keep_for;
            let over = self.answers.len() > self.max_entries;
            if !(stale_position || expired || over) {
                break;
            }
            if !stale_position {
                self.answers.remove(key);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip() -> CallerInfo {
        CallerInfo {
            label: Some("vip".into()),
            ..CallerInfo::default()
        }
    }

    #[test]
    fn an_answer_is_reused_for_the_same_caller_and_number_until_it_expires() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(Duration::from_secs(60), 10);
        cache.put(t0, "555", "100", vip());
        assert_eq!(
            cache.get(t0 + Duration::from_secs(59), "555", "100"),
            Some(&vip())
        );
        assert_eq!(cache.get(t0, "555", "101"), None, "another number dialled");
        assert_eq!(cache.get(t0, "556", "100"), None, "another caller");
        assert_eq!(cache.get(t0 + Duration::from_secs(60), "555", "100"), None);
        // A later store forgets what has expired.
        cache.put(t0 + Duration::from_secs(61), "557", "100", vip());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn past_the_bound_the_oldest_answer_goes_first() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut cache = AnswerCache::new(s(600), 2);
        cache.put(t0, "a", "1", vip());
        cache.put(t0 + s(1), "b", "1", vip());
        // `a` is stored again: now `b` is the oldest.
        cache.put(t0 + s(2), "a", "1", CallerInfo::default());
        cache.put(t0 + s(3), "c", "1", vip());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(t0 + s(4), "b", "1"), None);
        assert_eq!(cache.get(t0 + s(4), "a", "1"), Some(&CallerInfo::default()));
        assert_eq!(cache.get(t0 + s(4), "c", "1"), Some(&vip()));
    }

    #[test]
    fn zero_time_or_zero_entries_keeps_nothing() {
        let t0 = Instant::now();
        let mut none = AnswerCache::new(Duration::ZERO, 10);
        none.put(t0, "a", "1", vip());
        assert!(none.is_empty());
        let mut none = AnswerCache::new(Duration::from_secs(60), 0);
        none.put(t0, "a", "1", vip());
        assert!(none.is_empty());
    }
}
