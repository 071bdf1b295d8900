//! Blind transfer from an agent's phone: agent 1001 answers a trunk call with audio, sends a
//! REFER naming the `billing` queue (where only 1002 works), gets 202 and a NOTIFY with
//! `SIP/2.0 200 OK`, and is hung up; 1002 answers and the caller's audio now reaches 1002
//! (SIPp echoes it back through Switchboard). The caller's side then holds and resumes with
//! re-INVITEs, answered by Switchboard, and its audio reaches 1002 and comes back again. The
//! CDR keeps every leg and the transfer, and `switchboard report` counts it out for 1001 and
//! in for 1002.

use std::time::{Duration, Instant};

use sip_tests::agent::register_agent;
use sip_tests::cdr::{report_around_today, str_field, wait_for_call};
use sip_tests::config::QueueSpec;
use sip_tests::ports::free_port;
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_echo_agent, AgentAccount, HarnessError, HarnessResult, Sipp, Switchboard,
    SwitchboardConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn an_agent_blind_transfers_a_caller_to_a_queue_and_the_audio_follows() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        other_queues: vec![QueueSpec::new("billing", "billing")],
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob")
                .without_support()
                .with_skill("billing", 5),
        ],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let second = start_echo_agent(&switchboard, "1002", WAIT)?;
    let port = free_port()?;
    register_agent(&switchboard, "1001", port)?;
    let first = Sipp::server("agent_answer_refer.xml", port, switchboard.dir())?
        .service("1001")
        .set("target", "billing")
        .set("switchboard", &switchboard.sip_addr().to_string())
        .timeout(WAIT)
        .spawn()?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (mut call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(rtp.port()?, false),
        Duration::from_secs(30),
    )?;
    // The first phone transfers at once; keep talking until the second phone echoes us.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut echoed = false;
    while !echoed && Instant::now() < deadline {
        let sent = rtp.send_stream(relay, 10, 0, 0x7a5f_0001)?;
        let got = rtp.receive(50, Duration::from_millis(400))?;
        echoed = got.iter().any(|p| sent.contains(&p.bytes));
    }
    assert!(
        echoed,
        "the caller's audio reaches the agent the call was transferred to"
    );
    first.wait()?.ensure_success()?;

    // The caller's side holds (a=sendonly) and resumes: Switchboard answers each re-INVITE
    // itself, and afterwards the caller's audio goes to 1002 and comes back again.
    let port = rtp.port()?;
    for (version, direction, held) in [(2, "sendonly", true), (3, "sendrecv", false)] {
        let offer = pcmu_offer(port, false)
            .replace("o=trunk 1 1 ", &format!("o=trunk 1 {version} "))
            + &format!("a={direction}\r\n");
        let reinvite = call.reinvite(&offer, Duration::from_secs(30))?;
        let ok = &reinvite.final_response;
        assert_eq!(ok.status(), Some(200), "{}", ok.to_text());
        assert_eq!(ok.body.contains("a=recvonly"), held, "{}", ok.to_text());
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut echoed_after_resume = 0;
    while echoed_after_resume < 50 && Instant::now() < deadline {
        let sent = rtp.send_stream(relay, 10, 0, 0x7a5f_0002)?;
        let got = rtp.receive(50, Duration::from_millis(400))?;
        echoed_after_resume += got.iter().filter(|p| sent.contains(&p.bytes)).count();
    }
    assert!(
        echoed_after_resume >= 50,
        "after the hold and resume the caller's packets come back from 1002 \
         ({echoed_after_resume} echoed)"
    );
    let call_id = call
        .answer
        .final_response
        .header("Call-ID")
        .unwrap_or_default()
        .to_string();
    call.hang_up(Duration::from_secs(30))?;
    second.wait()?.ensure_success()?;

    let record = wait_for_call(switchboard.cdr_dir(), &call_id, Duration::from_secs(30))?;
    assert_eq!(str_field(&record, "agent"), Some("1002"), "{record}");
    assert_eq!(
        str_field(&record, "disposition"),
        Some("answered"),
        "{record}"
    );
    let transfers = record["transfers"].as_array().cloned().unwrap_or_default();
    assert_eq!(transfers.len(), 1, "{record}");
    assert_eq!(transfers[0]["from_agent"], "1001");
    assert_eq!(transfers[0]["to"], "billing");
    assert_eq!(transfers[0]["kind"], "blind");
    let legs = record["legs"].as_array().cloned().unwrap_or_default();
    let roles: Vec<String> = legs
        .iter()
        .map(|l| l["role"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(roles, vec!["trunk", "agent", "agent"], "{record}");
    for leg in &legs[1..] {
        if leg["answered"].is_null() {
            return Err(HarnessError::Unexpected(format!(
                "both agents answered: {record}"
            )));
        }
    }
    // The report counts the transfer out for 1001 and in for 1002.
    let report = report_around_today(switchboard.cdr_dir(), &["--interval", "day"])?;
    let section = report
        .split("Transfers by agent")
        .nth(1)
        .ok_or_else(|| HarnessError::Unexpected(format!("no transfers section:\n{report}")))?;
    let counts = |agent: &str| -> Option<Vec<String>> {
        let line = section
            .lines()
            .find(|l| l.split_whitespace().next() == Some(agent))?;
        Some(line.split_whitespace().skip(1).map(str::to_owned).collect())
    };
    assert_eq!(
        counts("1001"),
        Some(vec!["1".into(), "0".into()]),
        "{report}"
    );
    assert_eq!(
        counts("1002"),
        Some(vec!["0".into(), "1".into()]),
        "{report}"
    );
    Ok(())
}
