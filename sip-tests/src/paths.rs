//! Where the harness finds things: the workspace, the scenarios and the switchboard binary.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, HarnessResult};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .map_or_else(|| crate_dir.to_path_buf(), Path::to_path_buf)
}

/// The directory holding the SIPp scenarios.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The full path of scenario `file_name` (e.g. `agent_answer.xml`).
pub fn scenario(file_name: &str) -> PathBuf {
    scenario_dir().join(file_name)
}

/// The switchboard binary: `$SWITCHBOARD_BIN` if set, else `debug/switchboard` under
/// `$CARGO_TARGET_DIR` (relative paths taken from the workspace) or `<workspace>/target`.
pub fn switchboard_binary() -> HarnessResult<PathBuf> {
    let path = binary_path(
        std::env::var_os("SWITCHBOARD_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from),
        &workspace_dir(),
    );
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::BinaryMissing { path })
    }
}

fn binary_path(
    explicit: Option<PathBuf>,
    target_dir: Option<PathBuf>,
    workspace: &Path,
) -> PathBuf {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    let target = match target_dir.filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("debug").join("switchboard")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_binary_wins() {
        let path = binary_path(
            Some(PathBuf::from("/opt/sb")),
            Some(PathBuf::from("/t")),
            Path::new("/w"),
        );
        assert_eq!(path, PathBuf::from("/opt/sb"));
    }

    #[test]
    fn target_dir_is_honoured_and_relative_to_the_workspace() {
        assert_eq!(
            binary_path(None, Some(PathBuf::from("/t")), Path::new("/w")),
            PathBuf::from("/t/debug/switchboard")
        );
        assert_eq!(
            binary_path(None, Some(PathBuf::from("tgt")), Path::new("/w")),
            PathBuf::from("/w/tgt/debug/switchboard")
        );
        assert_eq!(
            binary_path(Some(PathBuf::new()), None, Path::new("/w")),
            PathBuf::from("/w/target/debug/switchboard")
        );
    }

    #[test]
    fn scenarios_ship_with_the_crate() {
        assert!(scenario("agent_answer.xml").is_file());
    }
}
