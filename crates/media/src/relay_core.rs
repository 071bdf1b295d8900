//! The sans-IO heart of one anchored call's relay: for each datagram it decides whether and
//! where to forward it (validation, symmetric-RTP latching), keeps the per-leg statistics,
//! picks RFC 4733 key presses out of the stream and tracks the media timeout. The tokio
//! loop in [`crate::relay`] only moves bytes between sockets and this struct.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use crate::codec::CLOCK_RATE;
use crate::dtmf::{DtmfPress, TelephoneEventReceiver};
use crate::latch::{LatchDecision, RemoteLatch};
use crate::media_timeout::{Leg, MediaTimeout};
use crate::rtp_stats::{RtpStats, StatsSnapshot};

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
    report: LegReport,
}

impl LegState {
    fn new(config: LegConfig, relatch_after: Duration) -> LegState {
        LegState {
            rtp_latch: RemoteLatch::new(config.remote_rtp, relatch_after),
            rtcp_latch: RemoteLatch::new(config.remote_rtcp, relatch_after),
            stats: RtpStats::new(CLOCK_RATE),
            dtmf: TelephoneEventReceiver::new(),
            telephone_event: config.telephone_event,
            report: LegReport::default(),
        }
    }
}

/// Relay state for one call (two legs).
#[derive(Debug)]
pub struct RelayCore {
    legs: [LegState; 2],
    timeout: Option<MediaTimeout>,
    timed_out: Option<Leg>,
    events: VecDeque<RelayEvent>,
}

impl RelayCore {
    /// A relay for a call whose legs were negotiated as `trunk` and `agent`. `media_timeout`
    /// `None` disables the rule; `relatch_after` is how long a latched peer must be silent
    /// before another source may take its place.
    pub fn new(
        now: Instant,
        trunk: LegConfig,
        agent: LegConfig,
        media_timeout: Option<Duration>,
        relatch_after: Duration,
    ) -> RelayCore {
        RelayCore {
            legs: [
                LegState::new(trunk, relatch_after),
                LegState::new(agent, relatch_after),
            ],
            timeout: media_timeout.map(|limit| MediaTimeout::new(now, limit)),
            timed_out: None,
            events: VecDeque::new(),
        }
    }

