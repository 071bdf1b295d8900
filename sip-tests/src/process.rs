//! Child-process chores shared by the Switchboard and SIPp wrappers: signals, bounded waits,
//! reading the tail of a log file.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};

/// How often a bounded wait checks whether a child has exited: there is no portable way to block
/// on a child with a timeout in std, and this only runs in tests.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Sends SIGTERM to `child` via the shell's `kill` (no unsafe code, no extra crate).
pub fn send_sigterm(child: &Child) -> HarnessResult<()> {
    send_signal(child, "TERM")
}

/// Sends the signal named `signal` (`TERM`, `HUP` …) to `child`.
pub fn send_signal(child: &Child, signal: &str) -> HarnessResult<()> {
    let pid = child.id().to_string();
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh", signal, &pid])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| HarnessError::io(format!("running kill -s {signal} {pid}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Unexpected(format!(
            "kill -s {signal} {pid} failed: {status}"
        )))
    }
}

/// Waits until `child` exits or `timeout` passes; `what` names it in the error.
pub fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
    what: &str,
) -> HarnessResult<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| HarnessError::io(format!("waiting for {what}"), e))?
        {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::ExitTimeout {
                what: what.to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(EXIT_CHECK_INTERVAL);
    }
}

/// Stops `child` for good: SIGTERM, up to `grace` to exit, then SIGKILL. Errors are ignored: this
/// runs on teardown, where the process may already be gone.
pub fn stop(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = send_sigterm(child);
    if wait_with_timeout(child, grace, "child").is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The last `max_bytes` of the file at `path` (lossy UTF-8), or a note saying why there is none.
pub fn file_tail(path: &Path, max_bytes: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max_bytes);
            let tail = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned();
            if start > 0 {
                format!("[... {start} bytes cut ...]\n{tail}")
            } else {
                tail
            }
        }
        Err(e) => format!("[{} unreadable: {e}]", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_ends_a_sleeping_child() {
        let mut child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep exists");
        send_sigterm(&child).expect("kill works");
        let status =
            wait_with_timeout(&mut child, Duration::from_secs(30), "sleep").expect("exits");
        assert!(!status.success());
    }

    #[test]
    fn bounded_wait_times_out() {
        let mut child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep exists");
        let error = wait_with_timeout(&mut child, Duration::from_millis(50), "sleep")
            .expect_err("sleep 60 outlives 50 ms");
        assert!(matches!(error, HarnessError::ExitTimeout { .. }));
        stop(&mut child, Duration::from_secs(30));
        assert!(matches!(child.try_wait(), Ok(Some(_))));
    }

    #[test]
    fn tail_cuts_the_front() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("log");
        std::fs::write(&path, "0123456789").expect("write works");
        assert_eq!(file_tail(&path, 100), "0123456789");
        assert_eq!(file_tail(&path, 3), "[... 7 bytes cut ...]\n789");
        assert!(file_tail(&dir.path().join("none"), 3).contains("unreadable"));
    }
}
