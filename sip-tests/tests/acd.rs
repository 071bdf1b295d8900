//! The ACD behind the B2BUA: calls wait (hearing 180) until an agent is Ready, are abandoned by
//! CANCEL, overflow or time out after max wait, are served by priority, hunt on ring-no-answer,
//! and an agent never has two calls at once. Agent states are set and read through the API.

use std::time::Duration;

use serde_json::json;
use sip_tests::api::{agent_reason, agent_state};
use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::ports::free_port;
use sip_tests::trace::{call_ids, parse_trace, received_requests, Direction};
use sip_tests::uac::place_call;
use sip_tests::{
    register_agent, start_agent, start_agent_for_calls, AgentAccount, CallerPriority, HarnessError,
    HarnessResult, NumberSpec, QueueSpec, SippProcess, Switchboard, SwitchboardConfig, UdpPeer,
};

/// How long an agent UAS or a waiting trunk may take: generous, the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// One agent, Alice (1001), in `support`.
fn one_agent() -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![AgentAccount::new("1001", "Alice")],
        ..SwitchboardConfig::default()
    }
}

/// A trunk call to DID 100 (BYE `hold_ms` after the answer), in the background.
fn spawn_trunk_call(switchboard: &Switchboard, hold_ms: u32) -> HarnessResult<SippProcess> {
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg(&hold_ms.to_string())
        .timeout(WAIT)
        .spawn()
}

/// The trunk's own Call-ID, from its trace.
fn trunk_call_id(trace: &str) -> HarnessResult<String> {
    call_ids(trace)
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected(format!("no Call-ID in the trunk trace:\n{trace}")))
}

#[test]
fn waiting_call_hears_180_and_is_answered_once_the_agent_is_set_ready() -> HarnessResult<()> {
    let switchboard = Switchboard::start(one_agent())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let api = switchboard.api();
    api.set_not_ready("1001", "break")?;

    let mut trunk = spawn_trunk_call(&switchboard, 500)?;
    trunk.wait_for_response(180, 1, WAIT)?;
    let queue = api.wait_for_waiting("support", 1, WAIT)?;
    assert!(
        queue
            .get("longest_wait_seconds")
            .is_some_and(serde_json::Value::is_u64),
        "a waiting call has a wait time: {queue}"
    );
    assert!(
        agent.messages().is_empty(),
        "a not-ready agent was offered the call:\n{}",
        agent.messages()
    );

    api.set_ready("1001")?;
    trunk.wait()?.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    assert_eq!(agent.received("INVITE").len(), 1);
    assert_eq!(
        api.queue("support")?.get("waiting"),
        Some(&json!(0)),
        "the call left the queue"
    );
    Ok(())
}

#[test]
fn cancel_while_waiting_is_answered_487_and_counted_abandoned() -> HarnessResult<()> {
    let switchboard = Switchboard::start(one_agent())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let api = switchboard.api();
    api.set_not_ready("1001", "break")?;

    // trunk_cancel.xml CANCELs as soon as it hears 180, i.e. while the call waits in the queue.
    let trunk = switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    assert_eq!(trunk.received_responses(487).len(), 1);

    let record = wait_for_call(
        switchboard.cdr_dir(),
        &trunk_call_id(&trunk.messages())?,
        WAIT,
    )?;
    let disposition = str_field(&record, "disposition");
    assert!(
        matches!(disposition, Some("abandoned" | "abandoned-short")),
        "{record}"
    );
    assert_eq!(
        str_field(&record, "hangup_side"),
        Some("caller"),
        "{record}"
    );
    assert_eq!(record.get("sip_cause"), Some(&json!(487)), "{record}");

    let metrics = api.metrics()?;
    assert_eq!(
        metrics.counter("switchboard_calls_abandoned_total", &[("queue", "support")]),
        1.0,
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.counter("switchboard_calls_answered_total", &[("queue", "support")]),
        0.0
    );
    assert_eq!(api.queue("support")?.get("waiting"), Some(&json!(0)));
    Ok(())
}

