//! Call setup and teardown over raw SIP/UDP, from two sockets in one thread: the carrier's
//! trunk socket places the calls (INVITE with a per-call RTP port, ACK, BYE) and the agent
//! "phone farm" socket, where every registered agent's Contact points, answers the INVITEs
//! Switchboard sends to agents (200 with a per-call RTP port) and their ACK and BYE.
//!
//! Each call is told apart by its trunk Call-ID (`rl-<index>`) and, on the agent leg, by the
//! caller user Switchboard copies into the agent INVITE's From (`c<index>`). Anything that
//! does not parse is counted and ignored, never trusted.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use sip_tests::SipMessage;

use crate::error::{LoadError, LoadResult};
use crate::sdp;
use crate::sip_text::{response, Request};
use crate::step_config::DID;

const TRUNK: Token = Token(0);
const FARM: Token = Token(1);
/// An unanswered INVITE or BYE is sent again after this long (loopback UDP rarely loses one,
/// but a lost one must not fail a whole step).
const RETRANSMIT_AFTER: Duration = Duration::from_secs(1);
/// Sends of one request before its call is given up.
const MAX_SENDS: u32 = 5;
/// Longest time one poll waits, so pacing and retransmission stay on time.
const MAX_POLL_WAIT: Duration = Duration::from_millis(20);

/// Local RTP addresses of one call on the generator's side.
#[derive(Debug, Clone, Copy)]
pub struct CallEndpoints {
    /// Where the carrier side of the call receives RTP.
    pub trunk_rtp: SocketAddr,
    /// Where the agent phone of the call receives RTP.
    pub agent_rtp: SocketAddr,
}

/// A call that is up on both legs, with the addresses Switchboard told each side.
#[derive(Debug, Clone, Copy)]
pub struct EstablishedCall {
    /// Index of the call (0-based), as in the Call-ID.
    pub index: usize,
    /// Switchboard's RTP address facing the trunk (from its 200 to the INVITE).
    pub switchboard_trunk: SocketAddr,
    /// Switchboard's RTP address facing the agent (from its INVITE to the agent).
    pub switchboard_agent: SocketAddr,
}

/// How hanging up went.
#[derive(Debug, Clone, Copy, Default)]
pub struct HangupSummary {
    /// BYEs the trunk sent.
    pub sent: usize,
    /// BYEs that got a final answer.
    pub answered: usize,
    /// Agent legs that Switchboard ended with a BYE to the phone.
    pub agent_legs_ended: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TrunkPhase {
    NotSent,
    Inviting,
    Answered,
    Failed(String),
    Hanging,
    Ended,
    DroppedBySwitchboard,
}

#[derive(Debug)]
struct TrunkLeg {
    phase: TrunkPhase,
    /// The To header of the 200, with Switchboard's tag.
    to: Option<String>,
    /// The Contact URI of the 200: target of ACK and BYE.
    target: Option<String>,
    switchboard_rtp: Option<SocketAddr>,
    last_request: Option<String>,
    last_sent: Instant,
    sends: u32,
}

#[derive(Debug)]
struct AgentLeg {
    answer: String,
    switchboard_rtp: SocketAddr,
    acked: bool,
    ended: bool,
}

/// The signalling side of one step.
#[derive(Debug)]
pub struct Signalling {
    poll: Poll,
    events: Events,
    trunk: UdpSocket,
    farm: UdpSocket,
    trunk_local: SocketAddr,
    farm_local: SocketAddr,
    switchboard: SocketAddr,
    endpoints: Vec<CallEndpoints>,
    trunk_legs: Vec<TrunkLeg>,
    agent_legs: Vec<Option<AgentLeg>>,
    agent_call_ids: HashMap<String, usize>,
    buf: Vec<u8>,
    malformed: u64,
}

impl Signalling {
    /// Takes over the trunk and phone-farm sockets (the farm's agents are registered already).
    pub fn new(
        trunk: std::net::UdpSocket,
        farm: std::net::UdpSocket,
        switchboard: SocketAddr,
        endpoints: Vec<CallEndpoints>,
    ) -> LoadResult<Signalling> {
        let prepare =
            |socket: std::net::UdpSocket, what: &str| -> LoadResult<(UdpSocket, SocketAddr)> {
                socket
                    .set_read_timeout(None)
                    .and_then(|()| socket.set_nonblocking(true))
                    .map_err(|e| LoadError::io(format!("preparing the {what} socket"), e))?;
                let local = socket
                    .local_addr()
                    .map_err(|e| LoadError::io(format!("reading the {what} address"), e))?;
                Ok((UdpSocket::from_std(socket), local))
            };
        let (mut trunk, trunk_local) = prepare(trunk, "trunk")?;
        let (mut farm, farm_local) = prepare(farm, "phone farm")?;
        let poll = Poll::new().map_err(|e| LoadError::io("creating the SIP poller", e))?;
        poll.registry()
            .register(&mut trunk, TRUNK, Interest::READABLE)
            .and_then(|()| {
                poll.registry()
                    .register(&mut farm, FARM, Interest::READABLE)
            })
            .map_err(|e| LoadError::io("registering the SIP sockets", e))?;
        let now = Instant::now();
        let trunk_legs = endpoints
            .iter()
            .map(|_| TrunkLeg {
                phase: TrunkPhase::NotSent,
                to: None,
                target: None,
                switchboard_rtp: None,
                last_request: None,
                last_sent: now,
                sends: 0,
            })
            .collect();
        let agent_legs = endpoints.iter().map(|_| None).collect();
        Ok(Signalling {
            poll,
            events: Events::with_capacity(64),
            trunk,
            farm,
            trunk_local,
            farm_local,
            switchboard,
            endpoints,
            trunk_legs,
            agent_legs,
            agent_call_ids: HashMap::new(),
            buf: vec![0u8; 65536],
            malformed: 0,
        })
    }

