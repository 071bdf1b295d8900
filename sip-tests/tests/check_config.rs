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
        tls: None,
        ws: None,
        wss: None,
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
        tls: None,
        ws: None,
        wss: None,
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

/// How `run --config FILE` ended for a file it must refuse before serving.
fn run_refusal(file: &Path) -> HarnessResult<(Option<i32>, String)> {
    let binary = switchboard_binary()?;
    let stderr_path = file.with_extension("run.stderr");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| HarnessError::io("create stderr file", e))?;
    let mut child = Command::new(&binary)
        .arg("run")
        .arg("--config")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| HarnessError::io(format!("running {} run", binary.display()), e))?;
    // A refused file exits at once; one that was accepted would serve until stopped.
    let status = sip_tests::process::wait_with_timeout(
        &mut child,
        std::time::Duration::from_secs(60),
        "switchboard run with a bad file",
    );
    if status.is_err() {
        sip_tests::process::stop(&mut child, std::time::Duration::from_secs(10));
    }
    let status = status?;
    let text = std::fs::read_to_string(&stderr_path)
        .map_err(|e| HarnessError::io("read stderr file", e))?;
    Ok((status.code(), text))
}

/// Every refusal `run` can make at start because of its file: `check-config` reports each one
/// as `file:line:column: field: message` with exit status 2, and `run` exits 2 with the same
/// line (so systemd, with RestartPreventExitStatus=2, does not restart it in a loop).
#[test]
fn check_config_and_run_refuse_the_same_files_with_the_same_located_error() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let good = good_config(dir.path());
    let support = "[[queue]]\nname = \"support\"\n";
    let queue = |name: &str, overflow: &str| {
        format!("\n[[queue]]\nname = \"{name}\"\nskills = {{ support = 1 }}\noverflow = \"{overflow}\"\n")
    };
    // (what, the file, the field the error must name, words its message must contain)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "agent taking two calls",
            format!("{good}\n[[agent]]\nid = \"1009\"\nname = \"Zed\"\npassword = \"p\"\nmax_calls = 2\n"),
            "agent[2].max_calls",
            "an agent takes 1 voice call at a time",
        ),
        (
            "two-queue overflow loop",
            format!("{good}{}{}", queue("a", "b"), queue("b", "a")),
            "queue[1].overflow",
            "overflow chain loops back: a -> b -> a",
        ),
        (
            "three-queue overflow loop",
            format!("{good}{}{}{}", queue("a", "b"), queue("b", "c"), queue("c", "a")),
            "queue[1].overflow",
            "a -> b -> c -> a",
        ),
        (
            "callback key nobody can press",
            good.replace(support, &format!("{support}callback_key = \"*\"\n")),
            "queue[0].callback_key",
            "set answer = \"on-queue\"",
        ),
        (
            "missed-call reason not listed",
            good.replace("missed_call_reason = \"missed\"", "missed_call_reason = \"nap\""),
            "acd.missed_call_reason",
            "not one of not_ready_reasons",
        ),
        (
            "prompt folder missing",
            good.replace("[media]\n", "[media]\nprompts_dir = \"/nonexistent/prompts\"\n"),
            "media.prompts_dir",
            "does not exist",
        ),
        (
            "skill level out of range",
            good.replace("skills = { support = 1 }", "skills = { support = 11 }"),
            "queue[0].skills.support",
            "out of range 1..=10",
        ),
    ];
    for (index, (what, text, field, words)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{index}.toml"));
        std::fs::write(&file, text).map_err(|e| HarnessError::io("write", e))?;
        let name = file.display().to_string();
        let output = check_config(&file)?;
        let checked = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: check-config said:\n{checked}"
        );
        let line = checked
            .lines()
            .find(|l| l.contains(&format!(": {field}: ")))
            .unwrap_or_else(|| panic!("{what}: no error naming {field} in:\n{checked}"));
        let located = line
            .strip_prefix(&format!("{name}:"))
            .and_then(|rest| {
                rest.split(':')
                    .take(2)
                    .map(str::parse::<u32>)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
            })
            .is_some_and(|numbers| numbers.len() == 2);
        assert!(located, "{what}: not file:line:column: {line}");
        assert!(line.contains(words), "{what}: {line}");

        let (code, run_stderr) = run_refusal(&file)?;
        assert_eq!(code, Some(2), "{what}: run said:\n{run_stderr}");
        assert!(
            run_stderr.lines().any(|l| l == line),
            "{what}: run did not print `{line}`:\n{run_stderr}"
        );
    }
    Ok(())
}
