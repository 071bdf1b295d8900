//! Media anchoring as call control sees it: the port pool, the SDP each leg is given, and
//! the operations the I/O edge carries out on the per-call media sessions.
//!
//! Switchboard terminates SDP on each leg separately. The trunk and the agent each negotiate
//! with Switchboard's own address; RTP flows through the call's media session. Because each
//! leg's offer/answer is Switchboard's own, a re-INVITE on one leg (hold, a new address) is
//! answered here and only changes where the session sends, never the other leg's SDP.

use super::call::CallNumber;
use media::sdp::{self, Direction, Origin, SessionDescription};
use media::{Codec, LegConfig, MediaCommand, MediaError, MediaPlan, PortPair, PortPool};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What the I/O edge must do with media sessions.
#[derive(Debug)]
pub enum MediaOp {
    /// Bind the call's ports and start its session.
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
    /// Our `o=` line toward the trunk, once we have sent the trunk an SDP of our own.
    pub trunk_origin: Option<Origin>,
    /// Our `o=` line toward the agent.
    pub agent_origin: Origin,
    /// The session has been started.
    pub started: bool,
    /// The agent put the call on hold (music plays to the caller meanwhile).
    pub agent_holding: bool,
}

/// The media side of the switch: the port pool and the queue of session operations.
#[derive(Debug)]
pub struct MediaPlane {
    pool: PortPool,
    bind_ip: IpAddr,
    sdp_ip: IpAddr,
    timeout: Option<Duration>,
    ops: VecDeque<MediaOp>,
    /// Ports of sessions started and not yet reported ended; released on `Ended`, so a port
    /// is never handed out while the old socket may still be open.
    running: HashMap<CallNumber, (PortPair, PortPair)>,
}

/// How long a latched peer must be silent before another source may take its place.
const RELATCH_AFTER: Duration = Duration::from_secs(2);