#[test]
fn max_wait_overflows_to_the_backup_queue_whose_agent_answers() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        max_wait_s: Some(2),
        overflow: Some("backup".into()),
        other_queues: vec![QueueSpec::new("backup", "backup")],
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob")
                .without_support()
                .with_skill("backup", 5),
        ],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let api = switchboard.api();
    // Alice is logged in to support but not ready; Bob serves only backup.
    register_agent(&switchboard, "1001", free_port()?)?;
    api.set_not_ready("1001", "break")?;
    let backup_agent = start_agent(&switchboard, "1002", "agent_answer.xml", WAIT)?;

    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .run()?;
    trunk.ensure_success()?;
    let backup_agent = backup_agent.wait()?;
    backup_agent.ensure_success()?;
    let invite = backup_agent.received("INVITE");
    assert_eq!(invite.len(), 1);
    assert_eq!(
        invite.first().and_then(|i| i.header("X-Switchboard-Queue")),
        Some("backup"),
        "the offer names the queue it came from"
    );

    let record = wait_for_call(
        switchboard.cdr_dir(),
        &trunk_call_id(&trunk.messages())?,
        WAIT,
    )?;
    assert_eq!(str_field(&record, "queue"), Some("backup"), "{record}");
    assert_eq!(str_field(&record, "agent"), Some("1002"), "{record}");
    assert_eq!(
        str_field(&record, "disposition"),
        Some("answered"),
        "{record}"
    );
    Ok(())
}

#[test]
fn max_wait_without_overflow_gets_480() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        max_wait_s: Some(2),
        ..one_agent()
    };
    let switchboard = Switchboard::start(config)?;
    register_agent(&switchboard, "1001", free_port()?)?;
    switchboard.api().set_not_ready("1001", "break")?;
    let trunk = switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    assert!(
        !trunk.received_responses(180).is_empty(),
        "the caller heard ringing while waiting"
    );
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter(
            "switchboard_calls_rejected_total",
            &[("reason", "queue-timeout")]
        ),
        1.0,
        "{}",
        metrics.text
    );
    Ok(())
}

/// A trunk call to DID 100 from `caller` with `X-Priority: priority` (`X-Priority: none`, which
/// is not a priority and so is ignored, for `None`), held `hold_ms` after the answer, in the
/// background; returns once the call waits in the queue (180 heard).
fn spawn_waiting_caller(
    switchboard: &Switchboard,
    caller: &str,
    priority: Option<i32>,
    hold_ms: u32,
) -> HarnessResult<SippProcess> {
    let header = priority.map_or_else(|| "none".to_owned(), |p| p.to_string());
    let mut trunk = switchboard
        .sipp_client("trunk_call_as.xml")?
        .service("100")
        .set("caller", caller)
        .set("priority", &header)
        .arg("-d")
        .arg(&hold_ms.to_string())
        .timeout(WAIT)
        .spawn()?;
    trunk.wait_for_response(180, 1, WAIT)?;
    Ok(trunk)
}

