//! An agent's phone written in Rust on one UDP socket: it registers like [`register_agent`],
//! then the test decides what it does with each INVITE (reject with any code, answer with any
//! SDP, hold with a re-INVITE, send REFER …) and sees every message Switchboard sends it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::agent::register_agent;
use crate::dialog::{answer_until_ack, response_text, Dialog};
use crate::digest::{self, Credentials, DigestAlgorithm};
use crate::error::{HarnessError, HarnessResult};
use crate::ports::free_port;
use crate::sip_message::SipMessage;
use crate::switchboard::Switchboard;
use crate::uac::{unique_token, RequestSpec, TRANSACTION_TIMEOUT};
use crate::udp_peer::UdpPeer;

/// A registered agent phone.
#[derive(Debug)]
pub struct AgentPhone {
    /// The phone's socket (its registered contact), talking to Switchboard.
    pub peer: UdpPeer,
    agent_id: String,
}

/// An answered call on the phone.
#[derive(Debug)]
pub struct AgentCall {
    /// The INVITE Switchboard sent.
    pub invite: SipMessage,
    /// The dialog, for requests from the phone.
    pub dialog: Dialog,
    /// Messages that arrived while answering and were not the ACK.
    pub others: Vec<SipMessage>,
}

impl AgentPhone {
    /// Registers agent `agent_id` (password from the configuration) from a fresh port.
    pub fn register(switchboard: &Switchboard, agent_id: &str) -> HarnessResult<Self> {
        let port = free_port()?;
        register_agent(switchboard, agent_id, port)?;
        Ok(AgentPhone {
            peer: UdpPeer::bind(port, switchboard.sip_addr())?,
            agent_id: agent_id.to_owned(),
        })
    }

    /// A SIP endpoint on `port` (named in the configuration before the start, e.g. by
    /// [`free_port`]) that answers like a phone but never registers: a carrier's gateway, say.
    /// `name` only labels its errors.
    pub fn unregistered(switchboard: &Switchboard, port: u16, name: &str) -> HarnessResult<Self> {
        Ok(AgentPhone {
            peer: UdpPeer::bind(port, switchboard.sip_addr())?,
            agent_id: name.to_owned(),
        })
    }

    /// Registers agent `agent_id` from a fresh port through `proxy` (e.g. a front in front of
    /// Switchboard) for the SIP domain `domain`, as a phone with an outbound proxy does
    /// (Request-URI `sip:<domain>`, To `sip:<agent>@<domain>`), answering the Digest challenge
    /// with MD5; requires a 200. The phone then talks to `proxy`.
    pub fn register_through(
        switchboard: &Switchboard,
        agent_id: &str,
        proxy: SocketAddr,
        domain: &str,
    ) -> HarnessResult<Self> {
        let account = switchboard.config().agent(agent_id).ok_or_else(|| {
            HarnessError::Unexpected(format!("agent {agent_id} is not configured"))
        })?;
        let peer = UdpPeer::bind(free_port()?, proxy)?;
        let local = peer.local_addr()?;
        let registrar = format!("sip:{domain}");
        let mut spec = RequestSpec::new("REGISTER", &registrar, agent_id);
        spec.to = format!("<sip:{agent_id}@{domain}>");
        spec.extra_headers.push("Expires: 3600".into());
        let challenge = peer.request(&spec.render(local), TRANSACTION_TIMEOUT)?;
        let offered = challenge.final_response.headers_named("WWW-Authenticate");
        if challenge.final_response.status() != Some(401) {
            return Err(HarnessError::Unexpected(format!(
                "REGISTER of {agent_id} through {proxy} got\n{}",
                challenge.final_response.to_text()
            )));
        }
        let credentials = Credentials {
            username: &account.id,
            password: &account.password,
        };
        let answer = digest::pick(&offered, DigestAlgorithm::Md5)?.answer(
            &credentials,
            "REGISTER",
            &registrar,
            &unique_token(),
            1,
        )?;
        spec.cseq += 1;
        spec.branch = unique_token();
        spec.extra_headers.push(format!("Authorization: {answer}"));
        let result = peer.request(&spec.render(local), TRANSACTION_TIMEOUT)?;
        if result.final_response.status() != Some(200) {
            return Err(HarnessError::Unexpected(format!(
                "authenticated REGISTER of {agent_id} through {proxy} got\n{}",
                result.final_response.to_text()
            )));
        }
        Ok(AgentPhone {
            peer,
            agent_id: agent_id.to_owned(),
        })
    }

