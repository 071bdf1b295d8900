//! Where call control's randomness comes from: tags, Call-IDs, branches, the digest nonce
//! secret, SDP session ids, the recording sample and retry jitter.
//!
//! Injected rather than drawn from the thread's generator, so that a unit test of the call
//! core can seed it and get the same messages on every run (the deterministic race tests),
//! while the service seeds it from the operating system: tags, Call-IDs and branches must not
//! be guessable by someone on the path who would forge a CANCEL or BYE (RFC 3261 §19.3).

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::cell::RefCell;

/// A cryptographically strong generator (ChaCha) owned by call control. A `RefCell` so that
/// drawing an id needs only a shared borrow of the switch (ids are drawn in the middle of
/// handlers that hold other fields mutably); the switch runs on one task, so it never
/// contends.
#[derive(Debug)]
pub struct IdSource(RefCell<StdRng>);

impl IdSource {
    /// Seeded from the operating system: for the service.
    pub fn from_entropy() -> Self {
        Self(RefCell::new(StdRng::from_entropy()))
    }

    /// Seeded with `seed`: the same sequence every run (tests).
    pub fn seeded(seed: u64) -> Self {
        Self(RefCell::new(StdRng::seed_from_u64(seed)))
    }

    /// A From/To tag (64 random bits, hex).
    pub fn tag(&self) -> String {
        format!("{:016x}", self.0.borrow_mut().next_u64())
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&self) -> String {
        sip::transaction::branch_from(&mut *self.0.borrow_mut())
    }

    /// A 256-bit secret (the digest nonce key).
    pub fn secret(&self) -> [u8; 32] {
        let mut secret = [0u8; 32];
        self.0.borrow_mut().fill_bytes(&mut secret);
        secret
    }

    /// A number uniformly in `0..bound` (`bound` > 0).
    pub fn below(&self, bound: u64) -> u64 {
        self.0.borrow_mut().gen_range(0..bound.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::IdSource;

    #[test]
    fn a_seeded_source_repeats_and_different_seeds_differ() {
        let (a, b, c) = (
            IdSource::seeded(7),
            IdSource::seeded(7),
            IdSource::seeded(8),
        );
        let draw = |s: &IdSource| (s.tag(), s.branch(), s.secret(), s.below(100));
        let (first, second, other) = (draw(&a), draw(&b), draw(&c));
        assert_eq!(first, second);
        assert_ne!(first.0, other.0);
        assert!(
            first.1.starts_with("z9hG4bK") && first.1.len() == 23,
            "{}",
            first.1
        );
        assert_eq!(first.0.len(), 16);
        assert!(first.3 < 100);
    }

    #[test]
    fn successive_draws_differ() {
        let ids = IdSource::seeded(1);
        assert_ne!(ids.tag(), ids.tag());
        assert_ne!(ids.branch(), ids.branch());
    }
}
