//! The sans-IO heart of one anchored call's relay: for each datagram it decides whether and
//! where to forward it (validation, symmetric-RTP latching), keeps the per-leg statistics,
//! picks RFC 4733 key presses out of the stream and tracks the media timeout. The tokio
//! loop in [`crate::session`] only moves bytes between sockets and this struct.
//!
//! The agent leg may be absent (the call is in the IVR or queued): then the trunk's packets
//! are still validated, latched and inspected, but consumed by Switchboard instead of relayed,
//! and nothing arriving on the agent side is accepted until [`RelayCore::update_leg`] sets it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use crate::codec::{Codec, CLOCK_RATE};
use crate::dtmf::{DtmfPress, TelephoneEventReceiver};
use crate::latch::{LatchDecision, RemoteLatch};
use crate::media_timeout::{Leg, MediaTimeout};
use crate::rtp_stats::{RtpStats, StatsSnapshot};
use crate::sdp::Direction;

/// Most events kept for the I/O layer before the oldest are dropped, so a flood cannot grow memory.
const MAX_QUEUED_EVENTS: usize = 64;

/// Per-leg settings from the negotiated SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegConfig {
    /// RTP address from the leg's SDP (latching may replace it).
    pub remote_rtp: Option<SocketAddr>,
    /// RTCP address from the leg's SDP.
    pub remote_rtcp: Option<SocketAddr>,
    /// The telephone-event payload type this leg sends, to pick key presses out of its RTP.
    pub telephone_event: Option<u8>,
    /// The negotiated audio codec and its payload type on this leg: needed to decode the
    /// leg's audio (recording, in-band DTMF) and to encode prompts played to it.
    pub codec: Option<(Codec, u8)>,
    /// The leg's SDES keys when it speaks SRTP: the session unprotects what it reads and
    /// protects what it sends, so everything inside the session sees plain RTP.
    pub srtp: Option<crate::srtp::SrtpPolicy>,
    /// The leg's SDP agreed on `a=rtcp-mux` (RFC 5761): its RTCP comes and goes on the RTP
    /// port, to and from its RTP address.
    pub rtcp_mux: bool,
}

impl LegConfig {
    /// Where this leg's RTCP goes according to its SDP: the RTP address when multiplexed.
    fn signalled_rtcp(&self) -> Option<SocketAddr> {
        if self.rtcp_mux {
            self.remote_rtp
        } else {
            self.remote_rtcp
        }
    }
}

/// What became of one datagram handed to [`RelayCore::handle_rtp`] / [`RelayCore::handle_rtcp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Valid and from the leg's peer: send it on to this address on the other leg.
    Forward(SocketAddr),
    /// Valid and from the leg's peer, but not relayed: the other leg is absent (Switchboard
    /// itself terminates the media) or its address is not known yet.
    Accepted,
    /// Invalid, foreign or from an absent leg: ignore it entirely.
    Dropped,
}

impl Disposition {
    /// Where to send the datagram, if anywhere.
    pub fn destination(self) -> Option<SocketAddr> {
        match self {
            Disposition::Forward(destination) => Some(destination),
            Disposition::Accepted | Disposition::Dropped => None,
        }
    }

    /// True when the datagram is genuine media of the leg (may be recorded or inspected).
    pub fn accepted(self) -> bool {
        !matches!(self, Disposition::Dropped)
    }
}

/// What the relay reports to call control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// A leg's real RTP source was learned (or changed after silence).
    Latched {
        /// Which leg.
        leg: Leg,
        /// Its source address.
        source: SocketAddr,
    },
    /// A key press arrived as RFC 4733 telephone-event on a leg.
    Dtmf {
        /// Which leg.
        leg: Leg,
        /// The press.
        press: DtmfPress,
    },
    /// A leg has sent no RTP for the configured time: hang up both legs, reason `media-timeout`.
    MediaTimeout {
        /// The silent leg.
        silent_leg: Leg,
    },
    /// An extra leg has sent no RTP for the configured time. Only that leg is affected (call
    /// control removes it); it is no longer watched until it is updated again.
    LegSilent {
        /// The silent extra leg.
        leg: Leg,
    },
}

