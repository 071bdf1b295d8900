//! The prompt sets, loaded once at start: `<prompts_dir>/<language>/<name>.wav`.
//!
//! Files are 8 kHz mono WAV (PCM 16-bit, μ-law or A-law). A broken file stops the start with
//! its path, rather than leaving a caller in silence later. Lookups fall back from the
//! requested language to English and then, for the default prompts (`media::prompts`), to the
//! spoken English recordings built into the binary, so a fresh install or a half-translated
//! set still talks.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use media::prompts::{built_in_prompt, DEFAULT_PROMPTS};
use media::AudioClip;

use crate::ivr::PromptRef;

/// The language every lookup falls back to.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Every prompt available to call control, by language and name.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    /// language -> prompt name -> clip, from the prompt folder.
    sets: HashMap<String, HashMap<String, Arc<AudioClip>>>,
    /// The built-in spoken English default prompts, the last fallback of every language.
    built_in: HashMap<String, Arc<AudioClip>>,
}

impl PromptLibrary {
    /// Loads `<dir>/<language>/*.wav` for every language in `languages` (and always `en`).
    ///
    /// With `dir = None` only the built-in English prompts exist. A missing language folder, or
    /// default prompts missing from one, are logged (one warning per language) and played from
    /// the fallbacks. An unreadable `dir` or a WAV file that is not a usable prompt is an error.
    pub fn load(dir: Option<&Path>, languages: &[String]) -> anyhow::Result<PromptLibrary> {
        let mut built_in = HashMap::new();
        for (name, _) in DEFAULT_PROMPTS {
            let bytes = built_in_prompt(name)
                .with_context(|| format!("built-in prompt {name} is missing"))?;
            let clip = AudioClip::from_wav_bytes(bytes)
                .with_context(|| format!("built-in prompt {name}"))?;
            built_in.insert((*name).to_owned(), Arc::new(clip));
        }
        let mut library = PromptLibrary {
            sets: HashMap::new(),
            built_in,
        };
        let languages: BTreeSet<&str> = languages
            .iter()
            .map(String::as_str)
            .chain([DEFAULT_LANGUAGE])
            .collect();
        let Some(dir) = dir else {
            for language in languages.iter().filter(|l| **l != DEFAULT_LANGUAGE) {
                tracing::warn!(
                    language,
                    "no media.prompts_dir: playing the built-in English prompts"
                );
            }
            return Ok(library);
        };
        if !dir.is_dir() {
            anyhow::bail!(
                "prompts folder {} does not exist or is not a folder",
                dir.display()
            );
        }
        for language in languages {
            let folder = dir.join(language);
            let set = if folder.is_dir() {
                load_folder(&folder)?
            } else {
                HashMap::new()
            };
            let missing: Vec<&str> = DEFAULT_PROMPTS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| !set.contains_key(*name))
                .collect();
            if set.is_empty() {
                tracing::warn!(
                    language,
                    folder = %folder.display(),
                    "no prompts for this language: playing English or built-in prompts"
                );
            } else if !missing.is_empty() {
                tracing::warn!(
                    language,
                    folder = %folder.display(),
                    missing = %missing.join(", "),
                    "default prompts missing: playing English or built-in versions"
                );
            }
            library.sets.insert(language.to_owned(), set);
        }
        Ok(library)
    }

    /// The clip for `name` in `language`, else in English, else the built-in English recording
    /// of a default prompt; `None` for a custom prompt that exists nowhere.
    pub fn get(&self, language: &str, name: &str) -> Option<Arc<AudioClip>> {
        [language, DEFAULT_LANGUAGE]
            .iter()
            .find_map(|language| self.sets.get(*language)?.get(name))
            .or_else(|| self.built_in.get(name))
            .cloned()
    }

    /// The clips for an IVR's prompts, in order; prompts that exist nowhere are skipped
    /// (config validation cannot check files, so a typo plays nothing instead of failing the call).
    pub fn resolve(&self, prompts: &[PromptRef]) -> Vec<Arc<AudioClip>> {
        prompts
            .iter()
            .filter_map(|prompt| self.get(&prompt.language, &prompt.name))
            .collect()
    }

    /// Whether `name` can be played in `language` (including through the fallbacks).
    pub fn contains(&self, language: &str, name: &str) -> bool {
        self.get(language, name).is_some()
    }

    /// "Your position in the queue is <digits>", then, with a wait estimate, "the estimated
    /// waiting time is <digits> minutes". Numbers are read digit by digit.
    pub fn position_announcement(
        &self,
        language: &str,
        position: u32,
        wait_minutes: Option<u32>,
    ) -> Vec<Arc<AudioClip>> {
        let mut names = vec!["your-position-is".to_owned()];
        names.extend(digit_prompts(position));
        if let Some(minutes) = wait_minutes {
            names.push("estimated-wait".to_owned());
            names.extend(digit_prompts(minutes));
            names.push("minutes".to_owned());
        }
        names
            .iter()
            .filter_map(|name| self.get(language, name))
            .collect()
    }
}

/// `digit-N` prompt names reading `number` out digit by digit.
fn digit_prompts(number: u32) -> Vec<String> {
    number
        .to_string()
        .chars()
        .map(|digit| format!("digit-{digit}"))
        .collect()
}

