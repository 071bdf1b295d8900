//! An agent's phone as Switchboard sees it: a REGISTER from some port, then a SIPp UAS on that same
//! port answering (or not) the INVITEs Switchboard sends to the registered contact.

use std::time::Duration;

use crate::digest::{Credentials, DigestAlgorithm};
use crate::error::{HarnessError, HarnessResult};
use crate::ports::free_port;
use crate::sipp::{Sipp, SippProcess};
use crate::switchboard::Switchboard;
use crate::uac::{register, Registration};
use crate::udp_peer::UdpPeer;

/// Registration lifetime asked for: longer than any test.
const EXPIRES_S: u32 = 3600;

/// Registers agent `agent_id` (password from the Switchboard's configuration) from
/// 127.0.0.1:`local_port`, answering the SHA-256 challenge, and requires a 200.
pub fn register_agent(
    switchboard: &Switchboard,
    agent_id: &str,
    local_port: u16,
) -> HarnessResult<Registration> {
    let account = switchboard.config().agent(agent_id).ok_or_else(|| {
        HarnessError::Unexpected(format!(
            "agent {agent_id} is not in the test's configuration"
        ))
    })?;
    let peer = UdpPeer::bind(local_port, switchboard.sip_addr())?;
    let registration = register(
        &peer,
        &Credentials {
            username: &account.id,
            password: &account.password,
        },
        DigestAlgorithm::Sha256,
        EXPIRES_S,
    )?;
    match registration.result.final_response.status() {
        Some(200) => Ok(registration),
        _ => Err(HarnessError::Unexpected(format!(
            "REGISTER of agent {agent_id} with the right password got\n{}",
            registration.result.final_response.to_text()
        ))),
    }
}

/// Registers agent `agent_id` from a fresh port, then starts `scenario_file` as a SIPp UAS on that
/// port (ending after one call or `timeout`), and returns once SIPp is listening.
pub fn start_agent(
    switchboard: &Switchboard,
    agent_id: &str,
    scenario_file: &str,
    timeout: Duration,
) -> HarnessResult<SippProcess> {
    let port = free_port()?;
    register_agent(switchboard, agent_id, port)?;
    Sipp::server(scenario_file, port, switchboard.dir())?
        .service(agent_id)
        .timeout(timeout)
        .spawn()
}