    /// Places every call, `calls_per_second` apart, and waits until each is up or failed
    /// (at most `grace` after the last INVITE). Returns the calls that are up on both legs.
    pub fn establish(&mut self, calls_per_second: f64, grace: Duration) -> Vec<EstablishedCall> {
        let total = self.endpoints.len();
        let interval = Duration::from_secs_f64(1.0 / calls_per_second.max(1.0));
        let start = Instant::now();
        let give_up = start + interval.mul_f64(total as f64) + grace;
        let mut next = 0;
        loop {
            let now = Instant::now();
            while next < total && start + interval.mul_f64(next as f64) <= now {
                self.send_invite(next);
                next += 1;
            }
            if next == total && (0..total).all(|i| self.is_settled(i)) || now >= give_up {
                break;
            }
            let wait = if next < total {
                (start + interval.mul_f64(next as f64)).saturating_duration_since(now)
            } else {
                MAX_POLL_WAIT
            };
            self.pump(wait.min(MAX_POLL_WAIT));
            self.retransmit();
        }
        for leg in &mut self.trunk_legs {
            if matches!(leg.phase, TrunkPhase::Inviting | TrunkPhase::NotSent) {
                leg.phase = TrunkPhase::Failed("no final answer".to_owned());
            }
        }
        (0..total).filter_map(|i| self.established(i)).collect()
    }

    fn is_settled(&self, index: usize) -> bool {
        match self.trunk_legs.get(index).map(|leg| &leg.phase) {
            Some(TrunkPhase::Answered) => self
                .agent_legs
                .get(index)
                .is_some_and(|leg| leg.as_ref().is_some_and(|leg| leg.acked)),
            Some(TrunkPhase::NotSent | TrunkPhase::Inviting) => false,
            _ => true,
        }
    }

    fn established(&self, index: usize) -> Option<EstablishedCall> {
        let trunk = self.trunk_legs.get(index)?;
        let agent = self.agent_legs.get(index)?.as_ref()?;
        (trunk.phase == TrunkPhase::Answered && agent.acked && !agent.ended).then_some(
            EstablishedCall {
                index,
                switchboard_trunk: trunk.switchboard_rtp?,
                switchboard_agent: agent.switchboard_rtp,
            },
        )
    }

    /// Why calls failed to come up, `reason: count`, for the report.
    pub fn failures(&self) -> BTreeMap<String, usize> {
        let mut failures = BTreeMap::new();
        for (index, leg) in self.trunk_legs.iter().enumerate() {
            let reason = match &leg.phase {
                TrunkPhase::Failed(reason) => reason.clone(),
                TrunkPhase::DroppedBySwitchboard => "BYE from switchboard".to_owned(),
                TrunkPhase::Answered if self.established(index).is_none() => {
                    "answered but agent leg not confirmed".to_owned()
                }
                _ => continue,
            };
            *failures.entry(reason).or_insert(0) += 1;
        }
        failures
    }

