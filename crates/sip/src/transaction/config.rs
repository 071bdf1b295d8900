//! Timer base values (RFC 3261 §17.1.1.1 and Table 4) and the timers derived from them.

use std::time::Duration;

/// Base values every transaction timer derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip estimate: the first retransmission interval; 64·T1 bounds every transaction.
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and INVITE final responses.
    pub t2: Duration,
    /// Longest time a message stays in the network: how long Timers K and I linger.
    pub t4: Duration,
}

impl Default for TimerConfig {
    /// RFC 3261 defaults: T1 500 ms, T2 4 s, T4 5 s.
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Lower bound for T1 so a zero from configuration cannot make retransmissions spin forever
/// at one instant.
const MIN_T1: Duration = Duration::from_millis(1);

/// RFC 3261 Table 4: Timer D is "> 32 s for UDP", independent of T1.
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

impl TimerConfig {
    /// The values actually used: T1 at least 1 ms, T2 at least T1.
    pub(crate) fn sanitized(self) -> Self {
        let t1 = self.t1.max(MIN_T1);
        Self {
            t1,
            t2: self.t2.max(t1),
            t4: self.t4,
        }
    }

    /// 64·T1: Timers B, F, H, J, L, M and the 2xx retransmission window.
    pub(crate) fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D over an unreliable transport: at least 32 s, and never shorter than the window
    /// in which the server may still retransmit its final response (64·T1) when T1 is raised.
    pub(crate) fn timer_d(&self) -> Duration {
        TIMER_D_UNRELIABLE.max(self.transaction_timeout())
    }

    /// The next interval of a retransmission that doubles up to T2 (Timers E, G, 2xx).
    pub(crate) fn next_capped_interval(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2)
    }
}
