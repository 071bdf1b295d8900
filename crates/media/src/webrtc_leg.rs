//! A WebRTC agent leg: the browser softphone's media, terminated by Switchboard and bridged to
//! a plain RTP trunk leg.
//!
//! One webrtc-rs sans-IO peer connection (`rtc` crate) per leg, ICE-lite on our side (the
//! browser is the controlling, full-ICE agent and sends the connectivity checks), DTLS-SRTP
//! with the process's [`DtlsIdentity`], `rtcp-mux`, PCMU/PCMA only (no transcoding: the trunk's
//! G.711 packets go to the browser unchanged but for SSRC and encryption).
//!
//! The leg does no I/O and reads no clock, like the other cores: the media task feeds it the
//! datagrams of the agent leg's port ([`WebRtcLeg::handle_datagram`]) and its timer
//! ([`WebRtcLeg::handle_timeout`]), sends what [`WebRtcLeg::poll_transmit`] returns, relays the
//! plain RTP that [`WebRtcLeg::poll_rtp`] returns to the trunk, and hands RTP from the trunk to
//! [`WebRtcLeg::send_rtp`], which encrypts it for the browser.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::crypto::SignatureScheme;

use crate::codec::Codec;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_PCMA, MIME_TYPE_PCMU, MIME_TYPE_TELEPHONE_EVENT,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverId};
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, Unmarshal};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// Payload type of RFC 4733 events on WebRTC legs (the value the trunk side commonly uses too).
pub const WEBRTC_TELEPHONE_EVENT_PT: u8 = 101;

/// Why a WebRTC leg could not be made or driven.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The peer connection refused a step (bad answer SDP, failed certificate, …).
    #[error("webrtc: {0}")]
    PeerConnection(String),
    /// Plain RTP handed to [`WebRtcLeg::send_rtp`] was not an RTP packet.
    #[error("webrtc: not an RTP packet: {0}")]
    NotRtp(String),
}

impl From<rtc::shared::error::Error> for WebRtcError {
    fn from(error: rtc::shared::error::Error) -> Self {
        WebRtcError::PeerConnection(error.to_string())
    }
}

/// The DTLS certificate of this process: made once at start (rcgen, ECDSA P-256) and shared by
/// every WebRTC leg, so every offer carries the same `a=fingerprint`.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: RTCCertificate,
    fingerprint: String,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl DtlsIdentity {
    /// Makes a fresh self-signed certificate.
    pub fn generate() -> Result<Self, WebRtcError> {
        let provider = rtc::crypto::default_provider()
            .map_err(|error| WebRtcError::PeerConnection(error.to_string()))?;
        let params = CertificateParams::new(vec!["switchboard".to_owned()])
            .map_err(|error| WebRtcError::PeerConnection(error.to_string()))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)?;
        let fingerprint = certificate
            .get_fingerprints(provider.crypto())?
            .into_iter()
            .next()
            .map(|fingerprint| {
                // RFC 8122 §5: upper-case hex, as the SDP carries it.
                format!(
                    "{} {}",
                    fingerprint.algorithm,
                    fingerprint.value.to_uppercase()
                )
            })
            .ok_or_else(|| WebRtcError::PeerConnection("certificate has no fingerprint".into()))?;
        Ok(DtlsIdentity {
            certificate,
            fingerprint,
        })
    }

    /// `sha-256 AB:CD:…`, the value of our `a=fingerprint` lines.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// What the leg reports to the media task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebRtcEvent {
    /// ICE and DTLS are up: SRTP flows both ways.
    Connected,
    /// ICE or DTLS failed, or the browser closed the connection: the leg carries no more media.
    Failed,
}

/// Counters for the session report and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebRtcCounters {
    /// Decrypted RTP packets handed to the trunk side.
    pub rtp_received: u64,
    /// RTP packets encrypted and sent to the browser.
    pub rtp_sent: u64,
    /// RTP packets from the trunk the leg could not send (not yet connected, codec not negotiated).
    pub rtp_dropped: u64,
}