/// Counters for one leg (packets *from* that leg unless named otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegReport {
    /// Receive statistics of the leg's RTP.
    pub rtp: StatsSnapshot,
    /// RTP packets from this leg passed on to the other leg.
    pub forwarded: u64,
    /// RTCP packets from this leg passed on.
    pub rtcp_forwarded: u64,
    /// Datagrams that were not valid RTP/RTCP.
    pub dropped_invalid: u64,
    /// Datagrams from a source other than the latched peer.
    pub dropped_foreign: u64,
    /// Datagrams with nowhere to go because the other leg's address is unknown yet.
    pub dropped_no_destination: u64,
    /// Valid RTP/RTCP consumed by Switchboard itself: the other leg was absent (IVR, queue),
    /// or this is an extra leg outside a mix, or RTCP while mixing.
    pub terminated: u64,
    /// RTP from this leg taken by the mixer (Mix routing) instead of being relayed.
    pub mixed: u64,
    /// RTP not relayed because Switchboard was playing to the other leg (playback wins); counted by the I/O layer.
    pub suppressed: u64,
    /// RTP not relayed because the other leg's SDP says it receives nothing (it holds the call).
    pub withheld: u64,
    /// Datagrams the socket could not take (send buffer full); counted by the I/O layer.
    pub dropped_send: u64,
    /// The latched RTP source, if any.
    pub latched: Option<SocketAddr>,
}

#[derive(Debug)]
struct LegState {
    rtp_latch: RemoteLatch,
    rtcp_latch: RemoteLatch,
    stats: RtpStats,
    dtmf: TelephoneEventReceiver,
    telephone_event: Option<u8>,
    /// False for the agent leg until it is set (bridged): nothing is accepted from it or sent to it.
    present: bool,
    /// The direction the leg's SDP declared (its own point of view): when it does not
    /// receive, Switchboard sends it no RTP (RTCP goes on, RFC 3264 §5.1); when it is not
    /// `sendrecv` (hold), its silence is legitimate.
    direction: Direction,
    /// RTCP shares the RTP port (RFC 5761).
    rtcp_mux: bool,
    report: LegReport,
}

/// Whether a datagram read from a multiplexing leg's RTP port is RTCP (RFC 5761 §4): version
/// 2 and a second byte in 192-223, where RTCP packet types lie and RTP payload types
/// (marker bit included) must not.
pub fn is_multiplexed_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram, [first, second, ..] if first >> 6 == 2 && (192..=223).contains(second))
}

/// Whether a leg that declared `direction` wants RTP.
fn receives(direction: Direction) -> bool {
    matches!(direction, Direction::SendRecv | Direction::RecvOnly)
}

/// Whether a leg that declared `direction` must keep sending RTP: a leg holding the call
/// (`sendonly`, often silent despite its word) or not sending at all may be quiet.
fn must_send(direction: Direction) -> bool {
    direction == Direction::SendRecv
}

impl LegState {
    fn new(config: LegConfig, relatch_after: Duration, present: bool) -> LegState {
        LegState {
            present,
            direction: Direction::SendRecv,
            rtp_latch: RemoteLatch::new(config.remote_rtp, relatch_after),
            rtcp_latch: RemoteLatch::new(config.signalled_rtcp(), relatch_after),
            rtcp_mux: config.rtcp_mux,
            stats: RtpStats::new(CLOCK_RATE),
            dtmf: TelephoneEventReceiver::new(),
            telephone_event: config.telephone_event,
            report: LegReport::default(),
        }
    }
}

/// Relay state for one call (trunk, agent and any extra legs).
#[derive(Debug)]
pub struct RelayCore {
    /// Per [`Leg::index`]; extra legs are added by [`RelayCore::add_leg`].
    legs: Vec<LegState>,
    /// Mix routing: nothing is relayed byte for byte, every leg's RTP goes to the mixer.
    mixing: bool,
    timeout: Option<MediaTimeout>,
    timed_out: Option<Leg>,
    events: VecDeque<RelayEvent>,
    events_dropped: u64,
    relatch_after: Duration,
}

impl RelayCore {
    /// A relay for a call whose legs were negotiated as `trunk` and `agent` (`None` until an
    /// agent answers). `media_timeout` `None` disables the rule; `relatch_after` is how long a
    /// latched peer must be silent before another source may take its place.
    pub fn new(
        now: Instant,
        trunk: LegConfig,
        agent: Option<LegConfig>,
        media_timeout: Option<Duration>,
        relatch_after: Duration,
    ) -> RelayCore {
        let mut timeout = media_timeout.map(|limit| MediaTimeout::new(now, limit));
        if let (Some(timeout), None) = (timeout.as_mut(), agent) {
            // An absent agent sends nothing, legitimately.
            timeout.set_watched(now, Leg::Agent, false);
        }
        RelayCore {
            legs: vec![
                LegState::new(trunk, relatch_after, true),
                LegState::new(agent.unwrap_or_default(), relatch_after, agent.is_some()),
            ],
            mixing: false,
            timeout,
            timed_out: None,
            events: VecDeque::new(),
            events_dropped: 0,
            relatch_after,
        }
    }

