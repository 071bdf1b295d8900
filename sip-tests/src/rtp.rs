//! An RTP endpoint for media tests: sends numbered G.711 packets at 20 ms like a phone, and
//! collects what comes back, so a test can compare packets byte for byte or check cadence.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};

/// RTP header length without CSRCs or extensions.
pub const HEADER_LEN: usize = 12;
/// Payload bytes of 20 ms of G.711 at 8 kHz.
pub const PAYLOAD_LEN: usize = 160;

/// A packet received, with when it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The datagram as it arrived.
    pub bytes: Vec<u8>,
    /// Arrival time.
    pub at: Instant,
    /// Who sent it.
    pub from: SocketAddr,
}

impl Received {
    /// RTP payload type (without the marker bit).
    pub fn payload_type(&self) -> Option<u8> {
        self.bytes.get(1).map(|b| b & 0x7f)
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.bytes.get(1).is_some_and(|b| b & 0x80 != 0)
    }

    /// RTP sequence number.
    pub fn sequence(&self) -> Option<u16> {
        Some(u16::from_be_bytes([
            *self.bytes.get(2)?,
            *self.bytes.get(3)?,
        ]))
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> Option<u32> {
        let b = self.bytes.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// SSRC.
    pub fn ssrc(&self) -> Option<u32> {
        let b = self.bytes.get(8..12)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A UDP socket on 127.0.0.1 speaking RTP.
#[derive(Debug)]
pub struct RtpPeer {
    socket: UdpSocket,
}

impl RtpPeer {
    /// Binds an even port on 127.0.0.1 (RTP convention; RTCP would be the odd one above).
    pub fn bind() -> HarnessResult<Self> {
        for _ in 0..100 {
            let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| HarnessError::io("binding an RTP socket", e))?;
            let port = socket
                .local_addr()
                .map_err(|e| HarnessError::io("reading the RTP socket address", e))?
                .port();
            if port % 2 == 0 {
                return Ok(RtpPeer { socket });
            }
        }
        Err(HarnessError::NoFreePorts { count: 1 })
    }

    /// The port to put in SDP.
    pub fn port(&self) -> HarnessResult<u16> {
        self.socket
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| HarnessError::io("reading the RTP socket address", e))
    }

    /// Packet `index` of a test stream: PCMU (`payload_type`) with a payload that encodes the
    /// index, so any reordering, loss or alteration shows.
    pub fn packet(index: u16, payload_type: u8, ssrc: u32) -> Vec<u8> {
        let mut packet = Vec::with_capacity(HEADER_LEN + PAYLOAD_LEN);
        packet.push(0x80);
        packet.push(payload_type & 0x7f);
        packet.extend_from_slice(&index.wrapping_add(1000).to_be_bytes());
        packet.extend_from_slice(&(u32::from(index) * 160).to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet
            .extend((0..PAYLOAD_LEN).map(|i| (i as u16).wrapping_mul(7).wrapping_add(index) as u8));
        packet
    }

    /// Sends `count` packets to `to`, one every 20 ms, returning what was sent.
    pub fn send_stream(
        &self,
        to: SocketAddr,
        count: u16,
        payload_type: u8,
        ssrc: u32,
    ) -> HarnessResult<Vec<Vec<u8>>> {
        let start = Instant::now();
        let mut sent = Vec::new();
        for index in 0..count {
            let due = start + Duration::from_millis(20 * u64::from(index));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let packet = Self::packet(index, payload_type, ssrc);
            self.socket
                .send_to(&packet, to)
                .map_err(|e| HarnessError::io(format!("sending RTP to {to}"), e))?;
            sent.push(packet);
        }
        Ok(sent)
    }

    /// Sends one datagram.
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) -> HarnessResult<()> {
        self.socket
            .send_to(bytes, to)
            .map(|_| ())
            .map_err(|e| HarnessError::io(format!("sending RTP to {to}"), e))
    }

    /// Collects packets until none has arrived for `quiet` (a prompt has ended), or until
    /// `timeout` passes.
    pub fn receive_until_quiet(
        &self,
        quiet: Duration,
        timeout: Duration,
    ) -> HarnessResult<Vec<Received>> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(received);
            }
            let more = self.receive(1, quiet.min(left))?;
            if more.is_empty() {
                return Ok(received);
            }
            received.extend(more);
        }
    }

    /// Collects packets until `count` have arrived or `timeout` passes (whichever first).
    pub fn receive(&self, count: usize, timeout: Duration) -> HarnessResult<Vec<Received>> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        let mut buffer = [0u8; 2048];
        while received.len() < count {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| HarnessError::io("setting the RTP read timeout", e))?;
            match self.socket.recv_from(&mut buffer) {
                Ok((len, from)) => received.push(Received {
                    bytes: buffer[..len].to_vec(),
                    at: Instant::now(),
                    from,
                }),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(HarnessError::io("receiving RTP", e)),
            }
        }
        Ok(received)
    }
}

