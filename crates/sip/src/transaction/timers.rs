//! The single ordered timer queue shared by all transactions.
//!
//! One `BTreeMap` keyed by (deadline, sequence number) holds every pending timer, so the next
//! deadline is the first entry and cancelling is a keyed removal: no per-timer objects, no
//! scanning, and no stale entries that would make the I/O loop wake up for nothing.

use super::key::TransactionKey;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Identifies one scheduled timer; unique because of the sequence number.
pub(crate) type TimerId = (Instant, u64);

/// Which RFC 3261 / RFC 6026 timer fired. The letters are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Client INVITE request retransmission (doubles without cap).
    A,
    /// Client INVITE gave up waiting for any response.
    B,
    /// Client INVITE lingers in Completed to absorb final-response retransmissions.
    D,
    /// Client non-INVITE request retransmission (doubles up to T2).
    E,
    /// Client non-INVITE gave up waiting for a final response.
    F,
    /// Client non-INVITE lingers in Completed.
    K,
    /// Server INVITE non-2xx final response retransmission.
    G,
    /// Server INVITE gave up waiting for the ACK to its non-2xx final.
    H,
    /// Server INVITE lingers in Confirmed to absorb ACK retransmissions.
    I,
    /// Server non-INVITE lingers in Completed.
    J,
    /// Server INVITE lingers in Accepted (RFC 6026); also the end of the 2xx ACK wait.
    L,
    /// Client INVITE lingers in Accepted (RFC 6026).
    M,
    /// Server INVITE: the TU has not answered within 200 ms, send 100 Trying (§17.2.1).
    Trying,
    /// Server INVITE in Accepted: retransmit the 2xx until the ACK arrives (§13.3.1.4).
    Retransmit2xx,
    /// Client INVITE was CANCELled but no final came within 64·T1 (§9.1).
    CancelGuard,
    /// Server non-INVITE the TU never answered: after 64·T1 the client has given up (Timer F).
    Abandon,
}

/// All pending timers, ordered by deadline.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    entries: BTreeMap<TimerId, (TransactionKey, Timer)>,
    next_seq: u64,
}

impl TimerQueue {
    /// Schedules `timer` for `key` at `now + delay`. `None` if that instant is not
    /// representable (an absurd configured T1), in which case the timer simply never fires.
    pub fn schedule(
        &mut self,
        now: Instant,
        delay: Duration,
        key: &TransactionKey,
        timer: Timer,
    ) -> Option<TimerId> {
        let at = now.checked_add(delay)?;
        let id = (at, self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(id, (key.clone(), timer));
        Some(id)
    }

    /// Removes a pending timer; a no-op if it already fired.
    pub fn cancel(&mut self, id: TimerId) {
        self.entries.remove(&id);
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|((at, _), _)| *at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, TransactionKey, Timer)> {
        let entry = self.entries.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let id = *entry.key();
        let (key, timer) = entry.remove();
        Some((id, key, timer))
    }

    /// Number of pending timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The timers one transaction may have running at once: a retransmission, a deadline, and for
/// server INVITEs the 100 Trying delay.
#[derive(Debug, Default)]
pub(crate) struct TimerSlots {
    pub retransmit: Option<TimerId>,
    pub deadline: Option<TimerId>,
    pub trying: Option<TimerId>,
}

impl TimerSlots {
    /// Clears whichever slot held a timer that has just fired.
    pub fn forget(&mut self, id: TimerId) {
        for slot in [&mut self.retransmit, &mut self.deadline, &mut self.trying] {
            if *slot == Some(id) {
                *slot = None;
            }
        }
    }

    /// Cancels every running timer, for a transaction that is going away.
    pub fn cancel_all(&mut self, queue: &mut TimerQueue) {
        for slot in [&mut self.retransmit, &mut self.deadline, &mut self.trying] {
            if let Some(id) = slot.take() {
                queue.cancel(id);
            }
        }
    }
}
