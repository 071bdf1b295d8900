//! The media session of one call: a tokio task (on a [`crate::MediaWorkers`] thread in
//! Switchboard) owning the call's two (or four, with RTCP) sockets, plus those of any extra
//! legs, driven by [`MediaCommand`]s from call control and reporting [`MediaEvent`]s to one
//! sink shared by every session. The sockets come from, and go back to, the session's
//! [`SocketHome`]: on a worker they stay bound between calls.
//!
//! The session starts when the trunk leg's SDP is known. Until an agent leg is set it
//! terminates the trunk's media itself: prompts and music on hold are played to the trunk
//! and key presses are picked out of its RTP (RFC 4733, or in-band tones when the trunk has
//! no telephone-event). Setting the agent leg bridges the call: from then on RTP/RTCP is
//! relayed both ways byte for byte and playback to the trunk stops. Recording decodes both
//! directions into a [`Recording`] handed over by call control.
//!
//! Cost model, because this runs for thousands of calls at once:
//! - Relaying (bridged, no recording, no playback): a socket is drained in bursts into one
//!   reused buffer, each datagram sent straight on; no allocation and no timer per packet.
//!   Per wake-up one clock read; the media-timeout sleep is re-armed only when it fires or a
//!   command changes what is watched.
//! - Decoding happens only when a recording runs or in-band DTMF is needed on the trunk.
//! - A 20 ms playback interval exists only while something plays; an idle session has no
//!   timer apart from the media-timeout sleep.
//!
//! Playback while bridged: a `Play` to a leg that is also receiving relayed audio wins —
//! packets relayed towards that leg are dropped (counted as `suppressed`) until it ends.
//!
//! Key presses sent by Switchboard ([`MediaCommand::SendDtmf`], e.g. an agent's SIP INFO
//! turned into RFC 4733 for the caller's network) go out in the leg's playback stream on the
//! same 20 ms clock; while an event is being sent, audio towards that leg (played or
//! relayed) is held back: RFC 4733 lets a sender block audio while it reports an event, so
//! the far end's tone is not mixed with speech or music.
//!
//! More than two legs: [`MediaCommand::AddLeg`] binds the sockets of an extra leg
//! ([`Leg::Extra`]: a supervisor, a conference member) and [`MediaCommand::SetRouting`] picks
//! who hears whom. [`Routing::Relay`] (the default) is the byte-for-byte trunk⇄agent relay
//! above, untouched; extra legs are then latched and watched but hear nothing and are heard
//! by nobody. [`Routing::Mix`] decodes every mixed leg's RTP into a [`Mixer`] and, on the
//! 20 ms clock, sends each listener its own mix, encoded in its codec, in the same RTP stream
//! (SSRC, sequence, timestamp) as prompts and key presses to that leg; playback and key
//! presses to a leg still win over its mix. While mixing nothing is relayed byte for byte
//! (RTCP is received but not relayed: the streams are Switchboard's own).
//!
//! Recording is one file per call whatever the routing and across transfers: left = what the
//! trunk (caller) says, right = what everyone else says (the agent of the moment, plus any
//! extra legs while mixing, summed with clipping).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use rand::Rng;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use crate::audio_clip::AudioClip;
use crate::bound_sockets::SocketHome;
use crate::codec::{Codec, SAMPLES_PER_20MS};
use crate::dtmf::{DtmfDigit, TelephoneEventPacket, TelephoneEventSender};
use crate::inband_dtmf::InbandDtmfDetector;
use crate::media_timeout::{Leg, MAX_EXTRA_LEGS};
use crate::mixer::{Mixer, PartyId, FRAME_SAMPLES};
use crate::player::Player;
use crate::port_pool::PortPair;
use crate::recorder::{Channel, Recording, RecordingOutcome};
use crate::relay_core::{LegConfig, LegReport, RelayCore, RelayEvent};
use crate::routing::Routing;
use crate::srtp::SessionSrtp;
use crate::webrtc_leg::{WebRtcCounters, WebRtcEvent, WebRtcLeg};

/// Largest datagram relayed; RTP for G.711 at 20 ms is 172 bytes, this leaves room for anything sane.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams handled per socket per wake-up before yielding to the other sockets, for fairness.
const MAX_BURST: usize = 64;
/// Packet interval of played audio.
const PTIME: Duration = Duration::from_millis(20);

/// Call control's number for the call; every event carries it.
pub type SessionId = u64;

/// Everything needed to start the media of one call.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The call this session belongs to.
    pub id: SessionId,
    /// Switchboard's media address to bind.
    pub bind_ip: IpAddr,
    /// Ports facing the trunk (caller) leg.
    pub trunk_ports: PortPair,
    /// Ports facing the agent leg (bound at start so the agent's offer can name them).
    pub agent_ports: PortPair,
    /// Trunk leg parameters from its SDP.
    pub trunk: LegConfig,
    /// Agent leg parameters; `None` until an agent answers (then [`MediaCommand::UpdateLeg`]).
    pub agent: Option<LegConfig>,
    /// End the session after this much RTP silence on a present leg; `None` disables it.
    pub media_timeout: Option<Duration>,
    /// A latched peer silent this long may be replaced by a new source.
    pub relatch_after: Duration,
    /// Whether to bind and relay RTCP on port + 1.
    pub rtcp: bool,
}

/// What call control asks a session to do.
#[derive(Debug)]
pub enum MediaCommand {
    /// Play clips one after another to `leg`; `looping` repeats the whole list (music on hold).
    /// Replaces whatever was playing on that leg (the replaced list gets no event). When the
    /// list ends (not looping) the session emits [`MediaEvent::PlaybackFinished`] with `token`;
    /// if the leg is absent or has no codec, nothing plays and that event comes at once.
    Play {
        /// Who hears it.
        leg: Leg,
        /// The clips, in order, played as one continuous stream.
        clips: Vec<Arc<AudioClip>>,
        /// Repeat the list until stopped.
        looping: bool,
        /// Echoed in `PlaybackFinished`.
        token: u64,
    },
    /// Stops playback on `leg` (no `PlaybackFinished` for it).
    StopPlayback {
        /// Which leg.
        leg: Leg,
    },
    /// Sets / replaces a leg's remote parameters. Setting the agent leg when it was `None`
    /// bridges the call: from then on RTP is relayed both ways and playback on the trunk stops.
    UpdateLeg {
        /// Which leg.
        leg: Leg,
        /// Its parameters from the (re-)negotiated SDP.
        config: LegConfig,
    },
    /// Starts recording both directions into this recording (replacing one already running,
    /// which is finalised in the background; the report carries the last one's outcome).
    Record(Recording),
    /// The direction a leg's SDP declared, from its own point of view (`sendonly` = it holds
    /// the call): a leg that does not receive gets no RTP from Switchboard (relayed, played or
    /// key presses; RTCP goes on), and the silence of a leg that does not send does not
    /// trigger the media timeout.
    Direction {
        /// Which leg.
        leg: Leg,
        /// What its SDP said.
        direction: crate::sdp::Direction,
    },
    /// The agent's phone left the call (a transfer): what it sends is dropped, nothing is
    /// sent to it, whatever played to it stops; the caller's leg is untouched.
    DropAgent,
    /// Sends a key press to `leg` as RFC 4733 telephone-events (one packet per 20 ms, then
    /// the end packet three times), in the stream Switchboard plays to that leg. Presses
    /// sent in a row are queued and go out one after the other, 40 ms apart. Ignored if the
    /// leg is absent or negotiated no telephone-event or no codec.
    SendDtmf {
        /// Who receives it (the trunk, for an agent's SIP INFO).
        leg: Leg,
        /// The key.
        digit: DtmfDigit,
        /// How long it is held, clamped to 40..=1000 ms.
        duration_ms: u32,
    },
    /// Adds an extra leg (`Leg::Extra(n)`, n < [`MAX_EXTRA_LEGS`]): binds its RTP (and RTCP,
    /// if the session relays RTCP) socket on `ports` and from then on accepts its media.
    /// Answered by [`MediaEvent::LegAdded`], or [`MediaEvent::AddLegFailed`] (port taken, leg
    /// already there, not an extra leg) after which the caller still owns `ports`.
    AddLeg {
        /// Which extra leg.
        leg: Leg,
        /// Its local ports, from the pool.
        ports: PortPair,
        /// Its parameters from its SDP.
        config: LegConfig,
    },
    /// Removes an extra leg: its sockets are given back (or closed) and
    /// [`MediaEvent::LegRemoved`] hands its ports back. Ignored for trunk, agent or a leg not
    /// added.
    RemoveLeg {
        /// Which extra leg.
        leg: Leg,
    },
    /// Who hears whom from now on (see [`Routing`] and the presets in [`crate::routing`]).
    SetRouting(Routing),
    /// The agent leg is a browser's WebRTC leg (its answer already applied): from now on the
    /// agent port's datagrams go through it (ICE, DTLS, SRTP) and everything sent to the
    /// agent is encrypted by it. The agent leg's `LegConfig` (codec, telephone-event) is set
    /// with [`MediaCommand::UpdateLeg`] as for any phone. RTCP is not relayed to or from it.
    AttachWebRtc(Box<WebRtcLeg>),
}

impl MediaCommand {
    /// The leg a per-leg command addresses.
    fn leg(&self) -> Option<Leg> {
        match self {
            MediaCommand::Play { leg, .. }
            | MediaCommand::StopPlayback { leg }
            | MediaCommand::UpdateLeg { leg, .. }
            | MediaCommand::Direction { leg, .. }
            | MediaCommand::SendDtmf { leg, .. } => Some(*leg),
            MediaCommand::Record(_)
            | MediaCommand::DropAgent
            | MediaCommand::AddLeg { .. }
            | MediaCommand::RemoveLeg { .. }
            | MediaCommand::SetRouting(_)
            | MediaCommand::AttachWebRtc(_) => None,
        }
    }
}

/// How a key press reached Switchboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio (Goertzel detection on decoded G.711).
    InBand,
}

/// What a session reports to call control (with its [`SessionId`]).
// `Ended` is much larger than the rest, but events are a few per call: boxing the report
// would save nothing that matters and make call control's matches clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A leg's real RTP source was learned (or changed after silence).
    Latched {
        /// Which leg.
        leg: Leg,
        /// Its source address.
        source: SocketAddr,
    },
    /// A key press. In-band presses are reported at tone onset, so their `duration_ms` is 0.
    Dtmf {
        /// The leg it came from.
        leg: Leg,
        /// The key.
        digit: DtmfDigit,
        /// How long it was held (RFC 4733), 0 when unknown.
        duration_ms: u32,
        /// How it was signalled.
        source: DtmfSource,
    },
    /// A non-looping `Play` list has been played out.
    PlaybackFinished {
        /// The leg it played to.
        leg: Leg,
        /// The `Play`'s token.
        token: u64,
    },
    /// A leg sent no RTP for the configured time; `Ended` follows at once.
    MediaTimeout {
        /// The silent leg.
        silent_leg: Leg,
    },
    /// An extra leg's sockets are bound ([`MediaCommand::AddLeg`]).
    LegAdded {
        /// Which leg.
        leg: Leg,
        /// Its local RTP address (goes into that leg's SDP).
        local_rtp: SocketAddr,
    },
    /// [`MediaCommand::AddLeg`] failed; the session goes on without that leg and the caller
    /// keeps `ports` (return them to the pool, or try others).
    AddLegFailed {
        /// Which leg.
        leg: Leg,
        /// The ports asked for.
        ports: PortPair,
        /// Why, for the log.
        reason: String,
    },
    /// An extra leg was removed ([`MediaCommand::RemoveLeg`]); its sockets are given back
    /// (or closed), so `ports` may go back to the pool.
    LegRemoved {
        /// Which leg.
        leg: Leg,
        /// Its ports.
        ports: PortPair,
        /// Its final counters.
        report: LegReport,
    },
    /// An extra leg sent no RTP for the media timeout. Only that leg is concerned (the call
    /// goes on): call control usually hangs it up and removes it.
    LegSilent {
        /// Which leg.
        leg: Leg,
    },
    /// The session could not start on its media worker ([`crate::MediaWorkers`]): a socket
    /// could not be taken or bound. The only event of such a session (no `Ended` follows);
    /// whatever the workers' store kept on its ports is closed.
    StartFailed {
        /// What went wrong.
        error: String,
        /// The session's port pairs that another process holds (a bind of them still fails
        /// after the store's sockets were closed).
        busy: Vec<PortPair>,
    },
    /// The session ended (after `stop()`, the handle being dropped, or a media timeout): the
    /// last event of every session. Its sockets are already given back (or closed), so the
    /// ports may be reused.
    Ended(SessionReport),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// [`MediaSession::stop`] was called or the handle dropped (normal hang-up).
    Stopped,
    /// A leg was silent for the configured time: hang up with reason `media-timeout`.
    MediaTimeout(Leg),
}

/// The final figures of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// Why it ended.
    pub reason: StopReason,
    /// Trunk leg counters.
    pub trunk: LegReport,
    /// Agent leg counters (all zero if never bridged).
    pub agent: LegReport,
    /// Events lost because the relay core's bounded queue overflowed (RFC 4733 floods).
    pub events_dropped: u64,
    /// Socket errors other than "would block" seen while relaying or playing.
    pub socket_errors: u64,
    /// RTP packets of prompts / music on hold sent.
    pub played_packets: u64,
    /// RFC 4733 event packets sent for [`MediaCommand::SendDtmf`].
    pub dtmf_packets: u64,
    /// RTP packets of mixed audio sent (Mix routing), all listeners together.
    pub mixed_packets: u64,
    /// SRTP packets from SRTP legs dropped: wrong auth tag (wrong key, tampered),
    /// replayed or unreadable.
    pub srtp_auth_failures: u64,
    /// The same for SRTCP packets.
    pub srtcp_auth_failures: u64,
    /// The WebRTC agent leg's counters, when the agent was a browser.
    pub webrtc: Option<WebRtcCounters>,
    /// The recording's outcome, if one was started.
    pub recording: Option<RecordingOutcome>,
    /// Extra legs still present at the end, with their ports (given back now: return them to
    /// the pool) and counters.
    pub extra_legs: Vec<(Leg, PortPair, LegReport)>,
}