    /// SIP datagrams that could not be parsed or matched to a call.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Sends BYE from the trunk for every answered call, `calls_per_second` apart, and waits
    /// (at most `grace` after the last) for the answers and for Switchboard's BYEs to the phones.
    pub fn hang_up(&mut self, calls_per_second: f64, grace: Duration) -> HangupSummary {
        let answered: Vec<usize> = (0..self.trunk_legs.len())
            .filter(|&i| {
                self.trunk_legs
                    .get(i)
                    .is_some_and(|leg| leg.phase == TrunkPhase::Answered)
            })
            .collect();
        let interval = Duration::from_secs_f64(1.0 / calls_per_second.max(1.0));
        let start = Instant::now();
        let give_up = start + interval.mul_f64(answered.len() as f64) + grace;
        let mut next = 0;
        loop {
            let now = Instant::now();
            while next < answered.len() && start + interval.mul_f64(next as f64) <= now {
                if let Some(&index) = answered.get(next) {
                    self.send_bye(index);
                }
                next += 1;
            }
            let all_done = answered.iter().all(|&i| {
                self.trunk_legs
                    .get(i)
                    .is_some_and(|leg| leg.phase != TrunkPhase::Hanging)
                    && self
                        .agent_legs
                        .get(i)
                        .is_some_and(|leg| leg.as_ref().is_none_or(|leg| leg.ended))
            });
            if next == answered.len() && all_done || now >= give_up {
                break;
            }
            self.pump(MAX_POLL_WAIT);
            self.retransmit();
        }
        HangupSummary {
            sent: answered.len(),
            answered: answered
                .iter()
                .filter(|&&i| {
                    self.trunk_legs
                        .get(i)
                        .is_some_and(|leg| leg.phase == TrunkPhase::Ended)
                })
                .count(),
            agent_legs_ended: self
                .agent_legs
                .iter()
                .filter(|leg| leg.as_ref().is_some_and(|leg| leg.ended))
                .count(),
        }
    }

    fn trunk_from(index: usize) -> String {
        format!("<sip:c{index}@127.0.0.1>;tag=rl{index}")
    }

    fn trunk_call_id(index: usize) -> String {
        format!("rl-{index}")
    }

    fn send_invite(&mut self, index: usize) {
        let Some(endpoints) = self.endpoints.get(index).copied() else {
            return;
        };
        let body = sdp::offer(endpoints.trunk_rtp, index as u64 + 1);
        let contact = format!("Contact: <sip:carrier@{}>\r\n", self.trunk_local);
        let text = Request {
            method: "INVITE",
            uri: &format!("sip:{DID}@{}", self.switchboard),
            via_host: &self.trunk_local.to_string(),
            branch: &format!("-inv-{index}"),
            from: &Self::trunk_from(index),
            to: &format!("<sip:{DID}@127.0.0.1>"),
            call_id: &Self::trunk_call_id(index),
            cseq: 1,
            extra: &contact,
            sdp: &body,
        }
        .render();
        self.send_trunk_request(index, text, TrunkPhase::Inviting);
    }

    fn send_bye(&mut self, index: usize) {
        let Some(leg) = self.trunk_legs.get(index) else {
            return;
        };
        let (Some(to), Some(target)) = (leg.to.clone(), leg.target.clone()) else {
            return;
        };
        let text = Request {
            method: "BYE",
            uri: &target,
            via_host: &self.trunk_local.to_string(),
            branch: &format!("-bye-{index}"),
            from: &Self::trunk_from(index),
            to: &to,
            call_id: &Self::trunk_call_id(index),
            cseq: 2,
            extra: "",
            sdp: "",
        }
        .render();
        self.send_trunk_request(index, text, TrunkPhase::Hanging);
    }

    fn send_trunk_request(&mut self, index: usize, text: String, phase: TrunkPhase) {
        let _ = self.trunk.send_to(text.as_bytes(), self.switchboard);
        if let Some(leg) = self.trunk_legs.get_mut(index) {
            leg.phase = phase;
            leg.last_request = Some(text);
            leg.last_sent = Instant::now();
            leg.sends = 1;
        }
    }

