//! A token bucket per source address in front of the transaction layer (like Kamailio's
//! pike): each source may send `rate` requests a second with bursts of `burst`; past that its
//! requests are dropped before they create any state or get any answer.
//!
//! At most `max_tracked` buckets are kept; a new source beyond that evicts the oldest-inserted
//! one. An evicted bucket comes back full, which is what an idle source has anyway; a flood
//! of spoofed sources can therefore not be rate-limited per source (nothing can), but it
//! cannot grow memory either, and the stateless path keeps its answers one per request.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

/// Limits for [`RateLimiter`].
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained requests per second per source.
    pub rate: f64,
    /// Requests a source may send at once before the rate applies.
    pub burst: f64,
    /// Cap on tracked sources.
    pub max_tracked: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rate: 50.0,
            burst: 100.0,
            max_tracked: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-source token buckets. Time is passed in.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: HashMap<IpAddr, Bucket>,
    order: VecDeque<IpAddr>,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Takes one token for a request from `addr`; `false` means it is over its rate.
    pub fn allow(&mut self, addr: IpAddr, now: Instant) -> bool {
        let RateLimitConfig { rate, burst, .. } = self.config;
        if let Some(bucket) = self.buckets.get_mut(&addr) {
            let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
            bucket.last = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return true;
            }
            return false;
        }
        while self.buckets.len() >= self.config.max_tracked.max(1) {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.buckets.remove(&oldest);
        }
        self.buckets.insert(
            addr,
            Bucket {
                tokens: burst - 1.0,
                last: now,
            },
        );
        self.order.push_back(addr);
        burst >= 1.0
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn limiter(max_tracked: usize) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            rate: 10.0,
            burst: 20.0,
            max_tracked,
        })
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut limiter = limiter(16);
        let passed = (0..50).filter(|_| limiter.allow(ip(2), t0)).count();
        assert_eq!(passed, 20, "the burst");
        // Half a second later five more tokens (10/s) have accrued.
        let later = t0 + Duration::from_millis(500);
        let passed = (0..50).filter(|_| limiter.allow(ip(2), later)).count();
        assert_eq!(passed, 5);
        assert!(
            limiter.allow(ip(3), later),
            "another source has its own bucket"
        );
    }

    #[test]
    fn a_steady_source_at_the_rate_is_never_dropped() {
        let t0 = Instant::now();
        let mut limiter = limiter(16);
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(100 * i);
            assert!(limiter.allow(ip(2), now), "request {i}");
        }
    }

    #[test]
    fn the_table_is_capped_by_evicting_the_oldest_source() {
        let t0 = Instant::now();
        let mut limiter = limiter(8);
        for _ in 0..20 {
            limiter.allow(ip(1), t0);
        }
        assert!(!limiter.allow(ip(1), t0), "source 1 spent its burst");
        for source in 2..100 {
            limiter.allow(ip(source), t0);
        }
        assert_eq!(limiter.tracked(), 8);
        assert!(
            limiter.allow(ip(1), t0),
            "evicted: it comes back with a full bucket"
        );
    }
}
