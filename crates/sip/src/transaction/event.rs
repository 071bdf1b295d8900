//! What the transaction layer reports to the transaction user (TU).

use super::key::TransactionKey;
use crate::Peer;

/// Something the TU must act on, taken with `TransactionLayer::poll_event` in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A request that starts a new server transaction (`key` Some). `key` is None for an ACK
    /// (a 2xx's ACK is transaction-less; an ACK for a non-2xx is absorbed and never shows up
    /// here) and for a request too malformed to key (no usable top Via, CSeq or Call-ID): the
    /// TU should answer that one statelessly (`send_stateless` to `response_destination`).
    Request {
        /// The server transaction to answer on with `send_response`.
        key: Option<TransactionKey>,
        /// The request, its top Via already stamped with `received`/`rport`.
        request: rsip::Request,
        /// Where it came from.
        source: Peer,
    },
    /// A CANCEL matched a server INVITE transaction still in Proceeding. The layer has already
    /// answered the CANCEL with 200 OK; the TU must now send a final (normally 487) on `invite`.
    Cancelled {
        /// The INVITE's server transaction.
        invite: TransactionKey,
        /// The CANCEL request, as received and stamped.
        cancel: rsip::Request,
    },
    /// A response for a client transaction (`key` Some), or a response matching no transaction
    /// (`key` None, e.g. a 2xx retransmission after the client INVITE transaction ended: the TU
    /// re-sends its ACK). Retransmitted provisional and non-2xx final responses are absorbed;
    /// in the client INVITE's Accepted state (RFC 6026) every 2xx is delivered.
    Response {
        /// The client transaction, if the response matched one.
        key: Option<TransactionKey>,
        /// The response.
        response: rsip::Response,
        /// Where it came from.
        source: Peer,
    },
    /// A client transaction got no final response: Timer B (INVITE), Timer F (non-INVITE), or
    /// 64·T1 after a CANCEL of an INVITE that never got a final (RFC 3261 §9.1). Treat as 408.
    Timeout {
        /// The client transaction that gave up.
        key: TransactionKey,
    },
    /// The transport could not carry the client transaction's request (a TCP or TLS connection
    /// to its destination could not be opened): the transaction ended at once rather than at
    /// Timer B/F. RFC 3261 §17.1.4: treat as 503 (Service Unavailable).
    TransportError {
        /// The client transaction that ended.
        key: TransactionKey,
    },
    /// The layer sent the CANCEL the TU asked for with `TransactionLayer::cancel` (at once, or
    /// when the first provisional response allowed it). Its answer arrives as a `Response`
    /// with `key`.
    CancelSent {
        /// The CANCEL's own client transaction.
        key: TransactionKey,
    },
    /// A server INVITE's final response was never ACKed: Timer H for a non-2xx, 64·T1 for a
    /// 2xx. The TU should end the dialog.
    AckTimeout {
        /// The server INVITE transaction.
        key: TransactionKey,
    },
}
