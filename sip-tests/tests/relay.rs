//! Requests inside an established call: an INFO carrying DTMF is relayed to the other leg and its
//! answer relayed back, while a re-INVITE (the trunk putting the call on hold) is answered by
//! Switchboard itself, since each leg negotiates its media with Switchboard's relay.

use std::time::Duration;

use sip_tests::cdr::{f64_field, of_type, wait_for_records};
use sip_tests::trace::{parse_trace, Direction};
use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig};

#[test]
fn reinvite_is_answered_by_switchboard_and_info_is_relayed() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer_info.xml",
        Duration::from_secs(90),
    )?;
    let trunk = switchboard
        .sipp_client("trunk_call_reinvite.xml")?
        .service("100")
        .run()?;
    // The scenarios check the bodies: the trunk's hold (a=sendonly) is answered a=recvonly, the
    // agent sees Signal=5 in the relayed INFO.
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
        vec!["INVITE", "ACK", "INFO", "BYE"],
        "requests the agent received"
    );
    // The caller held the call from its re-INVITE to its BYE: that time is hold, not talk.
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "the call's record",
        Duration::from_secs(30),
        |records| !of_type(records, "call").is_empty(),
    )?;
    let call = of_type(&records, "call")[0];
    let hold = f64_field(call, "hold_s").unwrap_or(-1.0);
    let talk = f64_field(call, "talk_s").unwrap_or(-1.0);
    assert!(hold > 0.0, "hold_s {hold} in {call}");
    assert!(talk >= 0.0, "talk_s {talk} in {call}");
    Ok(())
}