impl MediaPlane {
    /// A plane over the configured port range. Fails when the range holds no port pair.
    pub fn new(config: &crate::config::MediaConfig) -> Result<MediaPlane, media::PortPoolError> {
        Ok(MediaPlane {
            pool: PortPool::new(config.rtp_port_min, config.rtp_port_max)?,
            bind_ip: config.address,
            sdp_ip: config.public_address.unwrap_or(config.address),
            timeout: config.timeout,
            ops: VecDeque::new(),
            running: HashMap::new(),
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

    fn allocate(&mut self) -> Result<(PortPair, PortPair), AnchorError> {
        let trunk = self.pool.allocate().map_err(|_| AnchorError::NoPorts)?;
        match self.pool.allocate() {
            Ok(agent) => Ok((trunk, agent)),
            Err(_) => {
                self.release_pair(trunk);
                Err(AnchorError::NoPorts)
            }
        }
    }

    fn release_pair(&mut self, pair: PortPair) {
        if let Err(error) = self.pool.release(pair) {
            tracing::error!(%error, "port pool bookkeeping");
        }
    }

    /// Anchors a trunk offer for a call that rings agents before the trunk is answered: the
    /// agent is offered the trunk's codecs (trimmed to PCMU/PCMA/telephone-event) at our
    /// agent-side port, and the trunk will get the agent's choice at our trunk-side port.
    pub fn anchor_passthrough(&mut self, offer: &[u8]) -> Result<CallMedia, AnchorError> {
        let (trunk_ports, agent_ports) = self.allocate()?;
        match media::anchor_offer(offer, self.local(agent_ports), &Codec::ALL) {
            Ok((plan, agent_offer)) => Ok(CallMedia {
                trunk_ports,
                agent_ports,
                agent_plan: plan.clone(),
                trunk_leg: trunk_leg_config(&plan, None),
                trunk_plan: plan,
                agent_offer,
                codec: None,
                trunk_origin: None,
                agent_origin: new_origin(self.sdp_ip),
                started: false,
                agent_holding: false,
            }),
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
    pub fn anchor_answered(&mut self, offer: &[u8]) -> Result<(CallMedia, Vec<u8>), AnchorError> {
        let parsed = SessionDescription::parse(offer).map_err(MediaError::from)?;
        let mut accepted = sdp::negotiate(&parsed, &Codec::ALL).map_err(MediaError::from)?;
        let (trunk_ports, agent_ports) = self.allocate()?;
        let codec = accepted.preferred();
        accepted.codecs.truncate(1);
        let trunk_origin = new_origin(self.sdp_ip);
        let answer = sdp::build_answer(&parsed, &accepted, &trunk_origin, self.local(trunk_ports));
        // The agent is offered the same single codec (and the trunk's telephone-event type,
        // so key presses relay unchanged), always two-way.
        let agent_origin = new_origin(self.sdp_ip);
        let mut toward_agent = accepted.clone();
        toward_agent.direction = Direction::SendRecv;
        let agent_offer = sdp::build_answer(
            &parsed,
            &toward_agent,
            &agent_origin,
            self.local(agent_ports),
        )
        .to_bytes();
        let plans = media::anchor_offer(offer, self.local(agent_ports), &Codec::ALL).and_then(
            |(trunk_plan, _)| {
                let (agent_plan, _) =
                    media::anchor_offer(&agent_offer, self.local(agent_ports), &Codec::ALL)?;
                Ok((trunk_plan, agent_plan))
            },
        );
        let (trunk_plan, agent_plan) = match plans {
            Ok(plans) => plans,
            Err(error) => {
                self.release_pair(trunk_ports);
                self.release_pair(agent_ports);
                return Err(error.into());
            }
        };
        let media = CallMedia {
            trunk_ports,
            agent_ports,
            trunk_leg: trunk_leg_config(&trunk_plan, Some(codec)),
            trunk_plan,
            agent_offer,
            agent_plan,
            codec: Some(codec),
            trunk_origin: Some(trunk_origin),
            agent_origin,
            started: false,
            agent_holding: false,
        };
        Ok((media, answer.to_bytes()))
    }

    /// The agent answered a passthrough call: checks the answer, returns the SDP for the
    /// trunk's 200 and starts the session with both legs.
    pub fn agent_answered_passthrough(
        &mut self,
        call: CallNumber,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<Vec<u8>, MediaError> {
        let (plan, for_trunk) =
            media::anchor_answer(&media.trunk_plan, answer, self.local(media.trunk_ports))?;
        media.codec = plan.codec;
        media.trunk_leg = LegConfig {
            telephone_event: plan
                .answered_telephone_event
                .and(plan.offered_telephone_event),
            ..trunk_leg_config(&plan, plan.codec)
        };
        if let Ok(parsed) = SessionDescription::parse(&for_trunk) {
            media.trunk_origin = Some(parsed.origin);
        }
        let agent = agent_leg_config(&plan);
        self.start(call, media, Some(agent));
        Ok(for_trunk)
    }

    /// The agent answered a call Switchboard had answered: checks the answer and bridges.
    pub fn agent_answered_bridge(
        &mut self,
        call: CallNumber,
        media: &mut CallMedia,
        answer: &[u8],
    ) -> Result<(), MediaError> {
        let (plan, _) =
            media::anchor_answer(&media.agent_plan, answer, self.local(media.agent_ports))?;
        let agent = agent_leg_config(&plan);
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
    }

    /// Answers a re-INVITE/UPDATE offer from one leg locally: checks it keeps the call's
    /// codec, returns the leg's new remote parameters and Switchboard's SDP answer.
    pub fn answer_reoffer(
        &mut self,
        media: &mut CallMedia,
        leg: media::Leg,
        offer: &[u8],
    ) -> Result<(LegConfig, Direction, Vec<u8>), MediaError> {
        let parsed = SessionDescription::parse(offer)?;
        let mut accepted = sdp::negotiate(&parsed, &Codec::ALL)?;
        let current = media.codec;
        if let Some((codec, _)) = current {
            accepted.codecs.retain(|(c, _)| *c == codec);
            if accepted.codecs.is_empty() {
                return Err(MediaError::NotAcceptable(sdp::NoCommonCodec {
                    reason: "the call's codec cannot change mid-call (no transcoding)",
                }));
            }
        }
        accepted.codecs.truncate(1);
        let (pair, origin) = match leg {
            media::Leg::Trunk => (
                media.trunk_ports,
                media
                    .trunk_origin
                    .get_or_insert_with(|| new_origin(self.sdp_ip)),
            ),
            media::Leg::Agent => (media.agent_ports, &mut media.agent_origin),
        };
        origin.session_version += 1;
        let answer = sdp::build_answer(&parsed, &accepted, origin, self.local(pair));
        let offered_direction = parsed
            .media
            .get(accepted.media_index)
            .map_or(Direction::SendRecv, |m| m.direction());
        let config = LegConfig {
            remote_rtp: accepted.remote_rtp,
            remote_rtcp: accepted.remote_rtcp,
            telephone_event: accepted.telephone_event,
            codec: Some(accepted.preferred()),
        };
        if leg == media::Leg::Trunk {
            media.trunk_leg = config;
        }
        Ok((config, offered_direction, answer.to_bytes()))
    }
}

fn trunk_leg_config(plan: &MediaPlan, codec: Option<(Codec, u8)>) -> LegConfig {
    LegConfig {
        remote_rtp: plan.offerer_rtp,
        remote_rtcp: plan.offerer_rtcp,
        telephone_event: plan.offered_telephone_event,
        codec,
    }
}

fn agent_leg_config(plan: &MediaPlan) -> LegConfig {
    LegConfig {
        remote_rtp: plan.answerer_rtp,
        remote_rtcp: plan.answerer_rtcp,
        telephone_event: plan.answered_telephone_event,
        codec: plan.codec,
    }
}

fn new_origin(ip: IpAddr) -> Origin {
    Origin {
        username: "switchboard".to_string(),
        session_id: (rand::random::<u32>() as u64).to_string(),
        session_version: 1,
        address: ip.to_string(),
        address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_string(),
    }
}
