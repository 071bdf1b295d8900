//! A transaction whose work is done but that must linger until its last timer (D, I, J, K, L
//! or M) to absorb retransmissions. Tens of thousands of these exist at any moment under load
//! (a finished call leaves four for 5–32 s), so they keep only what answering a
//! retransmission needs: the last response's bytes and where they went, or the ACK's, plus
//! the To tag and dialog identifiers some matching rules need. No parsed message, no request.

use super::context::{Context, Lifecycle};
use super::error::TransactionError;
use super::event::TransactionEvent;
use super::key::TransactionKey;
use super::server_invite::AckDisposition;
use super::timers::TimerId;
use crate::Peer;
use bytes::Bytes;
use rsip::Response;

/// What a finished transaction was, and what it still answers.
#[derive(Debug)]
pub(crate) enum Finished {
    /// Server INVITE in Accepted whose 2xx has been ACKed (RFC 6026 §7.1): retransmitted
    /// INVITEs are absorbed, ACK retransmissions go to the TU, and the TU may still send
    /// another 2xx.
    AcceptedInviteServer {
        /// Where the INVITE came from and its default response destination: only a further
        /// 2xx from the TU needs them, so they are boxed to keep every remainder small.
        peers: Box<(Peer, Peer)>,
        to_tag: Option<Box<str>>,
        dialog: Option<(Box<str>, u32)>,
    },
    /// Server INVITE in Confirmed (§17.2.1): absorbs INVITE and ACK retransmissions.
    ConfirmedInviteServer { to_tag: Option<Box<str>> },
    /// Server non-INVITE in Completed (§17.2.2): each retransmitted request gets the final
    /// response again.
    CompletedNonInviteServer { reply: Bytes, peer: Peer },
    /// Client INVITE in Accepted (RFC 6026 §7.2): every 2xx goes to the TU, to be ACKed.
    AcceptedInviteClient,
    /// Client INVITE in Completed (§17.1.1.2): a retransmitted non-2xx final gets the ACK
    /// again; a 2xx from another fork goes to the TU.
    CompletedInviteClient { ack: Bytes, destination: Peer },
    /// Client non-INVITE in Completed (§17.1.2.2): response retransmissions are absorbed.
    CompletedNonInviteClient,
}

/// A finished transaction with the one timer that ends it.
#[derive(Debug)]
pub(crate) struct Lingering {
    pub what: Finished,
    pub deadline: Option<TimerId>,
}

impl Lingering {
    /// The request was retransmitted.
    pub fn on_retransmission(&self, cx: &mut Context<'_>) {
        if let Finished::CompletedNonInviteServer { reply, peer } = &self.what {
            cx.transmit(*peer, reply);
        }
    }

    /// An ACK matched by key: `None` if this is not a server INVITE (the ACK is then matched
    /// by dialog like any other).
    pub fn on_ack(&self) -> Option<AckDisposition> {
        match self.what {
            Finished::ConfirmedInviteServer { .. } => Some(AckDisposition::Absorb),
            Finished::AcceptedInviteServer { .. } => Some(AckDisposition::Deliver),
            _ => None,
        }
    }

    /// Whether an ACK with this To tag matches as the ACK of our 2xx (see
    /// `ServerInvite::awaits_ack_with`).
    pub fn awaits_ack_with(&self, theirs: Option<&str>) -> bool {
        match &self.what {
            Finished::AcceptedInviteServer { to_tag, .. } => match (theirs, to_tag.as_deref()) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            },
            _ => false,
        }
    }

    /// A server INVITE's To tag, for the 200 to a CANCEL.
    pub fn server_invite_to_tag(&self) -> Option<Option<&str>> {
        match &self.what {
            Finished::AcceptedInviteServer { to_tag, .. }
            | Finished::ConfirmedInviteServer { to_tag } => Some(to_tag.as_deref()),
            _ => None,
        }
    }

    /// Call-ID and CSeq number under which an accepted server INVITE is indexed.
    pub fn dialog_ack_id(&self) -> Option<(&str, u32)> {
        match &self.what {
            Finished::AcceptedInviteServer {
                dialog: Some((call_id, cseq)),
                ..
            } => Some((call_id, *cseq)),
            _ => None,
        }
    }

    /// Whether this was a client transaction (the layer answers TU calls accordingly).
    pub fn is_client(&self) -> bool {
        matches!(
            self.what,
            Finished::AcceptedInviteClient
                | Finished::CompletedInviteClient { .. }
                | Finished::CompletedNonInviteClient
        )
    }

    /// A response matched this (client) transaction.
    pub fn on_response(
        &self,
        key: &TransactionKey,
        response: Response,
        source: Peer,
        cx: &mut Context<'_>,
    ) {
        let code = response.status_code.code();
        let deliver = match (&self.what, code) {
            (Finished::AcceptedInviteClient, 200..=299)
            | (Finished::CompletedInviteClient { .. }, 200..=299) => true,
            (Finished::CompletedInviteClient { ack, destination }, 300..=699) => {
                cx.transmit(*destination, ack);
                false
            }
            _ => false,
        };
        if deliver {
            cx.emit(TransactionEvent::Response {
                key: Some(key.clone()),
                response,
                source,
            });
        }
    }

    /// The TU sends a response: only a further 2xx on an accepted INVITE is allowed (RFC
    /// 6026); it goes out, and retransmissions of the INVITE stay absorbed.
    pub fn send(
        &self,
        key: &TransactionKey,
        code: u16,
        bytes: &Bytes,
        destination_for: impl Fn(Peer, Peer) -> Peer,
        cx: &mut Context<'_>,
    ) -> Result<Lifecycle, TransactionError> {
        match (&self.what, code) {
            (Finished::AcceptedInviteServer { peers, .. }, 200..=299) => {
                let (source, response_destination) = **peers;
                cx.transmit(destination_for(source, response_destination), bytes);
                Ok(Lifecycle::Alive)
            }
            _ if self.is_client() => Err(TransactionError::NotServerTransaction(key.clone())),
            _ => Err(TransactionError::AlreadyFinal {
                key: key.clone(),
                status: code,
            }),
        }
    }
}
