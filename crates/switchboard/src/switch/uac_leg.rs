//! A leg Switchboard places as the UAC (an agent attempt, a carrier INVITE, a callback's
//! agent preview or customer call, the consulted colleague, a supervisor rung from the API),
//! as one typed state machine:
//! `Calling → Ringing → Answered { dialog, ack } → ended`.
//!
//! Before this type each kind of leg carried its own `dialog: Option<Dialog>`,
//! `ack: Option<Bytes>` and `answered: Option<Instant>`, and each had its own hand-written
//! teardown (CANCEL when unanswered, BYE when answered). Here the three facts change together
//! in one place, and [`UacLeg::end`] is the only way a leg ends: it says what the switch must
//! send, so no caller can forget the CANCEL of an unanswered leg or BYE an unanswered one.

use sip::dialog::{Dialog, DialogError};
use sip::rsip::{Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// Where an outgoing leg stands.
#[derive(Debug)]
pub enum UacState {
    /// The INVITE is out; nothing beyond 100 Trying came back.
    Calling,
    /// The far end alerts (a provisional response above 100).
    Ringing,
    /// The far end answered; the dialog is formed and our ACK sent.
    Answered {
        /// The dialog with the far end (boxed: the other states are a word).
        dialog: Box<Dialog>,
        /// Our ACK for the 2xx, sent again for each retransmission of it.
        ack: bytes::Bytes,
        /// When the 2xx arrived.
        at: Instant,
    },
}

/// An INVITE Switchboard sent and the dialog it may form.
#[derive(Debug)]
pub struct UacLeg {
    /// The INVITE as sent (the dialog, the CANCEL and the CDR are built from it).
    pub invite: Request,
    /// Its client transaction.
    pub client_key: TransactionKey,
    /// Where it was sent.
    pub peer: Peer,
    /// When it was sent.
    pub started: Instant,
    state: UacState,
}

/// What ending a leg takes on the wire; the switch carries it out (`Switch::end_uac_leg`).
#[derive(Debug)]
pub enum LegEnding {
    /// Unanswered: cancel the INVITE's transaction (the CANCEL waits for a provisional
    /// response, RFC 3261 §9.1); a 2xx that still arrives is ACKed and hung up.
    Cancel(TransactionKey),
    /// Answered: this BYE goes to `peer`.
    Bye {
        /// The BYE, inside the leg's dialog.
        bye: Box<Request>,
        /// Where it goes.
        peer: Peer,
    },
}

/// A 2xx that arrived after the leg's transaction had its answer.
#[derive(Debug)]
pub enum Late2xx {
    /// The answer again (our ACK was lost): this ACK goes out again.
    Retransmission(sip::Transmit),
    /// A 2xx from another fork (another To tag; RFC 3261 §13.2.2.4), or for a leg that is
    /// not answered any more: ACK it and hang it up at once.
    OtherDialog,
}

/// Why a 2xx did not answer the leg.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The leg already has its dialog: this is a retransmission (re-ACK it) or a 2xx from a
    /// second fork (RFC 3261 §13.2.2.4: ACK and BYE it).
    #[error("leg already answered")]
    AlreadyAnswered,
    /// The 2xx cannot form a dialog (no To tag, no Contact …).
    #[error("2xx unusable: {0}")]
    Unusable(#[from] DialogError),
}

impl UacLeg {
    /// A leg whose INVITE was just sent on `client_key`.
    pub fn calling(invite: Request, client_key: TransactionKey, peer: Peer, now: Instant) -> Self {
        Self {
            invite,
            client_key,
            peer,
            started: now,
            state: UacState::Calling,
        }
    }

    /// The INVITE went out again as `invite` on `client_key` (a digest challenge answered):
    /// the leg is calling again, and keeps when it started.
    pub fn resent(&mut self, invite: Request, client_key: TransactionKey) {
        self.invite = invite;
        self.client_key = client_key;
        self.state = UacState::Calling;
    }

    /// The Call-ID Switchboard gave the INVITE.
    pub fn call_id(&self) -> &str {
        sip::headers::call_id_of(&self.invite.headers).unwrap_or_default()
    }

    /// Where the leg stands.
    pub fn state(&self) -> &UacState {
        &self.state
    }

    /// A provisional response above 100 arrived: the far end alerts.
    pub fn alerting(&mut self) {
        if matches!(self.state, UacState::Calling) {
            self.state = UacState::Ringing;
        }
    }

    /// The far end answered with `response` from `source`: forms the dialog and returns the
    /// ACK to send (`via` is our Via for it).
    pub fn answer(
        &mut self,
        now: Instant,
        response: &Response,
        source: Peer,
        via: &str,
    ) -> Result<Request, AnswerError> {
        if self.is_answered() {
            return Err(AnswerError::AlreadyAnswered);
        }
        let (dialog, ack) = Dialog::confirm_2xx(&self.invite, response, source, via)?;
        self.state = UacState::Answered {
            dialog: Box::new(dialog),
            ack: sip::message::encode_request(&ack),
            at: now,
        };
        Ok(ack)
    }

    /// The far end answered.
    pub fn is_answered(&self) -> bool {
        matches!(self.state, UacState::Answered { .. })
    }

    /// When the far end answered.
    pub fn answered_at(&self) -> Option<Instant> {
        match &self.state {
            UacState::Answered { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// The dialog, once answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        match &self.state {
            UacState::Answered { dialog, .. } => Some(dialog.as_ref()),
            _ => None,
        }
    }

    /// The dialog, once answered, to send requests in.
    pub fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        match &mut self.state {
            UacState::Answered { dialog, .. } => Some(dialog.as_mut()),
            _ => None,
        }
    }

    /// Our ACK for the 2xx and where it goes, to answer a retransmitted 2xx.
    pub fn ack(&self) -> Option<sip::Transmit> {
        match &self.state {
            UacState::Answered { dialog, ack, .. } => Some(sip::Transmit {
                peer: dialog.peer,
                data: ack.clone(),
            }),
            _ => None,
        }
    }

    /// What to do with a 2xx that came after the leg's answer (or after it was given up).
    pub fn late_2xx(&self, response: &Response) -> Late2xx {
        let tag = sip::headers::to_tag(&response.headers);
        match (&self.state, self.ack()) {
            (UacState::Answered { dialog, .. }, Some(ack))
                if tag.is_some() && tag == dialog.remote_tag.as_deref() =>
            {
                Late2xx::Retransmission(ack)
            }
            _ => Late2xx::OtherDialog,
        }
    }

    /// Ends the leg: what must go on the wire. `via` gives our Via for a BYE to a peer;
    /// `reason` is an RFC 3326 Reason header value for the BYE, when the reason is ours.
    pub fn end(self, via: impl FnOnce(Peer) -> String, reason: Option<&str>) -> LegEnding {
        match self.state {
            UacState::Calling | UacState::Ringing => LegEnding::Cancel(self.client_key),
            UacState::Answered { mut dialog, .. } => {
                let peer = dialog.peer;
                let mut bye = dialog.request(Method::Bye, &via(peer), None, None);
                if let Some(reason) = reason {
                    sip::message::push_header(&mut bye.headers, "Reason", reason);
                }
                LegEnding::Bye {
                    bye: Box::new(bye),
                    peer,
                }
            }
        }
    }
}

impl super::Switch {
    /// Answers a 2xx that came after `leg`'s answer: our ACK again for a retransmission, ACK
    /// and BYE for another fork's.
    pub(super) fn on_late_2xx(
        &mut self,
        now: Instant,
        leg: Late2xx,
        response: &Response,
        source: Peer,
    ) {
        match leg {
            Late2xx::Retransmission(ack) => self.pending_raw.push_back(ack),
            Late2xx::OtherDialog => self.hang_up_orphan(now, response, source),
        }
    }

    /// Carries out a leg's ending: the one place an outgoing leg's CANCEL or BYE is sent.
    pub(super) fn end_uac_leg(&mut self, now: Instant, ending: LegEnding) {
        match ending {
            LegEnding::Cancel(key) => {
                self.txn.cancel(now, &key);
                // Its INVITE's final answer may still come: a 2xx is then ACKed and hung up.
                self.client_txns
                    .insert(key, super::ClientPurpose::AbandonedInvite);
            }
            LegEnding::Bye { bye, peer } => {
                self.send_request(now, *bye, peer, super::ClientPurpose::Fire);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::rsip::SipMessage;
    use sip::Transport;

    const INVITE: &str = "INVITE sip:1001@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKleg1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:switchboard@127.0.0.1>;tag=ours\r\n\
To: <sip:1001@127.0.0.1>\r\n\
Call-ID: leg-1@switchboard\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:switchboard@127.0.0.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

    fn ok_2xx() -> Response {
        let text = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKleg1;rport\r\n\
From: <sip:switchboard@127.0.0.1>;tag=ours\r\n\
To: <sip:1001@127.0.0.1>;tag=phone\r\n\
Call-ID: leg-1@switchboard\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:1001@127.0.0.1:5070>\r\n\
Content-Length: 0\r\n\r\n";
        match SipMessage::try_from(text) {
            Ok(SipMessage::Response(response)) => response,
            other => panic!("fixture is a response: {other:?}"),
        }
    }

    fn leg(now: Instant) -> UacLeg {
        let invite = match SipMessage::try_from(INVITE) {
            Ok(SipMessage::Request(request)) => request,
            other => panic!("fixture is a request: {other:?}"),
        };
        let peer = Peer {
            addr: "127.0.0.1:5070"
                .parse::<std::net::SocketAddr>()
                .expect("addr"),
            transport: Transport::Udp,
        };
        let mut layer = sip::transaction::TransactionLayer::new(Default::default());
        let key = layer.send_request(now, invite.clone(), peer);
        UacLeg::calling(invite, key, peer, now)
    }

    fn via(_: Peer) -> String {
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye;rport".to_owned()
    }

    #[test]
    fn an_unanswered_leg_ends_with_a_cancel_of_its_invite_whether_calling_or_ringing() {
        let now = Instant::now();
        let calling = leg(now);
        let key = calling.client_key.clone();
        assert!(matches!(calling.end(via, None), LegEnding::Cancel(k) if k == key));
        let mut ringing = leg(now);
        ringing.alerting();
        assert!(matches!(ringing.state(), UacState::Ringing));
        assert!(ringing.dialog().is_none() && ringing.ack().is_none());
        assert!(matches!(ringing.end(via, None), LegEnding::Cancel(_)));
    }

    #[test]
    fn an_answered_leg_keeps_its_ack_and_ends_with_a_bye_in_its_dialog() {
        let t0 = Instant::now();
        let mut leg = leg(t0);
        leg.alerting();
        let at = t0 + std::time::Duration::from_secs(3);
        let ack = leg
            .answer(at, &ok_2xx(), leg.peer, &via(leg.peer))
            .expect("2xx answers");
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(leg.answered_at(), Some(at));
        assert!(leg.ack().is_some_and(|t| t.data.starts_with(b"ACK ")));
        // Alerting after the answer does not move the leg back.
        leg.alerting();
        assert!(leg.is_answered());
        // A second 2xx is not a second answer.
        assert!(matches!(
            leg.answer(at, &ok_2xx(), leg.peer, "SIP/2.0/UDP h;branch=z9hG4bKx"),
            Err(AnswerError::AlreadyAnswered)
        ));
        let LegEnding::Bye { bye, peer } =
            leg.end(via, Some("SIP;cause=408;text=\"media-timeout\""))
        else {
            panic!("an answered leg ends with a BYE");
        };
        assert_eq!(peer.addr.port(), 5070);
        let text = String::from_utf8_lossy(&sip::message::encode_request(&bye)).into_owned();
        assert!(text.starts_with("BYE sip:1001@127.0.0.1:5070 "), "{text}");
        assert!(
            text.contains("tag=phone") && text.contains("CSeq: 2 BYE"),
            "{text}"
        );
        assert!(text.contains("Reason: SIP;cause=408"), "{text}");
    }

    #[test]
    fn a_2xx_without_a_to_header_does_not_answer_the_leg() {
        let now = Instant::now();
        let mut leg = leg(now);
        let mut response = ok_2xx();
        let text = String::from_utf8_lossy(&sip::message::encode_response(&response))
            .replace("To: <sip:1001@127.0.0.1>;tag=phone\r\n", "");
        response = match SipMessage::try_from(text.as_str()) {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            leg.answer(now, &response, leg.peer, "SIP/2.0/UDP h;branch=z9hG4bKx"),
            Err(AnswerError::Unusable(_))
        ));
        assert!(!leg.is_answered());
    }
}
