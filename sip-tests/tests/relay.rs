//! Requests inside an established call are relayed to the other leg and their answers relayed
//! back: a re-INVITE putting the call on hold (new SDP both ways) and an INFO carrying DTMF.

use std::time::Duration;

use sip_tests::trace::{parse_trace, Direction};
use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig};

#[test]
fn reinvite_and_info_are_relayed_between_legs() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer_reinvite.xml",
        Duration::from_secs(90),
    )?;
    let trunk = switchboard
        .sipp_client("trunk_call_reinvite.xml")?
        .service("100")
        .run()?;
    // The scenarios check the bodies: the agent must see a=sendonly in the relayed re-INVITE
    // and Signal=5 in the INFO, the trunk must get the agent's a=recvonly answer back.
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    let agent_got: Vec<String> = parse_trace(&agent.messages())
        .iter()
        .filter(|t| t.direction == Direction::Received)
        .filter_map(|t| t.message.method().map(str::to_string))
        .collect();
    assert_eq!(
        agent_got,
        vec!["INVITE", "ACK", "INVITE", "ACK", "INFO", "BYE"],
        "requests the agent received"
    );
    Ok(())
}
