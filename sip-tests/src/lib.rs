//! Black-box test harness for the `switchboard` binary.
//!
//! Each test starts its own [`Switchboard`] (own ports, own temp dir, log printed on failure),
//! registers agents with [`register_agent`] / [`start_agent`] (Digest answered in Rust, then a SIPp
//! UAS on the registered port), and drives trunk calls with [`Sipp`] scenarios from
//! `sip-tests/scenarios/` or with the small Rust client in [`uac`]. [`Api`] talks to the HTTP
//! API, [`metrics`] reads `/metrics`, [`cdr`] reads the CDR files.

pub mod agent;
pub mod agent_phone;
pub mod api;
pub mod baresip;
pub mod browser_script;
pub mod cdr;
pub mod config;
pub mod crm;
pub mod dialog;
pub mod digest;
pub mod error;
pub mod jssip;
pub mod kamailio;
pub mod linphone;
pub mod logged_process;
pub mod metrics;
pub mod paths;
pub mod patient_caller;
pub mod ports;
pub mod process;
pub mod rtp;
pub mod sip_message;
pub mod sipp;
pub mod sipsak;
pub mod site;
pub mod switchboard;
pub mod tcp_peer;
pub mod tls;
pub mod tone_talker;
pub mod trace;
pub mod twinkle;
pub mod uac;
pub mod udp_peer;

pub use agent::{
    dial_feature_code, register_agent, start_agent, start_agent_for_calls, start_agent_on_break,
    start_echo_agent,
};
pub use api::Api;
pub use config::{
    one_key_ivr, AgentAccount, CallerPriority, NumberSpec, QueueSpec, SwitchboardConfig, TlsFiles,
    TrunkConfig, TWO_LEVEL_IVR,
};
pub use error::{HarnessError, HarnessResult};
pub use metrics::Metrics;
pub use sip_message::SipMessage;
pub use sipp::{Sipp, SippProcess, SippRun};
pub use switchboard::Switchboard;
pub use udp_peer::UdpPeer;
