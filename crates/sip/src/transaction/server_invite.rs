//! Server INVITE transaction: RFC 3261 §17.2.1 with the Accepted state of RFC 6026 §7.1.
//!
//! ```text
//! Proceeding --TU 2xx--> Accepted (2xx resent until ACK) --Timer L--> Terminated
//!     |                                         (AckTimeout if no ACK by then)
//!     +--TU 300-699--> Completed --ACK--> Confirmed --Timer I--> Terminated
//!                          +--Timer H--> Terminated (AckTimeout)
//! ```
//!
//! Beyond the RFC state machine the layer retransmits the 2xx itself (a UAS core duty in
//! §13.3.1.4) so the TU does not need timers of its own, and sends 100 Trying when the TU has
//! not answered within 200 ms (§17.2.1).

use super::context::{Context, Lifecycle};
use super::error::TransactionError;
use super::event::TransactionEvent;
use super::fields;
use super::finished::Finished;
use super::generated::encode_trying;
use super::key::TransactionKey;
use super::timers::{Timer, TimerSlots};
use crate::Peer;
use bytes::Bytes;
use rsip::{Request, Response};
use std::time::Duration;

/// §17.2.1: 100 Trying goes out unless the TU answers within 200 ms.
const TRYING_DELAY: Duration = Duration::from_millis(200);

/// States of a server INVITE transaction (Terminated ones are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// What happens to an ACK that matched a server INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckDisposition {
    /// The ACK of a non-2xx final (or a stray one): the transaction swallows it.
    Absorb,
    /// The ACK of our 2xx: it belongs to the dialog, so the TU gets it.
    Deliver,
}

/// A server INVITE transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    key: TransactionKey,
    state: ServerInviteState,
    /// Where the INVITE came from; stream transports answer on this connection.
    source: Peer,
    reliable: bool,
    /// 100 Trying, pre-built so retransmissions and the 200 ms timer can send it.
    trying: Bytes,
    /// The last response sent and where it went, for retransmissions.
    last_response: Option<(Bytes, Peer)>,
    /// Default response destination computed from the INVITE.
    response_destination: Peer,
    /// The To tag of our responses: a 2xx's ACK and the 200 to a CANCEL must carry it.
    to_tag: Option<String>,
    /// Call-ID and CSeq number, to match the 2xx's ACK, which has a branch of its own.
    call_id: Option<String>,
    cseq: Option<u32>,
    ack_received: bool,
    /// Current Timer G / 2xx retransmission interval.
    interval: Duration,
    pub timers: TimerSlots,
}

impl ServerInvite {
    /// A new INVITE arrived: enter Proceeding and start the 100 Trying delay.
    pub fn start(
        key: TransactionKey,
        request: &Request,
        source: Peer,
        response_destination: Peer,
        cx: &mut Context<'_>,
    ) -> Self {
        let trying = encode_trying(&request.headers);
        let mut txn = Self {
            key,
            state: ServerInviteState::Proceeding,
            source,
            reliable: source.transport.is_reliable(),
            trying,
            last_response: None,
            response_destination,
            to_tag: None,
            call_id: fields::call_id(&request.headers).map(str::to_owned),
            cseq: fields::cseq(&request.headers).map(|(n, _)| n),
            ack_received: false,
            interval: cx.config.t1,
            timers: TimerSlots::default(),
        };
        cx.arm(
            &mut txn.timers.trying,
            TRYING_DELAY,
            &txn.key,
            Timer::Trying,
        );
        txn
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Whether no final response has been sent yet (a CANCEL still has an effect).
    pub fn is_proceeding(&self) -> bool {
        self.state == ServerInviteState::Proceeding
    }

    /// The To tag our responses carry, once the TU has sent one with a tag.
    pub fn to_tag(&self) -> Option<&str> {
        self.to_tag.as_deref()
    }

    /// Where the INVITE came from.
    pub fn source(&self) -> Peer {
        self.source
    }

    /// The default response destination computed from the INVITE.
    pub fn response_destination(&self) -> Peer {
        self.response_destination
    }

    /// Call-ID and CSeq number of the INVITE, the dialog ACK index key.
    pub fn dialog_ack_id(&self) -> Option<(&str, u32)> {
        Some((self.call_id.as_deref()?, self.cseq?))
    }

    /// Whether an ACK with this To tag is the ACK of our 2xx. A missing tag on either side
    /// is not held against it: Call-ID and CSeq already single the dialog out.
    pub fn awaits_ack_with(&self, to_tag: Option<&str>) -> bool {
        self.state == ServerInviteState::Accepted
            && match (to_tag, self.to_tag.as_deref()) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            }
    }

