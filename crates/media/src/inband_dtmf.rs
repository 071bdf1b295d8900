//! In-band DTMF detection (Goertzel) on 8 kHz linear PCM, the fallback for trunks that send
//! neither RFC 4733 events nor SIP INFO.
//!
//! Each 102-sample block (12.75 ms) is tested at the eight DTMF frequencies. A key is
//! reported when one row and one column tone dominate (signal-to-rest ratio, twist limit)
//! for two blocks in a row, and not again until the tone stops, so a held key is one press.

use crate::dtmf::DtmfDigit;

const SAMPLE_RATE: f32 = 8000.0;
/// Block length: 102 samples gives ~78 Hz bins, enough to separate the DTMF tones
/// (closest pair 697/770 Hz) while staying well under the 40 ms minimum tone length.
const BLOCK: usize = 102;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Minimum tone power relative to full scale, so line noise is not a key.
const MIN_POWER: f32 = 1.0e5;
/// The winning tone must beat the runner-up in its group by this factor (~6 dB).
const DOMINANCE: f32 = 4.0;
/// Allowed level difference between row and column tone (~8 dB each way).
const MAX_TWIST: f32 = 6.3;
/// Both tones together must carry this share of the block's energy, so speech is not a key.
const MIN_TONE_SHARE: f32 = 0.6;

/// A streaming in-band DTMF detector.
#[derive(Debug, Clone)]
pub struct InbandDtmfDetector {
    coefficients: [f32; 8],
    block: Vec<f32>,
    candidate: Option<char>,
    reported: Option<char>,
}

impl Default for InbandDtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDtmfDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> InbandDtmfDetector {
        let mut coefficients = [0.0; 8];
        for (c, f) in coefficients
            .iter_mut()
            .zip(ROWS.iter().chain(COLUMNS.iter()))
        {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE).cos();
        }
        InbandDtmfDetector {
            coefficients,
            block: Vec::with_capacity(BLOCK),
            candidate: None,
            reported: None,
        }
    }

    /// Feeds samples; returns the keys whose presses started in them.
    pub fn process(&mut self, samples: &[i16]) -> Vec<DtmfDigit> {
        let mut found = Vec::new();
        for &s in samples {
            self.block.push(f32::from(s));
            if self.block.len() == BLOCK {
                let key = self.classify_block();
                self.block.clear();
                // Two consecutive blocks agreeing = at least ~25 ms of a steady tone pair.
                if key.is_some() && key == self.candidate && self.reported != key {
                    if let Some(digit) = key.and_then(DtmfDigit::from_char) {
                        found.push(digit);
                    }
                    self.reported = key;
                }
                if key.is_none() && self.candidate.is_none() {
                    self.reported = None; // two silent blocks: the key was released
                }
                self.candidate = key;
            }
        }
        found
    }

    fn classify_block(&self) -> Option<char> {
        let mut power = [0.0f32; 8];
        for (p, &coefficient) in power.iter_mut().zip(self.coefficients.iter()) {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in &self.block {
                let s0 = x + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            *p = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
        }
        let energy: f32 = self.block.iter().map(|x| x * x).sum();
        let (row, row_power, row_second) = strongest(&power[..4]);
        let (column, column_power, column_second) = strongest(&power[4..]);
        let tone_power_ok = row_power > MIN_POWER && column_power > MIN_POWER;
        let dominant =
            row_power > DOMINANCE * row_second && column_power > DOMINANCE * column_second;
        let twist_ok = row_power < MAX_TWIST * column_power && column_power < MAX_TWIST * row_power;
        // Goertzel power of a pure sine of amplitude A over N samples is (A·N/2)², while its
        // energy is A²·N/2, so the tone share is 2·power/(N·energy).
        let share = 2.0 * (row_power + column_power) / (BLOCK as f32 * energy.max(1.0));
        (tone_power_ok && dominant && twist_ok && share > MIN_TONE_SHARE).then(|| KEYS[row][column])
    }
}

/// Index, value and runner-up value of the largest of four powers.
fn strongest(powers: &[f32]) -> (usize, f32, f32) {
    let mut best = (0, f32::MIN, f32::MIN);
    for (i, &p) in powers.iter().enumerate() {
        if p > best.1 {
            best = (i, p, best.1);
        } else if p > best.2 {
            best.2 = p;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(low: f32, high: f32, ms: usize, amplitude: f32) -> Vec<i16> {
        (0..ms * 8)
            .map(|n| {
                let t = n as f32 / SAMPLE_RATE;
                let v = amplitude
                    * ((2.0 * std::f32::consts::PI * low * t).sin()
                        + (2.0 * std::f32::consts::PI * high * t).sin());
                v as i16
            })
            .collect()
    }

    fn key_tone(key: char, ms: usize) -> Vec<i16> {
        for (r, row) in KEYS.iter().enumerate() {
            for (c, k) in row.iter().enumerate() {
                if *k == key {
                    return tone(ROWS[r], COLUMNS[c], ms, 6000.0);
                }
            }
        }
        Vec::new()
    }

    #[test]
    fn detects_every_key_once() {
        for key in "0123456789*#ABCD".chars() {
            let mut detector = InbandDtmfDetector::new();
            let found = detector.process(&key_tone(key, 100));
            assert_eq!(
                found.iter().map(|d| d.as_char()).collect::<String>(),
                key.to_string()
            );
        }
    }

    #[test]
    fn a_sequence_with_gaps_is_read_in_order() {
        let mut detector = InbandDtmfDetector::new();
        let mut audio = Vec::new();
        for key in "5551#".chars() {
            audio.extend(key_tone(key, 80));
            audio.extend(vec![0i16; 8 * 60]);
        }
        // Feed in 20 ms frames as the relay would.
        let found: String = audio
            .chunks(160)
            .flat_map(|f| detector.process(f))
            .map(|d| d.as_char())
            .collect();
        assert_eq!(found, "5551#");
    }

    #[test]
    fn silence_single_tones_and_noise_are_not_keys() {
        let mut detector = InbandDtmfDetector::new();
        assert!(detector.process(&[0i16; 8000]).is_empty());
        let single: Vec<i16> = (0..8000)
            .map(|n| {
                (8000.0 * (2.0 * std::f32::consts::PI * 770.0 * n as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(detector.process(&single).is_empty());
        // Deterministic pseudo-noise (xorshift).
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<i16> = (0..8000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 16) as i16 / 4
            })
            .collect();
        assert!(detector.process(&noise).is_empty());
        // 440 + 480 Hz ring-back tone is not DTMF.
        assert!(detector
            .process(&tone(440.0, 480.0, 1000, 6000.0))
            .is_empty());
    }
}