/// Every `*.wav` in `folder`, by file stem.
fn load_folder(folder: &Path) -> anyhow::Result<HashMap<String, Arc<AudioClip>>> {
    let mut set = HashMap::new();
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("reading prompts folder {}", folder.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading prompts folder {}", folder.display()))?
            .path();
        let is_wav = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"));
        if !is_wav {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            tracing::warn!(file = %path.display(), "skipping a prompt whose name is not UTF-8");
            continue;
        };
        let clip = AudioClip::load_wav(&path)
            .with_context(|| format!("loading prompt {}", path.display()))?;
        set.insert(name.to_owned(), Arc::new(clip));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 8 kHz mono PCM-16 WAV file.
    fn wav(samples: &[i16]) -> Vec<u8> {
        let data_len = u32::try_from(samples.len() * 2).expect("test clip is small");
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
        out.extend_from_slice(&2u16.to_le_bytes()); // block align
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for sample in samples {
            out.extend_from_slice(&sample.to_le_bytes());
        }
        out
    }

    fn languages(list: &[&str]) -> Vec<String> {
        list.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn real_files_win_and_the_rest_falls_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("writable temp dir");
        std::fs::create_dir(dir.path().join("zh")).expect("writable temp dir");
        std::fs::write(dir.path().join("en/welcome.wav"), wav(&[1, 2, 3])).expect("write");
        std::fs::write(dir.path().join("en/promo.wav"), wav(&[4, 5])).expect("write");
        std::fs::write(dir.path().join("zh/welcome.wav"), wav(&[7])).expect("write");
        std::fs::write(dir.path().join("zh/README.txt"), "not a prompt").expect("write");
        let library =
            PromptLibrary::load(Some(dir.path()), &languages(&["zh", "fr"])).expect("loads");

        let samples = |language: &str, name: &str| {
            library
                .get(language, name)
                .map(|clip| clip.samples().to_vec())
        };
        assert_eq!(samples("en", "welcome"), Some(vec![1, 2, 3]));
        assert_eq!(samples("zh", "welcome"), Some(vec![7]));
        // No French folder: English first, then the built-in recordings.
        assert_eq!(samples("fr", "welcome"), Some(vec![1, 2, 3]));
        assert_eq!(
            samples("zh", "promo"),
            Some(vec![4, 5]),
            "custom prompt via en"
        );
        assert_eq!(
            samples("zh", "menu"),
            Some(built_in_samples("menu")),
            "default prompt missing everywhere: the built-in recording"
        );
        assert_eq!(samples("zh", "no-such-prompt"), None);
        assert!(!library.contains("en", "no-such-prompt"));
        let resolved = library.resolve(&[
            PromptRef {
                language: "zh".into(),
                name: "welcome".into(),
            },
            PromptRef {
                language: "zh".into(),
                name: "typo".into(),
            },
            PromptRef {
                language: "en".into(),
                name: "welcome".into(),
            },
        ]);
        assert_eq!(resolved.len(), 2, "the missing prompt is skipped");
        assert_eq!(resolved[0].samples(), &[7]);
    }

    fn built_in_samples(name: &str) -> Vec<i16> {
        let bytes = media::prompts::built_in_prompt(name).expect("built in");
        AudioClip::from_wav_bytes(bytes)
            .expect("built-in prompts load")
            .samples()
            .to_vec()
    }

    #[test]
    fn without_a_folder_every_default_prompt_is_the_built_in_recording() {
        let library = PromptLibrary::load(None, &[]).expect("built-in prompts always load");
        for (name, _) in DEFAULT_PROMPTS {
            let clip = library.get("de", name).expect("default prompt exists");
            assert_eq!(clip.samples(), built_in_samples(name).as_slice());
        }
        assert!(library.get("en", "custom").is_none());
    }

    #[test]
    fn broken_files_and_missing_folders_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("writable temp dir");
        std::fs::write(dir.path().join("en/menu.wav"), b"not a wav").expect("write");
        let error = PromptLibrary::load(Some(dir.path()), &[]).expect_err("broken WAV");
        assert!(format!("{error:#}").contains("menu.wav"), "{error:#}");
        let missing = dir.path().join("nope");
        let error = PromptLibrary::load(Some(&missing), &[]).expect_err("no such folder");
        assert!(error.to_string().contains("does not exist"), "{error}");
    }

    #[test]
    fn position_announcements_read_numbers_digit_by_digit() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("writable temp dir");
        std::fs::write(dir.path().join("en/digit-1.wav"), wav(&[1001])).expect("write");
        let library = PromptLibrary::load(Some(dir.path()), &[]).expect("loads");
        let expected = |names: &[&str]| -> Vec<Vec<i16>> {
            names
                .iter()
                .map(|name| library.get("en", name).expect("default").samples().to_vec())
                .collect()
        };
        let clips = |position, wait| -> Vec<Vec<i16>> {
            library
                .position_announcement("en", position, wait)
                .iter()
                .map(|clip| clip.samples().to_vec())
                .collect()
        };
        assert_eq!(clips(3, None), expected(&["your-position-is", "digit-3"]));
        assert_eq!(
            clips(12, Some(105)),
            expected(&[
                "your-position-is",
                "digit-1",
                "digit-2",
                "estimated-wait",
                "digit-1",
                "digit-0",
                "digit-5",
                "minutes"
            ])
        );
        assert_eq!(
            clips(12, None)[1],
            vec![1001],
            "the real digit-1 file is used"
        );
        assert_eq!(clips(0, Some(0)).len(), 5);
    }
}