/// An outgoing RTP stream with its own sequence numbers and timestamps, for sending audio and
/// key presses the way a phone does (RFC 3550, RFC 4733).
#[derive(Debug)]
pub struct RtpStream {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl RtpStream {
    /// A stream with SSRC `ssrc`.
    pub fn new(ssrc: u32) -> Self {
        RtpStream {
            ssrc,
            sequence: 100,
            timestamp: 8000,
        }
    }

    fn header(&mut self, payload_type: u8, marker: bool, timestamp: u32) -> Vec<u8> {
        let mut packet = Vec::with_capacity(HEADER_LEN + PAYLOAD_LEN);
        packet.push(0x80);
        packet.push(payload_type & 0x7f | if marker { 0x80 } else { 0 });
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }

    /// One 20 ms audio packet with `payload`.
    pub fn audio(&mut self, payload_type: u8, payload: &[u8]) -> Vec<u8> {
        let timestamp = self.timestamp;
        let mut packet = self.header(payload_type, false, timestamp);
        packet.extend_from_slice(payload);
        self.timestamp = self.timestamp.wrapping_add(PAYLOAD_LEN as u32);
        packet
    }

    /// The RFC 4733 packets of one key press (`key` as 0-9, * = 10, # = 11) held 100 ms: five
    /// updates, the first with the marker bit, then the end packet three times.
    pub fn key_press(&mut self, payload_type: u8, key: u8) -> Vec<Vec<u8>> {
        let start = self.timestamp;
        let mut packets = Vec::new();
        for step in 1..=8u16 {
            let end = step >= 6;
            let duration = 160 * step.min(5);
            let mut packet = self.header(payload_type, step == 1, start);
            packet.push(key);
            packet.push(if end { 0x80 | 10 } else { 10 });
            packet.extend_from_slice(&duration.to_be_bytes());
            packets.push(packet);
        }
        self.timestamp = self.timestamp.wrapping_add(160 * 6);
        packets
    }
}

/// Key code of RFC 4733 for a DTMF character.
pub fn event_code(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        _ => None,
    }
}

/// 20 ms μ-law payloads of a DTMF tone (the two ITU-T Q.23 frequencies of `key`) lasting
/// `packets` × 20 ms, for trunks that send key presses only in the audio.
pub fn dtmf_tone(key: char, packets: usize) -> Option<Vec<Vec<u8>>> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 3] = [1209.0, 1336.0, 1477.0];
    let position = "123456789*0#".find(key)?;
    let (low, high) = (ROWS[position / 3], COLUMNS[position % 3]);
    Some(tone_payloads(&[low, high], 6000.0, packets))
}

/// 20 ms μ-law payloads of the sum of sines at `frequencies` (Hz), each of `amplitude`,
/// lasting `packets` × 20 ms with a continuous phase.
pub fn tone_payloads(frequencies: &[f64], amplitude: f64, packets: usize) -> Vec<Vec<u8>> {
    let mut n = 0usize;
    (0..packets)
        .map(|_| {
            (0..PAYLOAD_LEN)
                .map(|_| {
                    let t = n as f64 / 8000.0;
                    n += 1;
                    let sample: f64 = frequencies
                        .iter()
                        .map(|f| amplitude * (2.0 * std::f64::consts::PI * f * t).sin())
                        .sum();
                    linear_to_ulaw(sample as i16)
                })
                .collect()
        })
        .collect()
}

