//! Interoperability with an independent SIP stack: baresip (libre) registers as an agent with
//! digest authentication and auto-answers a trunk call placed with SIPp through Switchboard, and
//! its audio flows both ways through Switchboard's media relay.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_tests::ports::{free_port, free_port_block};
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);

/// A baresip process, killed on drop (it waits for its registrar on a clean quit).
struct Baresip {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Baresip {
    fn start(
        dir: &Path,
        agent: &str,
        password: &str,
        switchboard: &Switchboard,
    ) -> HarnessResult<Self> {
        let io = |what: &str| {
            let what = what.to_string();
            move |e| HarnessError::io(what, e)
        };
        fs::create_dir_all(dir).map_err(io("creating the baresip dir"))?;
        // baresip also opens SIP over TLS on the next port up: both must be free.
        let sip_port = free_port_block(2)?;
        let ctrl_port = free_port()?;
        let rtp = free_port_block(20)?;
        fs::write(
            dir.join("config"),
            format!(
                "sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
                 audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n\
                 audio_player aufile,{}\nmodule_path /usr/lib/baresip/modules\n\
                 module g711.so\nmodule ausine.so\nmodule aufile.so\nmodule ctrl_tcp.so\n\
                 module_tmp uuid.so\nmodule_tmp account.so\nmodule_app contact.so\n\
                 module_app menu.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
                 rtp_ports {rtp}-{}\n",
                dir.join("rx.wav").display(),
                rtp + 19
            ),
        )
        .map_err(io("writing the baresip config"))?;
        fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{agent}@{addr}>;auth_pass={password};regint=300;answermode=auto\n",
                addr = switchboard.sip_addr()
            ),
        )
        .map_err(io("writing the baresip account"))?;
        fs::write(dir.join("contacts"), "").map_err(io("writing baresip contacts"))?;
        let log = dir.join("baresip.log");
        let out = fs::File::create(&log).map_err(io("creating the baresip log"))?;
        let err = out.try_clone().map_err(io("cloning the baresip log"))?;
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io("starting baresip"))?;
        Ok(Self { child, log })
    }

    /// Baresip as agent 1001, registered through digest auth: logged in and Ready.
    fn start_agent_1001(switchboard: &Switchboard) -> HarnessResult<Self> {
        let baresip = Self::start(
            &switchboard.dir().join("baresip"),
            "1001",
            "secret1001",
            switchboard,
        )?;
        switchboard
            .api()
            .wait_for_agent_state("1001", "ready", WAIT)
            .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;
        Ok(baresip)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log shows `needle` (an event), within `timeout`.
    fn wait_for_log(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::Unexpected(format!(
            "baresip never logged {needle:?}:\n{}",
            self.log()
        )))
    }
}

#[test]
fn baresip_registers_as_an_agent_and_answers_a_trunk_call() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let baresip = Baresip::start_agent_1001(&switchboard)?;

    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("1000")
        .run()?;
    trunk.ensure_success()?;
    baresip.wait_for_log("Call established", WAIT)?;
    baresip.wait_for_log("terminated", WAIT)?;
    Ok(())
}

#[test]
fn baresip_audio_flows_both_ways_through_the_relay() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let baresip = Baresip::start_agent_1001(&switchboard)?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(&sip, "100", &pcmu_offer(rtp.port()?, false), WAIT)?;
    // baresip's 440 Hz tone reaches the trunk from Switchboard's port, not from baresip's.
    let from_agent = rtp.receive(50, WAIT)?;
    assert_eq!(from_agent.len(), 50, "baresip's audio reaches the trunk");
    assert!(from_agent
        .iter()
        .all(|p| p.from == relay && p.payload_type() == Some(0)));
    assert!(
        from_agent
            .iter()
            .any(|p| p.bytes[12..].iter().any(|b| *b != 0xff && *b != 0x7f)),
        "the tone is not silence"
    );
    // And the trunk's audio reaches baresip, from Switchboard's agent-side port. (baresip
    // 1.0's aufile module has no player, so its own log is the witness.)
    rtp.send_stream(relay, 50, 0, 0x5eed_0003)?;
    let needle = "stream: incoming rtp for 'audio' established, receiving from 127.0.0.1:";
    baresip.wait_for_log(needle, WAIT)?;
    let log = baresip.log();
    let source_port: u16 = log
        .split(needle)
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .ok_or_else(|| HarnessError::Unexpected(format!("no RTP source in:\n{log}")))?;
    let (first, last) = switchboard.rtp_ports();
    assert!(
        (first..=last).contains(&source_port),
        "baresip hears the trunk from Switchboard's range {first}-{last}, not from {source_port}"
    );
    call.hang_up(WAIT)?;
    baresip.wait_for_log("terminated", WAIT)?;
    Ok(())
}
