//! SIP transactions (RFC 3261 §17) with the Accepted state of RFC 6026, sans-IO.
//!
//! [`TransactionLayer`] is the only entry point: messages, TU commands and the current time go
//! in; datagrams to send, events for the TU and the next deadline come out. Nothing here reads
//! the clock or touches a socket, so every timer is testable with a fake `Instant`.
//!
//! What the layer does on its own, so the TU does not have to:
//! - stamps `received`/`rport` on the top Via of every request (RFC 3261 §18.2.1, RFC 3581);
//! - retransmits requests (Timers A, E) and responses (Timer G, and 2xx until the ACK);
//! - sends 100 Trying if the TU has not answered an INVITE within 200 ms;
//! - ACKs non-2xx finals to its INVITEs, absorbs retransmissions, answers CANCEL (200/481);
//! - removes every transaction when its last timer fires, so `len()` returns to 0.

mod client_invite;
mod client_non_invite;
mod config;
mod context;
mod error;
mod event;
mod fields;
mod finished;
mod generated;
mod key;
mod layer;
mod provisional;
mod server_invite;
mod server_non_invite;
mod timers;
pub(crate) mod via;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod linger_tests;
#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod transport_error_tests;

pub use config::TimerConfig;
pub use error::TransactionError;
pub use event::TransactionEvent;
pub use generated::{branch_from, new_branch};
pub use key::TransactionKey;
pub use layer::TransactionLayer;