/// What a session's task reads its commands from, handed to [`MediaSession::bind`] by the
/// one who made the handle.
pub(crate) struct ControlReceiver(mpsc::UnboundedReceiver<Control>);

enum Control {
    /// Boxed: the channel allocates its slots up front, 32 at a time, and a `MediaCommand` is
    /// ~160 bytes; a box per command (a few per call) keeps an idle session's memory small.
    Command(Box<MediaCommand>),
    Stop,
}

/// The handle call control keeps for one call's media. Dropping it stops the session too.
#[derive(Debug)]
pub struct MediaSession {
    id: SessionId,
    // Unbounded: commands come from call control at signalling pace (a few per call), never
    // from the network, so the queue cannot grow without bound and sending never blocks.
    control: mpsc::UnboundedSender<Control>,
    trunk_addr: SocketAddr,
    agent_addr: SocketAddr,
}

impl MediaSession {
    /// Binds the 2 or 4 sockets and spawns the session task on the current tokio runtime
    /// (Switchboard itself starts sessions on [`crate::MediaWorkers`] instead).
    /// Fails if a port is taken (the caller releases the pairs and tries others).
    ///
    /// All events of all sessions go to ONE shared sink, so call control selects on a single
    /// receiver. Unbounded is safe: a session emits a handful of events per call (latching,
    /// key presses at human speed, playback ends, one `Ended`); network floods cannot reach it
    /// because RFC 4733 presses first pass the relay core's bounded queue, and in-band presses
    /// need tens of milliseconds of tone each.
    pub fn start(
        config: SessionConfig,
        events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
    ) -> io::Result<MediaSession> {
        let (session, task) = MediaSession::prepare(config, events, SocketHome::Fresh)?;
        tokio::spawn(task);
        Ok(session)
    }

    /// Takes the session's sockets from `home` (registering new ones with the current
    /// runtime) and returns the handle and the task to spawn on that runtime.
    fn prepare(
        config: SessionConfig,
        events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
        home: SocketHome,
    ) -> io::Result<(MediaSession, impl Future<Output = ()> + Send + 'static)> {
        let id = config.id;
        let (control, control_rx) = mpsc::unbounded_channel();
        let (trunk_addr, agent_addr, task) =
            MediaSession::bind(config, events, home, ControlReceiver(control_rx))?;
        let session = MediaSession {
            id,
            control,
            trunk_addr,
            agent_addr,
        };
        Ok((session, task))
    }

    /// The handle of a session whose sockets are yet to be taken, by [`MediaSession::bind`]
    /// with the receiver returned here, on the thread the session will run on: call control
    /// makes no system call for a session. Its addresses are those of its configured ports
    /// (which must not be 0).
    pub(crate) fn ahead_of_sockets(config: &SessionConfig) -> (MediaSession, ControlReceiver) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let session = MediaSession {
            id: config.id,
            control,
            trunk_addr: SocketAddr::new(config.bind_ip, config.trunk_ports.rtp()),
            agent_addr: SocketAddr::new(config.bind_ip, config.agent_ports.rtp()),
        };
        (session, ControlReceiver(control_rx))
    }

    /// Takes the session's sockets from `home` (registering new ones with the current
    /// runtime) and builds the session's task, driven by `control`; returns its trunk and
    /// agent addresses with it. When a port cannot be bound, whatever `home` keeps on the
    /// session's ports is closed too, so the caller's probe of which port another process
    /// holds sees only that process.
    pub(crate) fn bind(
        config: SessionConfig,
        events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
        home: SocketHome,
        ControlReceiver(control_rx): ControlReceiver,
    ) -> io::Result<(
        SocketAddr,
        SocketAddr,
        impl Future<Output = ()> + Send + 'static,
    )> {
        let sockets = MediaSession::take_sockets(&config, &home).inspect_err(|_| {
            let pairs = [config.trunk_ports, config.agent_ports];
            for port in pairs.iter().flat_map(|pair| [pair.rtp(), pair.rtcp()]) {
                home.close(config.bind_ip, port);
            }
        })?;
        let [trunk_rtp, agent_rtp] = &sockets.rtp;
        // Each socket is bound to `bind_ip` and its port: the kernel is asked (a system call
        // a socket, on every call) only for an ephemeral port.
        let bound_addr = |socket: &UdpSocket, port: u16| match port {
            0 => socket.local_addr(),
            port => Ok(SocketAddr::new(config.bind_ip, port)),
        };
        let trunk_addr = bound_addr(trunk_rtp, config.trunk_ports.rtp())?;
        let agent_addr = bound_addr(agent_rtp, config.agent_ports.rtp())?;
        let core = RelayCore::new(
            Instant::now(),
            config.trunk,
            config.agent,
            config.media_timeout,
            config.relatch_after,
        );
        let mut state = SessionState::new(
            config.id,
            core,
            vec![config.trunk, config.agent.unwrap_or_default()],
            events,
        );
        state.bind_ip = config.bind_ip;
        state.rtcp = config.rtcp;
        state.home = home;
        Ok((trunk_addr, agent_addr, run(state, sockets, control_rx)))
    }

    /// The 2 or 4 sockets of trunk and agent side.
    fn take_sockets(config: &SessionConfig, home: &SocketHome) -> io::Result<Sockets> {
        let take = |port: u16| home.take(config.bind_ip, port);
        let trunk_rtp = take(config.trunk_ports.rtp())?;
        let agent_rtp = take(config.agent_ports.rtp())?;
        let rtcp = if config.rtcp {
            Some((
                take(config.trunk_ports.rtcp())?,
                take(config.agent_ports.rtcp())?,
            ))
        } else {
            None
        };
        Ok(Sockets {
            ports: [config.trunk_ports, config.agent_ports],
            rtp: [trunk_rtp, agent_rtp],
            rtcp,
            extra: Vec::new(),
        })
    }

    /// The call this session belongs to.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The local RTP address facing the trunk leg (goes into the trunk's SDP).
    pub fn trunk_addr(&self) -> SocketAddr {
        self.trunk_addr
    }

    /// The local RTP address facing the agent leg (goes into the agent's SDP).
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// Sends a command. Non-blocking; a command to an ended session is ignored (a `Record`
    /// sent then is still finalised, as an empty file).
    pub fn command(&self, command: MediaCommand) {
        let _ = self.control.send(Control::Command(Box::new(command)));
    }

    /// Asks the session to stop; its final report arrives as [`MediaEvent::Ended`] on the
    /// sink. Never blocks; calling it again or after the session ended does nothing.
    pub fn stop(&self) {
        let _ = self.control.send(Control::Stop);
    }
}

struct Sockets {
    /// The trunk and agent side's pairs: the sockets are given back under these ports, so
    /// no system call asks the kernel for their addresses.
    ports: [PortPair; 2],
    rtp: [UdpSocket; 2],
    rtcp: Option<(UdpSocket, UdpSocket)>,
    /// Extra legs' sockets, by `n` of `Leg::Extra(n)`; `None` where removed or never added.
    extra: Vec<Option<ExtraSockets>>,
}

impl Sockets {
    /// Every socket with its port, to be given back to the session's [`SocketHome`].
    fn into_all(self) -> impl Iterator<Item = (u16, UdpSocket)> {
        let [trunk, agent] = self.ports;
        let [trunk_rtp, agent_rtp] = self.rtp;
        let rtcp = self
            .rtcp
            .into_iter()
            .flat_map(move |(trunk_rtcp, agent_rtcp)| {
                [(trunk.rtcp(), trunk_rtcp), (agent.rtcp(), agent_rtcp)]
            });
        let extra = self
            .extra
            .into_iter()
            .flatten()
            .flat_map(ExtraSockets::into_all);
        [(trunk.rtp(), trunk_rtp), (agent.rtp(), agent_rtp)]
            .into_iter()
            .chain(rtcp)
            .chain(extra)
    }

    /// The socket facing `leg`, which RTP to it is sent from.
    fn rtp_for(&self, leg: Leg) -> Option<&UdpSocket> {
        match leg {
            Leg::Trunk => Some(&self.rtp[0]),
            Leg::Agent => Some(&self.rtp[1]),
            Leg::Extra(n) => self
                .extra
                .get(usize::from(n))
                .and_then(Option::as_ref)
                .map(|extra| &extra.rtp),
        }
    }
}

/// The sockets a leg's packets are relayed through: the other leg's RTP and RTCP sockets.
#[derive(Clone, Copy)]
struct Partner<'a> {
    rtp: Option<&'a UdpSocket>,
    rtcp: Option<&'a UdpSocket>,
}

impl Partner<'_> {
    /// An extra leg's: its packets are relayed to nobody.
    const NONE: Partner<'static> = Partner {
        rtp: None,
        rtcp: None,
    };
}

/// The sockets of one extra leg.
struct ExtraSockets {
    ports: PortPair,
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
}

impl ExtraSockets {
    fn into_all(self) -> impl Iterator<Item = (u16, UdpSocket)> {
        let rtcp = self.rtcp.map(|socket| (self.ports.rtcp(), socket));
        std::iter::once((self.ports.rtp(), self.rtp)).chain(rtcp)
    }
}

