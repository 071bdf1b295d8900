//! Client non-INVITE transaction: RFC 3261 §17.1.2.
//!
//! ```text
//! Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
//!    +--200-699----------------^
//!    +--Timer F (either state)--> Terminated (Timeout)
//! ```

use super::context::{Context, Lifecycle};
use super::event::TransactionEvent;
use super::finished::Finished;
use super::generated::encode_request;
use super::key::TransactionKey;
use super::provisional::ProvisionalLog;
use super::timers::{Timer, TimerSlots};
use crate::Peer;
use bytes::Bytes;
use rsip::{Request, Response};
use std::time::Duration;

/// States of a client non-INVITE transaction (Terminated ones are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
}

/// A client non-INVITE transaction.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    key: TransactionKey,
    state: ClientNonInviteState,
    destination: Peer,
    request: Bytes,
    /// Current Timer E interval.
    interval: Duration,
    provisionals: ProvisionalLog,
    pub timers: TimerSlots,
}

impl ClientNonInvite {
    /// Sends the request and enters Trying: Timer E (unreliable only) and Timer F.
    pub fn start(
        key: TransactionKey,
        request: &Request,
        destination: Peer,
        cx: &mut Context<'_>,
    ) -> Self {
        let mut txn = Self {
            key,
            state: ClientNonInviteState::Trying,
            destination,
            request: encode_request(request),
            interval: cx.config.t1,
            provisionals: ProvisionalLog::default(),
            timers: TimerSlots::default(),
        };
        cx.transmit(destination, &txn.request);
        if !destination.transport.is_reliable() {
            cx.arm(&mut txn.timers.retransmit, txn.interval, &txn.key, Timer::E);
        }
        let timeout = cx.config.transaction_timeout();
        cx.arm(&mut txn.timers.deadline, timeout, &txn.key, Timer::F);
        txn
    }

    /// Current state.
    #[cfg(test)]
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Where the request went.
    pub fn destination(&self) -> Peer {
        self.destination
    }

    /// The transport could not deliver to the destination: a transaction still waiting for
    /// its final response ends (RFC 3261 §17.1.2.2, figure 6).
    pub fn on_transport_error(&mut self, cx: &mut Context<'_>) -> Lifecycle {
        if self.state == ClientNonInviteState::Completed {
            return Lifecycle::Alive;
        }
        cx.emit(TransactionEvent::TransportError {
            key: self.key.clone(),
        });
        Lifecycle::Terminated
    }

    /// A response matched this transaction.
    pub fn on_response(
        &mut self,
        response: Response,
        source: Peer,
        cx: &mut Context<'_>,
    ) -> Lifecycle {
        use ClientNonInviteState::*;
        match (self.state, response.status_code.code()) {
            (Trying | Proceeding, 100..=199) => {
                // Timer E keeps running; from now on it fires every T2 (§17.1.2.2).
                self.state = Proceeding;
                if self.provisionals.first_sighting(&response) {
                    self.deliver(response, source, cx);
                }
                Lifecycle::Alive
            }
            (Trying | Proceeding, 200..=699) => {
                cx.disarm(&mut self.timers.retransmit);
                cx.disarm(&mut self.timers.deadline);
                self.state = Completed;
                self.deliver(response, source, cx);
                if self.destination.transport.is_reliable() {
                    return Lifecycle::Terminated;
                }
                let linger = cx.config.t4;
                cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::K);
                Lifecycle::Alive
            }
            _ => Lifecycle::Alive,
        }
    }

    fn deliver(&self, response: Response, source: Peer, cx: &mut Context<'_>) {
        cx.emit(TransactionEvent::Response {
            key: Some(self.key.clone()),
            response,
            source,
        });
    }

    /// What lingers in Completed: nothing but the key and its Timer K.
    pub fn finished(&self) -> Option<Finished> {
        (self.state == ClientNonInviteState::Completed)
            .then_some(Finished::CompletedNonInviteClient)
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) -> Lifecycle {
        use ClientNonInviteState::*;
        match (self.state, timer) {
            (Trying | Proceeding, Timer::E) => {
                cx.transmit(self.destination, &self.request);
                self.interval = if self.state == Trying {
                    cx.config.next_capped_interval(self.interval)
                } else {
                    cx.config.t2
                };
                cx.arm(
                    &mut self.timers.retransmit,
                    self.interval,
                    &self.key,
                    Timer::E,
                );
                Lifecycle::Alive
            }
            (Trying | Proceeding, Timer::F) => {
                cx.emit(TransactionEvent::Timeout {
                    key: self.key.clone(),
                });
                Lifecycle::Terminated
            }
            (Completed, Timer::K) => Lifecycle::Terminated,
            _ => Lifecycle::Alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::fixtures::*;
    use crate::transaction::{TransactionEvent, TransactionLayer};

    fn retransmission_offsets(layer: &mut TransactionLayer, t0: std::time::Instant) -> Vec<u64> {
        let mut offsets = Vec::new();
        while let Some(at) = layer.poll_timeout() {
            layer.handle_timeout(at);
            for _ in sent(layer) {
                offsets.push((at - t0).as_millis() as u64);
            }
        }
        offsets
    }

    #[test]
    fn timer_e_doubles_and_caps_at_t2_until_timer_f() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(OPTIONS), bob_udp());
        sent(&mut layer);
        assert_eq!(
            retransmission_offsets(&mut layer, t0),
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
        assert!(layer.is_empty());
    }

    #[test]
    fn proceeding_retransmits_every_t2() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(OPTIONS), bob_udp());
        sent(&mut layer);
        layer.handle_timeout(t0 + ms(500));
        sent(&mut layer);
        // 1xx between the first and second retransmission: the pending E (1500 ms) fires as
        // scheduled, then every T2.
        layer.handle_message(
            t0 + ms(600),
            incoming_response(&reply(OPTIONS, "100 Trying", None)),
            bob_udp(),
        );
        assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 100)]);
        assert_eq!(
            layer.client_non_invite_state(&key),
            Some(ClientNonInviteState::Proceeding)
        );
        let offsets = retransmission_offsets(&mut layer, t0);
        assert_eq!(&offsets[..3], &[1500, 5500, 9500]);
        assert_eq!(*offsets.last().expect("some"), 29500);
        assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
    }

    #[test]
    fn final_response_completes_then_timer_k() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(OPTIONS), bob_udp());
        sent(&mut layer);
        let ok = reply(OPTIONS, "200 OK", Some("x"));
        layer.handle_message(t0 + ms(40), incoming_response(&ok), bob_udp());
        layer.handle_message(t0 + ms(540), incoming_response(&ok), bob_udp());
        assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 200)]);
        assert_eq!(
            layer.client_non_invite_state(&key),
            Some(ClientNonInviteState::Completed)
        );
        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + ms(40) + std::time::Duration::from_secs(5))
        );
        layer.handle_timeout(t0 + ms(5040));
        assert!(
            sent(&mut layer).is_empty(),
            "no retransmission after the final"
        );
        assert!(layer.is_empty());
    }

    #[test]
    fn reliable_has_no_timer_e_and_no_timer_k() {
        let (mut layer, t0) = layer();
        let options = OPTIONS.replace("UDP", "TCP");
        layer.send_request(t0, request(&options), bob_tcp());
        assert_eq!(sent(&mut layer).len(), 1);
        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + std::time::Duration::from_secs(32))
        );
        layer.handle_message(
            t0 + ms(40),
            incoming_response(&reply(&options, "200 OK", Some("x"))),
            bob_tcp(),
        );
        assert!(layer.is_empty());
        assert_eq!(layer.poll_timeout(), None);
    }
}
