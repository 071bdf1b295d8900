//! The caller lookup hook (`[lookup]`): as a call arrives, a CRM is asked over HTTP what it
//! knows about the caller (priority, a label such as VIP, a preferred agent, a language, the
//! customer's name). Call control never waits for it: the question leaves as
//! [`LookupRequest`] through `Switch::poll_lookup`, the HTTP exchange runs as a task at the
//! edge ([`client`]), and the answer comes back as an event the call uses if it is still
//! waiting. A slow, broken or oversized answer changes nothing and is counted.

pub mod answer;
pub mod cache;
pub mod client;

pub use answer::{parse_answer, CallerInfo, MAX_ANSWER_BYTES};

/// A question for the CRM about one arriving call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRequest {
    /// Switchboard's call number (the answer is matched back to the call by it).
    pub call: u64,
    /// The caller's number.
    pub caller: String,
    /// The number dialled.
    pub did: String,
}

/// How one lookup ended, as counted in `switchboard_lookup_total{result}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    /// A usable answer (`ok`).
    Answered(CallerInfo),
    /// No answer within `timeout_ms` (`timeout`).
    Timeout,
    /// No connection, or a status other than 2xx (`error`).
    Error(String),
    /// An answer that is not a JSON object of the expected fields, or larger than
    /// [`MAX_ANSWER_BYTES`] (`invalid`).
    Invalid(String),
}

impl LookupOutcome {
    /// The `result` label of `switchboard_lookup_total`.
    pub fn label(&self) -> &'static str {
        match self {
            LookupOutcome::Answered(_) => "ok",
            LookupOutcome::Timeout => "timeout",
            LookupOutcome::Error(_) => "error",
            LookupOutcome::Invalid(_) => "invalid",
        }
    }
}
