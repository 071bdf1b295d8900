//! A running `switchboard run` process owned by one test: own ports, own temp dir, own log.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::api::{Api, ADMIN_TOKEN};
use crate::config::{Endpoints, SwitchboardConfig};
use crate::error::{HarnessError, HarnessResult};
use crate::paths::switchboard_binary;
use crate::ports::{claim_block, free_media_block, free_port};

/// RTP ports each instance gets: four per call, so sixteen calls at once.
const RTP_PORTS: u16 = 64;
use crate::process::{file_tail, send_sigterm, stop, wait_with_timeout};
use crate::sip_message::SipMessage;
use crate::sipp::Sipp;
use crate::uac::options_request;
use crate::udp_peer::UdpPeer;

/// How long Switchboard may take to answer its first OPTIONS (a debug build on a loaded machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one readiness probe waits before the next one is sent; a late answer to an earlier
/// probe still counts.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How many times a start is retried when another process grabbed one of the chosen ports.
const START_ATTEMPTS: usize = 3;
/// How much of the log is printed when the guard is dropped.
const LOG_TAIL_BYTES: usize = 96 * 1024;

/// Where a node listens and what it adds to its `[cdr]` section; the default is a lone node on
/// 127.0.0.1 with file CDRs only.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The SIP listening address (UDP and TCP).
    pub host: Ipv4Addr,
    /// Lines added to `[cdr]` (e.g. `postgres_url = "…"`, `node = "a"`).
    pub cdr_lines: Vec<String>,
    /// How many RTP ports the node gets (four per bridged call).
    pub rtp_ports: u16,
    /// The first of them; `None` picks a free block in the range every test shares.
    pub rtp_base: Option<u16>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            host: Ipv4Addr::LOCALHOST,
            cdr_lines: Vec::new(),
            rtp_ports: RTP_PORTS,
            rtp_base: None,
        }
    }
}

impl Placement {
    fn add_cdr_lines(&self, toml: &str) -> String {
        if self.cdr_lines.is_empty() {
            return toml.to_owned();
        }
        toml.replacen(
            "\n[cdr]\n",
            &format!("\n[cdr]\n{}\n", self.cdr_lines.join("\n")),
            1,
        )
    }
}

