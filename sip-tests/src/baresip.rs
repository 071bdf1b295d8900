//! baresip 1.0 (libre) driven headless: a config directory in the test's temp dir, a 440 Hz
//! test tone as its microphone, events read from its log.
//!
//! Two roles: an agent phone that registers with Digest and auto-answers
//! ([`Baresip::agent`]), and a caller that dials at start-up with an account that answers
//! the trunk's 407 challenge ([`Baresip::caller`]). A running baresip takes the menu's long
//! commands (`transfer`, `hangup` …) over its `ctrl_tcp` socket ([`Baresip::command`]).

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::logged_process::LoggedProcess;
use crate::ports::{free_port, free_port_block};

/// The default microphone: a 440 Hz tone.
const TONE_AUDIO: &str = "audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n";

/// Loopback: what baresip plays is its microphone (one `aubridge` device for both).
const ECHO_AUDIO: &str = "audio_source aubridge,echo\naudio_player aubridge,echo\n";

/// RTP ports each baresip gets.
const RTP_PORTS: u16 = 20;

/// A running baresip; killed on drop (on a clean quit it un-registers and waits for the
/// registrar).
pub struct Baresip {
    process: LoggedProcess,
    /// Where its `ctrl_tcp` module listens for commands.
    ctrl: SocketAddr,
}

impl Baresip {
    /// baresip as `user` with `password`, registering every 300 s at `registrar` and
    /// answering every call at once.
    pub fn agent(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
    ) -> HarnessResult<Self> {
        let account =
            format!("<sip:{user}@{registrar}>;auth_pass={password};regint=300;answermode=auto\n");
        Self::start(dir, &account, None)
    }

    /// [`Baresip::agent`] that echoes what it hears (its player feeds its microphone through
    /// `aubridge`): whoever talks to it hears their own audio back, after a round trip through
    /// libre's decoder and encoder.
    pub fn echo_agent(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
    ) -> HarnessResult<Self> {
        let account =
            format!("<sip:{user}@{registrar}>;auth_pass={password};regint=300;answermode=auto\n");
        Self::start_configured(dir, &account, None, "module aubridge.so\n", ECHO_AUDIO)
    }

    /// [`Baresip::agent`] over TLS: registers at `registrar` with `;transport=tls`, trusting
    /// only the certificate in `ca`.
    pub fn tls_agent(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        ca: &Path,
    ) -> HarnessResult<Self> {
        let account = format!(
            "<sip:{user}@{registrar};transport=tls>;auth_pass={password};regint=300;answermode=auto\n"
        );
        Self::start_with(
            dir,
            &account,
            None,
            &format!("sip_cafile {}\n", ca.display()),
        )
    }

    /// [`Baresip::tls_agent`] with mandatory SRTP (`mediaenc=srtp-mand`, the `srtp` module):
    /// it answers only RTP/SAVP offers with SDES keys, and sends and expects SRTP. It echoes
    /// what it hears (its player feeds its microphone through `aubridge`), so audio the
    /// caller hears back has been decrypted, decoded, re-encoded and re-encrypted by libre.
    pub fn tls_srtp_echo_agent(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        ca: &Path,
    ) -> HarnessResult<Self> {
        let account = format!(
            "<sip:{user}@{registrar};transport=tls>;auth_pass={password};regint=300;answermode=auto;mediaenc=srtp-mand\n"
        );
        Self::start_configured(
            dir,
            &account,
            None,
            &format!(
                "sip_cafile {}\nmodule srtp.so\nmodule aubridge.so\n",
                ca.display()
            ),
            ECHO_AUDIO,
        )
    }

    /// [`Baresip::caller`] over TLS (trusting only `ca`) with mandatory SRTP
    /// (`mediaenc=srtp-mand`): a trunk that offers RTP/SAVP with SDES keys.
    pub fn tls_srtp_caller(
        dir: &Path,
        user: &str,
        password: &str,
        server: SocketAddr,
        target: &str,
        ca: &Path,
    ) -> HarnessResult<Self> {
        let account = format!(
            "<sip:{user}@{server};transport=tls>;auth_pass={password};regint=0;mediaenc=srtp-mand\n"
        );
        Self::start_with(
            dir,
            &account,
            Some(target),
            &format!("sip_cafile {}\nmodule srtp.so\n", ca.display()),
        )
    }