/// One browser's media leg. See the module documentation.
pub struct WebRtcLeg {
    peer: RTCPeerConnection,
    local_addr: SocketAddr,
    sender: RTCRtpSenderId,
    ssrc: u32,
    offer_sdp: String,
    connected: bool,
    failed: bool,
    rtp_in: VecDeque<BytesMut>,
    events: VecDeque<WebRtcEvent>,
    counters: WebRtcCounters,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local_addr", &self.local_addr)
            .field("connected", &self.connected)
            .field("counters", &self.counters)
            .finish()
    }
}

/// The audio a leg offers: G.711 codecs with their payload types, and RFC 4733 events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcAudio {
    /// PCMU and/or PCMA with payload types, in preference order.
    pub codecs: Vec<(Codec, u8)>,
    /// The telephone-event payload type, if key presses are relayed.
    pub telephone_event: Option<u8>,
}

impl Default for WebRtcAudio {
    /// Both G.711 codecs at their static payload types, and telephone-event.
    fn default() -> Self {
        WebRtcAudio {
            codecs: vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)],
            telephone_event: Some(WEBRTC_TELEPHONE_EVENT_PT),
        }
    }
}

fn codec_parameters(audio: &WebRtcAudio) -> Vec<RTCRtpCodecParameters> {
    let codec = |mime: &str, payload_type: u8| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: 8000,
            // 0 = unstated: `PCMU/8000`, as browsers write it (a stated 1 would not match).
            channels: 0,
            sdp_fmtp_line: if mime == MIME_TYPE_TELEPHONE_EVENT {
                "0-16".to_owned()
            } else {
                String::new()
            },
            rtcp_feedback: vec![],
        },
        payload_type,
    };
    let mut parameters: Vec<RTCRtpCodecParameters> = audio
        .codecs
        .iter()
        .map(|(kind, payload_type)| match kind {
            Codec::Pcmu => codec(MIME_TYPE_PCMU, *payload_type),
            Codec::Pcma => codec(MIME_TYPE_PCMA, *payload_type),
        })
        .collect();
    if let Some(payload_type) = audio.telephone_event {
        parameters.push(codec(MIME_TYPE_TELEPHONE_EVENT, payload_type));
    }
    parameters
}

/// Builds a peer connection that speaks only G.711 (and RFC 4733 events) on one audio track.
fn audio_peer(
    now: Instant,
    identity: &DtlsIdentity,
    lite: bool,
    audio: &WebRtcAudio,
) -> Result<(RTCPeerConnection, RTCRtpSenderId, u32), WebRtcError> {
    let parameters = codec_parameters(audio);
    let Some(first) = parameters.first().map(|codec| codec.rtp_codec.clone()) else {
        return Err(WebRtcError::PeerConnection(
            "no G.711 codec to offer".to_owned(),
        ));
    };
    let mut media_engine = MediaEngine::default();
    for codec in parameters.iter().cloned() {
        media_engine.register_codec(codec, RtpCodecKind::Audio)?;
    }
    let settings = SettingEngineBuilder::new().with_lite(lite).build();
    let configuration = RTCConfigurationBuilder::new()
        .with_certificates(vec![identity.certificate.clone()])
        .build();
    let mut peer = RTCPeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_setting_engine(settings)
        .with_media_engine(media_engine)
        .build(now)?;
    let ssrc = rand::random::<u32>();
    let track = MediaStreamTrack::new(
        "switchboard".to_owned(),
        "switchboard-audio".to_owned(),
        "switchboard-audio".to_owned(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: first,
            ..Default::default()
        }],
    );
    let sender = peer.add_track(track)?;
    // A track names one codec; the transceiver offers (and accepts from the trunk) all three.
    if let Some(mut transceiver) = peer.rtp_transceiver(RTCRtpTransceiverId::from(sender)) {
        transceiver.set_codec_preferences(parameters)?;
    }
    Ok((peer, sender, ssrc))
}

fn add_host_candidate(peer: &mut RTCPeerConnection, addr: SocketAddr) -> Result<(), WebRtcError> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    peer.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    Ok(())
}

