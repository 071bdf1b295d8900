//! Call detail records: one `{"type":"call"}` line per call in `<cdr.dir>/cdr-YYYY-MM-DD.jsonl`
//! with the right disposition, hang-up side, cause, times and legs; agent-state lines; and no
//! record lost or duplicated when the process is killed with SIGKILL mid-stream and restarted.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sip_tests::cdr::{
    calls_with_trunk_id, f64_field, of_type, read_records, required_time, str_field, time_field,
    wait_for_call, wait_for_records,
};
use sip_tests::ports::free_port;
use sip_tests::trace::{call_ids, completed_calls};
use sip_tests::{
    register_agent, start_agent, AgentAccount, HarnessError, HarnessResult, SippProcess, SippRun,
    Switchboard, SwitchboardConfig,
};

/// How long SIP flows and CDR files may take: generous, the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// The first Call-ID in a SIPp trace: the call that SIPp placed or received.
fn first_call_id(run: &SippRun) -> HarnessResult<String> {
    call_ids(&run.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected(format!("no Call-ID in {}", run.scenario)))
}

/// Checks what every call record must satisfy, whatever its outcome: identifiers, the DID and
/// queue of the default configuration, times in order, durations not negative, the trunk leg
/// first; and that the record sits in the daily file of its `ended` UTC date.
fn check_common(
    switchboard: &Switchboard,
    record: &Value,
    trunk_call_id: &str,
) -> HarnessResult<()> {
    assert_eq!(str_field(record, "type"), Some("call"), "{record}");
    assert!(
        str_field(record, "id").is_some_and(|id| !id.is_empty()),
        "{record}"
    );
    assert_eq!(str_field(record, "trunk_call_id"), Some(trunk_call_id));
    assert_eq!(
        str_field(record, "caller"),
        Some("trunk"),
        "From user part: {record}"
    );
    assert_eq!(str_field(record, "did"), Some("100"), "{record}");
    assert_eq!(str_field(record, "queue"), Some("support"), "{record}");
    assert_eq!(record.get("priority"), Some(&json!(0)), "{record}");
    for field in ["wait_s", "ring_s", "talk_s", "wrap_up_s"] {
        assert!(
            f64_field(record, field).is_some_and(|v| v >= 0.0),
            "{field} missing or negative: {record}"
        );
    }
    let arrived = required_time(record, "arrived")?;
    let ended = required_time(record, "ended")?;
    let mut previous = arrived;
    for field in ["enqueued", "offered", "answered"] {
        if let Some(at) = time_field(record, field)? {
            assert!(previous <= at, "{field} before an earlier step: {record}");
            previous = at;
        }
    }
    assert!(previous <= ended, "ended before an earlier step: {record}");

    let legs = record
        .get("legs")
        .and_then(Value::as_array)
        .ok_or_else(|| HarnessError::Unexpected(format!("no legs list: {record}")))?;
    let trunk_leg = legs
        .first()
        .ok_or_else(|| HarnessError::Unexpected(format!("no legs: {record}")))?;
    assert_eq!(str_field(trunk_leg, "role"), Some("trunk"), "{record}");
    assert_eq!(str_field(trunk_leg, "call_id"), Some(trunk_call_id));
    for leg in legs {
        assert!(
            str_field(leg, "peer").is_some_and(|p| p.contains("127.0.0.1")),
            "leg peer: {leg}"
        );
        let started = required_time(leg, "started")?;
        let leg_ended = required_time(leg, "ended")?;
        assert!(started <= leg_ended, "leg ends before it starts: {leg}");
    }

    let date = ended.date();
    let file = switchboard.cdr_dir().join(format!(
        "cdr-{:04}-{:02}-{:02}.jsonl",
        date.year(),
        u8::from(date.month()),
        date.day()
    ));
    let text = std::fs::read_to_string(&file)
        .map_err(|e| HarnessError::io(format!("reading {}", file.display()), e))?;
    assert!(
        text.contains(trunk_call_id),
        "the record is not in {}, the file of its end date",
        file.display()
    );
    Ok(())
}

