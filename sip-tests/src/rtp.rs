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
    fn sdp_address_is_read_from_c_and_m_lines() {
        let sdp = "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20004 RTP/AVP 0\r\n";
        assert_eq!(
            sdp_audio_address(sdp),
            Some("127.0.0.1:20004".parse().expect("literal"))
        );
        assert_eq!(sdp_audio_address("v=0\r\n"), None);
    }
}
