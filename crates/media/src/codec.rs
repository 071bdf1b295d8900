//! The audio codecs Switchboard terminates and relays: G.711 μ-law (PCMU) and A-law (PCMA).

use crate::g711::G711Law;
use crate::sdp::RtpMap;

/// RTP clock rate of every supported codec (and of telephone-event), in Hz.
pub const CLOCK_RATE: u32 = 8000;

/// Samples in one 20 ms packet at 8 kHz, the default ptime.
pub const SAMPLES_PER_20MS: usize = 160;

/// A supported audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// Both codecs, in Switchboard's default preference.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The SDP encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The G.711 law this codec uses.
    pub fn law(self) -> G711Law {
        match self {
            Codec::Pcmu => G711Law::Ulaw,
            Codec::Pcma => G711Law::Alaw,
        }
    }

    /// The codec a static payload type stands for, if supported.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec an `a=rtpmap` names, if supported (8 kHz, mono).
    pub fn from_rtpmap(map: &RtpMap) -> Option<Codec> {
        if map.clock_rate != CLOCK_RATE || map.channels.is_some_and(|c| c != 1) {
            return None;
        }
        if map.encoding.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if map.encoding.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtpmap_mapping_is_case_insensitive_and_checks_rate() {
        let map = |enc: &str, rate, channels| RtpMap {
            payload_type: 96,
            encoding: enc.into(),
            clock_rate: rate,
            channels,
        };
        assert_eq!(
            Codec::from_rtpmap(&map("pcmu", 8000, None)),
            Some(Codec::Pcmu)
        );
        assert_eq!(
            Codec::from_rtpmap(&map("PCMA", 8000, Some(1))),
            Some(Codec::Pcma)
        );
        assert_eq!(Codec::from_rtpmap(&map("PCMA", 16000, None)), None);
        assert_eq!(Codec::from_rtpmap(&map("PCMU", 8000, Some(2))), None);
        assert_eq!(Codec::from_rtpmap(&map("G729", 8000, None)), None);
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::Pcma.static_payload_type(), 8);
    }
}
