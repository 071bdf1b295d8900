//! WebRTC agent legs in memory, on one thread: how many DTLS handshakes per second our ICE-lite
//! leg completes, and what SRTP costs per packet and per call compared with a plain relayed one.
//!
//! `cargo bench -p switchboard-media --bench webrtc_legs` (release build).
//! Env: `WEBRTC_BENCH_LEGS=200` (handshakes), `WEBRTC_BENCH_PACKETS=5000` (per direction).
//!
//! Each leg is connected to a full-ICE `rtc` peer standing in for the browser; both run on this
//! thread with datagrams handed over in memory (no sockets, no kernel), so the time spent in our
//! leg's calls and in the browser's is measured apart and only ours is reported as Switchboard's.
//! The clock is fake for the protocols (timers fire when asked) and real for the measurements.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use media::webrtc_leg::{DtlsIdentity, WebRtcAudio, WebRtcLeg};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_PCMU};
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
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Marshal;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

fn pcmu() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_PCMU.to_owned(),
        clock_rate: 8000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// The browser: a full-ICE peer that answers our offer with PCMU.
fn browser(
    now: Instant,
    offer: &str,
    addr: SocketAddr,
) -> (RTCPeerConnection, RTCRtpSenderId, String) {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: pcmu(),
                payload_type: 0,
            },
            RtpCodecKind::Audio,
        )
        .expect("codec");
    let mut peer = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .build(now)
        .expect("browser peer");
    let sender = peer
        .add_track(MediaStreamTrack::new(
            "browser".into(),
            "mic".into(),
            "mic".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(4242),
                    ..Default::default()
                },
                codec: pcmu(),
                ..Default::default()
            }],
        ))
        .expect("track");
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("candidate");
    peer.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().expect("json"))
        .expect("add candidate");
    peer.set_remote_description(
        now,
        RTCSessionDescription::offer(offer.into()).expect("offer"),
    )
    .expect("set offer");
    let answer = peer.create_answer(None).expect("answer");
    let sdp = answer.sdp.clone();
    peer.set_local_description(now, answer).expect("set answer");
    (peer, sender, sdp)
}

/// One leg and its browser, and the time spent in each side's calls.
struct Pair {
    ours: WebRtcLeg,
    ours_addr: SocketAddr,
    peer: RTCPeerConnection,
    peer_sender: RTCRtpSenderId,
    peer_addr: SocketAddr,
    peer_connected: bool,
    peer_rtp: u64,
    now: Instant,
    ours_time: Duration,
    peer_time: Duration,
}

impl Pair {
    fn new(identity: &DtlsIdentity, n: u16) -> Pair {
        let now = Instant::now();
        let ours_addr = loopback(20000 + n);
        let peer_addr = loopback(40000 + n);
        let started = Instant::now();
        let mut ours = WebRtcLeg::offer(
            now,
            identity,
            ours_addr,
            &[ours_addr],
            &WebRtcAudio::default(),
        )
        .expect("offer");
        let offer_time = started.elapsed();
        let started = Instant::now();
        let (peer, peer_sender, answer) = browser(now, ours.offer_sdp(), peer_addr);
        let peer_time = started.elapsed();
        let started = Instant::now();
        ours.handle_answer(now, &answer).expect("answer");
        Pair {
            ours,
            ours_addr,
            peer,
            peer_sender,
            peer_addr,
            peer_connected: false,
            peer_rtp: 0,
            now,
            ours_time: offer_time + started.elapsed(),
            peer_time,
        }
    }

    /// Moves datagrams both ways until neither side has any.
    fn pump(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut any = false;
            let started = Instant::now();
            let mut out = Vec::new();
            while let Some(datagram) = self.ours.poll_transmit() {
                out.push(datagram);
            }
            self.ours_time += started.elapsed();
            let started = Instant::now();
            for (_, datagram) in out {
                any = true;
                let _ = self.peer.handle_read(TaggedBytesMut {
                    now: self.now,
                    transport: TransportContext {
                        local_addr: self.peer_addr,
                        peer_addr: self.ours_addr,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: datagram,
                });
            }
            let mut back = Vec::new();
            while let Some(out) = self.peer.poll_write() {
                back.push(out.message);
            }
            while let Some(event) = self.peer.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) = event
                {
                    self.peer_connected = true;
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.peer.poll_read() {
                if let RTCMessage::RtpPacket(..) = message {
                    self.peer_rtp += 1;
                }
            }
            self.peer_time += started.elapsed();
            let started = Instant::now();
            for datagram in back {
                any = true;
                self.ours
                    .handle_datagram(self.now, self.peer_addr, &datagram);
            }
            self.ours_time += started.elapsed();
            if !any {
                return moved;
            }
            moved = true;
        }
    }