/// The agent legs of a record.
fn agent_legs(record: &Value) -> Vec<&Value> {
    record
        .get("legs")
        .and_then(Value::as_array)
        .map(|legs| {
            legs.iter()
                .filter(|l| str_field(l, "role") == Some("agent"))
                .collect()
        })
        .unwrap_or_default()
}

/// An answered call: agent, answer time, talk time, no SIP cause, and an agent leg with the
/// agent phone's own Call-ID.
fn check_answered(record: &Value, agent_call_id: &str, hangup_side: &str) -> HarnessResult<()> {
    assert_eq!(
        str_field(record, "disposition"),
        Some("answered"),
        "{record}"
    );
    assert_eq!(
        str_field(record, "hangup_side"),
        Some(hangup_side),
        "{record}"
    );
    assert_eq!(str_field(record, "agent"), Some("1001"), "{record}");
    assert!(
        record.get("sip_cause").is_none_or(Value::is_null),
        "a BYE ends an answered call normally: {record}"
    );
    required_time(record, "offered")?;
    required_time(record, "answered")?;
    assert!(
        f64_field(record, "talk_s").is_some_and(|t| t > 0.0),
        "{record}"
    );
    assert_eq!(
        f64_field(record, "wrap_up_s"),
        Some(0.0),
        "no wrap-up configured"
    );
    let agent_legs = agent_legs(record);
    assert_eq!(agent_legs.len(), 1, "{record}");
    let leg = agent_legs[0];
    assert_eq!(str_field(leg, "call_id"), Some(agent_call_id), "{record}");
    required_time(leg, "answered")?;
    Ok(())
}

#[test]
fn answered_call_hung_up_by_the_trunk() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("500")
        .run()?;
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_answered(&record, &first_call_id(&agent)?, "caller")
}

#[test]
fn answered_call_hung_up_by_the_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_hangup.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call_agent_hangs_up.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_answered(&record, &first_call_id(&agent)?, "agent")
}