    /// baresip as `user` with `password` (no registration: a trunk that authenticates each
    /// call), dialling `target` once it is up.
    pub fn caller(
        dir: &Path,
        user: &str,
        password: &str,
        server: SocketAddr,
        target: &str,
    ) -> HarnessResult<Self> {
        let account = format!("<sip:{user}@{server}>;auth_pass={password};regint=0\n");
        Self::start(dir, &account, Some(target))
    }

    fn start(dir: &Path, account: &str, dial: Option<&str>) -> HarnessResult<Self> {
        Self::start_with(dir, account, dial, "")
    }

    /// Starts baresip with `extra_config` lines appended to its config and the default
    /// audio: a 440 Hz tone as microphone.
    fn start_with(
        dir: &Path,
        account: &str,
        dial: Option<&str>,
        extra_config: &str,
    ) -> HarnessResult<Self> {
        let player = format!("audio_player aufile,{}\n", dir.join("rx.wav").display());
        Self::start_configured(
            dir,
            account,
            dial,
            extra_config,
            &(TONE_AUDIO.to_owned() + &player),
        )
    }

    /// Starts baresip with `audio` (source and player lines) and `extra_config` lines.
    fn start_configured(
        dir: &Path,
        account: &str,
        dial: Option<&str>,
        extra_config: &str,
        audio: &str,
    ) -> HarnessResult<Self> {
        let io = |what: &'static str| move |e| HarnessError::io(what, e);
        fs::create_dir_all(dir).map_err(io("creating the baresip dir"))?;
        // baresip also opens SIP over TLS on the next port up: both must be free.
        let sip_port = free_port_block(2)?;
        let ctrl_port = free_port()?;
        let rtp = free_port_block(RTP_PORTS)?;
        fs::write(
            dir.join("config"),
            format!(
                "sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
                 {audio}module_path /usr/lib/baresip/modules\n\
                 module g711.so\nmodule ausine.so\nmodule aufile.so\nmodule ctrl_tcp.so\n\
                 module_tmp uuid.so\nmodule_tmp account.so\nmodule_app contact.so\n\
                 module_app menu.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
                 rtp_ports {rtp}-{}\n{extra_config}",
                rtp + RTP_PORTS - 1
            ),
        )
        .map_err(io("writing the baresip config"))?;
        fs::write(dir.join("accounts"), account).map_err(io("writing the baresip account"))?;
        fs::write(dir.join("contacts"), "").map_err(io("writing baresip contacts"))?;
        let mut command = Command::new("baresip");
        command.arg("-f").arg(dir);
        if let Some(target) = dial {
            command.arg("-e").arg(format!("/dial {target}"));
        }
        let process = LoggedProcess::spawn("baresip", command, &dir.join("baresip.log"), false)?;
        Ok(Baresip {
            process,
            ctrl: SocketAddr::from((Ipv4Addr::LOCALHOST, ctrl_port)),
        })
    }

    /// Everything baresip logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the log shows `needle` (an event), within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        self.process.wait_for(needle, timeout)
    }

    /// A connection to baresip's `ctrl_tcp` socket, for menu commands and events. Waits up
    /// to `timeout` for the control port to open (baresip may still be starting).
    pub fn control(&self, timeout: Duration) -> HarnessResult<BaresipControl> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect_timeout(&self.ctrl, timeout) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() >= deadline => {
                    return Err(HarnessError::io("connecting to baresip's ctrl_tcp", error))
                }
                // Not listening yet: poll until the port opens.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        Ok(BaresipControl {
            stream,
            events: Vec::new(),
            next_token: 0,
        })
    }
}

