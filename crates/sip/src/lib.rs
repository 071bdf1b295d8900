//! Sans-IO SIP for Switchboard.
//!
//! Nothing in this crate opens a socket, spawns a task or reads the clock: messages come in
//! as parsed values with the current time, and what must be sent or scheduled comes out as
//! values the I/O layer acts on. That keeps RFC 3261 timer behaviour testable in microseconds.

pub mod dialog;
pub mod digest;
pub mod headers;
pub mod message;
pub mod parse;
pub mod peer;
pub mod registrar;
pub mod transaction;

pub use peer::{Peer, Transmit, Transport};
pub use rsip;
