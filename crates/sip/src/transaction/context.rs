//! What a transaction state machine may do while it handles one input: send bytes, report an
//! event to the TU, and start or stop its own timers. Borrowed from the layer for one call.

use super::config::TimerConfig;
use super::event::TransactionEvent;
use super::key::TransactionKey;
use super::timers::{Timer, TimerId, TimerQueue};
use crate::{Peer, Transmit};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Whether a transaction lives on after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Alive,
    /// Reached the Terminated state: the layer removes it and cancels its timers.
    Terminated,
}

/// The outputs a state machine writes to, plus the current time and configuration.
pub(crate) struct Context<'a> {
    pub now: Instant,
    pub config: &'a TimerConfig,
    pub timers: &'a mut TimerQueue,
    pub transmits: &'a mut VecDeque<Transmit>,
    pub events: &'a mut VecDeque<TransactionEvent>,
}

impl Context<'_> {
    /// Queues bytes for the I/O layer. `Bytes` clones share one buffer, so retransmitting never
    /// re-serializes.
    pub fn transmit(&mut self, peer: Peer, data: &Bytes) {
        self.transmits.push_back(Transmit {
            peer,
            data: data.clone(),
        });
    }

    /// Reports an event to the TU.
    pub fn emit(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }

    /// (Re)starts the timer in `slot`, replacing whatever it held.
    pub fn arm(
        &mut self,
        slot: &mut Option<TimerId>,
        delay: Duration,
        key: &TransactionKey,
        timer: Timer,
    ) {
        self.disarm(slot);
        *slot = self.timers.schedule(self.now, delay, key, timer);
    }

    /// Stops the timer in `slot`, if any.
    pub fn disarm(&mut self, slot: &mut Option<TimerId>) {
        if let Some(id) = slot.take() {
            self.timers.cancel(id);
        }
    }
}
