//! The switchboard child process of one step: started with a config, awaited until it answers
//! OPTIONS, stopped with SIGTERM. Dropping the guard kills it, so no error or panic of the
//! generator ever leaves a switchboard running.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{LoadError, LoadResult};

/// How long Switchboard may take to answer its first OPTIONS.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one OPTIONS waits for its answer before it is sent again.
const OPTIONS_RETRY: Duration = Duration::from_millis(200);

/// A running switchboard; killed on drop unless [`SwitchboardProcess::stop`] ran.
#[derive(Debug)]
pub struct SwitchboardProcess {
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

impl SwitchboardProcess {
    /// Starts `binary --log-level warn run --config CONFIG` with its output in `log`, and
    /// returns once it answers OPTIONS on `sip` with 200.
    pub fn start(binary: &Path, config: &Path, log: &Path, sip: SocketAddr) -> LoadResult<Self> {
        if !binary.is_file() {
            return Err(LoadError::BinaryMissing(binary.to_owned()));
        }
        let log_file = std::fs::File::create(log)
            .map_err(|e| LoadError::io(format!("creating {}", log.display()), e))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| LoadError::io("duplicating the log file handle", e))?;
        let child = Command::new(binary)
            .args(["--log-level", "warn", "run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| LoadError::io(format!("starting {}", binary.display()), e))?;
        let mut process = SwitchboardProcess {
            pid: child.id(),
            child: Some(child),
            log: log.to_owned(),
        };
        process.wait_ready(sip)?;
        Ok(process)
    }

    /// The process id, for /proc.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last `lines` lines of the process's output, for error reports.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends OPTIONS until a 200 comes back: readiness is an answer, not a guess of time.
    fn wait_ready(&mut self, sip: SocketAddr) -> LoadResult<()> {
        let probe = UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| LoadError::io("binding the OPTIONS probe socket", e))?;
        probe
            .set_read_timeout(Some(OPTIONS_RETRY))
            .map_err(|e| LoadError::io("setting the probe timeout", e))?;
        let local = probe
            .local_addr()
            .map_err(|e| LoadError::io("reading the probe address", e))?;
        let options = format!(
            "OPTIONS sip:ping@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-rl-ping;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:ping@127.0.0.1>;tag=ping\r\nTo: <sip:ping@127.0.0.1>\r\n\
             Call-ID: rtp-load-ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(LoadError::NotReady(format!(
                        "exited with {status} while starting:\n{}",
                        self.log_tail(20)
                    )));
                }
            }
            // A send error only means the listener is not bound yet; the next round retries.
            let _ = probe.send_to(options.as_bytes(), sip);
            if let Ok((len, _)) = probe.recv_from(&mut buf) {
                if buf
                    .get(..len)
                    .is_some_and(|b| b.starts_with(b"SIP/2.0 200"))
                {
                    return Ok(());
                }
            }
        }
        Err(LoadError::NotReady(format!(
            "no 200 to OPTIONS within {READY_TIMEOUT:?}:\n{}",
            self.log_tail(20)
        )))
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit; SIGKILL after that.
    pub fn stop(mut self, timeout: Duration) -> LoadResult<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(LoadError::NotReady("already stopped".to_owned()));
        };
        signal(self.pid, libc::SIGTERM);
        // A thread owns the wait so the deadline is a channel timeout rather than a poll loop.
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(timeout) {
            Ok(status) => status,
            Err(_) => {
                eprintln!("switchboard did not exit within {timeout:?} of SIGTERM: killing it");
                // Not reaped yet (the waiter has not returned), so the pid is still our child.
                signal(self.pid, libc::SIGKILL);
                rx.recv()
                    .map_err(|_| LoadError::NotReady("waiter thread vanished".to_owned()))?
            }
        };
        let _ = waiter.join();
        status.map_err(|e| LoadError::io("waiting for switchboard to exit", e))
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child.
    unsafe {
        libc::kill(pid, signal);
    }
}

impl Drop for SwitchboardProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
