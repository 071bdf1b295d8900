//! The generator's one time base: nanoseconds of the monotonic clock since the step began,
//! shared by the sender (stamps packets) and the receiver (reads them), so a packet's delay is
//! one subtraction within one process and one clock.

use std::time::Instant;

/// Monotonic nanoseconds since `base`.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    base: Instant,
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn start() -> MonotonicClock {
        MonotonicClock {
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the clock started (u64 covers 584 years).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