    fn advance(&mut self) {
        let next = [self.ours.poll_timeout(), self.peer.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_millis(10));
        self.now = next
            .max(self.now + Duration::from_millis(1))
            .min(self.now + Duration::from_millis(50));
        let started = Instant::now();
        self.ours.handle_timeout(self.now);
        self.ours_time += started.elapsed();
        let started = Instant::now();
        let _ = self.peer.handle_timeout(self.now);
        self.peer_time += started.elapsed();
    }

    fn connect(&mut self) {
        let limit = self.now + Duration::from_secs(30);
        while !(self.ours.is_connected() && self.peer_connected) {
            assert!(self.now < limit, "no connection within 30 s of fake time");
            if !self.pump() {
                self.advance();
            }
        }
    }
}

/// Resident set size of this process, from /proc (0 where unreadable).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn plain_rtp(seq: u16) -> Vec<u8> {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: 0,
            sequence_number: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 7,
            ..Default::default()
        },
        payload: bytes::Bytes::from(vec![0xffu8; 160]),
    }
    .marshal()
    .expect("marshal")
    .to_vec()
}

fn main() {
    let legs = env_or("WEBRTC_BENCH_LEGS", 200);
    let packets = env_or("WEBRTC_BENCH_PACKETS", 5000);
    let identity = DtlsIdentity::generate().expect("identity");

    // Handshakes: offer, answer, ICE checks, DTLS, SRTP keys, one leg after another; every
    // leg stays connected, so the memory they hold together is measured too.
    let rss_before = resident_bytes();
    let mut pairs = Vec::with_capacity(legs);
    let wall = Instant::now();
    for n in 0..legs {
        let mut pair = Pair::new(&identity, u16::try_from(n % 20000).unwrap_or(0));
        pair.connect();
        pairs.push(pair);
    }
    let wall = wall.elapsed();
    let rss_after = resident_bytes();
    let ours: Duration = pairs.iter().map(|p| p.ours_time).sum();
    let theirs: Duration = pairs.iter().map(|p| p.peer_time).sum();
    println!(
        "handshakes: {legs} legs connected in {:.2} s on one thread (both ends); \
         Switchboard's side {:.0} µs per leg = {:.0} handshakes/s per core; browser side {:.0} µs per leg",
        wall.as_secs_f64(),
        ours.as_secs_f64() * 1e6 / legs as f64,
        legs as f64 / ours.as_secs_f64(),
        theirs.as_secs_f64() * 1e6 / legs as f64,
    );
    println!(
        "memory: {} KiB resident per connected pair (our leg and the browser stand-in together)",
        rss_after.saturating_sub(rss_before) / 1024 / legs.max(1) as u64
    );

    // SRTP per packet on one connected leg: trunk → browser (encrypt) and browser → trunk
    // (decrypt), only our leg's calls timed.
    let Some(pair) = pairs.first_mut() else {
        return;
    };
    let before = pair.ours_time;
    for seq in 0..packets {
        let packet = plain_rtp(seq as u16);
        let started = Instant::now();
        pair.ours.send_rtp(pair.now, &packet).expect("send");
        pair.ours_time += started.elapsed();
        pair.pump();
    }
    let encrypt = (pair.ours_time - before).as_secs_f64() * 1e6 / packets as f64;
    assert!(
        pair.peer_rtp as usize >= packets * 9 / 10,
        "browser got {}",
        pair.peer_rtp
    );

    // The other way: SRTP made by the browser, timed only inside our handle_datagram/poll_rtp.
    let mut wire = Vec::with_capacity(packets);
    for seq in 0..packets {
        let mut sender = pair
            .peer
            .rtp_sender(pair.peer_sender)
            .expect("browser sender");
        let _ = sender.write_rtp(
            pair.now,
            rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: 0,
                    sequence_number: seq as u16,
                    timestamp: seq as u32 * 160,
                    ssrc: 4242,
                    ..Default::default()
                },
                payload: bytes::Bytes::from(vec![0x7fu8; 160]),
            },
        );
        while let Some(out) = pair.peer.poll_write() {
            wire.push(out.message);
        }
    }
    let started = Instant::now();
    let mut plain = 0usize;
    for datagram in &wire {
        pair.ours
            .handle_datagram(pair.now, pair.peer_addr, datagram);
        while pair.ours.poll_rtp().is_some() {
            plain += 1;
        }
    }
    let decrypt = started.elapsed().as_secs_f64() * 1e6 / wire.len().max(1) as f64;
    assert!(
        plain >= packets * 9 / 10,
        "decrypted {plain} of {}",
        wire.len()
    );

    // A call is 50 packets/s each way.
    println!(
        "SRTP on our leg: {encrypt:.2} µs to encrypt and send a packet, {decrypt:.2} µs to receive and \
         decrypt one; a WebRTC call adds {:.0} µs of CPU per second (50 packets/s each way) to \
         what the plain relay spends on the same packets",
        (encrypt + decrypt) * 50.0
    );
}