    /// True once the leg is set (always for the trunk; for the agent once bridged).
    pub fn is_present(&self, leg: Leg) -> bool {
        self.legs
            .get(leg.index())
            .is_some_and(|state| state.present)
    }

    /// Switches between relaying trunk⇄agent byte for byte (`false`, the default) and mixing
    /// (`true`): then every valid RTP packet is accepted for the mixer and nothing is relayed.
    pub fn set_mixing(&mut self, mixing: bool) {
        self.mixing = mixing;
    }

    /// True while Mix routing is on.
    pub fn is_mixing(&self) -> bool {
        self.mixing
    }

    /// Adds (or re-adds) an extra leg: from now on its media is accepted, latched, counted
    /// and watched by the media timeout like the trunk's. Ignored for trunk and agent.
    pub fn add_leg(&mut self, now: Instant, leg: Leg, config: LegConfig) {
        if leg.is_main() {
            return;
        }
        let index = leg.index();
        while self.legs.len() <= index {
            self.legs.push(LegState::new(
                LegConfig::default(),
                self.relatch_after,
                false,
            ));
        }
        self.legs[index] = LegState::new(config, self.relatch_after, true);
        self.refresh_watch(now, leg);
    }

    /// Removes an extra leg: nothing is accepted from it any more and its silence is not
    /// watched. Its final counters are returned.
    pub fn remove_leg(&mut self, now: Instant, leg: Leg) -> LegReport {
        let report = self.report(leg);
        if let (false, Some(state)) = (leg.is_main(), self.legs.get_mut(leg.index())) {
            *state = LegState::new(LegConfig::default(), self.relatch_after, false);
            self.refresh_watch(now, leg);
        }
        report
    }

    /// Where RTP for `leg` goes now (latched source, else its SDP address); `None` while absent
    /// or while its SDP says it receives nothing.
    pub fn destination(&self, leg: Leg) -> Option<SocketAddr> {
        let state = self.legs.get(leg.index())?;
        (state.present && receives(state.direction))
            .then(|| state.rtp_latch.destination())
            .flatten()
    }

    /// Whether `leg` multiplexes RTCP on its RTP port (RFC 5761): the I/O layer then hands
    /// RTCP read from that port to [`RelayCore::handle_rtcp`] and sends the leg's RTCP from it.
    pub fn rtcp_mux(&self, leg: Leg) -> bool {
        self.legs
            .get(leg.index())
            .is_some_and(|state| state.rtcp_mux)
    }

