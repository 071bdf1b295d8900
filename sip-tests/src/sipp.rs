//! Runs SIPp scenarios: in the foreground (a trunk placing a call) or in the background (an agent
//! waiting for Switchboard's INVITE), each with its own ports and trace files.

use std::fs::File;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::paths::scenario;
use crate::ports::{free_port, free_port_block, udp_port_is_bound};
use crate::process::{file_tail, stop, wait_with_timeout};
use crate::sip_message::SipMessage;
use crate::trace::{received_requests, received_responses};

/// Default global timeout of one SIPp run: generous, the machine is shared.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra time over the scenario's own timeout before the harness gives up on the process.
const EXIT_MARGIN: Duration = Duration::from_secs(30);
/// How long a background SIPp may take to bind its SIP port.
const BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the harness re-reads /proc (bound port) or the message trace while waiting on SIPp:
/// neither offers a notification, and this only runs in tests.
const CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// SIPp's media port may be followed by up to three more (RTCP, video RTP/RTCP).
const MEDIA_PORTS: u16 = 4;
/// How much of each trace goes into a failure message.
const TRACE_TAIL_BYTES: usize = 12 * 1024;

/// One SIPp invocation, built up and then run.
#[derive(Debug, Clone)]
pub struct Sipp {
    scenario: PathBuf,
    remote: Option<SocketAddr>,
    local_port: u16,
    media_port: u16,
    control_port: u16,
    service: Option<String>,
    calls: u32,
    timeout: Duration,
    vars: Vec<(String, String)>,
    extra_args: Vec<String>,
    trace_dir: PathBuf,
}

/// The outcome of a finished SIPp run.
#[derive(Debug)]
pub struct SippRun {
    /// The scenario file name.
    pub scenario: String,
    /// SIPp's exit status (0 = every call succeeded).
    pub status: ExitStatus,
    /// `-trace_err` output.
    pub error_log: PathBuf,
    /// `-trace_msg` output: every message sent and received.
    pub message_log: PathBuf,
    /// `-trace_screen` output: the final statistics screen.
    pub screen_log: PathBuf,
    /// SIPp's own stdout and stderr.
    pub output_log: PathBuf,
}

/// A SIPp running in the background; killed on drop if still running.
#[derive(Debug)]
pub struct SippProcess {
    child: Child,
    run: Sipp,
}

impl Sipp {
    /// A client (UAC) run of `scenario_file` towards `remote`, traces into `trace_dir`.
    pub fn client(
        scenario_file: &str,
        remote: SocketAddr,
        trace_dir: &Path,
    ) -> HarnessResult<Self> {
        let mut sipp = Self::server(scenario_file, free_port()?, trace_dir)?;
        sipp.remote = Some(remote);
        Ok(sipp)
    }

    /// A server (UAS) run of `scenario_file` bound to 127.0.0.1:`local_port`.
    pub fn server(scenario_file: &str, local_port: u16, trace_dir: &Path) -> HarnessResult<Self> {
        Ok(Sipp {
            scenario: scenario(scenario_file),
            remote: None,
            local_port,
            media_port: free_port_block(MEDIA_PORTS)?,
            control_port: free_port()?,
            service: None,
            calls: 1,
            timeout: DEFAULT_TIMEOUT,
            vars: Vec::new(),
            extra_args: Vec::new(),
            trace_dir: trace_dir.to_path_buf(),
        })
    }

