//! The RTP packets the generator sends: 172 bytes (12 header + 160 PCMU), correct sequence
//! numbers and timestamps, and a payload that carries what the receiver needs to measure
//! one-way delay: the send time, the call index and the direction. The rest of the payload
//! is PCMU silence.

/// Bytes of a packet on the wire (RTP header + 20 ms of PCMU).
pub const PACKET_LEN: usize = 172;
/// RTP header length without CSRCs or extensions.
const HEADER_LEN: usize = 12;
/// PCMU samples (and so timestamp units) per 20 ms packet.
pub const SAMPLES_PER_PACKET: u32 = 160;
/// Marks our payloads so a stray packet is not mistaken for a measurement.
const MAGIC: [u8; 4] = *b"RTPL";
/// PCMU encoding of silence.
const PCMU_SILENCE: u8 = 0xFF;

/// Which way a packet travels through Switchboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the carrier, received by the agent phone.
    TrunkToAgent = 0,
    /// Sent by the agent phone, received by the carrier.
    AgentToTrunk = 1,
}

impl Direction {
    /// Both, in table order.
    pub const BOTH: [Direction; 2] = [Direction::TrunkToAgent, Direction::AgentToTrunk];

    /// 0 or 1, for per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Direction::TrunkToAgent => "trunk->agent",
            Direction::AgentToTrunk => "agent->trunk",
        }
    }

    fn from_byte(byte: u8) -> Option<Direction> {
        match byte {
            0 => Some(Direction::TrunkToAgent),
            1 => Some(Direction::AgentToTrunk),
            _ => None,
        }
    }
}

/// What a received packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The call it belongs to.
    pub call: u32,
    /// The way it was sent.
    pub direction: Direction,
    /// Send time in nanoseconds of the generator's monotonic clock.
    pub sent_ns: u64,
    /// RTP sequence number.
    pub sequence: u16,
}

/// Why a received datagram is not one of our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedPacket {
    /// Not 172 bytes.
    #[error("length {0}, expected 172")]
    Length(usize),
    /// Not RTP version 2 with payload type 0 and no CSRC/extension.
    #[error("not a plain RTP/PCMU header")]
    Header,
    /// The payload does not carry our marker.
    #[error("payload is not a probe")]
    Payload,
}

/// A reusable packet buffer for one sender.
#[derive(Debug, Clone)]
pub struct ProbeWriter {
    bytes: [u8; PACKET_LEN],
}

impl Default for ProbeWriter {
    fn default() -> Self {
        let mut bytes = [PCMU_SILENCE; PACKET_LEN];
        bytes[0] = 0x80; // V=2, no padding, no extension, no CSRC
        bytes[1] = 0; // no marker, PT 0 = PCMU
        bytes[HEADER_LEN + 12..HEADER_LEN + 16].copy_from_slice(&MAGIC);
        ProbeWriter { bytes }
    }
}

impl ProbeWriter {
    /// Fills in one packet of stream (`call`, `direction`): packet number `n` of the stream.
    /// `ssrc` identifies the stream, as a real endpoint's would.
    pub fn prepare(&mut self, call: u32, direction: Direction, n: u32, ssrc: u32) -> &mut Self {
        // A per-stream random-looking start, as RFC 3550 asks; wrapping is part of the test.
        let sequence = (ssrc as u16).wrapping_add(n as u16);
        let timestamp = ssrc
            .wrapping_mul(7)
            .wrapping_add(n.wrapping_mul(SAMPLES_PER_PACKET));
        self.bytes[2..4].copy_from_slice(&sequence.to_be_bytes());
        self.bytes[4..8].copy_from_slice(&timestamp.to_be_bytes());
        self.bytes[8..12].copy_from_slice(&ssrc.to_be_bytes());
        self.bytes[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&call.to_be_bytes());
        self.bytes[HEADER_LEN + 16] = direction as u8;
        self
    }

    /// Stamps the send time (taken immediately before sending) and returns the datagram.
    pub fn stamp(&mut self, sent_ns: u64) -> &[u8] {
        self.bytes[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&sent_ns.to_be_bytes());
        &self.bytes
    }
}

/// Reads a received datagram. Anything else than one of our probes is an error, never a panic.
pub fn read(datagram: &[u8]) -> Result<Probe, MalformedPacket> {
    let bytes: &[u8; PACKET_LEN] = datagram
        .try_into()
        .map_err(|_| MalformedPacket::Length(datagram.len()))?;
    if bytes[0] != 0x80 || bytes[1] & 0x7F != 0 {
        return Err(MalformedPacket::Header);
    }
    let payload = &bytes[HEADER_LEN..];
    if payload[12..16] != MAGIC {
        return Err(MalformedPacket::Payload);
    }
    let direction = Direction::from_byte(payload[16]).ok_or(MalformedPacket::Payload)?;
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&payload[..8]);
    let mut call = [0u8; 4];
    call.copy_from_slice(&payload[8..12]);
    Ok(Probe {
        call: u32::from_be_bytes(call),
        direction,
        sent_ns: u64::from_be_bytes(sent),
        sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_reads_back() {
        let mut writer = ProbeWriter::default();
        let datagram = writer
            .prepare(4321, Direction::AgentToTrunk, 3, 0x1000_0005)
            .stamp(987_654_321)
            .to_vec();
        assert_eq!(datagram.len(), PACKET_LEN);
        assert_eq!(&datagram[..2], &[0x80, 0x00]);
        let probe = read(&datagram).expect("our own packet");
        assert_eq!(
            probe,
            Probe {
                call: 4321,
                direction: Direction::AgentToTrunk,
                sent_ns: 987_654_321,
                sequence: 0x0008,
            }
        );
        // Silence after the probe fields, as a PCMU payload.
        assert!(datagram[HEADER_LEN + 17..]
            .iter()
            .all(|&b| b == PCMU_SILENCE));
    }

    #[test]
    fn timestamps_advance_by_one_packet_of_samples() {
        let mut writer = ProbeWriter::default();
        let first = writer
            .prepare(0, Direction::TrunkToAgent, 10, 77)
            .stamp(0)
            .to_vec();
        let second = writer
            .prepare(0, Direction::TrunkToAgent, 11, 77)
            .stamp(0)
            .to_vec();
        let ts = |d: &[u8]| u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
        assert_eq!(ts(&second).wrapping_sub(ts(&first)), SAMPLES_PER_PACKET);
    }

    #[test]
    fn anything_else_is_malformed_not_a_panic() {
        assert_eq!(read(&[]), Err(MalformedPacket::Length(0)));
        assert_eq!(read(&[0x80; 12]), Err(MalformedPacket::Length(12)));
        let mut datagram = ProbeWriter::default()
            .prepare(1, Direction::TrunkToAgent, 0, 1)
            .stamp(1)
            .to_vec();
        datagram[1] = 8; // PCMA
        assert_eq!(read(&datagram), Err(MalformedPacket::Header));
        datagram[1] = 0;
        datagram[HEADER_LEN + 12] = b'X';
        assert_eq!(read(&datagram), Err(MalformedPacket::Payload));
        datagram[HEADER_LEN + 12] = b'R';
        datagram[HEADER_LEN + 16] = 9;
        assert_eq!(read(&datagram), Err(MalformedPacket::Payload));
    }
}
