//! Interactive voice response: the sans-IO menu engine ([`IvrSession`]) and business-hours
//! evaluation ([`schedule::Schedule`]).
//!
//! Call control owns the media and the clock. It starts a session when a call reaches an IVR,
//! performs the [`IvrAction`]s it returns (play, stop, leave to a queue / voicemail, hang up),
//! and feeds back DTMF keys, playback completions and the digit timeout. See `docs/ivr.md` for
//! the caller-facing semantics.

pub mod schedule;
mod session;

pub use session::{IvrAction, IvrSession, PromptRef, MAX_FAILURES_IN_A_ROW, MAX_TYPE_AHEAD};
