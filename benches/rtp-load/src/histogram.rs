//! Microsecond histograms for one-way delay and sender lateness: exact to 1 µs up to one
//! second, so percentiles need no stored samples and no sort.

/// Values at or above this many microseconds are counted together.
const LIMIT_US: usize = 1_000_000;

/// A count of values per microsecond.
#[derive(Debug, Clone)]
pub struct MicrosHistogram {
    buckets: Vec<u32>,
    overflow: u64,
    count: u64,
    max_us: u64,
}

impl Default for MicrosHistogram {
    fn default() -> Self {
        MicrosHistogram {
            buckets: vec![0; LIMIT_US],
            overflow: 0,
            count: 0,
            max_us: 0,
        }
    }
}

impl MicrosHistogram {
    /// Counts one value.
    pub fn record(&mut self, micros: u64) {
        self.count += 1;
        self.max_us = self.max_us.max(micros);
        match usize::try_from(micros)
            .ok()
            .and_then(|i| self.buckets.get_mut(i))
        {
            Some(bucket) => *bucket = bucket.saturating_add(1),
            None => self.overflow += 1,
        }
    }

    /// Largest value counted.
    pub fn max(&self) -> u64 {
        self.max_us
    }

    /// The smallest value at or below which `percent` % of the values lie (nearest-rank),
    /// capped at one second; `None` when empty.
    pub fn percentile(&self, percent: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        // The epsilon keeps 99.9 % of 1000 at rank 999: 0.999 * 1000 is not exact in binary.
        let rank = ((percent / 100.0) * self.count as f64 - 1e-9)
            .ceil()
            .max(1.0) as u64;
        let mut seen = 0u64;
        for (micros, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(micros as u64);
            }
        }
        Some(LIMIT_US as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut histogram = MicrosHistogram::default();
        assert_eq!(histogram.percentile(50.0), None);
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        assert_eq!(histogram.count, 1000);
        assert_eq!(histogram.percentile(50.0), Some(500));
        assert_eq!(histogram.percentile(99.0), Some(990));
        assert_eq!(histogram.percentile(99.9), Some(999));
        assert_eq!(histogram.percentile(100.0), Some(1000));
        assert_eq!(histogram.max(), 1000);
    }

    #[test]
    fn values_past_the_limit_are_capped() {
        let mut histogram = MicrosHistogram::default();
        histogram.record(10);
        histogram.record(5_000_000);
        assert_eq!(histogram.percentile(50.0), Some(10));
        assert_eq!(histogram.percentile(100.0), Some(LIMIT_US as u64));
        assert_eq!(histogram.max(), 5_000_000);
    }
}
