//! Media anchoring as call control sees it: the port pool, the SDP each leg is given, and
//! the operations the I/O edge carries out on the per-call media sessions.
//!
//! Switchboard terminates SDP on each leg separately. The trunk and the agent each negotiate
//! with Switchboard's own address; RTP flows through the call's media session. Because each
//! leg's offer/answer is Switchboard's own, a re-INVITE on one leg (hold, a new address) is
//! answered here and only changes where the session sends, never the other leg's SDP.

use super::call::CallNumber;
use super::sdes_legs::{self, LegSecurity, Sdes};
use super::webrtc_legs::WebRtcLegs;
use media::sdes::CryptoAttribute;
use media::sdp::{self, Direction, Origin, SessionDescription};
use media::{Codec, LegConfig, MediaCommand, MediaError, MediaPlan, PortHold, PortPair, PortPool};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the I/O edge must do with media sessions.
#[derive(Debug)]
pub enum MediaOp {
    /// Start the call's session on the sockets held for its ports.
    Start(media::SessionConfig),
    /// Pass a command to a running session.
    Command {
        /// The call.
        call: CallNumber,
        /// What to do.
        command: MediaCommand,
    },
    /// Start recording the call into `path` (the I/O edge creates the file).
    Record {
        /// The call.
        call: CallNumber,
        /// The WAV file to write.
        path: std::path::PathBuf,
    },
    /// Stop the call's session; its `Ended` event releases the ports.
    Stop {
        /// The call.
        call: CallNumber,
    },
}

/// Why a call's media could not be set up; each maps to the SIP answer the INVITE gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// The SDP is unreadable or has nothing Switchboard can relay.
    #[error("{0}")]
    Sdp(#[from] MediaError),
    /// Every RTP port of the configured range is in use.
    #[error("no free RTP ports in the configured range")]
    NoPorts,
}

impl AnchorError {
    /// The SIP status for the refused INVITE (488, 400 or 503).
    pub fn sip_status(&self) -> u16 {
        match self {
            AnchorError::Sdp(error) => error.sip_status(),
            AnchorError::NoPorts => 503,
        }
    }
}

/// One call's media: its ports, the offer/answer state of both legs.
#[derive(Debug)]
pub struct CallMedia {
    /// Ports facing the trunk.
    pub trunk_ports: PortPair,
    /// Ports facing the agent.
    pub agent_ports: PortPair,
    /// The trunk's offer as accepted.
    pub trunk_plan: MediaPlan,
    /// The SDP Switchboard offers each agent it rings.
    pub agent_offer: Vec<u8>,
    /// That offer as a plan, to check the agent's answer against.
    pub agent_plan: MediaPlan,
    /// The codec both legs use (fixed once the trunk leg is answered).
    pub codec: Option<(Codec, u8)>,
    /// The trunk leg's remote side, as the session knows it.
    pub trunk_leg: LegConfig,
    /// What Switchboard has said to the trunk in SDP.
    pub trunk_sdp: LocalSdp,
    /// What Switchboard has said to the agents in SDP.
    pub agent_sdp: LocalSdp,
    /// The session has been started.
    pub started: bool,
    /// The direction the trunk leg last declared in its SDP (from its own point of view):
    /// not receiving means Switchboard sends it nothing, not sending means it is on hold.
    pub trunk_direction: Direction,
    /// The same for the agent leg.
    pub agent_direction: Direction,
    /// Switchboard sent the offer (the trunk's INVITE had none): the answer comes in the ACK.
    pub awaiting_answer: bool,
    /// Switchboard offered its SDP again in a 200 to this leg's re-INVITE without an offer:
    /// the leg's answer comes in the ACK.
    pub ack_answer_due: Option<media::Leg>,
    /// The trunk leg's SDES keys when it is SRTP.
    pub trunk_sdes: Option<Sdes>,
    /// The agent leg's SDES keys once an SRTP answer is in.
    pub agent_sdes: Option<Sdes>,
    /// The key line of the SRTP offer made to the agent being rung, if it was SRTP.
    pub agent_sdes_offer: Option<CryptoAttribute>,
    /// The trunk's INVITE had no SDP and the call rings agents: Switchboard offers the agent
    /// its own SDP, and the trunk its own in the 200 once the agent answered (see
    /// [`MediaPlane::anchor_delayed_offer`]).
    pub delayed_offer: bool,
    /// The agent leg of such a call between the agent's answer and the trunk's (in its ACK).
    pub pending_agent_leg: Option<LegConfig>,
}

/// Switchboard's side of one leg's offer/answer exchanges: its `o=` line and the last SDP it
/// sent. RFC 3264 §8: every SDP on a leg keeps the username and session id of the first, and
/// the version goes up by exactly one each time the description changes (and only then).
#[derive(Debug, Clone)]
pub struct LocalSdp {
    origin: Origin,
    last: Option<Vec<u8>>,
}

impl LocalSdp {
    fn new(ip: IpAddr) -> LocalSdp {
        LocalSdp {
            origin: Origin {
                username: "switchboard".to_string(),
                session_id: (rand::random::<u32>() as u64).to_string(),
                session_version: 1,
                address: ip.to_string(),
                address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_string(),
            },
            last: None,
        }
    }

    /// Puts this leg's origin on `sdp` and returns it encoded: same version as the last one
    /// sent when nothing else differs, the next version when something does.
    pub fn stamp(&mut self, mut sdp: SessionDescription) -> Vec<u8> {
        sdp.origin = self.origin.clone();
        let mut bytes = sdp.to_bytes();
        if self.last.as_ref().is_some_and(|last| *last != bytes) {
            self.origin.session_version += 1;
            sdp.origin.session_version = self.origin.session_version;
            bytes = sdp.to_bytes();
        }
        self.last = Some(bytes.clone());
        bytes
    }

    /// The last SDP sent on this leg (offered again in answer to a re-INVITE without one).
    pub fn last(&self) -> Option<&[u8]> {
        self.last.as_deref()
    }
}

/// The media side of the switch: the port pool and the queue of session operations.
#[derive(Debug)]
pub struct MediaPlane {
    pool: PortPool,
    /// Makes a pair ours before its ports are named in an SDP (the I/O edge binds them).
    hold: Box<dyn PortHold>,
    /// Pairs found held by another process, kept out of the pool until call control
    /// schedules their return ([`MediaPlane::take_busy`]).
    busy: Vec<PortPair>,
    /// Media worker threads: a call's pairs are taken from its worker's share of the range.
    workers: usize,
    bind_ip: IpAddr,
    sdp_ip: IpAddr,
    timeout: Option<Duration>,
    ops: VecDeque<MediaOp>,
    /// Browser agents' legs between our offer and their answer.
    webrtc: WebRtcLegs,
    /// Ports of sessions started and not yet reported ended; released on `Ended`, so a port
    /// is never handed out while the old socket may still be open.
    running: HashMap<CallNumber, (PortPair, PortPair)>,
    /// Extra legs (supervisors) handed to running sessions, with their ports: a leg and its
    /// ports stay taken until the session reports the leg removed (or not added), or ends.
    extra: HashMap<CallNumber, Vec<(media::Leg, PortPair)>>,
}

/// An extra leg (a supervisor's phone) negotiated with Switchboard: its ports, what the
/// session needs to know of it, and the SDP answer it gets.
#[derive(Debug, Clone)]
pub struct ExtraLeg {
    /// Ports taken from the pool for it.
    pub ports: PortPair,
    /// Its remote side.
    pub config: LegConfig,
    /// Switchboard's SDP state on this leg.
    pub sdp: LocalSdp,
    /// The SDP Switchboard sends it: the answer in our 200, or our offer when Switchboard
    /// calls the phone.
    pub local_body: Vec<u8>,
}

/// The telephone-event payload type Switchboard offers when it makes the offer.
const OFFERED_TELEPHONE_EVENT: u8 = 101;

/// How many of the least recently released pairs are searched for one on the call's worker.
const SAME_WORKER_REACH: usize = 16;

/// How long a latched peer must be silent before another source may take its place.
const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// Most pairs found held by another process that one allocation passes over before it
/// gives up (503 no-rtp-ports): bounds the system calls one INVITE can cost when a whole
/// range is taken; the pairs passed over are out of the pool by then, so the next INVITE
/// goes on from where this one stopped.
const MOST_BUSY_SKIPPED: usize = 64;

/// Ports bound only when their session starts: a plane that is never given the I/O edge's
/// [`PortHold`] (call control's unit tests, which start no sessions).
#[derive(Debug)]
struct BoundWhenStarted;

impl PortHold for BoundWhenStarted {
    fn hold(&self, _ip: IpAddr, _pair: PortPair) -> std::io::Result<()> {
        Ok(())
    }
}

impl MediaPlane {
    /// A plane over the configured port range. Fails when the range holds no port pair.
    pub fn new(config: &crate::config::MediaConfig) -> Result<MediaPlane, media::PortPoolError> {
        Ok(MediaPlane {
            pool: PortPool::new(config.rtp_port_min, config.rtp_port_max)?,
            hold: Box::new(BoundWhenStarted),
            busy: Vec::new(),
            workers: media::worker_count(config.workers.map(usize::from)),
            bind_ip: config.address,
            sdp_ip: config.public_address.unwrap_or(config.address),
            timeout: config.timeout,
            ops: VecDeque::new(),
            webrtc: WebRtcLegs::new(config.address, config.public_address),
            running: HashMap::new(),
            extra: HashMap::new(),
        })
    }

    /// The next operation for the I/O edge.
    pub fn poll(&mut self) -> Option<MediaOp> {
        self.ops.pop_front()
    }

