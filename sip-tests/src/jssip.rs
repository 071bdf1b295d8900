//! JsSIP (the WebRTC SIP library browsers use) running in Node as an agent phone over SIP over
//! WebSocket: `sip-tests/js/jssip_agent.js` registers and reports each event as a JSON line,
//! which this module collects so a test can wait for one.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{HarnessError, HarnessResult};

/// Where the Node side lives (package.json, the driver script, node_modules).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Installs jssip and ws (pinned in sip-tests/js/package.json) when they are missing.
/// `sip-tests/run-all` does the same before the tests; this covers a single test run.
pub fn ensure_installed() -> HarnessResult<()> {
    let dir = js_dir();
    if dir.join("node_modules/jssip").is_dir() && dir.join("node_modules/ws").is_dir() {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .map_err(|e| HarnessError::io("running npm install for jssip", e))?;
    if !status.success() {
        return Err(HarnessError::Unexpected(format!(
            "npm install in {} failed: {status}",
            dir.display()
        )));
    }
    Ok(())
}

/// One JsSIP user agent.
pub struct JsSipAgent {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

/// How to reach the switch and who to be.
pub struct JsSipAccount<'a> {
    /// `ws://…` or `wss://…`.
    pub url: String,
    /// SIP user (the agent's id in the test configuration).
    pub user: &'a str,
    /// Digest password.
    pub password: &'a str,
    /// Domain of the AOR.
    pub domain: &'a str,
    /// A CA certificate (PEM) to trust for wss.
    pub ca_file: Option<&'a Path>,
    /// Leave incoming calls ringing instead of declining them with 486.
    pub ring_only: bool,
}

impl JsSipAgent {
    /// Starts the agent; its stderr goes to `log`.
    pub fn start(account: &JsSipAccount<'_>, log: &Path) -> HarnessResult<Self> {
        ensure_installed()?;
        let stderr = std::fs::File::create(log)
            .map_err(|e| HarnessError::io(format!("creating {}", log.display()), e))?;
        let mut command = Command::new("node");
        command
            .arg(js_dir().join("jssip_agent.js"))
            .env("WS_URL", &account.url)
            .env("SIP_USER", account.user)
            .env("SIP_PASSWORD", account.password)
            .env("SIP_DOMAIN", account.domain)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if account.ring_only {
            command.env("ON_INVITE", "ring");
        }
        if let Some(ca) = account.ca_file {
            command.env("CA_FILE", ca);
        }
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::io("starting node jssip_agent.js", e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| HarnessError::Unexpected("node has no stdout".into()))?;
        let stdin = child.stdin.take();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "output", "line": line }));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            events,
            seen: Vec::new(),
        })
    }

    /// Waits for the next event named `name` (events before it are kept in [`Self::seen`]).
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> HarnessResult<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if event.get("event").and_then(Value::as_str) == Some(name) {
                        return Ok(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(HarnessError::Unexpected(format!(
                        "JsSIP reported no {name:?} within {} s; events: {:?}",
                        timeout.as_secs(),
                        self.seen
                    )))
                }
            }
        }
    }

    /// Every event received so far.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Asks JsSIP to unregister and close (`ua.stop()`).
    pub fn stop(&mut self) -> HarnessResult<()> {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin
                .write_all(b"stop\n")
                .map_err(|e| HarnessError::io("writing to jssip_agent.js", e))?;
        }
        Ok(())
    }

    /// Kills the Node process: the kernel closes its connection without a WebSocket close
    /// handshake and without an unREGISTER, like a browser tab that crashed.
    pub fn kill(&mut self) -> HarnessResult<()> {
        self.child
            .kill()
            .map_err(|e| HarnessError::io("killing node", e))?;
        self.child
            .wait()
            .map_err(|e| HarnessError::io("waiting for node", e))?;
        Ok(())
    }
}

impl Drop for JsSipAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