#[test]
fn hunted_call_lists_every_agent_leg_in_order() -> HarnessResult<()> {
    // Alice is the most skilled and is offered the call first; she is busy, Bob answers.
    let mut config = SwitchboardConfig {
        strategy: Some("most-skilled".into()),
        ..SwitchboardConfig::default()
    };
    for agent in &mut config.agents {
        agent.support_level = Some(if agent.id == "1001" { 9 } else { 5 });
    }
    let switchboard = Switchboard::start(config)?;
    let busy = start_agent(&switchboard, "1001", "agent_busy.xml", WAIT)?;
    let answering = start_agent(&switchboard, "1002", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let busy = busy.wait()?;
    busy.ensure_success()?;
    let answering = answering.wait()?;
    answering.ensure_success()?;

    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    assert_eq!(str_field(&record, "agent"), Some("1002"), "{record}");
    assert_eq!(
        str_field(&record, "disposition"),
        Some("answered"),
        "{record}"
    );
    // CallRecord.legs: "every SIP leg of the call (trunk leg first, then agent legs in order)".
    let legs: Vec<Option<&str>> = agent_legs(&record)
        .iter()
        .map(|leg| str_field(leg, "call_id"))
        .collect();
    let busy_id = first_call_id(&busy)?;
    let answered_id = first_call_id(&answering)?;
    assert_eq!(
        legs,
        vec![Some(busy_id.as_str()), Some(answered_id.as_str())],
        "agent legs of a call offered to Alice (486) then answered by Bob: {record}"
    );
    Ok(())
}

#[test]
fn wrap_up_follows_the_call_in_the_record_and_the_agent_states() -> HarnessResult<()> {
    // Long enough that the test sees it, then ends it early through the API.
    let config = SwitchboardConfig {
        wrap_up_s: 600,
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let api = switchboard.api();
    api.wait_for_agent_state("1001", "wrap-up", WAIT)?;
    let ready = api.set_ready("1001")?;
    assert_eq!(
        sip_tests::api::agent_state(&ready),
        Some("ready"),
        "{ready}"
    );

    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    assert_eq!(
        f64_field(&record, "wrap_up_s"),
        Some(600.0),
        "the queue's wrap-up time: {record}"
    );
    wait_for_records(
        switchboard.cdr_dir(),
        "a wrap-up agent-state record of agent 1001",
        WAIT,
        |records| {
            of_type(records, "agent_state").iter().any(|r| {
                str_field(r, "agent") == Some("1001") && str_field(r, "state") == Some("wrap-up")
            })
        },
    )?;
    Ok(())
}

/// An unanswered call: no answer, no talk, the SIP cause sent to the trunk, and as `agent` the
/// last agent it was offered to (`None` when it never rang anyone).
fn check_unanswered(
    record: &Value,
    disposition: &str,
    hangup_side: &str,
    sip_cause: u16,
    offered_to: Option<&str>,
) -> HarnessResult<()> {
    assert_eq!(
        str_field(record, "disposition"),
        Some(disposition),
        "{record}"
    );
    assert_eq!(
        str_field(record, "hangup_side"),
        Some(hangup_side),
        "{record}"
    );
    assert_eq!(record.get("sip_cause"), Some(&json!(sip_cause)), "{record}");
    assert_eq!(
        str_field(record, "agent"),
        offered_to,
        "agent: the last one offered the call: {record}"
    );
    assert_eq!(time_field(record, "answered")?, None, "{record}");
    assert_eq!(f64_field(record, "talk_s"), Some(0.0), "{record}");
    Ok(())
}

/// `abandoned-short` below 5 s of waiting, `abandoned` from then on.
fn expected_abandon(record: &Value) -> &'static str {
    if f64_field(record, "wait_s").is_some_and(|w| w < 5.0) {
        "abandoned-short"
    } else {
        "abandoned"
    }
}

#[test]
fn caller_abandons_while_waiting_in_the_queue() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    switchboard.api().set_not_ready("1001", "break")?;
    let trunk = switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_unanswered(&record, expected_abandon(&record), "caller", 487, None)?;
    assert_eq!(
        time_field(&record, "offered")?,
        None,
        "never offered: {record}"
    );
    assert!(agent_legs(&record).is_empty(), "{record}");
    Ok(())
}

#[test]
fn caller_abandons_while_the_agent_rings() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_noanswer.xml", WAIT)?;
    // trunk_cancel.xml CANCELs at the first 180; wait for the phone's 180 relayed, so the
    // call is ringing at the agent when it is cancelled.
    let trunk = switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_unanswered(
        &record,
        expected_abandon(&record),
        "caller",
        487,
        Some("1001"),
    )?;
    required_time(&record, "offered")?;
    Ok(())
}

#[test]
fn call_timed_out_in_the_queue() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        max_wait_s: Some(2),
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    register_agent(&switchboard, "1001", free_port()?)?;
    switchboard.api().set_not_ready("1001", "break")?;
    let trunk = switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_unanswered(&record, "timed-out", "system", 480, None)?;
    // Not a speed check: the call may not leave the queue before its configured max wait
    // (a little slack for rounding of the recorded instants).
    assert!(
        f64_field(&record, "wait_s").is_some_and(|w| w >= 1.9),
        "left the queue before max_wait_s = 2: {record}"
    );
    Ok(())
}

#[test]
fn call_rejected_without_agents() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let trunk = switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let trunk_id = first_call_id(&trunk)?;
    let record = wait_for_call(switchboard.cdr_dir(), &trunk_id, WAIT)?;
    check_common(&switchboard, &record, &trunk_id)?;
    check_unanswered(&record, "rejected", "system", 480, None)
}

