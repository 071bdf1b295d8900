//! The one error type of the harness: every failure says what was being done and why it failed.

use std::path::PathBuf;

/// Why a harness step failed. Test functions return it with `?`, so its `Display` must carry
/// enough context (logs, traces) to diagnose a failure without re-running.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// An I/O operation of the harness itself failed (`what` names it).
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The switchboard binary is not where the harness looked.
    #[error("switchboard binary not found at {path}: build it with `cargo build -p switchboard` or set SWITCHBOARD_BIN")]
    BinaryMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// SIPp is not installed.
    #[error("sipp not found on PATH: install it with `apt-get install -y sip-tester` (sip-tests/run-all does)")]
    SippMissing,
    /// No free port block could be found on 127.0.0.1.
    #[error("no block of {count} free consecutive ports found on 127.0.0.1")]
    NoFreePorts {
        /// How many consecutive ports were wanted.
        count: u16,
    },
    /// Switchboard did not answer OPTIONS with 200 before the deadline, or exited while starting.
    #[error("switchboard did not become ready: {reason}\n--- switchboard log ---\n{log}")]
    NotReady {
        /// What was observed.
        reason: String,
        /// The captured stdout/stderr of the process.
        log: String,
    },
    /// A process did not exit before its deadline.
    #[error("{what} did not exit within {seconds} s")]
    ExitTimeout {
        /// Which process.
        what: String,
        /// The deadline that passed.
        seconds: u64,
    },
    /// A SIPp run did not end with exit code 0.
    #[error("SIPp scenario {scenario} failed (exit {code:?})\n--- SIPp errors ---\n{errors}\n--- SIPp messages (tail) ---\n{messages}\n--- SIPp screen and output (tail) ---\n{output}")]
    SippFailed {
        /// The scenario file name.
        scenario: String,
        /// SIPp's exit code (None = killed by a signal).
        code: Option<i32>,
        /// The content of SIPp's error trace.
        errors: String,
        /// The end of SIPp's message trace.
        messages: String,
        /// The end of SIPp's stdout/stderr.
        output: String,
    },
    /// A SIP message received by the harness could not be parsed.
    #[error("unparsable SIP message ({reason}):\n{text}")]
    BadMessage {
        /// What was wrong with it.
        reason: String,
        /// The message text (lossy UTF-8).
        text: String,
    },
    /// No (matching) SIP message arrived before the deadline.
    #[error("no SIP message arrived within {seconds} s while waiting for {what}")]
    SipTimeout {
        /// What the harness was waiting for.
        what: String,
        /// The deadline that passed.
        seconds: u64,
    },
    /// A SIP exchange went differently from what the harness expected.
    #[error("unexpected SIP exchange: {0}")]
    Unexpected(String),
    /// An HTTP request to the API could not be made (connection refused, timeout, ...).
    #[error("HTTP: {0}")]
    Http(String),
    /// A Digest challenge could not be understood or answered.
    #[error("digest: {0}")]
    Digest(String),
}

/// A test returning `Err` prints the error with `Debug`: show the readable `Display` text (with
/// real line breaks in quoted SIP messages) instead of an escaped struct dump.
impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl HarnessError {
    /// Wraps an I/O error with what the harness was doing.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result of a harness step.
pub type HarnessResult<T> = Result<T, HarnessError>;
