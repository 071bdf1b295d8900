//! Trunk calls through the B2BUA to registered agents: answer, hang-up from either side, cancel,
//! busy and ring-no-answer hunting, and the queue when nobody can take the call.

use std::time::Duration;

use sip_tests::trace::{call_ids, parse_trace, Direction};
use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig};

/// How long an agent UAS waits for its call before SIPp gives up.
const AGENT_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn trunk_call_answered_by_agent_then_trunk_hangs_up() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", AGENT_TIMEOUT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("500")
        .run()?;
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;

    // 100 Trying at once, then the agent's 180 relayed, then its 200.
    let trunk_heard: Vec<u16> = parse_trace(&trunk.messages())
        .iter()
        .filter(|t| t.direction == Direction::Received)
        .filter_map(|t| t.message.status())
        .collect();
    assert_eq!(
        trunk_heard.first(),
        Some(&100),
        "first response to the trunk: {trunk_heard:?}"
    );
    assert!(
        trunk_heard.contains(&180),
        "180 not relayed: {trunk_heard:?}"
    );

    // A B2BUA: the agent leg is a new dialog with its own Call-ID.
    let trunk_ids = call_ids(&trunk.messages());
    let agent_ids = call_ids(&agent.messages());
    assert_eq!(agent_ids.len(), 1, "agent saw {agent_ids:?}");
    assert!(
        agent_ids.iter().all(|id| !trunk_ids.contains(id)),
        "agent leg reuses the trunk's Call-ID: trunk {trunk_ids:?}, agent {agent_ids:?}"
    );
    Ok(())
}

#[test]
fn agent_hangs_up_and_trunk_gets_bye() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_hangup.xml", AGENT_TIMEOUT)?;
    switchboard
        .sipp_client("trunk_call_agent_hangs_up.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()
}

#[test]
fn trunk_cancel_while_agent_rings_cancels_agent_leg() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_noanswer.xml", AGENT_TIMEOUT)?;
    switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()
}

/// Alice is the most skilled, so she is offered the call first; both orders of preference
/// (skill and registration order) agree on that.
fn hunting_config(ring_timeout_s: u32) -> SwitchboardConfig {
    let mut config = SwitchboardConfig {
        ring_timeout_s,
        strategy: Some("most-skilled".into()),
        ..SwitchboardConfig::default()
    };
    for agent in &mut config.agents {
        agent.support_level = Some(if agent.id == "1001" { 9 } else { 5 });
    }
    config
}

#[test]
fn busy_agent_then_second_agent_answers() -> HarnessResult<()> {
    let switchboard = Switchboard::start(hunting_config(20))?;
    let busy = start_agent(&switchboard, "1001", "agent_busy.xml", AGENT_TIMEOUT)?;
    let answering = start_agent(&switchboard, "1002", "agent_answer.xml", AGENT_TIMEOUT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    let busy = busy.wait()?;
    busy.ensure_success()?;
    answering.wait()?.ensure_success()?;
    assert_eq!(
        busy.received("INVITE").len(),
        1,
        "the busy agent is offered the call once"
    );
    Ok(())
}

#[test]
fn agent_answering_480_or_603_then_second_agent_answers() -> HarnessResult<()> {
    for scenario in ["agent_unavailable.xml", "agent_decline.xml"] {
        let switchboard = Switchboard::start(hunting_config(20))?;
        let declining = start_agent(&switchboard, "1001", scenario, AGENT_TIMEOUT)?;
        let answering = start_agent(&switchboard, "1002", "agent_answer.xml", AGENT_TIMEOUT)?;
        switchboard
            .sipp_client("trunk_call.xml")?
            .service("100")
            .run()?
            .ensure_success()?;
        declining.wait()?.ensure_success()?;
        answering.wait()?.ensure_success()?;
    }
    Ok(())
}

#[test]
fn ring_no_answer_then_second_agent_answers() -> HarnessResult<()> {
    let switchboard = Switchboard::start(hunting_config(2))?;
    let silent = start_agent(&switchboard, "1001", "agent_noanswer.xml", AGENT_TIMEOUT)?;
    let answering = start_agent(&switchboard, "1002", "agent_answer.xml", AGENT_TIMEOUT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    let silent = silent.wait()?;
    silent.ensure_success()?;
    answering.wait()?.ensure_success()?;
    assert_eq!(
        silent.received("INVITE").len(),
        1,
        "the agent who missed the call goes NotReady and is not offered it again"
    );
    Ok(())
}

#[test]
fn no_agent_registered_gets_480() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?
        .ensure_success()
}

#[test]
fn agent_on_a_call_is_not_offered_a_second_one_and_the_caller_waits_until_max_wait(
) -> HarnessResult<()> {
    let config = SwitchboardConfig {
        agents: vec![sip_tests::AgentAccount::new("1001", "Alice")],
        max_wait_s: Some(2),
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let mut agent = start_agent(&switchboard, "1001", "agent_answer.xml", AGENT_TIMEOUT)?;
    // The first call stays up well past the second call's max wait.
    let first = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("12000")
        .spawn()?;
    agent.wait_for_request("ACK", 1, Duration::from_secs(60))?;
    let second = switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?;
    second.ensure_success()?;
    let ringing = parse_trace(&second.messages())
        .iter()
        .any(|t| t.direction == Direction::Received && t.message.status() == Some(180));
    assert!(ringing, "a queued call hears ringing (180) while it waits");
    first.wait()?.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    assert_eq!(
        agent.received("INVITE").len(),
        1,
        "the busy agent got a second INVITE"
    );
    Ok(())
}