#[test]
fn agent_state_records_follow_login_ready_not_ready_logout() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let api = switchboard.api();
    api.set_not_ready("1001", "break")?;
    api.log_out("1001")?;

    let states_of_alice = |records: &[Value]| -> Vec<Value> {
        of_type(records, "agent_state")
            .into_iter()
            .filter(|r| str_field(r, "agent") == Some("1001"))
            .cloned()
            .collect()
    };
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "login, ready, not-ready and logout records of agent 1001",
        WAIT,
        |records| states_of_alice(records).len() >= 4,
    )?;
    let alice = states_of_alice(&records);
    let summary: Vec<(Option<&str>, Option<&str>)> = alice
        .iter()
        .map(|r| (str_field(r, "state"), str_field(r, "reason")))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("login"), None),
            (Some("ready"), None),
            (Some("not-ready"), Some("break")),
            (Some("logout"), None),
        ],
        "{alice:?}"
    );
    for record in &alice {
        let started = required_time(record, "started")?;
        let ended = required_time(record, "ended")?;
        assert!(started <= ended, "{record}");
        assert!(
            f64_field(record, "duration_s").is_some_and(|d| d >= 0.0),
            "{record}"
        );
    }
    assert!(
        of_type(&records, "agent_state")
            .iter()
            .all(|r| str_field(r, "agent") == Some("1001")),
        "Bob never logged in: {records:?}"
    );
    Ok(())
}

/// How many trunk calls the crash test places, and after how many completed ones it kills.
const STREAM_CALLS: u32 = 30;
const KILL_AFTER: usize = 10;

#[test]
fn sigkill_mid_stream_loses_and_duplicates_no_completed_call() -> HarnessResult<()> {
    let agent_ids = ["1001", "1002", "1003", "1004"];
    let config = SwitchboardConfig {
        agents: agent_ids
            .iter()
            .map(|id| AgentAccount::new(id, &format!("Agent {id}")))
            .collect(),
        ..SwitchboardConfig::default()
    };
    let mut switchboard = Switchboard::start(config)?;
    // Several agents so calls overlap; each phone can take every call of the stream.
    let _agents: Vec<SippProcess> = agent_ids
        .iter()
        .map(|id| {
            sip_tests::start_agent_for_calls(
                &switchboard,
                id,
                "agent_answer.xml",
                STREAM_CALLS,
                WAIT,
            )
        })
        .collect::<HarnessResult<_>>()?;
    let mut trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .calls(STREAM_CALLS)
        .arg("-r")
        .arg("3")
        .arg("-d")
        .arg("300")
        // Calls cut off by the crash fail instead of waiting for the global timeout.
        .arg("-recv_timeout")
        .arg("5000")
        .timeout(WAIT)
        .spawn()?;
    trunk.wait_for(&format!("{KILL_AFTER} completed calls"), WAIT, |trace| {
        completed_calls(trace).len() >= KILL_AFTER
    })?;
    switchboard.kill()?;
    let trunk = trunk.wait()?;
    let completed = completed_calls(&trunk.messages());
    assert!(completed.len() >= KILL_AFTER, "{completed:?}");

    // Replay happens on start; a graceful stop then forwards and syncs everything, so the
    // daily files are final when the process has exited.
    switchboard.restart()?;
    switchboard.terminate()?;
    let status = switchboard.wait_exit(WAIT)?;
    assert_eq!(status.code(), Some(0), "exit after restart: {status}");

    let records = read_records(switchboard.cdr_dir())?;
    let mut per_trunk_call: HashMap<&str, usize> = HashMap::new();
    for record in of_type(&records, "call") {
        let id = str_field(record, "trunk_call_id").unwrap_or_default();
        *per_trunk_call.entry(id).or_default() += 1;
    }
    let duplicated: Vec<(&&str, &usize)> = per_trunk_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "duplicated call records: {duplicated:?}"
    );
    let lost: Vec<&String> = completed
        .iter()
        .filter(|id| calls_with_trunk_id(&records, id).is_empty())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} completed calls have no record: {lost:?}",
        lost.len(),
        completed.len()
    );
    for id in &completed {
        let record = calls_with_trunk_id(&records, id)[0];
        assert_eq!(
            str_field(record, "disposition"),
            Some("answered"),
            "{record}"
        );
    }
    eprintln!(
        "crash test: {} calls completed before SIGKILL, {} call records in total",
        completed.len(),
        of_type(&records, "call").len()
    );
    Ok(())
}
