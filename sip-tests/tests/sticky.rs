//! Sticky routing: a caller who spoke to agent 1003 waits for 1003 on the next call (up to the
//! queue's `preferred_agent_wait_s`) although 1001 is Ready and idle, also after a restart
//! (the memory is rebuilt from the CDR files), and goes to another agent once the preferred
//! wait is over. The CDR says which agent was preferred and whether they took the call.

use std::time::Duration;

use serde_json::{json, Value};
use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::trace::call_ids;
use sip_tests::{
    start_agent_for_calls, AgentAccount, HarnessError, HarnessResult, NumberSpec, QueueSpec,
    SippProcess, Switchboard, SwitchboardConfig,
};

/// How long a phone, a trunk call or a record may take: generous, the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// The returning caller.
const CALLER: &str = "5551234";

/// Agents 1001 and 1003 in `support`, which waits `preferred_wait_s` for a preferred agent.
fn config(preferred_wait_s: u32) -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1003", "Carol"),
        ],
        support_queue_lines: vec![format!("preferred_agent_wait_s = {preferred_wait_s}")],
        ..SwitchboardConfig::default()
    }
}

/// A call from [`CALLER`] to DID 100, hung up by the caller 200 ms after the answer.
fn spawn_call(switchboard: &Switchboard) -> HarnessResult<SippProcess> {
    spawn_call_to(switchboard, "100")
}

/// A call from [`CALLER`] to `did`, hung up by the caller 200 ms after the answer.
fn spawn_call_to(switchboard: &Switchboard, did: &str) -> HarnessResult<SippProcess> {
    switchboard
        .sipp_client("trunk_call_as.xml")?
        .service(did)
        .set("caller", CALLER)
        .set("priority", "none")
        .arg("-d")
        .arg("200")
        .timeout(WAIT)
        .spawn()
}

/// Waits for the call to end well and returns its CDR.
fn finished_record(switchboard: &Switchboard, call: SippProcess) -> HarnessResult<Value> {
    let run = call.wait()?;
    run.ensure_success()?;
    let trunk_call_id = call_ids(&run.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected("no Call-ID in the trunk trace".into()))?;
    wait_for_call(switchboard.cdr_dir(), &trunk_call_id, WAIT)
}

/// First call: only 1003 is Ready, so 1003 answers; nobody was preferred yet.
fn first_call_answered_by_1003(switchboard: &Switchboard) -> HarnessResult<()> {
    let api = switchboard.api();
    api.set_not_ready("1001", "break")?;
    let record = finished_record(switchboard, spawn_call(switchboard)?)?;
    assert_eq!(str_field(&record, "agent"), Some("1003"), "{record}");
    assert_eq!(
        record.get("preferred_agent"),
        Some(&Value::Null),
        "{record}"
    );
    assert_eq!(
        record.get("preferred_agent_taken"),
        Some(&json!(false)),
        "{record}"
    );
    Ok(())
}

/// 1003 on a break, 1001 Ready: the returning caller waits in the queue instead of going to
/// 1001, and 1001's phone is not rung. Returns the waiting call.
fn returning_caller_waits_for_1003(
    switchboard: &Switchboard,
    phone_1001: &SippProcess,
) -> HarnessResult<SippProcess> {
    let api = switchboard.api();
    api.set_not_ready("1003", "break")?;
    api.set_ready("1001")?;
    let call = spawn_call(switchboard)?;
    api.wait_for_waiting("support", 1, WAIT)?;
    assert!(
        phone_1001.messages().is_empty(),
        "1001 was offered the call of 1003's caller:\n{}",
        phone_1001.messages()
    );
    Ok(call)
}

/// 1003 comes back: the waiting call goes to 1003, and the CDR says so.
fn taken_by_1003(switchboard: &Switchboard, call: SippProcess) -> HarnessResult<()> {
    switchboard.api().set_ready("1003")?;
    let record = finished_record(switchboard, call)?;
    assert_eq!(str_field(&record, "agent"), Some("1003"), "{record}");
    assert_eq!(
        str_field(&record, "preferred_agent"),
        Some("1003"),
        "{record}"
    );
    assert_eq!(
        record.get("preferred_agent_taken"),
        Some(&json!(true)),
        "{record}"
    );
    Ok(())
}

