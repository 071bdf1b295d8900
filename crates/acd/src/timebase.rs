//! Turns `Instant`s handed in by the caller into integers the ordered indexes can sort on,
//! without ever reading the clock: the first instant seen becomes zero.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The origin of the ACD's integer time line (microseconds, signed).
#[derive(Debug, Default)]
pub(crate) struct TimeBase {
    origin: OnceLock<Instant>,
}

impl TimeBase {
    /// Microseconds from the origin to `at`; negative when `at` is earlier than the origin.
    pub(crate) fn micros(&self, at: Instant) -> i64 {
        let origin = *self.origin.get_or_init(|| at);
        match at.checked_duration_since(origin) {
            Some(after) => duration_micros(after),
            None => -duration_micros(origin.saturating_duration_since(at)),
        }
    }
}

/// A duration in whole microseconds, saturating at `i64::MAX` (about 292,000 years).
pub(crate) fn duration_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_instant_is_zero_and_order_is_kept() {
        let base = TimeBase::default();
        let t0 = Instant::now() + Duration::from_secs(10);
        assert_eq!(base.micros(t0), 0);
        assert_eq!(base.micros(t0 + Duration::from_millis(3)), 3_000);
        assert_eq!(base.micros(t0 - Duration::from_secs(2)), -2_000_000);
    }
}
