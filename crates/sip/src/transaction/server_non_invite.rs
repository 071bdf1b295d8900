//! Server non-INVITE transaction: RFC 3261 §17.2.2.
//!
//! ```text
//! Trying --TU 1xx--> Proceeding --TU 200-699--> Completed --Timer J--> Terminated
//!    +--TU 200-699-----------------^
//! ```
//!
//! The RFC has no timer in Trying/Proceeding; a TU that never answers would leak the
//! transaction, so it is dropped after 64·T1, when the client's Timer F has long given up.

use super::context::{Context, Lifecycle};
use super::error::TransactionError;
use super::finished::Finished;
use super::key::TransactionKey;
use super::timers::{Timer, TimerSlots};
use crate::Peer;
use bytes::Bytes;

/// States of a server non-INVITE transaction (Terminated ones are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
}

/// A server non-INVITE transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    key: TransactionKey,
    state: ServerNonInviteState,
    /// Where the request came from; stream transports answer on this connection.
    source: Peer,
    reliable: bool,
    /// Default response destination computed from the request.
    response_destination: Peer,
    last_response: Option<(Bytes, Peer)>,
    pub timers: TimerSlots,
}

impl ServerNonInvite {
    /// A new request arrived: enter Trying.
    pub fn start(
        key: TransactionKey,
        source: Peer,
        response_destination: Peer,
        cx: &mut Context<'_>,
    ) -> Self {
        let mut txn = Self {
            key,
            state: ServerNonInviteState::Trying,
            source,
            reliable: source.transport.is_reliable(),
            response_destination,
            last_response: None,
            timers: TimerSlots::default(),
        };
        let give_up = cx.config.transaction_timeout();
        cx.arm(&mut txn.timers.deadline, give_up, &txn.key, Timer::Abandon);
        txn
    }

    /// Current state.
    #[cfg(test)]
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Where the request came from.
    pub fn source(&self) -> Peer {
        self.source
    }

    /// The default response destination computed from the request.
    pub fn response_destination(&self) -> Peer {
        self.response_destination
    }

    /// The request was retransmitted: repeat the last response, if any (§17.2.2).
    pub fn on_retransmission(&mut self, cx: &mut Context<'_>) {
        if let Some((bytes, peer)) = &self.last_response {
            cx.transmit(*peer, bytes);
        }
    }

    /// The TU (or the layer, for CANCEL) sends a response with status `code` (100–699).
    pub fn send(
        &mut self,
        code: u16,
        bytes: Bytes,
        destination: Peer,
        cx: &mut Context<'_>,
    ) -> Result<Lifecycle, TransactionError> {
        if self.state == ServerNonInviteState::Completed {
            return Err(TransactionError::AlreadyFinal {
                key: self.key.clone(),
                status: code,
            });
        }
        cx.transmit(destination, &bytes);
        self.last_response = Some((bytes, destination));
        if code < 200 {
            self.state = ServerNonInviteState::Proceeding;
            return Ok(Lifecycle::Alive);
        }
        self.state = ServerNonInviteState::Completed;
        if self.reliable {
            return Ok(Lifecycle::Terminated);
        }
        let linger = cx.config.transaction_timeout();
        cx.arm(&mut self.timers.deadline, linger, &self.key, Timer::J);
        Ok(Lifecycle::Alive)
    }

    /// What lingers in Completed: the final response and where it went.
    pub fn finished(&mut self) -> Option<Finished> {
        match (self.state, &self.last_response) {
            (ServerNonInviteState::Completed, Some((reply, peer))) => {
                Some(Finished::CompletedNonInviteServer {
                    // Shared, not copied: encoded messages are exact-size.
                    reply: reply.clone(),
                    peer: *peer,
                })
            }
            _ => None,
        }
    }

    /// A timer of this transaction fired.
    pub fn on_timer(&mut self, timer: Timer, _cx: &mut Context<'_>) -> Lifecycle {
        match (self.state, timer) {
            (ServerNonInviteState::Completed, Timer::J) => Lifecycle::Terminated,
            (ServerNonInviteState::Trying | ServerNonInviteState::Proceeding, Timer::Abandon) => {
                Lifecycle::Terminated
            }
            _ => Lifecycle::Alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::fixtures::*;
    use crate::transaction::TransactionError;
    use std::time::Duration;

    #[test]
    fn retransmissions_repeat_the_last_response_and_timer_j_ends_it() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(BYE), alice_udp());
        let key = single_request_key(&mut layer);
        assert_eq!(
            layer.server_non_invite_state(&key),
            Some(ServerNonInviteState::Trying)
        );

        // Trying: nothing to repeat yet, and the TU does not see it twice.
        layer.handle_message(t0 + ms(500), incoming_request(BYE), alice_udp());
        assert!(sent(&mut layer).is_empty());
        assert!(events(&mut layer).is_empty());

        layer
            .send_response(
                t0 + ms(600),
                &key,
                response(&reply(BYE, "100 Trying", None)),
            )
            .expect("1xx");
        assert_eq!(
            layer.server_non_invite_state(&key),
            Some(ServerNonInviteState::Proceeding)
        );
        layer.handle_message(t0 + ms(700), incoming_request(BYE), alice_udp());
        let out = sent(&mut layer);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, out[1].data);

        layer
            .send_response(
                t0 + ms(800),
                &key,
                response(&reply(BYE, "200 OK", Some("a6c85cf"))),
            )
            .expect("final");
        let ok = sent(&mut layer);
        layer.handle_message(t0 + ms(1500), incoming_request(BYE), alice_udp());
        assert_eq!(sent(&mut layer)[0].data, ok[0].data);
        assert!(events(&mut layer).is_empty());
        assert!(matches!(
            layer.send_response(
                t0 + ms(1600),
                &key,
                response(&reply(BYE, "500 Late", Some("a")))
            ),
            Err(TransactionError::AlreadyFinal { status: 500, .. })
        ));

        assert_eq!(
            layer.poll_timeout(),
            Some(t0 + ms(800) + Duration::from_secs(32)),
            "Timer J = 64*T1"
        );
        layer.handle_timeout(t0 + ms(800) + Duration::from_secs(32));
        assert!(layer.is_empty());
    }

    #[test]
    fn reliable_final_terminates_at_once() {
        let (mut layer, t0) = layer();
        let bye = BYE.replace("UDP", "TCP");
        layer.handle_message(t0, incoming_request(&bye), alice_tcp());
        let key = single_request_key(&mut layer);
        layer
            .send_response(t0, &key, response(&reply(&bye, "200 OK", Some("a"))))
            .expect("final");
        assert_eq!(sent(&mut layer)[0].peer, alice_tcp());
        assert!(layer.is_empty());
        assert!(matches!(
            layer.send_response(t0, &key, response(&reply(&bye, "200 OK", Some("a")))),
            Err(TransactionError::UnknownTransaction(_))
        ));
    }

    #[test]
    fn an_unanswered_request_is_dropped_after_64_t1() {
        let (mut layer, t0) = layer();
        layer.handle_message(t0, incoming_request(BYE), alice_udp());
        single_request_key(&mut layer);
        layer.handle_timeout(t0 + Duration::from_secs(32));
        assert!(layer.is_empty());
        assert!(sent(&mut layer).is_empty());
    }
}