    /// Waits for the next request `method`, answering nothing; other messages are skipped.
    pub fn next_request(&self, method: &str, timeout: Duration) -> HarnessResult<SipMessage> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(message) = self.peer.recv(left)? {
                if message.method() == Some(method) {
                    return Ok(message);
                }
            }
        }
        Err(HarnessError::Unexpected(format!(
            "agent {} got no {method} within {} s",
            self.agent_id,
            timeout.as_secs()
        )))
    }

    /// Sends a response to `request`.
    pub fn reply(
        &self,
        request: &SipMessage,
        code: u16,
        reason: &str,
        extra_headers: &[String],
        body: &str,
    ) -> HarnessResult<()> {
        let tag = local_tag(request);
        self.peer.send(&response_text(
            request,
            code,
            reason,
            &tag,
            self.peer.local_addr()?,
            extra_headers,
            body,
        ))
    }

    /// Answers `invite` with 200 and `sdp` and waits for the ACK.
    pub fn answer(
        &self,
        invite: SipMessage,
        sdp: &str,
        timeout: Duration,
    ) -> HarnessResult<AgentCall> {
        let tag = local_tag(&invite);
        let mut others = Vec::new();
        answer_until_ack(&self.peer, &invite, &tag, sdp, timeout, &mut others)?;
        let dialog = Dialog::from_uas(&invite, &tag, &self.agent_id)?;
        Ok(AgentCall {
            invite,
            dialog,
            others,
        })
    }

    /// Waits for the next INVITE and answers it with `sdp`.
    pub fn answer_next(&self, sdp: &str, timeout: Duration) -> HarnessResult<AgentCall> {
        let invite = self.next_request("INVITE", timeout)?;
        self.answer(invite, sdp, timeout)
    }

    /// For `window`, answers every INVITE with `code` (ACKs are absorbed) and returns the
    /// distinct INVITEs seen (retransmissions counted once).
    pub fn reject_invites_for(
        &self,
        code: u16,
        reason: &str,
        window: Duration,
    ) -> HarnessResult<Vec<SipMessage>> {
        let end = Instant::now() + window;
        let mut seen: Vec<SipMessage> = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Some(message) = self.peer.recv(left)? else {
                continue;
            };
            if message.method() != Some("INVITE") {
                continue;
            }
            self.reply(&message, code, reason, &[], "")?;
            let key = transaction_key(&message);
            if !seen.iter().any(|m| transaction_key(m) == key) {
                seen.push(message);
            }
        }
        Ok(seen)
    }

    /// Collects every message that arrives within `window`, answering none (the test
    /// answers what it needs).
    pub fn collect_for(&self, window: Duration) -> HarnessResult<Vec<SipMessage>> {
        let end = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(message) = self.peer.recv(left)? {
                seen.push(message);
            }
        }
        Ok(seen)
    }
}

/// The To tag the phone uses for `request`'s dialog: derived from the Call-ID, so every
/// response in one dialog carries the same tag.
pub fn local_tag(request: &SipMessage) -> String {
    let call_id = request.header("Call-ID").unwrap_or_default();
    let digest: u32 = call_id.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    format!("phone{digest:08x}")
}

/// Call-ID, CSeq and Via branch: one INVITE transaction.
fn transaction_key(message: &SipMessage) -> (String, String, String) {
    (
        message.header("Call-ID").unwrap_or_default().to_owned(),
        message.header("CSeq").unwrap_or_default().to_owned(),
        message.header("Via").unwrap_or_default().to_owned(),
    )
}
