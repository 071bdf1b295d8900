//! The agent desktop and the wallboard in real headless Chromium (Playwright for Python with
//! the system browser, sip-tests/tools/web_desktop.py), against the real binary and real SIP:
//! wrong password, not logged in and wrong role get clear answers; an agent goes not ready,
//! a trunk call waits and shows on the wallboard, the agent goes Ready, the screen pop shows
//! the caller, the agent's SIP phone (SIPp) answers, the page and the wallboard show the call
//! connected, the caller hangs up, the agent files a wrap-up that lands next to the CDR; on the
//! second call the agent consults from the page (an unknown agent refused in words, then agent
//! 1002's SIPp phone rung and answered) and cancels the consult, back with the caller.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use sip_tests::cdr::{read_records, wait_for_records};
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{
    AgentAccount, CallerPriority, HarnessError, HarnessResult, NumberSpec, Switchboard,
    SwitchboardConfig, UdpPeer,
};

const AGENT_PASSWORD: &str = "desk-pass-1001";
const SUPERVISOR_PASSWORD: &str = "wall-pass-sue";
const ADMIN_PASSWORD: &str = "grid-pass-ann";

/// The Python with Playwright: `$PLAYWRIGHT_PYTHON` (set by sip-tests/run-all), else the venv
/// run-all makes under target/. Missing is a failure that says how to install it.
fn playwright_python() -> HarnessResult<std::path::PathBuf> {
    let python = std::env::var_os("PLAYWRIGHT_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            sip_tests::paths::workspace_dir().join("target/playwright-venv/bin/python")
        });
    let works = Command::new(&python)
        .args(["-c", "import playwright"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        return Err(HarnessError::Unexpected(format!(
            "{} cannot import playwright: run sip-tests/run-all (it creates the venv), or \
             python3 -m venv target/playwright-venv && target/playwright-venv/bin/pip install playwright",
            python.display()
        )));
    }
    Ok(python)
}

fn hash_password(password: &str) -> HarnessResult<String> {
    let mut child = Command::new(sip_tests::paths::switchboard_binary()?)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("running switchboard hash-password", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(password.as_bytes())
            .map_err(|e| HarnessError::io("writing the password", e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("switchboard hash-password", e))?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !hash.starts_with("$argon2id$") {
        return Err(HarnessError::Unexpected(format!(
            "hash-password printed {hash:?}"
        )));
    }
    Ok(hash)
}

/// The browser script, stepped line by line.
struct Browser {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for Browser {
    // A failed test must not leave the script and its Chromium running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Browser {
    /// Waits for `STEP <name>` (the script waits as long as its own generous timeouts).
    fn expect_step(&mut self, name: &str) -> HarnessResult<()> {
        for line in self.lines.by_ref() {
            let line = line.map_err(|e| HarnessError::io("reading the browser script", e))?;
            if line == format!("STEP {name}") {
                return Ok(());
            }
            eprintln!("browser: {line}");
        }
        let status = self
            .child
            .wait()
            .map_err(|e| HarnessError::io("browser script", e))?;
        Err(HarnessError::Unexpected(format!(
            "the browser script ended ({status}) before step {name}: see its error above"
        )))
    }

    /// Waits for the script to exit, which it must do successfully.
    fn finish(&mut self) -> HarnessResult<()> {
        let status = self
            .child
            .wait()
            .map_err(|e| HarnessError::io("waiting for the browser script", e))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Unexpected(format!(
                "the browser script ended with {status}"
            )))
        }
    }

    fn go(&mut self) -> HarnessResult<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| HarnessError::Unexpected("browser stdin closed".into()))?;
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| HarnessError::io("stepping the browser script", e))
    }
}

