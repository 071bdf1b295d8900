//! G.711 μ-law and A-law companding (ITU-T G.711), table-driven.
//!
//! Decoding is a 256-entry table. Encoding uses a table indexed by the top 14 (μ-law) or
//! 13 (A-law) bits of the linear sample, which is exactly the precision G.711 keeps, so the
//! table is lossless with respect to the reference algorithm. All tables are built at compile
//! time by `const fn`s that follow the classic Sun Microsystems reference implementation
//! (`g711.c`), the de-facto conformance reference.

const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude μ-law can code before clipping (Sun reference `CLIP`).
const ULAW_CLIP_14: i32 = 8159;

/// Index of the first segment end that `value` does not exceed (8 when above all).
const fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i as i32;
        }
        i += 1;
    }
    8
}

/// Reference μ-law encoder (Sun `linear2ulaw`): G.711 codes the top 14 bits.
const fn ulaw_encode_reference(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let mut pcm = (sample as i32) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > ULAW_CLIP_14 {
        pcm = ULAW_CLIP_14;
    }
    pcm += ULAW_BIAS >> 2;
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    (((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask) as u8
}

/// Reference μ-law decoder.
const fn ulaw_decode_reference(code: u8) -> i16 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = ((code >> 4) & 0x07) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Reference A-law encoder (Sun `linear2alaw`): G.711 codes the top 13 bits.
const fn alaw_encode_reference(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = (sample as i32) >> 3;
    // A-law sends the sign inverted and every other bit flipped (XOR 0x55).
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mantissa = if seg < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> seg) & 0x0F
    };
    (((seg << 4) | mantissa) ^ mask) as u8
}

/// Reference A-law decoder.
const fn alaw_decode_reference(code: u8) -> i16 {
    let code = code ^ 0x55;
    let exponent = ((code & 0x70) >> 4) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_reference(i as u8);
        i += 1;
    }
    table
};

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_reference(i as u8);
        i += 1;
    }
    table
};

/// μ-law keeps 14 bits of precision: index by `sample >> 2`.
const ULAW_ENCODE: [u8; 16384] = {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Reconstruct the smallest 16-bit sample of this bucket (sign-extended 14-bit index).
        let sample = ((i as i32) << 18 >> 16) as i16;
        table[i] = ulaw_encode_reference(sample);
        i += 1;
    }
    table
};

/// A-law keeps 13 bits of precision: index by `sample >> 3`.
const ALAW_ENCODE: [u8; 8192] = {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let sample = ((i as i32) << 19 >> 16) as i16;
        table[i] = alaw_encode_reference(sample);
        i += 1;
    }
    table
};

/// Encodes one 16-bit linear sample to μ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as u16 & 0x3FFF) as usize]
}

/// Decodes one μ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as u16 & 0x1FFF) as usize]
}

/// Decodes one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// The two G.711 laws, as they appear in RTP (static payload types 0 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// μ-law, "PCMU", payload type 0.
    Ulaw,
    /// A-law, "PCMA", payload type 8.
    Alaw,
}

impl G711Law {
    /// Encodes one sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::Ulaw => ulaw_encode(sample),
            G711Law::Alaw => alaw_encode(sample),
        }
    }

    /// Encodes `samples` into `out` (one byte a sample), appending.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            G711Law::Ulaw => out.extend(samples.iter().map(|&s| ulaw_encode(s))),
            G711Law::Alaw => out.extend(samples.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes `payload` into `out` (one sample a byte), appending.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            G711Law::Ulaw => out.extend(payload.iter().map(|&b| ulaw_decode(b))),
            G711Law::Alaw => out.extend(payload.iter().map(|&b| alaw_decode(b))),
        }
    }

    /// The byte that decodes to (near) silence in this law, used to pad short frames.
    pub fn silence(self) -> u8 {
        match self {
            G711Law::Ulaw => 0xFF,
            G711Law::Alaw => 0xD5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // Segment 0 step is 8 with the bias removed: code 0xFE decodes to 8.
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(32767), 0xAA);
        assert_eq!(alaw_encode(-32768), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let ulaw = ulaw_encode(ulaw_decode(code));
            // 0x7F is μ-law "negative zero"; it decodes to 0 which encodes as positive zero.
            if code == 0x7F {
                assert_eq!(ulaw, 0xFF);
            } else {
                assert_eq!(ulaw, code, "μ-law code {code:#04x}");
            }
            assert_eq!(
                alaw_encode(alaw_decode(code)),
                code,
                "A-law code {code:#04x}"
            );
        }
    }

    #[test]
    fn table_matches_reference_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(sample),
                ulaw_encode_reference(sample),
                "{sample}"
            );
            assert_eq!(
                alaw_encode(sample),
                alaw_encode_reference(sample),
                "{sample}"
            );
        }
    }

    proptest! {
        #[test]
        fn companding_error_is_bounded(sample in any::<i16>()) {
            // G.711 keeps ~4 mantissa bits, so the error is below 1/16 of the magnitude
            // (plus the segment-0 step) for both laws.
            let bound = (i32::from(sample).abs() / 16).max(16) + 8;
            let u = i32::from(ulaw_decode(ulaw_encode(sample)));
            let a = i32::from(alaw_decode(alaw_encode(sample)));
            prop_assert!((u - i32::from(sample)).abs() <= bound + 132, "ulaw {} -> {}", sample, u);
            prop_assert!((a - i32::from(sample)).abs() <= bound, "alaw {} -> {}", sample, a);
        }
    }
}