#[test]
fn a_returning_caller_waits_for_their_last_agent_also_after_a_restart() -> HarnessResult<()> {
    let mut switchboard = Switchboard::start(config(60))?;
    let phone_1001 = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    let phone_1003 = start_agent_for_calls(&switchboard, "1003", "agent_answer.xml", 2, WAIT)?;
    first_call_answered_by_1003(&switchboard)?;
    let call = returning_caller_waits_for_1003(&switchboard, &phone_1001)?;
    taken_by_1003(&switchboard, call)?;
    phone_1003.wait()?.ensure_success()?;

    // After a restart the memory comes back from the CDR files.
    switchboard.terminate()?;
    switchboard.wait_exit(WAIT)?;
    switchboard.restart()?;
    switchboard.wait_for_log("sticky routing rebuilt from the CDRs", WAIT)?;
    let phone_1001_again =
        start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    let phone_1003 = start_agent_for_calls(&switchboard, "1003", "agent_answer.xml", 1, WAIT)?;
    let call = returning_caller_waits_for_1003(&switchboard, &phone_1001_again)?;
    taken_by_1003(&switchboard, call)?;
    phone_1003.wait()?.ensure_success()?;
    assert!(
        phone_1001_again.messages().is_empty(),
        "{}",
        phone_1001_again.messages()
    );
    drop(phone_1001);
    Ok(())
}

#[test]
fn after_the_preferred_wait_the_call_goes_to_another_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config(2))?;
    let phone_1001 = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    let phone_1003 = start_agent_for_calls(&switchboard, "1003", "agent_answer.xml", 1, WAIT)?;
    first_call_answered_by_1003(&switchboard)?;
    phone_1003.wait()?.ensure_success()?;
    let api = switchboard.api();
    api.set_not_ready("1003", "break")?;
    api.set_ready("1001")?;
    // 1003 stays on a break: past the 2 s preferred wait, 1001 takes the call.
    let call = spawn_call(&switchboard)?;
    let record = finished_record(&switchboard, call)?;
    assert_eq!(str_field(&record, "agent"), Some("1001"), "{record}");
    assert_eq!(
        str_field(&record, "preferred_agent"),
        Some("1003"),
        "{record}"
    );
    assert_eq!(
        record.get("preferred_agent_taken"),
        Some(&json!(false)),
        "{record}"
    );
    assert!(
        record.get("wait_s").and_then(Value::as_f64) >= Some(2.0),
        "waited the preferred wait first: {record}"
    );
    phone_1001.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn an_agent_who_cannot_serve_the_queue_is_not_waited_for() -> HarnessResult<()> {
    // 1003 works in sales only; DID 200 goes to sales, DID 100 to support.
    let switchboard = Switchboard::start(SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1003", "Carol")
                .without_support()
                .with_skill("sales", 5),
        ],
        other_queues: vec![QueueSpec::new("sales", "sales")],
        numbers: vec![NumberSpec::new("200", "sales")],
        support_queue_lines: vec!["preferred_agent_wait_s = 60".into()],
        ..SwitchboardConfig::default()
    })?;
    let api = switchboard.api();
    let phone_1001 = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    let phone_1003 = start_agent_for_calls(&switchboard, "1003", "agent_answer.xml", 2, WAIT)?;
    let record = finished_record(&switchboard, spawn_call_to(&switchboard, "200")?)?;
    assert_eq!(str_field(&record, "agent"), Some("1003"), "{record}");
    // The same caller on the support line: 1003 cannot take support calls, so 1001 does at
    // once, although 1003 is Ready and answered this caller last.
    api.wait_for_agent_state("1003", "ready", WAIT)?;
    let record = finished_record(&switchboard, spawn_call_to(&switchboard, "100")?)?;
    assert_eq!(str_field(&record, "agent"), Some("1001"), "{record}");
    assert_eq!(
        record.get("preferred_agent"),
        Some(&Value::Null),
        "{record}"
    );
    phone_1001.wait()?.ensure_success()?;
    assert_eq!(
        phone_1003.messages().matches("INVITE sip:").count(),
        1,
        "{}",
        phone_1003.messages()
    );
    Ok(())
}
