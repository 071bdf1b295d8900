//! The pool of RTP/RTCP port pairs Switchboard anchors media on.
//!
//! All pairs are listed once at start-up (even RTP port, RTCP on the next odd port, RFC 3550
//! §11). Released pairs go to the back of the queue, so a port is reused as late as possible
//! and stray packets from a finished call are unlikely to reach the next one.

use std::collections::VecDeque;

/// An even RTP port and its RTCP port (`rtp + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair {
    rtp: u16,
}

impl PortPair {
    /// The (even) RTP port.
    pub fn rtp(self) -> u16 {
        self.rtp
    }

    /// The RTCP port, always `rtp + 1`.
    pub fn rtcp(self) -> u16 {
        self.rtp + 1
    }
}

/// Why the pool could not be built or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortPoolError {
    /// The configured range holds no complete even/odd pair.
    #[error("port range {first}-{last} holds no even/odd port pair")]
    EmptyRange {
        /// First port of the range.
        first: u16,
        /// Last port of the range (inclusive).
        last: u16,
    },
    /// Every pair is in use.
    #[error("all {capacity} RTP port pairs are in use")]
    Exhausted {
        /// Pairs in the pool.
        capacity: usize,
    },
    /// A pair was released that the pool did not hand out.
    #[error("port pair {0} was not allocated from this pool")]
    NotAllocated(u16),
}

/// A preallocated pool of port pairs in `first..=last`.
#[derive(Debug, Clone)]
pub struct PortPool {
    free: VecDeque<PortPair>,
    in_use: Vec<bool>,
    base: u16,
}

impl PortPool {
    /// Builds the pool for the inclusive range `first..=last` (e.g. 20000–29999).
    pub fn new(first: u16, last: u16) -> Result<PortPool, PortPoolError> {
        let start = first
            .checked_add(first % 2)
            .ok_or(PortPoolError::EmptyRange { first, last })?;
        let free: VecDeque<PortPair> = (u32::from(start)..u32::from(last))
            .step_by(2)
            // `p < last <= u16::MAX`, so `p` fits in u16 and `p + 1 <= last`.
            .filter_map(|p| u16::try_from(p).ok())
            .map(|rtp| PortPair { rtp })
            .collect();
        if free.is_empty() {
            return Err(PortPoolError::EmptyRange { first, last });
        }
        let in_use = vec![false; free.len()];
        Ok(PortPool {
            free,
            in_use,
            base: start,
        })
    }

    /// Pairs in the pool.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Pairs free now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes the least recently released pair.
    pub fn allocate(&mut self) -> Result<PortPair, PortPoolError> {
        let pair = self.free.pop_front().ok_or(PortPoolError::Exhausted {
            capacity: self.capacity(),
        })?;
        if let Some(slot) = self.slot(pair.rtp) {
            self.in_use[slot] = true;
        }
        Ok(pair)
    }

    /// Takes the least recently released pair that `wanted` accepts among the next
    /// `within` free ones, else the least recently released pair (so the pool never refuses
    /// because of the preference). Call control keeps a call's pairs on one media worker
    /// this way ([`crate::worker_of`]).
    pub fn allocate_preferring(
        &mut self,
        wanted: impl Fn(PortPair) -> bool,
        within: usize,
    ) -> Result<PortPair, PortPoolError> {
        let preferred = self.free.iter().take(within).position(|pair| wanted(*pair));
        let pair = match preferred.and_then(|index| self.free.remove(index)) {
            Some(pair) => pair,
            None => self.free.pop_front().ok_or(PortPoolError::Exhausted {
                capacity: self.capacity(),
            })?,
        };
        if let Some(slot) = self.slot(pair.rtp) {
            self.in_use[slot] = true;
        }
        Ok(pair)
    }