    /// An RTP datagram arrived from `leg` at `source`: returns where to send it on the other leg.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        leg: Leg,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Option<SocketAddr> {
        let Ok(packet) = RtpReader::new(datagram) else {
            self.legs[leg.index()].report.dropped_invalid += 1;
            return None;
        };
        // RTCP multiplexed on the RTP port (RFC 5761) is not negotiated here: refuse it rather
        // than let it pollute sequence statistics.
        if (72..=76).contains(&packet.payload_type()) {
            self.legs[leg.index()].report.dropped_invalid += 1;
            return None;
        }
        let state = &mut self.legs[leg.index()];
        match state.rtp_latch.on_packet(now, source) {
            LatchDecision::Accept => {}
            LatchDecision::Latched(source) => {
                state.report.latched = Some(source);
                push_event(&mut self.events, RelayEvent::Latched { leg, source });
            }
            LatchDecision::Reject => {
                state.report.dropped_foreign += 1;
                return None;
            }
        }
        state.stats.record(
            now,
            packet.ssrc(),
            u16::from(packet.sequence_number()),
            packet.timestamp(),
            datagram.len(),
        );
        if state.telephone_event == Some(packet.payload_type()) {
            if let Ok(Some(press)) = state.dtmf.on_packet(packet.timestamp(), packet.payload()) {
                push_event(&mut self.events, RelayEvent::Dtmf { leg, press });
            }
        }
        if let Some(timeout) = self.timeout.as_mut() {
            timeout.on_rtp(now, leg);
        }
        let destination = self.legs[leg.other().index()].rtp_latch.destination();
        let report = &mut self.legs[leg.index()].report;
        match destination {
            Some(_) => report.forwarded += 1,
            None => report.dropped_no_destination += 1,
        }
        destination
    }

    /// An RTCP datagram arrived from `leg` at `source`: returns where to send it on the other leg.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        leg: Leg,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Option<SocketAddr> {
        // RTCP: version 2, a known packet type (SR..APP, RFC 3550 §12.1; 205/206 feedback), 8+ bytes.
        let valid =
            datagram.len() >= 8 && datagram[0] >> 6 == 2 && (200..=206).contains(&datagram[1]);
        let state = &mut self.legs[leg.index()];
        if !valid {
            state.report.dropped_invalid += 1;
            return None;
        }
        if state.rtcp_latch.on_packet(now, source) == LatchDecision::Reject {
            state.report.dropped_foreign += 1;
            return None;
        }
        let destination = self.legs[leg.other().index()].rtcp_latch.destination();
        let report = &mut self.legs[leg.index()].report;
        match destination {
            Some(_) => report.rtcp_forwarded += 1,
            None => report.dropped_no_destination += 1,
        }
        destination
    }

    /// The I/O layer could not send a datagram that came from `leg`.
    pub fn note_send_failure(&mut self, leg: Leg) {
        let report = &mut self.legs[leg.index()].report;
        report.dropped_send += 1;
        report.forwarded = report.forwarded.saturating_sub(1);
    }

    /// Updates a leg after a re-INVITE.
    pub fn update_leg(&mut self, now: Instant, leg: Leg, config: LegConfig, expect_rtp: bool) {
        let state = &mut self.legs[leg.index()];
        state.rtp_latch.set_signalled(config.remote_rtp);
        state.rtcp_latch.set_signalled(config.remote_rtcp);
        state.telephone_event = config.telephone_event;
        if let Some(timeout) = self.timeout.as_mut() {
            timeout.set_watched(now, leg, expect_rtp);
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
        if let Some(silent_leg) = self.timeout.as_ref().and_then(|t| t.check(now)) {
            self.timed_out = Some(silent_leg);
            push_event(&mut self.events, RelayEvent::MediaTimeout { silent_leg });
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

    /// Counters for a leg.
    pub fn report(&self, leg: Leg) -> LegReport {
        let state = &self.legs[leg.index()];
        LegReport {
            rtp: state.stats.snapshot(),
            ..state.report
        }
    }
}

fn push_event(events: &mut VecDeque<RelayEvent>, event: RelayEvent) {
    if events.len() >= MAX_QUEUED_EVENTS {
        events.pop_front();
    }
    events.push_back(event);
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
            },
            LegConfig {
                remote_rtp: Some(addr("192.168.1.20:16384")),
                remote_rtcp: None,
                telephone_event: Some(101),
            },
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
            relay.handle_rtp(t0, Leg::Agent, nat, &rtp(0, 1, 0, &[0xFF; 160])),
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
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                addr("198.51.100.7:40000"),
                &rtp(0, 9, 0, &[0xFF; 160])
            ),
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
        assert_eq!(relay.handle_rtp(t0, Leg::Trunk, phone, b"hello"), None);
        assert_eq!(
            relay.handle_rtp(t0, Leg::Trunk, phone, &[0u8; 12]),
            None,
            "version 0"
        );
        relay.handle_rtp(t0, Leg::Trunk, phone, &rtp(0, 1, 0, &[0xFF; 160]));
        assert_eq!(
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                addr("6.6.6.6:666"),
                &rtp(0, 2, 160, &[0xFF; 160])
            ),
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
            LegConfig::default(),
            None,
            Duration::from_secs(2),
        );
        assert_eq!(
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                addr("10.0.0.1:5000"),
                &rtp(8, 1, 0, &[0xD5; 160])
            ),
            None
        );
        assert_eq!(relay.report(Leg::Trunk).dropped_no_destination, 1);
        // Once the agent has sent something, we know where it is.
        relay.handle_rtp(
            t0,
            Leg::Agent,
            addr("10.0.0.2:6000"),
            &rtp(8, 1, 0, &[0xD5; 160]),
        );
        assert_eq!(
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                addr("10.0.0.1:5000"),
                &rtp(8, 2, 160, &[0xD5; 160])
            ),
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
            relay.handle_rtcp(t0, Leg::Agent, addr("203.0.113.50:61001"), &receiver_report),
            Some(addr("198.51.100.7:40001"))
        );
        assert_eq!(
            relay.handle_rtcp(
                t0,
                Leg::Agent,
                addr("203.0.113.50:61001"),
                &[0x80, 0, 0, 0, 0, 0, 0, 0]
            ),
            None
        );
        assert_eq!(relay.report(Leg::Agent).rtcp_forwarded, 1);
        assert_eq!(relay.report(Leg::Agent).dropped_invalid, 1);
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
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                phone,
                &rtp(101, 100 + i as u16, 8000, &packet.event.encode()),
            );
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
            relay.handle_rtp(
                at,
                Leg::Trunk,
                phone,
                &rtp(0, i, u32::from(i) * 160, &[0xFF; 160]),
            );
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
    fn hold_suspends_the_timeout_for_that_leg() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        relay.update_leg(t0, Leg::Agent, LegConfig::default(), false);
        relay.update_leg(t0, Leg::Trunk, LegConfig::default(), false);
        assert_eq!(relay.poll_timeout(), None);
    }

    #[test]
    fn loss_is_visible_in_the_report() {
        let t0 = Instant::now();
        let mut relay = core(t0);
        let phone = addr("198.51.100.7:40000");
        for seq in [1u16, 2, 3, 5, 6, 9, 10] {
            relay.handle_rtp(
                t0,
                Leg::Trunk,
                phone,
                &rtp(0, seq, u32::from(seq) * 160, &[0xFF; 160]),
            );
        }
        let report = relay.report(Leg::Trunk);
        assert_eq!((report.rtp.expected, report.rtp.lost), (10, 3));
    }
}