    /// Port pairs free now (for the gauge).
    pub fn free_pairs(&self) -> usize {
        self.pool.available()
    }

    fn local(&self, pair: PortPair) -> SocketAddr {
        SocketAddr::new(self.sdp_ip, pair.rtp())
    }

    /// Pairs are held through `hold` from now on before they are handed to a call.
    pub fn hold_ports_with(&mut self, hold: Box<dyn PortHold>) {
        self.hold = hold;
    }

    /// Pairs found held by another process since the last call; they stay out of the pool
    /// until given to [`MediaPlane::release_quarantined`].
    pub fn take_busy(&mut self) -> Vec<PortPair> {
        std::mem::take(&mut self.busy)
    }

    fn allocate(&mut self) -> Result<(PortPair, PortPair), AnchorError> {
        let trunk = self.take_pair(|_| true)?;
        // The agent side on the trunk side's worker (the session runs there), so no socket
        // has to move between workers' pollers; any pair rather than none.
        let worker = media::worker_of(trunk, self.workers);
        let workers = self.workers;
        match self.take_pair(|pair| media::worker_of(pair, workers) == worker) {
            Ok(agent) => Ok((trunk, agent)),
            Err(error) => {
                self.release_pair(trunk);
                Err(error)
            }
        }
    }

    /// A free pair `wanted` prefers (among the next few, else any), held for the call: one
    /// another process holds is passed over and kept out of the pool, so a port taken by
    /// someone else costs a bind, never a call.
    fn take_pair(&mut self, wanted: impl Fn(PortPair) -> bool) -> Result<PortPair, AnchorError> {
        for _ in 0..=MOST_BUSY_SKIPPED {
            let pair = self
                .pool
                .allocate_preferring(&wanted, SAME_WORKER_REACH)
                .map_err(|_| AnchorError::NoPorts)?;
            match self.hold.hold(self.bind_ip, pair) {
                Ok(()) => return Ok(pair),
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    self.busy.push(pair);
                }
                Err(error) => {
                    // Out of file descriptors and the like: another pair would fail alike.
                    tracing::error!(%error, rtp_port = pair.rtp(), "cannot bind an RTP port pair");
                    self.release_pair(pair);
                    return Err(AnchorError::NoPorts);
                }
            }
        }
        Err(AnchorError::NoPorts)
    }

    fn release_pair(&mut self, pair: PortPair) {
        if let Err(error) = self.pool.release(pair) {
            tracing::error!(%error, "port pool bookkeeping");
        }
    }

    /// Anchors a trunk offer for a call that rings agents before the trunk is answered: the
    /// agent is offered the trunk's codecs (trimmed to PCMU/PCMA/telephone-event) at our
    /// agent-side port, and the trunk will get the agent's choice at our trunk-side port.
    /// `trunk_sdes`: the keys of an SRTP offer, already stripped from `offer`.
    pub fn anchor_passthrough(
        &mut self,
        offer: &[u8],
        trunk_sdes: Option<Sdes>,
    ) -> Result<CallMedia, AnchorError> {
        let (trunk_ports, agent_ports) = self.allocate()?;
        let planned = SessionDescription::parse(offer)
            .map_err(MediaError::from)
            .and_then(|offer| {
                media::anchor_parsed_offer(offer, self.local(agent_ports), &Codec::ALL)
            });
        match planned {
            Ok((plan, rewritten)) => {
                let trunk_direction = plan.offer_direction;
                // The agent is told of Switchboard's session, never of the trunk's origin.
                let mut agent_sdp = LocalSdp::new(self.sdp_ip);
                let agent_offer = agent_sdp.stamp(rewritten);
                Ok(CallMedia {
                    trunk_ports,
                    agent_ports,
                    agent_plan: plan.clone(),
                    trunk_leg: LegConfig {
                        srtp: trunk_sdes.map(|sdes| sdes.policy()),
                        ..trunk_leg_config(&plan, None)
                    },
                    trunk_plan: plan,
                    agent_offer,
                    codec: None,
                    trunk_sdp: LocalSdp::new(self.sdp_ip),
                    agent_sdp,
                    started: false,
                    trunk_direction,
                    agent_direction: Direction::SendRecv,
                    awaiting_answer: false,
                    ack_answer_due: None,
                    trunk_sdes,
                    agent_sdes: None,
                    agent_sdes_offer: None,
                    delayed_offer: false,
                    pending_agent_leg: None,
                })
            }
            Err(error) => {
                self.release_pair(trunk_ports);
                self.release_pair(agent_ports);
                Err(error.into())
            }
        }
    }

    /// Anchors a trunk offer for a call Switchboard answers itself (IVR, music on hold):
    /// returns the media and the SDP answer for the trunk's 200. One codec is chosen for
    /// both legs, so audio is relayed without transcoding.
    /// `trunk_sdes`: the keys of an SRTP offer, already stripped from `offer`.
    pub fn anchor_answered(
        &mut self,
        offer: &[u8],
        trunk_sdes: Option<Sdes>,
    ) -> Result<(CallMedia, Vec<u8>), AnchorError> {
        // Refuse before taking ports: most refusals are a codec mismatch.
        let parsed = SessionDescription::parse(offer).map_err(MediaError::from)?;
        sdp::negotiate(&parsed, &Codec::ALL).map_err(MediaError::from)?;
        let (trunk_ports, agent_ports) = self.allocate()?;
        match self.plan_answered(offer, trunk_ports, agent_ports) {
            Ok((mut media, mut answer)) => {
                let index = media.trunk_plan.media_index;
                sdes_legs::secure(&mut answer, index, trunk_sdes.as_ref().map(|s| &s.local));
                media.trunk_leg.srtp = trunk_sdes.map(|sdes| sdes.policy());
                media.trunk_sdes = trunk_sdes;
                let answer = media.trunk_sdp.stamp(answer);
                Ok((media, answer))
            }
            Err(error) => {
                self.release_pair(trunk_ports);
                self.release_pair(agent_ports);
                Err(error)
            }
        }
    }

    /// For an INVITE without SDP (a delayed offer) on a call Switchboard answers itself: the
    /// media and Switchboard's own offer (PCMU, PCMA, telephone-event) for the 200; the
    /// trunk's answer comes in the ACK ([`MediaPlane::offer_answered`]).
    pub fn anchor_offerless(&mut self) -> Result<(CallMedia, Vec<u8>), AnchorError> {
        let (trunk_ports, agent_ports) = self.allocate()?;
        let local = self.local(trunk_ports);
        let template = own_offer(local);
        let mut trunk_sdp = LocalSdp::new(self.sdp_ip);
        let planned = SessionDescription::parse(template.as_bytes())
            .map(|parsed| trunk_sdp.stamp(parsed))
            .map_err(MediaError::from)
            .and_then(|offer| {
                let (plan, _) = media::anchor_offer(&offer, local, &Codec::ALL)?;
                Ok((plan, offer))
            });
        let (plan, offer) = match planned {
            Ok(planned) => planned,
            Err(error) => {
                self.release_pair(trunk_ports);
                self.release_pair(agent_ports);
                return Err(error.into());
            }
        };
        let media = CallMedia {
            trunk_ports,
            agent_ports,
            trunk_leg: LegConfig::default(),
            agent_plan: plan.clone(),
            trunk_plan: plan,
            agent_offer: Vec::new(),
            codec: None,
            trunk_sdp,
            agent_sdp: LocalSdp::new(self.sdp_ip),
            started: false,
            trunk_direction: Direction::SendRecv,
            agent_direction: Direction::SendRecv,
            awaiting_answer: true,
            ack_answer_due: None,
            trunk_sdes: None,
            agent_sdes: None,
            agent_sdes_offer: None,
            delayed_offer: false,
            pending_agent_leg: None,
        };
        Ok((media, offer))
    }

    /// The trunk's answer (in its ACK) to the offer of [`MediaPlane::anchor_offerless`]:
    /// fixes the call's codec and the agents' offer. The session is not started here.
    pub fn offer_answered(
        &mut self,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<(), MediaError> {
        let (checked, _) =
            media::anchor_answer(&media.trunk_plan, answer, self.local(media.trunk_ports))?;
        // From here on the call looks like one whose trunk offered what it answered: plan
        // the agent side from the answer (the SDP the trunk already has stays Switchboard's).
        let (planned, _) = self
            .plan_answered(answer, media.trunk_ports, media.agent_ports)
            .map_err(|error| match error {
                AnchorError::Sdp(error) => error,
                AnchorError::NoPorts => {
                    MediaError::NotAcceptable(sdp::NoCommonCodec { reason: "no ports" })
                }
            })?;
        *media = CallMedia {
            trunk_leg: LegConfig {
                // The trunk's address is the one in its answer (latching may correct it).
                remote_rtp: checked.answerer_rtp,
                remote_rtcp: checked.answerer_rtcp,
                // Our offer had no rtcp-mux, so the trunk's answer cannot agree on it.
                rtcp_mux: false,
                ..planned.trunk_leg
            },
            trunk_sdp: media.trunk_sdp.clone(),
            ..planned
        };
        Ok(())
    }

    /// Plans a call Switchboard answers: the trunk side from `offer`, one codec for both
    /// legs, and the offer every agent gets, on ports already taken. The answer for the trunk
    /// is returned unstamped: only the caller knows whether it is sent.
    fn plan_answered(
        &self,
        offer: &[u8],
        trunk_ports: PortPair,
        agent_ports: PortPair,
    ) -> Result<(CallMedia, SessionDescription), AnchorError> {
        let parsed = SessionDescription::parse(offer).map_err(MediaError::from)?;
        let mut accepted = sdp::negotiate(&parsed, &Codec::ALL).map_err(MediaError::from)?;
        let codec = accepted.preferred();
        accepted.codecs.truncate(1);
        let trunk_sdp = LocalSdp::new(self.sdp_ip);
        let answer = sdp::build_answer(
            &parsed,
            &accepted,
            &trunk_sdp.origin,
            self.local(trunk_ports),
        );
        // The agent is offered the same single codec (and the trunk's telephone-event type,
        // so key presses relay unchanged), always two-way.
        let mut agent_sdp = LocalSdp::new(self.sdp_ip);
        let mut toward_agent = accepted.clone();
        toward_agent.direction = Direction::SendRecv;
        let agent_offer = agent_sdp.stamp(sdp::build_answer(
            &parsed,
            &toward_agent,
            &agent_sdp.origin,
            self.local(agent_ports),
        ));
        let (trunk_plan, _) = media::anchor_offer(offer, self.local(agent_ports), &Codec::ALL)?;
        let (agent_plan, _) =
            media::anchor_offer(&agent_offer, self.local(agent_ports), &Codec::ALL)?;
        let media = CallMedia {
            trunk_ports,
            agent_ports,
            trunk_leg: trunk_leg_config(&trunk_plan, Some(codec)),
            trunk_plan,
            agent_offer,
            agent_plan,
            codec: Some(codec),
            trunk_sdp,
            agent_sdp,
            started: false,
            trunk_direction: parsed
                .media
                .get(accepted.media_index)
                .map_or(Direction::SendRecv, |m| m.direction()),
            agent_direction: Direction::SendRecv,
            awaiting_answer: false,
            ack_answer_due: None,
            trunk_sdes: None,
            agent_sdes: None,
            agent_sdes_offer: None,
            delayed_offer: false,
            pending_agent_leg: None,
        };
        Ok((media, answer))
    }

    /// The agent answered a passthrough call: checks the answer, returns the SDP for the
    /// trunk's 200 and starts the session with both legs.
    pub fn agent_answered_passthrough(
        &mut self,
        now: Instant,
        call: CallNumber,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<Vec<u8>, MediaError> {
        let (answer, agent_sdes, webrtc) = self.agent_answer(now, call, media, answer)?;
        let (plan, mut for_trunk) = media::anchor_parsed_answer(
            &media.trunk_plan,
            SessionDescription::parse(&answer)?,
            self.local(media.trunk_ports),
        )?;
        media.codec = plan.codec;
        // The trunk negotiates with Switchboard, not with the phone: it keeps telephone-event
        // even when the agent's phone only does SIP INFO, so an agent's INFO key press can
        // still reach the caller's network as RFC 4733 (Switchboard generates those).
        if let Some(pt) = plan.offered_telephone_event {
            keep_telephone_event(&mut for_trunk, plan.media_index, pt);
        }
        let local_line = media.trunk_sdes.as_ref().map(|s| &s.local);
        sdes_legs::secure(&mut for_trunk, plan.media_index, local_line);
        let for_trunk = media.trunk_sdp.stamp(for_trunk);
        media.trunk_leg = LegConfig {
            srtp: media.trunk_sdes.map(|sdes| sdes.policy()),
            ..trunk_leg_config(&plan, plan.codec)
        };
        media.agent_direction = plan.answer_direction.unwrap_or(Direction::SendRecv);
        media.agent_sdes = agent_sdes;
        let agent = LegConfig {
            srtp: agent_sdes.map(|sdes| sdes.policy()),
            ..agent_leg_config(&plan)
        };
        self.start(call, media, Some(agent));
        self.attach_webrtc(call, webrtc);
        Ok(for_trunk)
    }

    /// The agent answered a call Switchboard had answered: checks the answer and bridges.
    pub fn agent_answered_bridge(
        &mut self,
        now: Instant,
        call: CallNumber,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<(), MediaError> {
        let (answer, agent_sdes, webrtc) = self.agent_answer(now, call, media, answer)?;
        let (plan, _) =
            media::anchor_answer(&media.agent_plan, &answer, self.local(media.agent_ports))?;
        media.agent_direction = plan.answer_direction.unwrap_or(Direction::SendRecv);
        media.agent_sdes = agent_sdes;
        let agent = LegConfig {
            srtp: agent_sdes.map(|sdes| sdes.policy()),
            ..agent_leg_config(&plan)
        };
        if media.started {
            self.command(
                call,
                MediaCommand::UpdateLeg {
                    leg: media::Leg::Agent,
                    config: agent,
                },
            );
        } else {
            self.start(call, media, Some(agent));
        }
        self.attach_webrtc(call, webrtc);
        Ok(())
    }

    /// The agent's answer as plain RTP, its SDES keys, and its WebRTC leg when the agent is
    /// a browser (see `webrtc_legs`).
    fn agent_answer(
        &mut self,
        now: Instant,
        call: CallNumber,
        media: &CallMedia,
        answer: &[u8],
    ) -> Result<AgentAnswer, MediaError> {
        if !self.webrtc.is_offered(call) {
            let (answer, sdes) = agent_answer(media, answer)?;
            return Ok((answer, sdes, None));
        }
        // Where the browser really is comes from ICE; the session latches on its first RTP.
        // Until then the agent leg's address is only a placeholder: Switchboard's own.
        match self.webrtc.answered(now, call, answer, self.bind_ip) {
            Ok((leg, plain)) => Ok((plain, None, Some(leg))),
            Err(reason) => {
                tracing::info!(call, %reason, "browser agent's answer refused");
                Err(refusal("unusable WebRTC answer (ICE/DTLS parameters)"))
            }
        }
    }

    /// Hands a browser agent's leg to the call's session (queued after its start or
    /// `UpdateLeg`, so the session already knows the agent leg when the leg arrives).
    fn attach_webrtc(&mut self, call: CallNumber, webrtc: Option<Box<media::WebRtcLeg>>) {
        if let Some(leg) = webrtc {
            self.command(call, MediaCommand::AttachWebRtc(leg));
        }
    }

    /// The SDP offered to one agent attempt over `transport`: a browser (WebSocket flow) gets
    /// a WebRTC offer, any other phone [`MediaPlane::agent_offer_for`].
    pub fn agent_offer_to(
        &mut self,
        now: Instant,
        call: CallNumber,
        media: &mut CallMedia,
        security: LegSecurity,
        transport: sip::Transport,
    ) -> Result<Vec<u8>, &'static str> {
        if !matches!(transport, sip::Transport::Ws | sip::Transport::Wss) {
            self.webrtc.forget(call);
            return self.agent_offer_for(media, security);
        }
        media.agent_sdes_offer = None;
        self.webrtc
            .offer(now, call, media.agent_ports, &media.agent_plan)
            .map_err(|reason| {
                tracing::warn!(call, %reason, "no WebRTC offer for the browser agent");
                "the WebRTC offer could not be made"
            })
    }

    /// The agent left the call (a transfer): the session drops the agent's phone, and the next
    /// agent is offered only the codec the caller already uses (there is no transcoding), in
    /// a new SDP session of its own.
    pub fn prepare_next_agent(&mut self, call: CallNumber, media: &mut CallMedia) {
        if media.started {
            self.command(call, MediaCommand::DropAgent);
        }
        let Ok(mut offer) = SessionDescription::parse(&media.agent_offer) else {
            return;
        };
        if let Some((_, payload_type)) = media.codec {
            let mut keep = vec![payload_type];
            keep.extend(media.agent_plan.offered_telephone_event);
            sdp::restrict_formats(&mut offer, media.agent_plan.media_index, &keep);
        }
        let mut agent_sdp = LocalSdp::new(self.sdp_ip);
        let agent_offer = agent_sdp.stamp(offer);
        if let Ok((plan, _)) =
            media::anchor_offer(&agent_offer, self.local(media.agent_ports), &Codec::ALL)
        {
            media.agent_plan = plan;
        }
        media.agent_offer = agent_offer;
        media.agent_sdp = agent_sdp;
        media.agent_direction = Direction::SendRecv;
        media.agent_sdes = None;
        media.agent_sdes_offer = None;
    }

    /// The SDP offered to one agent attempt: the call's agent offer, made RTP/SAVP with a
    /// fresh key when this agent's leg is SRTP (the key is kept to check its answer).
    /// `Err` when the agent must get SRTP and cannot (see [`LegSecurity::offers_srtp`]).
    pub fn agent_offer_for(
        &mut self,
        media: &mut CallMedia,
        security: LegSecurity,
    ) -> Result<Vec<u8>, &'static str> {
        let line = security.offers_srtp()?.then(sdes_legs::offer_line);
        media.agent_sdes_offer = line;
        let Some(line) = line else {
            return Ok(media.agent_offer.clone());
        };
        let Ok(mut offer) = SessionDescription::parse(&media.agent_offer) else {
            return Ok(media.agent_offer.clone());
        };
        sdes_legs::secure(&mut offer, media.agent_plan.media_index, Some(&line));
        Ok(media.agent_sdp.stamp(offer))
    }

    /// Anchors a ringing call whose trunk INVITE had no SDP, when an agent's leg needs
    /// Switchboard's own offer (SRTP keys are Switchboard's to offer): the agents are offered
    /// Switchboard's SDP (PCMU, PCMA, telephone-event) on the agent ports; the trunk gets its
    /// offer in the 200 once an agent answered ([`MediaPlane::agent_answered_delayed`]).
    pub fn anchor_delayed_offer(&mut self) -> Result<CallMedia, AnchorError> {
        let (trunk_ports, agent_ports) = self.allocate()?;
        let local = self.local(agent_ports);
        let mut agent_sdp = LocalSdp::new(self.sdp_ip);
        let planned = SessionDescription::parse(own_offer(local).as_bytes())
            .map(|parsed| agent_sdp.stamp(parsed))
            .map_err(MediaError::from)
            .and_then(|offer| {
                let (plan, _) = media::anchor_offer(&offer, local, &Codec::ALL)?;
                Ok((plan, offer))
            });
        let (plan, agent_offer) = match planned {
            Ok(planned) => planned,
            Err(error) => {
                self.release_pair(trunk_ports);
                self.release_pair(agent_ports);
                return Err(error.into());
            }
        };
        Ok(CallMedia {
            trunk_ports,
            agent_ports,
            trunk_plan: plan.clone(),
            agent_offer,
            agent_plan: plan,
            codec: None,
            trunk_leg: LegConfig::default(),
            trunk_sdp: LocalSdp::new(self.sdp_ip),
            agent_sdp,
            started: false,
            trunk_direction: Direction::SendRecv,
            agent_direction: Direction::SendRecv,
            awaiting_answer: false,
            ack_answer_due: None,
            trunk_sdes: None,
            agent_sdes: None,
            agent_sdes_offer: None,
            delayed_offer: true,
            pending_agent_leg: None,
        })
    }

    /// The agent answered a delayed-offer call: checks its answer and returns Switchboard's
    /// offer for the trunk's 200, with the agent's codec only (no transcoding). The session
    /// starts when the trunk's answer comes in its ACK ([`MediaPlane::delayed_offer_answered`]).
    pub fn agent_answered_delayed(
        &mut self,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<Vec<u8>, MediaError> {
        let (answer, agent_sdes) = agent_answer(media, answer)?;
        let (plan, _) =
            media::anchor_answer(&media.agent_plan, &answer, self.local(media.agent_ports))?;
        media.codec = plan.codec;
        media.agent_direction = plan.answer_direction.unwrap_or(Direction::SendRecv);
        media.agent_sdes = agent_sdes;
        media.pending_agent_leg = Some(LegConfig {
            srtp: agent_sdes.map(|sdes| sdes.policy()),
            ..agent_leg_config(&plan)
        });
        let local = self.local(media.trunk_ports);
        let mut offer = SessionDescription::parse(own_offer(local).as_bytes())?;
        if let Some((codec, _)) = media.codec {
            // Our own offer's payload types: the agent's answer may number them otherwise.
            let own = media
                .trunk_plan
                .offered_codecs
                .iter()
                .find(|(offered, _)| *offered == codec)
                .map(|(_, pt)| *pt);
            let mut keep: Vec<u8> = own.into_iter().collect();
            keep.extend(media.trunk_plan.offered_telephone_event);
            sdp::restrict_formats(&mut offer, media.trunk_plan.media_index, &keep);
        }
        let offer = media.trunk_sdp.stamp(offer);
        let (trunk_plan, _) = media::anchor_offer(&offer, local, &Codec::ALL)?;
        media.trunk_plan = trunk_plan;
        media.awaiting_answer = true;
        Ok(offer)
    }

    /// The trunk's answer (in its ACK) to the offer of [`MediaPlane::agent_answered_delayed`]:
    /// the session starts with both legs.
    pub fn delayed_offer_answered(
        &mut self,
        call: CallNumber,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<(), MediaError> {
        let (checked, _) =
            media::anchor_answer(&media.trunk_plan, answer, self.local(media.trunk_ports))?;
        media.trunk_direction = checked.answer_direction.unwrap_or(Direction::SendRecv);
        media.trunk_leg = LegConfig {
            remote_rtp: checked.answerer_rtp,
            remote_rtcp: checked.answerer_rtcp,
            telephone_event: checked.answered_telephone_event,
            codec: media.codec,
            srtp: None,
            rtcp_mux: checked.answerer_rtcp_mux,
        };
        media.awaiting_answer = false;
        media.delayed_offer = false;
        let agent = media.pending_agent_leg.take();
        self.start(call, media, agent);
        Ok(())
    }

    /// Starts the session of a call Switchboard answered, with only the trunk leg.
    pub fn start_answered(&mut self, call: CallNumber, media: &mut CallMedia) {
        self.start(call, media, None);
    }

    fn start(&mut self, call: CallNumber, media: &mut CallMedia, agent: Option<LegConfig>) {
        if media.started {
            return;
        }
        media.started = true;
        self.running
            .insert(call, (media.trunk_ports, media.agent_ports));
        self.ops.push_back(MediaOp::Start(media::SessionConfig {
            id: call,
            bind_ip: self.bind_ip,
            trunk_ports: media.trunk_ports,
            agent_ports: media.agent_ports,
            trunk: media.trunk_leg,
            agent,
            media_timeout: self.timeout,
            relatch_after: RELATCH_AFTER,
            rtcp: true,
        }));
    }

    /// Queues a command for a call's session.
    pub fn command(&mut self, call: CallNumber, command: MediaCommand) {
        self.ops.push_back(MediaOp::Command { call, command });
    }

    /// Records the call's session into `path`.
    pub fn record(&mut self, call: CallNumber, path: std::path::PathBuf) {
        self.ops.push_back(MediaOp::Record { call, path });
    }

    /// The call is over: stop its session, or give its ports back at once if it never started.
    pub fn finish(&mut self, call: CallNumber, media: CallMedia) {
        self.webrtc.forget(call);
        if media.started {
            self.ops.push_back(MediaOp::Stop { call });
        } else {
            self.release_pair(media.trunk_ports);
            self.release_pair(media.agent_ports);
        }
    }

    /// Whether `call` has a session that has not reported its end yet.
    pub fn is_running(&self, call: CallNumber) -> bool {
        self.running.contains_key(&call)
    }

    /// The session of `call` has ended and closed its sockets: its ports are free again.
    pub fn session_ended(&mut self, call: CallNumber) {
        if let Some((trunk, agent)) = self.running.remove(&call) {
            self.release_pair(trunk);
            self.release_pair(agent);
        }
        for (_, pair) in self.extra.remove(&call).unwrap_or_default() {
            self.release_pair(pair);
        }
    }

    /// The session of `call` could not bind its sockets: its pairs go back to the pool except
    /// those in `busy` (held by another socket), which are returned so the caller can keep
    /// them out of use for a while ([`MediaPlane::release_quarantined`]) — back at once, a
    /// busy pair would fail every call it is handed to as the pool cycles.
    pub fn session_failed(&mut self, call: CallNumber, busy: &[PortPair]) -> Vec<PortPair> {
        let mut quarantined = Vec::new();
        if let Some((trunk, agent)) = self.running.remove(&call) {
            for pair in [trunk, agent] {
                if busy.contains(&pair) {
                    quarantined.push(pair);
                } else {
                    self.release_pair(pair);
                }
            }
        }
        for (_, pair) in self.extra.remove(&call).unwrap_or_default() {
            self.release_pair(pair);
        }
        quarantined
    }

    /// Returns a pair kept out of use by [`MediaPlane::session_failed`] to the pool.
    pub fn release_quarantined(&mut self, pair: PortPair) {
        self.release_pair(pair);
    }

    /// Negotiates an extra leg's SDP offer on fresh ports: any codec Switchboard mixes
    /// (each leg of a mix is decoded and encoded on its own, so it need not be the call's).
    pub fn answer_extra_offer(&mut self, offer: &[u8]) -> Result<ExtraLeg, AnchorError> {
        let parsed = SessionDescription::parse(offer).map_err(MediaError::from)?;
        sdp::negotiate(&parsed, &Codec::ALL).map_err(MediaError::from)?;
        let ports = self.take_pair(|_| true)?;
        let mut local_sdp = LocalSdp::new(self.sdp_ip);
        match negotiate_leg(&parsed, None, &mut local_sdp, self.local(ports), None) {
            Ok((config, _, answer)) => Ok(ExtraLeg {
                ports,
                config,
                sdp: local_sdp,
                local_body: answer,
            }),
            Err(error) => {
                self.release_pair(ports);
                Err(error.into())
            }
        }
    }

    /// Switchboard's offer for an extra leg it calls (a supervisor's phone rung from the API),
    /// on fresh ports; the plan checks the phone's answer ([`MediaPlane::extra_answered`]).
    pub fn offer_extra_leg(&mut self) -> Result<(ExtraLeg, MediaPlan), AnchorError> {
        let ports = self.take_pair(|_| true)?;
        let local = self.local(ports);
        let mut local_sdp = LocalSdp::new(self.sdp_ip);
        let planned = SessionDescription::parse(own_offer(local).as_bytes())
            .map(|parsed| local_sdp.stamp(parsed))
            .map_err(MediaError::from)
            .and_then(|offer| Ok((media::anchor_offer(&offer, local, &Codec::ALL)?.0, offer)));
        match planned {
            Ok((plan, offer)) => Ok((
                ExtraLeg {
                    ports,
                    config: LegConfig::default(),
                    sdp: local_sdp,
                    local_body: offer,
                },
                plan,
            )),
            Err(error) => {
                self.release_pair(ports);
                Err(error.into())
            }
        }
    }

    /// The phone's answer to [`MediaPlane::offer_extra_leg`]: its remote side, kept on the leg.
    pub fn extra_answered(
        &self,
        leg: &mut ExtraLeg,
        plan: &MediaPlan,
        answer: &[u8],
    ) -> Result<LegConfig, MediaError> {
        let (checked, _) = media::anchor_answer(plan, answer, self.local(leg.ports))?;
        leg.config = LegConfig {
            remote_rtp: checked.answerer_rtp,
            remote_rtcp: checked.answerer_rtcp,
            telephone_event: checked.answered_telephone_event,
            codec: checked.codec,
            srtp: None,
            rtcp_mux: checked.answerer_rtcp_mux,
        };
        Ok(leg.config)
    }

    /// A new offer (re-INVITE/UPDATE) on an extra leg: its new remote side, the direction
    /// offered (a hold is `sendonly` or `inactive`) and the answer.
    pub fn answer_extra_reoffer(
        &self,
        leg: &mut ExtraLeg,
        offer: &[u8],
    ) -> Result<(LegConfig, Direction, Vec<u8>), MediaError> {
        let parsed = SessionDescription::parse(offer)?;
        let keep = leg.config.codec.map(|(codec, _)| codec);
        let local = self.local(leg.ports);
        let (config, direction, answer) = negotiate_leg(&parsed, keep, &mut leg.sdp, local, None)?;
        leg.config = config;
        Ok((config, direction, answer))
    }

    /// Adds an extra leg to the running session of `call`; its ports are tracked until the
    /// session gives them back.
    pub fn add_extra_leg(&mut self, call: CallNumber, leg: media::Leg, extra: &ExtraLeg) {
        self.reserve_extra_leg(call, leg, extra.ports);
        self.command(
            call,
            MediaCommand::AddLeg {
                leg,
                ports: extra.ports,
                config: extra.config,
            },
        );
    }

    /// Holds `leg` and its ports for `call` before the session has the leg (a phone being rung):
    /// released like an added leg, or with the session.
    pub fn reserve_extra_leg(&mut self, call: CallNumber, leg: media::Leg, ports: PortPair) {
        let legs = self.extra.entry(call).or_default();
        if !legs.iter().any(|(l, _)| *l == leg) {
            legs.push((leg, ports));
        }
    }

    /// An extra leg the session did not add, or has removed: its ports go back to the pool
    /// and the leg may be used again.
    pub fn extra_leg_released(&mut self, call: CallNumber, leg: media::Leg) {
        let Some(legs) = self.extra.get_mut(&call) else {
            return;
        };
        if let Some(at) = legs.iter().position(|(l, _)| *l == leg) {
            let (_, ports) = legs.swap_remove(at);
            self.release_pair(ports);
        }
    }

    /// An extra leg of `call`'s session that is not in use (nor still being removed).
    pub fn free_extra_leg(&self, call: CallNumber) -> Option<media::Leg> {
        let taken = self.extra.get(&call);
        (0..media::MAX_EXTRA_LEGS)
            .map(media::Leg::Extra)
            .find(|leg| !taken.is_some_and(|legs| legs.iter().any(|(l, _)| l == leg)))
    }

    /// Ports of an extra leg whose negotiation failed before the session saw it.
    pub fn release_unused(&mut self, ports: PortPair) {
        self.release_pair(ports);
    }

    /// Answers a re-INVITE/UPDATE offer from one leg locally: checks it keeps the call's
    /// codec, returns the leg's new remote parameters and Switchboard's SDP answer.
    pub fn answer_reoffer(
        &mut self,
        media: &mut CallMedia,
        leg: media::Leg,
        offer: &[u8],
    ) -> Result<(LegConfig, Direction, Vec<u8>), MediaError> {
        if super::webrtc_legs::is_webrtc_offer(offer) {
            // A browser agent's re-offer is answered by `answer_leg_reoffer`; one here is on a
            // leg that never negotiated WebRTC. Refused, the call goes on unchanged (RFC 3261
            // §14.2).
            return Err(refusal(
                "a WebRTC offer is answered only on a WebRTC phone's leg",
            ));
        }
        let (offer, sdes) = sdes_legs::accept_reoffer(offer, media.sdes(leg)).map_err(refusal)?;
        let parsed = SessionDescription::parse(&offer)?;
        let keep = media.codec.map(|(codec, _)| codec);
        let local = self.local(media.ports(leg));
        let local_key = sdes.as_ref().map(|s| &s.local);
        let (mut config, offered_direction, answer) =
            negotiate_leg(&parsed, keep, media.sdp_mut(leg), local, local_key)?;
        config.srtp = sdes.as_ref().map(|sdes| sdes.policy());
        media.set_sdes(leg, sdes);
        if leg == media::Leg::Trunk {
            media.trunk_leg = config;
        }
        *media.direction_mut(leg) = offered_direction;
        Ok((config, offered_direction, answer))
    }

    /// [`MediaPlane::answer_reoffer`] for a leg of `call`, where the agent's leg may be a
    /// browser's: its re-offer (hold, resume) is answered with our WebRTC SDP when it keeps
    /// the ICE credentials and DTLS fingerprint agreed (see `webrtc_legs`); the leg in the
    /// media session is untouched, only the direction changes. An ICE restart gets 488.
    pub fn answer_leg_reoffer(
        &mut self,
        call: CallNumber,
        media: &mut CallMedia,
        leg: media::Leg,
        offer: &[u8],
    ) -> Result<(LegConfig, Direction, Vec<u8>), MediaError> {
        let browser = leg == media::Leg::Agent && self.webrtc.is_answered(call);
        if !browser || !super::webrtc_legs::is_webrtc_offer(offer) {
            return self.answer_reoffer(media, leg, offer);
        }
        let plain = self
            .webrtc
            .reoffer(call, offer, self.bind_ip)
            .map_err(refusal)?;
        let parsed = SessionDescription::parse(&plain)?;
        let keep = media.codec.map(|(codec, _)| codec);
        let local = self.local(media.ports(leg));
        // The plain answer only checks the offer; the browser gets the WebRTC one, so what
        // Switchboard last said on this leg stays the WebRTC SDP.
        let mut scratch = media.sdp_mut(leg).clone();
        let (config, offered_direction, _) =
            negotiate_leg(&parsed, keep, &mut scratch, local, None)?;
        let Some(codec) = config.codec else {
            return Err(refusal("no codec in the WebRTC re-offer"));
        };
        let answer = self
            .webrtc
            .answer_again(
                call,
                codec,
                config.telephone_event,
                offered_direction.answer(),
            )
            .map_err(refusal)?;
        *media.direction_mut(leg) = offered_direction;
        Ok((config, offered_direction, answer))
    }

    /// The answer (in an ACK) to the SDP Switchboard offered again in its 200 to a re-INVITE
    /// without an offer: the leg's new remote parameters and direction. The answer must keep
    /// the call's codec.
    pub fn reoffer_answered(
        &mut self,
        media: &mut CallMedia,
        leg: media::Leg,
        answer: &[u8],
    ) -> Result<(LegConfig, Direction), MediaError> {
        let Some(offered) = media.sdp_mut(leg).last().map(<[u8]>::to_vec) else {
            return Err(MediaError::NotAcceptable(sdp::NoCommonCodec {
                reason: "no SDP was offered on this leg",
            }));
        };
        let local = self.local(media.ports(leg));
        let current = media.sdes(leg);
        let offered = sdes_legs::plain(&offered);
        let (answer, sdes) =
            sdes_legs::accept_answer(answer, current.map(|s| s.local)).map_err(refusal)?;
        let (offer_plan, _) = media::anchor_offer(&offered, local, &Codec::ALL)?;
        let (plan, _) = media::anchor_answer(&offer_plan, &answer, local)?;
        if media
            .codec
            .is_some_and(|(codec, _)| plan.codec.map(|(c, _)| c) != Some(codec))
        {
            return Err(MediaError::NotAcceptable(sdp::NoCommonCodec {
                reason: "the call's codec cannot change mid-call (no transcoding)",
            }));
        }
        let config = LegConfig {
            remote_rtp: plan.answerer_rtp,
            remote_rtcp: plan.answerer_rtcp,
            telephone_event: plan.answered_telephone_event,
            codec: media.codec.or(plan.codec),
            srtp: sdes.map(|sdes| sdes.policy()),
            rtcp_mux: plan.answerer_rtcp_mux,
        };
        media.set_sdes(leg, sdes);
        if leg == media::Leg::Trunk {
            media.trunk_leg = config;
        }
        let direction = plan.answer_direction.unwrap_or(Direction::SendRecv);
        *media.direction_mut(leg) = direction;
        Ok((config, direction))
    }
}

/// Switchboard's own offer from `local`: PCMU, PCMA and telephone-event, two-way.
fn own_offer(local: SocketAddr) -> String {
    let address_type = if local.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=- 0 0 IN {address_type} {ip}\r\ns=Switchboard\r\nc=IN {address_type} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 {te}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = local.ip(),
        port = local.port(),
        te = OFFERED_TELEPHONE_EVENT,
    )
}

/// Answers one leg's offer on its own: one codec (`keep`, when the leg may not change it),
/// Switchboard's answer stamped with the leg's origin, the leg's remote side and the
/// direction it offered.
fn negotiate_leg(
    parsed: &SessionDescription,
    keep: Option<Codec>,
    local_sdp: &mut LocalSdp,
    local: SocketAddr,
    local_key: Option<&media::sdes::CryptoAttribute>,
) -> Result<(LegConfig, Direction, Vec<u8>), MediaError> {
    let mut accepted = sdp::negotiate(parsed, &Codec::ALL)?;
    if let Some(codec) = keep {
        accepted.codecs.retain(|(c, _)| *c == codec);
        if accepted.codecs.is_empty() {
            return Err(MediaError::NotAcceptable(sdp::NoCommonCodec {
                reason: "the call's codec cannot change mid-call (no transcoding)",
            }));
        }
    }
    accepted.codecs.truncate(1);
    let mut answer = sdp::build_answer(parsed, &accepted, &local_sdp.origin, local);
    sdes_legs::secure(&mut answer, accepted.media_index, local_key);
    let answer = local_sdp.stamp(answer);
    let offered_direction = parsed
        .media
        .get(accepted.media_index)
        .map_or(Direction::SendRecv, |m| m.direction());
    let config = LegConfig {
        remote_rtp: accepted.remote_rtp,
        remote_rtcp: accepted.remote_rtcp,
        telephone_event: accepted.telephone_event,
        codec: Some(accepted.preferred()),
        srtp: None,
        // The answer built above accepts rtcp-mux exactly when it was offered.
        rtcp_mux: accepted.rtcp_mux,
    };
    Ok((config, offered_direction, answer))
}

impl CallMedia {
    /// The SDES keys `leg` agreed, if it is SRTP.
    pub fn sdes(&self, leg: media::Leg) -> Option<Sdes> {
        match leg {
            media::Leg::Trunk => self.trunk_sdes,
            media::Leg::Agent | media::Leg::Extra(_) => self.agent_sdes,
        }
    }

    fn set_sdes(&mut self, leg: media::Leg, sdes: Option<Sdes>) {
        match leg {
            media::Leg::Trunk => self.trunk_sdes = sdes,
            media::Leg::Agent | media::Leg::Extra(_) => self.agent_sdes = sdes,
        }
    }

    /// The ports facing `leg`.
    pub fn ports(&self, leg: media::Leg) -> PortPair {
        match leg {
            media::Leg::Trunk => self.trunk_ports,
            // Call control negotiates no extra leg yet (supervisor and conference legs will
            // carry their own SDP state); until then only trunk and agent reach here.
            media::Leg::Agent | media::Leg::Extra(_) => self.agent_ports,
        }
    }

    /// What Switchboard has said to `leg` in SDP.
    pub fn sdp_mut(&mut self, leg: media::Leg) -> &mut LocalSdp {
        match leg {
            media::Leg::Trunk => &mut self.trunk_sdp,
            media::Leg::Agent | media::Leg::Extra(_) => &mut self.agent_sdp,
        }
    }

    /// The direction `leg` last declared.
    pub fn direction(&self, leg: media::Leg) -> Direction {
        match leg {
            media::Leg::Trunk => self.trunk_direction,
            media::Leg::Agent | media::Leg::Extra(_) => self.agent_direction,
        }
    }

    fn direction_mut(&mut self, leg: media::Leg) -> &mut Direction {
        match leg {
            media::Leg::Trunk => &mut self.trunk_direction,
            media::Leg::Agent | media::Leg::Extra(_) => &mut self.agent_direction,
        }
    }

    /// The leg has put the call on hold: its SDP says it sends nothing.
    pub fn holding(&self, leg: media::Leg) -> bool {
        matches!(
            self.direction(leg),
            Direction::SendOnly | Direction::Inactive
        )
    }
}

/// Adds telephone-event payload type `pt` to media section `index` of an answer that lacks it.
fn keep_telephone_event(answer: &mut SessionDescription, index: usize, pt: u8) {
    let Some(section) = answer.media.get_mut(index) else {
        return;
    };
    let has_events = section
        .rtpmaps()
        .any(|map| map.encoding.eq_ignore_ascii_case("telephone-event"));
    if has_events || section.port == 0 {
        return;
    }
    section.formats.push(pt.to_string());
    section.attributes.push(sdp::Attribute::valued(
        "rtpmap",
        format!("{pt} telephone-event/8000"),
    ));
    section
        .attributes
        .push(sdp::Attribute::valued("fmtp", format!("{pt} 0-16")));
}

/// An agent's answer as plain RTP, its SDES keys, and its WebRTC leg if it is a browser.
type AgentAnswer = (Vec<u8>, Option<Sdes>, Option<Box<media::WebRtcLeg>>);

/// The agent's answer as plain RTP and its SDES keys, checked against what it was offered.
fn agent_answer(media: &CallMedia, answer: &[u8]) -> Result<(Vec<u8>, Option<Sdes>), MediaError> {
    sdes_legs::accept_answer(answer, media.agent_sdes_offer).map_err(refusal)
}

/// An SDES refusal as the 488 the SIP layer sends.
fn refusal(reason: &'static str) -> MediaError {
    MediaError::NotAcceptable(sdp::NoCommonCodec { reason })
}

fn trunk_leg_config(plan: &MediaPlan, codec: Option<(Codec, u8)>) -> LegConfig {
    LegConfig {
        remote_rtp: plan.offerer_rtp,
        remote_rtcp: plan.offerer_rtcp,
        telephone_event: plan.offered_telephone_event,
        codec,
        srtp: None,
        rtcp_mux: plan.offerer_rtcp_mux,
    }
}

fn agent_leg_config(plan: &MediaPlan) -> LegConfig {
    LegConfig {
        remote_rtp: plan.answerer_rtp,
        remote_rtcp: plan.answerer_rtcp,
        telephone_event: plan.answered_telephone_event,
        codec: plan.codec,
        srtp: None,
        rtcp_mux: plan.answerer_rtcp_mux,
    }
}

/// An I/O edge for call control's unit tests.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    /// The I/O edge as call control sees it: these RTP ports are held by another process.
    #[derive(Debug)]
    pub(in crate::switch) struct HeldElsewhere(pub(in crate::switch) Vec<u16>);

    impl PortHold for HeldElsewhere {
        fn hold(&self, _ip: IpAddr, pair: PortPair) -> std::io::Result<()> {
            match self.0.contains(&pair.rtp()) {
                true => Err(std::io::ErrorKind::AddrInUse.into()),
                false => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::HeldElsewhere;
    use super::*;
    use crate::config::MediaConfig;

    const OFFER: &[u8] =
        b"v=0\r\no=gw 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn plane(pairs: u16) -> MediaPlane {
        MediaPlane::new(&MediaConfig {
            address: "127.0.0.1".parse().expect("ip"),
            public_address: Some("203.0.113.5".parse().expect("ip")),
            rtp_port_min: 20000,
            rtp_port_max: 20000 + pairs * 2 - 1,
            timeout: Some(Duration::from_secs(30)),
            prompts_dir: None,
            recordings_dir: "/tmp".into(),
            allow_sdes_without_tls: false,
            workers: Some(2),
        })
        .expect("valid range")
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn a_pair_another_process_holds_is_passed_over_and_kept_out_until_released() {
        let mut plane = plane_with_busy(4, vec![20000]);
        let media = plane
            .anchor_passthrough(OFFER, None)
            .expect("other pairs are free");
        assert_ne!(media.trunk_ports.rtp(), 20000);
        assert_ne!(media.agent_ports.rtp(), 20000);
        let busy = plane.take_busy();
        assert_eq!(busy.iter().map(|p| p.rtp()).collect::<Vec<_>>(), [20000]);
        assert!(plane.take_busy().is_empty(), "reported once");
        assert_eq!(plane.free_pairs(), 1, "two in use, one kept out");
        plane.finish(1, media);
        assert_eq!(plane.free_pairs(), 3);
        plane.release_quarantined(busy[0]);
        assert_eq!(plane.free_pairs(), 4);
    }

    #[test]
    fn when_every_free_pair_is_held_elsewhere_the_call_gets_no_ports() {
        let mut plane = plane_with_busy(3, vec![20000, 20002, 20004]);
        assert_eq!(
            plane.anchor_passthrough(OFFER, None).map(|_| ()),
            Err(AnchorError::NoPorts)
        );
        assert_eq!(plane.take_busy().len(), 3);
        assert_eq!(plane.free_pairs(), 0, "all kept out, none lost");
        // One free pair is not enough for a bridged call: it goes back to the pool.
        let mut plane = plane_with_busy(3, vec![20000, 20002]);
        assert_eq!(
            plane.anchor_passthrough(OFFER, None).map(|_| ()),
            Err(AnchorError::NoPorts)
        );
        assert_eq!(plane.take_busy().len(), 2);
        assert_eq!(plane.free_pairs(), 1, "the held pair went back");
    }

    /// An edge that cannot bind anything (out of file descriptors).
    #[derive(Debug)]
    struct OutOfDescriptors;

    impl PortHold for OutOfDescriptors {
        fn hold(&self, _ip: IpAddr, _pair: PortPair) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    #[test]
    fn a_pair_that_cannot_be_bound_for_another_reason_refuses_the_call_and_stays_in_the_pool() {
        let mut plane = plane(4);
        plane.hold_ports_with(Box::new(OutOfDescriptors));
        assert_eq!(
            plane.anchor_passthrough(OFFER, None).map(|_| ()),
            Err(AnchorError::NoPorts)
        );
        assert!(plane.take_busy().is_empty(), "not another process's port");
        assert_eq!(plane.free_pairs(), 4, "nothing kept out or lost");
    }

    fn plane_with_busy(pairs: u16, busy: Vec<u16>) -> MediaPlane {
        let mut plane = plane(pairs);
        plane.hold_ports_with(Box::new(HeldElsewhere(busy)));
        plane
    }

    #[test]
    fn a_ringing_call_offers_the_agent_the_trunk_codecs_at_our_public_address() {
        let mut plane = plane(4);
        let media = plane
            .anchor_passthrough(OFFER, None)
            .expect("PCMA/PCMU offered");
        let offer = text(&media.agent_offer);
        assert!(offer.contains("c=IN IP4 203.0.113.5"), "{offer}");
        assert!(
            offer.contains(&format!(
                "m=audio {} RTP/AVP 8 0 101",
                media.agent_ports.rtp()
            )),
            "{offer}"
        );
        assert!(
            !offer.contains("G729") && !offer.contains("198.51.100.7"),
            "{offer}"
        );
        assert_eq!(plane.free_pairs(), 2, "two pairs taken");
        assert_eq!(
            media.trunk_leg.remote_rtp,
            Some("198.51.100.7:40000".parse().expect("addr"))
        );
    }

    #[test]
    fn an_answered_call_uses_the_callers_first_codec_on_both_legs() {
        let mut plane = plane(4);
        let (media, answer) = plane.anchor_answered(OFFER, None).expect("acceptable");
        let answer = text(&answer);
        assert!(
            answer.contains(&format!(
                "m=audio {} RTP/AVP 8 101",
                media.trunk_ports.rtp()
            )),
            "{answer}"
        );
        let offer = text(&media.agent_offer);
        assert!(
            offer.contains(&format!(
                "m=audio {} RTP/AVP 8 101",
                media.agent_ports.rtp()
            )),
            "{offer}"
        );
        assert!(offer.contains("a=sendrecv"), "{offer}");
        assert_eq!(media.codec, Some((Codec::Pcma, 8)));
    }

    /// `OFFER` from a trunk that offers rtcp-mux (RFC 5761).
    fn mux_offer() -> Vec<u8> {
        [OFFER, b"a=rtcp-mux\r\n"].concat()
    }

    #[test]
    fn a_trunk_offering_rtcp_mux_gets_it_and_an_agent_declining_it_keeps_rtcp_apart() {
        let mut plane = plane(4);
        let mut media = plane
            .anchor_passthrough(&mux_offer(), None)
            .expect("acceptable");
        assert!(media.trunk_leg.rtcp_mux);
        let agent_answer =
            b"v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
m=audio 16384 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let for_trunk = plane
            .agent_answered_passthrough(Instant::now(), 7, &mut media, agent_answer)
            .expect("valid answer");
        let for_trunk = text(&for_trunk);
        assert!(for_trunk.contains("a=rtcp-mux\r\n"), "{for_trunk}");
        let session = started(&mut plane);
        assert!(
            session.trunk.rtcp_mux,
            "the trunk's RTCP shares its RTP port"
        );
        let agent = session.agent.expect("agent leg");
        assert!(!agent.rtcp_mux, "the agent did not agree");
        assert_eq!(
            agent.remote_rtcp,
            Some("10.0.0.9:16385".parse().expect("addr"))
        );
    }

    #[test]
    fn an_answered_call_answers_rtcp_mux_only_when_offered() {
        let mut plane = plane(4);
        let (media, answer) = plane.anchor_answered(&mux_offer(), None).expect("ok");
        assert!(
            text(&answer).contains("a=rtcp-mux\r\n"),
            "{}",
            text(&answer)
        );
        assert!(media.trunk_leg.rtcp_mux);
        let (media, answer) = plane.anchor_answered(OFFER, None).expect("ok");
        assert!(!text(&answer).contains("rtcp-mux"), "{}", text(&answer));
        assert!(!media.trunk_leg.rtcp_mux);
    }

    const TRUNK_KEY: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn srtp_security(transport: sip::Transport) -> LegSecurity {
        LegSecurity::new(crate::config::SrtpMode::Optional, transport, false)
    }

    /// The agent's SRTP answer to `offer` with its own key, from 10.0.0.9:16384.
    fn agent_srtp_answer(offer: &str, key: media::MasterKey) -> (Vec<u8>, CryptoAttribute) {
        let tag = offer
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .and_then(|v| CryptoAttribute::parse(v).ok())
            .expect("the offer has a crypto line")
            .tag;
        let line = CryptoAttribute {
            tag,
            suite: media::SrtpSuite::AesCm128HmacSha1_80,
            key,
        };
        let answer = format!(
            "v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
             m=audio 16384 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:{}\r\n",
            line.to_value()
        );
        (answer.into_bytes(), line)
    }

    fn started(plane: &mut MediaPlane) -> media::SessionConfig {
        loop {
            match plane.poll() {
                Some(MediaOp::Start(config)) => return config,
                Some(_) => continue,
                None => panic!("no session started"),
            }
        }
    }

    #[test]
    fn an_srtp_trunk_and_an_srtp_agent_each_get_their_own_keys() {
        let mut plane = plane(4);
        let savp =
            text(OFFER).replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:{TRUNK_KEY}\r\n");
        let (plain, trunk_sdes) =
            sdes_legs::accept_offer(savp.as_bytes(), srtp_security(sip::Transport::Tls))
                .expect("SRTP over TLS accepted");
        let mut media = plane
            .anchor_passthrough(&plain, trunk_sdes)
            .expect("anchored");
        // The agent over TLS is offered SRTP with Switchboard's key, never the trunk's.
        let offer = plane
            .agent_offer_for(&mut media, srtp_security(sip::Transport::Tls))
            .expect("offer");
        let offer = text(&offer);
        assert!(
            offer.contains(&format!(
                "m=audio {} RTP/SAVP 8 0 101",
                media.agent_ports.rtp()
            )),
            "{offer}"
        );
        assert_eq!(offer.matches("a=crypto:").count(), 1, "{offer}");
        assert!(
            !offer.contains("WVNfX19z"),
            "the trunk's key stays on the trunk leg: {offer}"
        );
        let agent_key = media::MasterKey::random();
        let (answer, _) = agent_srtp_answer(&offer, agent_key);
        let for_trunk = plane
            .agent_answered_passthrough(Instant::now(), 7, &mut media, &answer)
            .expect("SRTP answer accepted");
        let for_trunk = text(&for_trunk);
        assert!(
            for_trunk.contains(&format!(
                "m=audio {} RTP/SAVP 8 101",
                media.trunk_ports.rtp()
            )),
            "{for_trunk}"
        );
        let trunk_sdes = trunk_sdes.expect("trunk SRTP");
        assert!(
            for_trunk.contains(&format!("a=crypto:{}", trunk_sdes.local.to_value())),
            "{for_trunk}"
        );
        let config = started(&mut plane);
        assert_eq!(config.trunk.srtp, Some(trunk_sdes.policy()));
        let agent_policy = config.agent.and_then(|a| a.srtp).expect("agent SRTP");
        assert_eq!(agent_policy.receive_key, agent_key);
        assert_eq!(
            Some(agent_policy.send_key),
            media.agent_sdes_offer.map(|l| l.key)
        );
    }

    #[test]
    fn a_delayed_offer_call_offers_an_srtp_agent_our_key_and_the_trunk_the_agents_codec() {
        let mut plane = plane(4);
        let mut media = plane.anchor_delayed_offer().expect("ports");
        let offer = plane
            .agent_offer_for(&mut media, srtp_security(sip::Transport::Tls))
            .expect("offer");
        let offer = text(&offer);
        assert!(
            offer.contains("RTP/SAVP 0 8 101")
                && offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{offer}"
        );
        assert!(offer.contains("c=IN IP4 203.0.113.5"), "{offer}");
        let agent_key = media::MasterKey::random();
        let (answer, _) = agent_srtp_answer(&offer, agent_key);
        let for_trunk = plane
            .agent_answered_delayed(&mut media, &answer)
            .expect("the agent's SRTP answer fits");
        let for_trunk = text(&for_trunk);
        // The trunk is offered plain RTP (it offered nothing) with the agent's codec only.
        assert!(
            for_trunk.contains("m=audio 20000 RTP/AVP 8 101\r\n"),
            "{for_trunk}"
        );
        assert!(!for_trunk.contains("crypto"), "{for_trunk}");
        assert!(
            plane.poll().is_none(),
            "no session before the trunk's answer"
        );
        let trunk_answer = b"v=0\r\no=gw 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        plane
            .delayed_offer_answered(7, &mut media, trunk_answer)
            .expect("the trunk's answer fits");
        let config = started(&mut plane);
        assert_eq!(
            config.trunk.remote_rtp,
            Some("198.51.100.7:40000".parse().expect("addr"))
        );
        assert_eq!(config.trunk.srtp, None);
        let agent = config.agent.expect("the agent leg starts with the trunk's");
        assert_eq!(
            agent.remote_rtp,
            Some("10.0.0.9:16384".parse().expect("addr"))
        );
        assert_eq!(agent.srtp.map(|p| p.receive_key), Some(agent_key));
    }

    #[test]
    fn a_plain_trunk_and_an_agent_without_tls_stay_plain_rtp() {
        let mut plane = plane(4);
        let mut media = plane.anchor_passthrough(OFFER, None).expect("anchored");
        let offer = plane
            .agent_offer_for(&mut media, srtp_security(sip::Transport::Udp))
            .expect("offer");
        assert!(text(&offer).contains("RTP/AVP") && !text(&offer).contains("crypto"));
        let answer = b"v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 16384 RTP/AVP 8\r\n";
        plane
            .agent_answered_passthrough(Instant::now(), 7, &mut media, answer)
            .expect("plain answer");
        let config = started(&mut plane);
        assert_eq!(
            (config.trunk.srtp, config.agent.and_then(|a| a.srtp)),
            (None, None)
        );
        let required = LegSecurity::new(
            crate::config::SrtpMode::Required,
            sip::Transport::Udp,
            false,
        );
        let mut media = plane.anchor_passthrough(OFFER, None).expect("anchored");
        assert!(plane.agent_offer_for(&mut media, required).is_err());
    }

    #[test]
    fn an_agent_answering_an_srtp_offer_with_plain_rtp_is_refused() {
        let mut plane = plane(4);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("anchored");
        plane
            .agent_offer_for(&mut media, srtp_security(sip::Transport::Tls))
            .expect("offer");
        let plain = b"v=0\r\no=p 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 16384 RTP/AVP 8\r\n";
        let error = plane
            .agent_answered_bridge(Instant::now(), 7, &mut media, plain)
            .expect_err("not SRTP");
        assert_eq!(error.sip_status(), 488);
        assert!(error.to_string().contains("not RTP/SAVP"), "{error}");
    }

    #[test]
    fn an_srtp_reinvite_keeps_switchboards_key_and_takes_the_new_peer_key() {
        let mut plane = plane(4);
        let savp =
            text(OFFER).replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:{TRUNK_KEY}\r\n");
        let (plain, trunk_sdes) =
            sdes_legs::accept_offer(savp.as_bytes(), srtp_security(sip::Transport::Tls))
                .expect("ok");
        let (mut media, _) = plane.anchor_answered(&plain, trunk_sdes).expect("anchored");
        let ours = trunk_sdes.expect("SRTP").local;
        let new_key = media::MasterKey::random();
        let line = CryptoAttribute {
            tag: 1,
            suite: media::SrtpSuite::AesCm128HmacSha1_80,
            key: new_key,
        };
        let reoffer = text(OFFER).replace("RTP/AVP", "RTP/SAVP")
            + &format!("a=crypto:{}\r\na=sendonly\r\n", line.to_value());
        let (config, _, answer) = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, reoffer.as_bytes())
            .expect("hold accepted");
        let policy = config.srtp.expect("still SRTP");
        assert_eq!((policy.send_key, policy.receive_key), (ours.key, new_key));
        assert!(text(&answer).contains(&format!("a=crypto:{}", ours.to_value())));
        let error = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, OFFER)
            .expect_err("plain RTP mid-call");
        assert!(error.to_string().contains("switched off"), "{error}");
    }

    #[test]
    fn the_answer_to_switchboards_srtp_reoffer_keeps_the_keys_in_step() {
        let mut plane = plane(4);
        let savp =
            text(OFFER).replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:{TRUNK_KEY}\r\n");
        let (plain, trunk_sdes) =
            sdes_legs::accept_offer(savp.as_bytes(), srtp_security(sip::Transport::Tls))
                .expect("ok");
        let (mut media, _) = plane.anchor_answered(&plain, trunk_sdes).expect("anchored");
        let ours = trunk_sdes.expect("SRTP").local;
        // A re-INVITE without SDP gets the last SDP again: it carries Switchboard's key.
        let reoffered = text(media.trunk_sdp.last().expect("sent"));
        assert!(
            reoffered.contains(&format!("a=crypto:{}", ours.to_value())),
            "{reoffered}"
        );
        let new_key = media::MasterKey::random();
        let line = CryptoAttribute {
            tag: ours.tag,
            suite: ours.suite,
            key: new_key,
        };
        let answer = text(OFFER).replace("RTP/AVP", "RTP/SAVP")
            + &format!("a=crypto:{}\r\n", line.to_value());
        let (config, _) = plane
            .reoffer_answered(&mut media, media::Leg::Trunk, answer.as_bytes())
            .expect("SRTP answer in the ACK");
        let policy = config.srtp.expect("still SRTP");
        assert_eq!((policy.send_key, policy.receive_key), (ours.key, new_key));
        assert!(
            plane
                .reoffer_answered(&mut media, media::Leg::Trunk, OFFER)
                .is_err(),
            "a plain answer to an SRTP offer"
        );
    }

    #[test]
    fn refusals_give_their_sip_status_and_keep_no_ports() {
        let mut plane = plane(2);
        let g729 = b"v=0\r\no=gw 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\n";
        let error = plane.anchor_passthrough(g729, None).expect_err("no G.711");
        assert_eq!(error.sip_status(), 488);
        assert_eq!(
            plane
                .anchor_answered(b"garbage", None)
                .map(|_| ())
                .map_err(|e| e.sip_status()),
            Err(400)
        );
        assert_eq!(plane.free_pairs(), 2, "nothing leaked");
        let first = plane
            .anchor_passthrough(OFFER, None)
            .expect("one call fits");
        assert_eq!(
            plane
                .anchor_passthrough(OFFER, None)
                .map(|_| ())
                .map_err(|e| e.sip_status()),
            Err(503)
        );
        plane.finish(1, first);
        assert_eq!(
            plane.free_pairs(),
            2,
            "an unstarted call's ports come back at once"
        );
    }

    #[test]
    fn a_calls_two_pairs_belong_to_one_media_worker() {
        let mut plane = plane(8);
        for call in 0..4 {
            let (media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
            assert_eq!(
                media::worker_of(media.trunk_ports, 2),
                media::worker_of(media.agent_ports, 2),
                "call {call}: {:?} and {:?}",
                media.trunk_ports,
                media.agent_ports
            );
            plane.finish(call, media);
        }
    }

    #[test]
    fn ports_of_a_started_session_come_back_only_when_it_has_ended() {
        let mut plane = plane(2);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
        plane.start_answered(7, &mut media);
        assert!(matches!(plane.poll(), Some(MediaOp::Start(config)) if config.id == 7));
        plane.finish(7, media);
        assert!(matches!(plane.poll(), Some(MediaOp::Stop { call: 7 })));
        assert_eq!(plane.free_pairs(), 0, "the sockets may still be open");
        assert!(plane.is_running(7));
        plane.session_ended(7);
        assert_eq!(plane.free_pairs(), 2);
    }

    #[test]
    fn a_reoffer_keeps_the_codec_bumps_our_version_and_reports_hold() {
        let mut plane = plane(2);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
        let hold =
            b"v=0\r\no=gw 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let (config, direction, answer) = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, hold)
            .expect("same codec");
        assert_eq!(direction, Direction::SendOnly);
        assert_eq!(
            config.remote_rtp,
            Some("198.51.100.7:40002".parse().expect("addr"))
        );
        let answer = text(&answer);
        assert!(answer.contains("a=recvonly"), "{answer}");
        assert!(
            answer.contains(" 2 IN IP4 203.0.113.5"),
            "our o= version went up: {answer}"
        );
        let pcmu_only = b"v=0\r\no=gw 1 3 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";
        let error = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, pcmu_only)
            .expect_err("codec change");
        assert_eq!(error.sip_status(), 488);
    }

    #[test]
    fn a_reoffer_decides_rtcp_mux_afresh_for_that_leg() {
        let mut plane = plane(2);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
        assert!(!media.trunk_leg.rtcp_mux);
        let muxed = [
            b"v=0\r\no=gw 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                .as_slice(),
            b"a=rtcp-mux\r\n",
        ]
        .concat();
        let (config, _, answer) = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, &muxed)
            .expect("same codec");
        assert!(config.rtcp_mux && media.trunk_leg.rtcp_mux);
        assert!(
            text(&answer).contains("a=rtcp-mux\r\n"),
            "{}",
            text(&answer)
        );
        let plain =
            b"v=0\r\no=gw 1 3 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40002 RTP/AVP 8\r\n";
        let (config, _, answer) = plane
            .answer_reoffer(&mut media, media::Leg::Trunk, plain)
            .expect("same codec");
        assert!(!config.rtcp_mux);
        assert!(!text(&answer).contains("rtcp-mux"), "{}", text(&answer));
    }

    #[test]
    fn a_browsers_mid_call_webrtc_offer_is_refused_with_a_reason() {
        let mut plane = plane(2);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
        let browser_hold = b"v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 8\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=rtcp-mux\r\n";
        let error = plane
            .answer_reoffer(&mut media, media::Leg::Agent, browser_hold)
            .expect_err("not supported");
        assert_eq!(error.sip_status(), 488);
        assert!(error.to_string().contains("WebRTC phone"), "{error}");
        assert_eq!(
            media.direction(media::Leg::Agent),
            Direction::SendRecv,
            "unchanged"
        );
    }

    #[test]
    fn a_browser_agents_hold_is_answered_over_webrtc_and_an_ice_restart_refused() {
        let mut plane = plane(2);
        let (mut media, _) = plane.anchor_answered(OFFER, None).expect("acceptable");
        let now = Instant::now();
        plane
            .webrtc
            .offer(now, 9, media.agent_ports, &media.agent_plan)
            .expect("WebRTC offer");
        let answer = "v=0\r\no=- 77 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 8 101\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:brws\r\n\
a=ice-pwd:browserpasswordbrowser00\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:active\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";
        plane
            .webrtc
            .answered(now, 9, answer.as_bytes(), "127.0.0.1".parse().expect("ip"))
            .expect("browser answer");
        let hold = answer
            .replace("a=setup:active", "a=setup:actpass")
            .replace("a=sendrecv", "a=sendonly")
            .replace(" 2 IN IP4", " 3 IN IP4");
        let (_, direction, ours) = plane
            .answer_leg_reoffer(9, &mut media, media::Leg::Agent, hold.as_bytes())
            .expect("hold answered");
        assert_eq!(direction, Direction::SendOnly);
        assert_eq!(media.direction(media::Leg::Agent), Direction::SendOnly);
        assert!(media.holding(media::Leg::Agent));
        let ours = text(&ours);
        for wanted in [
            "UDP/TLS/RTP/SAVPF 8 101",
            "a=recvonly",
            "a=setup:passive",
            "a=ice-lite",
        ] {
            assert!(ours.contains(wanted), "{wanted} missing:\n{ours}");
        }

        let restart = hold.replace("ice-ufrag:brws", "ice-ufrag:anew");
        let error = plane
            .answer_leg_reoffer(9, &mut media, media::Leg::Agent, restart.as_bytes())
            .expect_err("ICE restart");
        assert_eq!(error.sip_status(), 488);
        assert!(error.to_string().contains("ICE restart"), "{error}");
        assert_eq!(
            media.direction(media::Leg::Agent),
            Direction::SendOnly,
            "a refused re-offer changes nothing"
        );
    }
}