#[test]
fn agent_desktop_and_wallboard_follow_a_call_in_chromium() -> HarnessResult<()> {
    let python = playwright_python()?;
    let agent_hash = hash_password(AGENT_PASSWORD)?;
    let supervisor_hash = hash_password(SUPERVISOR_PASSWORD)?;
    let admin_hash = hash_password(ADMIN_PASSWORD)?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice").with_web_password_hash(&agent_hash),
            // Consulted from the desktop; without the queue's skill, never offered a call.
            AgentAccount::new("1002", "Bob").without_support(),
        ],
        // The caller is on the VIP list: the screen pop shows the label.
        dids: Vec::new(),
        numbers: vec![NumberSpec {
            caller_priorities: vec![CallerPriority {
                callers: vec!["2000".into()],
                priority: 10,
                label: Some("VIP".into()),
            }],
            ..NumberSpec::new("100", "support")
        }],
        extra_toml: format!(
            "\n[[http.user]]\nname = \"sue\"\nrole = \"supervisor\"\nweb_password_hash = \"{supervisor_hash}\"\n\
             \n[[http.user]]\nname = \"ann\"\nrole = \"admin\"\nweb_password_hash = \"{admin_hash}\"\n"
        ),
        ..SwitchboardConfig::default()
    })?;
    // The agent's SIP phone answers both calls of the scenario.
    let port = sip_tests::ports::free_port()?;
    sip_tests::agent::register_agent(&switchboard, "1001", port)?;
    let _phone = sip_tests::Sipp::server("agent_answer.xml", port, switchboard.dir())?
        .service("1001")
        .calls(2)
        .timeout(Duration::from_secs(300))
        .arg("-rtp_echo")
        .spawn()?;
    // Bob's phone answers the consult the desktop places.
    let colleague_port = sip_tests::ports::free_port()?;
    sip_tests::agent::register_agent(&switchboard, "1002", colleague_port)?;
    let _colleague =
        sip_tests::Sipp::server("agent_answer.xml", colleague_port, switchboard.dir())?
            .service("1002")
            .calls(1)
            .timeout(Duration::from_secs(300))
            .arg("-rtp_echo")
            .spawn()?;
    let shots = switchboard.dir().join("screenshots");
    std::fs::create_dir_all(&shots).map_err(|e| HarnessError::io("screenshot dir", e))?;
    let mut child = Command::new(python)
        .arg(sip_tests::paths::workspace_dir().join("sip-tests/tools/web_desktop.py"))
        .arg(format!("http://{}", switchboard.http_addr()))
        .args([
            "1001",
            AGENT_PASSWORD,
            "sue",
            SUPERVISOR_PASSWORD,
            "ann",
            ADMIN_PASSWORD,
        ])
        .arg(&shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("starting the browser script", e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| HarnessError::Unexpected("no stdout".into()))?;
    let mut browser = Browser {
        child,
        lines: BufReader::new(stdout).lines(),
    };

    browser.expect_step("call-me")?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let offer = pcmu_offer(rtp.port()?, false);
    std::thread::scope(|scope| -> HarnessResult<()> {
        // The call waits in the queue until the agent presses Ready in the page.
        let call = scope.spawn(|| place_media_call(&sip, "100", &offer, Duration::from_secs(120)));
        browser.go()?;
        browser.expect_step("hang-up")?;
        let (call, _relay) = call
            .join()
            .map_err(|_| HarnessError::Unexpected("the caller thread panicked".into()))??;
        call.hang_up(Duration::from_secs(30))?;
        browser.go()
    })?;

    // The same caller again, once the first call's CDR is in the daily file the history reads.
    browser.expect_step("call-again")?;
    wait_for_records(
        switchboard.cdr_dir(),
        "the first call's CDR",
        Duration::from_secs(30),
        |records| records.iter().any(|r| r["type"] == "call"),
    )?;
    std::thread::scope(|scope| -> HarnessResult<()> {
        let call = scope.spawn(|| place_media_call(&sip, "100", &offer, Duration::from_secs(120)));
        browser.go()?;
        browser.expect_step("hang-up-again")?;
        let (call, _relay) = call
            .join()
            .map_err(|_| HarnessError::Unexpected("the caller thread panicked".into()))??;
        call.hang_up(Duration::from_secs(30))?;
        browser.go()
    })?;
    browser.expect_step("done")?;
    browser.finish()?;

    // The wrap-up is an amendment next to the CDR, naming the CDR's id.
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "both calls' CDRs",
        Duration::from_secs(30),
        |records| records.iter().filter(|r| r["type"] == "call").count() == 2,
    )?;
    let call = records
        .iter()
        .find(|r| r["type"] == "call")
        .ok_or_else(|| HarnessError::Unexpected("no call record".into()))?;
    let wrap_ups = std::fs::read_to_string(switchboard.cdr_dir().join("wrap-up.jsonl"))
        .map_err(|e| HarnessError::io("reading wrap-up.jsonl", e))?;
    let wrap_up: serde_json::Value = serde_json::from_str(wrap_ups.trim())
        .map_err(|e| HarnessError::Unexpected(format!("wrap-up line: {e}: {wrap_ups}")))?;
    assert_eq!(wrap_up["call_id"], call["id"], "{wrap_up} vs {call}");
    assert_eq!(wrap_up["agent"], "1001");
    assert_eq!(wrap_up["disposition"], "escalated");
    assert_eq!(wrap_up["notes"], "billing dispute, passed to second line");
    assert_eq!(call["agent"], "1001");
    assert!(!read_records(switchboard.cdr_dir())?.is_empty());

    // `switchboard report` joins the wrap-up to the call and counts its code.
    let today = time::OffsetDateTime::now_utc().date();
    let report = Command::new(sip_tests::paths::switchboard_binary()?)
        .arg("report")
        .arg("--from")
        .arg(today.to_string())
        .arg("--to")
        .arg(today.next_day().map_or(String::new(), |d| d.to_string()))
        .arg("--dir")
        .arg(switchboard.cdr_dir())
        .output()
        .map_err(|e| HarnessError::io("switchboard report", e))?;
    let printed = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{printed}");
    let section = printed
        .split("Wrap-up dispositions")
        .nth(1)
        .ok_or_else(|| HarnessError::Unexpected(format!("no wrap-up section in:\n{printed}")))?;
    assert!(
        section
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["escalated", "1"]),
        "{printed}"
    );

    // Keep the screenshots for docs/img when asked to.
    if let Some(dir) = std::env::var_os("WEB_SCREENSHOTS_TO") {
        for (from, to) in [
            ("agent-desktop-history.png", "agent-desktop.png"),
            ("wallboard.png", "wallboard.png"),
        ] {
            std::fs::copy(shots.join(from), std::path::Path::new(&dir).join(to))
                .map_err(|e| HarnessError::io("copying a screenshot", e))?;
        }
    }
    Ok(())
}