    /// Sends unanswered INVITEs and BYEs again; gives a call up after [`MAX_SENDS`].
    fn retransmit(&mut self) {
        let now = Instant::now();
        for leg in &mut self.trunk_legs {
            if !matches!(leg.phase, TrunkPhase::Inviting | TrunkPhase::Hanging)
                || now.duration_since(leg.last_sent) < RETRANSMIT_AFTER
            {
                continue;
            }
            if leg.sends >= MAX_SENDS {
                leg.phase = match leg.phase {
                    TrunkPhase::Inviting => TrunkPhase::Failed("INVITE unanswered".to_owned()),
                    _ => TrunkPhase::Ended,
                };
                continue;
            }
            if let Some(text) = &leg.last_request {
                let _ = self.trunk.send_to(text.as_bytes(), self.switchboard);
            }
            leg.sends += 1;
            leg.last_sent = now;
        }
    }

    /// Waits up to `timeout` for datagrams and handles every one that has arrived.
    fn pump(&mut self, timeout: Duration) {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                eprintln!("SIP poll failed: {e}");
            }
        }
        // Edge-triggered readiness: both sockets are drained every time, whichever woke us.
        while let Some((message, source)) = self.receive(TRUNK) {
            self.on_trunk_message(message, source);
        }
        while let Some((message, source)) = self.receive(FARM) {
            self.on_farm_message(message, source);
        }
    }

    /// The next parsable datagram on one socket; malformed ones are counted and skipped.
    fn receive(&mut self, token: Token) -> Option<(SipMessage, SocketAddr)> {
        loop {
            let socket = if token == TRUNK {
                &self.trunk
            } else {
                &self.farm
            };
            let (len, source) = match socket.recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP errors surface here on some kernels; they concern an earlier send.
                Err(_) => continue,
            };
            match self.buf.get(..len).map(SipMessage::parse) {
                Some(Ok(message)) => return Some((message, source)),
                _ => self.malformed += 1,
            }
        }
    }

    fn trunk_index(&self, message: &SipMessage) -> Option<usize> {
        let index: usize = message
            .header("Call-ID")?
            .strip_prefix("rl-")?
            .parse()
            .ok()?;
        (index < self.trunk_legs.len()).then_some(index)
    }

    fn on_trunk_message(&mut self, message: SipMessage, source: SocketAddr) {
        let Some(index) = self.trunk_index(&message) else {
            self.malformed += 1;
            return;
        };
        if let Some(method) = message.method() {
            // A request from Switchboard inside a trunk dialog: only BYE matters here.
            if method == "ACK" {
                return;
            }
            let answer = response(&message, "200 OK", None, "", "");
            let _ = self.trunk.send_to(answer.as_bytes(), source);
            if method == "BYE" {
                if let Some(leg) = self.trunk_legs.get_mut(index) {
                    leg.phase = TrunkPhase::DroppedBySwitchboard;
                }
            }
            return;
        }
        let (Some(status), Some((_, cseq_method))) = (message.status(), message.cseq()) else {
            self.malformed += 1;
            return;
        };
        match cseq_method {
            "INVITE" if status >= 200 => self.on_invite_final(index, status, &message),
            "BYE" if status >= 200 => {
                if let Some(leg) = self.trunk_legs.get_mut(index) {
                    if leg.phase == TrunkPhase::Hanging {
                        leg.phase = TrunkPhase::Ended;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_invite_final(&mut self, index: usize, status: u16, message: &SipMessage) {
        let Some(leg) = self.trunk_legs.get_mut(index) else {
            return;
        };
        let Some(to) = message.header("To").map(str::to_owned) else {
            self.malformed += 1;
            return;
        };
        if !(200..300).contains(&status) {
            // ACK for a failure: same branch as the INVITE (RFC 3261 §17.1.1.3).
            let ack = Request {
                method: "ACK",
                uri: &format!("sip:{DID}@{}", self.switchboard),
                via_host: &self.trunk_local.to_string(),
                branch: &format!("-inv-{index}"),
                from: &Self::trunk_from(index),
                to: &to,
                call_id: &Self::trunk_call_id(index),
                cseq: 1,
                extra: "",
                sdp: "",
            }
            .render();
            let _ = self.trunk.send_to(ack.as_bytes(), self.switchboard);
            if leg.phase == TrunkPhase::Inviting {
                leg.phase = TrunkPhase::Failed(format!("INVITE answered {status}"));
            }
            return;
        }
        if leg.phase == TrunkPhase::Inviting {
            match sdp::audio_destination(&message.body) {
                Ok(address) => {
                    leg.switchboard_rtp = Some(address);
                    leg.phase = TrunkPhase::Answered;
                }
                Err(e) => leg.phase = TrunkPhase::Failed(format!("200 with unusable SDP: {e}")),
            }
            leg.to = Some(to.clone());
            leg.target = Some(
                message
                    .contact_uri()
                    .map_or_else(|| format!("sip:{}", self.switchboard), str::to_owned),
            );
            leg.last_request = None;
        }
        // ACK every 200, first or retransmitted: a missing ACK makes Switchboard retransmit.
        let target = leg
            .target
            .clone()
            .unwrap_or_else(|| format!("sip:{}", self.switchboard));
        let ack = Request {
            method: "ACK",
            uri: &target,
            via_host: &self.trunk_local.to_string(),
            branch: &format!("-ack-{index}"),
            from: &Self::trunk_from(index),
            to: &to,
            call_id: &Self::trunk_call_id(index),
            cseq: 1,
            extra: "",
            sdp: "",
        }
        .render();
        let _ = self.trunk.send_to(ack.as_bytes(), self.switchboard);
    }

    fn on_farm_message(&mut self, message: SipMessage, source: SocketAddr) {
        let Some(method) = message.method().map(str::to_owned) else {
            return; // answers to nothing the farm sent
        };
        let call_id = message.header("Call-ID").unwrap_or_default().to_owned();
        let known = self.agent_call_ids.get(&call_id).copied();
        let reply = match (method.as_str(), known) {
            ("INVITE", Some(index)) => self
                .agent_legs
                .get(index)
                .and_then(|leg| leg.as_ref().map(|leg| leg.answer.clone())),
            ("INVITE", None) => Some(self.answer_agent_invite(&message, &call_id)),
            ("ACK", Some(index)) => {
                if let Some(Some(leg)) = self.agent_legs.get_mut(index) {
                    leg.acked = true;
                }
                None
            }
            ("ACK", None) => None,
            ("BYE", known) => {
                if let Some(Some(leg)) = known.and_then(|index| self.agent_legs.get_mut(index)) {
                    leg.ended = true;
                }
                Some(response(&message, "200 OK", None, "", ""))
            }
            _ => Some(response(&message, "200 OK", None, "", "")),
        };
        if let Some(reply) = reply {
            let _ = self.farm.send_to(reply.as_bytes(), source);
        }
    }

    /// Answers a new agent INVITE: 200 with the call's agent RTP port, or an error status when
    /// the INVITE names no call of ours or carries no usable SDP.
    fn answer_agent_invite(&mut self, message: &SipMessage, call_id: &str) -> String {
        let index = message
            .from_user()
            .and_then(|user| user.strip_prefix('c'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < self.endpoints.len());
        let Some(index) = index else {
            self.malformed += 1;
            return response(message, "404 Not Found", Some("unknown"), "", "");
        };
        let switchboard_rtp = match sdp::audio_destination(&message.body) {
            Ok(address) => address,
            Err(_) => {
                self.malformed += 1;
                return response(message, "488 Not Acceptable Here", Some("nosdp"), "", "");
            }
        };
        let Some(endpoints) = self.endpoints.get(index).copied() else {
            return response(message, "404 Not Found", Some("unknown"), "", "");
        };
        let user = message
            .header("To")
            .and_then(|to| to.split_once("sip:"))
            .and_then(|(_, rest)| rest.split(['@', '>', ';']).next())
            .unwrap_or("agent")
            .to_owned();
        let contact = format!("Contact: <sip:{user}@{}>\r\n", self.farm_local);
        let body = sdp::answer(endpoints.agent_rtp, index as u64 + 1);
        let answer = response(
            message,
            "200 OK",
            Some(&format!("ag{index}")),
            &contact,
            &body,
        );
        self.agent_call_ids.insert(call_id.to_owned(), index);
        if let Some(slot) = self.agent_legs.get_mut(index) {
            *slot = Some(AgentLeg {
                answer: answer.clone(),
                switchboard_rtp,
                acked: false,
                ended: false,
            });
        }
        answer
    }
}