impl WebRtcLeg {
    /// Makes the leg and Switchboard's offer for it. `local_addr` is the socket the leg's
    /// datagrams arrive on; `candidates` the host candidates to advertise (the `[media]`
    /// address with that port, plus the public address if one is configured).
    pub fn offer(
        now: Instant,
        identity: &DtlsIdentity,
        local_addr: SocketAddr,
        candidates: &[SocketAddr],
        audio: &WebRtcAudio,
    ) -> Result<Self, WebRtcError> {
        let (mut peer, sender, ssrc) = audio_peer(now, identity, true, audio)?;
        for candidate in candidates {
            add_host_candidate(&mut peer, *candidate)?;
        }
        let offer = peer.create_offer(None)?;
        let offer_sdp = offer.sdp.clone();
        peer.set_local_description(now, offer)?;
        Ok(WebRtcLeg {
            peer,
            local_addr,
            sender,
            ssrc,
            offer_sdp,
            connected: false,
            failed: false,
            rtp_in: VecDeque::new(),
            events: VecDeque::new(),
            counters: WebRtcCounters::default(),
        })
    }

    /// Our offer: `UDP/TLS/RTP/SAVPF`, ICE-lite credentials and host candidates, the DTLS
    /// fingerprint, `a=setup:actpass`, `a=rtcp-mux`, mid and BUNDLE, PCMU/PCMA.
    pub fn offer_sdp(&self) -> &str {
        &self.offer_sdp
    }

    /// The browser's answer: its ICE credentials and DTLS fingerprint/role configure the leg.
    pub fn handle_answer(&mut self, now: Instant, sdp: &str) -> Result<(), WebRtcError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())?;
        self.peer.set_remote_description(now, answer)?;
        self.collect();
        Ok(())
    }

    /// A datagram that arrived on the leg's port: STUN, DTLS or SRTP/SRTCP.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let input = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(datagram),
        };
        if let Err(error) = self.peer.handle_read(input) {
            // A stray or damaged datagram; the connection itself decides when it has failed.
            tracing::debug!(%from, %error, "webrtc leg: datagram refused");
        }
        self.collect();
    }

    /// The task's timer reached [`WebRtcLeg::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(error) = self.peer.handle_timeout(now) {
            tracing::debug!(%error, "webrtc leg: timeout handling failed");
        }
        self.collect();
    }

    /// When [`WebRtcLeg::handle_timeout`] wants to run next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.peer.poll_timeout()
    }

    /// A datagram to send from the leg's port, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.peer
            .poll_write()
            .map(|out| (out.transport.peer_addr, out.message))
    }

    /// A decrypted RTP packet from the browser, as plain RTP bytes for the trunk.
    pub fn poll_rtp(&mut self) -> Option<BytesMut> {
        self.rtp_in.pop_front()
    }

    /// What happened to the connection since the last call.
    pub fn poll_event(&mut self) -> Option<WebRtcEvent> {
        self.events.pop_front()
    }

    /// Whether SRTP flows.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Packet counters.
    pub fn counters(&self) -> WebRtcCounters {
        self.counters
    }

    /// Plain RTP from the trunk: sent to the browser encrypted, in our SSRC; sequence numbers,
    /// timestamps, marker and payload are kept. Dropped (and counted) before the connection is
    /// up or when the payload type was not negotiated.
    pub fn send_rtp(&mut self, now: Instant, plain: &[u8]) -> Result<(), WebRtcError> {
        if !self.connected {
            self.counters.rtp_dropped += 1;
            return Ok(());
        }
        let mut bytes = plain;
        let mut packet = rtc::rtp::Packet::unmarshal(&mut bytes)
            .map_err(|error| WebRtcError::NotRtp(error.to_string()))?;
        packet.header.ssrc = self.ssrc;
        // The trunk's header extensions mean nothing to the browser and were not negotiated.
        packet.header.extension = false;
        packet.header.extensions.clear();
        packet.header.padding = false;
        let Some(mut sender) = self.peer.rtp_sender(self.sender) else {
            self.counters.rtp_dropped += 1;
            return Ok(());
        };
        match sender.write_rtp(now, packet) {
            Ok(()) => self.counters.rtp_sent += 1,
            Err(error) => {
                self.counters.rtp_dropped += 1;
                tracing::trace!(%error, "webrtc leg: RTP not sent");
            }
        }
        Ok(())
    }

    /// Closes the connection (a DTLS close_notify goes out through `poll_transmit`).
    pub fn close(&mut self) {
        if let Err(error) = self.peer.close() {
            tracing::debug!(%error, "webrtc leg: close failed");
        }
    }

    /// Takes the peer connection's state changes and decrypted RTP into our queues.
    fn collect(&mut self) {
        while let Some(event) = self.peer.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected if !self.connected => {
                        self.connected = true;
                        self.events.push_back(WebRtcEvent::Connected);
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                        if !self.failed =>
                    {
                        self.failed = true;
                        self.connected = false;
                        self.events.push_back(WebRtcEvent::Failed);
                    }
                    _ => {}
                }
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.peer.poll_read() {
            if let RTCMessage::RtpPacket(_, packet) = message {
                match packet.marshal() {
                    Ok(bytes) => {
                        self.counters.rtp_received += 1;
                        self.rtp_in.push_back(bytes);
                    }
                    Err(error) => tracing::debug!(%error, "webrtc leg: RTP not re-encoded"),
                }
            }
        }
    }
}