/// A Switchboard process; stopped (SIGTERM, then SIGKILL) when dropped, and its log printed then,
/// which the test runner shows only for failing tests.
pub struct Switchboard {
    child: Child,
    dir: TempDir,
    sip: SocketAddr,
    tls: Option<SocketAddr>,
    ws: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    http: SocketAddr,
    cdr_dir: PathBuf,
    rtp_ports: (u16, u16),
    config: SwitchboardConfig,
    config_path: PathBuf,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Switchboard {
    /// Writes `config` (with fresh ports) into a temp dir, starts the binary with
    /// `--log-level debug`, and returns once it answers OPTIONS over UDP with 200.
    pub fn start(config: SwitchboardConfig) -> HarnessResult<Self> {
        Self::start_placed(config, &Placement::default())
    }

    /// The same, listening for SIP on `placement.host` and with its extra `[cdr]` lines: one
    /// node of a site behind a front (sip-tests/src/site.rs).
    pub fn start_placed(config: SwitchboardConfig, placement: &Placement) -> HarnessResult<Self> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(config.clone(), placement) {
                Ok(switchboard) => return Ok(switchboard),
                Err(HarnessError::NotReady { reason, log })
                    if log.to_ascii_lowercase().contains("address already in use")
                        || log.to_ascii_lowercase().contains("addrinuse") =>
                {
                    last_error = Some(HarnessError::NotReady { reason, log });
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error.unwrap_or(HarnessError::NoFreePorts { count: 1 }))
    }

    fn start_once(config: SwitchboardConfig, placement: &Placement) -> HarnessResult<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sip-tests-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temp dir", e))?;
        let mut dir = dir;
        dir.disable_cleanup(keep_temp_dirs());
        let sip = SocketAddr::from((placement.host, free_port()?));
        let tls = match config.sip_tls {
            Some(_) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?))),
            None => None,
        };
        let ws = match config.websocket {
            true => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?))),
            false => None,
        };
        let wss = match (config.websocket, &config.sip_tls) {
            (true, Some(_)) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?))),
            _ => None,
        };
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let cdr_dir = dir.path().join("cdr");
        let recordings_dir = dir.path().join("recordings");
        let rtp_count = placement.rtp_ports;
        let rtp = match placement.rtp_base {
            Some(base) => claim_block(base, rtp_count)?,
            None => free_media_block(rtp_count)?,
        };
        let config_path = dir.path().join("switchboard.toml");
        let text = config.to_toml(&Endpoints {
            sip,
            tls,
            ws,
            wss,
            http,
            cdr_dir: &cdr_dir,
            rtp_ports: (rtp, rtp + rtp_count - 1),
            recordings_dir: &recordings_dir,
        });
        let text = placement.add_cdr_lines(&text);
        std::fs::write(&config_path, text)
            .map_err(|e| HarnessError::io(format!("writing {}", config_path.display()), e))?;
        let log_path = dir.path().join("switchboard.log");
        let child = spawn_process(&config_path, &log_path)?;
        let mut switchboard = Switchboard {
            child,
            dir,
            sip,
            tls,
            ws,
            wss,
            http,
            cdr_dir,
            rtp_ports: (rtp, rtp + rtp_count - 1),
            config,
            config_path,
            log_path,
            exit: None,
        };
        switchboard.wait_ready()?;
        Ok(switchboard)
    }

    /// Sends OPTIONS until a 200 comes back; fails early if the process exits.
    fn wait_ready(&mut self) -> HarnessResult<()> {
        let peer = UdpPeer::bind(0, self.sip)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_seen = String::from("no answer to OPTIONS");
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| HarnessError::io("checking the switchboard process", e))?
            {
                self.exit = Some(status);
                return Err(HarnessError::NotReady {
                    reason: format!("the process exited while starting: {status}"),
                    log: self.log(),
                });
            }
            peer.send(&options_request(&peer)?)?;
            match peer.recv(PROBE_TIMEOUT) {
                Ok(Some(answer)) if is_options_ok(&answer) => return Ok(()),
                Ok(Some(other)) => last_seen = other.start_line,
                Ok(None) => {}
                Err(HarnessError::Io { .. }) => {
                    // E.g. ECONNREFUSED from an ICMP port-unreachable: the listener is not up
                    // yet. Give the process a moment rather than spinning.
                    std::thread::sleep(PROBE_TIMEOUT);
                }
                Err(other) => last_seen = other.to_string(),
            }
        }
        Err(HarnessError::NotReady {
            reason: format!(
                "no 200 to OPTIONS within {} s (last: {last_seen})",
                READY_TIMEOUT.as_secs()
            ),
            log: self.log(),
        })
    }

    /// The SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// The SIP over TLS address, when the configuration has a certificate.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The SIP over WebSocket address, when the configuration asks for one.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws
    }

    /// The SIP over secure WebSocket address (WebSocket and a TLS certificate configured).
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss
    }

    /// Sends SIGHUP (certificates are re-read).
    pub fn hangup(&self) -> HarnessResult<()> {
        crate::process::send_signal(&self.child, "HUP")
    }

    /// Waits until the log shows `needle`, within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        crate::logged_process::wait_for_text("switchboard", &self.log_path, needle, 1, timeout)
    }

    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// A client of the HTTP API with the configured admin token.
    pub fn api(&self) -> Api {
        Api::new(self.http, Some(ADMIN_TOKEN))
    }

    /// The CDR directory (`[cdr] dir`).
    pub fn cdr_dir(&self) -> &Path {
        &self.cdr_dir
    }

    /// The process id of the running (or last) process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (a crash: nothing is flushed) and reaps it.
    pub fn kill(&mut self) -> HarnessResult<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        self.child
            .kill()
            .map_err(|e| HarnessError::io("sending SIGKILL to switchboard", e))?;
        let status = self
            .child
            .wait()
            .map_err(|e| HarnessError::io("reaping the killed switchboard", e))?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Starts the process again after it exited (see [`Switchboard::kill`]): same configuration,
    /// ports, CDR directory and log file (appended), and waits until it answers OPTIONS.
    pub fn restart(&mut self) -> HarnessResult<()> {
        if self.is_running() {
            return Err(HarnessError::Unexpected(
                "restart asked while switchboard is still running".into(),
            ));
        }
        self.child = spawn_process(&self.config_path, &self.log_path)?;
        self.exit = None;
        self.wait_ready()
    }

    /// A SIPp client run of `scenario_file` towards this instance, tracing into its temp dir.
    pub fn sipp_client(&self, scenario_file: &str) -> HarnessResult<Sipp> {
        Sipp::client(scenario_file, self.sip, self.dir())
    }

    /// `calls` trunk calls to DID 100, one at a time, each answered by agent `agent`'s phone
    /// (a SIPp UAS running the load bench's `agent_uas.xml`, which answers with SDP) and hung
    /// up right after the answer; returns the trunk side's run.
    pub fn calls_one_at_a_time(
        &self,
        agent: &str,
        calls: u32,
        timeout: std::time::Duration,
    ) -> HarnessResult<crate::sipp::SippRun> {
        let load = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/load");
        let phone_port = crate::ports::free_port()?;
        crate::agent::register_agent(self, agent, phone_port)?;
        let phone = Sipp::server(
            &load.join("agent_uas.xml").display().to_string(),
            phone_port,
            self.dir(),
        )?
        .calls(calls)
        .timeout(timeout)
        .spawn()?;
        let trunk = self
            .sipp_client(&load.join("trunk_uac.xml").display().to_string())?
            .service("100")
            .calls(calls)
            .timeout(timeout)
            .arg("-l")
            .arg("1")
            .arg("-d")
            .arg("0")
            .run();
        drop(phone);
        trunk
    }

    /// The instance's RTP port range (first, last).
    pub fn rtp_ports(&self) -> (u16, u16) {
        self.rtp_ports
    }

    /// Where the instance writes call recordings.
    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// The temp dir of this instance, where SIPp traces go too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SwitchboardConfig {
        &self.config
    }

    /// The path of the rendered configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the process wrote to stdout and stderr so far (tail).
    pub fn log(&self) -> String {
        file_tail(&self.log_path, LOG_TAIL_BYTES)
    }

    /// Sends SIGTERM (graceful drain).
    pub fn terminate(&self) -> HarnessResult<()> {
        send_sigterm(&self.child)
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> HarnessResult<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let status = wait_with_timeout(&mut self.child, timeout, "switchboard")?;
        self.exit = Some(status);
        Ok(status)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        let drain = Duration::from_secs(u64::from(self.config.drain_timeout_s) + 15);
        stop(&mut self.child, drain);
        // Captured by the test runner: shown only when the test failed.
        eprintln!(
            "--- switchboard log ({}) ---\n{}\n--- end of switchboard log ---",
            self.log_path.display(),
            self.log()
        );
        if keep_temp_dirs() {
            eprintln!("kept {}", self.dir.path().display());
        }
    }
}

/// Starts `switchboard run --config <config_path> --log-level debug`, appending its stdout and
/// stderr to `log_path` (a restart keeps the earlier run's log above the new one).
fn spawn_process(config_path: &Path, log_path: &Path) -> HarnessResult<Child> {
    let binary = switchboard_binary()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| HarnessError::io(format!("opening {}", log_path.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| HarnessError::io("duplicating the log file handle", e))?;
    Command::new(&binary)
        .arg("run")
        .arg("--config")
        .arg(config_path)
        .args(["--log-level", "debug"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| HarnessError::io(format!("starting {}", binary.display()), e))
}

/// Whether `SIP_TESTS_KEEP` asks to keep every temp dir (configs, logs, SIPp traces) for a look.
pub fn keep_temp_dirs() -> bool {
    std::env::var_os("SIP_TESTS_KEEP").is_some()
}

/// A 200 answering one of the readiness probes (any of them: a late answer still counts).
fn is_options_ok(message: &SipMessage) -> bool {
    message.status() == Some(200)
        && message
            .cseq()
            .is_some_and(|(_, method)| method == "OPTIONS")
}