/// baresip's `ctrl_tcp` protocol: netstrings (`<length>:<json>,`) both ways. A command is
/// `{"command", "params", "token"}`; baresip answers `{"response": true, "ok", "data",
/// "token"}` and, on the same connection, reports every UA event as `{"event": true,
/// "type", "param", …}` (e.g. `CALL_CLOSED` with `Call transfered` once a REFER it sent
/// was reported done by a 2xx sipfrag).
pub struct BaresipControl {
    stream: TcpStream,
    /// Events read while waiting for something else, oldest first.
    events: Vec<serde_json::Value>,
    next_token: u32,
}

impl BaresipControl {
    /// Runs a menu command (`transfer sip:1002@…`, `hangup` …) and returns its output; a
    /// command baresip reports as failed is an error.
    pub fn command(
        &mut self,
        command: &str,
        params: &str,
        timeout: Duration,
    ) -> HarnessResult<String> {
        self.next_token += 1;
        let token = format!("t{}", self.next_token);
        let request =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        self.stream
            .write_all(format!("{}:{request},", request.len()).as_bytes())
            .map_err(|e| HarnessError::io("sending a baresip command", e))?;
        let answer = self.next_matching(timeout, |message| {
            message["response"] == true && message["token"] == token.as_str()
        })?;
        let data = answer["data"].as_str().unwrap_or_default().to_owned();
        if answer["ok"] == true {
            Ok(data)
        } else {
            Err(HarnessError::Unexpected(format!(
                "baresip refused {command} {params}: {data}"
            )))
        }
    }

    /// Waits for an event whose `type` is `kind` (e.g. `CALL_CLOSED`), within `timeout`;
    /// events read earlier count.
    pub fn wait_for_event(
        &mut self,
        kind: &str,
        timeout: Duration,
    ) -> HarnessResult<serde_json::Value> {
        if let Some(index) = self.events.iter().position(|e| e["type"] == kind) {
            return Ok(self.events.remove(index));
        }
        self.next_matching(timeout, |message| {
            message["event"] == true && message["type"] == kind
        })
        .map_err(|e| {
            HarnessError::Unexpected(format!(
                "no baresip event {kind}: {e}; events seen: {:?}",
                self.events
            ))
        })
    }

    /// Reads messages until one satisfies `wanted` (other events are kept).
    fn next_matching(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> HarnessResult<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HarnessError::Unexpected(format!(
                    "baresip's ctrl_tcp sent nothing awaited within {} s",
                    timeout.as_secs()
                )));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| HarnessError::io("setting the ctrl_tcp timeout", e))?;
            let message = read_netstring(&mut self.stream)?;
            let value: serde_json::Value = serde_json::from_slice(&message).map_err(|e| {
                HarnessError::Unexpected(format!(
                    "bad JSON from baresip's ctrl_tcp ({e}): {}",
                    String::from_utf8_lossy(&message)
                ))
            })?;
            if wanted(&value) {
                return Ok(value);
            }
            if value["event"] == true {
                self.events.push(value);
            }
        }
    }
}

/// Reads one netstring (`<length>:<bytes>,`) from `stream`.
fn read_netstring(stream: &mut TcpStream) -> HarnessResult<Vec<u8>> {
    let io = |what: &'static str| move |e| HarnessError::io(what, e);
    let mut length = 0usize;
    loop {
        let mut byte = [0u8];
        stream
            .read_exact(&mut byte)
            .map_err(io("reading baresip's ctrl_tcp answer"))?;
        match byte[0] {
            b':' => break,
            digit @ b'0'..=b'9' => length = length * 10 + usize::from(digit - b'0'),
            other => {
                return Err(HarnessError::Unexpected(format!(
                    "not a netstring from baresip's ctrl_tcp: byte {other:#x}"
                )))
            }
        }
    }
    let mut message = vec![0u8; length + 1];
    stream
        .read_exact(&mut message)
        .map_err(io("reading baresip's ctrl_tcp answer"))?;
    message.pop(); // the trailing ','
    Ok(message)
}
