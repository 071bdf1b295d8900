//! Turning the monotonic instants call control runs on into the wall-clock times records carry.

use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// One instant known in both clocks; every other instant is placed relative to it. Copied
/// into each call, so a call builds its own records' times without asking the switch.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    instant_base: Instant,
    unix_base: u64,
}

impl WallClock {
    /// `instant` is `unix_secs` seconds after the Unix epoch.
    pub fn anchored(instant: Instant, unix_secs: u64) -> Self {
        Self {
            instant_base: instant,
            unix_base: unix_secs,
        }
    }

    /// The id of call `call`'s records, `sb-<start>-<call>`: the wall-clock second of the
    /// anchor (the switch's start) names the run, so ids stay unique across restarts.
    pub fn record_id(&self, call: u64) -> String {
        format!("sb-{}-{call}", self.unix_base)
    }

    /// The wall-clock time of `at`.
    pub fn at(&self, at: Instant) -> OffsetDateTime {
        let unix = if at >= self.instant_base {
            Duration::from_secs(self.unix_base) + (at - self.instant_base)
        } else {
            Duration::from_secs(self.unix_base).saturating_sub(self.instant_base - at)
        };
        OffsetDateTime::UNIX_EPOCH + unix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_either_side_of_the_anchor_land_the_same_distance_from_it() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let clock = WallClock::anchored(t0, 1_800_000_000);
        assert_eq!(clock.at(t0).unix_timestamp(), 1_800_000_000);
        assert_eq!(
            clock.at(t0 + Duration::from_secs(90)).unix_timestamp(),
            1_800_000_090
        );
        assert_eq!(
            clock.at(t0 - Duration::from_secs(30)).unix_timestamp(),
            1_799_999_970
        );
    }
}
