//! twinkle 1.10 (`twinkle -c`, headless, no terminal) as agent 1001: it registers with
//! Digest, answers a trunk call placed from Rust, holds and retrieves it, and hangs up.
//! Switchboard's media timeout stays off: twinkle on ALSA null sends almost no audio.

use std::time::Duration;

use sip_tests::rtp::pcmu_offer;
use sip_tests::twinkle::Twinkle;
use sip_tests::uac::place_call_with_sdp;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn twinkle_registers_answers_holds_retrieves_and_hangs_up() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        media_timeout_s: 0,
        ..SwitchboardConfig::default()
    })?;
    let mut twinkle = Twinkle::start(
        &switchboard.dir().join("twinkle"),
        "1001",
        "secret1001",
        switchboard.sip_addr(),
    )?;
    twinkle.console().wait_for("registration succeeded", WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;

    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let call = std::thread::scope(|scope| {
        let call = scope
            .spawn(|| place_call_with_sdp(&sip, "100", "2000", &pcmu_offer(40_000, false), WAIT));
        twinkle.console().wait_for("incoming call", WAIT)?;
        twinkle.command("answer")?;
        call.join()
            .map_err(|_| HarnessError::Unexpected("trunk thread panicked".into()))?
    })?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "on-call", WAIT)?;

    twinkle.console().wait_for("call established", WAIT)?;
    // twinkle reports the outcome of its hold and retrieve re-INVITEs.
    twinkle.command("hold")?;
    twinkle
        .console()
        .wait_for_count("re-INVITE successful", 1, WAIT)?;
    twinkle.command("retrieve")?;
    twinkle
        .console()
        .wait_for_count("re-INVITE successful", 2, WAIT)?;
    assert!(
        !twinkle.console().log().contains("re-INVITE failed"),
        "{}",
        twinkle.console().log()
    );
    twinkle.command("bye")?;
    let bye = call.wait_for_bye(WAIT)?;
    assert_eq!(bye.method(), Some("BYE"));
    Ok(())
}
