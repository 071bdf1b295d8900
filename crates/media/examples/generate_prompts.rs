//! Writes the tone-fallback default prompts: `cargo run -p switchboard-media --example generate_prompts -- DIR`.
//! Used by `crates/media/prompts/generate.sh` when espeak-ng/sox are not available.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prompts"));
    match media::prompts::write_tone_prompts(&dir) {
        Ok(files) => {
            println!("wrote {} tone prompts to {}", files.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write prompts to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
