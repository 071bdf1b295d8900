//! The benchmark's one error type: every failure names the stage it happened in and why.

use std::path::PathBuf;

/// Why a benchmark step could not be carried out (as opposed to a step that ran and measured
/// loss: that is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An I/O operation of the generator itself failed (`what` names it).
    #[error("{what}: {source}")]
    Io {
        /// What the generator was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The switchboard binary is not where we looked.
    #[error("switchboard binary not found at {0}: build it with `cargo build --release -p switchboard` or pass --binary")]
    BinaryMissing(PathBuf),
    /// Switchboard exited or did not answer OPTIONS in time.
    #[error("switchboard did not become ready: {0}")]
    NotReady(String),
    /// An agent could not register.
    #[error("registration of agent {agent} failed: {reason}")]
    Registration {
        /// The agent's SIP user.
        agent: String,
        /// What went wrong.
        reason: String,
    },
    /// A command-line value is unusable.
    #[error("bad argument: {0}")]
    Argument(String),
    /// A /proc file did not have the expected shape.
    #[error("cannot read {file}: {reason}")]
    Proc {
        /// The file read.
        file: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A generator thread panicked (a bug in the generator, not a measurement).
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
    /// The sip-tests helpers (ports, digest) failed.
    #[error("{0}")]
    Harness(String),
}

impl LoadError {
    /// An [`LoadError::Io`] for `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> LoadError {
        LoadError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<sip_tests::HarnessError> for LoadError {
    fn from(error: sip_tests::HarnessError) -> LoadError {
        LoadError::Harness(error.to_string())
    }
}

/// Result of a benchmark stage.
pub type LoadResult<T> = Result<T, LoadError>;
