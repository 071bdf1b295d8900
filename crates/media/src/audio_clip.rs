//! Audio for the player: 8 kHz mono 16-bit linear PCM, loaded from WAV files in PCM 16-bit
//! (read with `hound`) or G.711 μ-law/A-law (format tags 7/6, which `hound` does not read,
//! so their RIFF chunks are walked here and the bytes decoded with [`crate::g711`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::g711::G711Law;

/// The only sample rate prompts may have: G.711 is 8 kHz and Switchboard does not resample.
pub const PROMPT_SAMPLE_RATE: u32 = 8000;

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why a WAV file could not be used as a prompt.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a WAV file, or a damaged one.
    #[error("not a usable WAV file: {0}")]
    Malformed(String),
    /// A WAV we can read but in a format a prompt may not have.
    #[error("prompt must be 8000 Hz mono PCM-16, μ-law or A-law; got {0}")]
    UnsupportedFormat(String),
}

/// A decoded prompt: cheap to clone (shared samples), immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioClip {
    samples: Arc<[i16]>,
}

impl AudioClip {
    /// A clip from 8 kHz linear samples.
    pub fn from_samples(samples: Vec<i16>) -> AudioClip {
        AudioClip {
            samples: samples.into(),
        }
    }

    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Play time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(PROMPT_SAMPLE_RATE))
    }

    /// Loads a WAV file.
    pub fn load_wav(path: &Path) -> Result<AudioClip, ClipError> {
        let bytes = std::fs::read(path).map_err(|source| ClipError::Io {
            path: path.display().to_string(),
            source,
        })?;
        AudioClip::from_wav_bytes(&bytes)
    }

    /// Decodes a WAV file held in memory.
    pub fn from_wav_bytes(bytes: &[u8]) -> Result<AudioClip, ClipError> {
        let format = read_fmt_chunk(bytes)?;
        if format.sample_rate != PROMPT_SAMPLE_RATE || format.channels != 1 {
            return Err(ClipError::UnsupportedFormat(format!(
                "{} Hz, {} channel(s)",
                format.sample_rate, format.channels
            )));
        }
        match (format.tag, format.bits_per_sample) {
            (WAVE_FORMAT_PCM | WAVE_FORMAT_EXTENSIBLE, 16) => read_pcm16(bytes),
            (WAVE_FORMAT_MULAW, 8) => Ok(decode_g711(find_chunk(bytes, b"data")?, G711Law::Ulaw)),
            (WAVE_FORMAT_ALAW, 8) => Ok(decode_g711(find_chunk(bytes, b"data")?, G711Law::Alaw)),
            (tag, bits) => Err(ClipError::UnsupportedFormat(format!(
                "format tag {tag}, {bits} bits"
            ))),
        }
    }
}

fn read_pcm16(bytes: &[u8]) -> Result<AudioClip, ClipError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| ClipError::Malformed(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int {
        return Err(ClipError::UnsupportedFormat(
            "floating-point samples".to_string(),
        ));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(|e| ClipError::Malformed(e.to_string()))?;
    Ok(AudioClip::from_samples(samples))
}

fn decode_g711(data: &[u8], law: G711Law) -> AudioClip {
    let mut samples = Vec::with_capacity(data.len());
    law.decode_into(data, &mut samples);
    AudioClip::from_samples(samples)
}

struct WavFormat {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    bits_per_sample: u16,
}

fn read_fmt_chunk(bytes: &[u8]) -> Result<WavFormat, ClipError> {
    let fmt = find_chunk(bytes, b"fmt ")?;
    let u16_at = |i: usize| fmt.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        fmt.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (u16_at(0), u16_at(2), u32_at(4), u16_at(14)) {
        (Some(tag), Some(channels), Some(sample_rate), Some(bits_per_sample)) => Ok(WavFormat {
            tag,
            channels,
            sample_rate,
            bits_per_sample,
        }),
        _ => Err(ClipError::Malformed(
            "fmt chunk shorter than 16 bytes".to_string(),
        )),
    }
}

/// The body of the first RIFF chunk with this id (a truncated last chunk is cut to what exists).
fn find_chunk<'a>(bytes: &'a [u8], id: &[u8; 4]) -> Result<&'a [u8], ClipError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(ClipError::Malformed("no RIFF/WAVE header".to_string()));
    }
    let mut offset = 12usize;
    while let Some(header) = bytes.get(offset..offset + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let start = offset + 8;
        let end = start.saturating_add(size).min(bytes.len());
        if &header[0..4] == id {
            return Ok(&bytes[start..end]);
        }
        // Chunks are padded to an even length.
        offset = end.saturating_add(size % 2);
    }
    Err(ClipError::Malformed(format!(
        "no `{}` chunk",
        String::from_utf8_lossy(id)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm_wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("in-memory writer");
        for &s in samples {
            writer.write_sample(s).expect("in-memory write");
        }
        writer.finalize().expect("in-memory finalize");
        cursor.into_inner()
    }

    fn g711_wav(tag: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(4 + 8 + 18 + 8 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&18u32.to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn loads_pcm16() {
        let clip =
            AudioClip::from_wav_bytes(&pcm_wav(8000, 1, &[1, -2, 3, 1000])).expect("valid prompt");
        assert_eq!(clip.samples(), &[1, -2, 3, 1000]);
    }

    #[test]
    fn loads_ulaw_and_alaw() {
        let ulaw =
            AudioClip::from_wav_bytes(&g711_wav(7, &[0xFF, 0x80, 0x00])).expect("μ-law prompt");
        assert_eq!(ulaw.samples(), &[0, 32124, -32124]);
        let alaw = AudioClip::from_wav_bytes(&g711_wav(6, &[0xD5, 0xAA])).expect("A-law prompt");
        assert_eq!(alaw.samples(), &[8, 32256]);
        assert_eq!(
            AudioClip::from_samples(vec![0; 8000]).duration(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn refuses_wrong_rates_channels_and_garbage() {
        assert!(matches!(
            AudioClip::from_wav_bytes(&pcm_wav(16000, 1, &[0])),
            Err(ClipError::UnsupportedFormat(_))
        ));
        assert!(matches!(
            AudioClip::from_wav_bytes(&pcm_wav(8000, 2, &[0, 0])),
            Err(ClipError::UnsupportedFormat(_))
        ));
        assert!(matches!(
            AudioClip::from_wav_bytes(b"RIFF\0\0\0\0WAVE"),
            Err(ClipError::Malformed(_))
        ));
        assert!(matches!(
            AudioClip::from_wav_bytes(b"hello"),
            Err(ClipError::Malformed(_))
        ));
        assert!(matches!(
            AudioClip::load_wav(Path::new("/nonexistent/x.wav")),
            Err(ClipError::Io { .. })
        ));
    }

    #[test]
    fn never_panics_on_truncations() {
        let wav = g711_wav(7, &[0xFF; 100]);
        for cut in 0..wav.len() {
            let _ = AudioClip::from_wav_bytes(&wav[..cut]);
        }
        let pcm = pcm_wav(8000, 1, &[5; 50]);
        for cut in 0..pcm.len() {
            let _ = AudioClip::from_wav_bytes(&pcm[..cut]);
        }
    }
}
