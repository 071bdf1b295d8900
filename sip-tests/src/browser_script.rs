//! A Playwright script in headless Chromium, stepped line by line from a Rust test: the script
//! prints `STEP <name>` when the test may act and waits for `go`; other lines are passed on.
//! Also the Python that has Playwright, and web password hashes for the accounts it logs in.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{HarnessError, HarnessResult};

/// The Python with Playwright: `$PLAYWRIGHT_PYTHON` (set by sip-tests/run-all), else the venv
/// run-all makes under target/. Missing is a failure that says how to install it.
pub fn playwright_python() -> HarnessResult<PathBuf> {
    let python = std::env::var_os("PLAYWRIGHT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::workspace_dir().join("target/playwright-venv/bin/python"));
    let works = Command::new(&python)
        .args(["-c", "import playwright"])
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        return Err(HarnessError::Unexpected(format!(
            "{} cannot import playwright: run sip-tests/run-all (it creates the venv), or \
             python3 -m venv target/playwright-venv && target/playwright-venv/bin/pip install playwright",
            python.display()
        )));
    }
    Ok(python)
}

/// `switchboard hash-password` of `password`: an argon2id PHC string for `web_password_hash`.
pub fn hash_password(password: &str) -> HarnessResult<String> {
    let mut child = Command::new(crate::paths::switchboard_binary()?)
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

/// A running browser script (sip-tests/tools/*.py). Dropping it kills the script and its
/// Chromium, so a failed test leaves nothing running.
pub struct BrowserScript {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for BrowserScript {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl BrowserScript {
    /// Starts `sip-tests/tools/<script>` with `args` under the Playwright Python.
    pub fn start(script: &str, args: &[String]) -> HarnessResult<BrowserScript> {
        let mut child = Command::new(playwright_python()?)
            .arg(
                crate::paths::workspace_dir()
                    .join("sip-tests/tools")
                    .join(script),
            )
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::io("starting the browser script", e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| HarnessError::Unexpected("no stdout".into()))?;
        Ok(BrowserScript {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Waits for `STEP <name>` (the script waits as long as its own generous timeouts) and
    /// returns the lines printed before it.
    pub fn expect_step(&mut self, name: &str) -> HarnessResult<Vec<String>> {
        let mut before = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.map_err(|e| HarnessError::io("reading the browser script", e))?;
            if line == format!("STEP {name}") {
                return Ok(before);
            }
            eprintln!("browser: {line}");
            before.push(line);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| HarnessError::io("browser script", e))?;
        Err(HarnessError::Unexpected(format!(
            "the browser script ended ({status}) before step {name}: see its error above"
        )))
    }

    /// Lets the script go on past its current step.
    pub fn go(&mut self) -> HarnessResult<()> {
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

    /// Waits for the script to exit, which it must do successfully.
    pub fn finish(&mut self) -> HarnessResult<()> {
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
}