/// Two callers wait while the only agent is not ready; when the agent becomes ready, the agent's
/// first INVITE must come from `expected_first`.
fn served_in_order(
    config: SwitchboardConfig,
    earlier: (&str, Option<i32>),
    later: (&str, Option<i32>),
    expected_first: &str,
) -> HarnessResult<()> {
    let base = config.numbers.first().map_or(0, |n| n.priority);
    let switchboard = Switchboard::start(config)?;
    let api = switchboard.api();
    let mut agent = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 2, WAIT)?;
    api.set_not_ready("1001", "break")?;

    let first = spawn_waiting_caller(&switchboard, earlier.0, earlier.1, 1000)?;
    api.wait_for_waiting("support", 1, WAIT)?;
    let second = spawn_waiting_caller(&switchboard, later.0, later.1, 1000)?;
    api.wait_for_waiting("support", 2, WAIT)?;

    api.set_ready("1001")?;
    agent.wait_for_request("INVITE", 1, WAIT)?;
    let first = first.wait()?;
    first.ensure_success()?;
    let second = second.wait()?;
    second.ensure_success()?;
    // The CDR carries the priority each call was queued with.
    for (run, caller) in [(&first, earlier), (&second, later)] {
        let record = wait_for_call(
            switchboard.cdr_dir(),
            &trunk_call_id(&run.messages())?,
            WAIT,
        )?;
        assert_eq!(str_field(&record, "caller"), Some(caller.0), "{record}");
        assert_eq!(
            record.get("priority"),
            Some(&json!(expected_priority(caller, base))),
            "{record}"
        );
        // Caller 2000's list is labelled `vip`: the label reaches the CDR.
        let label = (caller.0 == "2000").then_some("vip");
        assert_eq!(
            record.get("label").and_then(|l| l.as_str()),
            label,
            "{record}"
        );
    }
    let agent = agent.wait()?;
    agent.ensure_success()?;
    let callers: Vec<String> = agent
        .received("INVITE")
        .iter()
        .filter_map(|invite| invite.from_user().map(str::to_owned))
        .collect();
    let expected_second = if expected_first == earlier.0 {
        later.0
    } else {
        earlier.0
    };
    assert_eq!(
        callers,
        vec![expected_first.to_owned(), expected_second.to_owned()],
        "order the agent was offered the calls in"
    );
    // ... and to the agent's phone, as X-Switchboard-Label.
    for invite in agent.received("INVITE") {
        let label = (invite.from_user() == Some("2000")).then_some("vip");
        assert_eq!(
            invite.header("X-Switchboard-Label"),
            label,
            "label offered with the call from {:?}",
            invite.from_user()
        );
    }
    Ok(())
}

/// The priority `priority_config` gives `(caller, X-Priority)` on a number with priority
/// `base`: the header's when it has one, else the VIP list's for caller 2000, else the base.
fn expected_priority((caller, header): (&str, Option<i32>), base: i32) -> i32 {
    let listed = (caller == "2000").then_some(10);
    header.or(listed).unwrap_or(base)
}

/// DID 100 with caller 2000 on the VIP list (priority 10) and the X-Priority header honoured.
fn priority_config() -> SwitchboardConfig {
    SwitchboardConfig {
        dids: Vec::new(),
        numbers: vec![NumberSpec {
            priority_header: Some("X-Priority".into()),
            caller_priorities: vec![CallerPriority {
                callers: vec!["2000".into()],
                priority: 10,
                label: Some("vip".into()),
            }],
            ..NumberSpec::new("100", "support")
        }],
        ..one_agent()
    }
}

#[test]
fn vip_caller_jumps_ahead_of_an_earlier_normal_caller() -> HarnessResult<()> {
    served_in_order(priority_config(), ("3000", None), ("2000", None), "2000")
}

#[test]
fn priority_header_jumps_ahead_of_an_earlier_normal_caller() -> HarnessResult<()> {
    served_in_order(priority_config(), ("3000", None), ("3001", Some(5)), "3001")
}

#[test]
fn equal_priority_is_served_longest_waiting_first() -> HarnessResult<()> {
    served_in_order(priority_config(), ("3000", None), ("3001", None), "3000")
}

/// The header sets the priority, lower than the number's base too: the earlier caller, marked
/// down to 1 on a number whose calls get 5, waits behind a later caller with the base.
#[test]
fn a_priority_header_below_the_base_makes_the_call_wait_behind_an_equal_base_call(
) -> HarnessResult<()> {
    let mut config = priority_config();
    if let Some(number) = config.numbers.first_mut() {
        number.priority = 5;
    }
    served_in_order(config, ("3000", Some(1)), ("3001", None), "3001")
}

/// Alice (1001) is the most skilled, so every call is offered to her first.
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