    /// The `[service]` value (`-s`): the DID a trunk dials, the user an agent registers as.
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }

    /// How many calls to run (`-m`).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// Global timeout (`-timeout`, with `-timeout_error` so that running out is a failure).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A scenario variable (`-set name value`, used as `[$name]`).
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Any other SIPp argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// Binds this local SIP port instead of a fresh one (e.g. an agent phone's registered port).
    pub fn bind_port(mut self, port: u16) -> Self {
        self.local_port = port;
        self
    }

    /// The local SIP port.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    fn trace_path(&self, kind: &str) -> PathBuf {
        let stem = self
            .scenario
            .file_stem()
            .map_or_else(|| "sipp".into(), |s| s.to_string_lossy().into_owned());
        self.trace_dir
            .join(format!("{stem}-{}.{kind}.log", self.local_port))
    }

    fn command(&self) -> HarnessResult<Command> {
        let mut command = Command::new("sipp");
        if let Some(remote) = self.remote {
            command.arg(remote.to_string());
        }
        command
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-i", "127.0.0.1"])
            .args(["-p", &self.local_port.to_string()])
            .args(["-mp", &self.media_port.to_string()])
            .args(["-cp", &self.control_port.to_string()])
            .args(["-m", &self.calls.to_string()])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs().max(1))])
            .args(["-timeout_error", "-nostdin", "-aa"])
            .args(["-trace_err", "-error_file"])
            .arg(self.trace_path("errors"))
            .args(["-trace_msg", "-message_file"])
            .arg(self.trace_path("messages"))
            .args(["-trace_screen", "-screen_file"])
            .arg(self.trace_path("screen"));
        if let Some(service) = &self.service {
            command.args(["-s", service]);
        }
        for (name, value) in &self.vars {
            command.args(["-set", name, value]);
        }
        command.args(&self.extra_args);
        let output_path = self.trace_path("output");
        let output = File::create(&output_path)
            .map_err(|e| HarnessError::io(format!("creating {}", output_path.display()), e))?;
        let output_err = output
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating the SIPp output handle", e))?;
        command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_err);
        Ok(command)
    }

    fn spawn_child(&self) -> HarnessResult<Child> {
        self.command()?.spawn().map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                HarnessError::SippMissing
            } else {
                HarnessError::io("starting sipp", e)
            }
        })
    }

    /// Runs to completion in the foreground.
    pub fn run(self) -> HarnessResult<SippRun> {
        let mut child = self.spawn_child()?;
        let status = match wait_with_timeout(&mut child, self.timeout + EXIT_MARGIN, "sipp") {
            Ok(status) => status,
            Err(error) => {
                stop(&mut child, Duration::from_secs(5));
                return Err(error);
            }
        };
        Ok(self.finished(status))
    }

    /// Starts in the background and returns once SIPp has bound its SIP port, so that a message
    /// sent to it from then on is queued in its socket rather than refused.
    pub fn spawn(self) -> HarnessResult<SippProcess> {
        let child = self.spawn_child()?;
        let mut process = SippProcess { child, run: self };
        let deadline = Instant::now() + BIND_TIMEOUT;
        while !udp_port_is_bound(process.run.local_port) {
            if let Some(status) = process
                .child
                .try_wait()
                .map_err(|e| HarnessError::io("checking sipp", e))?
            {
                let run = process.run.finished(status);
                return Err(run.failure());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Unexpected(format!(
                    "sipp did not bind UDP port {} within {} s",
                    process.run.local_port,
                    BIND_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(CHECK_INTERVAL);
        }
        Ok(process)
    }

    fn finished(&self, status: ExitStatus) -> SippRun {
        SippRun {
            scenario: self
                .scenario
                .file_name()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            status,
            error_log: self.trace_path("errors"),
            message_log: self.trace_path("messages"),
            screen_log: self.trace_path("screen"),
            output_log: self.trace_path("output"),
        }
    }
}

impl SippProcess {
    /// The local SIP port it is bound to.
    pub fn local_port(&self) -> u16 {
        self.run.local_port
    }

    /// Everything SIPp traced so far (messages sent and received).
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.run.trace_path("messages")).unwrap_or_default()
    }

    /// Waits until SIPp has received `count` requests with `method` (e.g. the ACK of its 200), so
    /// a test can act once the call reached that point. Fails if SIPp exits first or `timeout`
    /// passes.
    pub fn wait_for_request(
        &mut self,
        method: &str,
        count: usize,
        timeout: Duration,
    ) -> HarnessResult<()> {
        self.wait_for(&format!("{count} received {method}"), timeout, |trace| {
            received_requests(trace, method).len() >= count
        })
    }

    /// Waits until SIPp has received `count` responses with status `code` (e.g. the 180 a queued
    /// call hears). Fails if SIPp exits first or `timeout` passes.
    pub fn wait_for_response(
        &mut self,
        code: u16,
        count: usize,
        timeout: Duration,
    ) -> HarnessResult<()> {
        self.wait_for(&format!("{count} received {code}"), timeout, |trace| {
            received_responses(trace, code).len() >= count
        })
    }

    /// Waits until the message trace satisfies `done`; `what` names the condition in errors.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> HarnessResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.messages()) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| HarnessError::io("checking sipp", e))?
            {
                let run = self.run.finished(status);
                return Err(HarnessError::Unexpected(format!(
                    "sipp ended before its trace showed {what}: {}",
                    run.failure()
                )));
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Unexpected(format!(
                    "sipp trace did not show {what} within {} s; trace so far:\n{}",
                    timeout.as_secs(),
                    file_tail(&self.run.trace_path("messages"), TRACE_TAIL_BYTES)
                )));
            }
            std::thread::sleep(CHECK_INTERVAL);
        }
    }

    /// Waits for SIPp to end by itself (its `-timeout` bounds this).
    pub fn wait(mut self) -> HarnessResult<SippRun> {
        let limit = self.run.timeout + EXIT_MARGIN;
        let status = wait_with_timeout(&mut self.child, limit, "sipp")?;
        Ok(self.run.finished(status))
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(5));
    }
}

impl SippRun {
    /// Whether SIPp exited 0: every call of the scenario succeeded.
    pub fn succeeded(&self) -> bool {
        self.status.success()
    }

    /// `Ok` if the run succeeded, else an error quoting SIPp's error log and traces.
    pub fn ensure_success(&self) -> HarnessResult<()> {
        if self.succeeded() {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// The error describing this run's failure.
    pub fn failure(&self) -> HarnessError {
        HarnessError::SippFailed {
            scenario: self.scenario.clone(),
            code: self.status.code(),
            errors: file_tail(&self.error_log, TRACE_TAIL_BYTES),
            messages: file_tail(&self.message_log, TRACE_TAIL_BYTES),
            // SIPp prints its screens (message counters, last error) to its output as well.
            output: file_tail(&self.output_log, 3072),
        }
    }

    /// (successful, failed) calls from SIPp's final screen (the cumulative column).
    pub fn call_counts(&self) -> (u64, u64) {
        let screen = std::fs::read_to_string(&self.screen_log).unwrap_or_default();
        let cumulative = |label: &str| {
            screen
                .lines()
                .rev()
                .filter(|line| line.trim_start().starts_with(label))
                .find_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (cumulative("Successful call"), cumulative("Failed call"))
    }

    /// The message trace: every message sent and received.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.message_log).unwrap_or_default()
    }

    /// The requests with `method` this SIPp received.
    pub fn received(&self, method: &str) -> Vec<SipMessage> {
        received_requests(&self.messages(), method)
    }

    /// The responses with status `code` this SIPp received.
    pub fn received_responses(&self, code: u16) -> Vec<SipMessage> {
        received_responses(&self.messages(), code)
    }
}
