//! baresip 1.0 (libre) driven headless: a config directory in the test's temp dir, a 440 Hz
//! test tone as its microphone, events read from its log.
//!
//! Two roles: an agent phone that registers with Digest and auto-answers
//! ([`Baresip::agent`]), and a caller that dials at start-up with an account that answers
//! the trunk's 407 challenge ([`Baresip::caller`]).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
        Ok(Baresip { process })
    }

    /// Everything baresip logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the log shows `needle` (an event), within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        self.process.wait_for(needle, timeout)
    }
}