/// Waits until a socket of an extra leg is readable; never completes when there are none.
fn extra_readable(extra: &[Option<ExtraSockets>]) -> impl Future<Output = (usize, Stream)> + '_ {
    std::future::poll_fn(move |cx| {
        for (n, sockets) in extra.iter().enumerate() {
            let Some(sockets) = sockets else {
                continue;
            };
            if sockets.rtp.poll_recv_ready(cx).is_ready() {
                return Poll::Ready((n, Stream::Rtp));
            }
            if let Some(rtcp) = &sockets.rtcp {
                if rtcp.poll_recv_ready(cx).is_ready() {
                    return Poll::Ready((n, Stream::Rtcp));
                }
            }
        }
        Poll::Pending
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Rtp,
    Rtcp,
}

/// Playback towards one leg. The player survives between lists so sequence numbers and
/// timestamps continue (a new SSRC would make the receiver reset its jitter buffer).
///
/// Key presses sent to the leg use the player's SSRC and sequence space, so they continue
/// the stream Switchboard itself sends. While the call is bridged the relayed audio of the
/// other leg has its own SSRC: the receiver then sees two sources on one port, which
/// receivers handle (as after any SSRC change); relayed packets are never rewritten.
#[derive(Default)]
struct LegPlayback {
    player: Option<Player>,
    /// The token of the list playing, until it finishes or is stopped.
    token: Option<u64>,
    /// When the player's clock last moved with the 20 ms tick (a packet or a quiet tick).
    last_sent: Option<Instant>,
    /// Key presses to send to this leg.
    dtmf: TelephoneEventSender,
    /// RTP timestamp of the event being sent: the stream's clock at its first packet.
    event_timestamp: u32,
    /// The leg is getting mixed audio: the stream's clock moves every tick, so it never
    /// needs moving over a pause.
    in_mix: bool,
}

impl LegPlayback {
    fn is_playing(&self) -> bool {
        self.player.as_ref().is_some_and(Player::is_playing)
    }

    /// True while this leg needs the 20 ms tick: audio playing or key presses to send.
    fn needs_ticks(&self) -> bool {
        self.is_playing() || self.dtmf.is_active()
    }

    /// True while packets relayed towards this leg are dropped: Switchboard's own audio or
    /// a key press has the stream.
    fn suppresses_relay(&self) -> bool {
        self.is_playing() || self.dtmf.in_event()
    }

    /// The leg's player, created on first use. If its clock stood still (nothing played or
    /// sent since `last_sent`), it is first moved over the pause so the receiver sees real time.
    fn player(&mut self, now: Instant, codec: Codec, payload_type: u8) -> &mut Player {
        let clock_stopped = !self.needs_ticks() && !self.in_mix;
        let player = self.player.get_or_insert_with(|| {
            let mut rng = rand::thread_rng();
            Player::new(codec, payload_type, rng.gen(), rng.gen(), rng.gen())
        });
        if let (true, Some(last)) = (clock_stopped, self.last_sent) {
            let idle = now.saturating_duration_since(last).saturating_sub(PTIME);
            let samples = idle.as_micros() * 8 / 1000;
            player.skip_idle(u32::try_from(samples).unwrap_or(u32::MAX));
        }
        player
    }

    fn stop(&mut self) {
        if let Some(player) = self.player.as_mut() {
            player.stop();
        }
        self.token = None;
    }
}

/// Everything the task mutates, apart from the sockets and timers (borrowed by `select!`).
struct SessionState {
    id: SessionId,
    core: RelayCore,
    /// Per [`Leg::index`]; grows when an extra leg is added.
    legs: Vec<LegConfig>,
    playback: Vec<LegPlayback>,
    recording: Option<Recording>,
    routing: Routing,
    /// Present while the routing is Mix.
    mix: Option<MixState>,
    /// Where extra legs' sockets are bound.
    bind_ip: IpAddr,
    /// Whether extra legs get an RTCP socket too (as trunk and agent do).
    rtcp: bool,
    /// Where the session's sockets come from and go back to when done with.
    home: SocketHome,
    /// Present while the trunk has a codec but no telephone-event payload type.
    inband: Option<InbandDtmfDetector>,
    events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
    receive_buffer: Vec<u8>,
    play_buffer: Vec<u8>,
    decoded: Vec<i16>,
    last_tick: Option<tokio::time::Instant>,
    socket_errors: u64,
    played_packets: u64,
    dtmf_packets: u64,
    mixed_packets: u64,
    /// SRTP contexts of the legs that use SRTP.
    srtp: SessionSrtp,
    /// The agent leg when it is a browser's (ICE-lite, DTLS-SRTP); `None` for SIP phones,
    /// whose relay path never looks further than this check.
    webrtc: Option<Box<WebRtcLeg>>,
}

impl SessionState {
    fn new(
        id: SessionId,
        core: RelayCore,
        legs: Vec<LegConfig>,
        events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
    ) -> SessionState {
        let trunk = legs.first().copied().unwrap_or_default();
        let mut srtp = SessionSrtp::default();
        for (index, config) in legs.iter().enumerate() {
            srtp.set(index, config.srtp);
        }
        SessionState {
            id,
            core,
            playback: legs.iter().map(|_| LegPlayback::default()).collect(),
            legs,
            recording: None,
            routing: Routing::Relay,
            mix: None,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            rtcp: false,
            home: SocketHome::Fresh,
            inband: wants_inband(&trunk).then(InbandDtmfDetector::new),
            events,
            receive_buffer: vec![0u8; MAX_DATAGRAM],
            // Grown on first use: most sessions relay only and never need them.
            play_buffer: Vec::new(),
            decoded: Vec::new(),
            last_tick: None,
            socket_errors: 0,
            played_packets: 0,
            dtmf_packets: 0,
            mixed_packets: 0,
            srtp,
            webrtc: None,
        }
    }

    fn emit(&self, event: MediaEvent) {
        // Call control gone (shutdown): nobody to tell.
        let _ = self.events.send((self.id, event));
    }

    fn forward_core_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            let event = match event {
                RelayEvent::Latched { leg, source } => MediaEvent::Latched { leg, source },
                RelayEvent::Dtmf { leg, press } => MediaEvent::Dtmf {
                    leg,
                    digit: press.digit,
                    duration_ms: press.duration_ms,
                    source: DtmfSource::Rfc4733,
                },
                RelayEvent::MediaTimeout { silent_leg } => MediaEvent::MediaTimeout { silent_leg },
                RelayEvent::LegSilent { leg } => MediaEvent::LegSilent { leg },
            };
            self.emit(event);
        }
    }

    /// True while the 20 ms playback interval must run.
    fn needs_ticks(&self) -> bool {
        self.mix.is_some() || self.playback.iter().any(LegPlayback::needs_ticks)
    }

    /// Starts the 20 ms interval if it is not running.
    fn start_ticks(&mut self, timer: &mut Option<Interval>) {
        if timer.is_none() {
            let mut interval = tokio::time::interval(PTIME);
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            *timer = Some(interval);
            self.last_tick = None;
        }
    }

    fn apply(
        &mut self,
        command: MediaCommand,
        timer: &mut Option<Interval>,
        extra: &mut Vec<Option<ExtraSockets>>,
    ) {
        let now = Instant::now();
        let unknown = |leg: &Leg| {
            leg.index() >= self.legs.len() || (!leg.is_main() && !self.core.is_present(*leg))
        };
        if let Some(leg) = command.leg().filter(unknown) {
            // An extra leg never added (or removed): nothing to do, but a Play gets its answer.
            if let MediaCommand::Play { token, .. } = command {
                self.emit(MediaEvent::PlaybackFinished { leg, token });
            }
            tracing::debug!(
                session = self.id,
                ?leg,
                "command for a leg not in the session"
            );
            return;
        }
        match command {
            MediaCommand::Play {
                leg,
                clips,
                looping,
                token,
            } => self.play(now, leg, clips, looping, token, timer),
            MediaCommand::StopPlayback { leg } => self.playback[leg.index()].stop(),
            MediaCommand::UpdateLeg { leg, config } => self.update_leg(now, leg, config),
            MediaCommand::Record(recording) => {
                // A replaced recording is finalised by its Drop (best effort, in the background).
                self.recording = Some(recording);
            }
            MediaCommand::Direction { leg, direction } => {
                self.core.set_direction(now, leg, direction)
            }
            MediaCommand::DropAgent => {
                // A browser agent's leg goes with it: the next agent may be a plain phone.
                // (Its BYE has told the browser; no close_notify without the socket here.)
                self.webrtc = None;
                self.core.remove_agent_leg(now);
                self.legs[Leg::Agent.index()] = LegConfig::default();
                self.playback[Leg::Agent.index()].stop();
                self.rebuild_mix();
            }
            MediaCommand::AddLeg { leg, ports, config } => {
                if let Err(reason) = self.add_leg(now, leg, ports, config, extra) {
                    tracing::info!(session = self.id, ?leg, %reason, "extra leg not added");
                    self.emit(MediaEvent::AddLegFailed { leg, ports, reason });
                }
            }
            MediaCommand::RemoveLeg { leg } => self.remove_leg(now, leg, extra),
            MediaCommand::SetRouting(routing) => {
                self.routing = routing;
                self.rebuild_mix();
            }
            MediaCommand::SendDtmf {
                leg,
                digit,
                duration_ms,
            } => self.send_dtmf(now, leg, digit, duration_ms, timer),
            MediaCommand::AttachWebRtc(leg) => self.webrtc = Some(leg),
        }
        if self.mix.is_some() {
            self.start_ticks(timer);
        }
        if !self.needs_ticks() {
            *timer = None;
        }
    }

    fn add_leg(
        &mut self,
        now: Instant,
        leg: Leg,
        ports: PortPair,
        config: LegConfig,
        extra: &mut Vec<Option<ExtraSockets>>,
    ) -> Result<(), String> {
        let Leg::Extra(n) = leg else {
            return Err("trunk and agent are part of every session".to_string());
        };
        if !leg.is_valid() {
            return Err(format!(
                "a session takes at most {MAX_EXTRA_LEGS} extra legs"
            ));
        }
        let slot = usize::from(n);
        if extra.get(slot).is_some_and(Option::is_some) {
            return Err("the leg is already in the session".to_string());
        }
        let bind = |port: u16| {
            self.home
                .take(self.bind_ip, port)
                .map_err(|e| format!("cannot bind port {port}: {e}"))
        };
        let rtp = bind(ports.rtp())?;
        let rtcp = match self.rtcp {
            true => Some(bind(ports.rtcp())?),
            false => None,
        };
        let local_rtp = rtp.local_addr().map_err(|e| e.to_string())?;
        if extra.len() <= slot {
            extra.resize_with(slot + 1, || None);
        }
        extra[slot] = Some(ExtraSockets { ports, rtp, rtcp });
        let index = leg.index();
        if self.legs.len() <= index {
            self.legs.resize(index + 1, LegConfig::default());
            self.playback.resize_with(index + 1, LegPlayback::default);
        }
        self.legs[index] = config;
        self.srtp.set(index, config.srtp);
        self.playback[index] = LegPlayback::default();
        self.core.add_leg(now, leg, config);
        self.emit(MediaEvent::LegAdded { leg, local_rtp });
        self.rebuild_mix();
        Ok(())
    }

    fn remove_leg(&mut self, now: Instant, leg: Leg, extra: &mut [Option<ExtraSockets>]) {
        let removed = match leg {
            Leg::Extra(n) => extra.get_mut(usize::from(n)).and_then(Option::take),
            Leg::Trunk | Leg::Agent => None,
        };
        let Some(removed) = removed else {
            tracing::debug!(session = self.id, ?leg, "RemoveLeg for a leg not added");
            return;
        };
        let ports = removed.ports;
        // Given back (or closed) before the event, so the ports may be reused at once.
        for (port, socket) in removed.into_all() {
            self.home.give_back(self.bind_ip, port, socket);
        }
        let report = self.core.remove_leg(now, leg);
        if let Some(config) = self.legs.get_mut(leg.index()) {
            *config = LegConfig::default();
        }
        self.srtp.set(leg.index(), None);
        if let Some(slot) = self.playback.get_mut(leg.index()) {
            *slot = LegPlayback::default();
        }
        self.emit(MediaEvent::LegRemoved { leg, ports, report });
        self.rebuild_mix();
    }

    /// Builds the mixer for the current routing and legs (after any change to either):
    /// one party per mixed leg that is present and has a codec. Queued audio is dropped,
    /// at most 60 ms, once per change.
    fn rebuild_mix(&mut self) {
        for slot in &mut self.playback {
            slot.in_mix = false;
        }
        if self.routing == Routing::Relay {
            self.mix = None;
            self.core.set_mixing(false);
            return;
        }
        self.core.set_mixing(true);
        let mut mixer = Mixer::new();
        let mut parties = Vec::new();
        for leg in self.routing.mixed_legs() {
            let Some((codec, _)) = self.legs.get(leg.index()).and_then(|config| config.codec)
            else {
                continue;
            };
            if !self.core.is_present(leg) {
                continue;
            }
            if let Ok(id) = mixer.add(codec.law()) {
                parties.push(MixParty {
                    leg,
                    id,
                    frame: Vec::with_capacity(FRAME_SAMPLES),
                    ready: false,
                });
            }
        }
        for party in &parties {
            let talkers: Vec<PartyId> = self
                .routing
                .heard_by(party.leg)
                .into_iter()
                .filter_map(|talker| parties.iter().find(|p| p.leg == talker).map(|p| p.id))
                .collect();
            mixer.set_hears(party.id, &talkers);
        }
        self.mix = Some(MixState { mixer, parties });
    }

    fn play(
        &mut self,
        now: Instant,
        leg: Leg,
        clips: Vec<Arc<AudioClip>>,
        looping: bool,
        token: u64,
        timer: &mut Option<Interval>,
    ) {
        let codec = self.legs[leg.index()].codec;
        let (true, Some((codec, payload_type))) = (self.core.is_present(leg), codec) else {
            // Nothing can be played; don't leave call control waiting.
            self.emit(MediaEvent::PlaybackFinished { leg, token });
            return;
        };
        let slot = &mut self.playback[leg.index()];
        let player = slot.player(now, codec, payload_type);
        player.play_list(clips, looping);
        if !player.is_playing() {
            // An empty list: finished before it started.
            slot.token = None;
            self.emit(MediaEvent::PlaybackFinished { leg, token });
            return;
        }
        slot.token = Some(token);
        self.start_ticks(timer);
    }

    fn send_dtmf(
        &mut self,
        now: Instant,
        leg: Leg,
        digit: DtmfDigit,
        duration_ms: u32,
        timer: &mut Option<Interval>,
    ) {
        let config = self.legs[leg.index()];
        let (true, Some(_), Some((codec, payload_type))) = (
            self.core.is_present(leg),
            config.telephone_event,
            config.codec,
        ) else {
            // Call control sends it only to a leg that negotiated telephone-event.
            tracing::debug!(
                session = self.id,
                ?leg,
                %digit,
                "key press not sent: the leg has no telephone-event or no codec"
            );
            return;
        };
        let slot = &mut self.playback[leg.index()];
        // Created (or moved over its pause) before queueing, which starts its clock.
        slot.player(now, codec, payload_type);
        slot.dtmf.push(digit, duration_ms);
        self.start_ticks(timer);
    }

    fn update_leg(&mut self, now: Instant, leg: Leg, config: LegConfig) {
        let bridging = leg == Leg::Agent && !self.core.is_present(Leg::Agent);
        self.core.update_leg(now, leg, config);
        self.srtp.set(leg.index(), config.srtp);
        let previous = std::mem::replace(&mut self.legs[leg.index()], config);
        if previous.codec != config.codec {
            let slot = &mut self.playback[leg.index()];
            match (config.codec, slot.player.as_mut()) {
                (Some((codec, payload_type)), Some(player)) => {
                    player.set_codec(codec, payload_type)
                }
                (None, Some(_)) => {
                    let token = slot.token;
                    slot.stop();
                    if let Some(token) = token {
                        self.emit(MediaEvent::PlaybackFinished { leg, token });
                    }
                }
                (_, None) => {}
            }
        }
        if config.telephone_event.is_none() || config.codec.is_none() {
            // Re-negotiated without telephone-event: what is queued can no longer be sent.
            self.playback[leg.index()].dtmf.clear();
        }
        if leg == Leg::Trunk {
            self.inband = match (wants_inband(&config), self.inband.take()) {
                (true, Some(detector)) => Some(detector),
                (true, None) => Some(InbandDtmfDetector::new()),
                (false, _) => None,
            };
        }
        if bridging {
            self.playback[Leg::Trunk.index()].stop();
        }
        if self.routing != Routing::Relay {
            // The leg may have joined the mix (bridged) or changed codec.
            self.rebuild_mix();
        }
    }

    /// One 20 ms playback tick: a packet to every leg that is playing or has a key press
    /// to send (the key press wins; the audio waits).
    fn play_tick(&mut self, at: tokio::time::Instant, sockets: &Sockets) {
        // Ticks skipped because the task ran late: advance the RTP clock over them so the
        // receiver keeps real time (the gap sounds like a short pause, not slowed audio).
        let skipped = self
            .last_tick
            .map(|last| {
                (at.saturating_duration_since(last).as_millis() / PTIME.as_millis())
                    .saturating_sub(1)
            })
            .unwrap_or(0);
        self.last_tick = Some(at);
        let now = Instant::now();
        for index in 0..self.playback.len() {
            let leg = Leg::from_index(index);
            let slot = &mut self.playback[index];
            if !slot.needs_ticks() {
                continue;
            }
            let Some(socket) = sockets.rtp_for(leg) else {
                continue; // a removed extra leg: its playback was reset with it
            };
            let Some(player) = slot.player.as_mut() else {
                continue; // cannot happen: a player is created before anything is queued
            };
            if skipped > 0 {
                let samples = skipped.saturating_mul(SAMPLES_PER_20MS as u128);
                player.skip_idle(u32::try_from(samples).unwrap_or(u32::MAX));
            }
            if let Some(event) = slot.dtmf.tick() {
                let (sequence, timestamp) = player.reserve_sequence();
                if event.marker {
                    slot.event_timestamp = timestamp;
                }
                // No audio during the event: this tick's frame waits, the clock runs on.
                player.pause_frame();
                slot.last_sent = Some(now);
                let (Some(payload_type), Some(destination)) = (
                    self.legs[leg.index()].telephone_event,
                    self.core.destination(leg),
                ) else {
                    continue; // address not known yet: the packet is lost, the clock runs on
                };
                let header = EventHeader {
                    payload_type,
                    ssrc: player.ssrc(),
                    sequence,
                    timestamp: slot.event_timestamp,
                };
                if !write_event_packet(&mut self.play_buffer, header, event) {
                    continue;
                }
                match send_to_leg(
                    &mut self.srtp,
                    &mut self.webrtc,
                    leg,
                    socket,
                    &self.play_buffer,
                    destination,
                ) {
                    Ok(_) => self.dtmf_packets += 1,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => self.socket_errors += 1,
                }
                continue;
            }
            if !player.is_playing() {
                // Quiet time between two key presses: nothing to send, the clock runs on.
                player.skip_idle(SAMPLES_PER_20MS as u32);
                slot.last_sent = Some(now);
                continue;
            }
            if player.next_packet(&mut self.play_buffer).is_none() {
                if let Some(token) = slot.token.take() {
                    let _ = self
                        .events
                        .send((self.id, MediaEvent::PlaybackFinished { leg, token }));
                }
                continue;
            }
            slot.last_sent = Some(now);
            let Some(destination) = self.core.destination(leg) else {
                continue; // address not known yet: the audio is lost, the clock runs on
            };
            match send_to_leg(
                &mut self.srtp,
                &mut self.webrtc,
                leg,
                socket,
                &self.play_buffer,
                destination,
            ) {
                Ok(_) => self.played_packets += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.socket_errors += 1,
            }
        }
        self.mix_tick(now, skipped, sockets);
    }

    /// One 20 ms mix: every listener gets its mix in its own stream, unless playback or a
    /// key press has that stream this tick; the recording gets trunk left, the rest right.
    fn mix_tick(&mut self, now: Instant, skipped: u128, sockets: &Sockets) {
        let Some(MixState { mixer, parties }) = self.mix.as_mut() else {
            return;
        };
        for party in parties.iter_mut() {
            party.ready = false;
        }
        mixer.tick(|id, payload| {
            if let Some(party) = parties.iter_mut().find(|p| p.id == id) {
                party.frame.clear();
                party.frame.extend_from_slice(payload);
                party.ready = true;
            }
        });
        if let Some(recording) = self.recording.as_mut() {
            let mut caller = [0i16; FRAME_SAMPLES];
            let mut others = [0i32; FRAME_SAMPLES];
            for party in parties.iter() {
                let Some(frame) = mixer.last_frame(party.id) else {
                    continue;
                };
                if party.leg == Leg::Trunk {
                    caller.copy_from_slice(frame);
                } else {
                    for (sum, sample) in others.iter_mut().zip(frame.iter()) {
                        *sum += i32::from(*sample);
                    }
                }
            }
            let others =
                others.map(|sum| sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
            recording.push(Channel::Caller, &caller);
            recording.push(Channel::Agent, &others);
        }
        for party in parties.iter() {
            if !party.ready {
                continue;
            }
            let index = party.leg.index();
            let (Some(slot), Some((codec, payload_type))) = (
                self.playback.get_mut(index),
                self.legs.get(index).and_then(|config| config.codec),
            ) else {
                continue;
            };
            if slot.needs_ticks() {
                continue; // playback or a key press has the stream; its clock already moved
            }
            let first = !slot.in_mix;
            let player = slot.player(now, codec, payload_type);
            if skipped > 0 && !first {
                let samples = skipped.saturating_mul(SAMPLES_PER_20MS as u128);
                player.skip_idle(u32::try_from(samples).unwrap_or(u32::MAX));
            }
            let (sequence, timestamp) = player.reserve_sequence();
            player.skip_idle(SAMPLES_PER_20MS as u32);
            let ssrc = player.ssrc();
            slot.in_mix = true;
            slot.last_sent = Some(now);
            let (Some(destination), Some(socket)) =
                (self.core.destination(party.leg), sockets.rtp_for(party.leg))
            else {
                continue;
            };
            let builder = RtpPacketBuilder::new()
                .payload_type(payload_type)
                .ssrc(ssrc)
                .sequence(Seq::from(sequence))
                .timestamp(timestamp)
                .marked(first)
                .payload(&party.frame);
            self.play_buffer.clear();
            self.play_buffer.resize(builder.target_length(), 0);
            let Ok(written) = builder.build_into(&mut self.play_buffer) else {
                continue; // a payload type over 127 from a bad SDP: nothing sendable
            };
            self.play_buffer.truncate(written);
            match send_to_leg(
                &mut self.srtp,
                &mut self.webrtc,
                party.leg,
                socket,
                &self.play_buffer,
                destination,
            ) {
                Ok(_) => self.mixed_packets += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.socket_errors += 1,
            }
        }
    }

    /// Reads everything queued on `from` (up to a burst) and forwards it through `to`, the
    /// relay partner's sockets (none for an extra leg).
    fn drain(&mut self, leg: Leg, stream: Stream, from: &UdpSocket, to: Partner<'_>) {
        if leg == Leg::Agent && self.webrtc.is_some() {
            self.drain_webrtc(stream, from, to);
            return;
        }
        let now = Instant::now();
        let plan = self.forward_plan(leg, stream);
        for _ in 0..MAX_BURST {
            let (len, source) = match from.try_recv_from(&mut self.receive_buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // ICMP port unreachable for an earlier send and the like: count, keep going.
                    tracing::debug!(error = %e, ?leg, "media receive error");
                    self.socket_errors += 1;
                    continue;
                }
            };
            crate::media_workers::note_media_received();
            self.accept(now, (leg, stream), source, len, to, plan);
        }
    }

    /// One datagram read into the receive buffer: SRTP legs authenticate and decrypt it here,
    /// so all that follows sees plain RTP; then it is relayed, mixed or recorded.
    fn accept(
        &mut self,
        now: Instant,
        (leg, stream): (Leg, Stream),
        source: SocketAddr,
        len: usize,
        to: Partner<'_>,
        plan: ForwardPlan,
    ) {
        // RFC 5761 §4: on a multiplexing leg's RTP port, packet types 192-223 are RTCP.
        let stream = match stream {
            Stream::Rtp
                if self.core.rtcp_mux(leg)
                    && self
                        .receive_buffer
                        .get(..len)
                        .is_some_and(crate::relay_core::is_multiplexed_rtcp) =>
            {
                Stream::Rtcp
            }
            _ => stream,
        };
        let Some(len) = self.srtp.receive(
            leg.index(),
            stream == Stream::Rtcp,
            &mut self.receive_buffer,
            len,
        ) else {
            return;
        };
        self.forward(now, leg, stream, source, len, to, plan);
    }

    /// Reads what is already queued on `from` as the session stops. tokio only reads a socket
    /// its reactor has seen become readable, and a packet that arrived just before the
    /// hang-up may not have been seen yet (the worker was busy): without this, the last packets
    /// of a call would be neither relayed nor recorded nor counted (an SRTP forgery sent just
    /// before a BYE, say). One system call to learn the sender and one to read, per datagram.
    fn drain_before_stop(&mut self, leg: Leg, stream: Stream, from: &UdpSocket, to: Partner<'_>) {
        if leg == Leg::Agent && self.webrtc.is_some() {
            return;
        }
        let now = Instant::now();
        let plan = self.forward_plan(leg, stream);
        let socket = socket2::SockRef::from(from);
        for _ in 0..MAX_BURST {
            let Some(source) = socket.peek_sender().ok().and_then(|a| a.as_socket()) else {
                return;
            };
            let len = match std::io::Read::read(&mut &*socket, &mut self.receive_buffer) {
                Ok(len) => len,
                Err(_) => return,
            };
            self.accept(now, (leg, stream), source, len, to, plan);
        }
    }

    /// What [`SessionState::forward`] does with one leg's packets, fixed for a whole burst.
    fn forward_plan(&self, leg: Leg, stream: Stream) -> ForwardPlan {
        let mixing = self.mix.is_some();
        ForwardPlan {
            mixing,
            // While mixing, the recording is fed per tick from the mixer's decoded frames.
            inspect_rtp: stream == Stream::Rtp
                && ((self.recording.is_some() && !mixing)
                    || (leg == Leg::Trunk && self.inband.is_some())),
            suppress: stream == Stream::Rtp
                && self.playback[leg.other().index()].suppresses_relay(),
        }
    }

    /// Hands one plain packet (in `receive_buffer[..len]`) from `leg` to the relay core,
    /// recording, DTMF and mixer, and relays it through `to` when the core says so.
    #[allow(clippy::too_many_arguments)] // the relay's hot path: no struct built per packet
    #[inline]
    fn forward(
        &mut self,
        now: Instant,
        leg: Leg,
        stream: Stream,
        source: SocketAddr,
        len: usize,
        to: Partner<'_>,
        plan: ForwardPlan,
    ) {
        let Some(datagram) = self.receive_buffer.get(..len) else {
            return;
        };
        // A burst's plan was made for its socket; RTCP split off a multiplexed RTP port is
        // neither audio nor subject to playback.
        let plan = match stream {
            Stream::Rtp => plan,
            Stream::Rtcp => ForwardPlan {
                inspect_rtp: false,
                suppress: false,
                ..plan
            },
        };
        let disposition = match stream {
            Stream::Rtp => self.core.handle_rtp(now, leg, source, datagram),
            Stream::Rtcp => self.core.handle_rtcp(now, leg, source, datagram),
        };
        if plan.inspect_rtp && disposition.accepted() {
            self.inspect_audio(leg, len);
        }
        if plan.mixing && stream == Stream::Rtp && disposition.accepted() {
            self.mix_push(leg, len);
        }
        let Some(destination) = disposition.destination() else {
            return;
        };
        if plan.suppress {
            self.core.note_suppressed(leg);
            return;
        }
        // RTCP toward a multiplexing leg goes from its RTP port, as RTP does.
        let to = match stream {
            Stream::Rtcp if !self.core.rtcp_mux(leg.other()) => to.rtcp,
            _ => to.rtp,
        };
        let (Some(to), Some(datagram)) = (to, self.receive_buffer.get(..len)) else {
            return;
        };
        if leg.other() == Leg::Agent {
            if let Some(webrtc) = self.webrtc.as_mut() {
                // The browser gets Switchboard's own RTCP from its leg, not the trunk's.
                if stream == Stream::Rtp {
                    if let Err(error) = webrtc.send_rtp(now, datagram) {
                        tracing::debug!(%error, "RTP for the WebRTC leg not sent");
                    }
                    flush_webrtc(webrtc, to);
                }
                return;
            }
        }
        let wire = match self
            .srtp
            .send(leg.other().index(), stream == Stream::Rtcp, datagram)
        {
            Ok(wire) => wire,
            Err(error) => {
                tracing::debug!(%error, ?leg, "SRTP protect failed");
                self.socket_errors += 1;
                return;
            }
        };
        if let Err(e) = to.try_send_to(&wire, destination) {
            if e.kind() != io::ErrorKind::WouldBlock {
                self.socket_errors += 1;
            }
            self.core.note_send_failure(leg);
        }
    }

    /// The agent port of a WebRTC leg: every datagram (STUN, DTLS, SRTP, SRTCP — all on one
    /// port, rtcp-mux) goes to the leg; the plain RTP it yields continues like a phone's.
    fn drain_webrtc(&mut self, stream: Stream, from: &UdpSocket, to: Partner<'_>) {
        let now = Instant::now();
        for _ in 0..MAX_BURST {
            let (len, source) = match from.try_recv_from(&mut self.receive_buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "media receive error on the WebRTC leg");
                    self.socket_errors += 1;
                    continue;
                }
            };
            if stream == Stream::Rtcp {
                continue; // rtcp-mux: nothing belongs on the RTCP port
            }
            let Some(webrtc) = self.webrtc.as_mut() else {
                return;
            };
            let Some(datagram) = self.receive_buffer.get(..len) else {
                continue;
            };
            webrtc.handle_datagram(now, source, datagram);
            self.service_webrtc(from);
            let plan = self.forward_plan(Leg::Agent, Stream::Rtp);
            while let Some(plain) = self.webrtc.as_mut().and_then(|w| w.poll_rtp()) {
                let Some(slot) = self.receive_buffer.get_mut(..plain.len()) else {
                    continue; // larger than any datagram the port can receive: not ours
                };
                slot.copy_from_slice(&plain);
                self.forward(now, Leg::Agent, Stream::Rtp, source, plain.len(), to, plan);
            }
        }
    }

    /// Sends what the WebRTC leg has to send from the agent socket and logs its state changes.
    fn service_webrtc(&mut self, agent_socket: &UdpSocket) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        flush_webrtc(webrtc, agent_socket);
        while let Some(event) = webrtc.poll_event() {
            match event {
                WebRtcEvent::Connected => {
                    tracing::info!(session = self.id, "WebRTC agent leg connected")
                }
                // The media timeout ends the call if the browser stays silent.
                WebRtcEvent::Failed => {
                    tracing::info!(session = self.id, "WebRTC agent leg failed or closed")
                }
            }
        }
    }

    /// The WebRTC leg's timer fired.
    fn webrtc_timeout(&mut self, agent_socket: &UdpSocket) {
        if let Some(webrtc) = self.webrtc.as_mut() {
            webrtc.handle_timeout(Instant::now());
        }
        self.service_webrtc(agent_socket);
    }

    /// Hands an accepted RTP packet's audio to the mixer (telephone-events and other payload
    /// types are not audio: they are reported, never mixed).
    fn mix_push(&mut self, leg: Leg, len: usize) {
        let (Some(mix), Some((_, payload_type))) = (
            self.mix.as_mut(),
            self.legs.get(leg.index()).and_then(|config| config.codec),
        ) else {
            return;
        };
        let Some(party) = mix.parties.iter().find(|p| p.leg == leg) else {
            return;
        };
        let Some(packet) = self
            .receive_buffer
            .get(..len)
            .and_then(|datagram| RtpReader::new(datagram).ok())
        else {
            return;
        };
        if packet.payload_type() == payload_type {
            mix.mixer.push(party.id, packet.payload());
        }
    }

    /// Decodes an accepted RTP packet's audio for the recording and in-band DTMF.
    fn inspect_audio(&mut self, leg: Leg, len: usize) {
        let Some((codec, payload_type)) = self.legs[leg.index()].codec else {
            return;
        };
        let Some(packet) = self
            .receive_buffer
            .get(..len)
            .and_then(|datagram| RtpReader::new(datagram).ok())
        else {
            return;
        };
        if packet.payload_type() != payload_type {
            return; // telephone-event, comfort noise: not audio we can decode
        }
        self.decoded.clear();
        codec.law().decode_into(packet.payload(), &mut self.decoded);
        if let Some(recording) = self.recording.as_mut() {
            // An extra leg outside a mix is heard by nobody, so it is not recorded either.
            let channel = match leg {
                Leg::Trunk => Some(Channel::Caller),
                Leg::Agent => Some(Channel::Agent),
                Leg::Extra(_) => None,
            };
            if let Some(channel) = channel {
                recording.push(channel, &self.decoded);
            }
        }
        if leg == Leg::Trunk {
            if let Some(detector) = self.inband.as_mut() {
                for digit in detector.process(&self.decoded) {
                    let _ = self.events.send((
                        self.id,
                        MediaEvent::Dtmf {
                            leg,
                            digit,
                            duration_ms: 0,
                            source: DtmfSource::InBand,
                        },
                    ));
                }
            }
        }
    }
}