    /// An RTP datagram arrived from `leg` at `source`: decides whether and where it goes on.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        leg: Leg,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Disposition {
        let Some(state) = self.legs.get_mut(leg.index()) else {
            return Disposition::Dropped;
        };
        if !state.present {
            // Nobody was told this port yet: whatever arrives is a stray or an injection attempt.
            state.report.dropped_foreign += 1;
            return Disposition::Dropped;
        }
        let Ok(packet) = RtpReader::new(datagram) else {
            state.report.dropped_invalid += 1;
            return Disposition::Dropped;
        };
        // RTCP on the RTP port of a leg that did not agree on rtcp-mux (RFC 5761; a leg that
        // did has it split off before this): refuse it rather than let it pollute sequence
        // statistics.
        if (72..=76).contains(&packet.payload_type()) {
            state.report.dropped_invalid += 1;
            return Disposition::Dropped;
        }
        match state.rtp_latch.on_packet(now, source) {
            LatchDecision::Accept => {}
            LatchDecision::Latched(source) => {
                state.report.latched = Some(source);
                self.push_event(RelayEvent::Latched { leg, source });
            }
            LatchDecision::Reject => {
                state.report.dropped_foreign += 1;
                return Disposition::Dropped;
            }
        }
        let state = &mut self.legs[leg.index()];
        state.stats.record(
            now,
            packet.ssrc(),
            u16::from(packet.sequence_number()),
            packet.timestamp(),
            datagram.len(),
        );
        if state.telephone_event == Some(packet.payload_type()) {
            if let Ok(Some(press)) = state.dtmf.on_packet(packet.timestamp(), packet.payload()) {
                self.push_event(RelayEvent::Dtmf { leg, press });
            }
        }
        if let Some(timeout) = self.timeout.as_mut() {
            timeout.on_rtp(now, leg);
        }
        if self.mixing || !leg.is_main() {
            let report = &mut self.legs[leg.index()].report;
            if self.mixing {
                report.mixed += 1;
            } else {
                report.terminated += 1;
            }
            return Disposition::Accepted;
        }
        let other = &self.legs[leg.other().index()];
        let (present, destination) = (other.present, other.rtp_latch.destination());
        let other_receives = receives(other.direction);
        let report = &mut self.legs[leg.index()].report;
        if present && !other_receives {
            report.withheld += 1;
            return Disposition::Accepted;
        }
        forward_decision(report, present, destination, false)
    }

    /// An RTCP datagram arrived from `leg` at `source`: decides whether and where it goes on.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        leg: Leg,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Disposition {
        let Some(state) = self.legs.get_mut(leg.index()) else {
            return Disposition::Dropped;
        };
        if !state.present {
            state.report.dropped_foreign += 1;
            return Disposition::Dropped;
        }
        // RTCP: version 2, a known packet type (SR..APP, RFC 3550 §12.1; 205/206 feedback), 8+ bytes.
        let valid = matches!(datagram, [first, kind, _, _, _, _, _, _, ..]
            if first >> 6 == 2 && (200..=206).contains(kind));
        if !valid {
            state.report.dropped_invalid += 1;
            return Disposition::Dropped;
        }
        if state.rtcp_latch.on_packet(now, source) == LatchDecision::Reject {
            state.report.dropped_foreign += 1;
            return Disposition::Dropped;
        }
        if self.mixing || !leg.is_main() {
            // The mix is Switchboard's own stream: reports about it would confuse the far end.
            state.report.terminated += 1;
            return Disposition::Accepted;
        }
        let other = &self.legs[leg.other().index()];
        let (present, destination) = (other.present, other.rtcp_latch.destination());
        let report = &mut self.legs[leg.index()].report;
        forward_decision(report, present, destination, true)
    }

    /// The I/O layer could not send a datagram that came from `leg`.
    pub fn note_send_failure(&mut self, leg: Leg) {
        let Some(state) = self.legs.get_mut(leg.index()) else {
            return;
        };
        let report = &mut state.report;
        report.dropped_send += 1;
        report.forwarded = report.forwarded.saturating_sub(1);
    }

    /// A packet relayed from `leg` was deliberately not sent (Switchboard plays to the other leg).
    pub fn note_suppressed(&mut self, leg: Leg) {
        let Some(state) = self.legs.get_mut(leg.index()) else {
            return;
        };
        let report = &mut state.report;
        report.suppressed += 1;
        report.forwarded = report.forwarded.saturating_sub(1);
    }

    /// Sets a leg's remote parameters: after a re-INVITE, or for an absent agent leg, the
    /// answer that bridges the call (from then on its media is accepted and relayed).
    pub fn update_leg(&mut self, now: Instant, leg: Leg, config: LegConfig) {
        let Some(state) = self.legs.get_mut(leg.index()) else {
            return; // an extra leg must be added first (it needs its sockets)
        };
        state.rtp_latch.set_signalled(config.remote_rtp);
        state.rtcp_latch.set_signalled(config.signalled_rtcp());
        state.rtcp_mux = config.rtcp_mux;
        state.telephone_event = config.telephone_event;
        state.present = true;
        self.refresh_watch(now, leg);
    }

    /// The agent leg went away (the call was transferred): nothing is accepted from it or
    /// relayed to it until [`RelayCore::update_leg`] sets it again, and its statistics start
    /// over for the next agent.
    pub fn remove_agent_leg(&mut self, now: Instant) {
        self.legs[Leg::Agent.index()] =
            LegState::new(LegConfig::default(), self.relatch_after, false);
        self.refresh_watch(now, Leg::Agent);
    }

    /// The leg's SDP declared `direction` (from its own point of view): a leg that does not
    /// receive gets no RTP from Switchboard, and the silence of a leg that is not `sendrecv`
    /// (hold) does not count towards the media timeout.
    pub fn set_direction(&mut self, now: Instant, leg: Leg, direction: Direction) {
        if let Some(state) = self.legs.get_mut(leg.index()) {
            state.direction = direction;
            self.refresh_watch(now, leg);
        }
    }

    fn refresh_watch(&mut self, now: Instant, leg: Leg) {
        let Some(state) = self.legs.get(leg.index()) else {
            return;
        };
        let watched = state.present && must_send(state.direction);
        if let Some(timeout) = self.timeout.as_mut() {
            timeout.set_watched(now, leg, watched);
        }
    }

    /// When [`RelayCore::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.timed_out.is_some() {
            return None;
        }
        self.timeout.as_ref().and_then(MediaTimeout::deadline)
    }

    /// The timer fired: checks the media-timeout rule and reports lost key-press ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timed_out.is_some() {
            return;
        }
        while let Some(silent_leg) = self.timeout.as_ref().and_then(|t| t.check(now)) {
            if silent_leg.is_main() {
                self.timed_out = Some(silent_leg);
                self.push_event(RelayEvent::MediaTimeout { silent_leg });
                return;
            }
            // An extra leg's silence ends only that leg: report it once, stop watching it.
            if let Some(timeout) = self.timeout.as_mut() {
                timeout.set_watched(now, silent_leg, false);
            }
            self.push_event(RelayEvent::LegSilent { leg: silent_leg });
        }
    }

    /// The leg that timed out, once the rule fired (the call must end).
    pub fn timed_out(&self) -> Option<Leg> {
        self.timed_out
    }

    /// Next event for call control.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// Events lost because the I/O layer did not collect them before the queue filled.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Counters for a leg.
    pub fn report(&self, leg: Leg) -> LegReport {
        let Some(state) = self.legs.get(leg.index()) else {
            return LegReport::default();
        };
        LegReport {
            rtp: state.stats.snapshot(),
            ..state.report
        }
    }

    fn push_event(&mut self, event: RelayEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}