/// The browser's side in tests: a full-ICE `rtc` peer connection that answers our offer.
#[cfg(test)]
pub(crate) mod test_browser {
    use super::*;

    pub(crate) struct Browser {
        pub(crate) peer: RTCPeerConnection,
        pub(crate) addr: SocketAddr,
        sender: RTCRtpSenderId,
        ssrc: u32,
        pub(crate) connected: bool,
        pub(crate) received: Vec<rtc::rtp::Packet>,
    }

    impl Browser {
        pub(crate) fn answer(now: Instant, offer: &str, addr: SocketAddr) -> (Self, String) {
            let identity = DtlsIdentity::generate().expect("browser certificate");
            let (mut peer, sender, ssrc) =
                audio_peer(now, &identity, false, &WebRtcAudio::default()).expect("browser");
            add_host_candidate(&mut peer, addr).expect("candidate");
            peer.set_remote_description(
                now,
                RTCSessionDescription::offer(offer.to_owned()).expect("offer"),
            )
            .expect("set offer");
            let answer = peer.create_answer(None).expect("answer");
            let sdp = answer.sdp.clone();
            peer.set_local_description(now, answer).expect("set answer");
            let browser = Browser {
                peer,
                addr,
                sender,
                ssrc,
                connected: false,
                received: Vec::new(),
            };
            (browser, sdp)
        }

        pub(crate) fn drain(&mut self) {
            while let Some(event) = self.peer.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) = event
                {
                    self.connected = true;
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.peer.poll_read() {
                if let RTCMessage::RtpPacket(_, packet) = message {
                    self.received.push(packet);
                }
            }
        }

        /// Sends PCMA audio, sequence `seq`, timestamp `seq × 160`.
        pub(crate) fn send(&mut self, now: Instant, seq: u16, payload: &[u8]) {
            self.send_packet(now, 8, seq, u32::from(seq) * 160, payload);
        }