/// How one burst of a leg's packets is handled (see [`SessionState::forward_plan`]).
#[derive(Clone, Copy)]
struct ForwardPlan {
    mixing: bool,
    inspect_rtp: bool,
    suppress: bool,
}

/// Sends every datagram the WebRTC leg has queued (DTLS, SRTP, STUN answers) from `socket`.
fn flush_webrtc(webrtc: &mut WebRtcLeg, socket: &UdpSocket) {
    while let Some((to, datagram)) = webrtc.poll_transmit() {
        if let Err(error) = socket.try_send_to(&datagram, to) {
            tracing::debug!(%error, %to, "WebRTC datagram not sent");
        }
    }
}

/// The mixer of a session in Mix routing, and which leg each party is.
struct MixState {
    mixer: Mixer,
    parties: Vec<MixParty>,
}

struct MixParty {
    leg: Leg,
    id: PartyId,
    /// This tick's encoded mix for the leg (reused buffer).
    frame: Vec<u8>,
    /// `frame` holds this tick's mix (the leg hears someone).
    ready: bool,
}

/// The RTP header fields of one telephone-event packet.
struct EventHeader {
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

/// Writes one telephone-event RTP packet into `out`; false (and nothing to send) if the
/// negotiated payload type cannot be put in an RTP header.
fn write_event_packet(out: &mut Vec<u8>, header: EventHeader, event: TelephoneEventPacket) -> bool {
    let payload = event.event.encode();
    let builder = RtpPacketBuilder::new()
        .payload_type(header.payload_type)
        .ssrc(header.ssrc)
        .sequence(Seq::from(header.sequence))
        .timestamp(header.timestamp)
        .marked(event.marker)
        .payload(&payload);
    out.clear();
    out.resize(builder.target_length(), 0);
    match builder.build_into(out) {
        Ok(written) => {
            out.truncate(written);
            true
        }
        Err(e) => {
            tracing::debug!(error = ?e, payload_type = header.payload_type, "telephone-event packet not built");
            false
        }
    }
}

/// In-band detection is the fallback for a trunk that signals no telephone-event.
fn wants_inband(trunk: &LegConfig) -> bool {
    trunk.telephone_event.is_none() && trunk.codec.is_some()
}

/// Waits for the next playback tick; never completes when nothing plays.
async fn next_tick(timer: &mut Option<Interval>) -> tokio::time::Instant {
    match timer {
        Some(interval) => interval.tick().await,
        None => std::future::pending().await,
    }
}

/// Sends one RTP packet Switchboard made (prompt, key press, mix) to `leg`, protected when
/// the leg speaks SRTP. A protect failure is reported like a socket error.
fn send_to_leg(
    srtp: &mut SessionSrtp,
    webrtc: &mut Option<Box<WebRtcLeg>>,
    leg: Leg,
    socket: &UdpSocket,
    packet: &[u8],
    destination: SocketAddr,
) -> io::Result<usize> {
    if let (Leg::Agent, Some(webrtc)) = (leg, webrtc.as_mut()) {
        // The browser's address is the one ICE chose, not `destination`.
        webrtc
            .send_rtp(Instant::now(), packet)
            .map_err(|e| io::Error::other(e.to_string()))?;
        flush_webrtc(webrtc, socket);
        return Ok(packet.len());
    }
    let wire = srtp
        .send(leg.index(), false, packet)
        .map_err(|e| io::Error::other(e.to_string()))?;
    socket.try_send_to(&wire, destination)
}

async fn run(
    mut state: SessionState,
    sockets: Sockets,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut playback: Option<Interval> = None;
    let far_future = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let deadline = |core: &RelayCore| {
        core.poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(far_future)
    };
    let sleep = tokio::time::sleep_until(deadline(&state.core));
    tokio::pin!(sleep);
    // The WebRTC leg's own timer (ICE keepalives, DTLS retransmissions); idle for phones.
    let webrtc_deadline = |state: &mut SessionState| {
        state
            .webrtc
            .as_mut()
            .and_then(|webrtc| webrtc.poll_timeout())
            .map(tokio::time::Instant::from_std)
            .unwrap_or(far_future)
    };
    let webrtc_sleep = tokio::time::sleep_until(far_future);
    tokio::pin!(webrtc_sleep);

    let mut sockets = sockets;
    let reason = {
        loop {
            let [trunk_rtp, agent_rtp] = &sockets.rtp;
            let rtcp = sockets.rtcp.as_ref();
            // What each main leg's packets are relayed through: the other leg's sockets.
            let to_agent = Partner {
                rtp: Some(agent_rtp),
                rtcp: rtcp.map(|(_, agent)| agent),
            };
            let to_trunk = Partner {
                rtp: Some(trunk_rtp),
                rtcp: rtcp.map(|(trunk, _)| trunk),
            };
            let has_extra = sockets.extra.iter().any(Option::is_some);
            tokio::select! {
                biased;
                control = control.recv() => match control {
                    Some(Control::Command(command)) => {
                        state.apply(*command, &mut playback, &mut sockets.extra);
                        // A bridge or hold change moves the media-timeout deadline.
                        sleep.as_mut().reset(deadline(&state.core));
                    }
                    // Stopped, or the handle was dropped: either way the call is over.
                    Some(Control::Stop) | None => {
                        state.drain_before_stop(Leg::Trunk, Stream::Rtp, trunk_rtp, to_agent);
                        state.drain_before_stop(Leg::Agent, Stream::Rtp, agent_rtp, to_trunk);
                        break StopReason::Stopped;
                    }
                },
                ready = trunk_rtp.readable() => {
                    if ready.is_ok() {
                        state.drain(Leg::Trunk, Stream::Rtp, trunk_rtp, to_agent);
                    }
                }
                ready = agent_rtp.readable() => {
                    if ready.is_ok() {
                        state.drain(Leg::Agent, Stream::Rtp, agent_rtp, to_trunk);
                    }
                }
                ready = async { rtcp?.0.readable().await.ok() }, if rtcp.is_some() => {
                    if let (Some(()), Some((trunk, _))) = (ready, rtcp) {
                        state.drain(Leg::Trunk, Stream::Rtcp, trunk, to_agent);
                    }
                }
                ready = async { rtcp?.1.readable().await.ok() }, if rtcp.is_some() => {
                    if let (Some(()), Some((_, agent))) = (ready, rtcp) {
                        state.drain(Leg::Agent, Stream::Rtcp, agent, to_trunk);
                    }
                }
                (n, stream) = extra_readable(&sockets.extra), if has_extra => {
                    let leg = Leg::Extra(u8::try_from(n).unwrap_or(u8::MAX));
                    if let Some(Some(extra)) = sockets.extra.get(n) {
                        let from = match stream {
                            Stream::Rtp => Some(&extra.rtp),
                            Stream::Rtcp => extra.rtcp.as_ref(),
                        };
                        if let Some(from) = from {
                            state.drain(leg, stream, from, Partner::NONE);
                        }
                    }
                }
                at = next_tick(&mut playback), if playback.is_some() => {
                    state.play_tick(at, &sockets);
                    if !state.needs_ticks() {
                        playback = None;
                    }
                }
                _ = &mut sleep => {
                    state.core.handle_timeout(Instant::now());
                    sleep.as_mut().reset(deadline(&state.core));
                }
                _ = &mut webrtc_sleep, if state.webrtc.is_some() => {
                    state.webrtc_timeout(agent_rtp);
                }
            }
            if state.webrtc.is_some() {
                state.service_webrtc(&sockets.rtp[1]);
                webrtc_sleep.as_mut().reset(webrtc_deadline(&mut state));
            }
            state.forward_core_events();
            if let Some(leg) = state.core.timed_out() {
                break StopReason::MediaTimeout(leg);
            }
        }
    };
    let extra_legs = sockets
        .extra
        .iter()
        .enumerate()
        .filter_map(|(n, extra)| {
            let leg = Leg::Extra(u8::try_from(n).ok()?);
            Some((leg, extra.as_ref()?.ports, state.core.report(leg)))
        })
        .collect();
    // A browser learns at once that the call's media is over (DTLS close_notify).
    if let Some(webrtc) = state.webrtc.as_mut() {
        webrtc.close();
        flush_webrtc(webrtc, &sockets.rtp[1]);
    }
    // Give the sockets back (or close them) before reporting: call control frees the ports
    // on `Ended` and may hand them to the next call at once.
    for (port, socket) in sockets.into_all() {
        state.home.give_back(state.bind_ip, port, socket);
    }
    let recording = match state.recording.take() {
        Some(recording) => Some(recording.finish().await),
        None => None,
    };
    let report = SessionReport {
        reason,
        trunk: state.core.report(Leg::Trunk),
        agent: state.core.report(Leg::Agent),
        events_dropped: state.core.events_dropped(),
        socket_errors: state.socket_errors,
        played_packets: state.played_packets,
        dtmf_packets: state.dtmf_packets,
        mixed_packets: state.mixed_packets,
        srtp_auth_failures: state.srtp.auth_failures,
        srtcp_auth_failures: state.srtp.rtcp_auth_failures,
        webrtc: state.webrtc.as_ref().map(|webrtc| webrtc.counters()),
        recording,
        extra_legs,
    };
    state.emit(MediaEvent::Ended(report));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{telephone_event_packets, TelephoneEvent, TelephoneEventReceiver};
    use crate::g711::{ulaw_decode, G711Law};
    use crate::port_pool::PortPool;
    use crate::recorder::{RecorderMetrics, RecorderPool};
    use rtp_rs::{RtpPacketBuilder, Seq};
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, OnceLock};

