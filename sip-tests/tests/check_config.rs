//! `switchboard check-config FILE`: 0 for a good file; exit 2 with `file:line:col: field: message`
//! on stderr for a bad one.

use std::path::Path;
use std::process::{Command, Output};

use sip_tests::config::{CallerPriority, Endpoints, NumberSpec, QueueSpec};
use sip_tests::paths::switchboard_binary;
use sip_tests::AgentAccount;
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
        rtp_ports: (30000, 30063),
        recordings_dir: &dir.join("recordings"),
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

/// Every optional part the harness can render (overflow queue, caller priority lists, agents
/// without the support skill) is a configuration Switchboard accepts.
#[test]
fn every_harness_feature_renders_a_valid_file() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let file = dir.path().join("rich.toml");
    let config = SwitchboardConfig {
        max_wait_s: Some(5),
        overflow: Some("backup".into()),
        other_queues: vec![QueueSpec {
            max_wait_s: Some(30),
            ..QueueSpec::new("backup", "backup")
        }],
        numbers: vec![NumberSpec {
            priority_header: Some("X-Priority".into()),
            caller_priorities: vec![CallerPriority {
                callers: vec!["2000".into(), "2001".into()],
                priority: 10,
                label: Some("vip".into()),
            }],
            ..NumberSpec::new("200", "support")
        }],
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob")
                .without_support()
                .with_skill("backup", 4),
        ],
        ..SwitchboardConfig::default()
    };
    let text = config.to_toml(&Endpoints {
        sip: "127.0.0.1:5060".parse().expect("literal address"),
        http: "127.0.0.1:8080".parse().expect("literal address"),
        cdr_dir: &dir.path().join("cdr"),
        rtp_ports: (30000, 30063),
        recordings_dir: &dir.path().join("recordings"),
    });
    std::fs::write(&file, &text).map_err(|e| HarnessError::io("write", e))?;
    let output = check_config(&file)?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}\nconfig:\n{text}",
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
