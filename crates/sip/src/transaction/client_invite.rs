//! Client INVITE transaction: RFC 3261 §17.1.1 with the Accepted state of RFC 6026 §7.2.
//!
//! ```text
//! Calling --1xx--> Proceeding --2xx--> Accepted --Timer M--> Terminated
//!    |  \______________|_____2xx_________^
//!    |                 |
//!    +--300-699--------+--300-699--> Completed (ACK sent) --Timer D--> Terminated
//!    +--Timer B--> Terminated (Timeout)
//! ```

use super::context::{Context, Lifecycle};
use super::event::TransactionEvent;
use super::finished::Finished;
use super::generated::{encode_request, AckTemplate};
use super::key::TransactionKey;
use super::provisional::ProvisionalLog;
use super::timers::{Timer, TimerSlots};
use crate::Peer;
use bytes::Bytes;
use rsip::{Request, Response};
use std::time::Duration;

/// States of a client INVITE transaction (Terminated ones are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

/// A client INVITE transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    key: TransactionKey,
    state: ClientInviteState,
    destination: Peer,
    request: Bytes,
    /// Current Timer A interval.
    interval: Duration,
    /// Boxed: it is only needed on a non-2xx final and would double the size of every
    /// transaction slot in the layer's map.
    ack_template: Box<AckTemplate>,
    /// The ACK sent for the non-2xx final, re-sent for each retransmission of that final.
    ack: Option<Bytes>,
    provisionals: ProvisionalLog,
    /// The TU asked for this INVITE to be cancelled.
    cancel: CancelState,
    pub timers: TimerSlots,
}

/// Where the TU's request to cancel the INVITE stands (RFC 3261 §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelState {
    NotRequested,
    /// Requested before any provisional response: the CANCEL waits for one.
    Pending,
    Sent,
}

impl ClientInvite {
    /// Sends the INVITE and enters Calling: Timer A (unreliable only) and Timer B.
    pub fn start(
        key: TransactionKey,
        request: &Request,
        destination: Peer,
        cx: &mut Context<'_>,
    ) -> Self {
        let mut txn = Self {
            key,
            state: ClientInviteState::Calling,
            destination,
            request: encode_request(request),
            interval: cx.config.t1,
            ack_template: Box::new(AckTemplate::from_invite(request)),
            ack: None,
            provisionals: ProvisionalLog::default(),
            cancel: CancelState::NotRequested,
            timers: TimerSlots::default(),
        };
        cx.transmit(destination, &txn.request);
        if !destination.transport.is_reliable() {
            cx.arm(&mut txn.timers.retransmit, txn.interval, &txn.key, Timer::A);
        }
        let timeout = cx.config.transaction_timeout();
        cx.arm(&mut txn.timers.deadline, timeout, &txn.key, Timer::B);
        txn
    }

    /// Current state.
    #[cfg(test)]
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// Where the INVITE went.
    pub fn destination(&self) -> Peer {
        self.destination
    }

    /// No final response has arrived yet.
    pub fn is_cancellable(&self) -> bool {
        matches!(
            self.state,
            ClientInviteState::Calling | ClientInviteState::Proceeding
        )
    }