    type Events = mpsc::UnboundedReceiver<(SessionId, MediaEvent)>;

    const PCMU: Option<(Codec, u8)> = Some((Codec::Pcmu, 0));
    const WAIT: Duration = Duration::from_secs(5);

    /// One pool for every test in this module, so parallel tests never pick the same ports;
    /// ports taken by other processes are skipped by retrying.
    fn ports() -> (PortPair, PortPair) {
        static POOL: OnceLock<Mutex<PortPool>> = OnceLock::new();
        let pool = POOL.get_or_init(|| Mutex::new(PortPool::new(47000, 48999).expect("range")));
        let mut pool = pool.lock().expect("port pool lock");
        match (pool.allocate(), pool.allocate()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => panic!("test port range exhausted"),
        }
    }

    fn start(
        trunk: LegConfig,
        agent: Option<LegConfig>,
        timeout: Option<Duration>,
    ) -> (MediaSession, Events) {
        let (sink, events) = mpsc::unbounded_channel();
        for _ in 0..100 {
            let (trunk_ports, agent_ports) = ports();
            let config = SessionConfig {
                id: 42,
                bind_ip: "127.0.0.1".parse().expect("loopback"),
                trunk_ports,
                agent_ports,
                trunk,
                agent,
                media_timeout: timeout,
                relatch_after: Duration::from_secs(2),
                rtcp: true,
            };
            if let Ok(session) = MediaSession::start(config, sink.clone()) {
                return (session, events);
            }
        }
        panic!("no free port pairs for the test session");
    }

