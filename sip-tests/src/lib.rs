//! Black-box test harness for the `switchboard` binary.
//!
//! Each test starts its own [`Switchboard`] (own ports, own temp dir, log printed on failure),
//! registers agents with [`register_agent`] / [`start_agent`] (Digest answered in Rust, then a SIPp
//! UAS on the registered port), and drives trunk calls with [`Sipp`] scenarios from
//! `sip-tests/scenarios/` or with the small Rust client in [`uac`].

pub mod agent;
pub mod config;
pub mod digest;
pub mod error;
pub mod paths;
pub mod ports;
pub mod process;
pub mod sip_message;
pub mod sipp;
pub mod switchboard;
pub mod tcp_peer;
pub mod trace;
pub mod uac;
pub mod udp_peer;

pub use agent::{register_agent, start_agent};
pub use config::{AgentAccount, SwitchboardConfig, TrunkConfig};
pub use error::{HarnessError, HarnessResult};
pub use sip_message::SipMessage;
pub use sipp::{Sipp, SippProcess, SippRun};
pub use switchboard::Switchboard;
pub use udp_peer::UdpPeer;