/// Counts and returns the fate of a valid packet given the other leg's state.
fn forward_decision(
    report: &mut LegReport,
    other_present: bool,
    destination: Option<SocketAddr>,
    rtcp: bool,
) -> Disposition {
    match (other_present, destination) {
        (false, _) => {
            report.terminated += 1;
            Disposition::Accepted
        }
        (true, None) => {
            report.dropped_no_destination += 1;
            Disposition::Accepted
        }
        (true, Some(destination)) => {
            if rtcp {
                report.rtcp_forwarded += 1;
            } else {
                report.forwarded += 1;
            }
            Disposition::Forward(destination)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{telephone_event_packets, DtmfDigit};
    use rtp_rs::{RtpPacketBuilder, Seq};

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(0x1234)
            .sequence(Seq::from(seq))
            .timestamp(ts)
            .payload(payload)
            .build()
            .expect("valid packet")
    }

    fn core(now: Instant) -> RelayCore {
        RelayCore::new(
            now,
            LegConfig {
                remote_rtp: Some(addr("198.51.100.7:40000")),
                remote_rtcp: Some(addr("198.51.100.7:40001")),
                telephone_event: Some(101),
                codec: None,
                srtp: None,
                rtcp_mux: false,
            },
            Some(LegConfig {
                remote_rtp: Some(addr("192.168.1.20:16384")),
                remote_rtcp: None,
                telephone_event: Some(101),
                codec: None,
                srtp: None,
                rtcp_mux: false,
            }),
            Some(Duration::from_secs(30)),
            Duration::from_secs(2),
        )
    }

    #[test]
    fn forwards_to_the_other_leg_and_latches() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        // Agent is behind NAT: its packets come from the public mapping, not the SDP address.
        let nat = addr("203.0.113.50:61000");
        assert_eq!(
            relay
                .handle_rtp(t0, Leg::Agent, nat, &rtp(0, 1, 0, &[0xFF; 160]))
                .destination(),
            Some(addr("198.51.100.7:40000"))
        );
        assert_eq!(
            relay.poll_event(),
            Some(RelayEvent::Latched {
                leg: Leg::Agent,
                source: nat
            })
        );
        assert_eq!(
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    addr("198.51.100.7:40000"),
                    &rtp(0, 9, 0, &[0xFF; 160])
                )
                .destination(),
            Some(nat),
            "trunk audio goes to where the agent really is"
        );
        assert_eq!(relay.report(Leg::Agent).forwarded, 1);
        assert_eq!(relay.report(Leg::Agent).latched, Some(nat));
    }

    #[test]
    fn garbage_and_foreign_packets_are_dropped_and_counted() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let phone = addr("198.51.100.7:40000");
        assert_eq!(
            relay
                .handle_rtp(t0, Leg::Trunk, phone, b"hello")
                .destination(),
            None
        );
        assert_eq!(
            relay
                .handle_rtp(t0, Leg::Trunk, phone, &[0u8; 12])
                .destination(),
            None,
            "version 0"
        );
        relay
            .handle_rtp(t0, Leg::Trunk, phone, &rtp(0, 1, 0, &[0xFF; 160]))
            .destination();
        assert_eq!(
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    addr("6.6.6.6:666"),
                    &rtp(0, 2, 160, &[0xFF; 160])
                )
                .destination(),
            None
        );
        let report = relay.report(Leg::Trunk);
        assert_eq!(
            (
                report.dropped_invalid,
                report.dropped_foreign,
                report.forwarded
            ),
            (2, 1, 1)
        );
        assert_eq!(
            report.rtp.packets, 1,
            "rejected packets are not in the stream statistics"
        );
    }

    #[test]
    fn unknown_destination_is_counted_not_sent() {
        let t0 = Instant::now();
        let mut relay = RelayCore::new(
            t0,
            LegConfig::default(),
            Some(LegConfig::default()),
            None,
            Duration::from_secs(2),
        );
        assert_eq!(
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    addr("10.0.0.1:5000"),
                    &rtp(8, 1, 0, &[0xD5; 160])
                )
                .destination(),
            None
        );
        assert_eq!(relay.report(Leg::Trunk).dropped_no_destination, 1);
        // Once the agent has sent something, we know where it is.
        relay
            .handle_rtp(
                t0,
                Leg::Agent,
                addr("10.0.0.2:6000"),
                &rtp(8, 1, 0, &[0xD5; 160]),
            )
            .destination();
        assert_eq!(
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    addr("10.0.0.1:5000"),
                    &rtp(8, 2, 160, &[0xD5; 160])
                )
                .destination(),
            Some(addr("10.0.0.2:6000"))
        );
    }

    #[test]
    fn rtcp_is_checked_and_forwarded() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let receiver_report = [
            0x81, 201, 0, 7, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            relay
                .handle_rtcp(t0, Leg::Agent, addr("203.0.113.50:61001"), &receiver_report)
                .destination(),
            Some(addr("198.51.100.7:40001"))
        );
        assert_eq!(
            relay
                .handle_rtcp(
                    t0,
                    Leg::Agent,
                    addr("203.0.113.50:61001"),
                    &[0x80, 0, 0, 0, 0, 0, 0, 0]
                )
                .destination(),
            None
        );
        assert_eq!(relay.report(Leg::Agent).rtcp_forwarded, 1);
        assert_eq!(relay.report(Leg::Agent).dropped_invalid, 1);
    }

    #[test]
    fn rtcp_toward_an_rtcp_mux_leg_goes_to_its_rtp_address() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let trunk_rtp = addr("198.51.100.7:40000");
        relay.update_leg(
            t0,
            Leg::Trunk,
            LegConfig {
                remote_rtp: Some(trunk_rtp),
                remote_rtcp: Some(addr("198.51.100.7:40001")),
                rtcp_mux: true,
                ..LegConfig::default()
            },
        );
        assert!(relay.rtcp_mux(Leg::Trunk));
        assert!(!relay.rtcp_mux(Leg::Agent));
        let report = [0x80, 201, 0, 1, 0, 0, 0, 9];
        assert_eq!(
            relay
                .handle_rtcp(t0, Leg::Agent, addr("192.168.1.20:16385"), &report)
                .destination(),
            Some(trunk_rtp),
            "the a=rtcp port is ignored once multiplexed"
        );
        // And the trunk's own RTCP is taken from its RTP address.
        assert_eq!(
            relay
                .handle_rtcp(t0, Leg::Trunk, trunk_rtp, &report)
                .destination(),
            Some(addr("192.168.1.20:16385"))
        );
    }

    #[test]
    fn multiplexed_rtcp_is_told_from_rtp_by_its_second_byte() {
        for packet_type in [192u8, 200, 201, 205, 206, 223] {
            assert!(is_multiplexed_rtcp(&[0x80, packet_type, 0, 1]));
        }
        // PCMU, PCMA, telephone-event, with and without the marker bit; RTP version 1; runts.
        for second in [0u8, 8, 101, 0x80, 0x88, 0x80 | 101, 224, 191] {
            assert!(!is_multiplexed_rtcp(&[0x80, second, 0, 1]));
        }
        assert!(!is_multiplexed_rtcp(&[0x40, 200, 0, 1]));
        assert!(!is_multiplexed_rtcp(&[0x80]));
        assert!(!is_multiplexed_rtcp(&[]));
    }

    #[test]
    fn telephone_events_become_one_press() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let phone = addr("198.51.100.7:40000");
        for (i, packet) in telephone_event_packets(DtmfDigit::from_char('9').expect("key"), 120, 10)
            .iter()
            .enumerate()
        {
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    phone,
                    &rtp(101, 100 + i as u16, 8000, &packet.event.encode()),
                )
                .destination();
        }
        let events: Vec<RelayEvent> = std::iter::from_fn(|| relay.poll_event()).collect();
        let presses: Vec<char> = events
            .iter()
            .filter_map(|e| match e {
                RelayEvent::Dtmf {
                    leg: Leg::Trunk,
                    press,
                } => Some(press.digit.as_char()),
                _ => None,
            })
            .collect();
        assert_eq!(presses, vec!['9']);
    }

    #[test]
    fn media_timeout_fires_once_for_the_silent_leg() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let phone = addr("198.51.100.7:40000");
        for i in 0..100u16 {
            let at = t0 + Duration::from_millis(20 * u64::from(i));
            relay
                .handle_rtp(
                    at,
                    Leg::Trunk,
                    phone,
                    &rtp(0, i, u32::from(i) * 160, &[0xFF; 160]),
                )
                .destination();
        }
        while relay.poll_event().is_some() {}
        assert_eq!(
            relay.poll_timeout(),
            Some(t0 + Duration::from_secs(30)),
            "the agent never sent"
        );
        relay.handle_timeout(t0 + Duration::from_secs(29));
        assert_eq!(relay.poll_event(), None);
        relay.handle_timeout(t0 + Duration::from_secs(30));
        assert_eq!(
            relay.poll_event(),
            Some(RelayEvent::MediaTimeout {
                silent_leg: Leg::Agent
            })
        );
        relay.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(relay.poll_event(), None);
        assert_eq!(relay.poll_timeout(), None);
        assert_eq!(relay.timed_out(), Some(Leg::Agent));
    }

    #[test]
    fn a_removed_agent_leg_is_cut_off_until_the_next_one_is_set() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let trunk = addr("198.51.100.7:40000");
        let old_phone = addr("192.168.1.20:16384");
        let packet = rtp(0, 1, 0, &[0xFF; 160]);
        relay.remove_agent_leg(t0);
        assert_eq!(relay.destination(Leg::Agent), None);
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, trunk, &packet),
            Disposition::Accepted
        );
        assert_eq!(
            relay.handle_rtp(t0, Leg::Agent, old_phone, &packet),
            Disposition::Dropped
        );
        let new_phone = addr("192.168.1.30:20000");
        relay.update_leg(
            t0,
            Leg::Agent,
            LegConfig {
                remote_rtp: Some(new_phone),
                ..LegConfig::default()
            },
        );
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, trunk, &packet),
            Disposition::Forward(new_phone)
        );
    }

    #[test]
    fn hold_suspends_the_timeout_for_that_leg() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        relay.set_direction(t0, Leg::Agent, Direction::SendOnly);
        relay.set_direction(t0, Leg::Trunk, Direction::Inactive);
        assert_eq!(relay.poll_timeout(), None);
        // A leg that only receives may be silent too; one back to sendrecv may not.
        relay.set_direction(t0, Leg::Trunk, Direction::RecvOnly);
        assert_eq!(relay.poll_timeout(), None);
        relay.set_direction(t0, Leg::Trunk, Direction::SendRecv);
        assert!(relay.poll_timeout().is_some());
    }

    #[test]
    fn a_leg_that_does_not_receive_gets_no_rtp_but_keeps_rtcp() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let trunk = addr("198.51.100.7:40000");
        let agent = addr("192.168.1.20:16384");
        let packet = rtp(0, 1, 0, &[0xFF; 160]);
        // The trunk holds (a=sendonly): the agent's audio is not sent to it, nothing is played.
        relay.set_direction(t0, Leg::Trunk, Direction::SendOnly);
        assert_eq!(relay.destination(Leg::Trunk), None);
        assert_eq!(
            relay.handle_rtp(t0, Leg::Agent, agent, &packet),
            Disposition::Accepted
        );
        assert_eq!(relay.report(Leg::Agent).withheld, 1);
        assert_eq!(relay.report(Leg::Agent).forwarded, 0);
        // Its own (music) stream still reaches the agent.
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, trunk, &packet),
            Disposition::Forward(agent)
        );
        // RTCP keeps flowing to a held leg.
        let report = [0x80, 200, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            relay.handle_rtcp(t0, Leg::Agent, addr("192.168.1.20:16385"), &report),
            Disposition::Forward(addr("198.51.100.7:40001"))
        );
        // a=recvonly still receives; a=inactive does not.
        relay.set_direction(t0, Leg::Trunk, Direction::RecvOnly);
        assert_eq!(relay.destination(Leg::Trunk), Some(trunk));
        relay.set_direction(t0, Leg::Trunk, Direction::Inactive);
        assert_eq!(relay.destination(Leg::Trunk), None);
        relay.set_direction(t0, Leg::Trunk, Direction::SendRecv);
        assert_eq!(
            relay.handle_rtp(t0, Leg::Agent, agent, &packet),
            Disposition::Forward(trunk)
        );
    }

    #[test]
    fn without_an_agent_the_trunk_is_terminated_until_the_bridge() {
        let t0 = Instant::now();
        let phone = addr("198.51.100.7:40000");
        let stray = addr("203.0.113.9:7000");
        let mut relay = RelayCore::new(
            t0,
            LegConfig {
                remote_rtp: Some(phone),
                ..LegConfig::default()
            },
            None,
            Some(Duration::from_secs(30)),
            Duration::from_secs(2),
        );
        assert_eq!(relay.destination(Leg::Agent), None);
        assert_eq!(relay.destination(Leg::Trunk), Some(phone));
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, phone, &rtp(0, 1, 0, &[0xFF; 160])),
            Disposition::Accepted
        );
        assert_eq!(
            relay.handle_rtp(t0, Leg::Agent, stray, &rtp(0, 1, 0, &[0xFF; 160])),
            Disposition::Dropped,
            "nobody may latch the agent side before it is set"
        );
        assert_eq!(
            relay.poll_timeout(),
            Some(t0 + Duration::from_secs(30)),
            "only the trunk is watched"
        );
        let t1 = t0 + Duration::from_secs(10);
        relay.update_leg(
            t1,
            Leg::Agent,
            LegConfig {
                remote_rtp: Some(addr("192.168.1.20:16384")),
                ..LegConfig::default()
            },
        );
        assert!(relay.is_present(Leg::Agent));
        assert_eq!(
            relay.handle_rtp(t1, Leg::Trunk, phone, &rtp(0, 2, 160, &[0xFF; 160])),
            Disposition::Forward(addr("192.168.1.20:16384"))
        );
        relay.note_suppressed(Leg::Trunk);
        let trunk = relay.report(Leg::Trunk);
        assert_eq!(
            (trunk.terminated, trunk.forwarded, trunk.suppressed),
            (1, 0, 1)
        );
        assert_eq!(relay.report(Leg::Agent).dropped_foreign, 1);
        assert_eq!(
            relay.poll_timeout(),
            Some(t1 + Duration::from_secs(30)),
            "the agent's clock starts at the bridge"
        );
        relay.handle_timeout(t1 + Duration::from_secs(29));
        assert_eq!(relay.timed_out(), None);
    }

    #[test]
    fn loss_is_visible_in_the_report() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let phone = addr("198.51.100.7:40000");
        for seq in [1u16, 2, 3, 5, 6, 9, 10] {
            relay
                .handle_rtp(
                    t0,
                    Leg::Trunk,
                    phone,
                    &rtp(0, seq, u32::from(seq) * 160, &[0xFF; 160]),
                )
                .destination();
        }
        let report = relay.report(Leg::Trunk);
        assert_eq!((report.rtp.expected, report.rtp.lost), (10, 3));
    }

    #[test]
    fn an_extra_leg_is_accepted_but_never_relayed_and_its_silence_ends_only_itself() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let supervisor = addr("192.0.2.9:7000");
        let extra = Leg::Extra(0);
        assert_eq!(
            relay.handle_rtp(t0, extra, supervisor, &rtp(0, 1, 0, &[0xFF; 160])),
            Disposition::Dropped,
            "nothing is accepted before the leg is added"
        );
        relay.add_leg(
            t0,
            extra,
            LegConfig {
                remote_rtp: Some(supervisor),
                ..LegConfig::default()
            },
        );
        assert_eq!(
            relay.handle_rtp(t0, extra, supervisor, &rtp(0, 1, 0, &[0xFF; 160])),
            Disposition::Accepted
        );
        assert_eq!(relay.destination(extra), Some(supervisor));
        assert_eq!(relay.report(extra).terminated, 1);
        // Trunk and agent keep talking; the extra leg goes quiet past the 30 s limit.
        let later = t0 + Duration::from_secs(31);
        for leg in [Leg::Trunk, Leg::Agent] {
            let source = relay.destination(leg).expect("known");
            relay.handle_rtp(later, leg, source, &rtp(0, 2, 160, &[0xFF; 160]));
        }
        while relay.poll_event().is_some() {}
        relay.handle_timeout(later);
        assert_eq!(
            relay.poll_event(),
            Some(RelayEvent::LegSilent { leg: extra })
        );
        assert_eq!(relay.timed_out(), None, "the call goes on");
        let report = relay.remove_leg(later, extra);
        assert_eq!(report.terminated, 1);
        assert!(!relay.is_present(extra));
    }

    #[test]
    fn mixing_takes_every_leg_for_the_mixer_and_relays_nothing() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        relay.set_mixing(true);
        let trunk = addr("198.51.100.7:40000");
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, trunk, &rtp(0, 1, 0, &[0xFF; 160])),
            Disposition::Accepted
        );
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1];
        assert_eq!(
            relay.handle_rtcp(t0, Leg::Trunk, addr("198.51.100.7:40001"), &rtcp),
            Disposition::Accepted,
            "RTCP is not relayed while mixing"
        );
        let report = relay.report(Leg::Trunk);
        assert_eq!((report.mixed, report.forwarded), (1, 0));
        relay.set_mixing(false);
        assert_eq!(
            relay
                .handle_rtp(t0, Leg::Trunk, trunk, &rtp(0, 2, 160, &[0xFF; 160]))
                .destination(),
            Some(addr("192.168.1.20:16384")),
            "back to relaying"
        );
    }
}
