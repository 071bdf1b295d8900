//! A connection Switchboard opened could not be opened (refused, unreachable, a failed TLS
//! handshake): the transports report it ([`transport::Payload::ConnectFailed`]) and every
//! client transaction still waiting to reach that destination ends at once with a transport
//! error, which RFC 3261 §17.1.4 says to treat as 503. So a call out fails over to the next
//! trunk at once, and a phone that cannot be reached is an unreachable offer at once (the ACD
//! offers the call to the next agent), instead of both waiting 64·T1 (32 s) for Timer B.

use super::Switch;
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// How a client transaction ended without a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientFailure {
    /// Timer B or F: nobody answered (408).
    Timeout,
    /// The transport could not carry the request (503, RFC 3261 §17.1.4).
    Transport,
}

impl ClientFailure {
    /// The status a failure stands for, in CDRs and in answers relayed upstream.
    pub(super) fn status(self) -> u16 {
        match self {
            ClientFailure::Timeout => 408,
            ClientFailure::Transport => 503,
        }
    }

    /// What happened, for logs and Warning headers.
    pub(super) fn describe(self) -> &'static str {
        match self {
            ClientFailure::Timeout => "did not answer",
            ClientFailure::Transport => "could not be connected to",
        }
    }
}

impl Switch {
    /// The transports could not open a connection to `destination`.
    pub(super) fn connection_failed(&mut self, now: Instant, destination: Peer, reason: &str) {
        tracing::info!(%destination, reason, "connection failed; requests waiting on it end now");
        self.txn.handle_transport_error(now, destination);
    }

    /// A client transaction ended with a transport error: handled as a 503.
    pub(super) fn on_client_transport_error(&mut self, now: Instant, key: TransactionKey) {
        tracing::info!(%key, "transaction ended by a transport error (treated as 503)");
        self.on_client_failure(now, key, ClientFailure::Transport);
    }
}
