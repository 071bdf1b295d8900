//! `switchboard check-config FILE`: 0 for a good file; exit 2 with `file:line:col: field: message`
//! on stderr for a bad one.

use std::path::Path;
use std::process::{Command, Output};

use sip_tests::config::Endpoints;
use sip_tests::paths::switchboard_binary;
use sip_tests::{HarnessError, HarnessResult, SwitchboardConfig};

fn check_config(file: &Path) -> HarnessResult<Output> {
    let binary = switchboard_binary()?;
    Command::new(&binary)
        .arg("check-config")
        .arg(file)
        .output()
        .map_err(|e| HarnessError::io(format!("running {} check-config", binary.display()), e))
}

fn good_config(dir: &Path) -> String {
    SwitchboardConfig::default().to_toml(&Endpoints {
        sip: "127.0.0.1:5060".parse().expect("literal address"),
        http: "127.0.0.1:8080".parse().expect("literal address"),
        cdr_dir: &dir.join("cdr"),
    })
}

#[test]
fn good_file_passes() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let file = dir.path().join("good.toml");
    std::fs::write(&file, good_config(dir.path())).map_err(|e| HarnessError::io("write", e))?;
    let output = check_config(&file)?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn bad_file_exits_2_naming_file_line_and_field() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let file = dir.path().join("bad.toml");
    // Line 1 is [sip]; the bad value goes on line 2 and an unknown key on line 3.
    let good = good_config(dir.path());
    let body = good
        .strip_prefix("[sip]\n")
        .ok_or_else(|| HarnessError::Unexpected("rendered config starts with [sip]".into()))?;
    let text = format!(
        "[sip]\nring_timeout_s = \"soon\"\nlisten_udpp = 1\n{}",
        body.replace("ring_timeout_s = 20\n", "")
    );
    std::fs::write(&file, text).map_err(|e| HarnessError::io("write", e))?;
    let output = check_config(&file)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let name = file.display().to_string();
    for (line, field) in [(2, "sip.ring_timeout_s"), (3, "sip.listen_udpp")] {
        let located = stderr
            .lines()
            .any(|l| l.starts_with(&format!("{name}:{line}:")) && l.contains(field));
        assert!(
            located,
            "no `{name}:{line}:<col>: {field}: ...` line in:\n{stderr}"
        );
    }
    Ok(())
}