        /// Sends one RTP packet of any negotiated payload type.
        pub(crate) fn send_packet(
            &mut self,
            now: Instant,
            payload_type: u8,
            seq: u16,
            timestamp: u32,
            payload: &[u8],
        ) {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::copy_from_slice(payload),
            };
            self.peer
                .rtp_sender(self.sender)
                .expect("sender")
                .write_rtp(now, packet)
                .expect("browser sends");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_browser::Browser;
    use super::*;
    fn addr(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    /// A wire between the two in memory: every datagram either side sends is delivered to the
    /// other at once; time advances to the earlier of their timers when both are idle.
    struct Wire {
        now: Instant,
        ours: WebRtcLeg,
        browser: Browser,
        /// Every datagram seen on the wire from our leg, to check nothing plain leaves it.
        from_ours: Vec<Vec<u8>>,
    }

    impl Wire {
        /// Moves datagrams until neither side has any; returns whether anything moved.
        fn pump(&mut self) -> bool {
            let mut moved = false;
            loop {
                let mut any = false;
                while let Some((to, datagram)) = self.ours.poll_transmit() {
                    assert_eq!(
                        to, self.browser.addr,
                        "our leg answers where checks came from"
                    );
                    self.from_ours.push(datagram.to_vec());
                    let input = TaggedBytesMut {
                        now: self.now,
                        transport: TransportContext {
                            local_addr: self.browser.addr,
                            peer_addr: self.ours.local_addr,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: datagram,
                    };
                    let _ = self.browser.peer.handle_read(input);
                    any = true;
                }
                while let Some(out) = self.browser.peer.poll_write() {
                    self.ours
                        .handle_datagram(self.now, self.browser.addr, &out.message);
                    any = true;
                }
                self.browser.drain();
                if !any {
                    return moved;
                }
                moved = true;
            }
        }

        fn advance(&mut self) {
            let next = [self.ours.poll_timeout(), self.browser.peer.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.now + Duration::from_millis(10));
            // Never step more than 50 ms, never backwards.
            self.now = next
                .max(self.now + Duration::from_millis(1))
                .min(self.now + Duration::from_millis(50));
            self.ours.handle_timeout(self.now);
            let _ = self.browser.peer.handle_timeout(self.now);
        }

        /// Runs the fake clock until `done` holds, for at most `limit` of fake time.
        fn run_until(&mut self, limit: Duration, done: impl Fn(&Wire) -> bool) {
            let until = self.now + limit;
            while !done(self) {
                assert!(
                    self.now < until,
                    "not reached within {limit:?} of fake time"
                );
                if !self.pump() {
                    self.advance();
                }
            }
        }
    }

    fn plain_rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: u32::from(seq) * 160,
                ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::copy_from_slice(payload),
        }
        .marshal()
        .expect("marshal")
        .to_vec()
    }

    fn connected_pair() -> Wire {
        let now = Instant::now();
        let identity = DtlsIdentity::generate().expect("identity");
        let ours_addr = addr(40000);
        let ours = WebRtcLeg::offer(
            now,
            &identity,
            ours_addr,
            &[ours_addr],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let (browser, answer) = Browser::answer(now, ours.offer_sdp(), addr(50000));
        let mut wire = Wire {
            now,
            ours,
            browser,
            from_ours: Vec::new(),
        };
        wire.ours
            .handle_answer(now, &answer)
            .expect("answer accepted");
        wire.run_until(Duration::from_secs(30), |w| {
            w.ours.is_connected() && w.browser.connected
        });
        assert_eq!(wire.ours.poll_event(), Some(WebRtcEvent::Connected));
        wire
    }

    #[test]
    fn the_offer_is_what_a_browser_needs() {
        let identity = DtlsIdentity::generate().expect("identity");
        let leg = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            addr(40000),
            &[
                addr(40000),
                SocketAddr::new("203.0.113.7".parse().unwrap(), 40000),
            ],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let sdp = leg.offer_sdp();
        for wanted in [
            "UDP/TLS/RTP/SAVPF",
            "a=ice-lite",
            "a=ice-ufrag:",
            "a=ice-pwd:",
            "a=setup:actpass",
            "a=rtcp-mux",
            "a=mid:",
            "a=group:BUNDLE",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "127.0.0.1 40000 typ host",
            "203.0.113.7 40000 typ host",
        ] {
            assert!(sdp.contains(wanted), "offer lacks {wanted}:\n{sdp}");
        }
        assert!(
            sdp.contains(&format!("a=fingerprint:{}", identity.fingerprint())),
            "offer carries the process certificate's fingerprint:\n{sdp}"
        );
        assert!(!sdp.contains("opus"), "G.711 only:\n{sdp}");
        assert!(!sdp.contains("m=application"), "no data channel:\n{sdp}");
    }

    #[test]
    fn the_offer_keeps_to_the_calls_codec_and_event_type() {
        let identity = DtlsIdentity::generate().expect("identity");
        let audio = WebRtcAudio {
            codecs: vec![(Codec::Pcma, 8)],
            telephone_event: Some(96),
        };
        let leg = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            addr(40000),
            &[addr(40000)],
            &audio,
        )
        .expect("offer");
        let sdp = leg.offer_sdp();
        assert!(sdp.contains("UDP/TLS/RTP/SAVPF 8 96\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 telephone-event/8000"), "{sdp}");
        assert!(!sdp.contains("PCMU"), "{sdp}");
        let none = WebRtcAudio {
            codecs: vec![],
            telephone_event: None,
        };
        let error = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            addr(40000),
            &[addr(40000)],
            &none,
        )
        .expect_err("nothing to offer");
        assert!(error.to_string().contains("no G.711 codec"), "{error}");
    }

