//! Interoperability with an independent SIP stack: baresip (libre) registers as an agent with
//! digest authentication and auto-answers a trunk call placed with SIPp through Switchboard, and
//! its audio flows both ways through Switchboard's media relay.

use std::time::Duration;

use sip_tests::baresip::Baresip;
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, TrunkConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);

/// Baresip as agent 1001, registered through digest auth: logged in and Ready.
fn start_agent_1001(switchboard: &Switchboard) -> HarnessResult<Baresip> {
    let baresip = Baresip::agent(
        &switchboard.dir().join("baresip"),
        "1001",
        "secret1001",
        switchboard.sip_addr(),
    )?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;
    Ok(baresip)
}

#[test]
fn baresip_registers_as_an_agent_and_answers_a_trunk_call() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let baresip = start_agent_1001(&switchboard)?;

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
    let baresip = start_agent_1001(&switchboard)?;

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

/// baresip as the caller, through a trunk that authenticates with Digest: the trunk has no
/// address list, so only an INVITE answering the 407 with the trunk's credentials gets
/// through; the call to DID 101 reaches the agent, and the agent's BYE ends it at baresip.
#[test]
fn baresip_calls_through_a_digest_trunk() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "pbx".into(),
            allow: Vec::new(),
            credentials: Some(("trunkuser".into(), "trunkpass".into())),
        }],
        dids: vec!["101".into()],
        ..SwitchboardConfig::default()
    })?;
    let agent = start_agent(&switchboard, "1001", "agent_hangup.xml", WAIT)?;
    let baresip = Baresip::caller(
        &switchboard.dir().join("baresip"),
        "trunkuser",
        "trunkpass",
        switchboard.sip_addr(),
        &format!("sip:101@{}", switchboard.sip_addr()),
    )?;
    agent.wait()?.ensure_success()?;
    baresip.wait_for_log("Call established", WAIT)?;
    // libre closes a session ended by the far end's BYE with ECONNRESET.
    // libre closes a session the far end ended with BYE as "Connection reset by peer".
    baresip.wait_for_log("session closed", WAIT)?;
    Ok(())
}
