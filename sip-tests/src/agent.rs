//! An agent's phone as Switchboard sees it: a REGISTER from some port, then a SIPp UAS on that same
//! port answering (or not) the INVITEs Switchboard sends to the registered contact.

use std::time::Duration;

use crate::digest::{Credentials, DigestAlgorithm};
use crate::error::{HarnessError, HarnessResult};
use crate::ports::free_port;
use crate::sipp::{Sipp, SippProcess, SippRun};
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
        DigestAlgorithm::Md5,
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
    start_agent_for_calls(switchboard, agent_id, scenario_file, 1, timeout)
}

/// Like [`start_agent`], but the phone handles `calls` calls before SIPp ends.
pub fn start_agent_for_calls(
    switchboard: &Switchboard,
    agent_id: &str,
    scenario_file: &str,
    calls: u32,
    timeout: Duration,
) -> HarnessResult<SippProcess> {
    let port = free_port()?;
    register_agent(switchboard, agent_id, port)?;
    Sipp::server(scenario_file, port, switchboard.dir())?
        .service(agent_id)
        .calls(calls)
        .timeout(timeout)
        .spawn()
}

/// Starts agent `agent_id`'s phone (`agent_answer.xml`) and puts the agent on a break: logged
/// in but not ready, so calls to its queues wait.
pub fn start_agent_on_break(
    switchboard: &Switchboard,
    agent_id: &str,
    timeout: Duration,
) -> HarnessResult<SippProcess> {
    let phone = start_agent(switchboard, agent_id, "agent_answer.xml", timeout)?;
    switchboard.api().set_not_ready(agent_id, "break")?;
    Ok(phone)
}

/// Registers agent `agent_id` and starts a SIPp phone for it that answers one call
/// (`agent_answer.xml`) and echoes every RTP packet back to where it came from (`-rtp_echo`).
pub fn start_echo_agent(
    switchboard: &Switchboard,
    agent_id: &str,
    timeout: Duration,
) -> HarnessResult<SippProcess> {
    let port = free_port()?;
    register_agent(switchboard, agent_id, port)?;
    Sipp::server("agent_answer.xml", port, switchboard.dir())?
        .service(agent_id)
        .timeout(timeout)
        .arg("-rtp_echo")
        .spawn()
}

/// Dials feature code `code` (e.g. `*21`) from agent `agent_id`'s phone with `password` (the
/// configured one when `None`), answering the 407 with SIPp's own Digest (MD5, offered first).
/// `scenario_file` is `feature_code.xml` (accepted: 200, ACK, then Switchboard's BYE) or
/// `feature_code_refused.xml` (403 or 404 after the Digest exchange). Returns the finished run;
/// the caller checks its success.
pub fn dial_feature_code(
    switchboard: &Switchboard,
    agent_id: &str,
    code: &str,
    password: Option<&str>,
    scenario_file: &str,
) -> HarnessResult<SippRun> {
    let account = switchboard.config().agent(agent_id).ok_or_else(|| {
        HarnessError::Unexpected(format!(
            "agent {agent_id} is not in the test's configuration"
        ))
    })?;
    let password = password.unwrap_or(&account.password);
    switchboard
        .sipp_client(scenario_file)?
        .service(code)
        .set("user", agent_id)
        .arg("-au")
        .arg(agent_id)
        .arg("-ap")
        .arg(password)
        .run()
}
