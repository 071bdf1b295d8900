//! twinkle 1.10 in its command-line mode (`twinkle -c`) as an agent phone.
//!
//! It needs no terminal: commands (`answer`, `hold`, `retrieve`, `bye`) go to its stdin and
//! its console output is the event log. Its profile and system settings live in
//! `$HOME/.twinkle` in the test's temp dir; audio devices are ALSA `null`, which paces no
//! audio (a held-open device gives 1–3 packets), so a test using it turns Switchboard's
//! media timeout off.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::error::{HarnessError, HarnessResult};
use crate::logged_process::LoggedProcess;
use crate::ports::{free_port, free_port_block};

/// A running twinkle; killed on drop.
pub struct Twinkle {
    process: LoggedProcess,
    /// Its SIP port (UDP).
    pub sip_port: u16,
}

impl Twinkle {
    /// Starts twinkle in `dir` as `user`/`password`, registering at `registrar` at start-up.
    pub fn start(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
    ) -> HarnessResult<Self> {
        let io = |what: &'static str| move |e| HarnessError::io(what, e);
        let home = dir.join("home");
        let settings = home.join(".twinkle");
        fs::create_dir_all(&settings).map_err(io("creating twinkle's home"))?;
        let sip_port = free_port()?;
        let rtp_port = free_port_block(4)?;
        fs::write(
            settings.join("agent.cfg"),
            format!(
                "user_name={user}\nuser_domain={registrar}\nuser_display=Agent {user}\n\
                 auth_realm=switchboard\nauth_name={user}\nauth_pass={password}\n\
                 registrar={registrar}\nregister_at_startup=yes\nregistration_time=3600\n"
            ),
        )
        .map_err(io("writing the twinkle profile"))?;
        fs::write(
            settings.join("twinkle.sys"),
            format!(
                "dev_ringtone=alsa:null\ndev_speaker=alsa:null\ndev_mic=alsa:null\n\
                 validate_audio_dev=no\nsip_udp_port={sip_port}\nrtp_port={rtp_port}\n"
            ),
        )
        .map_err(io("writing the twinkle system settings"))?;
        let mut command = Command::new("twinkle");
        command
            .args(["-c", "-f", "agent", "--sip-port"])
            .arg(sip_port.to_string())
            .arg("--rtp-port")
            .arg(rtp_port.to_string())
            .env("HOME", &home)
            .current_dir(dir);
        let process = LoggedProcess::spawn("twinkle", command, &dir.join("twinkle.log"), true)?;
        Ok(Twinkle { process, sip_port })
    }

    /// Writes one CLI command.
    pub fn command(&mut self, line: &str) -> HarnessResult<()> {
        self.process.send_line(line)
    }

    /// Its console output: wait there for events.
    pub fn console(&self) -> &LoggedProcess {
        &self.process
    }
}