/// The first agent's phone behaves as `scenario_file`; the call must end up with Bob, and
/// Alice must end in `expected_state` (with `expected_reason`).
fn first_agent_fails_then_second_answers(
    config: SwitchboardConfig,
    scenario_file: &str,
    expected_state: &str,
    expected_reason: Option<&str>,
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(config)?;
    let failing = start_agent(&switchboard, "1001", scenario_file, WAIT)?;
    let answering = start_agent(&switchboard, "1002", "agent_answer.xml", WAIT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .run()?
        .ensure_success()?;
    let failing = failing.wait()?;
    failing.ensure_success()?;
    answering.wait()?.ensure_success()?;
    assert_eq!(failing.received("INVITE").len(), 1);
    let alice = switchboard.api().agent("1001")?;
    assert_eq!(
        (agent_state(&alice), agent_reason(&alice)),
        (Some(expected_state), expected_reason),
        "after {scenario_file}: {alice}"
    );
    Ok(())
}

#[test]
fn ring_no_answer_makes_the_agent_not_ready_missed_and_the_next_agent_answers() -> HarnessResult<()>
{
    first_agent_fails_then_second_answers(
        hunting_config(2),
        "agent_noanswer.xml",
        "not-ready",
        Some("missed"),
    )
}

#[test]
fn busy_or_decline_makes_the_agent_not_ready_missed() -> HarnessResult<()> {
    for scenario in ["agent_busy.xml", "agent_decline.xml"] {
        first_agent_fails_then_second_answers(
            hunting_config(20),
            scenario,
            "not-ready",
            Some("missed"),
        )?;
    }
    Ok(())
}

#[test]
fn unreachable_agent_is_logged_out_and_the_next_agent_answers() -> HarnessResult<()> {
    // Ring timeout longer than the INVITE transaction timeout (64*T1 = 32 s), so the offer can
    // only end by the phone being unreachable.
    let switchboard = Switchboard::start(hunting_config(60))?;
    // Alice registers from a port nobody listens on afterwards.
    register_agent(&switchboard, "1001", free_port()?)?;
    let answering = start_agent(&switchboard, "1002", "agent_answer.xml", WAIT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .run()?
        .ensure_success()?;
    answering.wait()?.ensure_success()?;
    let alice = switchboard.api().agent("1001")?;
    assert_eq!(agent_state(&alice), Some("logged-out"), "{alice}");
    Ok(())
}

#[test]
fn an_agent_on_a_call_is_never_offered_a_second_one() -> HarnessResult<()> {
    let switchboard = Switchboard::start(one_agent())?;
    let api = switchboard.api();
    let agent = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 2, WAIT)?;

    // The first call is placed from Rust, so it stays up until the test hangs it up.
    let trunk_peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let first = place_call(&trunk_peer, "100", "3000", WAIT)?;
    api.wait_for_agent_state("1001", "on-call", WAIT)?;
    let mut second = spawn_trunk_call(&switchboard, 500)?;
    second.wait_for_response(180, 1, WAIT)?;
    api.wait_for_waiting("support", 1, WAIT)?;
    assert_eq!(
        received_requests(&agent.messages(), "INVITE").len(),
        1,
        "the agent on a call was offered the waiting call"
    );

    let bye = first.hang_up(WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    second.wait()?.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;

    // In the phone's own trace, the second INVITE arrives only after the first call's BYE.
    let events: Vec<(String, String)> = parse_trace(&agent.messages())
        .into_iter()
        .filter(|t| t.direction == Direction::Received)
        .filter_map(|t| {
            let method = t.message.method()?.to_owned();
            let call_id = t.message.header("Call-ID")?.to_owned();
            Some((method, call_id))
        })
        .filter(|(method, _)| method == "INVITE" || method == "BYE")
        .collect();
    let invites: Vec<&(String, String)> = events.iter().filter(|(m, _)| m == "INVITE").collect();
    assert_eq!(invites.len(), 2, "{events:?}");
    let first_bye = events
        .iter()
        .position(|(m, id)| m == "BYE" && Some(id) == invites.first().map(|i| &i.1));
    let second_invite = events
        .iter()
        .position(|(m, id)| m == "INVITE" && Some(id) == invites.get(1).map(|i| &i.1));
    assert!(
        matches!((first_bye, second_invite), (Some(bye), Some(invite)) if bye < invite),
        "second INVITE before the first call ended: {events:?}"
    );
    Ok(())
}
