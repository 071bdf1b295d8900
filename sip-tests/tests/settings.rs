//! Settings whose effect is only visible from outside: `sip.public_address` in Via and Contact
//! (and not in SDP, which carries `media.public_address` / `media.address`), an emergency
//! announcement on a number that sends calls straight to a queue, and `cdr.csv`.

use std::time::Duration;

use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::ports::free_port;
use sip_tests::trace::call_ids;
use sip_tests::{
    register_agent, start_agent, AgentAccount, HarnessError, HarnessResult, Switchboard,
    SwitchboardConfig,
};

/// Generous: the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// `sip.public_address = "localhost"` (it resolves, so the test's peers can still reach the
/// switch): the agent's INVITE carries it in Via and Contact, the trunk's 200 in Contact, while
/// both SDP bodies keep the media address 127.0.0.1.
#[test]
fn sip_public_address_is_in_via_and_contact_but_not_in_sdp() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        sip_public_address: Some("localhost".into()),
        agents: vec![AgentAccount::new("1001", "Alice")],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .run()?;
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;

    let invites = agent.received("INVITE");
    let invite = invites
        .first()
        .ok_or_else(|| HarnessError::Unexpected("the agent got no INVITE".into()))?;
    let via = invite.header("Via").unwrap_or_default();
    let contact = invite.header("Contact").unwrap_or_default();
    assert!(via.contains(" localhost:"), "Via: {via}");
    assert!(contact.contains("@localhost:"), "Contact: {contact}");
    assert!(
        invite.body.contains("c=IN IP4 127.0.0.1"),
        "the SDP names the media address, not sip.public_address:\n{}",
        invite.body
    );

    let answers = trunk.received_responses(200);
    let answer = answers
        .iter()
        .find(|r| r.body.contains("m=audio"))
        .ok_or_else(|| HarnessError::Unexpected("the trunk got no 200 with SDP".into()))?;
    let contact = answer.header("Contact").unwrap_or_default();
    assert!(contact.contains("@localhost:"), "Contact: {contact}");
    assert!(
        answer.body.contains("c=IN IP4 127.0.0.1"),
        "{}",
        answer.body
    );
    Ok(())
}

/// DID 100 goes straight to queue `support`, which keeps callers ringing (on-agent). With an
/// emergency announcement switched on for it, a new call is answered at once (no agent is
/// ready), hears the announcement and then waits in the queue; the CDR has it in `support`.
#[test]
fn an_emergency_announcement_on_a_queue_number_answers_then_queues_the_caller() -> HarnessResult<()>
{
    let config = SwitchboardConfig {
        agents: vec![AgentAccount::new("1001", "Alice")],
        support_queue_lines: vec!["announce_every_s = 0".into()],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let api = switchboard.api();
    // Logged in, not ready: the queue is staffed but nobody takes the call.
    register_agent(&switchboard, "1001", free_port()?)?;
    api.set_not_ready("1001", "break")?;
    let on = api.put("/api/emergency/100", r#"{"prompt":"emergency"}"#)?;
    assert_eq!(on.status, 200, "{}", on.body);

    let mut trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("30000")
        .timeout(WAIT)
        .spawn()?;
    // Answered by Switchboard although the queue answers only on an agent's answer.
    trunk.wait_for_response(200, 1, WAIT)?;
    // Then, after the announcement, waiting in the queue.
    api.wait_for_waiting("support", 1, WAIT)?;
    let trunk = trunk.wait()?;
    trunk.ensure_success()?;
    let call_id = call_ids(&trunk.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected("no Call-ID in the trunk trace".into()))?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(str_field(&record, "queue"), Some("support"), "{record}");
    assert_eq!(
        str_field(&record, "disposition"),
        Some("abandoned"),
        "{record}"
    );
    Ok(())
}

/// `[cdr] csv = true`: next to the JSON lines, a daily CSV file gets one row per call, with a
/// header naming the columns; `label` is the last one.
#[test]
fn cdr_csv_writes_a_daily_csv_row_per_call() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        cdr_csv: true,
        agents: vec![AgentAccount::new("1001", "Alice")],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .run()?;
    trunk.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let call_id = call_ids(&trunk.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected("no Call-ID in the trunk trace".into()))?;
    // The JSON record first (the harness waits for it), then the CSV row of the same batch.
    wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        let csv = std::fs::read_dir(switchboard.cdr_dir())
            .map_err(|e| HarnessError::io("list the CDR directory", e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("cdr-") && n.ends_with(".csv"))
            });
        let text = csv
            .map(std::fs::read_to_string)
            .transpose()
            .map_err(|e| HarnessError::io("read the CSV file", e))?
            .unwrap_or_default();
        if text.contains(&call_id) {
            break text;
        }
        if std::time::Instant::now() >= deadline {
            return Err(HarnessError::Unexpected(format!(
                "no CSV row for {call_id} within {} s:\n{text}",
                WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let header = text.lines().next().unwrap_or_default();
    assert!(header.starts_with("seq,id,trunk_call_id,"), "{header}");
    assert!(
        header.ends_with(",label,customer_name,preferred_agent,preferred_agent_taken"),
        "{header}"
    );
    Ok(())
}