    #[test]
    fn ice_lite_leg_and_full_ice_browser_connect_and_exchange_srtp() {
        let mut wire = connected_pair();

        // Trunk → browser: plain RTP in, encrypted on the wire, the same audio out.
        let before = wire.from_ours.len();
        for seq in 1..=5u16 {
            let packet = plain_rtp(0, seq, 0x1234_5678, &[seq as u8; 160]);
            wire.ours.send_rtp(wire.now, &packet).expect("send");
        }
        wire.run_until(Duration::from_secs(5), |w| w.browser.received.len() >= 5);
        let got: Vec<(u16, u8)> = wire
            .browser
            .received
            .iter()
            .map(|p| (p.header.sequence_number, p.payload[0]))
            .collect();
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
        assert!(wire
            .browser
            .received
            .iter()
            .all(|p| p.header.payload_type == 0));
        // Nothing on the wire carried the payload in the clear.
        let clear = [3u8; 160];
        assert!(wire.from_ours[before..]
            .iter()
            .all(|d| !d.windows(160).any(|w| w == clear)));

        // Browser → trunk: SRTP in, plain RTP out with the browser's sequence numbers.
        for seq in 100..105u16 {
            wire.browser.send(wire.now, seq, &[0xd5; 160]);
        }
        let mut plain = Vec::new();
        wire.run_until(Duration::from_secs(5), |w| {
            w.ours.counters().rtp_received >= 5
        });
        while let Some(bytes) = wire.ours.poll_rtp() {
            plain.push(bytes);
        }
        let seqs: Vec<u16> = plain
            .iter()
            .map(|b| {
                let mut slice = &b[..];
                let p = rtc::rtp::Packet::unmarshal(&mut slice).expect("plain RTP");
                assert_eq!(p.header.payload_type, 8);
                assert_eq!(&p.payload[..], &[0xd5; 160][..]);
                p.header.sequence_number
            })
            .collect();
        assert_eq!(seqs, vec![100, 101, 102, 103, 104]);
        assert_eq!(wire.ours.counters().rtp_sent, 5);
    }

    #[test]
    fn rtp_before_the_connection_is_dropped_and_counted() {
        let identity = DtlsIdentity::generate().expect("identity");
        let mut leg = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            addr(40000),
            &[addr(40000)],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        leg.send_rtp(Instant::now(), &plain_rtp(0, 1, 1, &[0; 160]))
            .expect("accepted");
        assert_eq!(leg.counters().rtp_dropped, 1);
        assert!(leg.poll_transmit().is_none(), "nothing goes out before ICE");
    }

    #[test]
    fn a_bad_answer_is_refused_with_a_reason() {
        let identity = DtlsIdentity::generate().expect("identity");
        let mut leg = WebRtcLeg::offer(
            Instant::now(),
            &identity,
            addr(40000),
            &[addr(40000)],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let error = leg
            .handle_answer(Instant::now(), "v=0\r\nthis is not sdp\r\n")
            .expect_err("refused");
        assert!(error.to_string().starts_with("webrtc:"), "{error}");
    }

    #[test]
    fn garbage_datagrams_do_not_disturb_a_connected_leg() {
        let mut wire = connected_pair();
        let from = wire.browser.addr;
        wire.ours.handle_datagram(wire.now, from, &[0xff; 3]);
        wire.ours.handle_datagram(wire.now, from, &[]);
        wire.ours.handle_datagram(wire.now, from, &[0x80; 40]);
        assert!(wire.ours.is_connected());
        wire.browser.send(wire.now, 7, &[1; 160]);
        wire.run_until(Duration::from_secs(5), |w| {
            w.ours.counters().rtp_received >= 1
        });
    }
}