    async fn phone() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind test phone")
    }

    fn leg(
        socket: &UdpSocket,
        codec: Option<(Codec, u8)>,
        telephone_event: Option<u8>,
    ) -> LegConfig {
        LegConfig {
            remote_rtp: Some(socket.local_addr().expect("addr")),
            codec,
            telephone_event,
            ..LegConfig::default()
        }
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(0xCAFE)
            .sequence(Seq::from(seq))
            .timestamp(ts)
            .payload(payload)
            .build()
            .expect("valid packet")
    }

    async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 2048];
        let (len, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
            .await
            .expect("packet in time")
            .expect("recv works");
        buf.truncate(len);
        (buf, from)
    }

    /// Packets already queued on a socket, without waiting.
    fn queued(socket: &UdpSocket) -> usize {
        let mut buf = [0u8; 2048];
        std::iter::from_fn(|| socket.try_recv_from(&mut buf).ok()).count()
    }

    async fn next_event(events: &mut Events) -> MediaEvent {
        let (id, event) = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("sink open");
        assert_eq!(id, 42);
        event
    }

    /// Skips events until one matches.
    async fn wait_for(events: &mut Events, wanted: impl Fn(&MediaEvent) -> bool) -> MediaEvent {
        loop {
            let event = next_event(events).await;
            if wanted(&event) {
                return event;
            }
        }
    }

    async fn ended(events: &mut Events) -> SessionReport {
        match wait_for(events, |e| matches!(e, MediaEvent::Ended(_))).await {
            MediaEvent::Ended(report) => report,
            _ => unreachable!("filtered above"),
        }
    }

    /// A command round trip: `Play` to the absent agent leg answers at once, so once its
    /// `PlaybackFinished` arrives every earlier command has been applied.
    async fn sync(session: &MediaSession, events: &mut Events) {
        session.command(MediaCommand::Play {
            leg: Leg::Agent,
            clips: Vec::new(),
            looping: false,
            token: u64::MAX,
        });
        wait_for(events, |e| {
            matches!(
                e,
                MediaEvent::PlaybackFinished {
                    token: u64::MAX,
                    ..
                }
            )
        })
        .await;
    }

    fn clip(samples: Vec<i16>) -> Arc<AudioClip> {
        Arc::new(AudioClip::from_samples(samples))
    }

    #[tokio::test]
    async fn plays_a_list_of_clips_to_the_trunk_before_any_agent() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        let clips: Vec<Arc<AudioClip>> = (0..3i16)
            .map(|c| clip((0..320).map(|i| i * 37 + c * 1000).collect()))
            .collect();
        let mut expected_payload = Vec::new();
        for c in &clips {
            G711Law::Ulaw.encode_into(c.samples(), &mut expected_payload);
        }
        session.command(MediaCommand::Play {
            leg: Leg::Trunk,
            clips,
            looping: false,
            token: 7,
        });
        let mut payload = Vec::new();
        let mut first: Option<(u16, u32, u32)> = None;
        for n in 0..6u16 {
            let (bytes, from) = recv(&caller).await;
            assert_eq!(from, session.trunk_addr(), "sent from the trunk-side port");
            let packet = RtpReader::new(&bytes).expect("valid RTP");
            let (seq0, ts0, ssrc) = *first.get_or_insert((
                u16::from(packet.sequence_number()),
                packet.timestamp(),
                packet.ssrc(),
            ));
            assert_eq!(u16::from(packet.sequence_number()), seq0.wrapping_add(n));
            assert_eq!(packet.timestamp(), ts0.wrapping_add(160 * u32::from(n)));
            assert_eq!(packet.mark(), n == 0, "marker on the first packet only");
            assert_eq!(packet.payload_type(), 0);
            assert_eq!(packet.ssrc(), ssrc);
            payload.extend_from_slice(packet.payload());
        }
        assert_eq!(
            payload, expected_payload,
            "the clips' encoded audio, in order"
        );
        assert_eq!(
            next_event(&mut events).await,
            MediaEvent::PlaybackFinished {
                leg: Leg::Trunk,
                token: 7
            }
        );
        assert_eq!(queued(&caller), 0, "nothing after the list");
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.reason, StopReason::Stopped);
        assert_eq!(report.played_packets, 6);
    }

    #[tokio::test]
    async fn music_on_hold_loops_until_stopped() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        session.command(MediaCommand::Play {
            leg: Leg::Trunk,
            clips: vec![clip(vec![500; 320])],
            looping: true,
            token: 1,
        });
        let mut received = 0u64;
        let mut sequences = Vec::new();
        while received < 8 {
            let (bytes, _) = recv(&caller).await;
            let packet = RtpReader::new(&bytes).expect("valid RTP");
            sequences.push(u16::from(packet.sequence_number()));
            received += 1;
        }
        assert!(
            sequences.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "one continuous stream past the clip's 2 packets: {sequences:?}"
        );
        session.command(MediaCommand::StopPlayback { leg: Leg::Trunk });
        sync(&session, &mut events).await;
        received += queued(&caller) as u64;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), recv(&caller))
                .await
                .is_err(),
            "no packet after StopPlayback"
        );
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.played_packets, received);
        assert!(
            !matches!(
                next_event_now(&mut events),
                Some(MediaEvent::PlaybackFinished { token: 1, .. })
            ),
            "a stopped loop reports no PlaybackFinished"
        );
    }

    fn next_event_now(events: &mut Events) -> Option<MediaEvent> {
        events.try_recv().ok().map(|(_, e)| e)
    }

    /// Plays `clips` on a trunk leg configured as `config` and expects the playback to be
    /// reported finished at once, with nothing sent.
    async fn finishes_at_once(config: LegConfig, clips: Vec<Arc<AudioClip>>, token: u64) {
        let (session, mut events) = start(config, None, None);
        session.command(MediaCommand::Play {
            leg: Leg::Trunk,
            clips,
            looping: true,
            token,
        });
        assert_eq!(
            next_event(&mut events).await,
            MediaEvent::PlaybackFinished {
                leg: Leg::Trunk,
                token
            }
        );
        session.stop();
        assert_eq!(ended(&mut events).await.played_packets, 0);
    }

    #[tokio::test]
    async fn an_empty_list_finishes_at_once() {
        let caller = phone().await;
        finishes_at_once(leg(&caller, PCMU, Some(101)), Vec::new(), 11).await;
    }

    #[tokio::test]
    async fn play_without_codec_finishes_at_once() {
        let caller = phone().await;
        finishes_at_once(leg(&caller, None, None), vec![clip(vec![1; 800])], 9).await;
    }

    #[tokio::test]
    async fn an_rtcp_mux_leg_has_its_rtcp_on_the_rtp_port_and_the_other_leg_keeps_its_own() {
        // The trunk agreed on rtcp-mux (one socket for both), the agent did not (RTCP on +1).
        let caller = phone().await;
        let agent = phone().await;
        let agent_rtcp = phone().await;
        let trunk = LegConfig {
            rtcp_mux: true,
            ..leg(&caller, PCMU, None)
        };
        let agent_leg = LegConfig {
            remote_rtcp: Some(agent_rtcp.local_addr().expect("addr")),
            ..leg(&agent, PCMU, None)
        };
        let (session, mut events) = start(trunk, Some(agent_leg), None);
        let agent_rtcp_port =
            SocketAddr::new(session.agent_addr().ip(), session.agent_addr().port() + 1);
        let sender_report = |ssrc: u8| {
            let mut packet = vec![0x80, 200, 0, 6];
            packet.extend([0, 0, 0, ssrc]);
            packet.extend([0u8; 20]);
            packet
        };

        // The caller's RTP and RTCP both go to the one trunk port; RTP reaches the agent's
        // RTP socket, RTCP its RTCP socket from Switchboard's RTCP port.
        let voice = rtp(0, 1, 0, &[0x55; 160]);
        caller
            .send_to(&voice, session.trunk_addr())
            .await
            .expect("send");
        assert_eq!(recv(&agent).await, (voice, session.agent_addr()));
        let from_caller = sender_report(1);
        caller
            .send_to(&from_caller, session.trunk_addr())
            .await
            .expect("send");
        assert_eq!(recv(&agent_rtcp).await, (from_caller, agent_rtcp_port));

        // The agent's RTCP, sent to Switchboard's RTCP port, reaches the caller on its one
        // port, from the trunk RTP port.
        let from_agent = sender_report(2);
        agent_rtcp
            .send_to(&from_agent, agent_rtcp_port)
            .await
            .expect("send");
        assert_eq!(recv(&caller).await, (from_agent, session.trunk_addr()));

        // RTCP on the agent's RTP port is still refused: that leg did not agree on mux.
        agent
            .send_to(&sender_report(3), session.agent_addr())
            .await
            .expect("send");
        sync(&session, &mut events).await;
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.trunk.rtcp_forwarded, 1);
        assert_eq!(report.agent.rtcp_forwarded, 1);
        assert_eq!(report.trunk.forwarded, 1, "RTP counted as RTP, RTCP apart");
        assert_eq!(report.agent.dropped_invalid, 1);
    }

    #[tokio::test]
    async fn update_leg_bridges_byte_for_byte_and_stops_music_on_hold() {
        let caller = phone().await;
        let agent = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        // Before the bridge the caller's audio is Switchboard's alone.
        caller
            .send_to(&rtp(0, 1, 0, &[0x55; 160]), session.trunk_addr())
            .await
            .expect("send");
        // A stray packet to the agent port is not accepted from anyone before the bridge.
        agent
            .send_to(&rtp(0, 1, 0, &[0x66; 160]), session.agent_addr())
            .await
            .expect("send");
        session.command(MediaCommand::Play {
            leg: Leg::Trunk,
            clips: vec![clip(vec![300; 160])],
            looping: true,
            token: 3,
        });
        recv(&caller).await;
        recv(&caller).await;
        let mut moh_packets = 2;

        session.command(MediaCommand::UpdateLeg {
            leg: Leg::Agent,
            config: leg(&agent, PCMU, Some(101)),
        });
        let from_agent = rtp(0, 2, 160, &[0x11; 160]);
        agent
            .send_to(&from_agent, session.agent_addr())
            .await
            .expect("send");
        loop {
            let (bytes, from) = recv(&caller).await;
            assert_eq!(from, session.trunk_addr());
            if bytes == from_agent {
                break;
            }
            moh_packets += 1; // played before the bridge was applied
        }
        for seq in 2..=11u16 {
            let payload: Vec<u8> = (0..160).map(|i| (i as u8) ^ (seq as u8)).collect();
            let packet = rtp(0, seq, u32::from(seq) * 160, &payload);
            caller
                .send_to(&packet, session.trunk_addr())
                .await
                .expect("send");
            let (bytes, from) = recv(&agent).await;
            assert_eq!(bytes, packet, "byte for byte");
            assert_eq!(from, session.agent_addr());
        }
        assert_eq!(queued(&caller), 0, "music on hold stopped at the bridge");
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.played_packets, moh_packets);
        assert_eq!(report.trunk.terminated, 1, "the pre-bridge packet");
        assert_eq!(report.trunk.forwarded, 10);
        assert_eq!(report.agent.forwarded, 1);
        assert_eq!(report.agent.dropped_foreign, 1, "the pre-bridge stray");
        assert_eq!(
            report.agent.latched,
            Some(agent.local_addr().expect("addr"))
        );
    }

    #[tokio::test]
    async fn rfc4733_presses_are_one_event_each_and_still_relayed() {
        let caller = phone().await;
        let agent = phone().await;
        let (session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            Some(leg(&agent, PCMU, Some(101))),
            None,
        );
        let mut seq = 100u16;
        for (key, ts) in [('5', 8000u32), ('#', 16000)] {
            let digit = DtmfDigit::from_char(key).expect("key");
            for packet in telephone_event_packets(digit, 120, 10) {
                let bytes = RtpPacketBuilder::new()
                    .payload_type(101)
                    .ssrc(0xCAFE)
                    .sequence(Seq::from(seq))
                    .timestamp(ts)
                    .marked(packet.marker)
                    .payload(&packet.event.encode())
                    .build()
                    .expect("valid");
                seq += 1;
                caller
                    .send_to(&bytes, session.trunk_addr())
                    .await
                    .expect("send");
                assert_eq!(
                    recv(&agent).await.0,
                    bytes,
                    "telephone-event relayed unchanged"
                );
            }
        }
        let mut presses = Vec::new();
        while presses.len() < 2 {
            if let MediaEvent::Dtmf {
                leg,
                digit,
                duration_ms,
                source,
            } = next_event(&mut events).await
            {
                assert_eq!(
                    (leg, source, duration_ms),
                    (Leg::Trunk, DtmfSource::Rfc4733, 120)
                );
                presses.push(digit.as_char());
            }
        }
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(presses, ['5', '#'], "one event per press, in order");
        assert_eq!(report.trunk.forwarded, u64::from(seq - 100));
    }

    /// μ-law packets of a DTMF key tone (`ms` long) then `gap_ms` of silence.
    fn inband_key(key: char, ms: usize, gap_ms: usize) -> Vec<Vec<u8>> {
        const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
        const COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
        let keys = ["123A", "456B", "789C", "*0#D"];
        let (row, column) = keys
            .iter()
            .enumerate()
            .find_map(|(r, row)| row.find(key).map(|c| (r, c)))
            .expect("DTMF key");
        let mut samples: Vec<i16> = (0..ms * 8)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let v = 6000.0
                    * ((2.0 * std::f32::consts::PI * ROWS[row] * t).sin()
                        + (2.0 * std::f32::consts::PI * COLUMNS[column] * t).sin());
                v as i16
            })
            .collect();
        samples.extend(std::iter::repeat_n(0, gap_ms * 8));
        samples
            .chunks(160)
            .map(|frame| {
                let mut payload = Vec::new();
                G711Law::Ulaw.encode_into(frame, &mut payload);
                payload
            })
            .collect()
    }

    #[tokio::test]
    async fn inband_tones_are_detected_when_the_trunk_has_no_telephone_event() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, None), None, None);
        let mut seq = 0u16;
        for key in ['3', '3', '8'] {
            for payload in inband_key(key, 100, 60) {
                let packet = rtp(0, seq, u32::from(seq) * 160, &payload);
                seq += 1;
                caller
                    .send_to(&packet, session.trunk_addr())
                    .await
                    .expect("send");
            }
        }
        let mut presses = String::new();
        while presses.len() < 3 {
            if let MediaEvent::Dtmf {
                digit, source, leg, ..
            } = next_event(&mut events).await
            {
                assert_eq!((leg, source), (Leg::Trunk, DtmfSource::InBand));
                presses.push(digit.as_char());
            }
        }
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(presses, "338", "one event per press, repeats kept");
        assert_eq!(report.trunk.terminated, u64::from(seq));
    }

    #[tokio::test]
    async fn an_srtp_agent_leg_is_encrypted_on_the_wire_and_plain_to_the_trunk() {
        use crate::sdes::{MasterKey, SrtpSuite};
        use crate::srtp::{SrtpLeg, SrtpPolicy};
        let caller = phone().await;
        let agent = phone().await;
        let (switchboard_key, phone_key) = (MasterKey::random(), MasterKey::random());
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        // The phone's own SRTP end of the SDES exchange.
        let mut phone_srtp = SrtpLeg::new(SrtpPolicy {
            suite,
            send_key: phone_key,
            receive_key: switchboard_key,
        })
        .expect("context");
        let agent_leg = LegConfig {
            srtp: Some(SrtpPolicy {
                suite,
                send_key: switchboard_key,
                receive_key: phone_key,
            }),
            ..leg(&agent, PCMU, Some(101))
        };
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), Some(agent_leg), None);

        // Caller to agent: plain in, SRTP out, byte for byte after decryption.
        let from_caller = rtp(0, 1, 0, &[0x55; 160]);
        caller
            .send_to(&from_caller, session.trunk_addr())
            .await
            .expect("send");
        let (wire, _) = recv(&agent).await;
        assert_eq!(wire.len(), from_caller.len() + 10, "80-bit auth tag");
        assert_ne!(wire[12..172], from_caller[12..], "payload encrypted");
        assert_eq!(
            phone_srtp.unprotect_rtp(&wire).expect("authentic"),
            from_caller
        );

        // Agent to caller: SRTP in, plain out.
        let from_agent = rtp(0, 7, 160, &[0x11; 160]);
        let protected = phone_srtp.protect_rtp(&from_agent).expect("protect");
        agent
            .send_to(&protected, session.agent_addr())
            .await
            .expect("send");
        assert_eq!(recv(&caller).await.0, from_agent);

        // A tampered packet, a replay and a plain packet are dropped and counted.
        let mut tampered = phone_srtp
            .protect_rtp(&rtp(0, 8, 320, &[0x22; 160]))
            .expect("protect");
        tampered[30] ^= 0x40;
        agent
            .send_to(&tampered, session.agent_addr())
            .await
            .expect("send");
        agent
            .send_to(&protected, session.agent_addr())
            .await
            .expect("send");
        agent
            .send_to(&rtp(0, 9, 480, &[0x33; 160]), session.agent_addr())
            .await
            .expect("send");
        // A good packet after them still gets through, so the three were read before it.
        let after = rtp(0, 10, 640, &[0x44; 160]);
        let protected = phone_srtp.protect_rtp(&after).expect("protect");
        agent
            .send_to(&protected, session.agent_addr())
            .await
            .expect("send");
        assert_eq!(
            recv(&caller).await.0,
            after,
            "nothing of the three reached the caller"
        );
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.srtp_auth_failures, 3);
        assert_eq!(report.agent.forwarded, 2);
    }

    /// One round of the browser's peer connection over a real socket: send what it has,
    /// wait (at most 20 ms) for one datagram, run its timers.
    async fn browser_round(
        browser: &mut crate::webrtc_leg::test_browser::Browser,
        socket: &UdpSocket,
    ) {
        use rtc::sansio::Protocol;
        let mut buf = vec![0u8; 2048];
        while let Some(out) = browser.peer.poll_write() {
            socket
                .send_to(&out.message, out.transport.peer_addr)
                .await
                .expect("browser send");
        }
        let wait = browser
            .peer
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(20))
            .min(Duration::from_millis(20));
        if let Ok(Ok((len, from))) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            let _ = browser.peer.handle_read(rtc::shared::TaggedBytesMut {
                now: Instant::now(),
                transport: rtc::shared::TransportContext {
                    local_addr: browser.addr,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: rtc::shared::TransportProtocol::UDP,
                },
                message: bytes::BytesMut::from(&buf[..len]),
            });
        }
        let _ = browser.peer.handle_timeout(Instant::now());
        browser.drain();
    }

    /// Drives the browser until `done` holds; each round `each_round` may act (send RTP).
    /// Bounded by a generous limit, never a fixed wait.
    async fn drive_browser(
        browser: &mut crate::webrtc_leg::test_browser::Browser,
        socket: &UdpSocket,
        mut each_round: impl FnMut(&mut crate::webrtc_leg::test_browser::Browser),
        done: impl Fn(&crate::webrtc_leg::test_browser::Browser) -> bool,
    ) {
        let limit = Instant::now() + Duration::from_secs(20);
        while !done(browser) {
            assert!(Instant::now() < limit, "browser side not done in time");
            each_round(browser);
            browser_round(browser, socket).await;
        }
    }

    #[tokio::test]
    async fn a_webrtc_agent_leg_is_bridged_to_a_plain_trunk_both_ways() {
        use crate::webrtc_leg::test_browser::Browser;
        use crate::webrtc_leg::{DtlsIdentity, WebRtcAudio, WebRtcLeg};

        let trunk = phone().await;
        let (session, mut events) = start(leg(&trunk, PCMU, None), None, None);
        let agent_addr = session.agent_addr();
        let identity = DtlsIdentity::generate().expect("identity");
        let webrtc = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            agent_addr,
            &[agent_addr],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let browser_socket = phone().await;
        let browser_addr = browser_socket.local_addr().expect("addr");
        let (mut browser, answer) =
            Browser::answer(Instant::now(), webrtc.offer_sdp(), browser_addr);
        let mut webrtc = webrtc;
        webrtc
            .handle_answer(Instant::now(), &answer)
            .expect("answer");
        session.command(MediaCommand::AttachWebRtc(Box::new(webrtc)));
        // The browser's address comes from ICE, not from its SDP: latched from its RTP.
        session.command(MediaCommand::UpdateLeg {
            leg: Leg::Agent,
            config: LegConfig {
                codec: PCMU,
                ..LegConfig::default()
            },
        });
        drive_browser(&mut browser, &browser_socket, |_| {}, |b| b.connected).await;

        // Browser → trunk: SRTP in at the agent port, plain RTP out to the trunk phone.
        let mut seq = 0u16;
        let mut trunk_got = Vec::new();
        let mut buf = [0u8; 2048];
        while trunk_got.is_empty() {
            seq += 1;
            browser.send(Instant::now(), seq, &[0x55; 160]);
            browser_round(&mut browser, &browser_socket).await;
            while let Ok((len, _)) = trunk.try_recv_from(&mut buf) {
                trunk_got.push(buf[..len].to_vec());
            }
            assert!(seq < 500, "no plain RTP reached the trunk");
            if trunk_got.is_empty() {
                let _ = tokio::time::timeout(Duration::from_millis(20), trunk.readable()).await;
            }
        }
        let first = RtpReader::new(&trunk_got[0]).expect("plain RTP at the trunk");
        assert_eq!(
            first.payload_type(),
            8,
            "the browser's PCMA packet, unchanged"
        );
        assert_eq!(first.payload(), &[0x55; 160][..]);

        // Trunk → browser: plain RTP in at the trunk port, decrypted in the browser.
        let trunk_port = session.trunk_addr();
        let mut sent = 0u16;
        drive_browser(
            &mut browser,
            &browser_socket,
            |_| {
                sent += 1;
                let packet = rtp(0, sent, u32::from(sent) * 160, &[0x11; 160]);
                let _ = trunk.try_send_to(&packet, trunk_port);
            },
            |b| !b.received.is_empty(),
        )
        .await;
        let got = &browser.received[0];
        assert_eq!(got.header.payload_type, 0);
        assert_eq!(&got.payload[..], &[0x11; 160][..]);

        session.stop();
        let report = ended(&mut events).await;
        let counters = report.webrtc.expect("the session had a WebRTC leg");
        assert!(
            counters.rtp_received >= 1 && counters.rtp_sent >= 1,
            "{counters:?}"
        );
        assert!(report.agent.forwarded >= 1, "{:?}", report.agent);
    }

    #[tokio::test]
    async fn a_webrtc_agents_key_presses_and_voice_reach_dtmf_detection_and_the_recording() {
        use crate::webrtc_leg::test_browser::Browser;
        use crate::webrtc_leg::{DtlsIdentity, WebRtcAudio, WebRtcLeg};

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let pool =
            RecorderPool::new(1, Arc::new(RecorderMetrics::default())).expect("recorder pool");
        let trunk = phone().await;
        let (session, mut events) = start(leg(&trunk, PCMU, Some(101)), None, None);
        let agent_addr = session.agent_addr();
        let identity = DtlsIdentity::generate().expect("identity");
        let mut webrtc = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            agent_addr,
            &[agent_addr],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let browser_socket = phone().await;
        let browser_addr = browser_socket.local_addr().expect("addr");
        let (mut browser, answer) =
            Browser::answer(Instant::now(), webrtc.offer_sdp(), browser_addr);
        webrtc
            .handle_answer(Instant::now(), &answer)
            .expect("answer");
        session.command(MediaCommand::AttachWebRtc(Box::new(webrtc)));
        session.command(MediaCommand::UpdateLeg {
            leg: Leg::Agent,
            config: LegConfig {
                codec: PCMU,
                telephone_event: Some(101),
                ..LegConfig::default()
            },
        });
        session.command(MediaCommand::Record(pool.start(&path).expect("start")));
        drive_browser(&mut browser, &browser_socket, |_| {}, |b| b.connected).await;

        // The agent speaks (PCMU 0x0F), then presses 7 (RFC 4733: three end packets).
        for seq in 1..=20u16 {
            browser.send_packet(Instant::now(), 0, seq, u32::from(seq) * 160, &[0x0F; 160]);
            browser_round(&mut browser, &browser_socket).await;
        }
        for seq in 21..=23u16 {
            browser.send_packet(
                Instant::now(),
                101,
                seq,
                21 * 160,
                &[7, 0x80 | 10, 0x03, 0x20],
            );
            browser_round(&mut browser, &browser_socket).await;
        }
        let press = wait_for(&mut events, |e| matches!(e, MediaEvent::Dtmf { .. })).await;
        assert_eq!(
            press,
            MediaEvent::Dtmf {
                leg: Leg::Agent,
                digit: DtmfDigit::from_char('7').expect("digit"),
                duration_ms: 100,
                source: DtmfSource::Rfc4733,
            }
        );
        session.stop();
        let report = ended(&mut events).await;
        assert!(
            matches!(report.recording, Some(RecordingOutcome::Complete { .. })),
            "{:?}",
            report.recording
        );
        let samples: Vec<i16> = hound::WavReader::open(&path)
            .expect("valid WAV")
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("readable");
        let agent_voice = samples
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|&&s| s == ulaw_decode(0x0F))
            .count();
        assert!(
            agent_voice >= 10 * 160,
            "the agent channel holds the browser's decrypted audio ({agent_voice} samples)"
        );
    }

    #[tokio::test]
    async fn after_a_webrtc_agent_is_dropped_the_next_agent_can_be_a_plain_phone() {
        use crate::webrtc_leg::{DtlsIdentity, WebRtcAudio, WebRtcLeg};

        let trunk = phone().await;
        let (session, mut events) = start(leg(&trunk, PCMU, None), None, None);
        let agent_addr = session.agent_addr();
        let identity = DtlsIdentity::generate().expect("identity");
        let webrtc = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            agent_addr,
            &[agent_addr],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        session.command(MediaCommand::AttachWebRtc(Box::new(webrtc)));
        session.command(MediaCommand::DropAgent);
        let desk_phone = phone().await;
        session.command(MediaCommand::UpdateLeg {
            leg: Leg::Agent,
            config: leg(&desk_phone, PCMU, None),
        });
        sync(&session, &mut events).await;
        let packet = rtp(0, 1, 160, &[0x42; 160]);
        desk_phone.send_to(&packet, agent_addr).await.expect("send");
        let (got, _) = recv(&trunk).await;
        assert_eq!(
            got, packet,
            "plain RTP relayed byte for byte, not taken by the old leg"
        );
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.webrtc, None, "no WebRTC leg left at the end");
    }

    #[tokio::test]
    async fn media_timeout_emits_the_event_then_ended() {
        let caller = phone().await;
        let (_session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            None,
            Some(Duration::from_millis(200)),
        );
        assert_eq!(
            wait_for(&mut events, |e| matches!(
                e,
                MediaEvent::MediaTimeout { .. }
            ))
            .await,
            MediaEvent::MediaTimeout {
                silent_leg: Leg::Trunk
            },
            "the absent agent leg is not the silent one"
        );
        let report = ended(&mut events).await;
        assert_eq!(report.reason, StopReason::MediaTimeout(Leg::Trunk));
    }

    #[tokio::test]
    async fn packets_queued_when_the_session_stops_are_still_counted() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        sync(&session, &mut events).await;
        // Sent and stopped without yielding: the session task has not run since, so its
        // reactor has not seen the socket become readable when the Stop arrives.
        for seq in 0..5u16 {
            let packet = rtp(0, seq, u32::from(seq) * 160, &[0xff; 160]);
            caller
                .try_send_to(&packet, session.trunk_addr())
                .expect("loopback send");
        }
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.reason, StopReason::Stopped);
        assert_eq!(report.trunk.rtp.packets, 5, "{report:?}");
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_the_session() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        drop(session);
        assert_eq!(ended(&mut events).await.reason, StopReason::Stopped);
    }

    /// Sends `frames` packets from each side alternately, each waited for on the far side.
    async fn talk(
        session: &MediaSession,
        caller: &UdpSocket,
        agent: &UdpSocket,
        frames: u16,
    ) -> Vec<u8> {
        let mut caller_audio = Vec::new();
        for seq in 0..frames {
            let caller_payload: Vec<u8> = (0..160u16)
                .map(|i| (i as u8).wrapping_mul(seq as u8 | 1))
                .collect();
            caller_audio.extend_from_slice(&caller_payload);
            let packet = rtp(0, seq, u32::from(seq) * 160, &caller_payload);
            caller
                .send_to(&packet, session.trunk_addr())
                .await
                .expect("send");
            assert_eq!(recv(agent).await.0, packet);
            let packet = rtp(0, seq, u32::from(seq) * 160, &[0x0F; 160]);
            agent
                .send_to(&packet, session.agent_addr())
                .await
                .expect("send");
            assert_eq!(recv(caller).await.0, packet);
        }
        caller_audio
    }

    #[tokio::test]
    async fn records_both_directions_into_a_stereo_wav() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let metrics = Arc::new(RecorderMetrics::default());
        let pool = RecorderPool::new(1, Arc::clone(&metrics)).expect("recorder pool");
        let caller = phone().await;
        let agent = phone().await;
        let (session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            Some(leg(&agent, PCMU, Some(101))),
            None,
        );
        session.command(MediaCommand::Record(pool.start(&path).expect("start")));
        let caller_audio = talk(&session, &caller, &agent, 50).await;
        session.stop();
        let report = ended(&mut events).await;
        match report.recording {
            Some(RecordingOutcome::Complete {
                path: Some(written),
                frames,
                dropped_frames: 0,
                duration,
            }) => {
                assert_eq!(written, path);
                assert!(frames.abs_diff(50) <= 1, "{frames} frames");
                assert_eq!(duration, Duration::from_millis(frames * 20));
            }
            other => panic!("expected a complete recording, got {other:?}"),
        }
        assert!(!dir.path().join("call.wav.part").exists(), ".part renamed");
        let reader = hound::WavReader::open(&path).expect("valid WAV");
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert!(u64::from(reader.duration()).abs_diff(50 * 160) <= 160);
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("readable");
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        let expected_left: Vec<i16> = caller_audio.iter().map(|&b| ulaw_decode(b)).collect();
        assert_eq!(left, expected_left, "left = the caller, decoded, in order");
        assert!(
            right.iter().all(|&s| s == ulaw_decode(0x0F)),
            "right = the agent"
        );
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_failing_recording_does_not_stop_the_relay() {
        let metrics = Arc::new(RecorderMetrics::default());
        let pool = RecorderPool::new(1, Arc::clone(&metrics)).expect("recorder pool");
        let caller = phone().await;
        let agent = phone().await;
        let (session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            Some(leg(&agent, PCMU, Some(101))),
            None,
        );
        // A folder that cannot be made, not even by root: under a regular file.
        let blocker = tempfile::Builder::new()
            .prefix("nonexistent")
            .tempfile()
            .expect("temp file");
        let recording = pool
            .start(&blocker.path().join("dir").join("call.wav"))
            .expect("creation happens on the writer thread");
        session.command(MediaCommand::Record(recording));
        talk(&session, &caller, &agent, 20).await;
        session.stop();
        let report = ended(&mut events).await;
        assert!(
            matches!(&report.recording, Some(RecordingOutcome::Failed { reason, .. }) if reason.contains("nonexistent")),
            "{:?}",
            report.recording
        );
        assert_eq!(report.trunk.forwarded, 20);
        assert_eq!(report.agent.forwarded, 20);
        assert_eq!(metrics.errors.load(Ordering::Relaxed), 1);
    }

    /// One RTP packet as a test phone received it.
    #[derive(Debug, Clone)]
    struct Received {
        payload_type: u8,
        marker: bool,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: Vec<u8>,
    }

    impl Received {
        fn parse(bytes: &[u8]) -> Received {
            let rtp = RtpReader::new(bytes).expect("valid RTP");
            Received {
                payload_type: rtp.payload_type(),
                marker: rtp.mark(),
                sequence: u16::from(rtp.sequence_number()),
                timestamp: rtp.timestamp(),
                ssrc: rtp.ssrc(),
                payload: rtp.payload().to_vec(),
            }
        }

        fn event(&self) -> TelephoneEvent {
            TelephoneEvent::decode(&self.payload).expect("a telephone-event payload")
        }
    }

    /// Receives on `phone` (everything must come from `from`) until `events` telephone-events
    /// (payload type `event_pt`) have sent their 3 end packets each; returns every packet.
    async fn receive_until_events_end(
        phone: &UdpSocket,
        from: SocketAddr,
        event_pt: u8,
        events: usize,
    ) -> Vec<Received> {
        let mut packets = Vec::new();
        let mut ends = 0;
        while ends < events * 3 {
            let (bytes, source) = recv(phone).await;
            assert_eq!(source, from, "sent from the leg's own port");
            let packet = Received::parse(&bytes);
            if packet.payload_type == event_pt && packet.event().end {
                ends += 1;
            }
            packets.push(packet);
        }
        packets
    }

    /// The key presses a receiver decodes from `packets` (the telephone-event ones).
    fn decode_presses(packets: &[Received], event_pt: u8) -> Vec<(char, u32)> {
        let mut receiver = TelephoneEventReceiver::new();
        let mut presses = Vec::new();
        for packet in packets.iter().filter(|p| p.payload_type == event_pt) {
            if let Some(press) = receiver
                .on_packet(packet.timestamp, &packet.payload)
                .expect("valid payload")
            {
                presses.push((press.digit.as_char(), press.duration_ms));
            }
        }
        presses.extend(receiver.flush().map(|p| (p.digit.as_char(), p.duration_ms)));
        presses
    }

    fn assert_consecutive(packets: &[Received]) {
        assert!(
            packets
                .windows(2)
                .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1)),
            "one gap-free sequence: {:?}",
            packets.iter().map(|p| p.sequence).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn send_dtmf_reaches_the_bridged_trunk_as_one_rfc4733_event() {
        let caller = phone().await;
        let agent = phone().await;
        // Different telephone-event payload types: the trunk's own must be used.
        let (session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            Some(leg(&agent, PCMU, Some(96))),
            None,
        );
        session.command(MediaCommand::SendDtmf {
            leg: Leg::Trunk,
            digit: DtmfDigit::from_char('5').expect("key"),
            duration_ms: 100,
        });
        let packets = receive_until_events_end(&caller, session.trunk_addr(), 101, 1).await;
        assert!(packets.iter().all(|p| p.payload_type == 101));
        let payloads: Vec<TelephoneEvent> = packets.iter().map(Received::event).collect();
        assert_eq!(
            payloads.iter().map(|e| e.duration).collect::<Vec<_>>(),
            [160, 320, 480, 640, 800, 800, 800],
            "20 ms steps while held, then the 100 ms total"
        );
        assert_eq!(
            payloads.iter().map(|e| e.end).collect::<Vec<_>>(),
            [false, false, false, false, true, true, true]
        );
        assert!(payloads.iter().all(|e| e.event == 5 && e.volume == 10));
        let last_three = &packets[packets.len() - 3..];
        assert!(
            last_three
                .iter()
                .all(|p| p.payload == last_three[0].payload),
            "the end packet, three times"
        );
        assert_eq!(
            packets.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false, false, false, false, false],
            "marker on the first packet only"
        );
        assert!(
            packets.iter().all(|p| p.timestamp == packets[0].timestamp),
            "one RTP timestamp for the whole event"
        );
        assert!(packets.iter().all(|p| p.ssrc == packets[0].ssrc));
        assert_consecutive(&packets);
        assert_eq!(
            decode_presses(&packets, 101),
            [('5', 100)],
            "exactly one press"
        );
        assert_eq!(queued(&agent), 0, "nothing towards the agent");

        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(
            report.dtmf_packets,
            packets.len() as u64,
            "nothing sent after the end packets"
        );
        assert_eq!(report.played_packets, 0);
    }

    #[tokio::test]
    async fn key_presses_in_a_row_are_sent_one_after_the_other() {
        let caller = phone().await;
        let agent = phone().await;
        let (session, mut events) = start(
            leg(&caller, PCMU, Some(101)),
            Some(leg(&agent, PCMU, Some(101))),
            None,
        );
        for key in ['1', '2'] {
            session.command(MediaCommand::SendDtmf {
                leg: Leg::Trunk,
                digit: DtmfDigit::from_char(key).expect("key"),
                // Below the 40 ms minimum: sent as 40 ms.
                duration_ms: 10,
            });
        }
        let packets = receive_until_events_end(&caller, session.trunk_addr(), 101, 2).await;
        let (first, second) = packets.split_at(4);
        assert_eq!(packets.len(), 8, "per 40 ms press: one update, three ends");
        for (event, code) in [(first, 1), (second, 2)] {
            assert!(event.iter().all(|p| p.event().event == code));
            assert!(event.iter().all(|p| p.timestamp == event[0].timestamp));
            assert_eq!(
                event.iter().map(|p| p.marker).collect::<Vec<_>>(),
                [true, false, false, false]
            );
            assert_eq!(event[3].event().duration, 320, "clamped to 40 ms");
        }
        // 4 packet times of the first event and 2 quiet ones before the second starts.
        let apart = second[0].timestamp.wrapping_sub(first[0].timestamp);
        assert!(
            (6 * 160..u32::MAX / 2).contains(&apart),
            "the second event starts later, after 40 ms quiet: {apart}"
        );
        assert_consecutive(&packets);
        assert_eq!(decode_presses(&packets, 101), [('1', 40), ('2', 40)]);
        session.stop();
        assert_eq!(ended(&mut events).await.dtmf_packets, 8);
    }

    #[tokio::test]
    async fn a_key_press_interrupts_playback_in_the_same_stream() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, Some(101)), None, None);
        session.command(MediaCommand::Play {
            leg: Leg::Trunk,
            clips: vec![clip(vec![700; 160])],
            looping: true,
            token: 5,
        });
        let mut packets = Vec::new();
        for _ in 0..2 {
            packets.push(Received::parse(&recv(&caller).await.0));
        }
        session.command(MediaCommand::SendDtmf {
            leg: Leg::Trunk,
            digit: DtmfDigit::from_char('#').expect("key"),
            duration_ms: 60,
        });
        packets.extend(receive_until_events_end(&caller, session.trunk_addr(), 101, 1).await);
        packets.push(Received::parse(&recv(&caller).await.0));
        assert_consecutive(&packets);
        assert!(
            packets.iter().all(|p| p.ssrc == packets[0].ssrc),
            "one stream"
        );
        let first_event = packets
            .iter()
            .position(|p| p.payload_type == 101)
            .expect("event sent");
        let event = &packets[first_event..packets.len() - 1];
        assert_eq!(
            event.iter().map(|p| p.payload_type).collect::<Vec<_>>(),
            [101; 5],
            "2 updates and 3 ends, no audio between them"
        );
        let before = &packets[first_event - 1];
        let after = &packets[packets.len() - 1];
        assert_eq!(before.payload_type, 0);
        assert_eq!(
            after.payload_type, 0,
            "the music comes back after the event"
        );
        assert!(
            (160..u32::MAX / 2).contains(&event[0].timestamp.wrapping_sub(before.timestamp)),
            "the event starts after the last audio frame"
        );
        assert!(
            (5 * 160..u32::MAX / 2).contains(&after.timestamp.wrapping_sub(event[0].timestamp)),
            "the audio resumes after the event's 5 packet times"
        );
        assert!(after.marker, "the resumed audio is a new talkspurt");
        assert_eq!(decode_presses(&packets, 101), [('#', 60)]);
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!(report.dtmf_packets, 5);
    }

    #[tokio::test]
    async fn send_dtmf_to_a_leg_without_telephone_event_sends_nothing() {
        let caller = phone().await;
        let (session, mut events) = start(leg(&caller, PCMU, None), None, None);
        session.command(MediaCommand::SendDtmf {
            leg: Leg::Trunk,
            digit: DtmfDigit::from_char('9').expect("key"),
            duration_ms: 100,
        });
        // The agent leg is absent: ignored too.
        session.command(MediaCommand::SendDtmf {
            leg: Leg::Agent,
            digit: DtmfDigit::from_char('9').expect("key"),
            duration_ms: 100,
        });
        sync(&session, &mut events).await;
        // A negative check has nothing to wait for: once the commands are applied (sync), a
        // packet would be sent within one 20 ms tick, so 300 ms without one is conclusive
        // enough, and the report's counter below is the exact check.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), recv(&caller))
                .await
                .is_err(),
            "no packet for a leg without telephone-event"
        );
        session.stop();
        let report = ended(&mut events).await;
        assert_eq!((report.dtmf_packets, report.played_packets), (0, 0));
    }

    #[test]
    fn an_event_packet_needs_a_valid_payload_type() {
        let packet = telephone_event_packets(DtmfDigit::from_char('1').expect("key"), 40, 10)[0];
        let header = |payload_type| EventHeader {
            payload_type,
            ssrc: 7,
            sequence: 9,
            timestamp: 11,
        };
        let mut out = Vec::new();
        assert!(write_event_packet(&mut out, header(101), packet));
        let rtp = RtpReader::new(&out).expect("valid RTP");
        assert_eq!(
            (rtp.payload_type(), rtp.ssrc(), rtp.timestamp(), rtp.mark()),
            (101, 7, 11, true)
        );
        assert_eq!(u16::from(rtp.sequence_number()), 9);
        assert_eq!(rtp.payload(), packet.event.encode());
        assert!(
            !write_event_packet(&mut out, header(200), packet),
            "PT > 127"
        );
    }
}
