//! Errors the TU can get back from the transaction layer.

use super::key::TransactionKey;

/// Why `TransactionLayer::send_response` refused a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// No live transaction has this key: it never existed or has already terminated.
    #[error("no live transaction {0}")]
    UnknownTransaction(TransactionKey),
    /// The key names a client transaction; responses go on server transactions.
    #[error("{0} is a client transaction; responses are sent on server transactions")]
    NotServerTransaction(TransactionKey),
    /// The status code is outside 100–699.
    #[error("status code {0} is not a SIP response code (100-699)")]
    InvalidStatus(u16),
    /// The transaction already sent its final response and cannot send this one.
    #[error("{key} already sent its final response; cannot send a {status}")]
    AlreadyFinal {
        /// The transaction.
        key: TransactionKey,
        /// The refused status code.
        status: u16,
    },
}
