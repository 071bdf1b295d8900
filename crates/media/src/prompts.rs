//! The default prompt set and its pure-Rust fallback.
//!
//! `prompts/generate.sh` makes spoken prompts with espeak-ng + sox when those are available.
//! When they are not, [`write_tone_prompts`] writes a recognisable tone pattern for each
//! prompt (digits are beeps counted out, everything else a short distinct melody), so a
//! fresh machine always has a complete prompt set and the demo plays *something* right.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use crate::audio_clip::PROMPT_SAMPLE_RATE;

/// Every default prompt: file stem and the sentence spoken when espeak-ng is used.
pub const DEFAULT_PROMPTS: &[(&str, &str)] = &[
    ("welcome", "Welcome to Switchboard."),
    (
        "menu",
        "For sales, press 1. For support, press 2. To leave a message, press 3.",
    ),
    (
        "please-hold",
        "Please hold, an agent will be with you shortly.",
    ),
    ("your-position-is", "Your position in the queue is"),
    ("minutes", "minutes"),
    ("goodbye", "Thank you for calling. Goodbye."),
    (
        "closed",
        "We are closed now. Please call again during business hours.",
    ),
    (
        "emergency",
        "We are experiencing a service disruption. Please try again later.",
    ),
    ("invalid-choice", "Sorry, that is not a valid choice."),
    ("estimated-wait", "The estimated waiting time is"),
    ("callback-offer", "To be called back instead, press star."),
    ("callback-registered", "Thank you. We will call you back."),
    (
        "leave-message",
        "Please leave a message after the tone. Press pound when you are done.",
    ),
    (
        "sales-menu",
        "For new orders, press 1. For order status, press 2. To go back, press star.",
    ),
    (
        "support-menu",
        "For technical help, press 1. To leave a message, press 2. To go back, press star.",
    ),
    ("moh", "Music on hold."),
    ("digit-0", "zero"),
    ("digit-1", "one"),
    ("digit-2", "two"),
    ("digit-3", "three"),
    ("digit-4", "four"),
    ("digit-5", "five"),
    ("digit-6", "six"),
    ("digit-7", "seven"),
    ("digit-8", "eight"),
    ("digit-9", "nine"),
];

/// `(name, WAV bytes)` of the built-in English prompts.
macro_rules! built_in_english {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/en/", $name, ".wav")))),*]
    };
}

/// The spoken English default prompts (8 kHz μ-law WAV), made by `prompts/generate.sh` with
/// espeak-ng and sox and built into the binary, so a fresh install talks without any files.
/// A prompt listed in [`DEFAULT_PROMPTS`] but missing here fails the build.
pub const BUILT_IN_ENGLISH: &[(&str, &[u8])] = built_in_english!(
    "welcome",
    "menu",
    "please-hold",
    "your-position-is",
    "minutes",
    "goodbye",
    "closed",
    "emergency",
    "invalid-choice",
    "estimated-wait",
    "callback-offer",
    "callback-registered",
    "leave-message",
    "sales-menu",
    "support-menu",
    "moh",
    "digit-0",
    "digit-1",
    "digit-2",
    "digit-3",
    "digit-4",
    "digit-5",
    "digit-6",
    "digit-7",
    "digit-8",
    "digit-9",
);

/// The built-in English recording of default prompt `name`.
pub fn built_in_prompt(name: &str) -> Option<&'static [u8]> {
    BUILT_IN_ENGLISH
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The tone pattern standing in for a prompt: (frequency Hz, 0 for a pause; length ms).
fn tone_pattern(name: &str) -> Vec<(f32, u32)> {
    if let Some(digit) = name
        .strip_prefix("digit-")
        .and_then(|d| d.parse::<u32>().ok())
    {
        // Count the digit out in beeps (ten for zero), like a rotary dial.
        let beeps = if digit == 0 { 10 } else { digit };
        return (0..beeps).flat_map(|_| [(880.0, 90), (0.0, 60)]).collect();
    }
    let notes: &[(f32, u32)] = match name {
        "welcome" => &[(523.3, 200), (659.3, 200), (784.0, 400)],
        "menu" => &[
            (659.3, 150),
            (659.3, 150),
            (784.0, 300),
            (0.0, 200),
            (523.3, 300),
        ],
        "please-hold" => &[(784.0, 300), (659.3, 300), (523.3, 500)],
        "your-position-is" => &[(587.3, 200), (698.5, 300)],
        "minutes" => &[(698.5, 200), (587.3, 300)],
        "goodbye" => &[(784.0, 250), (659.3, 250), (523.3, 250), (392.0, 500)],
        "closed" => &[(440.0, 500), (0.0, 100), (349.2, 700)],
        "emergency" => &[
            (950.0, 300),
            (1400.0, 300),
            (1800.0, 300),
            (0.0, 200),
            (950.0, 300),
            (1400.0, 300),
            (1800.0, 300),
        ],
        "invalid-choice" => &[(392.0, 200), (0.0, 80), (392.0, 200), (311.1, 400)],
        "estimated-wait" => &[(523.3, 200), (587.3, 200), (523.3, 300)],
        "callback-offer" => &[(659.3, 200), (784.0, 200), (1046.5, 300)],
        "callback-registered" => &[(1046.5, 200), (784.0, 200), (1046.5, 400)],
        "leave-message" => &[(523.3, 250), (440.0, 250), (0.0, 300), (1000.0, 400)],
        "sales-menu" => &[
            (587.3, 150),
            (587.3, 150),
            (880.0, 300),
            (0.0, 200),
            (659.3, 300),
        ],
        "support-menu" => &[
            (698.5, 150),
            (698.5, 150),
            (932.3, 300),
            (0.0, 200),
            (587.3, 300),
        ],
        "moh" => MUSIC_ON_HOLD,
        _ => &[(440.0, 300)],
    };
    notes.to_vec()
}