/// The share (0..=1) of the signal's energy at `frequency` (Hz), by the Goertzel algorithm
/// over 8 kHz samples: about 0.5 for one of two equal tones, near 0 when the tone is absent.
pub fn tone_share(samples: &[i16], frequency: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &sample in samples {
        let x = f64::from(sample);
        energy += x * x;
        let s0 = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    // |X(k)|² of a sine of amplitude A over N samples is (A·N/2)², its energy A²·N/2: the
    // ratio below is 1 for a pure tone at `frequency`.
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    (2.0 * power / n / energy).min(1.0)
}

/// The decoded μ-law samples of received PCMU packets (payload type 0; others skipped).
pub fn pcmu_samples(packets: &[Received]) -> Vec<i16> {
    packets
        .iter()
        .filter(|p| p.payload_type() == Some(0))
        .flat_map(|p| p.bytes.get(HEADER_LEN..).unwrap_or_default().iter())
        .map(|&b| ulaw_to_linear(b))
        .collect()
}

/// G.711 μ-law encoding of one sample (ITU-T G.711, bias 0x84), written independently of
/// Switchboard's codec so the tests check it rather than mirror it.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let magnitude = i32::from(sample).abs().min(CLIP) + BIAS;
    let sign = if sample < 0 { 0x80 } else { 0 };
    // The segment is the position of the highest set bit of the biased magnitude above bit 7.
    let mut exponent = 7;
    while exponent > 0 && magnitude & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// G.711 μ-law decoding of one byte.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i16::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// An SDP offer from 127.0.0.1:`port` for `codecs` (`(payload type, encoding)`, in order of
/// preference), plus telephone-event 101 when `telephone_event`.
pub fn audio_offer(port: u16, codecs: &[(u8, &str)], telephone_event: bool) -> String {
    let mut formats: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut maps: String = codecs
        .iter()
        .map(|(pt, name)| format!("a=rtpmap:{pt} {name}/8000\r\n"))
        .collect();
    if telephone_event {
        formats.push("101".to_owned());
        maps.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    }
    format!(
        "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n{maps}",
        formats.join(" ")
    )
}

/// [`audio_offer`] for PCMU only.
pub fn pcmu_offer(port: u16, telephone_event: bool) -> String {
    audio_offer(port, &[(0, "PCMU")], telephone_event)
}

/// The audio address in an SDP body (`c=` and `m=audio` port).
pub fn sdp_audio_address(sdp: &str) -> Option<SocketAddr> {
    let ip = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .next_back()?
        .trim();
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip.parse().ok()?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_their_index() {
        let a = RtpPeer::packet(3, 0, 7);
        let b = RtpPeer::packet(4, 0, 7);
        assert_eq!(a.len(), HEADER_LEN + PAYLOAD_LEN);
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
        assert_eq!(u16::from_be_bytes([a[2], a[3]]), 1003);
    }

    #[test]
    fn ulaw_round_trips_within_one_quantisation_step() {
        for sample in [-32_000i16, -1000, -100, -1, 0, 1, 100, 1000, 8000, 32_000] {
            let back = ulaw_to_linear(linear_to_ulaw(sample));
            let step = (i32::from(sample).abs() / 16).max(8);
            assert!(
                (i32::from(back) - i32::from(sample)).abs() <= step,
                "{sample} came back as {back}"
            );
        }
        assert_eq!(linear_to_ulaw(0), 0xff);
    }

    #[test]
    fn goertzel_finds_each_tone_of_a_mix_and_not_an_absent_one() {
        let samples: Vec<i16> = tone_payloads(&[500.0, 1900.0], 4000.0, 50)
            .concat()
            .into_iter()
            .map(ulaw_to_linear)
            .collect();
        for present in [500.0, 1900.0] {
            let share = tone_share(&samples, present);
            assert!((0.35..=0.65).contains(&share), "{present} Hz: {share}");
        }
        let absent = tone_share(&samples, 1100.0);
        assert!(absent < 0.02, "1100 Hz: {absent}");
    }

    #[test]
    fn a_key_press_ends_with_three_end_packets() {
        let mut stream = RtpStream::new(1);
        let packets = stream.key_press(101, 5);
        assert_eq!(packets.len(), 8);
        assert_eq!(packets[0][1], 0x80 | 101, "marker on the first");
        assert!(packets[5..].iter().all(|p| p[13] & 0x80 != 0), "end bit");
        assert!(
            packets.iter().all(|p| p[4..8] == packets[0][4..8]),
            "one timestamp"
        );
    }

    #[test]
    fn sdp_address_is_read_from_c_and_m_lines() {
        let sdp = "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20004 RTP/AVP 0\r\n";
        assert_eq!(
            sdp_audio_address(sdp),
            Some("127.0.0.1:20004".parse().expect("literal"))
        );
        assert_eq!(sdp_audio_address("v=0\r\n"), None);
    }
}
