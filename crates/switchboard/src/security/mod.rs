//! Defences for a SIP port on the open Internet, as sans-IO pieces call control drives with
//! the current time: counting authentication failures into bans and a per-user tarpit
//! ([`auth_failures`]), a per-source token bucket in front of the transaction layer
//! ([`rate_limit`]), and the throttled `key=value` security log ([`event_log`]).
//!
//! Every table here is capped: a flood of distinct (possibly spoofed) sources evicts the
//! oldest entries instead of growing memory.

pub mod auth_failures;
pub mod connection_limits;
pub mod event_log;
pub mod gate;
pub mod rate_limit;

pub use auth_failures::{AuthFailureConfig, AuthFailures, BanInfo, FailureOutcome};
pub use event_log::{SecurityEvent, SecurityEventKind, SecurityLog};
pub use rate_limit::{RateLimitConfig, RateLimiter};
