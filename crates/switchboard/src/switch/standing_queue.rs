//! Whether the queue in front of call control stands or only bursts — the distinction CoDel
//! (RFC 8289) draws for packet queues. A burst (a second's calls arriving in the same
//! millisecond, a transport worker handing over a batch) makes messages wait for a moment and
//! then drains: refusing calls then would turn away traffic the node can carry. A standing
//! queue is one where every message has waited at least `TARGET` for a whole `INTERVAL`: the
//! node is taking in more than it serves, and the wait only grows.
//!
//! Why it matters (issue 12, docs/scaling.md "Past capacity"): with 500 agents a call's
//! messages cross this queue three or four times (the phone's answer, the trunk's ACK and BYE,
//! the phone's answer to our BYE), so a standing wait of 80 ms held each agent some
//! 300 ms a call. Past capacity the agents, not the CPU, then set the rate: admitted calls piled
//! up waiting for agents, held their RTP ports, and goodput fell to 67–80 % of the peak. Once the
//! queue is known to stand, overload control refuses new calls at a much shallower depth.
//!
//! Pure: the time is passed in.

use std::time::{Duration, Instant};

/// The wait a message may have without counting as "behind" (CoDel's target).
pub(super) const TARGET: Duration = Duration::from_millis(5);

/// How long every message must have waited at least `TARGET` before the queue counts as
/// standing (CoDel's interval): longer than a burst takes to drain.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// Tracks the waits of the messages call control takes from its queue.
#[derive(Debug, Default)]
pub(super) struct StandingQueue {
    /// Since when every message has waited at least `TARGET`; `None` once one did not.
    above_target_since: Option<Instant>,
    /// Since when every message has waited less than `TARGET`; `None` once one did not.
    below_target_since: Option<Instant>,
    /// Whether the queue stands: entered after `INTERVAL` of waits at or above the target,
    /// left after `INTERVAL` of waits below it. Leaving on the first short wait (CoDel's rule
    /// for packets) let each lull re-admit calls at the full offered rate for a whole interval
    /// before refusing again: past capacity the calls admitted waited far longer (probe
    /// INVITE→180 p99 82–137 ms against 39–49 ms; docs/scaling.md).
    standing: bool,
}

impl StandingQueue {
    /// A message taken from the queue at `now` had waited `waited`.
    pub(super) fn observe(&mut self, now: Instant, waited: Duration) {
        let (since, other) = if waited >= TARGET {
            (&mut self.above_target_since, &mut self.below_target_since)
        } else {
            (&mut self.below_target_since, &mut self.above_target_since)
        };
        *other = None;
        let since = *since.get_or_insert(now);
        if now.saturating_duration_since(since) >= INTERVAL {
            self.standing = waited >= TARGET;
        }
    }

    /// Whether the queue stands (see `standing`).
    pub(super) fn standing(&self) -> bool {
        self.standing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_that_drains_within_the_interval_is_not_a_standing_queue() {
        let t0 = Instant::now();
        let mut queue = StandingQueue::default();
        // 90 ms of messages that waited 20 ms, then one that found the queue drained.
        for ms in 0..90 {
            queue.observe(t0 + ms * MS, 20 * MS);
            assert!(!queue.standing());
        }
        queue.observe(t0 + 90 * MS, Duration::ZERO);
        // The waits start again: the interval counts from the new first long wait.
        for ms in 95..195 {
            queue.observe(t0 + ms * MS, 20 * MS);
            assert!(!queue.standing(), "at {ms} ms");
        }
        queue.observe(t0 + 195 * MS, 20 * MS);
        assert!(queue.standing());
    }

    #[test]
    fn a_standing_queue_stands_until_the_waits_stay_short_for_an_interval() {
        let t0 = Instant::now();
        let mut queue = StandingQueue::default();
        for ms in 0..=100 {
            queue.observe(t0 + ms * MS, TARGET);
        }
        assert!(queue.standing());
        // Short waits now and then (a lull) do not end it.
        for ms in 101..400 {
            let waited = if ms % 10 == 0 { MS } else { TARGET };
            queue.observe(t0 + ms * MS, waited);
            assert!(queue.standing(), "at {ms} ms");
        }
        // An interval of short waits does.
        for ms in 400..500 {
            queue.observe(t0 + ms * MS, TARGET - MS);
            assert!(queue.standing(), "at {ms} ms");
        }
        queue.observe(t0 + 500 * MS, TARGET - MS);
        assert!(!queue.standing());
    }

    #[test]
    fn short_waits_never_stand() {
        let t0 = Instant::now();
        let mut queue = StandingQueue::default();
        for ms in 0..1000 {
            queue.observe(t0 + ms * MS, TARGET - MS);
        }
        assert!(!queue.standing());
    }
}
