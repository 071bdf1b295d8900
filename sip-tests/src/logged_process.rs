//! A real client (baresip, linphonec, twinkle, Kamailio) running in the background for one test:
//! its stdout and stderr go to a log file in the test's temp dir, the test waits until the log
//! shows an event, and the process is killed when the guard is dropped.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::process::file_tail;

/// How often the log is read again while waiting for an event: the clients write their logs
/// themselves, there is nothing to block on.
const LOG_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// How much of the log a failure message shows.
const LOG_TAIL_BYTES: usize = 24 * 1024;

/// A background process with its log; killed (SIGKILL) on drop, since the clients wait for
/// their registrar on a clean quit.
pub struct LoggedProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl LoggedProcess {
    /// Starts `command` with its output appended to `log`; `name` names it in errors. With
    /// `keep_stdin`, the test can write commands to it ([`LoggedProcess::send_line`]).
    pub fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        keep_stdin: bool,
    ) -> HarnessResult<Self> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| HarnessError::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating a log file handle", e))?;
        // Its own process group, so the wrapper (`script`) and the client under it are killed
        // together.
        command
            .process_group(0)
            .stdout(out)
            .stderr(err)
            .stdin(if keep_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {name}"), e))?;
        let stdin = child.stdin.take();
        Ok(LoggedProcess {
            name: name.to_owned(),
            child,
            stdin,
            log: log.to_path_buf(),
        })
    }

    /// Everything logged so far (lossy UTF-8, terminal escapes and carriage returns kept).
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// How many times `needle` appears in the log.
    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits until the log shows `needle` at least `times` times, within `timeout`.
    pub fn wait_for_count(
        &self,
        needle: &str,
        times: usize,
        timeout: Duration,
    ) -> HarnessResult<()> {
        wait_for_text(&self.name, &self.log, needle, times, timeout)
    }

    /// Waits until the log shows `needle`, within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        self.wait_for_count(needle, 1, timeout)
    }

    /// Writes `line` and a newline to the process's stdin.
    pub fn send_line(&mut self, line: &str) -> HarnessResult<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            HarnessError::Unexpected(format!("{} was started without a stdin pipe", self.name))
        })?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| HarnessError::io(format!("writing {line:?} to {}", self.name), e))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// An error naming the process, with `what` and the end of its log.
    pub fn failure(&self, what: &str) -> HarnessError {
        HarnessError::Unexpected(format!(
            "{}: {what}\n--- {} log ---\n{}",
            self.name,
            self.name,
            file_tail(&self.log, LOG_TAIL_BYTES)
        ))
    }
}

/// Waits until the file at `path` (a log `name` writes) shows `needle` at least `times` times,
/// within `timeout`.
pub fn wait_for_text(
    name: &str,
    path: &Path,
    needle: &str,
    times: usize,
    timeout: Duration,
) -> HarnessResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = fs::read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).matches(needle).count())
            .unwrap_or(0);
        if count >= times {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Unexpected(format!(
                "{name} never logged {needle:?} {times} time(s) within {} s (seen {count}):\n{}",
                timeout.as_secs(),
                file_tail(path, LOG_TAIL_BYTES)
            )));
        }
        std::thread::sleep(LOG_CHECK_INTERVAL);
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shown by the test runner only for failing tests.
        eprintln!(
            "--- {} log ({}) ---\n{}\n--- end of {} log ---",
            self.name,
            self.log.display(),
            file_tail(&self.log, LOG_TAIL_BYTES),
            self.name
        );
    }
}