    /// The transport could not deliver to the destination. Only a Calling INVITE ends
    /// (RFC 3261 §17.1.1.2, figure 5): once a response came back the request was delivered,
    /// and a later failed connection concerns other messages.
    pub fn on_transport_error(&mut self, cx: &mut Context<'_>) -> Lifecycle {
        if self.state != ClientInviteState::Calling {
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
        use ClientInviteState::*;
        let code = response.status_code.code();
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                if self.state == Calling {
                    // §17.1.1.2: stop retransmitting; Timer B only guards Calling.
                    cx.disarm(&mut self.timers.retransmit);
                    cx.disarm(&mut self.timers.deadline);
                    self.state = Proceeding;
                }
                if self.provisionals.first_sighting(&response) {
                    self.deliver(response, source, cx);
                }
                Lifecycle::Alive
            }
            (Calling | Proceeding, 200..=299) => {
                cx.disarm(&mut self.timers.retransmit);
                self.state = Accepted;
                let linger = cx.config.transaction_timeout();
                cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::M);
                self.deliver(response, source, cx);
                Lifecycle::Alive
            }
            (Calling | Proceeding, 300..=699) => {
                cx.disarm(&mut self.timers.retransmit);
                let ack = encode_request(&self.ack_template.ack_for(&response));
                cx.transmit(self.destination, &ack);
                self.ack = Some(ack);
                self.state = Completed;
                self.deliver(response, source, cx);
                self.linger(cx)
            }
            // RFC 6026 §7.2: every 2xx in Accepted goes up so the TU can ACK it (forks too).
            (Accepted, 200..=299) => {
                self.deliver(response, source, cx);
                Lifecycle::Alive
            }
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    cx.transmit(self.destination, ack);
                }
                Lifecycle::Alive
            }
            // A 2xx after a non-2xx final can only come from another fork; the TU must see it
            // to ACK and BYE that leg.
            (Completed, 200..=299) => {
                self.deliver(response, source, cx);
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

    /// Timer D: only over unreliable transports, reliable ones terminate at once.
    fn linger(&mut self, cx: &mut Context<'_>) -> Lifecycle {
        if self.destination.transport.is_reliable() {
            return Lifecycle::Terminated;
        }
        let linger = cx.config.timer_d();
        cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::D);
        Lifecycle::Alive
    }

    /// The TU wants the INVITE cancelled. The CANCEL to send now (the INVITE is Proceeding),
    /// or `None`: it is sent as soon as a provisional response arrives (§9.1 forbids it
    /// before), or never when a final response already came.
    pub fn request_cancel(&mut self) -> Option<Request> {
        match (self.cancel, self.state) {
            (CancelState::NotRequested, ClientInviteState::Calling) => {
                self.cancel = CancelState::Pending;
                None
            }
            (CancelState::NotRequested | CancelState::Pending, ClientInviteState::Proceeding) => {
                self.cancel = CancelState::Sent;
                Some(self.ack_template.cancel())
            }
            _ => None,
        }
    }

    /// A CANCEL requested earlier that is due now (a provisional response has arrived).
    pub fn due_cancel(&mut self) -> Option<Request> {
        if self.cancel == CancelState::Pending && self.state == ClientInviteState::Proceeding {
            self.cancel = CancelState::Sent;
            return Some(self.ack_template.cancel());
        }
        None
    }

    /// The TU sent a CANCEL for this INVITE. §9.1: if no final arrives within 64·T1 the
    /// transaction is considered cancelled and destroyed. Without this an INVITE stuck in
    /// Proceeding (no Timer B there) would live forever.
    pub fn on_cancel_sent(&mut self, cx: &mut Context<'_>) {
        if self.state == ClientInviteState::Proceeding && self.timers.deadline.is_none() {
            let guard = cx.config.transaction_timeout();
            cx.arm(
                &mut self.timers.deadline,
                guard,
                &self.key,
                Timer::CancelGuard,
            );
        }
    }

    /// What lingers once a final response arrived: for a non-2xx, the ACK to repeat.
    pub fn finished(&mut self) -> Option<Finished> {
        match self.state {
            ClientInviteState::Accepted => Some(Finished::AcceptedInviteClient),
            ClientInviteState::Completed => {
                self.ack
                    .as_ref()
                    .map(|ack| Finished::CompletedInviteClient {
                        // Shared, not copied: encoded messages are exact-size.
                        ack: ack.clone(),
                        destination: self.destination,
                    })
            }
            ClientInviteState::Calling | ClientInviteState::Proceeding => None,
        }
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) -> Lifecycle {
        use ClientInviteState::*;
        match (self.state, timer) {
            (Calling, Timer::A) => {
                cx.transmit(self.destination, &self.request);
                // Timer A doubles without the T2 cap (§17.1.1.2), unlike E and G.
                self.interval = self.interval.saturating_mul(2);
                cx.arm(
                    &mut self.timers.retransmit,
                    self.interval,
                    &self.key,
                    Timer::A,
                );
                Lifecycle::Alive
            }
            (Calling, Timer::B) | (Proceeding, Timer::CancelGuard) => {
                cx.emit(TransactionEvent::Timeout {
                    key: self.key.clone(),
                });
                Lifecycle::Terminated
            }
            (Completed, Timer::D) | (Accepted, Timer::M) => Lifecycle::Terminated,
            _ => Lifecycle::Alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::fixtures::*;
    use crate::transaction::{TransactionEvent, TransactionLayer};
    use std::time::Duration;

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b_at_32s() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(INVITE), bob_udp());
        assert_eq!(sent(&mut layer).len(), 1);

        let mut retransmits = Vec::new();
        let mut now = t0;
        while let Some(at) = layer.poll_timeout() {
            now = at;
            layer.handle_timeout(now);
            for t in sent(&mut layer) {
                assert_eq!(t.peer, bob_udp());
                assert!(t.data.starts_with(b"INVITE sip:bob@biloxi.com"));
                retransmits.push(now - t0);
            }
        }
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(retransmits, ms(&[500, 1500, 3500, 7500, 15500, 31500]));
        assert_eq!(now - t0, Duration::from_secs(32));
        assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
        assert_eq!(layer.len(), 0);
    }

    #[test]
    fn reliable_transport_never_retransmits() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(&INVITE.replace("UDP", "TCP")), bob_tcp());
        assert_eq!(sent(&mut layer).len(), 1);
        assert_eq!(layer.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        layer.handle_timeout(t0 + Duration::from_secs(32));
        assert!(sent(&mut layer).is_empty());
        assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
        assert!(layer.is_empty());
    }

    #[test]
    fn provisional_stops_retransmission_and_timer_b() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(INVITE), bob_udp());
        sent(&mut layer);
        layer.handle_message(
            t0 + ms(100),
            incoming_response(&reply(INVITE, "180 Ringing", Some("a6c85cf"))),
            bob_udp(),
        );
        assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 180)]);
        assert_eq!(layer.poll_timeout(), None, "no timer in Proceeding");
        assert_eq!(state_of(&layer, &key), Some(ClientInviteState::Proceeding));

        // The same 180 again is absorbed; a 183 is new.
        layer.handle_message(
            t0 + ms(200),
            incoming_response(&reply(INVITE, "180 Ringing", Some("a6c85cf"))),
            bob_udp(),
        );
        layer.handle_message(
            t0 + ms(300),
            incoming_response(&reply(INVITE, "183 Session Progress", Some("a6c85cf"))),
            bob_udp(),
        );
        assert_eq!(response_codes(&mut layer), vec![(Some(key), 183)]);
    }

    #[test]
    fn non_2xx_final_generates_ack_and_absorbs_retransmissions() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(INVITE), bob_udp());
        sent(&mut layer);
        let busy = reply(INVITE, "486 Busy Here", Some("a6c85cf"));
        layer.handle_message(t0 + ms(700), incoming_response(&busy), bob_udp());
        assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 486)]);

        let acks = sent(&mut layer);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].peer, bob_udp());
        let ack = parsed_request(&acks[0]);
        assert_eq!(ack.method, rsip::Method::Ack);
        assert_eq!(ack.uri.to_string(), "sip:bob@biloxi.com");
        assert_eq!(
            header(&ack, "Via"),
            vec!["SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8"]
        );
        assert_eq!(
            header(&ack, "To"),
            vec!["Bob <sip:bob@biloxi.com>;tag=a6c85cf"]
        );
        assert_eq!(
            header(&ack, "From"),
            vec!["Alice <sip:alice@atlanta.com>;tag=1928301774"]
        );
        assert_eq!(header(&ack, "Call-ID"), vec!["a84b4c76e66710"]);
        assert_eq!(header(&ack, "CSeq"), vec!["314159 ACK"]);
        assert_eq!(header(&ack, "Route"), vec!["<sip:p1.example.com;lr>"]);
        assert_eq!(state_of(&layer, &key), Some(ClientInviteState::Completed));

        // Retransmitted final: the same ACK again, nothing for the TU.
        layer.handle_message(t0 + ms(1200), incoming_response(&busy), bob_udp());
        let again = sent(&mut layer);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data, acks[0].data);
        assert!(events(&mut layer).is_empty());

        // Timer D: 32 s after the final, then gone; no INVITE retransmission in between.
        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + ms(700) + Duration::from_secs(32))
        );
        layer.handle_timeout(t0 + ms(700) + Duration::from_secs(32));
        assert!(sent(&mut layer).is_empty());
        assert!(layer.is_empty());
    }

    #[test]
    fn non_2xx_over_tcp_terminates_immediately() {
        let (mut layer, t0) = layer();
        let invite = INVITE.replace("UDP", "TCP");
        layer.send_request(t0, request(&invite), bob_tcp());
        sent(&mut layer);
        layer.handle_message(
            t0 + ms(10),
            incoming_response(&reply(&invite, "603 Decline", Some("x"))),
            bob_tcp(),
        );
        assert_eq!(sent(&mut layer).len(), 1, "the ACK");
        assert!(layer.is_empty(), "Timer D is zero over TCP");
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn accepted_delivers_every_2xx_then_timer_m() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(INVITE), bob_udp());
        sent(&mut layer);
        let ok = reply(INVITE, "200 OK", Some("a6c85cf"));
        layer.handle_message(t0 + ms(600), incoming_response(&ok), bob_udp());
        layer.handle_message(t0 + ms(1100), incoming_response(&ok), bob_udp());
        layer.handle_message(
            t0 + ms(1200),
            incoming_response(&reply(INVITE, "200 OK", Some("fork2"))),
            bob_udp(),
        );
        // Retransmitted 1xx or late non-2xx are absorbed in Accepted.
        layer.handle_message(
            t0 + ms(1300),
            incoming_response(&reply(INVITE, "180 Ringing", Some("a6c85cf"))),
            bob_udp(),
        );
        layer.handle_message(
            t0 + ms(1400),
            incoming_response(&reply(INVITE, "486 Busy Here", Some("z"))),
            bob_udp(),
        );
        assert_eq!(
            response_codes(&mut layer),
            vec![
                (Some(key.clone()), 200),
                (Some(key.clone()), 200),
                (Some(key.clone()), 200)
            ]
        );
        assert!(sent(&mut layer).is_empty(), "the layer never ACKs a 2xx");
        assert_eq!(state_of(&layer, &key), Some(ClientInviteState::Accepted));

        // Timer M = 64*T1 after the first 2xx; afterwards a 2xx is a stray for the TU to re-ACK.
        layer.handle_timeout(t0 + ms(600) + Duration::from_secs(32));
        assert!(layer.is_empty());
        layer.handle_message(
            t0 + Duration::from_secs(40),
            incoming_response(&ok),
            bob_udp(),
        );
        assert_eq!(response_codes(&mut layer), vec![(None, 200)]);
    }

    #[test]
    fn cancel_guard_ends_an_invite_stuck_in_proceeding() {
        let (mut layer, t0) = layer();
        let key = layer.send_request(t0, request(INVITE), bob_udp());
        layer.handle_message(
            t0 + ms(100),
            incoming_response(&reply(INVITE, "180 Ringing", Some("a"))),
            bob_udp(),
        );
        events(&mut layer);
        let cancel = INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("314159 INVITE", "314159 CANCEL");
        let cancel_key =
            layer.send_request(t0 + Duration::from_secs(10), request(&cancel), bob_udp());
        assert_ne!(cancel_key, key);
        assert_eq!(layer.len(), 2);
        // The CANCEL is answered; the INVITE never gets its 487.
        layer.handle_message(
            t0 + Duration::from_secs(10) + ms(50),
            incoming_response(&reply(&cancel, "200 OK", Some("a"))),
            bob_udp(),
        );
        assert_eq!(response_codes(&mut layer), vec![(Some(cancel_key), 200)]);
        let mut now = t0;
        while let Some(at) = layer.poll_timeout() {
            now = at;
            layer.handle_timeout(now);
        }
        assert_eq!(now, t0 + Duration::from_secs(42), "64*T1 after the CANCEL");
        assert_eq!(events(&mut layer), vec![TransactionEvent::Timeout { key }]);
        assert!(layer.is_empty());
    }

    fn state_of(layer: &TransactionLayer, key: &TransactionKey) -> Option<ClientInviteState> {
        layer.client_invite_state(key)
    }
}
