//! linphone 5 (`linphonec`) driven headless as an agent phone.
//!
//! linphonec only runs with a terminal, so it is started under `script -qfc … /dev/null`
//! (a pty); it needs a writable `$HOME` with `.local/share/linphone` (without it the core never
//! starts: no listening point, no REGISTER). Audio comes from files (`soundcard use files`,
//! then `play FILE.wav` during a call). Commands are written to its stdin; its console output
//! is one log, its liblinphone debug log (`-d 6 -l`, every SIP message) another.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{HarnessError, HarnessResult};
use crate::logged_process::{wait_for_text, LoggedProcess};
use crate::ports::{free_port, free_port_block};

/// The SIP transport linphone registers and talks over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP (one connection, opened by linphone for its REGISTER).
    Tcp,
}

/// How linphone sends DTMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMethod {
    /// RFC 4733 telephone-events in RTP.
    Rfc4733,
    /// SIP INFO (application/dtmf-relay).
    Info,
}

/// A running linphonec; its process group is killed on drop.
pub struct Linphone {
    process: LoggedProcess,
    debug_log: PathBuf,
    tone: PathBuf,
    /// The SIP port linphone listens on (UDP or TCP).
    pub sip_port: u16,
    /// linphone's audio RTP port.
    pub rtp_port: u16,
}

/// The console prompt: linphonec is ready for commands once it shows it.
const PROMPT: &str = "linphonec>";
/// Length of the test tone linphone plays into a call.
const TONE_SECONDS: u32 = 120;

impl Linphone {
    /// Starts linphonec in `dir` as `user`/`password`, registering at `registrar` over
    /// `transport`, sending DTMF with `dtmf`; returns once its prompt is up and it uses files
    /// for audio (registration is awaited with [`Linphone::wait_registered`]).
    pub fn start(
        dir: &Path,
        user: &str,
        password: &str,
        registrar: SocketAddr,
        transport: Transport,
        dtmf: DtmfMethod,
        timeout: Duration,
    ) -> HarnessResult<Self> {
        let io = |what: &'static str| move |e| HarnessError::io(what, e);
        let home = dir.join("home");
        fs::create_dir_all(home.join(".local/share/linphone"))
            .map_err(io("creating linphone's home"))?;
        let sip_port = free_port()?;
        let rtp_port = free_port_block(4)?;
        let (udp, tcp, name) = match transport {
            Transport::Udp => (sip_port, 0, "udp"),
            Transport::Tcp => (0, sip_port, "tcp"),
        };
        let (info, rfc) = match dtmf {
            DtmfMethod::Rfc4733 => (0, 1),
            DtmfMethod::Info => (1, 0),
        };
        let rc = dir.join("linphonerc");
        fs::write(
            &rc,
            format!(
                "[sip]\nsip_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port=0\nuse_info={info}\n\
                 use_rfc2833={rfc}\ndefault_proxy=0\ninc_timeout=60\n\n\
                 [rtp]\naudio_rtp_port={rtp_port}\nvideo_rtp_port={}\n\n\
                 [sound]\nechocancellation=0\n\n\
                 [proxy_0]\nreg_proxy=<sip:{registrar};transport={name}>\n\
                 reg_identity=sip:{user}@{registrar}\nreg_expires=3600\nreg_sendregister=1\n\n\
                 [auth_info_0]\nusername={user}\npasswd={password}\nrealm=switchboard\n",
                rtp_port + 2
            ),
        )
        .map_err(io("writing the linphonerc"))?;
        let tone = dir.join("tone.wav");
        fs::write(&tone, tone_wav(TONE_SECONDS)).map_err(io("writing the test tone"))?;
        let debug_log = dir.join("liblinphone.log");
        let mut command = Command::new("script");
        command
            .arg("-qfc")
            .arg(format!(
                "linphonec -c {} -d 6 -l {}",
                rc.display(),
                debug_log.display()
            ))
            .arg("/dev/null")
            .env("HOME", &home)
            .current_dir(dir);
        let process = LoggedProcess::spawn("linphonec", command, &dir.join("console.log"), true)?;
        let mut linphone = Linphone {
            process,
            debug_log,
            tone,
            sip_port,
            rtp_port,
        };
        linphone.process.wait_for(PROMPT, timeout)?;
        linphone.command("soundcard use files")?;
        linphone
            .process
            .wait_for("Using wav files instead of soundcard", timeout)?;
        Ok(linphone)
    }

    /// Writes one command line to linphonec.
    pub fn command(&mut self, line: &str) -> HarnessResult<()> {
        self.process.send_line(line)
    }

    /// Waits until liblinphone's debug log shows `needle` `times` times.
    pub fn wait_for_debug(
        &self,
        needle: &str,
        times: usize,
        timeout: Duration,
    ) -> HarnessResult<()> {
        wait_for_text("liblinphone", &self.debug_log, needle, times, timeout)
    }

    /// liblinphone's debug log so far.
    pub fn debug_log(&self) -> String {
        fs::read(&self.debug_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Its console output (what linphonec prints at its prompt).
    pub fn console(&self) -> &LoggedProcess {
        &self.process
    }

    /// Waits until the account is registered.
    pub fn wait_registered(&self, timeout: Duration) -> HarnessResult<()> {
        self.wait_for_debug("to [LinphoneRegistrationOk]", 1, timeout)
    }

    /// Waits for an incoming call and answers it, then plays the test tone into it.
    pub fn answer_incoming(&mut self, timeout: Duration) -> HarnessResult<()> {
        self.wait_for_debug("to LinphoneCallIncomingReceived", 1, timeout)?;
        self.command("answer")?;
        self.wait_for_debug("to LinphoneCallStreamsRunning", 1, timeout)?;
        let play = format!("play {}", self.tone.display());
        self.command(&play)
    }
}

/// A WAV file (8 kHz, mono, 16-bit) with a 440 Hz tone of `seconds`.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let samples = 8000 * seconds;
    let data_len = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 8000.0;
        let sample = (phase.sin() * 8000.0) as i16;
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_a_well_formed_wav() {
        let wav = tone_wav(1);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 16_000);
        assert_eq!(
            u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]),
            16_000
        );
        assert!(wav[44..].chunks(2).any(|s| s != [0, 0]), "not silence");
    }
}
