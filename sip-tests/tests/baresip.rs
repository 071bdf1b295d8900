//! Interoperability with an independent SIP stack: baresip (libre) registers as an agent with
//! digest authentication and auto-answers a trunk call placed with SIPp through Switchboard.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_tests::ports::{free_port, free_port_block};
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig};

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
        let sip_port = free_port()?;
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
    let baresip = Baresip::start(
        &switchboard.dir().join("baresip"),
        "1001",
        "secret1001",
        &switchboard,
    )?;
    // Registered through digest auth: the agent is logged in and Ready.
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;

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
