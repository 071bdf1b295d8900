//! Everything `run` refuses at start because of its configuration file, checked in one place
//! that `check-config` and `run` both use, so a file `check-config` passes is one `run` starts
//! with (short of the host changing in between: a port taken, a folder made unwritable).
//!
//! Two stages: the file itself ([`crate::config::load_str`]: syntax, ranges, references, the
//! ACD's rules) and the files it names that `run` reads before serving (the prompt folder).
//! Both report `file:line:column: field: message`.

use std::path::Path;

use crate::config::{self, Config, ConfigErrors};
use crate::prompt_library::PromptLibrary;

/// Reads `path` and checks everything `run` would refuse at start because of it.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigErrors::whole_file(&file, format!("cannot read file: {error}")))?;
    load_str(&file, &text)
}

/// [`load_file`] for `text` already read; `source_name` names it in errors.
pub fn load_str(source_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let config = config::load_str(source_name, text)?;
    // `run` loads every prompt set before it serves; an unreadable folder or a WAV file that
    // is not a usable prompt stops it, so it is a configuration error here too.
    if let Err(error) = PromptLibrary::load(
        config.media.prompts_dir.as_deref(),
        &crate::runtime::prompt_languages(&config),
    ) {
        return Err(config::error_at(
            source_name,
            text,
            &["media", "prompts_dir"],
            format!("{error:#}"),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prompt_folder_is_a_located_configuration_error() {
        let text = "[media]\nprompts_dir = \"/nonexistent/prompts\"\n";
        let errors = load_str("t.toml", text).expect_err("the folder does not exist");
        assert_eq!(
            errors.to_string(),
            "t.toml:2:15: media.prompts_dir: prompts folder /nonexistent/prompts does not exist or is not a folder"
        );
    }

    #[test]
    fn an_unusable_prompt_file_is_a_located_configuration_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("language folder");
        std::fs::write(dir.path().join("en").join("moh.wav"), b"not a wav").expect("write");
        let text = format!("[media]\nprompts_dir = \"{}\"\n", dir.path().display());
        let errors = load_str("t.toml", &text).expect_err("the prompt is not a WAV file");
        let line = errors.to_string();
        assert!(
            line.starts_with("t.toml:2:15: media.prompts_dir: loading prompt ")
                && line.contains("moh.wav"),
            "{line}"
        );
    }

    #[test]
    fn a_file_the_loader_refuses_is_refused_unchanged() {
        let errors = load_str(
            "t.toml",
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nmax_calls = 2\n",
        )
        .expect_err("max_calls 2");
        assert!(errors
            .to_string()
            .starts_with("t.toml:5:13: agent[0].max_calls: "));
    }
}
