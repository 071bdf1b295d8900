//! Digest authentication for SIP (RFC 7616 as profiled for SIP by RFC 8760; RFC 3261 §22).
//!
//! Server side: [`NonceManager`] issues challenges and verifies `Authorization` /
//! `Proxy-Authorization` values against the [`Secret`] the caller looks up for a user. Client
//! side: [`respond`] answers a challenge, for tests and for authenticating to carrier trunks.
//! Supported: `MD5`, `SHA-256` and their `-sess` variants, `qop=auth` and the RFC 2069 form
//! without qop (single use). Not supported: `qop=auth-int` and `userhash`.

mod algorithm;
mod client;
mod credentials;
mod nonce;
mod params;

pub use algorithm::{ha1, Algorithm};
pub use client::respond;
pub use nonce::{NonceManager, RejectReason, Secret, Verdict, DEFAULT_MAX_TRACKED_NONCES};
pub use params::DigestParams;

/// Why a Digest header value could not be parsed or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The header uses another authentication scheme (the value names it).
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// The parameter list does not parse; the detail says where.
    #[error("malformed Digest parameters: {0}")]
    Malformed(String),
    /// A parameter appears twice, which would make the outcome depend on which one is read.
    #[error("Digest parameter {0:?} appears more than once")]
    DuplicateParam(String),
    /// A parameter the exchange needs is absent.
    #[error("Digest parameter {0} is missing")]
    MissingParam(&'static str),
    /// The algorithm is not one of MD5, SHA-256 and their -sess variants.
    #[error("unsupported Digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The qop is not `auth` (auth-int is not supported).
    #[error("unsupported qop {0:?} (only \"auth\" is supported)")]
    UnsupportedQop(String),
    /// A value that must go into a header contains a control character (e.g. CR/LF).
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
}