/// The fallback music on hold: an unhurried 8-second arpeggio (C, F, G, C major) that loops
/// without a jarring seam, since it ends where it began.
const MUSIC_ON_HOLD: &[(f32, u32)] = &[
    (523.3, 500),
    (659.3, 500),
    (784.0, 500),
    (659.3, 500),
    (698.5, 500),
    (880.0, 500),
    (1046.5, 500),
    (880.0, 500),
    (784.0, 500),
    (987.8, 500),
    (1174.7, 500),
    (987.8, 500),
    (1046.5, 500),
    (784.0, 500),
    (659.3, 500),
    (523.3, 300),
];

/// Synthesises the fallback audio for a prompt (8 kHz linear PCM, soft attack and release
/// so notes do not click).
pub fn synthesize_tone_prompt(name: &str) -> Vec<i16> {
    let rate = PROMPT_SAMPLE_RATE as f32;
    let mut samples = Vec::new();
    for (frequency, ms) in tone_pattern(name) {
        let count = (PROMPT_SAMPLE_RATE * ms / 1000) as usize;
        let ramp = (count / 10).max(1) as f32;
        for n in 0..count {
            if frequency == 0.0 {
                samples.push(0);
                continue;
            }
            let envelope = (n as f32 / ramp).min((count - n) as f32 / ramp).min(1.0);
            let value = 8000.0 * envelope * (2.0 * PI * frequency * n as f32 / rate).sin();
            samples.push(value as i16);
        }
    }
    // Trailing 200 ms of silence so back-to-back prompts are distinguishable.
    samples.extend(std::iter::repeat_n(0, (PROMPT_SAMPLE_RATE / 5) as usize));
    samples
}

/// Writes every default prompt as `<dir>/<name>.wav` (8 kHz mono PCM 16-bit) using the tone
/// fallback, creating `dir` if needed. Returns the files written.
pub fn write_tone_prompts(dir: &Path) -> Result<Vec<PathBuf>, hound::Error> {
    std::fs::create_dir_all(dir)?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: PROMPT_SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut written = Vec::new();
    for (name, _) in DEFAULT_PROMPTS {
        let path = dir.join(format!("{name}.wav"));
        let mut writer = hound::WavWriter::create(&path, spec)?;
        for sample in synthesize_tone_prompt(name) {
            writer.write_sample(sample)?;
        }
        writer.finalize()?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_default_prompt_is_built_in_as_speech() {
        for (name, _) in DEFAULT_PROMPTS {
            let bytes =
                super::built_in_prompt(name).unwrap_or_else(|| panic!("{name} is not built in"));
            let clip = AudioClip::from_wav_bytes(bytes)
                .unwrap_or_else(|e| panic!("built-in {name} does not load: {e}"));
            assert!(
                clip.duration() > std::time::Duration::from_millis(200),
                "{name} is too short"
            );
        }
        assert_eq!(BUILT_IN_ENGLISH.len(), DEFAULT_PROMPTS.len());
    }

    use super::*;
    use crate::audio_clip::AudioClip;

    #[test]
    fn every_prompt_is_written_and_loads_as_a_clip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = write_tone_prompts(dir.path()).expect("writable temp dir");
        assert_eq!(files.len(), DEFAULT_PROMPTS.len());
        for path in files {
            let clip = AudioClip::load_wav(&path).expect("prompt is a valid 8 kHz mono WAV");
            assert!(
                clip.duration().as_millis() >= 300,
                "{} too short",
                path.display()
            );
            assert!(
                clip.samples().iter().any(|&s| s.abs() > 4000),
                "{} is silent",
                path.display()
            );
        }
    }

    #[test]
    fn music_on_hold_is_a_long_loop() {
        let moh = synthesize_tone_prompt("moh");
        let seconds = moh.len() as u32 / PROMPT_SAMPLE_RATE;
        assert!((7..=9).contains(&seconds), "{seconds} s");
    }

    #[test]
    fn prompts_are_distinguishable() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in DEFAULT_PROMPTS {
            assert!(
                seen.insert(synthesize_tone_prompt(name)),
                "{name} sounds like another prompt"
            );
        }
    }
}