    /// The INVITE was retransmitted.
    pub fn on_retransmission(&mut self, cx: &mut Context<'_>) {
        match self.state {
            ServerInviteState::Proceeding => match &self.last_response {
                Some((bytes, peer)) => cx.transmit(*peer, bytes),
                // The client is retransmitting, so it needs a 100 now rather than in 200 ms.
                None => self.send_trying(cx),
            },
            ServerInviteState::Completed => {
                if let Some((bytes, peer)) = &self.last_response {
                    cx.transmit(*peer, bytes);
                }
            }
            // Confirmed: absorbed (§17.2.1). Accepted: absorbed, never passed up (RFC 6026
            // §7.1); our own 2xx retransmission timer covers a lost 2xx.
            ServerInviteState::Confirmed | ServerInviteState::Accepted => {}
        }
    }

    fn send_trying(&mut self, cx: &mut Context<'_>) {
        cx.disarm(&mut self.timers.trying);
        cx.transmit(self.response_destination, &self.trying);
        self.last_response = Some((self.trying.clone(), self.response_destination));
    }

    /// An ACK matched this transaction, by key (non-2xx ACK) or by dialog (2xx ACK).
    pub fn on_ack(&mut self, cx: &mut Context<'_>) -> (AckDisposition, Lifecycle) {
        match self.state {
            ServerInviteState::Completed => {
                cx.disarm(&mut self.timers.retransmit);
                cx.disarm(&mut self.timers.deadline);
                self.state = ServerInviteState::Confirmed;
                if self.reliable || cx.config.t4.is_zero() {
                    return (AckDisposition::Absorb, Lifecycle::Terminated);
                }
                let linger = cx.config.t4;
                cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::I);
                (AckDisposition::Absorb, Lifecycle::Alive)
            }
            ServerInviteState::Accepted => {
                // Stop resending the 2xx but stay until Timer L to absorb INVITE retransmissions.
                self.ack_received = true;
                cx.disarm(&mut self.timers.retransmit);
                (AckDisposition::Deliver, Lifecycle::Alive)
            }
            ServerInviteState::Proceeding | ServerInviteState::Confirmed => {
                (AckDisposition::Absorb, Lifecycle::Alive)
            }
        }
    }

    /// The TU sends `response` (already validated as 100–699 and encoded) to `destination`.
    pub fn send(
        &mut self,
        response: &Response,
        bytes: Bytes,
        destination: Peer,
        cx: &mut Context<'_>,
    ) -> Result<Lifecycle, TransactionError> {
        use ServerInviteState::*;
        let code = response.status_code.code();
        match (self.state, code) {
            (Proceeding, _) | (Accepted, 200..=299) => {}
            _ => {
                return Err(TransactionError::AlreadyFinal {
                    key: self.key.clone(),
                    status: code,
                })
            }
        }
        cx.disarm(&mut self.timers.trying);
        if let Some(tag) = fields::to_tag(&response.headers) {
            self.to_tag = Some(tag.to_owned());
        }
        cx.transmit(destination, &bytes);
        self.last_response = Some((bytes, destination));
        match (self.state, code) {
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.interval = cx.config.t1;
                if !self.reliable {
                    let interval = self.interval;
                    cx.arm(
                        &mut self.timers.retransmit,
                        interval,
                        &self.key,
                        Timer::Retransmit2xx,
                    );
                }
                let linger = cx.config.transaction_timeout();
                cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::L);
            }
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.interval = cx.config.t1;
                if !self.reliable {
                    let interval = self.interval;
                    cx.arm(&mut self.timers.retransmit, interval, &self.key, Timer::G);
                }
                let timeout = cx.config.transaction_timeout();
                cx.arm(&mut self.timers.deadline, timeout, &self.key, Timer::H);
            }
            // A provisional in Proceeding, or another 2xx in Accepted (RFC 6026 lets the TU
            // resend): the newest one is what later retransmissions repeat.
            _ => {}
        }
        Ok(Lifecycle::Alive)
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, timer: Timer, cx: &mut Context<'_>) -> Lifecycle {
        use ServerInviteState::*;
        match (self.state, timer) {
            (Proceeding, Timer::Trying) => {
                if self.last_response.is_none() {
                    self.send_trying(cx);
                }
                Lifecycle::Alive
            }
            (Completed, Timer::G) => {
                self.retransmit(Timer::G, cx);
                Lifecycle::Alive
            }
            (Accepted, Timer::Retransmit2xx) if !self.ack_received => {
                self.retransmit(Timer::Retransmit2xx, cx);
                Lifecycle::Alive
            }
            (Completed, Timer::H) => {
                cx.emit(TransactionEvent::AckTimeout {
                    key: self.key.clone(),
                });
                Lifecycle::Terminated
            }
            (Accepted, Timer::L) => {
                if !self.ack_received {
                    cx.emit(TransactionEvent::AckTimeout {
                        key: self.key.clone(),
                    });
                }
                Lifecycle::Terminated
            }
            (Confirmed, Timer::I) => Lifecycle::Terminated,
            _ => Lifecycle::Alive,
        }
    }

    /// What lingers once the work is done: in Confirmed, or in Accepted after the ACK.
    pub fn finished(&mut self) -> Option<Finished> {
        match self.state {
            ServerInviteState::Confirmed => Some(Finished::ConfirmedInviteServer {
                to_tag: self.to_tag.take().map(String::into_boxed_str),
            }),
            ServerInviteState::Accepted if self.ack_received => {
                Some(Finished::AcceptedInviteServer {
                    peers: Box::new((self.source, self.response_destination)),
                    to_tag: self.to_tag.take().map(String::into_boxed_str),
                    dialog: self
                        .call_id
                        .take()
                        .zip(self.cseq)
                        .map(|(call_id, cseq)| (call_id.into_boxed_str(), cseq)),
                })
            }
            _ => None,
        }
    }

    fn retransmit(&mut self, timer: Timer, cx: &mut Context<'_>) {
        if let Some((bytes, peer)) = &self.last_response {
            cx.transmit(*peer, bytes);
        }
        self.interval = cx.config.next_capped_interval(self.interval);
        let interval = self.interval;
        cx.arm(&mut self.timers.retransmit, interval, &self.key, timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::fixtures::*;
    use crate::transaction::TransactionEvent;
    use std::time::Duration;

    #[test]
    fn invite_is_delivered_once_and_retransmissions_get_the_last_provisional() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0 + ms(10),
                &key,
                response(&reply(INVITE, "180 Ringing", Some("a6c85cf"))),
            )
            .expect("send 180");
        let ringing = sent(&mut layer);
        assert_eq!(ringing.len(), 1);
        assert_eq!(ringing[0].peer, alice_response_peer());

        layer.handle_message(t0 + ms(500), incoming_request(INVITE), alice_udp());
        assert!(events(&mut layer).is_empty(), "retransmission absorbed");
        let again = sent(&mut layer);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data, ringing[0].data);
    }

    #[test]
    fn trying_is_sent_after_200ms_without_an_answer() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        assert_eq!(layer.poll_timeout(), Some(t0 + ms(200)));
        layer.handle_timeout(t0 + ms(200));
        let trying = sent(&mut layer);
        assert_eq!(trying.len(), 1);
        let trying = parsed_response(&trying[0]);
        assert_eq!(trying.status_code.code(), 100);
        assert_eq!(
            header_of(&trying.headers, "To"),
            vec!["Bob <sip:bob@biloxi.com>"],
            "no tag on 100"
        );
        assert_eq!(layer.poll_timeout(), None, "Proceeding has no timer");
        assert_eq!(
            layer.server_invite_state(&key),
            Some(ServerInviteState::Proceeding)
        );
    }

    #[test]
    fn an_early_answer_suppresses_the_100() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0 + ms(50),
                &key,
                response(&reply(INVITE, "180 Ringing", Some("t"))),
            )
            .expect("send");
        sent(&mut layer);
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn non_2xx_is_retransmitted_with_timer_g_until_timer_h() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0,
                &key,
                response(&reply(INVITE, "486 Busy Here", Some("t"))),
            )
            .expect("send");
        assert_eq!(sent(&mut layer).len(), 1);
        let mut offsets = Vec::new();
        let mut now = t0;
        while let Some(at) = layer.poll_timeout() {
            now = at;
            layer.handle_timeout(at);
            for t in sent(&mut layer) {
                assert_eq!(t.peer, alice_response_peer());
                offsets.push((at - t0).as_millis());
            }
        }
        assert_eq!(
            offsets,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(now - t0, Duration::from_secs(32));
        assert_eq!(
            events(&mut layer),
            vec![TransactionEvent::AckTimeout { key }]
        );
        assert!(layer.is_empty());
    }

    #[test]
    fn ack_confirms_then_timer_i_terminates() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0,
                &key,
                response(&reply(INVITE, "486 Busy Here", Some("t"))),
            )
            .expect("send");
        sent(&mut layer);
        layer.handle_timeout(t0 + ms(500));
        assert_eq!(sent(&mut layer).len(), 1, "one G retransmission");

        let ack = non_2xx_ack(INVITE, "t");
        layer.handle_message(t0 + ms(600), incoming_request(&ack), alice_udp());
        assert!(
            events(&mut layer).is_empty(),
            "the ACK of a non-2xx is absorbed"
        );
        assert_eq!(
            layer.server_invite_state(&key),
            Some(ServerInviteState::Confirmed)
        );
        layer.handle_message(t0 + ms(700), incoming_request(&ack), alice_udp());
        layer.handle_message(t0 + ms(800), incoming_request(INVITE), alice_udp());
        assert!(events(&mut layer).is_empty());
        assert!(
            sent(&mut layer).is_empty(),
            "Confirmed absorbs ACK and INVITE, G stopped"
        );
        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + ms(600) + Duration::from_secs(5))
        );
        layer.handle_timeout(t0 + ms(5600));
        assert!(layer.is_empty());
        assert!(events(&mut layer).is_empty(), "no AckTimeout after an ACK");
    }

    #[test]
    fn reliable_non_2xx_is_not_retransmitted_and_ack_terminates_at_once() {
        let (mut layer, t0) = layer();
        let invite = INVITE.replace("UDP", "TCP");
        layer.handle_message(t0, incoming_request(&invite), alice_tcp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0,
                &key,
                response(&reply(&invite, "404 Not Found", Some("t"))),
            )
            .expect("send");
        let out = sent(&mut layer);
        assert_eq!(out[0].peer, alice_tcp(), "same connection");
        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + Duration::from_secs(32)),
            "only Timer H"
        );
        layer.handle_message(
            t0 + ms(20),
            incoming_request(&non_2xx_ack(&invite, "t")),
            alice_tcp(),
        );
        assert!(layer.is_empty(), "Timer I is zero over TCP");
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn accepted_retransmits_2xx_until_the_ack_and_delivers_the_ack() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        let ok = reply(INVITE, "200 OK", Some("a6c85cf"));
        layer
            .send_response(t0, &key, response(&ok))
            .expect("send 200");
        assert_eq!(sent(&mut layer).len(), 1);
        assert_eq!(
            layer.server_invite_state(&key),
            Some(ServerInviteState::Accepted)
        );

        for (at, count) in [(500, 1), (1500, 1), (3500, 1)] {
            layer.handle_timeout(t0 + ms(at));
            let out = sent(&mut layer);
            assert_eq!(out.len(), count, "2xx retransmission at {at} ms");
            assert!(out[0].data.starts_with(b"SIP/2.0 200"));
        }
        // A retransmitted INVITE in Accepted is absorbed, not passed up.
        layer.handle_message(t0 + ms(3600), incoming_request(INVITE), alice_udp());
        assert!(events(&mut layer).is_empty());
        assert!(sent(&mut layer).is_empty());

        // The ACK has a new branch; it matches by Call-ID + CSeq + To tag.
        let ack = ack_2xx(INVITE, "a6c85cf", "z9hG4bK2xxack");
        layer.handle_message(t0 + ms(4000), incoming_request(&ack), alice_udp());
        let delivered = events(&mut layer);
        assert!(
            matches!(&delivered[..], [TransactionEvent::Request { key: None, request, .. }]
            if request.method == rsip::Method::Ack)
        );
        layer.handle_timeout(t0 + ms(7500));
        assert!(
            sent(&mut layer).is_empty(),
            "retransmission stopped by the ACK"
        );

        // Timer L ends it quietly.
        assert_eq!(layer.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        layer.handle_timeout(t0 + Duration::from_secs(32));
        assert!(events(&mut layer).is_empty());
        assert!(layer.is_empty());
    }

    #[test]
    fn an_ack_with_another_to_tag_does_not_stop_the_2xx() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(t0, &key, response(&reply(INVITE, "200 OK", Some("ours"))))
            .expect("send");
        sent(&mut layer);
        layer.handle_message(
            t0 + ms(100),
            incoming_request(&ack_2xx(INVITE, "theirs", "z9hG4bKx")),
            alice_udp(),
        );
        assert_eq!(events(&mut layer).len(), 1, "still delivered to the TU");
        layer.handle_timeout(t0 + ms(500));
        assert_eq!(sent(&mut layer).len(), 1, "2xx still retransmitted");
    }

    #[test]
    fn unacked_2xx_gives_ack_timeout_at_64_t1() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(t0, &key, response(&reply(INVITE, "200 OK", Some("t"))))
            .expect("send");
        sent(&mut layer);
        let mut offsets = Vec::new();
        while let Some(at) = layer.poll_timeout() {
            layer.handle_timeout(at);
            offsets.extend(sent(&mut layer).iter().map(|_| (at - t0).as_millis()));
        }
        assert_eq!(
            offsets,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(
            events(&mut layer),
            vec![TransactionEvent::AckTimeout { key }]
        );
        assert!(layer.is_empty());
    }

    #[test]
    fn sending_after_the_final_is_an_error() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(INVITE), alice_udp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(
                t0,
                &key,
                response(&reply(INVITE, "486 Busy Here", Some("t"))),
            )
            .expect("send");
        let err = layer.send_response(t0, &key, response(&reply(INVITE, "200 OK", Some("t"))));
        assert!(matches!(
            err,
            Err(crate::transaction::TransactionError::AlreadyFinal { status: 200, .. })
        ));
        let err = layer.send_response(t0, &key, response(&reply(INVITE, "180 Ringing", Some("t"))));
        assert!(err.is_err());
        // A second 2xx in Accepted is fine (RFC 6026), a non-2xx is not.
        layer.handle_message(
            t0,
            incoming_request(&INVITE.replace("nashds8", "second")),
            alice_udp(),
        );
        let second = single_request_key(&mut layer);
        layer
            .send_response(t0, &second, response(&reply(INVITE, "200 OK", Some("t"))))
            .expect("first 2xx");
        layer
            .send_response(t0, &second, response(&reply(INVITE, "200 OK", Some("t"))))
            .expect("second 2xx");
        assert!(layer
            .send_response(t0, &second, response(&reply(INVITE, "500 Oops", Some("t"))))
            .is_err());
    }
}