    /// Returns a pair to the pool. Releasing twice or releasing a foreign pair is an error
    /// (and changes nothing), so a bookkeeping bug cannot hand one port to two calls.
    pub fn release(&mut self, pair: PortPair) -> Result<(), PortPoolError> {
        match self.slot(pair.rtp) {
            Some(slot) if self.in_use[slot] => {
                self.in_use[slot] = false;
                self.free.push_back(pair);
                Ok(())
            }
            _ => Err(PortPoolError::NotAllocated(pair.rtp)),
        }
    }

    fn slot(&self, rtp: u16) -> Option<usize> {
        let offset = rtp.checked_sub(self.base)?;
        let slot = usize::from(offset / 2);
        (offset % 2 == 0 && slot < self.in_use.len()).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_odd_and_inside_the_range() {
        let mut pool = PortPool::new(20001, 20010).expect("range has pairs");
        assert_eq!(pool.capacity(), 4); // 20002, 20004, 20006, 20008 (20010 has no 20011)
        let pairs: Vec<PortPair> = (0..4)
            .map(|_| pool.allocate().expect("free pair"))
            .collect();
        for pair in &pairs {
            assert_eq!(pair.rtp() % 2, 0);
            assert_eq!(pair.rtcp(), pair.rtp() + 1);
            assert!(pair.rtp() >= 20002 && pair.rtcp() <= 20010);
        }
    }

    #[test]
    fn exhaustion_and_release() {
        let mut pool = PortPool::new(20000, 20003).expect("two pairs");
        let a = pool.allocate().expect("first");
        let b = pool.allocate().expect("second");
        assert_eq!(
            pool.allocate(),
            Err(PortPoolError::Exhausted { capacity: 2 })
        );
        pool.release(a).expect("a was allocated");
        assert_eq!(pool.release(a), Err(PortPoolError::NotAllocated(a.rtp())));
        assert_eq!(pool.allocate(), Ok(a));
        pool.release(b).expect("b was allocated");
        assert_eq!(pool.available(), 1);
    }

    #[test]
    fn released_ports_are_reused_last() {
        let mut pool = PortPool::new(20000, 20005).expect("three pairs");
        let first = pool.allocate().expect("free");
        pool.release(first).expect("allocated");
        assert_ne!(
            pool.allocate().expect("free"),
            first,
            "fresh pairs come before the one just released"
        );
    }

    #[test]
    fn a_preferred_pair_is_taken_when_one_is_near_the_front() {
        let mut pool = PortPool::new(20000, 20011).expect("six pairs");
        let even_class = |pair: PortPair| (pair.rtp() / 2).is_multiple_of(2);
        let first = pool.allocate().expect("free"); // 20000
        let preferred = pool.allocate_preferring(even_class, 4).expect("free");
        assert_eq!(
            preferred.rtp(),
            20004,
            "20002 skipped, it stays at the front"
        );
        assert_eq!(pool.allocate().map(PortPair::rtp), Ok(20002));
        // None within reach: the front pair, never a refusal.
        let none = |_: PortPair| false;
        assert_eq!(
            pool.allocate_preferring(none, 4).map(PortPair::rtp),
            Ok(20006)
        );
        assert_eq!(pool.available(), 2);
        pool.release(first).expect("allocated");
        pool.release(preferred)
            .expect("allocated, not lost by the preference");
        assert_eq!(pool.available(), 4);
        let mut empty = PortPool::new(20000, 20001).expect("one pair");
        empty.allocate().expect("free");
        assert_eq!(
            empty.allocate_preferring(even_class, 4),
            Err(PortPoolError::Exhausted { capacity: 1 })
        );
    }

    #[test]
    fn foreign_and_bad_ranges_are_errors() {
        let mut pool = PortPool::new(20000, 20003).expect("two pairs");
        assert!(pool.release(PortPair { rtp: 30000 }).is_err());
        assert!(pool.release(PortPair { rtp: 20001 }).is_err());
        assert!(PortPool::new(20000, 20000).is_err());
        assert!(PortPool::new(65535, 65535).is_err());
        assert_eq!(PortPool::new(65534, 65535).map(|p| p.capacity()), Ok(1));
        assert_eq!(PortPool::new(20000, 29999).map(|p| p.capacity()), Ok(5000));
    }
}
