//! The call-control timers (ring timeouts, ACD deadlines, registration expiry) in one ordered
//! map, so the I/O loop sleeps exactly until the earliest one with a single timer.

use std::collections::BTreeMap;
use std::time::Instant;

/// Deadlines in firing order; ties fire in insertion order.
#[derive(Debug)]
pub struct TimerQueue<T> {
    entries: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    /// Schedules `timer` at `at`. Timers are not cancelled: their handlers check whether what
    /// they were set for still holds (an attempt number, a state), which is cheaper than a
    /// removal index and cannot go wrong when a timer races its own cancellation.
    pub fn schedule(&mut self, at: Instant, timer: T) {
        self.next_seq += 1;
        self.entries.insert((at, self.next_seq), timer);
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (&key, _) = self.entries.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.entries.remove(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(t0 + Duration::from_secs(2), "late");
        q.schedule(t0 + Duration::from_secs(1), "first");
        q.schedule(t0 + Duration::from_secs(1), "second");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(q.pop_due(now), Some("first"));
        assert_eq!(q.pop_due(now), Some("second"));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(2)));
    }
}
